"""The console's Issuers area (``/admin/issuers/``): the OIDC issuers trusted publishers may
use, on the publishing services (like ``bastion admin issuer``)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events.services import RequestInfo
from bastion.provenance import trust
from bastion.publishing import services
from bastion.publishing.models import Issuer, IssuerKind

from .access import console_view

# A key set is small; a larger field is not one (the service refuses what is cut).
_JWKS_LIMIT = 1024 * 1024


def _typed(post) -> dict:
    return {"name": one_line(post.get("name"), 60), "kind": one_line(post.get("kind"), 20),
            "url": one_line(post.get("url"), 300),
            "jwks": str(post.get("jwks") or "")[:_JWKS_LIMIT],
            "claims": one_line(post.get("claims"), 2000)}


def _list(request, *, typed=None, error: str = "", status: int = 200):
    rows = [(row, row.publishers.count()) for row in Issuer.objects.order_by("name")]
    root = trust.status()
    return render(request, "console/issuers.html", {
        "area": "issuers", "rows": rows, "kinds": IssuerKind.choices,
        "typed": typed or {"kind": IssuerKind.CUSTOM}, "error": error,
        "root": root, "root_age": (timezone.now() - root.installed).days
        if root.installed else None}, status=status)


@console_view
@require_safe
def index(request):
    return _list(request)


@console_view
@require_POST
def add(request):
    typed = _typed(request.POST)
    try:
        row = services.add_issuer(
            name=typed["name"], kind=typed["kind"], url=typed["url"], jwks=typed["jwks"].strip(),
            identifying_claims=typed["claims"].replace(",", " ").split(),
            actor=request.user, info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _list(request, typed=typed, error=exc.message, status=400)
    messages.success(request, _("Added the issuer {name}.").format(name=row.name))
    return redirect(reverse("console:issuers"))


@console_view
@require_POST
def remove(request, name: str):
    row = Issuer.objects.filter(name=name).first()
    if row is None:
        return _list(request, error=_("There is no issuer named {name}.").format(name=name),
                     status=404)
    try:
        services.remove_issuer(row, actor=request.user, info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _list(request, error=exc.message, status=400)
    messages.success(request, _("Removed the issuer {name}.").format(name=name))
    return redirect(reverse("console:issuers"))


@console_view
@require_POST
def sigstore_refresh(request):
    """Install a Sigstore trust root pasted as JSON (air-gapped sites), or, with nothing
    pasted, the one Sigstore's TUF repository serves (like ``bastion admin sigstore
    refresh``)."""
    document = str(request.POST.get("trust_root") or "")[:trust.MAX_TRUST_ROOT_BYTES + 1]
    info = RequestInfo.from_request(request)
    try:
        if document.strip():
            if len(document) > trust.MAX_TRUST_ROOT_BYTES:
                raise ValidationError(_("A trust root is at most 1 MiB."))
            trust.install(document.strip().encode("utf-8"), source="console",
                          actor=request.user, info=info)
        else:
            trust.refresh(actor=request.user, info=info)
    except ValidationError as exc:
        return _list(request, error=exc.message, status=400)
    messages.success(request, _("Installed the new Sigstore trust root."))
    return redirect(reverse("console:issuers"))


urlpatterns = [
    path("sigstore/refresh/", sigstore_refresh, name="sigstore-refresh"),
    path("", index, name="issuers"),
    path("add/", add, name="issuers-add"),
    path("<slug:name>/remove/", remove, name="issuer-remove"),
]
