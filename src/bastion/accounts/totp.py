"""Time-based one-time passwords (RFC 6238): SHA-1, 6 digits, 30 s steps, 160-bit secrets."""

from __future__ import annotations

import hmac
import time

import pyotp
from django.conf import settings
from django.utils import timezone

from .models import TOTPDevice

STEP_SECONDS = 30
# The current step and one on either side, for clocks that drift a little.
WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32(32)  # 32 base32 characters = 20 bytes


def normalize(code: str) -> str:
    return "".join((code or "").split()).replace("-", "")


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username,
                                               issuer_name=settings.WEBAUTHN_RP_NAME)


def qr_data_uri(uri: str) -> str:
    """The provisioning URI as an SVG QR code in a data: URI (allowed by img-src)."""
    # Imported here: only enrolment shows a QR code, and segno is large for what it does here.
    import segno

    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2, dark="#111",
                                                   light="#fff")


def matching_step(secret: str, code: str, *, after: int = 0, now: float | None = None) -> int | None:
    """The time step whose code equals ``code``, newer than ``after``; else None."""
    code = normalize(code)
    if len(code) != 6 or not code.isdigit():
        return None
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    totp = pyotp.TOTP(secret)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        # Every candidate is compared, so timing does not reveal which step matched.
        if hmac.compare_digest(totp.generate_otp(step), code) and step > after and found is None:
            found = step
    return found


def verify(user, code: str, *, now: float | None = None) -> TOTPDevice | None:
    """The device that accepts ``code``; a code (or an older one) is never accepted twice."""
    for device in TOTPDevice.objects.filter(user=user):
        step = matching_step(device.secret, code, after=device.last_used_step, now=now)
        if step is None:
            continue
        # Conditional update: of two concurrent submissions of one code only one wins.
        claimed = TOTPDevice.objects.filter(pk=device.pk, last_used_step__lt=step).update(
            last_used_step=step, last_used=timezone.now())
        if claimed:
            return device
    return None
