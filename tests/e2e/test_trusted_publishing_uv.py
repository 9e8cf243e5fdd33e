"""`uv publish --trusted-publishing always`, unmodified, against Bastion serving TLS itself.

uv reaches /_/oidc/* only over https on the publish URL's host and port, so the server gets a
certificate from a throwaway CA that uv trusts through SSL_CERT_FILE. The test plays GitHub
Actions: it serves the ID-token request endpoint (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN,
GITHUB_ACTIONS=true) from the local OIDC issuer.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import override_settings

from bastion.packaging.models import File
from bastion.publishing import services
from bastion.publishing.models import Publisher
from bastion.tokens.models import ApiToken
from tests.artifacts import Wheel, metadata_text, upload_form
from tests.conftest import Server
from tests.oidc_issuer import IssuerServer, github_claims

from .uploads import create_project, new_user

BIN = Path(sys.executable).parent
UV = shutil.which("uv", path=str(BIN)) or shutil.which("uv")
AUDIENCE = "bastion-uv-" + secrets.token_hex(4)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def throwaway_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A CA certificate, and a server certificate for 127.0.0.1 and localhost it signed."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("bastion test CA"))
          .issuer_name(_name("bastion test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = (directory / "ca.pem", directory / "server.pem",
                                    directory / "server.key")
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return throwaway_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tls):
    ca, cert, key = tls
    srv = Server({"BASTION_OIDC_ALLOW_HTTP_ISSUERS": "true", "BASTION_OIDC_AUDIENCE": AUDIENCE,
                  "BASTION_TLS_CERT": str(cert), "BASTION_TLS_KEY": str(key)})
    srv.url = f"https://127.0.0.1:{srv.port}"
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def actions():
    """The local issuer as GitHub's, answering GitHub Actions' ID-token requests."""
    issuer = IssuerServer()
    with override_settings(OIDC_ALLOW_HTTP_ISSUERS=True):
        row = services.add_issuer(name=f"gha-{secrets.token_hex(5)}", kind="github",
                                  url=issuer.url)
    yield issuer, row
    Publisher.objects.filter(issuer=row).delete()
    row.delete()
    issuer.stop()


def uv_env(home: Path, issuer: IssuerServer, ca: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("UV_PUBLISH_", "UV_INDEX", "GITHUB_", "ACTIONS_", "GITLAB"))}
    env.update({
        "HOME": str(home), "UV_NO_CONFIG": "1", "NO_COLOR": "1", "SSL_CERT_FILE": str(ca),
        "GITHUB_ACTIONS": "true",
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{issuer.url}/actions-token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": issuer.request_token,
    })
    if "UV_CACHE_DIR" not in env:
        env["UV_CACHE_DIR"] = str(Path(os.environ.get("HOME", str(home))) / ".cache" / "uv")
    return env


def test_the_exchange_is_served_over_tls(tls_server, tls):
    ca, _cert, _key = tls
    response = requests.get(tls_server.url + "/_/oidc/audience", verify=str(ca), timeout=10)
    assert response.json() == {"audience": AUDIENCE}


@pytest.mark.skipif(UV is None, reason="uv is not installed")
def test_uv_publishes_with_trusted_publishing_and_burns_the_token(tls_server, tls, actions,
                                                                  unique, tmp_path):
    ca, _cert, _key = tls
    issuer, row = actions
    owner = new_user()
    project = create_project(f"tpuv-{unique}", owner)
    services.add_publisher(project, row, {"owner": f"uv-{unique}", "repository": "widget",
                                          "workflow": "release.yml"}, actor=owner)
    issuer.actions_claims = github_claims(f"uv-{unique}", "widget")
    artifact = Wheel(project.name, "1.0", metadata=metadata_text(project.name, "1.0"))
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / artifact.filename).write_bytes(artifact.build())
    result = subprocess.run(
        [UV, "publish", "--trusted-publishing", "always", "--publish-url",
         f"{tls_server.url}/legacy/", str(dist / artifact.filename)],
        env=uv_env(tmp_path, issuer, ca), capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert File.objects.filter(release__project=project, filename=artifact.filename).exists()
    [minted] = ApiToken.objects.filter(publisher_claims__repository=f"uv-{unique}/widget")
    # uv burnt the token after its upload: it is revoked, and a later upload with it is refused.
    assert minted.revoked is not None, output
    assert "Failed to invalidate" not in output
    # uv masks the token in GitHub's log with ::add-mask::, which is how a test sees it.
    masked = [line.split("::add-mask::", 1)[1].strip() for line in output.splitlines()
              if "::add-mask::" in line]
    assert masked, output
    later = Wheel(project.name, "2.0", metadata=metadata_text(project.name, "2.0"))
    data, files = upload_form(later.name, later.version, later.filename, later.build())
    refused = requests.post(tls_server.url + "/legacy/", data=data, files=files,
                            auth=("__token__", masked[-1]), verify=str(ca), timeout=60)
    assert refused.status_code == 403
    assert not File.objects.filter(release__project=project, filename=later.filename).exists()


@pytest.mark.skipif(UV is None, reason="uv is not installed")
def test_uv_publishes_from_a_gitlab_job(tls_server, tls, unique, tmp_path):
    """GitLab CI hands the job its ID token in <AUDIENCE>_ID_TOKEN (``id_tokens:``)."""
    from tests.oidc_issuer import gitlab_claims

    ca, _cert, _key = tls
    issuer = IssuerServer()
    with override_settings(OIDC_ALLOW_HTTP_ISSUERS=True):
        row = services.add_issuer(name=f"gl-{unique}", kind="gitlab", url=issuer.url)
    try:
        owner = new_user()
        project = create_project(f"tpuvgl-{unique}", owner)
        services.add_publisher(project, row, {"namespace": f"grp-{unique}", "project": "widget",
                                              "ci_config_path": ".gitlab-ci.yml"}, actor=owner)
        host = issuer.url.removeprefix("http://")
        token = issuer.token(AUDIENCE, gitlab_claims(host, f"grp-{unique}", "widget"))
        artifact = Wheel(project.name, "1.0", metadata=metadata_text(project.name, "1.0"))
        path = tmp_path / artifact.filename
        path.write_bytes(artifact.build())
        env = uv_env(tmp_path, issuer, ca)
        for name in ("GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL",
                     "ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
            env.pop(name)
        variable = "".join(c if c.isalnum() else "_" for c in AUDIENCE.upper()) + "_ID_TOKEN"
        env.update({"GITLAB_CI": "true", variable: token})
        result = subprocess.run(
            [UV, "publish", "--trusted-publishing", "always", "--publish-url",
             f"{tls_server.url}/legacy/", str(path)],
            env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert File.objects.filter(release__project=project).count() == 1
    finally:
        Publisher.objects.filter(issuer=row).delete()
        row.delete()
        issuer.stop()
