from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class SignupStatus(models.TextChoices):
    ACTIVE = "active"
    # Signed up under BASTION_SIGNUP=approval and not yet approved: may sign in and set up
    # a second factor, nothing more.
    PENDING = "pending"
    # Refused by an administrator; the account is also disabled (is_active is False).
    REJECTED = "rejected"


class User(AbstractUser):
    """An account. Admins are ``is_superuser``; email verification and 2FA live beside it.

    ``email`` is the primary address; further addresses are :class:`EmailAddress` rows.
    An account alone grants nothing on a private index: reading everything and creating
    projects are :class:`AccessGrant` rows an administrator (or the sign-up policy) gives.
    """

    email = models.EmailField(unique=True)
    email_verified = models.BooleanField(default=False)
    signup_status = models.CharField(max_length=10, choices=SignupStatus.choices,
                                     default=SignupStatus.ACTIVE)
    # The WebAuthn user handle: random, so a passkey reveals nothing about the account id.
    webauthn_handle = models.CharField(max_length=64, unique=True, null=True, blank=True)
    # The pages' and mail's language (a code of settings.LANGUAGES); empty: the browser's
    # Accept-Language for pages, English for mail.
    language = models.CharField(max_length=16, blank=True, default="")
    # A weekly mail of the dependencies of this account's projects that known vulnerabilities
    # affect (bastion.advisories.digest). Off until the user asks: it is news, not security
    # notification, and the project pages show the same alerts.
    dependency_digest = models.BooleanField(default=False)

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


class Permission(models.TextChoices):
    """What an :class:`AccessGrant` allows, index-wide."""

    # Read every project of a private index (BASTION_READ_POLICY=authenticated). Without it an
    # account reads only the projects it is a member of.
    READ = "read"
    # Register new project names when BASTION_PROJECT_CREATORS=listed.
    CREATE_PROJECTS = "create_projects"
    # A trusted observer: their malware reports count for the auto-quarantine rules, and they
    # may report through the observations API (packaging.reports).
    OBSERVE = "observe"


class AccessGrant(models.Model):
    """One index-wide permission given to one subject.

    A row rather than a flag on the user, so that organisations and teams can become subjects
    later (a nullable foreign key each, with the check widened to "exactly one subject")
    without the policy code changing shape: it asks "is there a grant reaching this user".
    """

    permission = models.CharField(max_length=20, choices=Permission.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="access_grants", null=True)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   related_name="+", null=True, blank=True)
    # How it came: "admin" (a command or the console), "invitation", "approval" or "domain".
    source = models.CharField(max_length=20)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "accounts_access_grant"
        constraints = [
            models.UniqueConstraint(fields=["permission", "user"], name="one_grant_per_user"),
            models.CheckConstraint(condition=models.Q(user__isnull=False),
                                   name="grant_has_a_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.permission} for {self.user}"


class InvitationKind(models.TextChoices):
    # An administrator's: may carry index-wide read, and stands in for approval.
    ADMIN = "admin"
    # A project Owner's: an account and a role invitation to that project, nothing index-wide.
    PROJECT = "project"


class SignupInvitationStatus(models.TextChoices):
    PENDING = "pending"
    USED = "used"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class SignupInvitation(models.Model):
    """A single-use link, mailed to ``email``, that lets its holder open an account there.

    Only the sha256 of the link's random token is kept, so a copy of the table opens no
    account. Several may be pending for one address (two Owners inviting the same person);
    the first one used spends them all, since the address then belongs to an account.
    """

    email = models.EmailField(db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=10, choices=InvitationKind.choices)
    inviter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                related_name="+", null=True, blank=True)
    grants_read = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=SignupInvitationStatus.choices,
                              default=SignupInvitationStatus.PENDING)
    created = models.DateTimeField()
    expires = models.DateTimeField()
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                related_name="+", null=True, blank=True)
    responded = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_signup_invitation"
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.email} ({self.kind}, {self.status})"


class RecoveryStatus(models.TextChoices):
    REQUESTED = "requested"  # waits for a second administrator's approval
    APPROVED = "approved"    # may be completed
    COMPLETED = "completed"  # factors removed, link mailed (``link_used`` once the user used it)
    CANCELLED = "cancelled"


class AccountRecovery(models.Model):
    """One recovery of an account whose owner lost every second factor.

    Only the sha256 of the mailed link's token is kept. At most one recovery per account is
    open (requested or approved) at a time.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="recoveries")
    status = models.CharField(max_length=10, choices=RecoveryStatus.choices,
                              default=RecoveryStatus.REQUESTED)
    # How the person's identity was checked, in the requesting administrator's words.
    identity_note = models.TextField(max_length=1000)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     related_name="+", null=True)
    requested = models.DateTimeField()
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    related_name="+", null=True, blank=True)
    approved = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     related_name="+", null=True, blank=True)
    completed = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     related_name="+", null=True, blank=True)
    cancelled = models.DateTimeField(null=True, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    link_expires = models.DateTimeField(null=True, blank=True)
    link_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_account_recovery"
        ordering = ["-requested", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], name="one_open_recovery_per_user",
                condition=models.Q(status__in=["requested", "approved"])),
        ]

    def __str__(self) -> str:
        return f"recovery #{self.pk} of {self.user} ({self.status})"

