"""Attestations at upload: verifying them, storing them with the file, the per-project
"uploads must be attested" policy, and the PEP 740 provenance object served for a file."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.packaging.models import File, Project
from bastion.packaging.roles import require_owner
from bastion.packaging.services import PermissionDenied

from . import trust
from .models import AttestationRequired, FileProvenance
from .verification import (
    AttestationRefused,
    ExpectedPublisher,
    Verified,
    parse_attestations,
    verify_attestations,
)

ATTESTATION_REQUIRED = ("Project '{name}' requires attested uploads: publish with a valid "
                        "PEP 740 attestation (twine upload --attestations).")


def verify_upload(raw: str, *, filename: str, sha256: str,
                  expected: ExpectedPublisher | None = None,
                  issuer_kinds: dict[str, str] | None = None) -> Verified:
    """The upload form's ``attestations``, verified; ValidationError says why not."""
    try:
        return verify_attestations(parse_attestations(raw), filename=filename, sha256=sha256,
                                   trust_root=trust.current_root(), expected=expected,
                                   issuer_kinds=issuer_kinds)
    except AttestationRefused as exc:
        # PyPI's words first: the uploader learns the attestation was the problem.
        raise ValidationError(f"Invalid attestations supplied during upload: {exc.message}"
                              ) from None


def store(file: File, verified: Verified, *, by_trusted_publisher: bool,
          info: RequestInfo | None = None, actor=None) -> FileProvenance:
    """Keep a new file's verified attestations; called in the upload's transaction."""
    row = FileProvenance.objects.create(
        file=file, publisher=verified.publisher, attestations=verified.attestations,
        repository_url=verified.repository_url[:500], log_index=verified.log_index,
        by_trusted_publisher=by_trusted_publisher, created=timezone.now())
    record(tags.FILE_ATTESTATION_ADD, info=info, actor=actor, user=actor,
           project=file.release.project,
           additional={"filename": file.filename, "publisher": verified.publisher,
                       "identity": verified.identity[:300], "issuer": verified.issuer[:300],
                       "log_index": verified.log_index})
    return row


def provenance_object(row: FileProvenance) -> dict:
    """PEP 740's provenance object: one bundle, the publisher and its attestations."""
    return {"version": 1, "attestation_bundles": [
        {"publisher": row.publisher, "attestations": row.attestations}]}


# --- the policy ----------------------------------------------------------------------------

def is_required(project: Project | None) -> bool:
    return project is not None and AttestationRequired.objects.filter(project=project).exists()


def check_attested(project: Project | None, attested: bool) -> None:
    """Refuse an upload without a verified attestation to a project that requires one."""
    if not attested and is_required(project):
        raise PermissionDenied(ATTESTATION_REQUIRED.format(name=project.name))


def set_required(project: Project, enabled: bool, *, actor,
                 info: RequestInfo | None = None) -> bool:
    """An Owner (or the command line, ``actor`` None) switches the policy; returns whether
    anything changed."""
    if actor is not None:
        require_owner(actor, project, "change its attestation policy")
    with transaction.atomic():
        current = AttestationRequired.objects.select_for_update().filter(
            project=project).first()
        if enabled == (current is not None):
            return False
        if enabled:
            AttestationRequired.objects.create(project=project, since=timezone.now(), by=actor)
        else:
            current.delete()
        record(tags.PROJECT_ATTESTATION_REQUIRED_CHANGE, info=info, actor=actor, user=actor,
               project=project, additional={"enabled": enabled})
    return True


def find_project(name: str) -> Project:
    from packaging.utils import canonicalize_name

    project = Project.objects.filter(normalized_name=canonicalize_name(name)).first()
    if project is None:
        raise ValidationError(_("No project named {name}.").format(name=name[:100]))
    return project
