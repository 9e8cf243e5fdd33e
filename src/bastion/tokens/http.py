"""Reading credentials from HTTP requests, as pip, uv, twine and friends send them."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponse

from bastion.events.services import RequestInfo

from .services import Identity, TokenError, verify

TOKEN_USERNAME = "__token__"
PASSWORDS_REFUSED = (
    "Username/password authentication is not supported. "
    "Use an API token with the username __token__."
)


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str

    @property
    def is_token(self) -> bool:
        return self.username == TOKEN_USERNAME


def credentials(request) -> Credentials | None:
    """Basic (``__token__``:token), ``Bearer <token>`` or ``token <token>``; None if absent."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            # Unreadable credentials are an invalid token, not a refused password.
            return Credentials(TOKEN_USERNAME, "")
        username, _, secret = decoded.partition(":")
        return Credentials(username, secret)
    if scheme in {"bearer", "token"} and value:
        return Credentials(TOKEN_USERNAME, value)
    return None


AUTH_REQUIRED = "Authentication required. Use an API token with the username __token__."


def presented_token(request, *, missing: str = AUTH_REQUIRED) -> str:
    """The API token the request carries, or TokenError saying why there is none.

    A token sent under the user's own name instead of ``__token__`` is taken the way it
    was meant; any other password is refused with a pointer to tokens.
    """
    creds = credentials(request)
    if creds is None:
        raise TokenError(missing)
    if not creds.secret:  # unreadable Basic credentials or an empty token
        raise TokenError()
    if not creds.is_token and not creds.secret.startswith(settings.TOKEN_PREFIX):
        raise TokenError(PASSWORDS_REFUSED)
    return creds.secret


def authenticate(request, *, permission: str, project: str | None = None,
                 version: str | None = None, found=None) -> Identity:
    """Verify the request's token for one action or raise TokenError."""
    return verify(presented_token(request), permission=permission, project=project,
                  version=version, info=RequestInfo.from_request(request), found=found)


def unauthorized(message: str) -> HttpResponse:
    """401 with a Basic challenge, so pip's and uv's prompts and keyring lookups kick in."""
    response = HttpResponse(message + "\n", status=401, content_type="text/plain; charset=utf-8")
    response["WWW-Authenticate"] = 'Basic realm="Bastion", charset="UTF-8"'
    response["Cache-Control"] = "no-store"
    return response


def authorize_read(request, project: str | None = None) -> HttpResponse | None:
    """None when the read may go ahead, else the 401 response to return.

    Under the ``public`` policy every read is allowed. Under ``authenticated`` every read
    needs a valid token that may read ``project`` (or the whole index when None).
    """
    if settings.READ_POLICY == "public":
        return None
    try:
        authenticate(request, permission="read", project=project)
    except TokenError as exc:
        return unauthorized(exc.message)
    return None
