"""The console's Names area: look-alike names (``/admin/names/``: the review queue, allowed
names, a check, the corpus) and namespaces (``/admin/namespaces/``).

Each action is a POST that calls the service of ``packaging.lookalikes`` or
``packaging.namespaces`` that a ``bastion admin names|namespace`` command calls too, and is
recorded there as a security event. A GET of an action's URL shows its page and changes
nothing.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from bastion.core import lookalike
from bastion.core.names import is_valid_name
from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.packaging import lookalikes, namespaces
from bastion.proxy import lookalikes as proxy_lookalikes

from .access import console_view
from .forms import form_field as _field, request_info as _info




def _names_page(request, *, error: str = "", status: int = 200, checked=None):
    return render(request, "console/names.html", {
        "area": "names", "reviews": lookalikes.reviews(), "allowed": lookalikes.allowed_names(),
        "corpus": lookalikes.corpus_info(), "checked": checked, "error": error,
        "upstream_blocks": proxy_lookalikes.recent_blocks(),
        "note_max": lookalikes.NOTE_MAX, "corpus_max_mib": lookalike.MAX_CORPUS_BYTES // 2**20,
    }, status=status)


def _namespaces_page(request, *, error: str = "", status: int = 200):
    return render(request, "console/namespaces.html", {
        "area": "namespaces", "namespaces": namespaces.namespaces(), "error": error,
        "prefix_max": namespaces.PREFIX_MAX, "note_max": namespaces.NOTE_MAX,
    }, status=status)


@console_view
@require_safe
def names(request):
    checked = None
    query = one_line(request.GET.get("check") or "", 200)
    if query:
        match = lookalikes.resembles(query) if is_valid_name(query) else None
        checked = {"name": query, "valid": is_valid_name(query),
                   "reason": lookalike.describe(match, _) if match else ""}
    return _names_page(request, checked=checked)


@console_view
@require_safe
def namespaces_index(request):
    return _namespaces_page(request)


def _action(page, target: str):
    def wrap(view):
        @console_view
        @wraps(view)
        def action(request):
            if request.method != "POST":
                return redirect(target)
            try:
                done = view(request)
            except ValidationError as exc:
                return page(request, error=exc.message,
                            status=exc.status if exc.status >= 400 else 400)
            messages.success(request, done)
            return redirect(target)

        return action

    return wrap


@_action(_names_page, "console:names")
def allow(request):
    row = lookalikes.allow_name(_field(request, "name"),
                                note=_field(request, "note", lookalikes.NOTE_MAX),
                                actor=request.user, info=_info(request))
    return _("Allowed {name}: new projects may take it.").format(name=row.normalized_name)


@_action(_names_page, "console:names")
def disallow(request):
    name = lookalikes.disallow_name(_field(request, "name"), actor=request.user,
                                    info=_info(request))
    return _("{name} is judged as a look-alike again.").format(name=name)


@_action(_names_page, "console:names")
def corpus_load(request):
    upload = request.FILES.get("file")
    if upload is None:
        raise ValidationError(_("Choose a corpus file to load."))
    if upload.size > lookalike.MAX_CORPUS_BYTES:
        raise ValidationError(_("The corpus file is larger than {size} MiB.").format(
            size=lookalike.MAX_CORPUS_BYTES // 2**20))
    corpus = lookalikes.load_corpus(upload.read(), source=one_line(upload.name or "", 200),
                                    actor=request.user, info=_info(request))
    return _("Loaded {count} names from {source}.").format(count=corpus.count,
                                                            source=corpus.source)


@_action(_names_page, "console:names")
def corpus_reset(request):
    corpus = lookalikes.reset_corpus(actor=request.user, info=_info(request))
    return _("Back to the shipped corpus ({count} names).").format(count=corpus.count)


@_action(_namespaces_page, "console:namespaces")
def grant(request):
    namespace = namespaces.grant(_field(request, "prefix", namespaces.PREFIX_MAX),
                                 _field(request, "username", 150),
                                 note=_field(request, "note", namespaces.NOTE_MAX),
                                 actor=request.user, info=_info(request))
    return _("Granted {prefix} to {user}.").format(prefix=namespace.prefix,
                                                   user=_field(request, "username", 150))


@_action(_namespaces_page, "console:namespaces")
def revoke(request):
    username = _field(request, "username", 150)
    prefix = _field(request, "prefix", namespaces.PREFIX_MAX)
    left = namespaces.revoke(prefix, username, actor=request.user, info=_info(request))
    if left is None:
        return _("Removed the namespace {prefix}.").format(
            prefix=namespaces.normalize_prefix(prefix))
    return _("Took {prefix} from {user}.").format(prefix=left.prefix, user=username)


urlpatterns = [
    path("names/", names, name="names"),
    path("names/allow/", allow, name="names-allow"),
    path("names/disallow/", disallow, name="names-disallow"),
    path("names/corpus/load/", corpus_load, name="names-corpus-load"),
    path("names/corpus/reset/", corpus_reset, name="names-corpus-reset"),
    path("namespaces/", namespaces_index, name="namespaces"),
    path("namespaces/grant/", grant, name="namespaces-grant"),
    path("namespaces/revoke/", revoke, name="namespaces-revoke"),
]
