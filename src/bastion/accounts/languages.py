"""Which language a person reads: their setting, else their browser's, else English.

Only the pages and the mail are translated. The package-index APIs (/simple/, /pypi/…/json,
/packages/, /legacy/) always answer in English: pip, uv and twine print those messages in
build logs and bug reports, which must read the same for everyone.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation

DEFAULT = "en"


def codes() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def choices() -> list[tuple[str, str]]:
    """(code, name) pairs, each name in its own language (as settings.LANGUAGES spells it)."""
    return list(settings.LANGUAGES)


def of_user(user) -> str:
    """The language a user chose, or English: mail has no browser to ask."""
    return of_user_code(getattr(user, "language", "") or "")


def of_user_code(code: str) -> str:
    return code if code in codes() else DEFAULT


def for_request(request) -> str:
    """The signed-in user's chosen language, else Django's choice from the request (its
    language cookie, then Accept-Language), else English."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        code = getattr(user, "language", "")
        if code in codes():
            return code
    return translation.get_language_from_request(request)


def override_for(user):
    """A context manager: what is translated inside it is in ``user``'s language."""
    return translation.override(of_user(user))
