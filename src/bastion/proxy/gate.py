"""A view's policy applied to what the endpoints are about to show or send.

The endpoints (``bastion.simple``) render; this module only judges. It reads the view (kept
per process by revision, so that the hot path parses no JSON), builds the policy's
``Candidate`` for a local or an upstream file, and says which files a view hides, why, and
until when a rendered page stays right (a cooldown ends by time alone).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime

from django.utils import timezone as django_timezone

from bastion.advisories import queries as advisories
from bastion.core import policy as core_policy
from bastion.packaging.models import File
from bastion.packaging.services import blocked_among, blocked_hash

from . import files, pages, provenance, scans, views_policy
from .models import Exemption, UpstreamFile, View

DEFAULT_VIEW = views_policy.DEFAULT_VIEW
_MAX_CACHED_VIEWS = 1000


def view_path(view: str) -> str:
    """The URL path prefix of a view: empty for the default view, ``views/<name>/`` else."""
    return "" if view == DEFAULT_VIEW else f"views/{view}/"


@dataclass(frozen=True)
class ViewState:
    view: View
    policy: core_policy.Policy  # views_policy.policy_of's: one that no longer parses hides all
    # Pins apply (explicit ones, or tofu): read once per revision, so that a view without
    # any judges a download with no query for them.
    has_pins: bool = False

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def revision(self) -> int:
        return self.view.revision

    @property
    def needs_provenance(self) -> bool:
        """Whether judging an upstream file needs its verified provenance."""
        return self.policy.require_provenance or self.has_pins

    @property
    def needs_licenses(self) -> bool:
        """Whether judging an upstream file needs its license (read from its metadata)."""
        p = self.policy
        return bool(p.deny_licenses or p.deny_classifiers or p.license_unknown == "deny")

    @property
    def affects_local(self) -> bool:
        """Whether the policy may hide a local file (else local pages need no filtering)."""
        p = self.policy
        return bool(p.allow or p.deny or p.deny_licenses or p.deny_classifiers
                    or p.frozen_at is not None or (p.hold_local and p.cooldown_hours > 0)
                    or p.hide_vulnerable is not None)


_states: dict[str, ViewState] = {}
_lock = threading.Lock()
_UNKNOWN = object()


def view_state(name: str, revision=_UNKNOWN) -> ViewState | None:
    """The view called ``name``, or None when there is none.

    ``revision``: what a query the caller ran anyway read (None: no such view); when it
    matches the state kept in this process, no query is needed.
    """
    if revision is None:
        return None
    if revision is not _UNKNOWN:
        state = _states.get(name)
        if state is not None and state.revision == revision:
            return state
    view = View.objects.filter(name=name).first()
    if view is None:
        return None
    policy = views_policy.policy_of(view)
    state = ViewState(view, policy, provenance.has_pins(view, policy))
    with _lock:
        if len(_states) >= _MAX_CACHED_VIEWS:
            _states.clear()
        _states[name] = state
    return state


def _exemptions(state: ViewState, project: str, now: datetime) -> tuple[core_policy.Exempt, ...]:
    return tuple(views_policy.active_exemptions(state.view, project, now=now))


def with_advisories(project: str, candidates: list[core_policy.Candidate]):
    """The candidates with the known vulnerabilities in force that affect their versions
    (the policy's malicious-package and severity checks read them)."""
    known = [k for k in advisories.for_project(project) if k.withdrawn is None]
    if not known:
        return candidates
    by_version: dict[str, tuple] = {}
    result = []
    for candidate in candidates:
        found = by_version.get(candidate.version)
        if found is None:
            found = by_version[candidate.version] = tuple(
                (k.osv_id, k.severity, k.malicious) for k in known if k.affects(candidate.version))
        result.append(replace(candidate, advisories=found) if found else candidate)
    return result


def stamp(state: ViewState, serial, advisories_revision: int, blocklist_revision: int = 0) -> tuple:
    """What a page judged by ``state`` was rendered at: the listing's serial, the view's
    revision, the advisories' (an import can hide or show a release) and the blocklist's
    (a file removed as malicious leaves every upstream page listing its bytes at once, not
    when that page next changes). The endpoints read them all in their one lookup statement."""
    return (serial, state.revision, advisories_revision, blocklist_revision)


def _blocked_hash_block(view: str, filename: str) -> core_policy.Block:
    return core_policy.Block(view=view, kind="blocked-hash", reason=(
        f"Forbidden: {filename} has the sha256 of a file removed from this index as "
        "malicious"))


@dataclass(frozen=True)
class Judgement:
    hidden: dict[str, core_policy.Block]  # filename → why
    valid_until: float | None  # a page built on this judgement must be rebuilt by then


def judge(state: ViewState, project: str, candidates: list[core_policy.Candidate], *,
          record: bool = True) -> Judgement:
    """Which of one project's files the view hides, and until when that answer holds.

    ``record``: note the hidden files in the admins' list of recent blocks (a page is judged
    only when it is rendered, so this is once per change, not once per request).
    """
    now = django_timezone.now()
    hidden: dict[str, core_policy.Block] = {}
    until: datetime | None = None
    exemptions = _exemptions(state, project, now)
    candidates = with_advisories(project, candidates)
    blocked = blocked_among(c.sha256 for c in candidates if not c.local and c.sha256)
    for candidate in candidates:
        if blocked and not candidate.local and (candidate.sha256 or "").lower() in blocked:
            block = _blocked_hash_block(state.name, candidate.filename)
        else:
            block = core_policy.evaluate(state.name, state.policy, candidate, now, exemptions)
        if block is not None:
            hidden[candidate.filename] = block
            # Only a cooldown ends by time alone (core.policy.next_change, without a second
            # evaluation: pages can list tens of thousands of files).
            change = block.until if block.kind == core_policy.COOLDOWN else None
        elif exemptions:
            change = core_policy.next_change(state.name, state.policy, candidate, now,
                                             exemptions)
        else:
            change = None
        if change is not None and (until is None or change < until):
            until = change
    if record and hidden:
        for candidate in candidates:
            block = hidden.get(candidate.filename)
            if block is not None:
                views_policy.record_block(state.name, candidate, block, direct=False, now=now)
                if block.kind == core_policy.PINNED:
                    provenance.report_mismatch(state.name, candidate)
    return Judgement(hidden, until.timestamp() if until is not None else None)


def local_candidates(project_id: int, project: str) -> list[core_policy.Candidate]:
    rows = (File.objects.filter(release__project_id=project_id, hold="")
            .values_list("filename", "release__version", "upload_time",
                         "release__license_expression", "release__classifiers"))
    return [_local_candidate(project, *row) for row in rows]


def _local_candidate(project, filename, version, upload_time, license_expression,
                     classifiers) -> core_policy.Candidate:
    # A local release's metadata is known whole: no License-Expression is an empty one, which
    # the license rules then judge by the classifiers.
    return core_policy.Candidate(project=project, version=version, filename=filename,
                                 uploaded=upload_time, first_seen=upload_time, local=True,
                                 license_expression=license_expression or None,
                                 classifiers=tuple(classifiers or ()))


def upstream_candidate(file, project: str, license_expression: str | None = None,
                       classifiers: list[str] | None = None,
                       scan_verdict: str | None = None, *,
                       provenance_identity: str | None = None,
                       pinned_identity: str | None = None) -> core_policy.Candidate:
    """``file``: an UpstreamFile or a page's ListedFile; the license fields are known once the
    file's metadata was read (None: not yet); ``scan_verdict``: the scanner's (an
    UpstreamFile carries its own); ``provenance_identity``: who its verified provenance says
    built it; ``pinned_identity``: the view's pin for the project."""
    return core_policy.Candidate(
        project=project, version=file.version, filename=file.filename,
        uploaded=file.upload_time, first_seen=file.first_seen, local=False,
        sha256=file.sha256 or None, license_expression=license_expression,
        classifiers=tuple(classifiers) if classifiers is not None else None,
        scan_verdict=scan_verdict or getattr(file, "scan_verdict", None) or None,
        provenance_identity=provenance_identity or None, pinned_identity=pinned_identity)


def upstream_candidates(state: ViewState | None, project, listed, *,
                        check: bool = True) -> tuple[list[core_policy.Candidate],
                                                     dict[str, str], bool]:
    """The policy's candidates for an upstream page's files (``listed``: its ListedFiles), who
    built each file whose provenance verified, and whether some files were left unchecked.

    ``state``: the view judging them (None: no view, only what is known); ``check``: check
    the provenance and read the licenses the view needs first, and pin a publisher on first
    use (network and writes: at render time only); without it, only what is known is read."""
    identities, pin, left = {}, None, False
    if state is not None:
        identities, pin, left = upstream_provenance(state, project, listed, check=check)
        if check and state.needs_licenses:
            left = files.read_licenses(project, listed) or left
    else:
        identities = provenance.verified_identities(project)
    licenses = pages.known_licenses(project)
    # A release's files share its metadata: one file's license stands for the others (an
    # sdist's, which has no PEP 658 metadata to read, included).
    of_release: dict[str, tuple] = {}
    for f in listed:
        if f.filename in licenses:
            of_release.setdefault(f.version, licenses[f.filename])
    verdicts = scans.verdicts(project)
    normalized = project.normalized_name
    candidates = [upstream_candidate(f, normalized,
                                     *licenses.get(f.filename,
                                                   of_release.get(f.version, (None, None))),
                                     scan_verdict=verdicts.get(f.filename),
                                     provenance_identity=identities.get(f.filename),
                                     pinned_identity=pin)
                  for f in listed]
    return candidates, identities, left


def hidden_upstream_in_views(project) -> list[tuple[str, dict[str, core_policy.Block]]]:
    """For a proxied project's page: in each view, which files of its cached upstream page
    (``project``, an UpstreamProject) are hidden and why. Judged with what is known, without
    the network: a file whose provenance a view needs and nobody checked yet counts as
    hidden, as it is until a page of that view is served."""
    listed = pages.listed_files(project)
    result = []
    for name in View.objects.order_by("name").values_list("name", flat=True):
        state = view_state(name)
        if state is None:
            continue
        candidates, _identities, _left = upstream_candidates(state, project, listed, check=False)
        judgement = judge(state, project.normalized_name, candidates, record=False)
        if judgement.hidden:
            result.append((name, judgement.hidden))
    return result


def upstream_provenance(state: ViewState, project, listed, *,
                        check: bool = True) -> tuple[dict[str, str], str | None, bool]:
    """For a page of upstream files: who built each file whose provenance verified, the
    view's pin for the project (None: none), and whether some files are left unchecked.
    ``check``: check the provenance the view needs first and pin a publisher on first use
    (network and writes: at render time only); without it, only what is known is read."""
    left = False
    if state.needs_provenance and check:
        left = provenance.check_listing(project, listed)
    identities = provenance.verified_identities(project)
    pin = None
    if state.has_pins and not check:
        pin = provenance.pinned(state.view, project.normalized_name)
    elif state.has_pins:
        oldest_first = [f.filename for f in sorted(
            listed, key=lambda f: (f.upload_time or f.first_seen, f.filename))]
        pin = provenance.pin_for(state.view, state.policy, project.normalized_name,
                                 identities, oldest_first)
    return identities, pin, left


def _check_one(state: ViewState, project: str, candidate: core_policy.Candidate):
    now = django_timezone.now()
    (candidate,) = with_advisories(project, [candidate])
    block = core_policy.evaluate(state.name, state.policy, candidate, now)
    # Exemptions lift only the cooldown: they are looked up only for a file it holds.
    if block is not None and block.kind == core_policy.COOLDOWN:
        block = core_policy.evaluate(state.name, state.policy, candidate, now,
                                     _exemptions(state, project, now))
    if block is not None:
        views_policy.record_block(state.name, candidate, block, direct=True)
        if block.kind == core_policy.PINNED:
            provenance.report_mismatch(state.name, candidate)
    return block


def check_local_file(state: ViewState, project: str, filename: str):
    """Why the view refuses a direct download of a local file, or None."""
    row = (File.objects.filter(filename=filename)
           .values_list("filename", "release__version", "upload_time",
                        "release__license_expression", "release__classifiers").first())
    if row is None:
        return None
    return _check_one(state, project, _local_candidate(project, *row))


def check_upstream_file(state: ViewState, file: UpstreamFile):
    """Why the view refuses a direct download of an upstream file, or None."""
    project = file.project.normalized_name
    if blocked_hash(file.sha256) is not None:
        # Bytes removed here as malicious never come back through an upstream (issue 14).
        return _blocked_hash_block(state.name, file.filename)
    identity, pin = None, None
    if state.needs_licenses:
        files.read_license(file)
    if state.needs_provenance:
        # A direct download a listing never judged (the page was not rendered here yet).
        provenance.check_file(file)
        identity = file.provenance_identity if file.provenance_state == provenance.VERIFIED \
            else None
        if state.has_pins:
            pin = provenance.pin_for(state.view, state.policy, project,
                                     {file.filename: identity or ""}, [file.filename])
    block = _check_one(state, project, upstream_candidate(
        file, project, file.license_expression, file.classifiers,
        provenance_identity=identity, pinned_identity=pin))
    return block


def name_listed(state: ViewState, name: str) -> bool:
    """Whether a view's index lists the project at all: only rules on whole names count here
    (a version rule hides versions on the project's page, not the project)."""
    p = state.policy
    if p.allow and not any(rule.matches_name(name) for rule in p.allow):
        return False
    return not any(rule.specifier is None and rule.matches_name(name) for rule in p.deny)



def hidden_in_views(project_id: int, project: str) -> list[tuple[str, dict[str, core_policy.Block]]]:
    """For a local project's page: in each view, which of its files are hidden and why."""
    candidates = local_candidates(project_id, project)
    result = []
    for name in View.objects.order_by("name").values_list("name", flat=True):
        state = view_state(name)
        if state is None:
            continue
        judgement = judge(state, project, candidates, record=False)
        if judgement.hidden:
            result.append((name, judgement.hidden))
    return result
