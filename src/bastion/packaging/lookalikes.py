"""New project names that imitate established ones (typosquats), and the administrators'
answers to them.

A new name is judged (``core.lookalike``) against the corpus of popular PyPI names (shipped,
or as an administrator last loaded it) and against this index's own projects. A look-alike
is refused, or under ``BASTION_LOOKALIKE_ACTION=hold`` created quarantined and listed for
review. An administrator allows a name (``allow_name``): it then passes, and a project held
under it is released. Each decision is a security event; ``actor`` None is the command line.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy
from packaging.utils import canonicalize_name

from bastion.accounts import notifications
from bastion.core import lookalike, names
from bastion.core.errors import ValidationError
from bastion.core.lookalike import Corpus, LookAlike
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from .models import AllowedName, LookalikeCorpus, LookalikeReview, Project, ProjectStatus

logger = logging.getLogger(__name__)

NOTE_MAX = 500
SOURCE_MAX = 200
HOLD, REFUSE = "hold", "refuse"

_lock = threading.Lock()
# Built once per process and corpus version: (key, Corpus). Local projects apart, as they
# change with every new project while the big corpus changes only when an admin loads one.
_popular: tuple[object, Corpus] | None = None
_local: tuple[object, Corpus] | None = None


def _user(actor):
    return actor if getattr(actor, "pk", None) else None


def _require_admin(actor) -> None:
    from .moderation import require_admin  # moderation imports services, which import this

    require_admin(actor)


def _clean_note(note: str) -> str:
    note = " ".join((note or "").split())
    if len(note) > NOTE_MAX:
        raise ValidationError(_("Keep the note under {max} characters.").format(max=NOTE_MAX))
    return note


def _valid(name: str) -> str:
    name = (name or "").strip()
    if not name or not names.is_valid_name(name):
        raise ValidationError(_("'{name}' is not a valid project name.").format(
            name=name[:names.MAX_NAME_LENGTH]))
    return name


# --- the corpus ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CorpusInfo:
    source: str  # "shipped" or what the administrator named when loading it
    count: int
    loaded: object  # None: the shipped corpus


def corpus_info() -> CorpusInfo:
    row = LookalikeCorpus.objects.only("source", "count", "loaded").first()
    if row is None:
        return CorpusInfo("shipped", len(_popular_corpus()), None)
    return CorpusInfo(row.source, row.count, row.loaded)


def _popular_corpus() -> Corpus:
    global _popular
    key = LookalikeCorpus.objects.values_list("pk", "loaded").first() or "shipped"
    kept = _popular
    if kept is not None and kept[0] == key:
        return kept[1]
    with _lock:
        if _popular is not None and _popular[0] == key:
            return _popular[1]
        if key == "shipped":
            rows = lookalike.shipped_corpus()
        else:
            rows = [(n, c) for n, c in LookalikeCorpus.objects.get(pk=key[0]).names]
        _popular = (key, Corpus(rows))
        return _popular[1]


def _local_corpus() -> Corpus:
    global _local
    state = Project.objects.aggregate(count=Count("pk"), last=Max("pk"))
    key = (state["count"], state["last"])
    kept = _local
    if kept is not None and kept[0] == key:
        return kept[1]
    with _lock:
        # No downloads are counted for local projects: every one is protected alike from
        # typos, none from the affix and version-digit rules meant for the most popular.
        corpus = Corpus(((n, 0) for n in Project.objects.values_list("name", flat=True)
                         .iterator(chunk_size=2000)), top=0)
        _local = (key, corpus)
        return corpus


def preload() -> None:
    """Build both corpora now (the server's master, before it forks its workers: each worker
    then starts with them, instead of its first proxied name building them)."""
    _popular_corpus()
    _local_corpus()


def load_corpus(data: bytes, *, source: str, actor=None,
                info: RequestInfo | None = None) -> CorpusInfo:
    """Replace the corpus with the names in ``data`` (a top-pypi-packages CSV or JSON file, or
    names one a line)."""
    _require_admin(actor)
    source = " ".join((source or "").split())[:SOURCE_MAX] or "upload"
    rows = lookalike.parse_corpus(data)
    now = timezone.now()
    with transaction.atomic():
        LookalikeCorpus.objects.all().delete()
        LookalikeCorpus.objects.create(names=[[n, c] for n, c in rows], source=source,
                                       count=len(rows), loaded=now)
        record(tags.ADMIN_LOOKALIKE_CORPUS_LOAD, info=info, actor=_user(actor), user=_user(actor),
               additional={"source": source, "count": len(rows)})
    return CorpusInfo(source, len(rows), now)


def reset_corpus(*, actor=None, info: RequestInfo | None = None) -> CorpusInfo:
    """Go back to the corpus shipped with Bastion."""
    _require_admin(actor)
    with transaction.atomic():
        deleted, _rows = LookalikeCorpus.objects.all().delete()
        if not deleted:
            raise ValidationError(_("The shipped corpus is already in use."))
        count = len(lookalike.shipped_corpus())
        record(tags.ADMIN_LOOKALIKE_CORPUS_LOAD, info=info, actor=_user(actor), user=_user(actor),
               additional={"source": "shipped", "count": count})
    return CorpusInfo("shipped", count, None)


# --- judging a name --------------------------------------------------------------------------

def is_allowed(normalized: str) -> bool:
    return AllowedName.objects.filter(normalized_name=normalized).exists()


def resembles(name: str) -> LookAlike | None:
    """The established name ``name`` imitates, or None (allowed names imitate nothing)."""
    normalized = canonicalize_name(name)
    if is_allowed(normalized):
        return None
    local = _local_corpus()
    if normalized in local.weights:
        return None  # an existing project: not a new name
    return local.check(name) or _popular_corpus().check(name)


def refusal(match: LookAlike) -> str:
    # English: the upload API's answer (twine's reason phrase) and the CLI's.
    return (f"The name '{match.candidate}' looks like the established project "
            f"'{match.target}' ({match.reason}); choose another name, or ask an administrator "
            "to allow it.")


def check_new_name(name: str, user) -> None:
    """Refuse a look-alike ``name`` (packaging's check of a new project name)."""
    if settings.LOOKALIKE_ACTION == HOLD:
        return  # created, then held: see hold_if_lookalike
    match = resembles(name)
    if match is None:
        return
    if not transaction.get_connection().in_atomic_block:
        # Before the upload's transaction, so the refusal stays recorded (inside it, it would
        # roll back with the refused change; the first check already recorded it).
        with transaction.atomic():
            record(tags.PROJECT_LOOKALIKE_REFUSE, actor=_user(user), user=_user(user),
                   additional={"name": name, "resembles": match.target, "kind": match.kind,
                               "reason": match.reason})
    raise ValidationError(refusal(match))


def hold_if_lookalike(project: Project, user, *, info: RequestInfo | None = None) -> bool:
    """Quarantine the just-created ``project`` for review when its name is a look-alike and
    BASTION_LOOKALIKE_ACTION is hold; in the project's creating transaction."""
    if settings.LOOKALIKE_ACTION != HOLD:
        return False
    normalized = project.normalized_name
    if is_allowed(normalized):
        return False
    local = _local_corpus()
    match = (local.imitates(project.name) if normalized in local.weights
             else local.check(project.name)) or _popular_corpus().check(project.name)
    if match is None:
        return False
    from .services import set_project_status  # services imports this module

    reason = f"Held for review: {match.reason}."[:500]
    set_project_status(project, ProjectStatus.QUARANTINED, reason=reason, actor=_user(user),
                       info=info)
    LookalikeReview.objects.create(project=project, resembles=match.target, reason=reason,
                                   created=timezone.now(), requested_by=_user(user))
    record(tags.PROJECT_LOOKALIKE_HOLD, info=info, actor=_user(user), user=_user(user),
           project=project, additional={"name": project.name, "resembles": match.target,
                                        "kind": match.kind, "reason": match.reason})
    _mail_admins_held(project, match, user)
    return True


def _mail_admins_held(project: Project, match: LookAlike, user) -> None:
    admins = list(get_user_model().objects.filter(is_superuser=True, is_active=True)
                  .exclude(email="").values_list("email", flat=True))
    # Each administrator reads it in their own language (notifications.send, after commit).
    notifications.send(admins, format_lazy(
        gettext_lazy("Project held as a look-alike: {name}"), name=project.name), format_lazy(
        gettext_lazy("{username} created the project {name} on {site}. Its name looks like the "
                     "established project {target}, so it is quarantined until an "
                     "administrator decides.\n\n"
                     "  allow:  bastion admin names allow {name} --note \"why\"\n"
                     "  reject: bastion admin delete-project {name} --confirm {name}\n\n"
                     "Or in the admin console: {link}"),
        username=getattr(user, "username", "?"), name=project.name, target=match.target,
        site=notifications.site_url(), link=f"{notifications.site_url()}/admin/names/"))


# --- the administrators' answers -------------------------------------------------------------

def allowed_names() -> list[AllowedName]:
    return list(AllowedName.objects.select_related("created_by").order_by("normalized_name"))


def reviews(*, pending_only: bool = True) -> list[LookalikeReview]:
    rows = LookalikeReview.objects.select_related("project", "requested_by", "decided_by")
    if pending_only:
        rows = rows.filter(decided__isnull=True)
    return list(rows.order_by("created", "pk"))


def pending_count() -> int:
    return LookalikeReview.objects.filter(decided__isnull=True).count()


def allow_name(name: str, *, note: str = "", actor=None,
               info: RequestInfo | None = None) -> AllowedName:
    """Let ``name`` through the look-alike check from now on; a project held under it is
    released from its quarantine."""
    _require_admin(actor)
    name = _valid(name)
    note = _clean_note(note)
    normalized = canonicalize_name(name)
    match = None
    try:
        match = resembles(name)
    except Exception:  # noqa: BLE001 - only the event's detail; the allowance stands anyway
        logger.warning("look-alike check failed while allowing %r", normalized, exc_info=True)
    with transaction.atomic():
        review = (LookalikeReview.objects.select_for_update().select_related("project")
                  .filter(project__normalized_name=normalized, decided__isnull=True).first())
        resembles_name = match.target if match else (review.resembles if review else "")
        try:
            with transaction.atomic():
                allowed = AllowedName.objects.create(
                    normalized_name=normalized, resembles=resembles_name, note=note,
                    created=timezone.now(), created_by=_user(actor))
        except IntegrityError:
            raise ValidationError(_("'{name}' is already allowed.").format(
                name=normalized)) from None
        record(tags.ADMIN_ALLOWED_NAME_ADD, info=info, actor=_user(actor), user=_user(actor),
               additional={"name": normalized, "resembles": resembles_name, "note": note})
        if review is not None:
            review.decided = timezone.now()
            review.decided_by = _user(actor)
            review.save(update_fields=["decided", "decided_by"])
            if review.project.status == ProjectStatus.QUARANTINED:
                from .moderation import unquarantine

                unquarantine(review.project.name, actor=_user(actor), info=info)
    return allowed


def disallow_name(name: str, *, actor=None, info: RequestInfo | None = None) -> str:
    """Withdraw an allowance: new projects under ``name`` are judged again."""
    _require_admin(actor)
    normalized = canonicalize_name((name or "").strip()[:names.MAX_NAME_LENGTH])
    with transaction.atomic():
        row = AllowedName.objects.select_for_update().filter(normalized_name=normalized).first()
        if row is None:
            raise ValidationError(_("'{name}' is not an allowed name.").format(name=normalized))
        record(tags.ADMIN_ALLOWED_NAME_REMOVE, info=info, actor=_user(actor), user=_user(actor),
               additional={"name": normalized, "resembles": row.resembles})
        row.delete()
    return normalized
