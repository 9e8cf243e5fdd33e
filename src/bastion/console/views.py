"""The console's Views area (``/admin/views/``): the index's views, one view's policy form,
its exemptions from the cooldown, and the files views hid recently. Also the admins' JSON feed
of recent blocks (``/admin/blocks.json``, wired in ``bastion.urls``).

Each action is a POST calling one service of ``proxy.views_policy`` (each also a
``bastion admin view`` command), which records the security event. ``+`` is in no view name,
so the add action cannot be shadowed by a view.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone
from functools import wraps

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _, gettext_lazy
from django.views.decorators.http import require_GET, require_safe

from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.proxy import provenance as proxy_provenance
from bastion.proxy import views_policy

from .access import console_view
from .forms import form_field as _field, request_info as _info

LIST_FIELD_LIMIT = 100_000  # a whole textarea of rules
BLOCKS_SHOWN = 50
JSON_DEFAULT_LIMIT = 100
POLICY_LISTS = ("allow", "deny", "deny_licenses", "deny_classifiers")




def _lines(request, name: str) -> list[str]:
    value = request.POST.get(name) or ""
    if len(value) > LIST_FIELD_LIMIT:
        raise ValidationError(_("The {name} list is too long: at most {limit} characters.")
                              .format(name=name, limit=LIST_FIELD_LIMIT))
    return [line.strip() for line in value.splitlines() if line.strip()]


def _view_or_404(name: str):
    view = views_policy.find_view(name)
    if view is None:
        raise Http404(_("There is no view named '{name}'.").format(name=name[:50]))
    return view


def _url(view) -> str:
    return reverse("console:view", args=[view.name])


def _path_of(view) -> str:
    return "/simple/" if view.name == views_policy.DEFAULT_VIEW else f"/views/{view.name}/simple/"


# --- the list ------------------------------------------------------------------------------

def _render_index(request, *, error: str = "", status: int = 200, values=None):
    rows = [{"view": v, "policy": views_policy.policy_of(v), "path": _path_of(v),
             "exemptions": len(views_policy.exemptions_of(v)),
             "pins": len(proxy_provenance.pins(v.name))} for v in views_policy.views()]
    return render(request, "console/views.html", {
        "area": "views", "rows": rows, "error": error, "values": values or {},
        "blocks": views_policy.recent_blocks(limit=BLOCKS_SHOWN),
    }, status=status)


@console_view
@require_safe
def index(request):
    return _render_index(request)


@console_view
def add(request):
    if request.method != "POST":
        return redirect("console:views")
    try:
        view = views_policy.add_view(_field(request, "name", 50), policy={},
                                     description=_field(request, "description", 1000),
                                     actor=request.user, info=_info(request))
    except ValidationError as exc:
        return _render_index(request, error=exc.message, status=400,
                             values={k: one_line(request.POST.get(k), 1000)
                                     for k in ("name", "description")})
    messages.success(request, _("Added the view {name}: its policy is below.").format(
        name=view.name))
    return redirect(_url(view))


VULNERABILITY_LEVELS = [("low", gettext_lazy("low and higher")),
                        ("moderate", gettext_lazy("moderate and higher")),
                        ("high", gettext_lazy("high and critical")),
                        ("critical", gettext_lazy("critical"))]


# --- one view ------------------------------------------------------------------------------

def _render_view(request, view, *, error: str = "", status: int = 200, form=None):
    policy = views_policy.policy_of(view)
    stored = policy.to_json()
    if form is None:
        form = {key: "\n".join(stored[key]) for key in POLICY_LISTS}
        form.update({
            "min_age": "" if stored["min_age_hours"] is None else str(stored["min_age_hours"]),
            "frozen_at": stored["frozen_at"] or "", "hold_local": stored["hold_local"],
            "license_unknown": stored["license_unknown"], "description": view.description,
            "lookalikes": stored["lookalikes"],
            "hide_vulnerable": stored["hide_vulnerable"] or "",
            "hide_scanned": stored["hide_scanned"],
            "require_provenance": stored["require_provenance"],
            "pin_publishers": stored["pin_publishers"]})
    return render(request, "console/views_one.html", {
        "area": "views", "view": view, "policy": policy, "form": form, "error": error,
        "path": _path_of(view), "is_default": view.name == views_policy.DEFAULT_VIEW,
        "exemptions": views_policy.exemptions_of(view),
        "pins": proxy_provenance.pins(view.name),
        "blocks": views_policy.recent_blocks(view=view.name, limit=BLOCKS_SHOWN),
        "default_hours": policy.default_min_age_hours,
        "vulnerability_levels": VULNERABILITY_LEVELS,
    }, status=status)


@console_view
@require_safe
def detail(request, name: str):
    return _render_view(request, _view_or_404(name))


def view_action(handler):
    """A POST on one view: ``handler(request, view)`` returns what to tell the admin, or raises
    ValidationError, shown on the view's page (nothing changed)."""

    @console_view
    @wraps(handler)
    def action(request, name: str, **kwargs):
        view = _view_or_404(name)
        if request.method != "POST":
            return redirect(_url(view))
        try:
            done = handler(request, view, **kwargs)
        except ValidationError as exc:
            form = None
            if handler.__name__ == "policy":
                form = {k: one_line(request.POST.get(k), LIST_FIELD_LIMIT) if k not in
                        POLICY_LISTS else (request.POST.get(k) or "")[:LIST_FIELD_LIMIT]
                        for k in (*POLICY_LISTS, "min_age", "frozen_at", "license_unknown",
                                  "description", "lookalikes", "hide_vulnerable",
                                  "hide_scanned", "pin_publishers")}
                form["hold_local"] = bool(request.POST.get("hold_local"))
                form["require_provenance"] = bool(request.POST.get("require_provenance"))
            return _render_view(request, view, error=exc.message, form=form,
                                status=exc.status if exc.status >= 400 else 400)
        if isinstance(done, tuple):
            messages.success(request, done[0])
            return redirect(done[1])
        messages.success(request, done)
        return redirect(_url(view))

    return action


def _min_age(text: str):
    text = text.strip().lower()
    if text in ("", "default"):
        return None
    units = {"h": 1, "d": 24}
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1)
    if not number.strip().isdigit() or len(number) > 6:
        raise ValidationError(_("The minimum age must be hours or days, like 72h, 3d or 0, or "
                                "empty for the default."))
    return int(number) * unit


@view_action
def policy(request, view):
    data = {key: _lines(request, key) for key in POLICY_LISTS}
    data["min_age_hours"] = _min_age(_field(request, "min_age", 20))
    data["frozen_at"] = _field(request, "frozen_at", 40) or None
    data["hold_local"] = bool(request.POST.get("hold_local"))
    data["license_unknown"] = _field(request, "license_unknown", 10) or "allow"
    data["lookalikes"] = _field(request, "lookalikes", 10) or "block"
    data["hide_vulnerable"] = _field(request, "hide_vulnerable", 10) or None
    data["hide_scanned"] = _field(request, "hide_scanned", 10) or "malicious"
    data["require_provenance"] = bool(request.POST.get("require_provenance"))
    data["pin_publishers"] = _field(request, "pin_publishers", 10) or "off"
    updated = views_policy.set_view(view.name, policy=data,
                                    description=_field(request, "description", 1000),
                                    actor=request.user, info=_info(request))
    if updated.revision == view.revision:
        return _("Nothing changed.")
    return _("Saved the policy of {name}.").format(name=view.name)


@view_action
def remove(request, view):
    if _field(request, "confirm", 50) != view.name:
        raise ValidationError(_("Type the view's name to confirm."))
    views_policy.remove_view(view.name, actor=request.user, info=_info(request))
    return _("Removed the view {name}.").format(name=view.name), reverse("console:views")


def _expiry(text: str) -> datetime:
    text = text.strip()
    if text.isdigit() and len(text) <= 3:
        return timezone.now() + timedelta(days=int(text))
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValidationError(_("The expiry must be a number of days, or a date like "
                                "2026-12-31.")) from None
    return moment.replace(tzinfo=dt_timezone.utc) if moment.tzinfo is None else moment


@view_action
def exempt(request, view):
    exemption = views_policy.add_exemption(
        view.name, _field(request, "project"), version=_field(request, "version", 100),
        reason=_field(request, "reason", 1000), expires=_expiry(_field(request, "expires", 40)),
        actor=request.user, info=_info(request))
    return _("Exempted {project} from the cooldown of {name} until {expires} (UTC).").format(
        project=f"{exemption.normalized_name} {exemption.version}".strip(), name=view.name,
        expires=exemption.expires.astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M"))


@view_action
def unexempt(request, view, exemption_id: int):
    if not any(e.pk == exemption_id for e in view.exemptions.all()):
        raise ValidationError(_("There is no such exemption on this view."), status=404)
    views_policy.remove_exemption(exemption_id, actor=request.user, info=_info(request))
    return _("Withdrew the exemption.")


@view_action
def pin(request, view):
    row = proxy_provenance.add_pin(view.name, _field(request, "pin", 800), actor=request.user,
                                   info=_info(request))
    return _("Pinned {identity} as the publisher of {project} in {name}.").format(
        identity=row.identity, project=row.normalized_name, name=view.name)


@view_action
def unpin(request, view, project: str):
    proxy_provenance.remove_pin(view.name, project, actor=request.user, info=_info(request))
    return _("Withdrew the pin of {project}.").format(project=project[:200])


# --- /admin/blocks.json --------------------------------------------------------------------

def _json_refusal(message: str, status: int) -> JsonResponse:
    response = JsonResponse({"message": message}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def blocks_json(request):
    """``GET /admin/blocks.json?view=&limit=``: the files views hid recently, newest first.
    Wrapped in ``bastion.urls`` by ``web.admin_site.admin_only_json``."""
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_superuser):
        return _json_refusal("Only site administrators can read the recent blocks.", 403)
    view = one_line(request.GET.get("view"), 60)
    if view and views_policy.find_view(view) is None:
        return _json_refusal(f"There is no view named '{view[:50]}'.", 404)
    try:
        limit = int(request.GET.get("limit") or JSON_DEFAULT_LIMIT)
    except ValueError:
        return _json_refusal("'limit' must be a whole number.", 400)
    if not 0 < limit <= views_policy.MAX_BLOCKS_LISTED:
        return _json_refusal(f"'limit' must be between 1 and {views_policy.MAX_BLOCKS_LISTED}.",
                             400)
    rows = views_policy.recent_blocks(view=view or None, limit=limit)
    response = JsonResponse({"blocks": [views_policy.block_json(b) for b in rows]})
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("", index, name="views"),
    path("+add/", add, name="view-add"),
    path("<str:name>/", detail, name="view"),
    path("<str:name>/policy/", policy, name="view-policy"),
    path("<str:name>/remove/", remove, name="view-remove"),
    path("<str:name>/exempt/", exempt, name="view-exempt"),
    path("<str:name>/exemptions/<int:exemption_id>/remove/", unexempt, name="view-unexempt"),
    path("<str:name>/pins/", pin, name="view-pin"),
    path("<str:name>/pins/<str:project>/remove/", unpin, name="view-unpin"),
]
