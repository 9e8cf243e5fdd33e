"""Administering upstream indexes: every change is a security event. (Owner: px-upstream.)

The password is write-only: it is sent to the upstream's own origin and nowhere else; events,
listings and pages say only whether one is set, or that it changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.packaging.moderation import require_admin
from bastion.storage import get_store

from . import page_files
from .models import Upstream, UpstreamFile, UpstreamProject

# Known upstreams' extra file hosts, applied when an upstream is added at that index URL.
PRESET_FILE_HOSTS = {"https://pypi.org/simple/": ["files.pythonhosted.org"]}

MAX_NAME = 50
MAX_URL = 500
MAX_PATTERNS = 100
MAX_PATTERN = 200
MAX_FILE_HOSTS = 20
MAX_USERNAME = 200
MAX_PASSWORD = 500
MAX_PAGE_TTL = 86400
MAX_PRIORITY = 1_000_000
# A fetch time that makes any page due for refresh.
_LONG_AGO = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,49})$")
# Normalized names are lower-case letters, digits and '-'; fnmatch adds * ? [ ].
_PATTERN_RE = re.compile(r"^[a-z0-9*?\[\]-]+$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


@dataclass(frozen=True)
class UpstreamChanges:
    """What ``set_upstream`` changes; None leaves a field as it is."""

    url: str | None = None
    priority: int | None = None
    include: list[str] | None = None
    file_hosts: list[str] | None = None
    username: str | None = None
    password: str | None = None  # "" removes it
    page_ttl: int | None = None  # 0 or negative: back to the setting
    enabled: bool | None = None


def upstreams() -> list[Upstream]:
    """Every upstream, in the order names resolve (priority, then name)."""
    return list(Upstream.objects.all())


def get_upstream(name: str) -> Upstream:
    row = Upstream.objects.filter(name=_clean_name(name)).first()
    if row is None:
        raise ValidationError(_("There is no upstream named '{name}'.").format(
            name=str(name)[:MAX_NAME]), status=404)
    return row


# --- validation ----------------------------------------------------------------------------

def _clean_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not _NAME_RE.match(name):
        raise ValidationError(_("An upstream's name must be 1 to {limit} lower-case letters, "
                                "digits, '-' or '_', starting with a letter or digit.").format(
                                    limit=MAX_NAME))
    return name


def clean_url(url) -> str:
    url = (url or "").strip() if isinstance(url, str) else ""
    if not url or len(url) > MAX_URL or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise ValidationError(_("The upstream's URL must be an http or https URL of at most "
                                "{limit} characters, without spaces.").format(limit=MAX_URL))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValidationError(_("The upstream's URL is not a valid URL.")) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValidationError(_("The upstream's URL must start with http:// or https:// and "
                                "name a host."))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError(_("Put no credentials in the upstream's URL: give the user name "
                                "and password separately."))
    if parts.fragment or "#" in url:
        raise ValidationError(_("The upstream's URL must not have a fragment (#...)."))
    if parts.query:
        raise ValidationError(_("The upstream's URL must not have a query (?...)."))
    url = parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()
    if not url.endswith("/"):
        url += "/"
    if len(url) > MAX_URL:
        raise ValidationError(_("The upstream's URL must be an http or https URL of at most "
                                "{limit} characters, without spaces.").format(limit=MAX_URL))
    return url


def _clean_patterns(patterns) -> list[str]:
    items = [p.strip().lower() for p in (patterns or []) if isinstance(p, str) and p.strip()]
    if len(items) > MAX_PATTERNS:
        raise ValidationError(_("At most {limit} name patterns are allowed.").format(
            limit=MAX_PATTERNS))
    for pattern in items:
        if len(pattern) > MAX_PATTERN or not _PATTERN_RE.match(pattern):
            raise ValidationError(_("'{pattern}' is not a name pattern: use normalized names "
                                    "(lower-case letters, digits, '-') with * ? [ ].").format(
                                        pattern=pattern[:MAX_PATTERN]))
    return list(dict.fromkeys(items))


def _clean_hosts(hosts) -> list[str]:
    items = [h.strip().lower().rstrip(".") for h in (hosts or [])
             if isinstance(h, str) and h.strip()]
    if len(items) > MAX_FILE_HOSTS:
        raise ValidationError(_("At most {limit} file hosts are allowed.").format(
            limit=MAX_FILE_HOSTS))
    for host in items:
        if len(host) > 253 or not _HOST_RE.match(host):
            raise ValidationError(_("'{host}' is not a host name (such as "
                                    "files.pythonhosted.org).").format(host=host[:253]))
    return list(dict.fromkeys(items))


def _clean_priority(priority) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) \
            or not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValidationError(_("The priority must be a whole number between -{limit} and "
                                "{limit}.").format(limit=MAX_PRIORITY))
    return priority


def _clean_ttl(page_ttl, *, negative_resets: bool) -> int | None:
    if page_ttl is None:
        return None
    if isinstance(page_ttl, bool) or not isinstance(page_ttl, int):
        raise ValidationError(_("The page TTL must be a whole number of seconds from 0 to "
                                "{limit}.").format(limit=MAX_PAGE_TTL))
    if page_ttl < 0 and negative_resets:
        return None
    if not 0 <= page_ttl <= MAX_PAGE_TTL:
        raise ValidationError(_("The page TTL must be a whole number of seconds from 0 to "
                                "{limit}.").format(limit=MAX_PAGE_TTL))
    return page_ttl or None  # 0: the setting


def _clean_username(username) -> str:
    username = username if isinstance(username, str) else ""
    if len(username) > MAX_USERNAME or ":" in username or not username.isprintable():
        raise ValidationError(_("The user name must be at most {limit} printable characters "
                                "without ':'.").format(limit=MAX_USERNAME))
    return username.strip()


def _clean_password(password) -> str:
    password = password if isinstance(password, str) else ""
    if len(password) > MAX_PASSWORD or not password.isprintable():
        raise ValidationError(_("The password must be at most {limit} printable "
                                "characters.").format(limit=MAX_PASSWORD))
    return password


def _summary(row: Upstream) -> dict:
    """What an event records of an upstream: everything but the password."""
    return {"name": row.name, "url": row.url, "priority": row.priority,
            "include": list(row.include), "file_hosts": list(row.file_hosts),
            "username": row.username, "password": "set" if row.password else "",
            "page_ttl": row.page_ttl, "enabled": row.enabled}


# --- services ------------------------------------------------------------------------------

def add_upstream(name: str, url: str, *, priority: int = 100, include: list[str] | None = None,
                 file_hosts: list[str] | None = None, username: str = "", password: str = "",
                 page_ttl: int | None = None, actor=None,
                 info: RequestInfo | None = None) -> Upstream:
    """Validate (ValidationError with one readable sentence) and add; event admin:upstream:add."""
    require_admin(actor)
    name = _clean_name(name)
    url = clean_url(url)
    hosts = _clean_hosts(list(file_hosts or []) + PRESET_FILE_HOSTS.get(url, []))
    now = timezone.now()
    row = Upstream(name=name, url=url, priority=_clean_priority(priority),
                   include=_clean_patterns(include), file_hosts=hosts,
                   username=_clean_username(username), password=_clean_password(password),
                   page_ttl=_clean_ttl(page_ttl, negative_resets=False), enabled=True,
                   created=now, updated=now)
    try:
        with transaction.atomic():
            row.save()
            record(tags.ADMIN_UPSTREAM_ADD, info=info, actor=actor, user=actor,
                   additional=_summary(row))
    except IntegrityError:
        raise ValidationError(_("An upstream named '{name}' exists already.").format(
            name=name)) from None
    return row


def set_upstream(name: str, changes: UpstreamChanges, *, actor=None,
                 info: RequestInfo | None = None) -> Upstream:
    """Change an upstream; event admin:upstream:change (the password only as "changed")."""
    require_admin(actor)
    name = _clean_name(name)
    wanted: dict = {}
    if changes.url is not None:
        wanted["url"] = clean_url(changes.url)
    if changes.priority is not None:
        wanted["priority"] = _clean_priority(changes.priority)
    if changes.include is not None:
        wanted["include"] = _clean_patterns(changes.include)
    if changes.file_hosts is not None:
        wanted["file_hosts"] = _clean_hosts(changes.file_hosts)
    if changes.username is not None:
        wanted["username"] = _clean_username(changes.username)
    if changes.password is not None:
        wanted["password"] = _clean_password(changes.password)
    if changes.page_ttl is not None:
        wanted["page_ttl"] = _clean_ttl(changes.page_ttl, negative_resets=True)
    if changes.enabled is not None:
        wanted["enabled"] = bool(changes.enabled)
    with transaction.atomic():
        row = Upstream.objects.select_for_update().filter(name=name).first()
        if row is None:
            raise ValidationError(_("There is no upstream named '{name}'.").format(name=name),
                                  status=404)
        before = _summary(row)
        changed = [key for key, value in wanted.items() if getattr(row, key) != value]
        for key in changed:
            setattr(row, key, wanted[key])
        if changed:
            row.updated = timezone.now()
            row.save()
        dropped, paths = 0, []
        if "url" in changed:
            # Another index: what the old one said about a name is no answer for the new one.
            cached = UpstreamProject.objects.filter(upstream=row)
            paths = _stored_paths(row)
            dropped = cached.count()
            cached.delete()
        elif "file_hosts" in changed:
            # Pages listing files on a host no longer allowed must be read again, now.
            UpstreamProject.objects.filter(upstream=row).update(fetched=_LONG_AGO)
        after = _summary(row)
        details = {"name": row.name, "changed": changed}
        if dropped:
            details["cached_pages_dropped"] = dropped
        for key in changed:
            if key == "password":
                details["password"] = "changed" if row.password else "removed"
            else:
                details[key] = [before[key], after[key]]
        record(tags.ADMIN_UPSTREAM_CHANGE, info=info, actor=actor, user=actor,
               additional=details)
        if paths:
            transaction.on_commit(lambda: _delete_stored(paths))
        if "url" in changed or "file_hosts" in changed:
            # Its pages were rendered from listings that are gone or due again.
            page_files.forget_upstream_on_commit(row.pk)
    return row


def remove_upstream(name: str, *, actor=None, info: RequestInfo | None = None) -> None:
    """Remove an upstream with its cached pages and files (their stored bytes after commit)."""
    require_admin(actor)
    name = _clean_name(name)
    with transaction.atomic():
        row = Upstream.objects.select_for_update().filter(name=name).first()
        if row is None:
            raise ValidationError(_("There is no upstream named '{name}'.").format(name=name),
                                  status=404)
        paths = _stored_paths(row)
        details = _summary(row)
        details["cached_files"] = len(paths)
        record(tags.ADMIN_UPSTREAM_REMOVE, info=info, actor=actor, user=actor,
               additional=details)
        page_files.forget_upstream_on_commit(row.pk)
        row.delete()
        if paths:
            transaction.on_commit(lambda: _delete_stored(paths))


def _stored_paths(row: Upstream) -> list[str]:
    return [p for pair in UpstreamFile.objects.filter(project__upstream=row)
            .values_list("stored_path", "metadata_stored_path") for p in pair if p]


def _delete_stored(paths: list[str]) -> None:
    store = get_store()
    for path in paths:
        try:
            store.delete(path)
        except OSError:  # bytes already gone: nothing refers to them any more either way
            pass
