"""PEP 740 provenance of upstream files, and the publishers views pin for proxied projects.

The only writer of UpstreamProvenance, of UpstreamFile's provenance columns and of
PublisherPin. An upstream page that names a file's provenance object (``provenance`` in
JSON, ``data-provenance`` in HTML) has it fetched through the proxy's one client (allowed
hosts only, redirects within the origin, size- and time-limited) and verified with the
verification local uploads use (``provenance.verification``: Sigstore against the configured
trust root, the subject bound to the file's name and sha256).

When: a file's provenance is checked once, on its first download, in every view (so the
Integrity API and the pages can serve it from then on). A view whose policy needs it to
decide what to list (``require_provenance``, pins) cannot wait for a download that its own
listing would never offer: there, rendering the page (once per change of the listing, not
per request) checks the newest unchecked files first, at most ``PROXY_PROVENANCE_PER_PAGE``
of them, ``PROXY_PROVENANCE_CONCURRENCY`` at a time. Results are kept: a verified or refused
object is not fetched again while the file's sha256 and provenance URL stay what they were.
An upstream that cannot be reached leaves the file unchecked (hidden where provenance is
required) and it is tried again at the next render.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from bastion.accounts import notifications
from bastion.core import names
from bastion.core import policy as core_policy
from bastion.core.text import one_line
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import RequestInfo, record
from bastion.packaging.moderation import require_admin
from bastion.provenance import trust
from bastion.provenance.verification import (
    MAX_PROVENANCE_BYTES,
    AttestationRefused,
    Verified,
    publisher_identity,
    verify_provenance,
)

from . import client, pages
from .models import PublisherPin, UpstreamFile, UpstreamProject, UpstreamProvenance, View

log = logging.getLogger(__name__)

INTEGRITY_TYPE = "application/vnd.pypi.integrity.v1+json"
VERIFIED, REFUSED = "verified", "refused"
TOFU, ADMIN = "tofu", "admin"


@dataclass(frozen=True)
class _Outcome:
    verified: Verified | None = None
    refused: str = ""  # why it did not verify
    failed: bool = False  # could not be fetched (or checked) now: try again later


def _fetch(upstream, url: str) -> bytes:
    headers = {"Accept": f"{INTEGRITY_TYPE}, application/json;q=0.9"}
    deadline = time.monotonic() + 3 * settings.PROXY_TIMEOUT
    response = client.open_stream(upstream, url, headers)
    try:
        if response.status_code != 200:
            raise client.UpstreamError(f"The upstream {upstream.name} answered "
                                       f"{response.status_code} for a provenance object.",
                                       status=response.status_code)
        return client.read_capped(response, MAX_PROVENANCE_BYTES, deadline=deadline)
    finally:
        response.close()


def _verify(upstream, url: str, filename: str, sha256: str, trust_root) -> _Outcome:
    """Fetch and verify one file's provenance object; no database here (it runs in the
    page's worker threads)."""
    try:
        document = _fetch(upstream, url)
    except client.UpstreamError as exc:
        if exc.status in (404, 410):
            return _Outcome(refused="The upstream lists a provenance object it does not serve.")
        log.warning("provenance of %s from upstream %s not fetched: %s", filename,
                    upstream.name, exc)
        return _Outcome(failed=True)
    try:
        return _Outcome(verified=verify_provenance(document, filename=filename, sha256=sha256,
                                                   trust_root=trust_root))
    except AttestationRefused as exc:
        return _Outcome(refused=exc.message[:1000])


def _root():
    try:
        return trust.current_root()
    except ValidationError as exc:  # the trust root is unusable: nothing can be checked now
        log.warning("provenance not checked: %s", exc)
        return None


def _store(file: UpstreamFile, outcome: _Outcome, *, info: RequestInfo | None = None) -> None:
    if outcome.failed:
        return
    now = timezone.now()
    verified = outcome.verified
    values = {"sha256": file.sha256, "verified": verified is not None, "reason": outcome.refused,
              "checked": now, "publisher": {}, "kind": "", "repository_url": "",
              "workflow": "", "identity": "", "log_index": None, "document": {}}
    identity = ""
    if verified is not None:
        identity = publisher_identity(verified)[:500]
        publisher = verified.publisher
        values.update(
            publisher=publisher, kind=str(publisher.get("kind") or "")[:50],
            repository_url=verified.repository_url[:500],
            workflow=str(publisher.get("workflow") or publisher.get("workflow_filepath")
                         or "")[:500],
            identity=identity, log_index=verified.log_index,
            # PEP 740's provenance object, rebuilt from what verified: the publisher the
            # certificate names, not the one the upstream claimed.
            document={"version": 1, "attestation_bundles": [
                {"publisher": publisher, "attestations": verified.attestations}]})
    state = VERIFIED if verified is not None else REFUSED
    with transaction.atomic():
        UpstreamProvenance.objects.update_or_create(file=file, defaults=values)
        UpstreamFile.objects.filter(pk=file.pk).update(provenance_state=state,
                                                       provenance_identity=identity)
        # Pages list the file's provenance from now on: they are stale.
        UpstreamProject.objects.filter(pk=file.project_id).update(serial=F("serial") + 1)
        record(tags.PROXY_FILE_PROVENANCE, info=info, additional={
            "upstream": file.project.upstream.name, "project": file.project.normalized_name,
            "filename": file.filename, "verified": verified is not None,
            "identity": identity, "reason": outcome.refused[:300],
            "log_index": verified.log_index if verified is not None else None})
    file.provenance_state, file.provenance_identity = state, identity


def check_file(file: UpstreamFile, *, info: RequestInfo | None = None) -> None:
    """Check the provenance of one file its page names one for, once (its first download,
    or a view's check of a direct download). Network: call it outside a transaction."""
    if not file.provenance_url or file.provenance_state:
        return
    root = _root()
    if root is None:
        return
    outcome = _verify(file.project.upstream, file.provenance_url, file.filename, file.sha256,
                      root)
    _store(file, outcome, info=info)


def check_listing(project: UpstreamProject, listed) -> bool:
    """Check the provenance of a page's unchecked files (newest first, bounded, a few at a
    time) for a view that needs it to decide; True when some are left unchecked."""
    wanted = [f for f in listed if f.provenance_url]
    if not wanted:
        return False
    checked = set(UpstreamFile.objects.filter(project=project).exclude(provenance_state="")
                  .values_list("filename", flat=True))
    todo = [f for f in reversed(wanted) if f.filename not in checked]
    if not todo:
        return False
    limit = max(1, settings.PROXY_PROVENANCE_PER_PAGE)
    batch, left = todo[:limit], len(todo) > limit
    root = _root()
    if root is None:
        return True
    upstream = project.upstream

    def work(f):
        return _verify(upstream, f.provenance_url, f.filename, f.sha256, root)

    with ThreadPoolExecutor(
            max_workers=max(1, min(settings.PROXY_PROVENANCE_CONCURRENCY, 32))) as pool:
        outcomes = list(pool.map(work, batch))
    for f, outcome in zip(batch, outcomes):
        if outcome.failed:
            left = True
            continue
        row = pages.file_row(project, f.filename)
        if row is not None and row.sha256 == f.sha256 and row.provenance_url == f.provenance_url:
            _store(row, outcome)
    return left


def verified_identities(project: UpstreamProject) -> dict[str, str]:
    """Filename -> who built it, for the page's files whose provenance verified."""
    return dict(UpstreamFile.objects.filter(project=project, listed=True,
                                            provenance_state=VERIFIED)
                .values_list("filename", "provenance_identity"))


def provenance_of(normalized: str, version: str, filename: str) -> UpstreamProvenance | None:
    """The verified provenance of a listed upstream file (the Integrity API serves it)."""
    from packaging.utils import canonicalize_version

    row = (UpstreamProvenance.objects.select_related("file")
           .filter(verified=True, file__filename=filename, file__listed=True,
                   file__project__normalized_name=normalized, file__project__found=True,
                   file__project__upstream__enabled=True,
                   file__provenance_state=VERIFIED).first())
    if row is None or row.sha256 != row.file.sha256:
        return None
    if canonicalize_version(row.file.version) != canonicalize_version(version):
        return None
    if pages.is_locally_claimed(normalized):  # the caller saw no local project
        return None
    return row


# --- pins ----------------------------------------------------------------------------------

def has_pins(view: View, policy: core_policy.Policy) -> bool:
    """Whether judging the view's upstream files needs its pins (read once per revision)."""
    return policy.pin_publishers == TOFU or PublisherPin.objects.filter(view=view).exists()


def pinned(view: View, normalized: str) -> str | None:
    return (PublisherPin.objects.filter(view=view, normalized_name=normalized)
            .values_list("identity", flat=True).first())


def pin_for(view: View, policy: core_policy.Policy, normalized: str,
            identities: dict[str, str], order: list[str]) -> str | None:
    """The identity pinned for ``normalized`` in the view; with ``pin_publishers: tofu`` and
    none yet, the first verified one seen is pinned now. ``order``: the filenames oldest
    first (``identities`` names who built those that verified)."""
    current = pinned(view, normalized)
    if current is not None or policy.pin_publishers != TOFU:
        return current
    first = next((identities[name] for name in order if identities.get(name)), None)
    if first is None:
        return None
    try:
        with transaction.atomic():
            PublisherPin.objects.create(view=view, normalized_name=normalized, identity=first,
                                        source=TOFU, created=timezone.now())
            record(tags.PROXY_PUBLISHER_PIN_TOFU, additional={
                "view": view.name, "name": normalized, "identity": first})
    except IntegrityError:  # another process pinned it first: theirs stands
        return pinned(view, normalized)
    return first


def _advance(view: View) -> None:
    from .views_policy import _advance as advance

    advance(view, timezone.now())


def add_pin(view_name: str, pin: str, *, actor=None, info: RequestInfo | None = None
            ) -> PublisherPin:
    """Pin ``project=identity`` in the view (replacing a pin the view made on first use or an
    earlier one); event admin:view:pin:add."""
    from .views_policy import _view_or_refuse

    require_admin(actor)
    normalized, identity = core_policy.parse_pin(pin)
    with transaction.atomic():
        view = _view_or_refuse(view_name)
        before = PublisherPin.objects.select_for_update().filter(
            view=view, normalized_name=normalized).first()
        if before is not None and before.identity == identity and before.source == ADMIN:
            return before
        if before is not None:
            before.delete()
        row = PublisherPin.objects.create(view=view, normalized_name=normalized,
                                          identity=identity, source=ADMIN, created_by=actor,
                                          created=timezone.now())
        _advance(view)
        record(tags.ADMIN_VIEW_PIN_ADD, info=info, actor=actor, user=actor, additional={
            "view": view.name, "name": normalized, "identity": identity,
            "before": before.identity if before is not None else None})
    return row


def remove_pin(view_name: str, project: str, *, actor=None,
               info: RequestInfo | None = None) -> None:
    """Withdraw the view's pin of ``project`` (an administrator's, or one made on first use:
    with tofu, the next verified identity seen is pinned again); event admin:view:pin:remove."""
    from .views_policy import _view_or_refuse

    require_admin(actor)
    project = (project or "").strip()
    if not names.is_valid_name(project):
        raise ValidationError(_("'{name}' is not a valid project name.").format(
            name=one_line(project, 200)))
    normalized = names.normalize(project)
    with transaction.atomic():
        view = _view_or_refuse(view_name)
        row = PublisherPin.objects.select_for_update().filter(
            view=view, normalized_name=normalized).first()
        if row is None:
            raise ValidationError(_("The view {view} pins no publisher for {name}.").format(
                view=view.name, name=normalized), status=404)
        record(tags.ADMIN_VIEW_PIN_REMOVE, info=info, actor=actor, user=actor, additional={
            "view": view.name, "name": normalized, "identity": row.identity,
            "source": row.source})
        row.delete()
        _advance(view)


def pins(view_name: str | None = None) -> list[PublisherPin]:
    rows = PublisherPin.objects.select_related("view").order_by("view__name", "normalized_name")
    if view_name:
        rows = rows.filter(view__name=view_name)
    return list(rows[:1000])


# --- a release from another publisher ------------------------------------------------------

def report_mismatch(view_name: str, candidate: core_policy.Candidate) -> None:
    """A view hid a file attested by another publisher than the pinned one: a security event
    and the administrators' mail, once per view and file."""
    filename = candidate.filename
    if SecurityEvent.objects.filter(tag=tags.PROXY_PUBLISHER_MISMATCH,
                                    additional__view=view_name,
                                    additional__filename=filename).exists():
        return
    with transaction.atomic():
        record(tags.PROXY_PUBLISHER_MISMATCH, additional={
            "view": view_name, "name": candidate.project, "version": candidate.version,
            "filename": filename, "identity": candidate.provenance_identity,
            "pinned": candidate.pinned_identity})
    admins = list(get_user_model().objects.filter(is_superuser=True, is_active=True)
                  .exclude(email="").values_list("email", flat=True))
    notifications.send(admins, format_lazy(
        gettext_lazy("Publisher mismatch: {filename} hidden in the view {view}"),
        filename=filename, view=view_name), format_lazy(gettext_lazy(
            "The upstream file {filename} ({name} {version}) was attested by {identity}, but "
            "the view {view} pins {pinned} as the publisher of {name}. The release is hidden "
            "in that view.\n\nIf the project really moved, pin the new publisher:\n"
            "  bastion admin view pin add {view} {name}={identity}\n"
            "Otherwise someone else published it: report it upstream.\n\n"
            "Or in the admin console: {link}"),
            filename=filename, name=candidate.project, version=candidate.version,
            identity=candidate.provenance_identity, pinned=candidate.pinned_identity,
            view=view_name, link=f"{notifications.site_url()}/admin/views/{view_name}/"))
