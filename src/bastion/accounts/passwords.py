"""Password strength: zxcvbn's estimate, with its advice shown to the user.

Django's CommonPasswordValidator (configured beside this one) checks the 20,000 most common
passwords from a list that ships with Django, so no password ever leaves the server.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

# zxcvbn's cost grows with length; beyond this the estimate adds nothing.
MAX_CHECKED_LENGTH = 100
MAX_PASSWORD_LENGTH = 4096


def strength(password: str, user_inputs: list[str] | None = None) -> dict:
    """zxcvbn's score (0-4) and its feedback for ``password``."""
    # Imported here: its dictionaries take a large share of a server process's memory, and
    # only the pages that set a password use it.
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:MAX_CHECKED_LENGTH], user_inputs=[i for i in user_inputs or [] if i])
    return {"score": result["score"], "warning": result["feedback"].get("warning", ""),
            "suggestions": list(result["feedback"].get("suggestions", []))}


class StrengthValidator:
    def __init__(self, min_score: int = 2):
        self.min_score = min_score

    def validate(self, password, user=None):
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValidationError(f"Passwords may be at most {MAX_PASSWORD_LENGTH} characters.",
                                  code="password_too_long")
        inputs = [getattr(user, "username", ""), getattr(user, "email", "")] if user else []
        result = strength(password, inputs)
        if result["score"] >= self.min_score:
            return
        advice = " ".join(filter(None, [result["warning"], *result["suggestions"]]))
        message = "This password is too easy to guess."
        raise ValidationError(f"{message} {advice}".strip(), code="password_too_weak")

    def get_help_text(self):
        return "Your password must be hard to guess: long and not made of common words or patterns."
