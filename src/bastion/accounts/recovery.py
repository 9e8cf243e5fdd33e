"""Recovery codes: ten single-use codes, shown once, stored as sha256 digests."""

from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from .models import RecoveryCode

COUNT = 10
CODE_BYTES = 8  # 64 random bits each: brute force is out of reach, so a fast hash will do


def normalize(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch not in " -\t")


def _digest(code: str) -> str:
    return hashlib.sha256(normalize(code).encode()).hexdigest()


def _display(raw: str) -> str:
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def generate(user) -> list[str]:
    """Replace the user's codes with fresh ones and return them (the only time they exist)."""
    codes = [secrets.token_hex(CODE_BYTES) for _ in range(COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(RecoveryCode(user=user, code_hash=_digest(c)) for c in codes)
    return [_display(c) for c in codes]


def use(user, code: str) -> bool:
    normalized = normalize(code)
    if len(normalized) != CODE_BYTES * 2 or any(c not in "0123456789abcdef" for c in normalized):
        return False
    burned = RecoveryCode.objects.filter(user=user, code_hash=_digest(normalized),
                                         used__isnull=True).update(used=timezone.now())
    return burned == 1


def remaining(user) -> int:
    return RecoveryCode.objects.filter(user=user, used__isnull=True).count()


def as_text(username: str, site: str, codes: list[str]) -> str:
    """The codes as the text file the recovery-codes page offers for download.

    Built into the page itself (a data: link): the codes exist only in that one answer, so
    no second request could fetch them again.
    """
    when = timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    return (f"Recovery codes for {username} on {site}\n"
            f"Created {when}. Each code works once, if you lose your second factors.\n"
            "Keep this file somewhere safe and offline.\n\n" + "\n".join(codes) + "\n")
