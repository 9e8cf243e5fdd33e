"""What the inventory found inside each stored file, and the data it is judged against."""

from django.conf import settings
from django.db import models


class FileInventory(models.Model):
    """The shared libraries of one stored file (wheels; an sdist is recorded as skipped).

    ``libraries``: the core's ``nativelibs.Library`` fields as dicts (path, format, size,
    soname, needed, versions: [{library, version, evidence}], note), bounded by its limits.
    """

    file = models.OneToOneField("packaging.File", on_delete=models.CASCADE,
                                related_name="inventory")
    created = models.DateTimeField()
    status = models.CharField(max_length=10)  # "done", "skipped" (no wheel), "error"
    libraries = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=300, blank=True)
    seconds = models.FloatField(default=0)

    class Meta:
        db_table = "inventory_file_inventory"


class EmbeddedSbom(models.Model):
    """A PEP 770 SBOM the wheel carries under ``.dist-info/sboms/``, kept as uploaded."""

    inventory = models.ForeignKey(FileInventory, on_delete=models.CASCADE,
                                  related_name="sboms")
    name = models.CharField(max_length=255)
    content = models.BinaryField()

    class Meta:
        db_table = "inventory_embedded_sbom"
        constraints = [models.UniqueConstraint(fields=["inventory", "name"],
                                               name="inventory_sbom_unique_name")]
        ordering = ["name"]


class CodeCheck(models.Model):
    """Bandit's findings for one release (run once, on the release's first file).

    ``findings``: [{test_id, test_name, severity, confidence, file, line, text}].
    """

    release = models.OneToOneField("packaging.Release", on_delete=models.CASCADE,
                                   related_name="code_check")
    filename = models.CharField(max_length=255)
    created = models.DateTimeField()
    tool_version = models.CharField(max_length=40)
    files = models.IntegerField(default=0)
    findings = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    seconds = models.FloatField(default=0)

    class Meta:
        db_table = "inventory_code_check"


class BundledLibraryData(models.Model):
    """One load of the known-vulnerable bundled-library data; the newest is in force (with
    none loaded, the file shipped in ``core/data`` is)."""

    loaded = models.DateTimeField()
    loaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    updated = models.CharField(max_length=10)   # the file's own date
    source = models.CharField(max_length=500, blank=True)
    entries = models.IntegerField()
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField()

    class Meta:
        db_table = "inventory_bundled_library_data"
        ordering = ["-loaded", "-pk"]
