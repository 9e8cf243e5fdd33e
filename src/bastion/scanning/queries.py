"""Reading the scanner's records: the review queue, and a release's findings for the people
allowed to see them (the project's members and the administrators)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Q, Subquery

from bastion.accounts.services import is_admin
from bastion.packaging.models import File, Role

from .models import DisabledRule, Finding, RescanRun, ScanResult, Verdict


def may_see_findings(user, project_id: int) -> bool:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return is_admin(user) or Role.objects.filter(project_id=project_id, user=user).exists()


@dataclass(frozen=True)
class FileScan:
    file: File
    result: ScanResult | None
    findings: list[Finding]


def _latest_ids(file_ids) -> dict[int, int]:
    latest = (ScanResult.objects.filter(file_id=OuterRef("pk")).order_by("-created", "-id")
              .values("pk")[:1])
    return dict(File.objects.filter(pk__in=list(file_ids)).annotate(latest=Subquery(latest))
                .exclude(latest=None).values_list("pk", "latest"))


def scans_of(files: list[File]) -> list[FileScan]:
    """Each file with its latest scan and that scan's findings."""
    latest = _latest_ids(f.pk for f in files)
    results = ScanResult.objects.in_bulk(list(latest.values()))
    findings: dict[int, list[Finding]] = {}
    for finding in Finding.objects.filter(result_id__in=list(latest.values())):
        findings.setdefault(finding.result_id, []).append(finding)
    out = []
    for f in files:
        result = results.get(latest.get(f.pk))
        out.append(FileScan(f, result, findings.get(result.pk, []) if result else []))
    return out


def release_scans(release_id: int) -> list[FileScan]:
    return scans_of(list(File.objects.filter(release_id=release_id).order_by("filename")))


def project_scans(project_id: int) -> dict[str, dict]:
    """Filename -> what the JSON API tells members: verdict, hold and findings."""
    files = list(File.objects.filter(release__project_id=project_id).order_by("filename"))
    return {s.file.filename: as_json(s) for s in scans_of(files)}


def as_json(s: FileScan) -> dict:
    result = s.result
    return {
        "hold": s.file.hold or None,
        "verdict": result.verdict if result else None,
        "score": result.score if result else None,
        "scanner": result.scanner_version if result else None,
        "ruleset": result.ruleset_version if result else None,
        "findings": [{"rule": f.rule, "severity": f.severity, "file": f.path, "line": f.line,
                      "message": f.message, "false_positive": f.false_positive}
                     for f in s.findings],
    }


def review_queue(limit: int = 200) -> list[FileScan]:
    """Held files and unreviewed non-clean verdicts of local files, the oldest first.

    Read from the indexed columns (the hold, the verdict), never by a subquery per stored
    file: the queue stays cheap however many files the index holds.
    """
    flagged = (ScanResult.objects.filter(file__isnull=False, reviewed_at__isnull=True)
               .exclude(verdict=Verdict.CLEAN).values("file_id"))
    candidates = list(File.objects.filter(Q(hold__in=["scanning", "review", "quarantined"])
                                          | Q(pk__in=flagged))
                      .select_related("release__project").order_by("upload_time", "id")
                      [:limit * 5])
    queue = []
    for scan in scans_of(candidates):
        result, hold = scan.result, scan.file.hold
        unreviewed = result is not None and result.reviewed_at is None
        if (hold in ("scanning", "review")
                or (hold == "quarantined" and (result is None or unreviewed))
                or (unreviewed and result.verdict != Verdict.CLEAN)):
            queue.append(scan)
            if len(queue) == limit:
                break
    return queue


def finding(finding_id: int) -> Finding | None:
    return Finding.objects.select_related("result").filter(pk=finding_id).first()


def disabled() -> list[DisabledRule]:
    return list(DisabledRule.objects.select_related("created_by").order_by("rule"))


def recent_rescans(limit: int = 10) -> list[RescanRun]:
    """The newest rescans asked for in the console, with who asked."""
    return list(RescanRun.objects.select_related("requested_by")[:limit])
