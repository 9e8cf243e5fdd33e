"""HTTP endpoints for tokens that work without a browser session: leak reports and
self-revocation. Both are called by machines, so they answer JSON and skip CSRF (no cookie
is involved in either)."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from bastion.events.services import RequestInfo

from . import disclosure
from .http import presented_token
from .services import TokenError


def _refuse(message: str, status: int) -> JsonResponse:
    response = JsonResponse({"message": message}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _method_not_allowed() -> JsonResponse:
    response = _refuse("Use POST.", 405)
    response["Allow"] = "POST"
    return response


@csrf_exempt
def disclose_token(request):
    """``POST /_/secrets/disclose-token``: a secret scanner reports leaked tokens."""
    if request.method != "POST":
        return _method_not_allowed()
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > disclosure.MAX_REPORT_BYTES:
        return _refuse("The report is too large.", 413)
    try:
        answers = disclosure.handle_report(
            request.body,
            key_identifier=request.headers.get("Github-Public-Key-Identifier", ""),
            signature=request.headers.get("Github-Public-Key-Signature", ""),
            info=RequestInfo.from_request(request),
        )
    except disclosure.DisclosureError as exc:
        return _refuse(exc.message, exc.status)
    response = JsonResponse(answers, safe=False)
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
def revoke_self(request):
    """``POST /_/tokens/revoke-self`` with the token as Basic (``__token__``) or Bearer auth:
    the token revokes itself."""
    if request.method != "POST":
        return _method_not_allowed()
    try:
        row = disclosure.revoke_presented(presented_token(request),
                                          info=RequestInfo.from_request(request))
    except TokenError:
        return _refuse("Invalid, unknown or already revoked API token.", 403)
    response = JsonResponse({"revoked": True, "token_id": str(row.id),
                             "message": "The token has been revoked."})
    response["Cache-Control"] = "no-store"
    return response
