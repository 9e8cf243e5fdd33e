"""Namespaces (PEP 752 in spirit): a name prefix such as ``acme-`` that an administrator
grants to users. Only they may create projects under it, and the proxy never resolves a name
under it upstream (an upstream ``acme-tools`` would otherwise shadow, or stand in for, the
company's own). Existing projects under a prefix stay as they are.

Each change is a security event; ``actor`` None is the command line.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from packaging.utils import canonicalize_name

from bastion.core.errors import ValidationError
from bastion.core.lookalike import fold
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from .models import Namespace

PREFIX_MAX = 100
NOTE_MAX = 500
# A prefix is the start of a project name ending with a separator: "acme-", "acme.tools-".
_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?-$")


def _user(actor):
    return actor if getattr(actor, "pk", None) else None


def _require_admin(actor) -> None:
    from .moderation import require_admin  # moderation imports services, which import this

    require_admin(actor)


def normalize_prefix(prefix: str) -> str:
    """``Acme_`` → ``acme-``; refuses anything that cannot start a project name."""
    text = given = (prefix or "").strip()
    if len(text) > PREFIX_MAX:
        raise ValidationError(_("The prefix is too long: at most {limit} characters.").format(
            limit=PREFIX_MAX))
    if text and text[-1] not in "-_.":
        text += "-"
    normalized = canonicalize_name(text)
    if not _PREFIX.match(normalized):
        raise ValidationError(_("'{prefix}' is not a valid namespace prefix: use letters, "
                                "digits and '-', like 'acme-'.").format(prefix=given))
    return normalized


def _under(normalized: str, prefix: str) -> bool:
    if normalized.startswith(prefix) and len(normalized) > len(prefix):
        return True
    # "acrne-tools" and "acme_tools" are under "acme-" too: the prefix's words, folded.
    words = prefix.rstrip("-").count("-") + 1
    head = normalized.split("-")
    return len(head) > words and fold("-".join(head[:words])) == fold(prefix)


def namespace_of(name: str) -> Namespace | None:
    """The namespace a project name falls under, or None."""
    normalized = canonicalize_name(name)
    for namespace in Namespace.objects.order_by("-prefix"):
        if _under(normalized, namespace.prefix):
            return namespace
    return None


def claims(normalized: str) -> bool:
    """Whether a namespace keeps ``normalized`` from being resolved upstream."""
    prefixes = list(Namespace.objects.values_list("prefix", flat=True))
    return any(_under(normalized, p) for p in prefixes)


def check_new_name(name: str, user) -> None:
    """Refuse ``name`` to anyone who is not a grantee of its namespace."""
    namespace = namespace_of(name)
    if namespace is None:
        return
    if getattr(user, "pk", None) and namespace.grantees.filter(pk=user.pk).exists():
        return
    # English: the upload API's answer (twine's reason phrase).
    raise ValidationError(f"The name '{name}' is in the namespace '{namespace.prefix}', which "
                          "only the users it was granted to may create projects in.",
                          status=403)


def namespaces() -> list[Namespace]:
    return list(Namespace.objects.prefetch_related("grantees").order_by("prefix"))


def _active_user(username: str):
    username = (username or "").strip()[:150]
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError(_("There is no active user named '{user}'.").format(user=username))
    return user


def grant(prefix: str, username: str, *, note: str = "", actor=None,
          info: RequestInfo | None = None) -> Namespace:
    """Give ``username`` the namespace ``prefix`` (created on its first grant)."""
    _require_admin(actor)
    prefix = normalize_prefix(prefix)
    note = " ".join((note or "").split())
    if len(note) > NOTE_MAX:
        raise ValidationError(_("Keep the note under {max} characters.").format(max=NOTE_MAX))
    user = _active_user(username)
    with transaction.atomic():
        namespace, created = Namespace.objects.select_for_update().get_or_create(
            prefix=prefix, defaults={"note": note, "created": timezone.now()})
        if not created and namespace.grantees.filter(pk=user.pk).exists():
            raise ValidationError(_("'{user}' already has the namespace '{prefix}'.").format(
                user=user.username, prefix=prefix))
        namespace.grantees.add(user)
        record(tags.ADMIN_NAMESPACE_GRANT, info=info, actor=_user(actor), user=user,
               additional={"prefix": prefix, "for_user": user.username, "note": note,
                           "new": created})
    return namespace


def revoke(prefix: str, username: str = "", *, actor=None,
           info: RequestInfo | None = None) -> Namespace | None:
    """Take the namespace from ``username``; without one, remove the namespace itself (its
    names may then be created by anyone, and resolved upstream). Returns what is left."""
    _require_admin(actor)
    prefix = normalize_prefix(prefix)
    with transaction.atomic():
        namespace = Namespace.objects.select_for_update().filter(prefix=prefix).first()
        if namespace is None:
            raise ValidationError(_("There is no namespace '{prefix}'.").format(prefix=prefix))
        if not (username or "").strip():
            record(tags.ADMIN_NAMESPACE_REVOKE, info=info, actor=_user(actor), user=_user(actor),
                   additional={"prefix": prefix, "for_user": ""})
            namespace.delete()
            return None
        user = get_user_model().objects.filter(username=username.strip()[:150]).first()
        if user is None or not namespace.grantees.filter(pk=user.pk).exists():
            raise ValidationError(_("'{user}' does not have the namespace '{prefix}'.").format(
                user=username.strip()[:150], prefix=prefix))
        namespace.grantees.remove(user)
        record(tags.ADMIN_NAMESPACE_REVOKE, info=info, actor=_user(actor), user=user,
               additional={"prefix": prefix, "for_user": user.username})
    return namespace
