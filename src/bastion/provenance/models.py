"""PEP 740 attestations of stored files, the per-project policy, and the Sigstore trust root.

Written only by ``services`` (attestations, in the upload's own transaction) and ``trust``
(trust roots).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class FileProvenance(models.Model):
    """The verified attestations of one stored file, and the publisher they name."""

    file = models.OneToOneField("packaging.File", on_delete=models.CASCADE, primary_key=True,
                                related_name="provenance")
    # The PEP 740 publisher object: {"kind": "GitHub", "repository": ..., "workflow": ...}.
    publisher = models.JSONField()
    # The attestation objects, as sent and verified (PEP 740's attestation object).
    attestations = models.JSONField()
    # Where the certificate says the file was built: shown on the project page.
    repository_url = models.CharField(max_length=500, blank=True)
    log_index = models.BigIntegerField(null=True, blank=True)
    # True: the upload's token was a trusted publisher's, and the attestation named it.
    by_trusted_publisher = models.BooleanField(default=False)
    created = models.DateTimeField()

    class Meta:
        db_table = "provenance_file"

    @property
    def workflow(self) -> str:
        """The workflow file that built it (GitHub's name, GitLab's path), or ""."""
        return str(self.publisher.get("workflow") or self.publisher.get("workflow_filepath")
                   or "")

    @property
    def identity(self) -> str:
        """Who signed, for publishers with no repository (a service account, a URI)."""
        return str(self.publisher.get("email") or self.publisher.get("identity") or "")


class AttestationRequired(models.Model):
    """A project whose uploads must carry a valid attestation (its Owners' choice)."""

    project = models.OneToOneField("packaging.Project", on_delete=models.CASCADE,
                                   primary_key=True, related_name="attestation_required")
    since = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                           on_delete=models.SET_NULL, related_name="+")

    class Meta:
        db_table = "provenance_attestation_required"


class TrustRoot(models.Model):
    """A Sigstore trusted root installed by ``bastion admin sigstore refresh``; the newest
    is used (unless BASTION_SIGSTORE_TRUST_ROOT names a private one)."""

    document = models.TextField()
    sha256 = models.CharField(max_length=64)
    source = models.CharField(max_length=300)  # "tuf" or the file it was read from
    installed = models.DateTimeField(db_index=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                           on_delete=models.SET_NULL, related_name="+")

    class Meta:
        db_table = "provenance_trust_root"
