from django.conf import settings
from django.db import models


class ProjectStatus(models.TextChoices):
    """PEP 792 project status markers."""

    ACTIVE = "active"
    ARCHIVED = "archived"
    QUARANTINED = "quarantined"
    DEPRECATED = "deprecated"


class Project(models.Model):
    name = models.CharField(max_length=200)
    normalized_name = models.CharField(max_length=200, unique=True)
    # Separators removed and confusables folded; two projects may not share one.
    ultranormalized_name = models.CharField(max_length=200, db_index=True)
    created = models.DateTimeField()
    last_serial = models.BigIntegerField(default=0)
    status = models.CharField(max_length=20, choices=ProjectStatus.choices,
                              default=ProjectStatus.ACTIVE)
    status_reason = models.TextField(blank=True)
    upload_limit = models.BigIntegerField(null=True, blank=True,
                                          help_text="Per-file size limit in bytes (default from settings).")
    total_size_limit = models.BigIntegerField(null=True, blank=True,
                                              help_text="Project size limit in bytes (default from settings).")
    total_size = models.BigIntegerField(default=0)

    class Meta:
        db_table = "packaging_project"
        # The render reconciliation reads the projects changed past a serial, in this order.
        indexes = [models.Index(fields=["last_serial", "id"], name="project_serial_idx")]

    def __str__(self) -> str:
        return self.name


class RoleName(models.TextChoices):
    OWNER = "Owner"
    MAINTAINER = "Maintainer"


class Role(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="roles")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="roles")
    role_name = models.CharField(max_length=20, choices=RoleName.choices)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "packaging_role"
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_role_per_user")]


class Release(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="releases")
    version = models.CharField(max_length=100)
    canonical_version = models.CharField(max_length=100)
    is_prerelease = models.BooleanField(default=False)
    created = models.DateTimeField()
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    yanked = models.BooleanField(default=False)
    yanked_reason = models.TextField(blank=True)

    # Core metadata, taken from the first file of the release (the artifact, never the form).
    metadata_version = models.CharField(max_length=10)
    summary = models.CharField(max_length=512, blank=True)
    description = models.TextField(blank=True)
    description_content_type = models.CharField(max_length=200, blank=True)
    description_html = models.TextField(blank=True)
    keywords = models.TextField(blank=True)
    home_page = models.TextField(blank=True)
    download_url = models.TextField(blank=True)
    author = models.TextField(blank=True)
    author_email = models.TextField(blank=True)
    maintainer = models.TextField(blank=True)
    maintainer_email = models.TextField(blank=True)
    license = models.TextField(blank=True)
    license_expression = models.TextField(blank=True)
    requires_python = models.TextField(blank=True)
    classifiers = models.JSONField(default=list, blank=True)
    requires_dist = models.JSONField(default=list, blank=True)
    provides_extra = models.JSONField(default=list, blank=True)
    project_urls = models.JSONField(default=dict, blank=True)
    # Of its URLs, those a trusted publisher's run verified: they point into the repository
    # that published the release.
    verified_urls = models.JSONField(default=list, blank=True)
    platforms = models.JSONField(default=list, blank=True)
    dynamic = models.JSONField(default=list, blank=True)
    license_files = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "packaging_release"
        constraints = [
            models.UniqueConstraint(fields=["project", "canonical_version"], name="one_release_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.project.name} {self.version}"


class PackageType(models.TextChoices):
    SDIST = "sdist"
    WHEEL = "bdist_wheel"


class FileHold(models.TextChoices):
    """Why a stored file is kept from clients (absent from every listing, its download 404)."""

    SCANNING = "scanning"
    QUARANTINED = "quarantined"
    REVIEW = "review"


class File(models.Model):
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="files")
    filename = models.CharField(max_length=255, unique=True)
    packagetype = models.CharField(max_length=20, choices=PackageType.choices)
    python_version = models.CharField(max_length=100)
    requires_python = models.TextField(blank=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    blake2_256 = models.CharField(max_length=64, unique=True)
    md5 = models.CharField(max_length=32)
    path = models.CharField(max_length=400, unique=True)
    upload_time = models.DateTimeField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    comment = models.TextField(blank=True)
    # The trusted publisher's run that uploaded it (publisher, repository, workflow, ref, sha,
    # run id and attempt); None: an account's upload.
    published_by = models.JSONField(null=True, blank=True)
    # PEP 658: the wheel's METADATA, stored beside the file; empty when there is none.
    metadata_sha256 = models.CharField(max_length=64, blank=True)
    metadata_blake2_256 = models.CharField(max_length=64, blank=True)
    # Empty: served. Otherwise a FileHold: the file is stored but no client sees it
    # (services.hold_file / release_file are the one way to change it).
    hold = models.CharField(max_length=20, choices=FileHold.choices, blank=True, default="",
                            db_index=True)
    hold_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        db_table = "packaging_file"

    def __str__(self) -> str:
        return self.filename

    @property
    def metadata_path(self) -> str:
        return self.path + ".metadata"


class FilenameRegistry(models.Model):
    """Every filename ever accepted. Deleting a file never frees its name."""

    filename = models.CharField(max_length=255, unique=True)

    class Meta:
        db_table = "packaging_filename_registry"


class ProhibitedProjectName(models.Model):
    normalized_name = models.CharField(max_length=200, unique=True)
    comment = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "packaging_prohibited_name"

    def __str__(self) -> str:
        return self.normalized_name


class InvitationStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"


class RoleInvitation(models.Model):
    """An offer of a role on a project; the invitee becomes a member only by accepting it.

    A pending invitation also counts as expired once ``expires`` has passed, whether or not a
    later action has written the ``expired`` status yet.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    invitee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="role_invitations")
    inviter = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    role_name = models.CharField(max_length=20, choices=RoleName.choices)
    status = models.CharField(max_length=20, choices=InvitationStatus.choices,
                              default=InvitationStatus.PENDING)
    # Sent by an administrator (console or command line): it stays valid while ``inviter`` is
    # an administrator, or, from the command line (no inviter), for as long as it is pending.
    by_admin = models.BooleanField(default=False)
    created = models.DateTimeField()
    expires = models.DateTimeField()
    responded = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "packaging_role_invitation"
        constraints = [
            models.UniqueConstraint(fields=["project", "invitee"],
                                    condition=models.Q(status="pending"),
                                    name="one_pending_invitation_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.invitee} as {self.role_name} of {self.project} ({self.status})"


class ReservedProjectName(models.Model):
    """A name nobody may register but the users it is kept for.

    Either the name of a deleted project (its Owners at the time of deletion may register it
    again), or one an administrator reserved (``bastion admin reserve-name``), possibly for
    given users. It holds until an admin releases it (``bastion admin release-name``).
    """

    normalized_name = models.CharField(max_length=200, unique=True)
    ultranormalized_name = models.CharField(max_length=200, db_index=True)
    name = models.CharField(max_length=200)
    # Project ids are not foreign keys: the project row is gone. None: reserved by an admin.
    former_project_id = models.BigIntegerField(null=True, blank=True)
    # The users who may register the name (a deleted project's former Owners, or whom an
    # administrator gave it to).
    former_owners = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    # When the project was deleted, or when the admin reserved the name.
    deleted = models.DateTimeField()
    reason = models.TextField(blank=True)

    class Meta:
        db_table = "packaging_reserved_name"

    def __str__(self) -> str:
        return self.normalized_name


class EmailRoleInvitation(models.Model):
    """A role offered by a project Owner to an address that has no account yet.

    The address gets a sign-up link (``accounts.SignupInvitation``, whose status this shares);
    when an account is opened through it, this becomes an ordinary :class:`RoleInvitation` of
    the new account, which its owner must still accept. It grants nothing index-wide.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="email_invitations")
    signup = models.OneToOneField("accounts.SignupInvitation", on_delete=models.CASCADE,
                                  related_name="+")
    inviter = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    role_name = models.CharField(max_length=20, choices=RoleName.choices)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "packaging_email_role_invitation"

    def __str__(self) -> str:
        return f"{self.signup.email} as {self.role_name} of {self.project}"


class UploadNotice(models.Model):
    """A stored file its project's Owners have not been mailed about yet.

    Written in the upload's own transaction and deleted only in the transaction that queues
    the mail naming it, so no upload goes unmentioned, whatever happens in between. It copies
    what the mail says instead of pointing at the file, the release or the project: a file,
    release or project deleted before the mail goes out is still reported.
    """

    project_id = models.BigIntegerField(db_index=True)
    canonical_version = models.CharField(max_length=100)
    project_name = models.CharField(max_length=200)
    normalized_name = models.CharField(max_length=200)
    version = models.CharField(max_length=100)
    new_release = models.BooleanField(default=False)
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploader = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=300, blank=True)
    # The Owners when the file arrived: they hear of it even if removed before the mail.
    owners = models.JSONField(default=list)
    created = models.DateTimeField()

    class Meta:
        db_table = "packaging_upload_notice"
        indexes = [models.Index(fields=["project_id", "canonical_version"],
                                name="upload_notice_batch")]

    def __str__(self) -> str:
        return f"{self.filename} (not yet mailed)"


class ReportStatus(models.TextChoices):
    OPEN = "open"
    CLEARED = "cleared"
    ACTIONED = "actioned"


class MalwareReport(models.Model):
    """A report that a project, or one of its releases, is malicious (``packaging.reports``).

    Filed by a signed-in user from the project page or by a trusted observer through the
    observations API. It outlives the project it names (an administrator's removal keeps it
    as the record of why), so the names are copied.
    """

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="malware_reports")
    project_name = models.CharField(max_length=200)
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    version = models.CharField(max_length=100, blank=True)
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    reporter_name = models.CharField(max_length=150)
    # The reporter was a trusted observer when reporting: what the auto-quarantine rules count.
    trusted = models.BooleanField(default=False)
    # PyPI's observation kinds: is_malware, is_spam, is_dependency_confusion, something_else.
    kind = models.CharField(max_length=40, default="is_malware")
    evidence = models.TextField()
    url = models.CharField(max_length=500, blank=True)
    via = models.CharField(max_length=10, default="web")  # "web" or "api"
    created = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=20, choices=ReportStatus.choices,
                              default=ReportStatus.OPEN)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        db_table = "packaging_malware_report"
        indexes = [models.Index(fields=["status", "created"], name="malware_report_queue")]

    def __str__(self) -> str:
        return f"report #{self.pk} on {self.project_name} ({self.status})"


class BlockedFileHash(models.Model):
    """The sha256 of a file removed as malicious: these bytes are refused under any name, on
    upload and through the proxy."""

    sha256 = models.CharField(max_length=64, unique=True)
    filename = models.CharField(max_length=255)
    project_name = models.CharField(max_length=200)
    report = models.ForeignKey(MalwareReport, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    created = models.DateTimeField()

    class Meta:
        db_table = "packaging_blocked_file_hash"

    def __str__(self) -> str:
        return f"{self.sha256} ({self.filename})"
class LookalikeCorpus(models.Model):
    """The established names new ones must not imitate, as an administrator last loaded them
    (``bastion admin names corpus load``). No row: the corpus shipped with Bastion."""

    # [[name, download count], ...] as core.lookalike.parse_corpus read them.
    names = models.JSONField(default=list)
    source = models.CharField(max_length=200)
    count = models.PositiveIntegerField()
    loaded = models.DateTimeField()

    class Meta:
        db_table = "packaging_lookalike_corpus"


class AllowedName(models.Model):
    """A name an administrator let through the look-alike check."""

    normalized_name = models.CharField(max_length=200, unique=True)
    # What the name looked like when it was allowed (empty: allowed before anyone asked).
    resembles = models.CharField(max_length=200, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        db_table = "packaging_allowed_name"

    def __str__(self) -> str:
        return self.normalized_name


class LookalikeReview(models.Model):
    """A project created under a look-alike name and quarantined until an administrator
    allows the name (BASTION_LOOKALIKE_ACTION=hold)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE,
                                   related_name="lookalike_review")
    resembles = models.CharField(max_length=200)
    reason = models.CharField(max_length=500)
    created = models.DateTimeField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    # Set when an administrator allowed the name; pending until then.
    decided = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        db_table = "packaging_lookalike_review"


class Namespace(models.Model):
    """A name prefix (PEP 752 in spirit): only its grantees may create projects under it, and
    the proxy never resolves a name under it upstream."""

    prefix = models.CharField(max_length=100, unique=True)  # normalized, e.g. "acme-"
    grantees = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                      related_name="namespaces")
    note = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField()

    class Meta:
        db_table = "packaging_namespace"

    def __str__(self) -> str:
        return self.prefix
