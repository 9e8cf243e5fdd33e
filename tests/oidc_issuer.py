"""A real OIDC issuer for the trusted-publishing tests: its own keys, signed tokens, and (as
``IssuerServer``) a discovery document and JWKS served over HTTP on 127.0.0.1, plus GitHub
Actions' ID-token request endpoint that uv asks for a token."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class SigningKey:
    def __init__(self, kind: str = "rsa"):
        self.kid = "k" + secrets.token_hex(6)
        if kind == "rsa":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
            algorithm = jwt.algorithms.RSAAlgorithm
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
            algorithm = jwt.algorithms.ECAlgorithm
        self.jwk = {**json.loads(algorithm.to_jwk(self.private.public_key())),
                    "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict, *, kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg,
                          headers={"kid": kid or self.kid})


class OidcIssuer:
    """Signs tokens as ``url``; ``keys`` are what its JWKS publishes."""

    def __init__(self, url: str, key_kind: str = "rsa"):
        self.url = url
        self.key = SigningKey(key_kind)
        self.keys = [self.key]

    def jwks(self) -> dict:
        return {"keys": [k.jwk for k in self.keys]}

    def rotate(self) -> None:
        """A new signing key; the old one is no longer published."""
        self.key = SigningKey()
        self.keys = [self.key]

    def token(self, audience: str, claims: dict, *, lifetime: int = 300, key=None,
              **standard) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": audience, "iat": now, "nbf": now,
                "exp": now + lifetime, "jti": secrets.token_hex(16), **claims}
        for name, value in standard.items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        return (key or self.key).sign(body)


def github_claims(owner: str, repo: str, *, workflow: str = "release.yml", owner_id="1001",
                  repository_id="2002", ref="refs/tags/v1", environment=None, **extra) -> dict:
    claims = {
        "sub": f"repo:{owner}/{repo}:ref:{ref}", "repository": f"{owner}/{repo}",
        "repository_owner": owner, "repository_owner_id": owner_id,
        "repository_id": repository_id, "ref": ref, "sha": "c" * 40, "event_name": "push",
        "workflow_ref": f"{owner}/{repo}/.github/workflows/{workflow}@{ref}",
        "job_workflow_ref": f"{owner}/{repo}/.github/workflows/{workflow}@{ref}",
        "run_id": "4242", "run_attempt": "1",
    }
    if environment:
        claims["environment"] = environment
    claims.update(extra)
    return claims


def gitlab_claims(host: str, namespace: str, project: str, *, ci_file=".gitlab-ci.yml",
                  namespace_id="11", project_id="22", ref_path="refs/tags/v1", **extra) -> dict:
    path = f"{namespace}/{project}"
    claims = {
        "sub": f"project_path:{path}:ref_type:tag:ref:v1", "project_path": path,
        "namespace_path": namespace, "namespace_id": namespace_id, "project_id": project_id,
        "ref_path": ref_path, "sha": "d" * 40, "pipeline_id": "99", "job_id": "100",
        "ci_config_ref_uri": f"{host}/{path}//{ci_file}@{ref_path}",
    }
    claims.update(extra)
    return claims


class IssuerServer(OidcIssuer):
    """The issuer at http://127.0.0.1:<port>, serving its discovery document and JWKS, and
    ``/actions-token`` as GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL does (a token for the
    requested audience, with ``actions_claims``)."""

    def __init__(self, key_kind: str = "rsa"):
        issuer = self
        self.request_token = secrets.token_hex(16)
        self.actions_claims: dict = {}
        self.jwks_fetches = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                parts = urlsplit(self.path)
                if parts.path == "/.well-known/openid-configuration":
                    self._send(200, {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"})
                elif parts.path == "/jwks":
                    issuer.jwks_fetches += 1
                    self._send(200, issuer.jwks())
                elif parts.path == "/actions-token":
                    if self.headers.get("Authorization") != f"Bearer {issuer.request_token}":
                        self._send(401, {"message": "bad request token"})
                        return
                    audience = parse_qs(parts.query).get("audience", [""])[0]
                    self._send(200, {"value": issuer.token(audience, issuer.actions_claims)})
                else:
                    self._send(404, {"message": "not found"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        super().__init__(f"http://127.0.0.1:{self.httpd.server_address[1]}", key_kind)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
