from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """An account. Admins are ``is_superuser``; email verification and 2FA live beside it.

    ``email`` is the primary address; further addresses are :class:`EmailAddress` rows.
    """

    email = models.EmailField(unique=True)
    email_verified = models.BooleanField(default=False)
    # The WebAuthn user handle: random, so a passkey reveals nothing about the account id.
    webauthn_handle = models.CharField(max_length=64, unique=True, null=True, blank=True)

    class Meta:
        db_table = "accounts_user"

    def __str__(self) -> str:
        return self.username


class EmailAddress(models.Model):
    """A secondary address. Primary and secondary addresses are unique across both tables."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="extra_emails")
    email = models.EmailField(unique=True)
    verified = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "accounts_email_address"
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return self.email


class TOTPDevice(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="totp_devices")
    name = models.CharField(max_length=64)
    secret = models.CharField(max_length=64)  # base32, 160 bits
    # The highest time step ever accepted: any code for this step or an earlier one is a replay.
    last_used_step = models.BigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_totp_device"
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"


class WebAuthnCredential(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="webauthn_credentials")
    name = models.CharField(max_length=64)
    credential_id = models.CharField(max_length=1400, unique=True)  # base64url
    public_key = models.BinaryField()
    sign_count = models.BigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    # Registered with user verification (PIN or biometric): only such keys may be passkeys.
    user_verified = models.BooleanField(default=False)
    # The owner opted in to signing in with this key alone, without a password.
    passwordless = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_webauthn_credential"
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"


class RecoveryCode(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="recovery_codes")
    # sha256 of the normalised code: 64 random bits need no slow hash, and an index finds it.
    code_hash = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)
    used = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_recovery_code"
        constraints = [models.UniqueConstraint(fields=["user", "code_hash"],
                                               name="recovery_code_unique_per_user")]


class UserSession(models.Model):
    """Which server-side sessions belong to which user, so they can be listed and ended."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="web_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    ip_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    class Meta:
        db_table = "accounts_user_session"
        ordering = ["-created"]


class LoginFailure(models.Model):
    """One failed sign-in or second-factor attempt, counted by the database throttle."""

    key = models.CharField(max_length=128)
    time = models.DateTimeField()

    class Meta:
        db_table = "accounts_login_failure"
        indexes = [models.Index(fields=["key", "time"], name="login_failure_key_time")]
