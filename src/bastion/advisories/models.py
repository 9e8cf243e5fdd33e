"""Known vulnerabilities imported from OSV records, and the import runs that brought them."""

from django.conf import settings
from django.db import models


class Advisory(models.Model):
    """One OSV record as last imported (``record``: the JSON as published, bounded by
    ``core.osv.MAX_RECORD_BYTES``; served as is by the OSV API)."""

    osv_id = models.CharField(max_length=100, unique=True)
    modified = models.DateTimeField()
    published = models.DateTimeField(null=True, blank=True)
    withdrawn = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(blank=True)
    details = models.TextField(blank=True)
    aliases = models.JSONField(default=list, blank=True)
    # core.osv.LEVELS, or "" when the record gives no level.
    severity = models.CharField(max_length=10, blank=True)
    record = models.JSONField()
    imported = models.DateTimeField()

    class Meta:
        db_table = "advisories_advisory"
        ordering = ["-modified", "osv_id"]

    def __str__(self) -> str:
        return self.osv_id

    @property
    def malicious(self) -> bool:
        return self.osv_id.upper().startswith("MAL-")


class AffectedPackage(models.Model):
    """One PyPI package an advisory names: its ECOSYSTEM ranges and explicit versions."""

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="packages")
    normalized_name = models.CharField(max_length=200, db_index=True)
    ranges = models.JSONField(default=list, blank=True)  # [[[kind, version], ...], ...]
    versions = models.JSONField(default=list, blank=True)
    fixed_in = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "advisories_affected_package"


class ImportRun(models.Model):
    """One run of ``import_records``: where from (without credentials) and what it changed."""

    source = models.CharField(max_length=500)
    started = models.DateTimeField()
    finished = models.DateTimeField(null=True, blank=True)
    added = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    withdrawn = models.IntegerField(default=0)
    invalid = models.IntegerField(default=0)
    # The first few refused records, one line each, for the console.
    errors = models.JSONField(default=list, blank=True)
    failure = models.TextField(blank=True)  # why the whole run failed, if it did

    class Meta:
        db_table = "advisories_import_run"
        ordering = ["-started"]


class AdvisoryState(models.Model):
    """One row: ``revision`` advances whenever an import changes any advisory, so that pages
    showing advisories (JSON API, views hiding vulnerable releases) are rendered again."""

    revision = models.BigIntegerField(default=0)

    class Meta:
        db_table = "advisories_state"


class DependencyDigest(models.Model):
    """One week's digest of vulnerable dependencies mailed to one account. Written in the
    transaction that queues the mail: a week's row exists exactly when its mail was queued,
    so the digest goes out once per week, whatever crashes or runs twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    week = models.CharField(max_length=8)  # ISO week, "2026-W49" (weeks begin Monday, UTC)
    sent = models.DateTimeField()
    # What it reported, "project|requirement|id" each: the next digest marks what is new.
    alerts = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "advisories_dependency_digest"
        constraints = [models.UniqueConstraint(fields=["user", "week"],
                                               name="one_digest_per_user_and_week")]
