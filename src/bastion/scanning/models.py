"""What the scanner (``core.scanning``) said about each file, and the rules admins turned off."""

from django.conf import settings
from django.db import models


class Verdict(models.TextChoices):
    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"
    ERROR = "error"


class ScanResult(models.Model):
    """One scan of one file's bytes: a local file (``file``) or an upstream one the proxy
    fetched (``upstream_file_id``). The newest row of a file is its verdict; older ones stay
    as the record of earlier rule sets."""

    sha256 = models.CharField(max_length=64, db_index=True)
    filename = models.CharField(max_length=255)
    file = models.ForeignKey("packaging.File", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="scans")
    # Not a foreign key: the proxy sits beside this app, and its cache rows come and go.
    upstream_file_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # The verdict the scanner gave, and the one in force once false positives are left out.
    scanned_verdict = models.CharField(max_length=20, choices=Verdict.choices)
    verdict = models.CharField(max_length=20, choices=Verdict.choices, db_index=True)
    score = models.FloatField(default=0.0)
    scanner_version = models.CharField(max_length=40)
    ruleset_version = models.CharField(max_length=40)
    seconds = models.FloatField(default=0.0)
    reason = models.CharField(max_length=500, blank=True)  # an error's, or a spent budget's
    disabled_rules = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(db_index=True)
    # An administrator's review of a local file's non-clean verdict: "released" or
    # "quarantined". Unreviewed non-clean results are the review queue; a rescan that gives
    # the same verdict keeps the review.
    decision = models.CharField(max_length=20, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "scanning_result"
        indexes = [models.Index(fields=["file", "-created"], name="scan_result_of_file")]

    def __str__(self) -> str:
        return f"{self.filename}: {self.verdict}"


class Severity(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Finding(models.Model):
    result = models.ForeignKey(ScanResult, on_delete=models.CASCADE, related_name="findings")
    rule = models.CharField(max_length=80)
    severity = models.CharField(max_length=20)
    path = models.CharField(max_length=500)  # the member of the archive
    line = models.IntegerField(default=0)
    message = models.CharField(max_length=500)
    weight = models.FloatField(default=0.0)
    false_positive = models.BooleanField(default=False)
    marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    marked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "scanning_finding"
        ordering = ["-weight", "path", "line", "id"]

    def __str__(self) -> str:
        return f"{self.rule} at {self.path}:{self.line}"


class DisabledRule(models.Model):
    """A scanner rule an administrator turned off: later scans do not apply it."""

    rule = models.CharField(max_length=80, unique=True)
    note = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        db_table = "scanning_disabled_rule"

    def __str__(self) -> str:
        return self.rule


class RescanRun(models.Model):
    """A rescan an administrator asked for in the console: the task worker runs it
    (``services.run_rescan``, the same ``rescan`` as ``bastion admin rescan``) and writes its
    progress here, for the console to show. The command line's rescans need no row: their
    progress bar is on the terminal."""

    project = models.CharField(max_length=200, blank=True)  # blank: every stored file
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    # Who asked, as the request showed them: the rescan's security event records it.
    ip_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created = models.DateTimeField(db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    total = models.IntegerField(default=0)
    done = models.IntegerField(default=0)
    verdicts = models.JSONField(default=dict, blank=True)
    failure = models.CharField(max_length=500, blank=True)

    class Meta:
        db_table = "scanning_rescan_run"
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"rescan {self.project or 'all'}: {self.done}/{self.total}"
