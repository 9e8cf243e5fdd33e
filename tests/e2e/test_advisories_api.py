"""Known vulnerabilities over HTTP: ``vulnerabilities`` in the JSON API (PyPI's shape), the
OSV-compatible API at ``/osv/v1/``, and pip-audit pointed at it."""

from __future__ import annotations

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
