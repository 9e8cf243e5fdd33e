"""Which advisories affect what: reads only (the tables are written by ``services``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from packaging.utils import canonicalize_name

from bastion.core import osv

from .models import Advisory, AdvisoryState, AffectedPackage

_MAX_CACHED_NAMES = 5000


def revision() -> int:
    """Advances with every import that changed an advisory (pages showing them key on it)."""
    value = AdvisoryState.objects.filter(pk=1).values_list("revision", flat=True).first()
    return value or 0


@dataclass(frozen=True)
class Known:
    """One advisory naming a project, with that project's affected entry."""

    osv_id: str
    aliases: tuple[str, ...]
    summary: str
    details: str
    severity: str | None
    withdrawn: object  # datetime or None
    published: object
    entry: osv.Affected
    also_fixed_in: tuple[str, ...] = ()  # from records merged into this one (``distinct``)

    @property
    def fixed_in(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.entry.fixed_in, *self.also_fixed_in)))

    @property
    def malicious(self) -> bool:
        return self.osv_id.upper().startswith("MAL-")

    def affects(self, version: str) -> bool:
        return osv.entry_affects(self.entry, version)


_cache: dict[tuple[str, int], tuple[Known, ...]] = {}
_lock = threading.Lock()


def for_project(name: str, *, at_revision: int | None = None) -> tuple[Known, ...]:
    """Every advisory naming project ``name``, withdrawn ones included (callers leave those
    out where they match releases), newest first. Kept per process by revision."""
    name = canonicalize_name(name)
    current = revision() if at_revision is None else at_revision
    key = (name, current)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    rows = (AffectedPackage.objects.filter(normalized_name=name)
            .select_related("advisory").order_by("-advisory__modified", "advisory__osv_id"))
    known = tuple(Known(osv_id=r.advisory.osv_id, aliases=tuple(r.advisory.aliases or ()),
                        summary=r.advisory.summary, details=r.advisory.details,
                        severity=r.advisory.severity or None, withdrawn=r.advisory.withdrawn,
                        published=r.advisory.published,
                        entry=osv.affected_entry(name, r.ranges or [], r.versions or []))
                  for r in rows)
    with _lock:
        if len(_cache) >= _MAX_CACHED_NAMES:
            _cache.clear()
        _cache[key] = known
    return known


def affecting(name: str, version: str, *, at_revision: int | None = None) -> list[Known]:
    """The advisories in force (not withdrawn) that affect ``version`` of ``name``."""
    return [k for k in for_project(name, at_revision=at_revision)
            if k.withdrawn is None and k.affects(version)]


def _preference(k: Known) -> tuple:
    # PyPI's own database first, then GitHub's, then the rest (as PyPI and pip-audit show them).
    prefix = k.osv_id.split("-", 1)[0].upper()
    return ({"PYSEC": 0, "GHSA": 1}.get(prefix, 2), k.osv_id)


def distinct(known: list[Known]) -> list[Known]:
    """One entry per vulnerability: records that name each other through ``aliases`` (a
    PYSEC and a GHSA record of one CVE) are one, shown under the preferred id with every other
    id as an alias, and ``fixed_in`` of them all."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k in known:
        for alias in k.aliases:
            parent[find(alias)] = find(k.osv_id)
    groups: dict[str, list[Known]] = {}
    for k in known:
        groups.setdefault(find(k.osv_id), []).append(k)
    result = []
    for members in groups.values():
        members.sort(key=_preference)
        first = members[0]
        if len(members) > 1:
            ids = dict.fromkeys([a for m in members for a in (m.osv_id, *m.aliases)])
            ids.pop(first.osv_id, None)
            summary = first.summary or next((m.summary for m in members if m.summary), "")
            first = replace(first, aliases=tuple(ids), summary=summary, also_fixed_in=tuple(
                v for m in members[1:] for v in m.entry.fixed_in))
        result.append(first)
    order = {k.osv_id: i for i, k in enumerate(known)}
    return sorted(result, key=lambda k: order[k.osv_id])


def pypi_vulnerabilities(name: str, version: str, *, at_revision: int | None = None) -> list[dict]:
    """``vulnerabilities[]`` of PyPI's JSON API for one release (standards §5): the records
    that affect it; withdrawn ones are left out (PyPI unlinks them)."""
    result = []
    for k in distinct(affecting(name, version, at_revision=at_revision)):
        result.append({
            "aliases": list(k.aliases),
            "details": k.details,
            # pip-audit parses each as a PEP 440 version and fails on one it cannot parse.
            "fixed_in": [v for v in k.fixed_in if osv.is_version(v)],
            "id": k.osv_id,
            "link": f"https://osv.dev/vulnerability/{k.osv_id}",
            "source": "osv",
            "summary": k.summary or None,
            "withdrawn": None,
        })
    return result


def get(osv_id: str) -> Advisory | None:
    if not isinstance(osv_id, str) or len(osv_id) > osv.MAX_ID_LENGTH:
        return None
    return Advisory.objects.filter(osv_id=osv_id).first()


def listing(*, query: str = "", limit: int = 100, offset: int = 0):
    """Advisories for the console and ``bastion admin advisories list``: newest first,
    filtered by an id, alias or package name fragment."""
    rows = Advisory.objects.all()
    query = (query or "").strip()
    if query:
        names = AffectedPackage.objects.filter(normalized_name=canonicalize_name(query)) \
            .values("advisory_id")
        from django.db.models import Q

        rows = rows.filter(Q(osv_id__icontains=query) | Q(pk__in=names)
                           | Q(summary__icontains=query))
    return rows.prefetch_related("packages").order_by("-modified", "osv_id")[offset:offset + limit]


def last_import():
    from .models import ImportRun

    return ImportRun.objects.order_by("-started").first()


def osv_records(name: str, version: str | None) -> list[Advisory]:
    """The advisories in force for one OSV query on the PyPI ecosystem: those affecting
    ``version``, or every one naming the project when no version is given."""
    known = for_project(name)
    if version is None:
        ids = [k.osv_id for k in known if k.withdrawn is None]
    else:
        ids = [k.osv_id for k in known if k.withdrawn is None and k.affects(version)]
    if not ids:
        return []
    rows = {a.osv_id: a for a in Advisory.objects.filter(osv_id__in=ids)}
    return [rows[i] for i in ids if i in rows]


def names_of(advisory: Advisory) -> list[str]:
    return list(advisory.packages.values_list("normalized_name", flat=True))


@dataclass(frozen=True)
class DependencyAlert:
    requirement: str  # as the release declares it
    osv_id: str
    severity: str | None
    fixed_in: tuple[str, ...]


MAX_REQUIREMENTS_CHECKED = 500


def dependency_alerts(requires_dist, *, at_revision: int | None = None) -> list[DependencyAlert]:
    """The release's requirements (``Requires-Dist``) that keep an installer on a version a
    known vulnerability affects: the specifier allows an affected version and excludes every
    fix (``core.osv.requirement_keeps_vulnerable``). Markers are not evaluated: a requirement
    for some platform only is flagged too."""
    from packaging.requirements import InvalidRequirement, Requirement

    current = revision() if at_revision is None else at_revision
    alerts = []
    for text in list(requires_dist or [])[:MAX_REQUIREMENTS_CHECKED]:
        try:
            requirement = Requirement(str(text))
        except InvalidRequirement:
            continue
        if requirement.url:
            continue
        for k in for_project(requirement.name, at_revision=current):
            if k.withdrawn is None and osv.requirement_keeps_vulnerable(requirement.specifier,
                                                                        k.entry):
                alerts.append(DependencyAlert(str(text), k.osv_id, k.severity,
                                              tuple(k.entry.fixed_in)))
    return alerts
