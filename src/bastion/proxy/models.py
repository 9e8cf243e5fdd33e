"""Upstream indexes, what Bastion cached of them, and the views that filter the whole index."""

from django.conf import settings
from django.db import models


class Upstream(models.Model):
    """An index names not found locally may be served from (PyPI, a PyTorch index, ...)."""

    name = models.SlugField(max_length=50, unique=True)
    # The simple API's base URL, ending with "/": https://pypi.org/simple/
    url = models.URLField(max_length=500)
    # Lower first; the first upstream whose patterns match and that has the name serves it.
    priority = models.IntegerField(default=100)
    # fnmatch patterns on normalized names ("torch*"); empty: every name.
    include = models.JSONField(default=list, blank=True)
    # Hosts file URLs may point to besides the index's own (PyPI's files.pythonhosted.org).
    file_hosts = models.JSONField(default=list, blank=True)
    username = models.CharField(max_length=200, blank=True)
    # Sent only to this upstream's origin; never shown, logged or exported.
    password = models.CharField(max_length=500, blank=True)
    # Seconds a fetched page is used before it is revalidated; None: settings.PROXY_PAGE_TTL.
    page_ttl = models.IntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField()
    updated = models.DateTimeField()

    class Meta:
        db_table = "proxy_upstream"
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return self.name


class UpstreamProject(models.Model):
    """One upstream's page for one name, as last fetched (or its 404)."""

    upstream = models.ForeignKey(Upstream, on_delete=models.CASCADE, related_name="projects")
    normalized_name = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    found = models.BooleanField(default=True)  # False: the upstream answered 404
    fetched = models.DateTimeField()  # the last successful contact (200, 304 or 404)
    checked = models.DateTimeField()  # the last attempt, successful or not
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    # Advances whenever what the page lists changes: pages rendered at an older one are stale.
    serial = models.BigIntegerField(default=0)
    status = models.CharField(max_length=20, default="active")  # PEP 792
    status_reason = models.TextField(blank=True)
    versions = models.JSONField(default=list, blank=True)  # PEP 700, as the upstream lists them
    # True when the upstream publishes no upload-time: files are aged from first_seen.
    upload_times_estimated = models.BooleanField(default=False)
    # The files the page lists now, as one document in version then filename order (see
    # pages.listing_entry): a page of thousands of files is one write and one read, and a
    # file gets its UpstreamFile row only once someone asks for it.
    listing = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "proxy_upstream_project"
        constraints = [models.UniqueConstraint(fields=["upstream", "normalized_name"],
                                               name="one_page_per_upstream_name")]
        indexes = [models.Index(fields=["normalized_name"])]


class UpstreamFile(models.Model):
    """One file an upstream page lists, from the first request for it (or its metadata) on;
    its bytes are kept once someone downloads it. Its listing columns follow the page."""

    project = models.ForeignKey(UpstreamProject, on_delete=models.CASCADE, related_name="files")
    filename = models.CharField(max_length=255)
    version = models.CharField(max_length=100)
    url = models.TextField()  # absolute upstream URL, on an allowed host
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField(null=True, blank=True)
    upload_time = models.DateTimeField(null=True, blank=True)  # as the upstream published it
    first_seen = models.DateTimeField()
    requires_python = models.TextField(blank=True)
    yanked = models.BooleanField(default=False)
    yanked_reason = models.TextField(blank=True)
    # PEP 658/714: the upstream serves <url>.metadata; its sha256 when the page gave one.
    has_metadata = models.BooleanField(default=False)
    metadata_sha256 = models.CharField(max_length=64, blank=True)
    listed = models.BooleanField(default=True)  # False: gone from the upstream's page
    # Once fetched: where the verified bytes are kept.
    stored_path = models.CharField(max_length=400, blank=True)
    blake2_256 = models.CharField(max_length=64, blank=True)
    fetched = models.DateTimeField(null=True, blank=True)
    # Claimed by the one request fetching it (cross-process single flight).
    fetching_since = models.DateTimeField(null=True, blank=True)
    metadata_stored_path = models.CharField(max_length=400, blank=True)
    # What the license policy reads once the metadata was fetched; None: unknown yet.
    license_expression = models.TextField(null=True, blank=True)
    classifiers = models.JSONField(null=True, blank=True)
    last_downloaded = models.DateTimeField(null=True, blank=True)
    downloads = models.BigIntegerField(default=0)
    # The malware scanner's verdict on the fetched bytes (empty: not scanned yet); the view's
    # policy (hide_scanned) decides what it hides. Written only by proxy.scans.
    scan_verdict = models.CharField(max_length=20, blank=True, default="")
    # PEP 740: the upstream's provenance object of the file ("": the page names none), and
    # what checking it gave (proxy.provenance, the only writer of the two below): "" not
    # checked yet, "verified" (provenance_identity: who built it), "refused" (it did not
    # verify; UpstreamProvenance.reason says why). The download path reads them from the
    # row it has anyway: checking a view's pins costs no query of its own.
    provenance_url = models.TextField(blank=True, default="")
    provenance_state = models.CharField(max_length=20, blank=True, default="")
    provenance_identity = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        db_table = "proxy_upstream_file"
        constraints = [models.UniqueConstraint(fields=["project", "filename"],
                                               name="one_row_per_upstream_file")]
        indexes = [models.Index(fields=["last_downloaded"])]


class UpstreamProvenance(models.Model):
    """The PEP 740 provenance object of an upstream file, as fetched and checked."""

    file = models.OneToOneField(UpstreamFile, on_delete=models.CASCADE, primary_key=True,
                                related_name="provenance")
    sha256 = models.CharField(max_length=64)  # the file's, which the attestations bind
    verified = models.BooleanField(default=False)
    reason = models.TextField(blank=True)  # why it did not verify
    # The PEP 740 publisher object the verified certificate names.
    publisher = models.JSONField(default=dict, blank=True)
    kind = models.CharField(max_length=50, blank=True)  # GitHub, GitLab, Google, ...
    repository_url = models.CharField(max_length=500, blank=True)
    workflow = models.CharField(max_length=500, blank=True)
    # What pins compare: the repository's URL, or the signer (a service account) without one.
    identity = models.CharField(max_length=500, blank=True)
    log_index = models.BigIntegerField(null=True, blank=True)
    # The provenance object as verified (served by the Integrity API).
    document = models.JSONField(default=dict, blank=True)
    checked = models.DateTimeField()

    class Meta:
        db_table = "proxy_upstream_provenance"


class View(models.Model):
    """A named, filtered face of the whole index at /views/<name>/ (``default`` at the root)."""

    name = models.SlugField(max_length=50, unique=True)
    description = models.TextField(blank=True)
    policy = models.JSONField(default=dict, blank=True)  # core.policy.Policy.to_json()
    # Advances with every change to the view or its exemptions.
    revision = models.BigIntegerField(default=1)
    created = models.DateTimeField()
    updated = models.DateTimeField()

    class Meta:
        db_table = "proxy_view"

    def __str__(self) -> str:
        return self.name


class Exemption(models.Model):
    """Lets one project (or one version of it) through a view's time-based holds early."""

    view = models.ForeignKey(View, on_delete=models.CASCADE, related_name="exemptions")
    normalized_name = models.CharField(max_length=200)
    version = models.CharField(max_length=100, blank=True)  # empty: every version
    reason = models.TextField()
    expires = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField()

    class Meta:
        db_table = "proxy_exemption"


class PublisherPin(models.Model):
    """Who must have built a proxied project's files for a view to list them: pinned by an
    administrator, or by the view itself on first use (``pin_publishers: tofu``)."""

    view = models.ForeignKey(View, on_delete=models.CASCADE, related_name="pins")
    normalized_name = models.CharField(max_length=200)
    identity = models.CharField(max_length=500)
    source = models.CharField(max_length=10)  # "admin" or "tofu"
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField()

    class Meta:
        db_table = "proxy_publisher_pin"
        constraints = [models.UniqueConstraint(fields=["view", "normalized_name"],
                                               name="one_pin_per_view_project")]


class PolicyBlock(models.Model):
    """A file a view kept from a client, for the admins' list of recent blocks."""

    view_name = models.CharField(max_length=50)
    normalized_name = models.CharField(max_length=200)
    filename = models.CharField(max_length=255)
    version = models.CharField(max_length=100)
    reason = models.TextField()
    # True: a client asked for the file itself (403); False: a listing hid it.
    direct = models.BooleanField(default=False)
    first = models.DateTimeField()
    last = models.DateTimeField(db_index=True)
    count = models.BigIntegerField(default=1)

    class Meta:
        db_table = "proxy_policy_block"
        constraints = [models.UniqueConstraint(fields=["view_name", "filename"],
                                               name="one_block_row_per_view_file")]


class NameHoldStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class NameHold(models.Model):
    """A new local project under a name an upstream serves, waiting for an administrator."""

    normalized_name = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=200)
    upstream_name = models.CharField(max_length=50)
    status = models.CharField(max_length=20, choices=NameHoldStatus.choices,
                              default=NameHoldStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    requested = models.DateTimeField()
    attempts = models.IntegerField(default=1)
    last_attempt = models.DateTimeField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        db_table = "proxy_name_hold"
