"""OSV vulnerability records (https://ossf.github.io/osv-schema/), for the PyPI ecosystem.

Pure: no Django, no I/O. :func:`parse` turns one record (a JSON object; YAML records are
parsed by the caller) into a :class:`Record`, refusing with one :class:`ValidationError`
anything it cannot trust: a missing id or ``modified``, a major schema version other than 1,
a field over its limit. Only ``affected`` entries of the ecosystem ``PyPI`` are kept, under the
PEP 503 normalized name.

:func:`affects` decides whether a version of a project is affected, as the OSV schema
evaluates it: listed in ``versions``, or inside an ``ECOSYSTEM`` range, ordered by PEP 440.
A version PEP 440 cannot parse is affected only when a record lists it verbatim: ranges
cannot be judged for it, and guessing would flag releases at random.

Severity is a level, ``low < moderate < high < critical`` (GitHub's and PyPI's words),
the highest of what the record gives:

* a ``CVSS_V3`` vector's base score (computed here, CVSS 3.0/3.1 formula): 0.1-3.9 low,
  4.0-6.9 moderate, 7.0-8.9 high, 9.0-10.0 critical (a 0.0 score is no level);
* a ``CVSS_V2`` vector's base score, the same bands (NVD's v2 bands differ, but v2 appears
  only on old records and then usually next to a v3 vector);
* ``database_specific.severity`` (top level or on an affected entry): ``LOW``, ``MODERATE``
  or ``MEDIUM``, ``HIGH``, ``CRITICAL``, as GitHub's records carry it.

CVSS 4.0 vectors are not scored (their score needs the specification's lookup tables); such a
record counts by its ``database_specific.severity``, else it has no level. Taking the highest
source errs towards hiding a release, which is the safe side for a view's severity rule.
A record without any level has severity None; a view rule "at or above" never matches it
(malicious-package records, ``MAL-``, are judged by :attr:`Record.malicious` instead).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .errors import ValidationError

ECOSYSTEM = "PyPI"
LEVELS = ("low", "moderate", "high", "critical")

# Limits of one record: real records stay far below them (the largest PyPA records list a few
# hundred versions), and a record beyond them is refused rather than cut.
MAX_RECORD_BYTES = 1024 * 1024
MAX_ID_LENGTH = 100
MAX_ALIASES = 100
MAX_SUMMARY_LENGTH = 1000
MAX_DETAILS_LENGTH = 100_000
MAX_REFERENCES = 500
MAX_URL_LENGTH = 2000
MAX_AFFECTED = 1000
MAX_RANGES = 100
MAX_EVENTS = 1000
MAX_VERSIONS = 50_000
MAX_VERSION_LENGTH = 100
MAX_NAME_LENGTH = 200

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
_DB_LEVELS = {"low": "low", "moderate": "moderate", "medium": "moderate", "high": "high",
              "critical": "critical"}


@dataclass(frozen=True)
class Range:
    """An ``ECOSYSTEM`` range: its events in the record's order, ``(kind, version)``."""

    events: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Affected:
    name: str  # PEP 503 normalized
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]
    # The listed versions PEP 440 parses, in canonical form: "1.0" also matches "1.0.0".
    canonical: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def fixed_in(self) -> tuple[str, ...]:
        return tuple(version for r in self.ranges for kind, version in r.events
                     if kind == "fixed")


@dataclass(frozen=True)
class Record:
    id: str
    aliases: tuple[str, ...]
    summary: str
    details: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    severity: str | None  # one of LEVELS
    cvss: tuple[tuple[str, str], ...]  # (type, vector or score) as the record gives them
    references: tuple[tuple[str, str], ...]  # (type, url)
    affected: tuple[Affected, ...]

    @property
    def malicious(self) -> bool:
        """A malicious-package report (OSV's ``MAL-`` records): every listed version is
        malware, not a bug."""
        return self.id.upper().startswith("MAL-")

    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.name for a in self.affected))

    def fixed_in(self, name: str) -> tuple[str, ...]:
        name = canonicalize_name(name)
        return tuple(dict.fromkeys(v for a in self.affected if a.name == name
                                   for v in a.fixed_in))


def level_at_least(level: str | None, threshold: str) -> bool:
    """Whether ``level`` is ``threshold`` or higher; no level is never at least anything."""
    if level not in LEVELS:
        return False
    return LEVELS.index(level) >= LEVELS.index(threshold)


def format_time(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC ending in ``Z``, as OSV publishes it (pip-audit's parser needs the Z)."""
    if moment is None:
        return None
    text = moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
    return text + "Z"


# --- parsing -------------------------------------------------------------------------------

def _fail(record_id: str, message: str) -> ValidationError:
    prefix = f"OSV record {record_id}: " if record_id else "OSV record: "
    return ValidationError(prefix + message)


def _text(value, field: str, limit: int, record_id: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise _fail(record_id, f"'{field}' is missing.")
        return ""
    if not isinstance(value, str):
        raise _fail(record_id, f"'{field}' must be a text.")
    if len(value) > limit:
        raise _fail(record_id, f"'{field}' is longer than {limit} characters.")
    if "\x00" in value:
        raise _fail(record_id, f"'{field}' contains a NUL character.")
    return value


def _list(value, field: str, limit: int, record_id: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(record_id, f"'{field}' must be a list.")
    if len(value) > limit:
        raise _fail(record_id, f"'{field}' has more than {limit} entries.")
    return value


def parse_time(value, field: str = "modified", record_id: str = "", *,
               required: bool = False) -> datetime | None:
    if value is None and not required:
        return None
    if isinstance(value, datetime):  # YAML loaders turn unquoted timestamps into datetimes
        moment = value
    else:
        text = _text(value, field, 64, record_id, required=required)
        try:
            moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
        except ValueError:
            raise _fail(record_id, f"'{field}' is not an RFC 3339 time.") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _schema_version(value, record_id: str) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not re.match(r"^\d+(\.\d+)*$", value.strip()):
        raise _fail(record_id, "'schema_version' is not a version like 1.6.0.")
    if value.strip().split(".")[0] != "1":
        raise _fail(record_id, f"schema version {value.strip()} is not supported (only 1.x).")


def _version_text(value, field: str, record_id: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # YAML reads `introduced: 0` as a number
    return _text(value, field, MAX_VERSION_LENGTH, record_id, required=True).strip()


def _affected(entry, record_id: str) -> Affected | None:
    if not isinstance(entry, dict):
        raise _fail(record_id, "each entry of 'affected' must be an object.")
    package = entry.get("package")
    if package is None:
        return None  # a record may describe affected code by commits only
    if not isinstance(package, dict):
        raise _fail(record_id, "'affected.package' must be an object.")
    if package.get("ecosystem") != ECOSYSTEM:
        return None
    name = _text(package.get("name"), "affected.package.name", MAX_NAME_LENGTH, record_id,
                 required=True).strip()
    if not name:
        raise _fail(record_id, "'affected.package.name' is empty.")
    ranges = []
    for item in _list(entry.get("ranges"), "affected.ranges", MAX_RANGES, record_id):
        if not isinstance(item, dict):
            raise _fail(record_id, "each entry of 'affected.ranges' must be an object.")
        if item.get("type") != "ECOSYSTEM":
            continue  # GIT ranges name commits, SEMVER does not apply to PyPI
        events = []
        for event in _list(item.get("events"), "affected.ranges.events", MAX_EVENTS,
                           record_id):
            if not isinstance(event, dict) or len(event) != 1:
                raise _fail(record_id, "each range event must be an object with one key.")
            (kind, version), = event.items()
            if kind not in _EVENT_KINDS:
                raise _fail(record_id, f"unknown range event '{str(kind)[:30]}'.")
            events.append((kind, _version_text(version, f"affected.ranges.events.{kind}",
                                               record_id)))
        ranges.append(Range(tuple(events)))
    versions = tuple(_version_text(v, "affected.versions", record_id)
                     for v in _list(entry.get("versions"), "affected.versions", MAX_VERSIONS,
                                    record_id))
    canonical = frozenset(str(parsed) for parsed in map(_parsed, versions) if parsed is not None)
    return Affected(name=canonicalize_name(name), ranges=tuple(ranges), versions=versions,
                    canonical=canonical)


def parse(data) -> Record:
    """One OSV record from its parsed JSON (or YAML) object."""
    if not isinstance(data, dict):
        raise ValidationError("OSV record: not a JSON object.")
    raw_id = data.get("id")
    record_id = raw_id[:MAX_ID_LENGTH] if isinstance(raw_id, str) else ""
    record_id = _text(raw_id, "id", MAX_ID_LENGTH, record_id, required=True).strip()
    if not _ID.match(record_id):
        raise _fail("", "'id' must be letters, digits and . _ : - (like PYSEC-2023-74).")
    _schema_version(data.get("schema_version"), record_id)
    aliases = []
    for alias in _list(data.get("aliases"), "aliases", MAX_ALIASES, record_id):
        alias = _text(alias, "aliases", MAX_ID_LENGTH, record_id, required=True).strip()
        if alias and alias not in aliases:
            aliases.append(alias)
    references = []
    for ref in _list(data.get("references"), "references", MAX_REFERENCES, record_id):
        if not isinstance(ref, dict):
            raise _fail(record_id, "each entry of 'references' must be an object.")
        references.append((_text(ref.get("type"), "references.type", 40, record_id),
                           _text(ref.get("url"), "references.url", MAX_URL_LENGTH, record_id,
                                 required=True)))
    affected = []
    for entry in _list(data.get("affected"), "affected", MAX_AFFECTED, record_id):
        item = _affected(entry, record_id)
        if item is not None:
            affected.append(item)
    cvss = []
    for item in _list(data.get("severity"), "severity", 20, record_id):
        if not isinstance(item, dict):
            raise _fail(record_id, "each entry of 'severity' must be an object.")
        cvss.append((_text(item.get("type"), "severity.type", 40, record_id),
                     _text(item.get("score"), "severity.score", 200, record_id)))
    return Record(
        id=record_id,
        aliases=tuple(aliases),
        summary=_text(data.get("summary"), "summary", MAX_SUMMARY_LENGTH, record_id),
        details=_text(data.get("details"), "details", MAX_DETAILS_LENGTH, record_id),
        modified=parse_time(data.get("modified"), "modified", record_id, required=True),
        published=parse_time(data.get("published"), "published", record_id),
        withdrawn=parse_time(data.get("withdrawn"), "withdrawn", record_id),
        severity=_severity(data, cvss),
        cvss=tuple(cvss),
        references=tuple(references),
        affected=tuple(affected),
    )


# --- severity ------------------------------------------------------------------------------

def level_of_score(score: float) -> str | None:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "moderate"
    if score > 0.0:
        return "low"
    return None


def _db_level(section) -> str | None:
    if isinstance(section, dict) and isinstance(section.get("severity"), str):
        return _DB_LEVELS.get(section["severity"].strip().lower())
    return None


def _severity(data: dict, cvss: list[tuple[str, str]]) -> str | None:
    levels = []
    for kind, score in cvss:
        value = None
        if kind == "CVSS_V3":
            value = cvss3_base_score(score)
        elif kind == "CVSS_V2":
            value = cvss2_base_score(score)
        if value is not None:
            levels.append(level_of_score(value))
    levels.append(_db_level(data.get("database_specific")))
    for entry in data.get("affected") or []:
        if isinstance(entry, dict):
            levels.append(_db_level(entry.get("database_specific")))
            levels.append(_db_level(entry.get("ecosystem_specific")))
    known = [level for level in levels if level in LEVELS]
    return max(known, key=LEVELS.index) if known else None


def _vector(text: str, prefix_pattern: str) -> dict[str, str] | None:
    if not isinstance(text, str) or len(text) > 200:
        return None
    parts = text.strip().split("/")
    if prefix_pattern and (not parts or not re.match(prefix_pattern, parts[0])):
        return None
    metrics = {}
    for part in parts[1:] if prefix_pattern else parts:
        key, sep, value = part.partition(":")
        if not sep:
            return None
        metrics[key] = value
    return metrics


def _roundup(value: float) -> float:
    # CVSS 3.1's Roundup: the smallest one-decimal number >= value, free of float noise.
    whole = round(value * 100000)
    if whole % 10000 == 0:
        return whole / 100000.0
    return (math.floor(whole / 10000) + 1) / 10.0


_V3 = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}


def cvss3_base_score(vector: str) -> float | None:
    """The base score of a ``CVSS:3.0/...`` or ``CVSS:3.1/...`` vector; None if malformed."""
    metrics = _vector(vector, r"^CVSS:3\.[01]$")
    if metrics is None:
        return None
    try:
        scope_changed = {"U": False, "C": True}[metrics["S"]]
        pr = {"N": 0.85, "L": 0.68 if scope_changed else 0.62,
              "H": 0.5 if scope_changed else 0.27}[metrics["PR"]]
        av, ac, ui = (_V3[k][metrics[k]] for k in ("AV", "AC", "UI"))
        c, i, a = (_V3[k][metrics[k]] for k in ("C", "I", "A"))
    except KeyError:
        return None
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    if scope_changed:
        impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    else:
        impact = 6.42 * iss
    exploitability = 8.22 * av * ac * pr * ui
    if impact <= 0:
        return 0.0
    if scope_changed:
        return _roundup(min(1.08 * (impact + exploitability), 10))
    return _roundup(min(impact + exploitability, 10))


def cvss2_base_score(vector: str) -> float | None:
    """The base score of a CVSS v2 vector (``AV:N/AC:L/Au:N/C:P/I:P/A:P``); None if malformed."""
    metrics = _vector(vector, "")
    if metrics is None:
        return None
    try:
        av = {"L": 0.395, "A": 0.646, "N": 1.0}[metrics["AV"]]
        ac = {"H": 0.35, "M": 0.61, "L": 0.71}[metrics["AC"]]
        au = {"M": 0.45, "S": 0.56, "N": 0.704}[metrics["Au"]]
        c, i, a = ({"N": 0.0, "P": 0.275, "C": 0.660}[metrics[k]] for k in ("C", "I", "A"))
    except KeyError:
        return None
    impact = 10.41 * (1 - (1 - c) * (1 - i) * (1 - a))
    exploitability = 20 * av * ac * au
    f_impact = 0 if impact == 0 else 1.176
    return round(((0.6 * impact) + (0.4 * exploitability) - 1.5) * f_impact, 1)


# --- matching ------------------------------------------------------------------------------

@lru_cache(maxsize=8192)
def _parsed(version: str) -> Version | None:
    try:
        return Version(version)
    except InvalidVersion:
        return None


def is_version(text: str) -> bool:
    return _parsed(text) is not None


def _in_range(version: Version, events: tuple[tuple[str, str], ...]) -> bool:
    """OSV's evaluation: walk the events in version order; ``introduced`` opens the range,
    ``fixed`` (at or after it) and ``last_affected`` (after it) close it; a ``limit`` bounds
    it from above. An event whose version PEP 440 cannot parse is left out: it cannot be
    ordered (``introduced: 0`` means "from the first version")."""
    ordered = []
    for kind, text in events:
        if kind == "introduced" and text == "0":
            ordered.append((None, kind))
            continue
        parsed = _parsed(text)
        if parsed is not None:
            ordered.append((parsed, kind))
    for bound, kind in ordered:
        if kind == "limit" and version >= bound:
            return False
    # None (the very beginning) sorts first; events at one version keep the record's order.
    ordered.sort(key=lambda item: (item[0] is not None, item[0] or Version("0")))
    affected = False
    for bound, kind in ordered:
        if kind == "introduced":
            if bound is None or version >= bound:
                affected = True
        elif kind == "fixed":
            if version >= bound:
                affected = False
        elif kind == "last_affected":
            if version > bound:
                affected = False
    return affected


def entry_affects(entry: Affected, version: str) -> bool:
    """Whether one ``affected`` entry covers ``version`` (of the entry's package)."""
    if version in entry.versions:
        return True
    parsed = _parsed(version)
    if parsed is None:
        return False
    if str(parsed) in entry.canonical:
        return True
    return any(_in_range(parsed, r.events) for r in entry.ranges)


def affects(record: Record, name: str, version: str) -> bool:
    """Whether ``version`` of project ``name`` is affected by ``record`` (withdrawal is the
    caller's business: a withdrawn record still describes what it described)."""
    name = canonicalize_name(name)
    return any(entry.name == name and entry_affects(entry, version) for entry in record.affected)


def affected_entry(name: str, ranges, versions) -> Affected:
    """An :class:`Affected` rebuilt from what a caller stored of one (``ranges``: lists of
    ``[kind, version]`` events, as :func:`entry_json` writes them)."""
    versions = tuple(str(v) for v in versions)
    canonical = frozenset(str(p) for p in map(_parsed, versions) if p is not None)
    return Affected(name=canonicalize_name(name),
                    ranges=tuple(Range(tuple((str(k), str(v)) for k, v in r)) for r in ranges),
                    versions=versions, canonical=canonical)


def entry_json(entry: Affected) -> dict:
    return {"ranges": [[list(event) for event in r.events] for r in entry.ranges],
            "versions": list(entry.versions), "fixed_in": list(entry.fixed_in)}


def affected_versions(record: Record, name: str, versions) -> list[str]:
    """Those of ``versions`` (of project ``name``) the record affects, in their order."""
    return [v for v in versions if affects(record, name, v)]


# --- the OSV API's queries -----------------------------------------------------------------

MAX_QUERY_BATCH = 1000
_QUERY_KEYS = ("package", "version", "commit", "page_token")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PURL = re.compile(r"^pkg:([A-Za-z0-9.+-]+)/([^@?#]+)(?:@([^?#]+))?(?:[?#].*)?$")


@dataclass(frozen=True)
class Query:
    """One query of OSV's ``/v1/query``: a package (by name or purl) and maybe a version.
    ``ecosystem`` other than PyPI is answered with nothing (only PyPI records are held)."""

    ecosystem: str
    name: str  # normalized for PyPI
    version: str | None


def parse_query(data, *, where: str = "The query") -> Query:
    """Read one OSV query object; raise ValidationError (one line) for anything else."""
    if not isinstance(data, dict):
        raise ValidationError(f"{where} must be a JSON object.")
    unknown = sorted(str(k) for k in data if k not in _QUERY_KEYS)
    if unknown:
        raise ValidationError(f"{where} has an unknown field '{unknown[0][:40]}'.")
    if data.get("commit") is not None:
        raise ValidationError(f"{where}: querying by commit is not supported here; name a "
                              "package and a version.")
    package = data.get("package")
    if not isinstance(package, dict):
        raise ValidationError(f"{where} needs a 'package' object with 'name' and "
                              "'ecosystem' (or 'purl').")
    version = data.get("version")
    if version is not None and (not isinstance(version, str) or not version.strip()
                                or len(version) > MAX_VERSION_LENGTH):
        raise ValidationError(f"{where}: 'version' must be a text of at most "
                              f"{MAX_VERSION_LENGTH} characters.")
    purl = package.get("purl")
    if purl is not None:
        if not isinstance(purl, str) or len(purl) > 300:
            raise ValidationError(f"{where}: 'purl' must be a package URL like "
                                  "pkg:pypi/requests@2.30.0.")
        match = _PURL.match(purl.strip())
        if match is None:
            raise ValidationError(f"{where}: 'purl' must be a package URL like "
                                  "pkg:pypi/requests@2.30.0.")
        kind, name, purl_version = match.groups()
        if purl_version is not None and version is not None:
            raise ValidationError(f"{where}: give the version in 'purl' or in 'version', "
                                  "not both.")
        ecosystem = ECOSYSTEM if kind.lower() == "pypi" else kind
        version = version if purl_version is None else purl_version
    else:
        name, ecosystem = package.get("name"), package.get("ecosystem")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            raise ValidationError(f"{where}: 'package.name' must be a project name of at most "
                                  f"{MAX_NAME_LENGTH} characters.")
        if not isinstance(ecosystem, str) or not ecosystem.strip() or len(ecosystem) > 100:
            raise ValidationError(f"{where}: 'package.ecosystem' must be given, e.g. 'PyPI'.")
    # No name or version holds one, and PostgreSQL cannot even be asked about a NUL: refused
    # here rather than failing the lookup.
    if any(_CONTROL.search(text) for text in (name, ecosystem, version or "")):
        raise ValidationError(f"{where}: the package and the version may not hold control "
                              "characters.")
    name = name.strip()
    if ecosystem == ECOSYSTEM:
        name = canonicalize_name(name)
    return Query(ecosystem=ecosystem, name=name, version=version.strip() if version else None)


def parse_batch(data) -> list[Query]:
    if not isinstance(data, dict) or not isinstance(data.get("queries"), list):
        raise ValidationError("The body must be a JSON object with a list 'queries'.")
    queries = data["queries"]
    if len(queries) > MAX_QUERY_BATCH:
        raise ValidationError(f"At most {MAX_QUERY_BATCH} queries fit in one batch.")
    return [parse_query(q, where=f"Query {i + 1}") for i, q in enumerate(queries)]


# --- a project's own requirements ----------------------------------------------------------

def requirement_keeps_vulnerable(specifier, entry: Affected) -> bool:
    """Whether a dependency's specifier (a ``packaging`` SpecifierSet) lets an installer
    choose a version ``entry`` affects while it excludes every fixed version.

    A specifier cannot be enumerated, so it is probed with the versions the record and the
    specifier name: the listed versions, the range bounds (``introduced: 0`` as version 0) and
    the specifier's own versions. A requirement a fix satisfies is never flagged: the
    installer may pick the fix.
    """
    fixed = [v for v in (_parsed(f) for f in entry.fixed_in) if v is not None]
    if any(specifier.contains(v, prereleases=True) for v in fixed):
        return False
    probes = set(entry.versions)
    for r in entry.ranges:
        for kind, version in r.events:
            if kind in ("introduced", "last_affected"):
                probes.add(version)
    probes.update(s.version for s in specifier)
    for text in probes:
        parsed = _parsed(text)
        if parsed is not None and specifier.contains(parsed, prereleases=True) \
                and entry_affects(entry, text):
            return True
    return False
