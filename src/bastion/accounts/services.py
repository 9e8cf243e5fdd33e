from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from bastion.events import tags
from bastion.events.services import RequestInfo, record


def create_user(username: str, email: str, password: str | None = None, *, is_admin: bool = False,
                email_verified: bool = False, info: RequestInfo | None = None, actor=None):
    """Create an account. Without a password the account can only use tokens until one is set."""
    User = get_user_model()
    with transaction.atomic():
        user = User(username=username, email=email, is_superuser=is_admin, is_staff=is_admin,
                    email_verified=email_verified)
        if password:
            validate_password(password, user)
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        record(tags.ACCOUNT_CREATE, info=info, actor=actor or user, user=user,
               additional={"admin": is_admin})
    return user
