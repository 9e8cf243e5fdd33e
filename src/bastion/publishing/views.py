"""``/_/oidc/``: the token exchange that uv, gh-action-pypi-publish and the ``id`` library
speak (standards.md §3). JSON in, JSON out, every failure included (the GitHub action dies on
anything else); no cookies are involved, so no CSRF."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from bastion.events.services import RequestInfo
from bastion.tokens.disclosure import revoke_presented
from bastion.tokens.services import TokenError

from .services import ExchangeError, MAX_JWT_LENGTH, exchange

# A JSON object with one token (an OIDC JWT or a minted token) and a little room around it.
MAX_BODY = MAX_JWT_LENGTH + 1024
NOT_ENABLED = "Trusted publishing functionality not enabled"


def _json(body: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _failed(code: str, description: str, status: int = 422) -> JsonResponse:
    return _json({"message": "Token request failed",
                  "errors": [{"code": code, "description": description}]}, status)


def _method_not_allowed(allowed: str) -> JsonResponse:
    response = _json({"message": f"Use {allowed}."}, 405)
    response["Allow"] = allowed
    return response


def _token_in_body(request) -> str:
    """The ``token`` of the request's JSON body; ExchangeError("invalid-payload") otherwise."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY:
        raise ExchangeError("invalid-payload", f"the request body exceeds {MAX_BODY} bytes")
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ExchangeError("invalid-payload", f"the request body exceeds {MAX_BODY} bytes")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise ExchangeError("invalid-payload", "the body is not JSON") from None
    token = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise ExchangeError("invalid-payload", 'the body must be {"token": "<OIDC token>"}')
    return token


def audience(request):
    """``GET /_/oidc/audience``: the audience CI jobs request their OIDC token for."""
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed("GET")
    if not settings.OIDC_ENABLED:
        return _json({"message": NOT_ENABLED}, 403)
    return _json({"audience": settings.OIDC_AUDIENCE})


@csrf_exempt
def mint_token(request):
    """``POST /_/oidc/mint-token`` ``{"token": <OIDC JWT>}`` → a short-lived upload token."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    if not settings.OIDC_ENABLED:
        return _failed("not-enabled", NOT_ENABLED)
    try:
        minted = exchange(_token_in_body(request), info=RequestInfo.from_request(request))
    except ExchangeError as exc:
        return _failed(exc.code, exc.description)
    return _json({"success": True, "token": minted.token, "expires": minted.expires})


@csrf_exempt
def burn_token(request):
    """``POST /_/oidc/burn-token`` ``{"token": <minted token>}``: uv revokes the token it
    uploaded with (any genuine token may be burnt by whoever holds it)."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    try:
        revoke_presented(_token_in_body(request), info=RequestInfo.from_request(request))
    except ExchangeError as exc:
        return _failed(exc.code, exc.description)
    except TokenError:
        return _failed("invalid-token", "invalid, unknown or already revoked token")
    return _json({"success": True}, 202)
