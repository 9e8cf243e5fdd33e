"""Every change of the scanner's records goes through these functions: a scan's result, what
it does to the file (hold, release, quarantine), an administrator's review, false positives,
disabled rules and rescans. Each is a security event.

Uploads: ``on_file_added`` (packaging's signal, in the upload's transaction) holds the new file
"scanning" from its first instant; once the upload commits, a file of at most
BASTION_SCAN_INLINE_MAX_BYTES is scanned at once, in the upload request, and a larger one on the
task queue (``tasks.scan_file``). Clean: released. Suspicious: held for review, or published
and listed for review (BASTION_SCAN_SUSPICIOUS). Malicious: its whole release quarantined and
the administrators mailed. An error: held for review.

The proxy: ``on_upstream_file_fetched`` scans an upstream file's bytes on their first download,
after they were verified and before they are kept or the last of them is sent, so that no
client gets a whole file before it was judged; the verdict is written on the cache row and each
view's policy (``hide_scanned``) decides what it hides. A scan that could not be made then (the
store unreachable) is queued once the file is kept (``on_upstream_file_stored``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy
from packaging.utils import canonicalize_name

from bastion.accounts.notifications import send
from bastion.core.errors import ValidationError
from bastion.core.scanning import RULES, RULESET_VERSION, SCANNER_VERSION, scan
from bastion.core.scanning import ScanResult as CoreResult
from bastion.core.scanning.verdicts import recomputed
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.metrics import count_scan_verdict
from bastion.packaging import services as packaging
from bastion.packaging.models import File, FileHold, Project
from bastion.packaging.moderation import require_admin
from bastion.storage import StorageUnavailable, get_store

from .models import DisabledRule, Finding, RescanRun, ScanResult, Verdict

log = logging.getLogger(__name__)

WORKER_INFO = RequestInfo(user_agent="bastion-worker")
MAX_NOTE = 500
MAX_MESSAGE = 500
MAX_PATH = 500


# --- reading ---------------------------------------------------------------------------------

def disabled_rules() -> frozenset[str]:
    return frozenset(DisabledRule.objects.values_list("rule", flat=True))


def latest_result(file_id: int) -> ScanResult | None:
    return ScanResult.objects.filter(file_id=file_id).order_by("-created", "-id").first()


# --- scanning ----------------------------------------------------------------------------------

def _lock_project(project_id: int) -> None:
    """The project row first, then (through record) the chain head: the order every change
    takes its locks in (packaging.services.add_file), so none can deadlock with an upload."""
    list(Project.objects.select_for_update().filter(pk=project_id).values_list("pk", flat=True))


@contextmanager
def _local_copy(store_path: str, filename: str) -> Iterator[str]:
    """A path on this machine holding the stored bytes (a temporary copy for remote stores)."""
    store = get_store()
    local = store.local_path(store_path)
    if local is not None:
        yield local
        return
    directory = tempfile.mkdtemp(prefix="bastion-scan-")
    try:
        target = os.path.join(directory, os.path.basename(filename) or "file")
        with store.open(store_path) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
        yield target
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run_scanner(store_path: str, filename: str, disabled: frozenset[str], *,
                 local: str | None = None):
    """The core scanner's result; a store failure or a crash is an "error" verdict.
    ``local``: the bytes are in this file on this machine, not (yet) in the store."""
    try:
        if local is not None:
            return scan(local, disabled=disabled, name=filename)
        with _local_copy(store_path, filename) as path:
            return scan(path, disabled=disabled)
    except StorageUnavailable:
        # The store is down for a while, not the file unreadable: no verdict (an "error" one
        # would send the file to review); the caller scans it again later (retry_later).
        raise
    except Exception as exc:  # a verdict is owed whatever happened; the reason says what
        log.warning("scan of %s failed: %s", filename, type(exc).__name__)
        return CoreResult(filename, Verdict.ERROR, 0.0, 0.0,
                          reason=f"could not be scanned ({type(exc).__name__})")


def _store_result(result, *, sha256: str, filename: str, file_id: int | None = None,
                  upstream_file_id: int | None = None, disabled: frozenset[str],
                  previous: ScanResult | None = None) -> ScanResult:
    """Write one result and its findings (inside the caller's transaction). Findings an
    administrator marked false positives in ``previous`` stay marked, and the verdict in force
    leaves them out."""
    marked = {}
    if previous is not None:
        marked = {(f.rule, f.path, f.line): f for f in previous.findings.filter(false_positive=True)}
    row = ScanResult.objects.create(
        sha256=sha256, filename=filename[:255], file_id=file_id,
        upstream_file_id=upstream_file_id, scanned_verdict=result.verdict,
        verdict=result.verdict, score=round(float(result.score), 3),
        scanner_version=str(getattr(result, "scanner_version", SCANNER_VERSION))[:40],
        ruleset_version=str(getattr(result, "ruleset_version", RULESET_VERSION))[:40],
        seconds=round(float(result.seconds), 4), reason=(result.reason or "")[:500],
        disabled_rules=sorted(disabled), created=timezone.now())
    transaction.on_commit(lambda verdict=result.verdict: count_scan_verdict(verdict))
    findings = []
    for f in result.findings:
        old = marked.get((f.rule, f.file[:MAX_PATH], int(f.line or 0)))
        findings.append(Finding(
            result=row, rule=f.rule[:80], severity=f.severity[:20], path=f.file[:MAX_PATH],
            line=int(f.line or 0), message=f.message[:MAX_MESSAGE], weight=float(f.weight),
            false_positive=old is not None, marked_by_id=old.marked_by_id if old else None,
            marked_at=old.marked_at if old else None))
    Finding.objects.bulk_create(findings)
    if marked and row.verdict != Verdict.ERROR:
        _recompute(row)
    if previous is not None and previous.reviewed_at is not None \
            and previous.verdict == row.verdict:
        ScanResult.objects.filter(pk=row.pk).update(
            decision=previous.decision, reviewed_by_id=previous.reviewed_by_id,
            reviewed_at=previous.reviewed_at)
        row.decision, row.reviewed_by_id, row.reviewed_at = (
            previous.decision, previous.reviewed_by_id, previous.reviewed_at)
    return row


def _recompute(row: ScanResult) -> None:
    counted = [(f.path, f.rule, f.weight) for f in row.findings.filter(false_positive=False)]
    verdict, score = recomputed(counted)
    ScanResult.objects.filter(pk=row.pk).update(verdict=verdict, score=round(score, 3))
    row.verdict, row.score = verdict, round(score, 3)


def scan_local(file_id: int, *, actor=None, info: RequestInfo | None = None,
               rescan: bool = False) -> ScanResult | None:
    """Scan a stored local file, record the result and act on it; None: no such file."""
    file = File.objects.select_related("release__project").filter(pk=file_id).first()
    if file is None:
        return None
    disabled = disabled_rules()
    result = _run_scanner(file.path, file.filename, disabled)
    with transaction.atomic():
        _lock_project(file.release.project_id)
        previous = latest_result(file.pk)
        row = _store_result(result, sha256=file.sha256, filename=file.filename, file_id=file.pk,
                            disabled=disabled, previous=previous)
        project = file.release.project
        record(tags.FILE_SCAN, info=info, actor=actor, user=actor, project=project,
               additional={"filename": file.filename, "version": file.release.version,
                           "sha256": file.sha256, "verdict": row.verdict,
                           "scanned_verdict": row.scanned_verdict, "score": row.score,
                           "findings": len(result.findings), "scanner": row.scanner_version,
                           "ruleset": row.ruleset_version, "seconds": row.seconds,
                           "rescan": rescan, **({"reason": row.reason} if row.reason else {})})
        _act_on(file, row, actor=actor, info=info, rescan=rescan)
    return row


def _act_on(file: File, row: ScanResult, *, actor, info, rescan: bool) -> None:
    verdict = row.verdict
    if verdict != Verdict.CLEAN and row.reviewed_at is not None:
        return  # an administrator already decided on this very verdict
    if verdict == Verdict.CLEAN:
        # A quarantine stays until an administrator lifts it (or a false positive clears it).
        if file.hold in (FileHold.SCANNING, FileHold.REVIEW):
            packaging.release_file(file, actor=actor, info=info)
        return
    if verdict == Verdict.MALICIOUS:
        if file.hold != FileHold.QUARANTINED:
            reason = f"The malware scanner judged {file.filename} malicious (score {row.score:g})."
            packaging.quarantine_release(file.release, reason=reason, actor=actor, info=info)
            _alert_admins(file, row)
        return
    if verdict == Verdict.SUSPICIOUS and settings.SCAN_SUSPICIOUS == "publish":
        if file.hold == FileHold.SCANNING:
            packaging.release_file(file, actor=actor, info=info)
        return
    # Suspicious (held by setting) or a scan that failed: an administrator looks at it.
    if file.hold in ("", FileHold.SCANNING):
        detail = (f"The malware scanner judged it suspicious (score {row.score:g})."
                  if verdict == Verdict.SUSPICIOUS else
                  f"It could not be scanned: {row.reason or 'unknown error'}")
        packaging.hold_file(file, FileHold.REVIEW, reason=detail, actor=actor, info=info)


def _admin_addresses() -> list[str]:
    return list(get_user_model().objects.filter(is_superuser=True, is_active=True)
                .exclude(email="").values_list("email", flat=True))


def _alert_admins(file: File, row: ScanResult) -> None:
    """Mailed once the verdict commits (the mail queue joins the transaction)."""
    top = ", ".join(sorted({f.rule for f in row.findings.filter(false_positive=False)})[:8])
    send(_admin_addresses(),
         format_lazy(gettext_lazy("Malware quarantined: {filename}"), filename=file.filename),
         format_lazy(gettext_lazy(
             "The malware scanner judged {filename} ({project} {version}) malicious, score "
             "{score}, rules: {rules}.\n\nIts release is quarantined: no client can list or "
             "download it. Review it in the console (Scan review): release it, keep it "
             "quarantined, or mark findings as false positives."),
             filename=file.filename, project=file.release.project.name,
             version=file.release.version, score=f"{row.score:g}", rules=top or "-"))


# --- the upload's and the proxy's hooks ---------------------------------------------------------

def on_file_added(sender, *, file, project, user=None, info=None, **kwargs):
    """packaging.signals.file_added: hold the new file until its scan ends."""
    size = file.size
    transaction.on_commit(lambda: after_upload(file.pk, size, info), robust=True)
    return FileHold.SCANNING, "waiting for the malware scan"


def after_upload(file_id: int, size: int, info: RequestInfo | None = None) -> None:
    from .tasks import scan_file

    if size <= settings.SCAN_INLINE_MAX_BYTES:
        try:
            scan_local(file_id, info=info)
        except StorageUnavailable:
            retry_later(scan_file, file_id)
        except Exception:  # the upload is stored; the file stays held and is listed for review
            log.exception("inline scan of file %s failed", file_id)
        return
    scan_file.enqueue(file_id)


def retry_later(task, object_id: int, attempt: int = 0) -> bool:
    """Scan ``object_id`` again later: the store was unreachable (storage.retry)."""
    from bastion.storage.retry import retry_later as store_retry_later

    return store_retry_later(task, object_id, attempt=attempt)


def on_upstream_file_fetched(sender, *, file, path: str, **kwargs) -> None:
    """proxy.signals.upstream_file_fetched: judge the bytes in the request that fetched them."""
    try:
        scan_upstream(file.pk, local=path)
    except Exception:  # the download goes on; the file's scan is queued once it is kept
        log.exception("scan of the upstream file %s failed", file.pk)


def on_upstream_file_stored(sender, *, file, **kwargs) -> None:
    from .tasks import scan_upstream_file

    if file.scan_verdict:
        return  # judged when it was fetched
    transaction.on_commit(lambda: scan_upstream_file.enqueue(file.pk), robust=True)


def scan_upstream(upstream_file_id: int, *, info: RequestInfo | None = None,
                  local: str | None = None) -> ScanResult | None:
    """Scan the bytes of an upstream file, kept or (``local``) about to be, reusing a verdict
    on the same bytes by the same scanner and rules, and hand the verdict to the proxy."""
    from bastion.proxy import scans as proxy_scans
    from bastion.proxy.models import UpstreamFile

    rows = UpstreamFile.objects.filter(pk=upstream_file_id)
    row = (rows if local is not None else rows.exclude(stored_path="")).first()
    if row is None:
        return None
    disabled = disabled_rules()
    known = (ScanResult.objects.filter(sha256=row.sha256, scanner_version=SCANNER_VERSION,
                                       ruleset_version=RULESET_VERSION)
             .exclude(verdict=Verdict.ERROR).order_by("-created").first())
    core = None
    if known is None or set(known.disabled_rules) != set(disabled):
        # Before the transaction, never in it: on SQLite an open write transaction holds the
        # database's one write lock, and every request that writes would wait for the scan.
        core = _run_scanner(row.stored_path, row.filename, disabled, local=local)
    with transaction.atomic():
        if core is None:
            result = known
        else:
            result = _store_result(core, sha256=row.sha256, filename=row.filename,
                                   upstream_file_id=row.pk, disabled=disabled)
        proxy_scans.set_verdict(row.pk, result.verdict, score=result.score,
                                ruleset=result.ruleset_version, info=info or WORKER_INFO)
    return result


# --- administrators' review ---------------------------------------------------------------------

def _file_or_refuse(file_id) -> File:
    try:
        file = File.objects.select_related("release__project").filter(pk=int(file_id)).first()
    except (TypeError, ValueError):
        file = None
    if file is None:
        raise ValidationError(_("There is no such file."), status=404)
    return file


def find_file(name_or_id: str) -> File:
    """A local file by id or filename (the command line names files either way)."""
    text = (name_or_id or "").strip()
    if text.isdigit():
        return _file_or_refuse(text)
    file = File.objects.select_related("release__project").filter(filename=text[:255]).first()
    if file is None:
        raise ValidationError(_("There is no file named '{name}'.").format(name=text[:255]),
                              status=404)
    return file


def _reviewed(file: File, decision: str, actor) -> None:
    row = latest_result(file.pk)
    if row is not None:
        ScanResult.objects.filter(pk=row.pk).update(decision=decision, reviewed_by=actor,
                                                    reviewed_at=timezone.now())


def review_release(file_id, *, actor=None, info: RequestInfo | None = None) -> File:
    """An administrator lets a held file (and the rest of its quarantined release) through."""
    require_admin(actor)
    file = _file_or_refuse(file_id)
    with transaction.atomic():
        released = packaging.release_file(file, actor=actor, info=info)
        if file.hold == FileHold.QUARANTINED:
            # The release was quarantined for this file: its other files come back with it.
            for other in File.objects.filter(release_id=file.release_id,
                                             hold=FileHold.QUARANTINED).exclude(pk=file.pk):
                packaging.release_file(other, actor=actor, info=info)
        if not released and not _needs_review(file):
            raise ValidationError(_("{filename} is neither held nor waiting for review.")
                                  .format(filename=file.filename))
        _reviewed(file, "released", actor)
    return file


def review_quarantine(file_id, *, reason: str = "", actor=None,
                      info: RequestInfo | None = None) -> File:
    """An administrator keeps a file's release from clients: every file of it quarantined."""
    require_admin(actor)
    file = _file_or_refuse(file_id)
    reason = " ".join((reason or "").split())[:MAX_NOTE] or (
        f"An administrator quarantined {file.filename} after reviewing its scan.")
    with transaction.atomic():
        packaging.quarantine_release(file.release, reason=reason, actor=actor, info=info)
        _reviewed(file, "quarantined", actor)
    return file


def _needs_review(file: File) -> bool:
    row = latest_result(file.pk)
    return row is not None and row.verdict != Verdict.CLEAN and row.reviewed_at is None


def mark_false_positive(finding_id, *, actor=None, info: RequestInfo | None = None) -> ScanResult:
    """An administrator says one finding is wrong for this file: the verdict is recomputed
    without it, and a file that becomes clean is released (from quarantine too)."""
    require_admin(actor)
    try:
        finding = Finding.objects.select_related("result").filter(pk=int(finding_id)).first()
    except (TypeError, ValueError):
        finding = None
    if finding is None or finding.result.file_id is None:
        raise ValidationError(_("There is no such finding."), status=404)
    row = finding.result
    if latest_result(row.file_id).pk != row.pk:
        raise ValidationError(_("That finding is from an earlier scan; mark the latest one."))
    if finding.false_positive:
        raise ValidationError(_("That finding is already marked a false positive."))
    file = _file_or_refuse(row.file_id)
    with transaction.atomic():
        _lock_project(file.release.project_id)
        Finding.objects.filter(pk=finding.pk).update(false_positive=True, marked_by=actor,
                                                     marked_at=timezone.now())
        before = row.verdict
        _recompute(row)
        record(tags.ADMIN_SCAN_FALSE_POSITIVE, info=info, actor=actor, user=actor,
               project=file.release.project,
               additional={"filename": file.filename, "rule": finding.rule,
                           "location": f"{finding.path}:{finding.line}", "sha256": file.sha256,
                           "verdict_before": before, "verdict": row.verdict,
                           "score": row.score})
        if row.verdict == Verdict.CLEAN and file.hold:
            packaging.release_file(file, actor=actor, info=info)
            if file.hold == FileHold.QUARANTINED:
                for other in File.objects.filter(release_id=file.release_id,
                                                 hold=FileHold.QUARANTINED).exclude(pk=file.pk):
                    packaging.release_file(other, actor=actor, info=info)
    return row


# --- rules ------------------------------------------------------------------------------------

def _known_rule(rule: str) -> str:
    rule = (rule or "").strip()
    if rule not in RULES:
        raise ValidationError(_("There is no scanner rule '{rule}'.").format(rule=rule[:80]))
    return rule


def disable_rule(rule: str, *, note: str = "", actor=None,
                 info: RequestInfo | None = None) -> DisabledRule:
    require_admin(actor)
    rule = _known_rule(rule)
    note = " ".join((note or "").split())
    if len(note) > MAX_NOTE:
        raise ValidationError(_("The note is too long: at most {limit} characters.")
                              .format(limit=MAX_NOTE))
    with transaction.atomic():
        if DisabledRule.objects.filter(rule=rule).exists():
            raise ValidationError(_("The rule '{rule}' is already disabled.").format(rule=rule))
        row = DisabledRule.objects.create(rule=rule, note=note, created=timezone.now(),
                                          created_by=actor)
        record(tags.ADMIN_SCAN_RULE_DISABLE, info=info, actor=actor, user=actor,
               additional={"rule": rule, "note": note})
    return row


def enable_rule(rule: str, *, actor=None, info: RequestInfo | None = None) -> None:
    require_admin(actor)
    rule = (rule or "").strip()[:80]
    with transaction.atomic():
        if not DisabledRule.objects.filter(rule=rule).delete()[0]:
            raise ValidationError(_("The rule '{rule}' is not disabled.").format(rule=rule))
        record(tags.ADMIN_SCAN_RULE_ENABLE, info=info, actor=actor, user=actor,
               additional={"rule": rule})


# --- rescans ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RescanSummary:
    files: int
    verdicts: dict[str, int]


def rescan(*, project: str | None = None, actor=None, info: RequestInfo | None = None,
           progress: Callable[[int, int], None] | None = None) -> RescanSummary:
    """Scan the stored files again (all, or one project's) with the current rules: the local
    files, and the upstream files the proxy keeps, on whose verdicts its views act too (else a
    verdict of older rules would hide a proxied file until it is fetched anew)."""
    require_admin(actor)
    found, local, kept = _rescanned(project)
    ids = list(local.values_list("id", flat=True))
    upstream_ids = list(kept.values_list("id", flat=True))
    total = len(ids) + len(upstream_ids)
    verdicts: dict[str, int] = {}
    done = 0

    def count(row) -> None:
        nonlocal done
        done += 1
        if row is not None:
            verdicts[row.verdict] = verdicts.get(row.verdict, 0) + 1
        if progress is not None:
            progress(done, total)

    for file_id in ids:
        count(scan_local(file_id, actor=actor, info=info, rescan=True))
    for upstream_id in upstream_ids:
        count(scan_upstream(upstream_id, info=info))
    with transaction.atomic():
        record(tags.ADMIN_SCAN_RESCAN, info=info, actor=actor, user=actor, project=found,
               additional={"files": total, "upstream_files": len(upstream_ids),
                           "verdicts": verdicts, "ruleset": RULESET_VERSION,
                           **({"name": project} if project else {})})
    return RescanSummary(total, verdicts)


def _rescanned(project: str | None):
    """(the local project, its files, the kept upstream files) a rescan of ``project`` (None:
    all) covers; refused when the name is neither a local project nor one the proxy keeps
    files of."""
    from bastion.proxy.models import UpstreamFile

    local = File.objects.order_by("id")
    kept = UpstreamFile.objects.exclude(stored_path="").order_by("id")
    if project is None:
        return None, local, kept
    found = packaging.find_project(project)
    kept = kept.filter(project__normalized_name=canonicalize_name(project[:200]))
    if found is None and not kept.exists():
        raise ValidationError(_("There is no project named '{name}'.").format(
            name=" ".join(project.split())[:200]), status=404)
    files = local.filter(release__project=found) if found is not None else local.none()
    return found, files, kept


def queue_rescan(*, project: str | None = None, actor=None,
                 info: RequestInfo | None = None) -> RescanRun:
    """Have the task worker run :func:`rescan` (all stored files, or one project's): a request
    cannot wait for every file of an index to be scanned again. Its progress is written on the
    returned row; its security event is the rescan's own, recorded when it ends."""
    require_admin(actor)
    name = ""
    if project is not None:
        found, _local, _kept = _rescanned(project)  # refuses a name with nothing to scan
        name = found.name if found is not None else canonicalize_name(project)
    info = info or RequestInfo()
    with transaction.atomic():
        # Twice the same request (a double click) before the worker took the first would scan
        # every file twice for nothing.
        if RescanRun.objects.filter(project=name, started__isnull=True).exists():
            raise ValidationError(
                _("A rescan of {what} is already queued: the task worker starts it soon.")
                .format(what=name or _("every stored file")), status=409)
        run = RescanRun.objects.create(project=name, requested_by=actor,
                                       ip_address=info.ip_address[:64],
                                       user_agent=info.user_agent[:512], created=timezone.now())
        from django_tasks_db import DatabaseBackend

        from .tasks import rescan_run

        if isinstance(rescan_run.get_backend(), DatabaseBackend):
            # Queued in this transaction: a committed run always has its task, and never
            # stays "queued" (refusing the next request) for a task that was lost.
            rescan_run.enqueue(run.pk)
        else:
            transaction.on_commit(lambda: rescan_run.enqueue(run.pk), robust=True)
    return run


def run_rescan(run_id: int) -> RescanRun | None:
    """The worker's half of :func:`queue_rescan`: rescan, writing the progress on the row."""
    run = RescanRun.objects.filter(pk=run_id, started__isnull=True).first()
    if run is None:
        return None  # gone, or already run (a task delivered twice)
    RescanRun.objects.filter(pk=run.pk).update(started=timezone.now())

    def progress(done: int, total: int) -> None:
        RescanRun.objects.filter(pk=run.pk).update(done=done, total=total)

    info = RequestInfo(ip_address=run.ip_address, user_agent=run.user_agent)
    failure = ""
    summary = None
    try:
        if run.requested_by is None:
            # Not the command line (actor None): whoever asked is gone, so nobody may.
            raise ValidationError(_("The administrator who asked for this rescan no longer "
                                    "exists."))
        summary = rescan(project=run.project or None, actor=run.requested_by, info=info,
                         progress=progress)
    except ValidationError as exc:  # the project was removed, or the admin demoted, meanwhile
        failure = exc.message
    except Exception as exc:  # the row must end, whatever happened; the log has the rest
        log.exception("rescan %s failed", run.pk)
        failure = f"The rescan stopped: {type(exc).__name__}."
    fields = {"finished": timezone.now(), "failure": str(failure)[:500]}
    if summary is not None:
        fields.update(total=summary.files, done=summary.files, verdicts=summary.verdicts)
    RescanRun.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    return run
