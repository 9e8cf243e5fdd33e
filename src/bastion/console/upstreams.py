"""The console's Upstreams area (``/admin/upstreams/``): the indexes names not found locally
are served from, on the proxy's services (like ``bastion admin upstream``). The password is
write-only: the pages say whether one is set, never what it is."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events.services import RequestInfo
from bastion.proxy import upstreams as services

from .access import console_view

# Form fields are cut a little past each limit so the service, not the cut, refuses.
_FIELD_LIMIT = 4000


def _lines(text) -> list[str]:
    """Patterns or hosts typed one per line or separated by commas or spaces."""
    raw = str(text or "")[:_FIELD_LIMIT].replace(",", " ")
    return [item for item in raw.split() if item]


def _number(text, label: str, *, optional: bool = False) -> int | None:
    value = one_line(text, 20)
    if not value and optional:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationError(_("{field} must be a whole number.").format(field=label)) from None


def _typed(post) -> dict:
    """What the form sent, to refill it after a refusal (never the password)."""
    return {"name": one_line(post.get("name"), 60), "url": one_line(post.get("url"), 600),
            "priority": one_line(post.get("priority"), 20),
            "include": " ".join(_lines(post.get("include"))),
            "file_hosts": " ".join(_lines(post.get("file_hosts"))),
            "username": one_line(post.get("username"), 250),
            "page_ttl": one_line(post.get("page_ttl"), 20),
            "enabled": post.get("enabled") == "1"}


def _list(request, *, typed=None, error: str = "", status: int = 200):
    return render(request, "console/upstreams.html", {
        "area": "upstreams", "rows": services.upstreams(), "typed": typed or {"priority": "100"},
        "error": error}, status=status)


@console_view
@require_safe
def index(request):
    return _list(request)


@console_view
@require_POST
def add(request):
    typed = _typed(request.POST)
    try:
        row = services.add_upstream(
            typed["name"], typed["url"],
            priority=_number(typed["priority"] or "100", _("The priority")),
            include=_lines(request.POST.get("include")),
            file_hosts=_lines(request.POST.get("file_hosts")), username=typed["username"],
            password=str(request.POST.get("password") or "")[:_FIELD_LIMIT],
            page_ttl=_number(typed["page_ttl"], _("The page TTL"), optional=True),
            actor=request.user, info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _list(request, typed=typed, error=exc.message, status=400)
    messages.success(request, _("Added the upstream {name}.").format(name=row.name))
    return redirect(reverse("console:upstreams"))


def _found(name: str):
    try:
        return services.get_upstream(name)
    except ValidationError:
        return None


@console_view
@require_http_methods(["GET", "HEAD", "POST"])
def edit(request, name: str):
    row = _found(name)
    if row is None:
        return render(request, "console/upstream_missing.html",
                      {"area": "upstreams", "name": name[:60]}, status=404)
    if request.method != "POST":
        return _edit_page(request, row)
    typed = _typed(request.POST)
    try:
        password = None
        if request.POST.get("clear_password") == "1":
            password = ""  # nosec B105 # not a secret: "" clears the stored one
        elif request.POST.get("password"):
            password = str(request.POST.get("password"))[:_FIELD_LIMIT]
        ttl = _number(typed["page_ttl"], _("The page TTL"), optional=True)
        changes = services.UpstreamChanges(
            url=typed["url"], priority=_number(typed["priority"], _("The priority")),
            include=_lines(request.POST.get("include")),
            file_hosts=_lines(request.POST.get("file_hosts")), username=typed["username"],
            password=password, page_ttl=-1 if ttl is None else ttl,
            enabled=typed["enabled"])
        services.set_upstream(row.name, changes, actor=request.user,
                              info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _edit_page(request, row, typed=typed, error=exc.message, status=400)
    messages.success(request, _("Saved the upstream {name}.").format(name=row.name))
    return redirect(reverse("console:upstreams"))


def _edit_page(request, row, *, typed=None, error: str = "", status: int = 200):
    typed = typed or {"url": row.url, "priority": str(row.priority),
                      "include": " ".join(row.include), "file_hosts": " ".join(row.file_hosts),
                      "username": row.username,
                      "page_ttl": "" if row.page_ttl is None else str(row.page_ttl),
                      "enabled": row.enabled}
    return render(request, "console/upstream.html", {
        "area": "upstreams", "row": row, "typed": typed, "error": error}, status=status)


@console_view
@require_http_methods(["GET", "HEAD", "POST"])
def remove(request, name: str):
    row = _found(name)
    if row is None:
        return render(request, "console/upstream_missing.html",
                      {"area": "upstreams", "name": name[:60]}, status=404)
    if request.method != "POST" or request.POST.get("confirmed") != "1":
        # Removing drops every cached page and file of it: say so before doing it.
        return render(request, "console/upstream_remove.html", {
            "area": "upstreams", "row": row, "pages": row.projects.count()})
    try:
        services.remove_upstream(row.name, actor=request.user,
                                 info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _edit_page(request, row, error=exc.message, status=400)
    messages.success(request, _("Removed the upstream {name} and what was cached of it.")
                     .format(name=row.name))
    return redirect(reverse("console:upstreams"))


urlpatterns = [
    path("", index, name="upstreams"),
    path("add/", add, name="upstreams-add"),
    path("<slug:name>/", edit, name="upstream"),
    path("<slug:name>/remove/", remove, name="upstream-remove"),
]
