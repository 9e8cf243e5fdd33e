"""The real attestations of tests/fixtures/attestations (signed on Sigstore's production
instance by GitHub Actions, GitLab CI and Google Cloud Build) as an upstream index serves
them: each distribution with its PEP 740 provenance object, built around its attestation as
PyPI builds it (one bundle: the publisher, and the attestations)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "attestations"
GITHUB_SDIST = "pypi_attestations-0.0.19.tar.gz"
GITLAB_SDIST = "gitlab_oidc_project-0.0.3.tar.gz"
GOOGLE_SDIST = "gcb_attestation_test-0.0.0.tar.gz"
# Signed on Sigstore's staging instance (by an e-mail identity): only its root vouches for it.
STAGING_WHEEL = "rfc8785-0.1.2-py3-none-any.whl"
TWINE = str(Path(sys.executable).parent / "twine")
PROJECTS = {GITHUB_SDIST: "pypi-attestations", GITLAB_SDIST: "gitlab-oidc-project",
            GOOGLE_SDIST: "gcb-attestation-test", STAGING_WHEEL: "rfc8785"}
# Who built each, as Bastion names publishers (pins compare these).
IDENTITIES = {GITHUB_SDIST: "https://github.com/trailofbits/pypi-attestations",
              GITLAB_SDIST: "https://gitlab.com/facutuesca/gitlab-oidc-project",
              GOOGLE_SDIST: "919436158236-compute@developer.gserviceaccount.com"}
PUBLISHERS = {
    GITHUB_SDIST: {"kind": "GitHub", "repository": "trailofbits/pypi-attestations",
                   "workflow": "release.yml", "environment": None},
    GITLAB_SDIST: {"kind": "GitLab", "repository": "facutuesca/gitlab-oidc-project",
                   "workflow_filepath": ".gitlab-ci.yml", "environment": None},
}


def attestation(filename: str) -> dict:
    """The file's attestation object (Google's only inside its provenance object)."""
    if filename == GOOGLE_SDIST:
        document = json.loads((FIXTURES / (GOOGLE_SDIST + ".provenance")).read_text())
        return document["attestation_bundles"][0]["attestations"][0]
    return json.loads((FIXTURES / (filename + ".publish.attestation")).read_text())


def provenance(filename: str, *, attestation_of: str | None = None) -> bytes:
    """PEP 740's provenance object for ``filename``; ``attestation_of``: put another file's
    attestation in it instead (a provenance that must not verify)."""
    source = attestation_of or filename
    if source == GOOGLE_SDIST:  # only its provenance object was published
        return (FIXTURES / (GOOGLE_SDIST + ".provenance")).read_bytes()
    attestation = json.loads((FIXTURES / (source + ".publish.attestation")).read_text())
    return json.dumps({"version": 1, "attestation_bundles": [
        {"publisher": PUBLISHERS[source], "attestations": [attestation]}]}).encode()


def add_attested(static, filename: str, *, upload_time=None, attestation_of: str | None = None):
    """Serve a fixture distribution on the fake upstream with its provenance."""
    return static.add(PROJECTS[filename], filename, (FIXTURES / filename).read_bytes(),
                      upload_time=upload_time,
                      provenance=provenance(filename, attestation_of=attestation_of))


def forget_local_projects() -> None:
    """The fixture names are fixed: a local project of one (left by tests that upload these
    files) would take the name over from an upstream. Removed as rows, not by the deletion
    service, which would reserve the names and refuse their filenames for good. Tests that
    upload these files call it before and after."""
    from bastion.packaging.models import File, FilenameRegistry, Project
    from bastion.storage import get_store

    names = sorted(PROJECTS.values())
    store = get_store()
    for path in File.objects.filter(release__project__normalized_name__in=names).values_list(
            "path", flat=True):
        for stored in (path, path + ".metadata"):
            try:
                store.delete(stored)
            except FileNotFoundError:
                pass
    Project.objects.filter(normalized_name__in=names).delete()
    # Every filename ever accepted stays taken: the next test uploading one needs it free.
    FilenameRegistry.objects.filter(filename__in=sorted(PROJECTS)).delete()


def twine_upload_attested(server, token: str, tmp_path: Path, filename: str,
                          ) -> subprocess.CompletedProcess:
    """``twine upload --attestations`` of a fixture distribution with its attestation."""
    dist = tmp_path / "dist"
    dist.mkdir()
    shutil.copy(FIXTURES / filename, dist / filename)
    (dist / f"{filename}.publish.attestation").write_text(json.dumps(attestation(filename)))
    env = {key: value for key, value in os.environ.items() if not key.startswith("TWINE_")}
    env.update({"HOME": str(tmp_path), "NO_COLOR": "1",
                "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})
    return subprocess.run(
        [TWINE, "upload", "--non-interactive", "--disable-progress-bar", "--attestations",
         "--repository-url", f"{server.url}/legacy/", "-u", "__token__", "-p", token,
         str(dist / filename), str(dist / f"{filename}.publish.attestation")],
        env=env, capture_output=True, text=True, timeout=300)
