"""Malicious-package records (OSV ``MAL-``): every version they list is malware.

Upstream releases they name are hidden by every view (``core.policy.check_known_malicious``,
fed by the proxy's gate). A local project one of them names is quarantined at once, with the
record as the reason: its members and the administrators still see it and decide (an
administrator lifts the quarantine if the record is wrong). A record that covers every version
(a range from 0 with no end) quarantines the whole project; one that names some versions only
quarantines those releases (their files held "quarantined"), so the project's other releases
stay installable.
"""

from __future__ import annotations

from django.db import transaction

from bastion.core.errors import ValidationError
from bastion.packaging import moderation
from bastion.packaging import services as packaging
from bastion.packaging.models import Project, ProjectStatus, Release

from .models import Advisory, AffectedPackage


def covers_all_versions(package) -> bool:
    """Whether an affected package's ranges include every version (introduced 0, no end)."""
    for events in package.ranges or ():
        kinds = dict((kind, version) for kind, version in events)
        if kinds.get("introduced") == "0" and not ({"fixed", "last_affected", "limit"} & set(kinds)):
            return True
    return False


def _release_reason(osv_id: str, version: str) -> str:
    return f"The malicious-package record {osv_id} names {version}."


def _quarantine_releases(osv_ids: list[str], *, info=None) -> list[str]:
    """Quarantine the local releases named by records that do not cover every version; the
    project names touched."""
    from .queries import affecting

    done = []
    for advisory in Advisory.objects.filter(osv_id__in=osv_ids, withdrawn__isnull=True) \
            .prefetch_related("packages"):
        for package in advisory.packages.all():
            if covers_all_versions(package):
                continue
            project = Project.objects.filter(normalized_name=package.normalized_name) \
                .exclude(status=ProjectStatus.QUARANTINED).first()
            if project is None:
                continue
            for release in Release.objects.filter(project=project):
                if packaging.release_quarantined(release.pk) or not any(
                        k.osv_id == advisory.osv_id
                        for k in affecting(project.normalized_name, release.version)):
                    continue
                with transaction.atomic():
                    packaging.quarantine_release(
                        release, reason=_release_reason(advisory.osv_id, release.version),
                        info=info)
                done.append(project.normalized_name)
    return done


def _quarantine_reasons(osv_ids: list[str]) -> dict[str, str]:
    """Local project name → why, for the records that name every version of it."""
    from .queries import affecting

    reasons: dict[str, str] = {}
    for advisory in Advisory.objects.filter(osv_id__in=osv_ids, withdrawn__isnull=True) \
            .prefetch_related("packages"):
        for package in advisory.packages.all():
            if not covers_all_versions(package):
                continue
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
    """Quarantine the local projects (or, for records naming some versions only, the
    releases) these (new or changed) MAL- records name; the projects touched."""
    done = _quarantine_releases(osv_ids, info=info)
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
    if not named:
        return
    every_version = AffectedPackage.objects.filter(
        advisory__osv_id__in=named, normalized_name=project.normalized_name)
    if any(covers_all_versions(package) for package in every_version):
        moderation.quarantine(project.normalized_name, actor=None, info=info,
                              reason=_release_reason(named[0], version))
        return
    release = Release.objects.filter(project=project, version=version).first()
    if release is not None:
        packaging.quarantine_release(release, reason=_release_reason(named[0], version),
                                     info=info)
