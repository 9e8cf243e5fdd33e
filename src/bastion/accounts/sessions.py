"""Which sessions belong to whom: rotate keys on privilege changes, end the others.

Django keeps sessions in the database and already refuses a session whose stored password
hash no longer matches; the ``UserSession`` index lets us also delete them outright, list
them for the user, and do so the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.utils import timezone

from bastion.events.services import RequestInfo

from .models import UserSession


def bind(request, user) -> None:
    """Record the request's (new) session as the user's. Call right after login()."""
    if not request.session.session_key:
        request.session.save()
    info = RequestInfo.from_request(request)
    UserSession.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={"user": user, "ip_address": info.ip_address, "user_agent": info.user_agent})


def rotate(request) -> None:
    """A new session id for the same session data, after a change of privilege."""
    old = request.session.session_key
    request.session.cycle_key()
    new = request.session.session_key
    if old and new:
        UserSession.objects.filter(session_key=old).update(session_key=new)


def forget(request) -> None:
    """Drop the index entry of the request's session (before logout flushes it)."""
    key = request.session.session_key
    if key:
        UserSession.objects.filter(session_key=key).delete()


def end_sessions(user, *, keep_key: str | None = None) -> int:
    """Delete every session of ``user`` except ``keep_key``; return how many were live."""
    entries = UserSession.objects.filter(user=user)
    if keep_key:
        entries = entries.exclude(session_key=keep_key)
    keys = list(entries.values_list("session_key", flat=True))
    ended, _ = Session.objects.filter(session_key__in=keys).delete()
    UserSession.objects.filter(session_key__in=keys).delete()
    return ended


def live_sessions(user):
    live = Session.objects.filter(expire_date__gt=timezone.now()).values("session_key")
    UserSession.objects.filter(user=user).exclude(session_key__in=live).delete()
    return list(UserSession.objects.filter(user=user))
