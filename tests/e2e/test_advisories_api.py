"""Known vulnerabilities over HTTP: ``vulnerabilities`` in the JSON API (PyPI's shape), the
OSV-compatible API at ``/osv/v1/``, and pip-audit pointed at it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from .advisories_support import vulnerable  # noqa: F401


def get(server, path, **kwargs):
    return requests.get(server.url + path, allow_redirects=False, timeout=10, **kwargs)


def test_the_json_api_lists_what_affects_the_release(server, vulnerable):
    old = get(server, f"/pypi/{vulnerable.name}/1.0/json").json()["vulnerabilities"]
    assert old == [{"aliases": [f"CVE-{vulnerable.osv_id}"], "details": "A test record.",
                    "fixed_in": ["2.0"], "id": vulnerable.osv_id,
                    "link": f"https://osv.dev/vulnerability/{vulnerable.osv_id}",
                    "source": "osv", "summary": f"{vulnerable.name} is vulnerable",
                    "withdrawn": None}]
    # The project document describes the latest release, 2.0: fixed.
    assert get(server, f"/pypi/{vulnerable.name}/json").json()["vulnerabilities"] == []
    assert get(server, f"/pypi/{vulnerable.name}/2.0/json").json()["vulnerabilities"] == []


def test_a_changed_record_changes_the_cached_json_at_once(server, vulnerable):
    path = f"/pypi/{vulnerable.name}/1.0/json"
    first = get(server, path)
    assert len(first.json()["vulnerabilities"]) == 1
    vulnerable.reimport(modified="2026-11-05T00:00:00Z", withdrawn="2026-11-05T00:00:00Z")
    second = get(server, path)
    assert second.json()["vulnerabilities"] == []
    assert second.headers["ETag"] != first.headers["ETag"]


def post(server, path, body, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.url + path, data=data, timeout=10,
                         headers={"Content-Type": "application/json"}, **kwargs)


def test_osv_query_answers_full_records_or_nothing(server, vulnerable):
    package = {"name": vulnerable.name.upper(), "ecosystem": "PyPI"}
    found = post(server, "/osv/v1/query", {"package": package, "version": "1.0"})
    assert found.status_code == 200
    (record,) = found.json()["vulns"]
    assert record["id"] == vulnerable.osv_id and record["modified"] == "2026-11-01T00:00:00Z"
    assert record["affected"][0]["ranges"][0]["events"] == [{"introduced": "0"},
                                                            {"fixed": "2.0"}]
    assert post(server, "/osv/v1/query", {"package": package, "version": "2.0"}).json() == {}
    every = post(server, "/osv/v1/query", {"package": package}).json()
    assert [v["id"] for v in every["vulns"]] == [vulnerable.osv_id]
    purl = post(server, "/osv/v1/query",
                {"package": {"purl": f"pkg:pypi/{vulnerable.name}@1.0"}}).json()
    assert [v["id"] for v in purl["vulns"]] == [vulnerable.osv_id]
    npm = {"package": {"name": vulnerable.name, "ecosystem": "npm"}, "version": "1.0"}
    assert post(server, "/osv/v1/query", npm).json() == {}


def test_osv_querybatch_and_vulns(server, vulnerable):
    queries = [{"package": {"name": vulnerable.name, "ecosystem": "PyPI"}, "version": v}
               for v in ("1.0", "2.0")]
    answer = post(server, "/osv/v1/querybatch", {"queries": queries})
    assert answer.json() == {"results": [
        {"vulns": [{"id": vulnerable.osv_id, "modified": "2026-11-01T00:00:00Z"}]}, {}]}
    one = get(server, f"/osv/v1/vulns/{vulnerable.osv_id}")
    assert one.status_code == 200 and one.json()["id"] == vulnerable.osv_id
    missing = get(server, "/osv/v1/vulns/NOPE-1")
    assert missing.status_code == 404 and missing.json() == {"code": 5,
                                                             "message": "Bug not found."}


@pytest.mark.parametrize("body, message", [
    (b"{", "The request body is not JSON."),
    ([], "The query must be a JSON object."),
    ({"package": {"name": "x"}}, "'package.ecosystem' must be given"),
    ({"package": {"name": "x", "ecosystem": "PyPI"}, "version": 5}, "'version' must be a text"),
    ({"commit": "abc"}, "querying by commit is not supported"),
    ({"package": {"purl": "npm:x"}}, "'purl' must be a package URL"),
    ({"package": {"name": "x", "ecosystem": "PyPI"}, "extra": 1}, "unknown field 'extra'"),
    (b"x" * 20000, "larger than 16384 bytes"),
    # Found by fuzzing: a NUL reached the database, which PostgreSQL answers with an error.
    ({"package": {"name": "a\x00b", "ecosystem": "PyPI"}}, "may not hold control characters"),
    ({"package": {"purl": "pkg:pypi/a\x00b@1"}}, "may not hold control characters"),
    ({"package": {"name": "ab", "ecosystem": "PyPI"}, "version": "1\x00"},
     "may not hold control characters"),
])
def test_bad_queries_are_400_with_one_line(server, body, message):
    answer = post(server, "/osv/v1/query", body)
    assert answer.status_code == 400
    assert answer.json()["code"] == 3 and message in answer.json()["message"]


def test_a_nul_in_a_batch_is_400_not_a_server_error(server):
    answer = post(server, "/osv/v1/querybatch",
                  {"queries": [{"package": {"name": "a\x00", "ecosystem": "PyPI"}}]})
    assert answer.status_code == 400
    assert "Query 1: the package and the version may not hold" in answer.json()["message"]


def test_a_batch_is_bounded(server):
    queries = [{"package": {"name": "x", "ecosystem": "PyPI"}}] * 1001
    answer = post(server, "/osv/v1/querybatch", {"queries": queries})
    assert answer.status_code == 400 and "At most 1000 queries" in answer.json()["message"]
    bad = post(server, "/osv/v1/querybatch", {"queries": [{"package": {}}]})
    assert bad.status_code == 400 and bad.json()["message"].startswith("Query 1:")
    assert get(server, "/osv/v1/query").status_code == 405


def _pip_audit(server, requirements: Path, tmp_path: Path):
    return subprocess.run(
        [str(Path(sys.executable).parent / "pip-audit"), "-s", "osv",
         "--osv-url", f"{server.url}/osv/v1/query", "--no-deps", "--disable-pip",
         "--cache-dir", str(tmp_path / "cache"), "--progress-spinner", "off",
         "-f", "json", "-r", str(requirements)],
        capture_output=True, text=True, timeout=120)


def test_pip_audit_reports_the_vulnerable_pin_and_not_its_fix(server, vulnerable, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{vulnerable.name}==1.0\n")
    found = _pip_audit(server, requirements, tmp_path)
    assert found.returncode == 1, found.stderr
    (dependency,) = json.loads(found.stdout)["dependencies"]
    (reported,) = dependency["vulns"]
    # pip-audit shows a CVE alias in place of an id it does not know the kind of.
    ids = {reported["id"], *reported["aliases"]}
    assert ids == {vulnerable.osv_id, f"CVE-{vulnerable.osv_id}"}
    assert reported["fix_versions"] == ["2.0"]
    # The same ids in the JSON API.
    (listed,) = get(server, f"/pypi/{vulnerable.name}/1.0/json").json()["vulnerabilities"]
    assert {listed["id"], *listed["aliases"]} == ids

    requirements.write_text(f"{vulnerable.name}==2.0\n")
    clean = _pip_audit(server, requirements, tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["dependencies"][0]["vulns"] == []


def _uv_audit(server, project: Path, requirement: str, home: Path):
    from .simple_support import UV, client_env, run

    (project / "pyproject.toml").write_text(
        '[project]\nname = "audited"\nversion = "0"\nrequires-python = ">=3.9"\n'
        f'dependencies = ["{requirement}"]\n\n[tool.uv]\npackage = false\n')
    env = client_env(home)
    locked = run([UV, "lock", "--directory", str(project), "--default-index",
                  f"{server.url}/simple/"], env)
    assert locked.returncode == 0, locked.stderr
    # uv joins "v1/query" and "v1/querybatch" to the service URL: it ends in a slash.
    return run([UV, "audit", "--directory", str(project), "--frozen", "--output-format", "json",
                "--service-url", f"{server.url}/osv/"], env)


def test_uv_audit_reports_the_vulnerable_pin_and_not_its_fix(server, vulnerable, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    found = _uv_audit(server, project, f"{vulnerable.name}==1.0", tmp_path / "home")
    assert found.returncode == 1, found.stdout + found.stderr
    assert vulnerable.osv_id in found.stdout, found.stdout
    assert "2.0" in found.stdout

    clean = _uv_audit(server, project, f"{vulnerable.name}==2.0", tmp_path / "home")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert vulnerable.osv_id not in clean.stdout


def test_on_a_private_index_the_osv_api_needs_a_token(private_server):
    from .simple_support import read_token

    query = {"package": {"name": "anything", "ecosystem": "PyPI"}, "version": "1.0"}
    assert post(private_server, "/osv/v1/query", query).status_code == 401
    assert get(private_server, "/osv/v1/vulns/PYSEC-2023-74").status_code == 401
    allowed = post(private_server, "/osv/v1/query", query, auth=("__token__", read_token()))
    assert allowed.status_code == 200 and allowed.json() == {}
