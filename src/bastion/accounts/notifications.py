"""Outgoing mail: verification links, reset links and security notifications.

Other apps call :func:`notify` (e.g. when a token is created). Mail leaves after the
surrounding transaction commits, and a mail failure never fails the user's request.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction

logger = logging.getLogger(__name__)

FOOTER = (
    "\n\n-- \nThis is an automatic message from {site}. If this was not you, sign in, change "
    "your password and review your account's security log at once."
)


def site_url(request=None) -> str:
    """The index's public URL without a trailing slash, for links in mail."""
    if settings.BASE_URL:
        return settings.BASE_URL.rstrip("/")
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return f"http://{settings.HOST}:{settings.PORT}"


def _deliver(recipients: list[str], subject: str, body: str) -> None:
    # One message per recipient, so that no one sees the others' addresses.
    for address in sorted(set(recipients)):
        message = EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL,
                               to=[address])
        try:
            message.send()
        except Exception:  # a broken mail server must not break the request that sent mail
            logger.exception("could not send mail %r", subject)
            continue
    if getattr(settings, "EMAIL_FILE_PATH", None) and "filebased" in settings.EMAIL_BACKEND:
        logger.info("mail %r written to the outbox %s (no SMTP server configured)", subject,
                    settings.EMAIL_FILE_PATH)


def send(recipients: list[str] | str, subject: str, body: str) -> None:
    """Send one plain-text mail once the current transaction (if any) has committed."""
    if isinstance(recipients, str):
        recipients = [recipients]
    recipients = [r for r in recipients if r]
    if not recipients:
        return
    subject = f"[Bastion] {subject}"
    transaction.on_commit(lambda: _deliver(recipients, subject, body))


def notify(user, subject: str, body: str, *, request=None, also: list[str] | None = None) -> None:
    """A security notification to the account's primary address (and ``also``)."""
    text = f"Hello {user.username},\n\n{body.strip()}" + FOOTER.format(site=site_url(request))
    send([user.email, *(also or [])], subject, text)
