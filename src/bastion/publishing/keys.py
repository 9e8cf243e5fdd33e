"""The signing keys of OIDC issuers: configured statically, or discovered and cached.

Discovery reads ``<issuer>/.well-known/openid-configuration`` and its ``jwks_uri``, each
with the timeout of ``settings.OIDC_TIMEOUT`` and a byte cap, over https only (plain http
only when ``settings.OIDC_ALLOW_HTTP_ISSUERS``, for tests), following no redirects. The keys
are kept per process for ``settings.OIDC_JWKS_TTL`` seconds; a token signed with a key id
not among them (the issuer rotated its keys) makes one early refetch, at most every
``settings.OIDC_JWKS_MIN_REFETCH`` seconds, so that tokens with made-up key ids cannot turn
Bastion into a stream of requests to the issuer.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings

from bastion import __version__

if TYPE_CHECKING:
    import jwt

MAX_DISCOVERY_BYTES = 256 * 1024
MAX_JWKS_BYTES = 1024 * 1024
MAX_KEYS = 100
# Algorithms a CI's ID token may be signed with: asymmetric only (never "none" or an HMAC
# that a public key could be misused as the secret of).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]


class NoKey(Exception):
    """No key to check the token with; ``message`` says why (safe to show)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


_lock = threading.Lock()
# issuer URL -> (monotonic time fetched, the key set)
_cache: dict[str, tuple[float, dict]] = {}


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def check_issuer_url(url: str) -> str | None:
    """None when ``url`` may be an issuer's, else why not (one line, English)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    allowed = ("https", "http") if settings.OIDC_ALLOW_HTTP_ISSUERS else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        return "must be an https:// URL"
    if parts.username or parts.password or parts.query or parts.fragment:
        return "must be a plain URL: no user, query or fragment"
    return None


def _get(url: str, limit: int) -> dict:
    import httpx  # only exchanges need it: workers that never exchange do not load it

    problem = check_issuer_url(url)
    if problem:
        raise NoKey(f"the issuer's key URL {url[:200]} {problem}")
    try:
        with httpx.Client(timeout=settings.OIDC_TIMEOUT, follow_redirects=False, verify=True,
                          trust_env=True, headers={"User-Agent": f"bastion/{__version__}",
                                                   "Accept": "application/json"}) as client:
            with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise NoKey(f"{url[:200]} answered {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise NoKey(f"{url[:200]} sent more than {limit} bytes")
    except httpx.HTTPError as exc:
        raise NoKey(f"{url[:200]} could not be reached ({type(exc).__name__})") from None
    try:
        document = json.loads(bytes(body))
    except (ValueError, RecursionError):
        raise NoKey(f"{url[:200]} did not send JSON") from None
    if not isinstance(document, dict):
        raise NoKey(f"{url[:200]} did not send a JSON object")
    return document


def discover(issuer_url: str) -> dict:
    """Fetch the issuer's key set through its discovery document."""
    config = _get(issuer_url.rstrip("/") + "/.well-known/openid-configuration",
                  MAX_DISCOVERY_BYTES)
    if config.get("issuer") != issuer_url:
        raise NoKey("the issuer's discovery document names another issuer")
    jwks_uri = config.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise NoKey("the issuer's discovery document has no jwks_uri")
    return _get(jwks_uri, MAX_JWKS_BYTES)


def parse_jwks(document) -> dict:
    """A key set (``{"keys": [...]}``), checked for shape; NoKey otherwise."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except (ValueError, RecursionError):
            raise NoKey("the key set is not JSON") from None
    if (not isinstance(document, dict) or not isinstance(document.get("keys"), list)
            or not document["keys"] or len(document["keys"]) > MAX_KEYS):
        raise NoKey(f'the key set must be {{"keys": [...]}} with 1 to {MAX_KEYS} keys')
    return document


def _find(jwks: dict, kid: str | None) -> jwt.PyJWK | None:
    import jwt  # loads cryptography: only when a token is checked

    candidates = []
    for entry in jwks.get("keys", []):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK.from_dict(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue  # a key type or curve we cannot use: skip it, use the others
        candidates.append(key)
    if kid is None:
        # A token without a key id is usable only when the issuer has a single key.
        return candidates[0] if len(candidates) == 1 else None
    return next((key for key in candidates if key.key_id == kid), None)


def signing_key(issuer, kid: str | None) -> jwt.PyJWK:
    """The key of ``issuer`` (a publishing.models.Issuer) with id ``kid``; NoKey if none."""
    if issuer.jwks:
        key = _find(parse_jwks(issuer.jwks), kid)
        if key is None:
            raise NoKey(f"no key {kid!r} among the issuer's configured keys")
        return key
    now = time.monotonic()
    with _lock:
        cached = _cache.get(issuer.url)
    if cached is None or now - cached[0] >= settings.OIDC_JWKS_TTL:
        cached = _refresh(issuer.url)
    key = _find(cached[1], kid)
    if key is None and time.monotonic() - cached[0] >= settings.OIDC_JWKS_MIN_REFETCH:
        key = _find(_refresh(issuer.url)[1], kid)
    if key is None:
        raise NoKey(f"no key {str(kid)[:100]!r} among the issuer's published keys")
    return key


def _refresh(issuer_url: str) -> tuple[float, dict]:
    entry = (time.monotonic(), parse_jwks(discover(issuer_url)))
    with _lock:
        _cache[issuer_url] = entry
    return entry
