"""Reading credentials from HTTP requests, as pip, uv, twine and friends send them."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponse

from bastion.events.services import RequestInfo
from bastion.packaging import access

from .services import Identity, TokenError, verify

TOKEN_USERNAME = "__token__"  # nosec B105 # PyPI's public user name for tokens
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


class Reader:
    """Who is reading and what they may read, worked out once per request.

    On a private index that is the token's user, limited by the token's project caveats and
    by what the user may read right now (``packaging.access``): a token never reads more
    than its owner may at the time of use.
    """

    def __init__(self, user=None, scope: frozenset[str] | None = None, *, public: bool = False):
        self.user = user
        self.scope = scope
        self.public = public
        self._everything: bool | None = None

    def _reads_everything(self) -> bool:
        if self._everything is None:
            self._everything = access.reads_everything(self.user)
        return self._everything

    def may_read(self, project: str | None) -> bool:
        """Whether the project with this normalized name may be read (None: no project)."""
        if self.public:
            return True
        if project is None or (self.scope is not None and project not in self.scope):
            return False
        return self._reads_everything() or access.reads_as_member(self.user, project)

    def listing(self) -> set[str] | None:
        """The normalized names an index listing may show; None for all of them."""
        if self.public:
            return None
        names = None if self._reads_everything() else access.readable_project_names(self.user)
        if self.scope is None:
            return names
        return set(self.scope) if names is None else names & self.scope


EVERYONE = Reader(public=True)


def read_access(request) -> Reader | HttpResponse:
    """The request's Reader, or the 401 response to return when its credentials fail.

    Under the ``public`` policy everyone reads. Under ``authenticated`` a read needs a valid
    token with read permission; which projects it then reaches is the Reader's to say, and a
    project it may not read is answered as one that does not exist.
    """
    if settings.READ_POLICY == "public":
        return EVERYONE
    try:
        identity = verify(presented_token(request), permission="read", any_project=True,
                          info=RequestInfo.from_request(request))
    except TokenError as exc:
        return unauthorized(exc.message)
    return Reader(identity.user, identity.scope)
