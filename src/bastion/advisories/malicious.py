"""Malicious-package records (OSV ``MAL-``): every version they list is malware.

Upstream releases they name are hidden by every view (``core.policy.check_known_malicious``,
fed by the proxy's gate). A local project one of them names is quarantined at once, with the
record as the reason: its members and the administrators still see it and decide (an
administrator lifts the quarantine if the record is wrong).
"""

from __future__ import annotations

from django.db import transaction

from bastion.core.errors import ValidationError
from bastion.packaging import moderation
from bastion.packaging.models import Project, ProjectStatus, Release

from .models import Advisory


def _quarantine_reasons(osv_ids: list[str]) -> dict[str, str]:
    """Local project name → why, for the records that name one of its releases."""
    from .queries import affecting

    reasons: dict[str, str] = {}
    for advisory in Advisory.objects.filter(osv_id__in=osv_ids, withdrawn__isnull=True) \
            .prefetch_related("packages"):
        for package in advisory.packages.all():
            project = Project.objects.filter(normalized_name=package.normalized_name) \
                .exclude(status=ProjectStatus.QUARANTINED).first()
            if project is None or project.normalized_name in reasons:
                continue
            versions = Release.objects.filter(project=project).values_list("version", flat=True)
            hit = [v for v in versions
                   if any(k.osv_id == advisory.osv_id
                          for k in affecting(project.normalized_name, v))]
            if hit:
                reasons[project.normalized_name] = (
                    f"The malicious-package record {advisory.osv_id} names "
                    f"{', '.join(hit[:5])}{' ...' if len(hit) > 5 else ''}.")
    return reasons


def act_on(osv_ids: list[str], *, info=None) -> list[str]:
    """Quarantine the local projects these (new or changed) MAL- records name; the projects
    quarantined."""
    done = []
    for name, reason in _quarantine_reasons(osv_ids).items():
        try:
            with transaction.atomic():
                moderation.quarantine(name, reason=reason, actor=None, info=info)
        except ValidationError:  # quarantined meanwhile
            continue
        done.append(name)
    return done


def on_release_added(sender, *, project, version, info=None, **kwargs) -> None:
    """A new local release a malicious-package record names: quarantine its project in the
    upload's own transaction, so it is never listed."""
    from .queries import affecting

    if project.status == ProjectStatus.QUARANTINED:
        return
    named = [k.osv_id for k in affecting(project.normalized_name, version) if k.malicious]
    if named:
        moderation.quarantine(project.normalized_name, actor=None, info=info, reason=(
            f"The malicious-package record {named[0]} names {version}."))
