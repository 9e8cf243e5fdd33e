"""Trusted publishing: the OIDC issuers Bastion trusts, the publishers they vouch for, and
the token ids already exchanged."""

from django.conf import settings
from django.db import models


class IssuerKind(models.TextChoices):
    GITHUB = "github", "GitHub Actions"
    GITLAB = "gitlab", "GitLab CI/CD"
    GOOGLE = "google", "Google Cloud"
    CUSTOM = "custom", "Custom"


class Issuer(models.Model):
    """An OIDC issuer whose tokens may be exchanged (its ``iss``, exactly as in the tokens).

    GitHub, GitLab.com and Google exist from the first migration on; an administrator adds
    GitHub Enterprise Server, self-managed GitLab and custom issuers (Gitea, Buildkite, ...).
    """

    name = models.SlugField(max_length=50, unique=True)
    kind = models.CharField(max_length=10, choices=IssuerKind.choices)
    url = models.CharField(max_length=255, unique=True)
    # A JWKS document ({"keys": [...]}) used instead of discovery: air-gapped installs.
    jwks = models.TextField(blank=True)
    # Custom issuers: the claims that identify a publisher (each publisher gives their values).
    identifying_claims = models.JSONField(default=list, blank=True)
    created = models.DateTimeField()

    class Meta:
        db_table = "publishing_issuer"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Publisher(models.Model):
    """A CI workflow allowed to publish one project, or (pending) to create it.

    ``fields`` hold the kind's spec (``core.oidc.spec_of``), the ids learned on first use
    included; ``lookup`` is ``core.oidc.lookup_key`` of it, for finding the candidates of a run.
    """

    issuer = models.ForeignKey(Issuer, on_delete=models.PROTECT, related_name="publishers")
    project = models.ForeignKey("packaging.Project", null=True, blank=True,
                                on_delete=models.CASCADE, related_name="trusted_publishers")
    # Pending: no project yet; the first exchange creates it with pending_owner as Owner.
    pending_name = models.CharField(max_length=200, blank=True)
    pending_normalized_name = models.CharField(max_length=200, blank=True, db_index=True)
    pending_owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                      on_delete=models.CASCADE,
                                      related_name="pending_publishers")
    pending_expires = models.DateTimeField(null=True, blank=True)
    fields = models.JSONField(default=dict)
    lookup = models.CharField(max_length=600, db_index=True)
    created = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "publishing_publisher"
        constraints = [models.CheckConstraint(
            condition=(models.Q(project__isnull=False, pending_name="")
                       | models.Q(project__isnull=True, pending_owner__isnull=False)
                       & ~models.Q(pending_name="")),
            name="publisher_project_or_pending")]

    @property
    def is_pending(self) -> bool:
        return self.project_id is None

    @property
    def token_key(self) -> str:
        """How minted tokens name this publisher (``ApiToken.publisher_id`` holds ``,id,``
        for every publisher a token stands for)."""
        return f",{self.pk},"


class SeenJti(models.Model):
    """A token id already exchanged: refused again until the token would have expired."""

    issuer = models.ForeignKey(Issuer, on_delete=models.CASCADE, related_name="+")
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "publishing_seen_jti"
        constraints = [models.UniqueConstraint(fields=["issuer", "jti"], name="jti_once")]


class TrustedOnly(models.Model):
    """A project in trusted-publishing-only mode: API tokens cannot upload to it, only the
    tokens its trusted publishers' runs obtain."""

    project = models.OneToOneField("packaging.Project", on_delete=models.CASCADE,
                                   primary_key=True, related_name="trusted_only")
    since = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                           on_delete=models.SET_NULL, related_name="+")

    class Meta:
        db_table = "publishing_trusted_only"
