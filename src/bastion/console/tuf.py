"""The console's TUF area (``/admin/tuf/``): the index's TUF metadata (PEP 458) at a glance,
each role's version and expiry, like ``bastion tuf status``; and the online halves of the
air-gapped root ceremony, as ``bastion tuf sign-root --prepare`` / ``--apply`` do, through the
same services. Nothing is signed with an offline key here: the prepared directory goes out as
a zip, is signed on the machine that holds the keys (``bastion tuf sign``), and comes back as
one; the worker re-signs the online roles before they lapse."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from bastion.core.errors import ValidationError

from .access import console_view
from .forms import request_info


def _page(request, *, error: str = "", status: int = 200):
    # Imported here, as in simple.tuf_views: python-tuf brings cryptography and boto3.
    from bastion.core.tufmeta import lifetime
    from bastion.tuf import services as tuf

    states = tuf.status() if tuf.enabled() else None
    now = datetime.now(timezone.utc)
    rows = [{
        "role": state.role, "version": state.version, "expires": state.expires,
        "expired": state.expires <= now,
        # Online roles are re-signed once half their life is gone (the bins and snapshot when
        # the timestamp is, at least twice a day): a quarter left means no worker signed them.
        "late": state.role not in ("root", "targets") and
        state.expires - now < lifetime(state.role) / 4,
        "soon": state.role in ("root", "targets") and state.expires - now < lifetime("root") / 12,
    } for state in states or []]
    root_keys = []
    if states:
        root_keys = tuf.repository().root().signed.roles["root"].keyids
    pending = tuf.next_online_key_file()
    pending = pending if tuf.enabled() and pending.is_file() else None
    return render(request, "console/tuf.html", {
        "area": "tuf", "enabled": tuf.enabled(), "rows": rows, "root_keys": root_keys,
        "key_file": settings.TUF_KEY_FILE, "error": error, "pending_key": pending,
        # For the operator to compare with the key the offline machine shows before signing:
        # the prepared directory may have been rewritten on its way there (docs/tuf.md).
        "pending_keyid": tuf.load_signer(pending).public_key.keyid if pending else "",
    }, status=status)


@console_view
@require_safe
def index(request):
    return _page(request)


@console_view
@require_POST
def prepare(request):
    """The unsigned next root as a zip to carry to the offline keys."""
    from bastion.core import tufceremony
    from bastion.tuf import services as tuf

    if not tuf.enabled():
        return _page(request, error=_("TUF metadata is off here (BASTION_TUF)."), status=400)
    with tempfile.TemporaryDirectory(prefix="bastion-tuf-prepare-") as tmp:
        directory = Path(tmp) / "ceremony"
        try:
            version = tuf.prepare_root(directory, rotate_online=bool(
                request.POST.get("rotate_online_key")), actor=request.user,
                info=request_info(request))
            data = tufceremony.archive(directory)
        except ValidationError as exc:
            return _page(request, error=_("Nothing was prepared: {reason}").format(
                reason=exc.message), status=400)
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = (
        f'attachment; filename="bastion-tuf-root-v{version}-unsigned.zip"')
    return response


# A few root key ids (64 hex digits each), separated by spaces or commas.
MAX_EXPECTED = 1024


@console_view
@require_POST
def apply(request):
    """Install the root signed offline, uploaded as the zip of its ceremony directory."""
    from bastion.core import tufceremony
    from bastion.tuf import services as tuf

    if not tuf.enabled():
        return _page(request, error=_("TUF metadata is off here (BASTION_TUF)."), status=400)
    upload = request.FILES.get("file")
    with tempfile.TemporaryDirectory(prefix="bastion-tuf-apply-") as tmp:
        directory = Path(tmp) / "ceremony"
        try:
            if upload is None:
                raise ValidationError(_("Choose the zip of the signed directory."))
            if upload.size > tufceremony.MAX_ARCHIVE:
                raise ValidationError(_("The zip is larger than {size} KiB.").format(
                    size=tufceremony.MAX_ARCHIVE // 1024))
            try:
                tufceremony.unpack(upload.read(tufceremony.MAX_ARCHIVE + 1), directory)
            except tufceremony.CeremonyError as exc:
                raise ValidationError(str(exc)) from None
            expected = request.POST.get("expect_root_key", "")
            if len(expected) > MAX_EXPECTED:
                raise ValidationError(_("The expected root key ids are longer than {size} "
                                        "characters.").format(size=MAX_EXPECTED))
            version = tuf.apply_root(directory, expect_root_keys=expected.replace(",", " ")
                                     .split() or None, actor=request.user,
                                     info=request_info(request))
        except ValidationError as exc:
            # apply_root names files by their path, here a temporary one: the zip's names
            # are what the admin knows.
            reason = exc.message.replace(f"{directory}/", "").replace(str(directory),
                                                                       _("the zip"))
            return _page(request, error=_("The signed root was refused: {reason}").format(
                reason=reason), status=400)
    messages.success(request, _("Installed root version {version}.").format(version=version))
    return redirect("console:tuf")


urlpatterns = [
    path("", index, name="tuf"),
    path("prepare/", prepare, name="tuf-prepare"),
    path("apply/", apply, name="tuf-apply"),
]
