from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """An account. Admins are ``is_superuser``; email verification and 2FA live beside it."""

    email = models.EmailField(unique=True)
    email_verified = models.BooleanField(default=False)

    class Meta:
        db_table = "accounts_user"

    def __str__(self) -> str:
        return self.username
