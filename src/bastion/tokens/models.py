import uuid

from django.conf import settings
from django.db import models

from bastion.core import caveats


class TokenPermission(models.TextChoices):
    UPLOAD = "upload"  # includes read
    READ = "read"


class ApiToken(models.Model):
    """An issued macaroon. The server keeps its identifier and caveats, never the token.

    The macaroon's root key is derived from the server secret and ``key_salt`` (see
    ``tokens.services``), so a copy of this table alone cannot mint or verify tokens.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    description = models.CharField(max_length=100, blank=True)
    key_salt = models.CharField(max_length=64)
    # sha256 of the token as issued, to match leak reports of the exact string.
    token_hash = models.CharField(max_length=64, unique=True)
    permission = models.CharField(max_length=10, choices=TokenPermission.choices,
                                  default=TokenPermission.UPLOAD)
    # The caveats embedded at issue time, re-checked server side on every use.
    caveats = models.JSONField(default=list)
    created = models.DateTimeField()
    expires = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.CharField(max_length=64, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        db_table = "tokens_api_token"

    @property
    def project_scope(self) -> set[str] | None:
        """The normalized project names the token is limited to; None when it is user-wide."""
        return caveats.project_scope(self.caveats)

    def __str__(self) -> str:
        return f"{self.description or self.id} ({self.user})"
