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
    # None for a token minted by a trusted publisher exchange (``publisher_id`` set instead).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_tokens", null=True, blank=True)
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
    # Minted for a CI run by trusted publishing: which publishers (opaque to this app,
    # ",12," per publisher) and the run's identity, recorded with every upload it makes.
    publisher_id = models.CharField(max_length=200, blank=True, db_index=True)
    publisher_claims = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "tokens_api_token"

    @property
    def project_scope(self) -> set[str] | None:
        """The normalized project names the token is limited to; None when it is user-wide."""
        return caveats.project_scope(self.caveats)

    @property
    def is_trusted_publisher(self) -> bool:
        return bool(self.publisher_id)

    def __str__(self) -> str:
        return f"{self.description or self.id} ({self.user or 'trusted publisher'})"
