"""A view's policy: what it lets through to clients, and why it hides the rest.

Pure: no Django, no I/O. The proxy stores a policy as JSON on ``View.policy``;
:meth:`Policy.from_json` is the only way in and refuses anything it does not know, so a typo in
a key never silently switches a defence off.

:func:`evaluate` runs the checks of :data:`CHECKS` in order and returns the first failure as a
:class:`Block` (or None: the file may be shown). Each check is one function with the signature
``check(view, policy, candidate, now, exemptions) -> Block | None``; later features append
theirs to :data:`CHECKS`.

Exemptions lift only the cooldown. They do not lift a freeze: a frozen view exists so that a
build is reproducible, and an exemption would make it depend on when it ran. Nor do they lift
allow, deny or license rules: those are edited on the view itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from typing import Callable, Iterable

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .errors import ValidationError

try:  # packaging >= 24.2
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
except ImportError:  # pragma: no cover - the pinned packaging has it
    canonicalize_license_expression = None
    InvalidLicenseExpression = ValueError

KEYS = ("min_age_hours", "hold_local", "frozen_at", "allow", "deny", "deny_licenses",
        "deny_classifiers", "license_unknown", "lookalikes", "hide_vulnerable", "hide_scanned",
        "require_provenance", "pin_publishers")
MAX_MIN_AGE_HOURS = 24 * 366
MAX_RULES = 500
MAX_RULE_LENGTH = 200
MAX_LICENSES = 200
MAX_LICENSE_LENGTH = 100
MAX_CLASSIFIERS = 200
MAX_CLASSIFIER_LENGTH = 300
LICENSE_UNKNOWN_CHOICES = ("allow", "deny")
# An upstream name that imitates an established one (packaging.lookalikes): served or not.
LOOKALIKES_CHOICES = ("block", "allow")

# Kinds of Block, one per check.
ALLOW, DENY, LICENSE, FREEZE, COOLDOWN = "allow", "deny", "license", "freeze", "cooldown"
VULNERABLE, MALICIOUS = "vulnerable", "malicious"
# What the scanner's verdict on a file hides (``hide_scanned``): malicious files only (the
# default), suspicious ones too, or none ("none": the view shows whatever the scanner said).
SCANNED = "scanned"
HIDE_SCANNED_CHOICES = ("malicious", "suspicious", "none")
# PEP 740 provenance of upstream files: required or not; publishers pinned on first use per
# project ("tofu") or only by administrators ("off": explicit pins still apply).
PROVENANCE, PINNED = "provenance", "pinned-publisher"
PIN_PUBLISHERS_CHOICES = ("off", "tofu")
MAX_IDENTITY_LENGTH = 500
# Severity levels of known vulnerabilities, lowest first (core.osv.LEVELS).
VULNERABILITY_LEVELS = ("low", "moderate", "high", "critical")

_SEPARATORS = re.compile(r"[-_.]+")
# A name or an fnmatch pattern of one ("acme-*", "py?"), then an optional specifier.
_RULE = re.compile(r"^([A-Za-z0-9*?](?:[A-Za-z0-9._*?-]*[A-Za-z0-9*?])?)\s*(.*)$", re.DOTALL)
_LICENSE_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def _short(value: object, limit: int = 60) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _normalize(name: str) -> str:
    return _SEPARATORS.sub("-", name).lower()


def _utc(moment: datetime) -> datetime:
    # A moment without a zone is taken as UTC: the index keeps every time in UTC.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


# --- rules ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """``name-or-pattern[specifier]``: ``requests``, ``acme-*``, ``django>=5,<6``."""

    text: str
    pattern: str  # normalized; fnmatch on normalized names
    specifier: SpecifierSet | None = None

    @classmethod
    def parse(cls, text: object, *, key: str) -> "Rule":
        if not isinstance(text, str) or not text.strip():
            raise ValidationError(f"Each entry of '{key}' must be a non-empty text, "
                                  f"like 'acme-*' or 'django>=5,<6'.")
        text = text.strip()
        if len(text) > MAX_RULE_LENGTH:
            raise ValidationError(f"The rule '{_short(text)}' in '{key}' is too long "
                                  f"(at most {MAX_RULE_LENGTH} characters).")
        match = _RULE.match(text)
        if not match:
            raise ValidationError(f"The rule '{_short(text)}' in '{key}' must start with a "
                                  f"project name or pattern, like 'acme-*' or 'django>=5,<6'.")
        name, rest = match.group(1), match.group(2).strip()
        specifier = None
        if rest:
            try:
                specifier = SpecifierSet(rest)
            except InvalidSpecifier:
                raise ValidationError(f"The rule '{_short(text)}' in '{key}' has an invalid "
                                      f"version specifier '{_short(rest, 40)}'.") from None
        canonical = _normalize(name) + (str(specifier) if specifier is not None else "")
        return cls(text=canonical, pattern=_normalize(name), specifier=specifier)

    def matches_name(self, project: str) -> bool:
        return fnmatchcase(_normalize(project), self.pattern)

    def matches(self, project: str, version: str, *, unparsable: bool) -> bool:
        """Whether the rule covers this release; ``unparsable`` answers for a version that
        a specifier cannot judge (callers choose the answer that fails closed)."""
        if not self.matches_name(project):
            return False
        if self.specifier is None:
            return True
        try:
            parsed = Version(version)
        except InvalidVersion:
            return unparsable
        return self.specifier.contains(parsed, prereleases=True)


# --- licenses ------------------------------------------------------------------------------

def canonical_license(value: object) -> str:
    """One SPDX license id (or ``LicenseRef-``), in its canonical spelling."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Each entry of 'deny_licenses' must be an SPDX license id, "
                              "like 'GPL-3.0-only'.")
    value = value.strip()
    if len(value) > MAX_LICENSE_LENGTH or not re.fullmatch(r"[A-Za-z0-9.+:-]+", value):
        raise ValidationError(f"'{_short(value)}' is not an SPDX license id "
                              f"(like 'GPL-3.0-only').")
    if canonicalize_license_expression is not None:
        try:
            return str(canonicalize_license_expression(value))
        except InvalidLicenseExpression:
            raise ValidationError(f"'{_short(value)}' is not a known SPDX license id "
                                  f"(like 'GPL-3.0-only').") from None
    return value


class _Unparsable(Exception):
    pass


def license_expression_denied(expression: str, denied: Iterable[str]) -> bool | None:
    """Whether every way to comply with ``expression`` needs a denied license.

    ``MIT OR GPL-3.0-only`` with GPL-3.0-only denied passes (MIT may be chosen);
    ``MIT AND GPL-3.0-only`` does not. None: the expression cannot be read.
    """
    deny = {d.lower() for d in denied}
    tokens = _LICENSE_TOKEN.findall(expression)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise _Unparsable
        position += 1
        return tokens[position - 1]

    # Each parser returns True when that part can be complied with without a denied license.
    def either() -> bool:
        ok = both()
        while (peek() or "").upper() == "OR":
            take()
            ok = both() or ok
        return ok

    def both() -> bool:
        ok = single()
        while (peek() or "").upper() == "AND":
            take()
            ok = single() and ok
        return ok

    def single() -> bool:
        part = take()
        if part == "(":
            ok = either()
            if take() != ")":
                raise _Unparsable
            return ok
        if part == ")" or part.upper() in ("AND", "OR", "WITH"):
            raise _Unparsable
        license_id = part.lower()
        ok = license_id not in deny and license_id.rstrip("+") not in deny
        if (peek() or "").upper() == "WITH":
            take()
            exception = take()
            if exception in ("(", ")"):
                raise _Unparsable
            ok = ok and f"{license_id} with {exception.lower()}" not in deny
        return ok

    try:
        ok = either()
        if position != len(tokens) or not tokens:
            return None
    except (_Unparsable, RecursionError):
        return None
    return not ok


# --- the policy ----------------------------------------------------------------------------

def parse_moment(value: object, *, what: str = "'frozen_at'") -> datetime:
    """An ISO 8601 date or time (``Z`` or an offset; none: UTC) as an aware UTC datetime;
    ``what`` names the field in the one-line refusal."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValidationError(f"{what} must be a date or time in ISO 8601, "
                              "like 2026-11-01T00:00:00Z.")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{what} must be a date or time in ISO 8601, like "
                              f"2026-11-01T00:00:00Z, not '{_short(value, 40)}'.") from None
    try:
        return _utc(moment).astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValidationError(f"{what} is out of range: '{_short(value, 40)}'.") from None


def _texts(data: dict, key: str, limit: int, parse: Callable[[object], object]) -> tuple:
    values = data.get(key, [])
    if values is None:
        values = []
    if not isinstance(values, list):
        raise ValidationError(f"'{key}' must be a list.")
    if len(values) > limit:
        raise ValidationError(f"'{key}' has too many entries (at most {limit}).")
    seen: dict = {}
    for value in values:
        parsed = parse(value)
        seen.setdefault(getattr(parsed, "text", parsed), parsed)
    return tuple(seen.values())


def _classifier(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Each entry of 'deny_classifiers' must be a trove classifier, "
                              "like 'License :: OSI Approved :: GNU Affero General Public "
                              "License v3'.")
    text = " ".join(value.split())
    if len(text) > MAX_CLASSIFIER_LENGTH:
        raise ValidationError(f"The classifier '{_short(text)}' is too long "
                              f"(at most {MAX_CLASSIFIER_LENGTH} characters).")
    return text


@dataclass(frozen=True)
class Policy:
    """What a view lets through. ``min_age_hours`` None: ``default_min_age_hours`` applies."""

    min_age_hours: int | None = None
    hold_local: bool = False
    frozen_at: datetime | None = None
    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    deny_licenses: tuple[str, ...] = ()
    deny_classifiers: tuple[str, ...] = ()
    license_unknown: str = "allow"
    default_min_age_hours: int = field(default=0, compare=False)
    lookalikes: str = "block"
    # Hide releases a known vulnerability of this level or higher affects (None: show them).
    hide_vulnerable: str | None = None
    hide_scanned: str = "malicious"
    require_provenance: bool = False
    pin_publishers: str = "off"

    @property
    def needs_provenance(self) -> bool:
        """Whether judging an upstream file needs its verified provenance (explicit pins,
        kept apart from the policy, need it too: see the proxy's view state)."""
        return self.require_provenance or self.pin_publishers != "off"

    @property
    def cooldown_hours(self) -> int:
        return self.default_min_age_hours if self.min_age_hours is None else self.min_age_hours

    @classmethod
    def from_json(cls, data: object, *, default_min_age_hours: int) -> "Policy":
        """Parse a stored or submitted policy; refuse unknown keys and bad values (one line)."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValidationError("A policy must be a JSON object.")
        unknown = sorted(str(k) for k in data if k not in KEYS)
        if unknown:
            raise ValidationError(f"Unknown policy key '{_short(unknown[0], 40)}'; the keys are "
                                  f"{', '.join(KEYS)}.")
        hours = data.get("min_age_hours")
        if hours is not None:
            if isinstance(hours, bool) or not isinstance(hours, int) or not (
                    0 <= hours <= MAX_MIN_AGE_HOURS):
                raise ValidationError(f"'min_age_hours' must be a whole number of hours from 0 "
                                      f"to {MAX_MIN_AGE_HOURS}, or null for the default.")
        hold_local = data.get("hold_local", False)
        if not isinstance(hold_local, bool):
            raise ValidationError("'hold_local' must be true or false.")
        frozen = data.get("frozen_at")
        frozen_at = None if frozen is None else parse_moment(frozen)
        unknown_license = data.get("license_unknown", "allow")
        if unknown_license not in LICENSE_UNKNOWN_CHOICES:
            raise ValidationError("'license_unknown' must be 'allow' or 'deny'.")
        lookalikes = data.get("lookalikes", "block")
        if lookalikes not in LOOKALIKES_CHOICES:
            raise ValidationError("'lookalikes' must be 'block' or 'allow'.")
        hide_vulnerable = data.get("hide_vulnerable")
        if hide_vulnerable is not None and hide_vulnerable not in VULNERABILITY_LEVELS:
            raise ValidationError("'hide_vulnerable' must be one of "
                                  f"{', '.join(VULNERABILITY_LEVELS)}, or null.")
        hide_scanned = data.get("hide_scanned", "malicious")
        if hide_scanned not in HIDE_SCANNED_CHOICES:
            raise ValidationError("'hide_scanned' must be one of "
                                  f"{', '.join(HIDE_SCANNED_CHOICES)}.")
        require_provenance = data.get("require_provenance", False)
        if not isinstance(require_provenance, bool):
            raise ValidationError("'require_provenance' must be true or false.")
        pin_publishers = data.get("pin_publishers", "off")
        if pin_publishers not in PIN_PUBLISHERS_CHOICES:
            raise ValidationError("'pin_publishers' must be 'off' or 'tofu'.")
        return cls(
            min_age_hours=hours,
            hold_local=hold_local,
            frozen_at=frozen_at,
            allow=_texts(data, "allow", MAX_RULES, lambda v: Rule.parse(v, key="allow")),
            deny=_texts(data, "deny", MAX_RULES, lambda v: Rule.parse(v, key="deny")),
            deny_licenses=_texts(data, "deny_licenses", MAX_LICENSES, canonical_license),
            deny_classifiers=_texts(data, "deny_classifiers", MAX_CLASSIFIERS, _classifier),
            license_unknown=unknown_license,
            default_min_age_hours=max(0, int(default_min_age_hours)),
            lookalikes=lookalikes,
            hide_vulnerable=hide_vulnerable,
            hide_scanned=hide_scanned,
            require_provenance=require_provenance,
            pin_publishers=pin_publishers,
        )

    def to_json(self) -> dict:
        frozen = None
        if self.frozen_at is not None:
            frozen = self.frozen_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "min_age_hours": self.min_age_hours,
            "hold_local": self.hold_local,
            "frozen_at": frozen,
            "allow": [r.text for r in self.allow],
            "deny": [r.text for r in self.deny],
            "deny_licenses": list(self.deny_licenses),
            "deny_classifiers": list(self.deny_classifiers),
            "license_unknown": self.license_unknown,
            "lookalikes": self.lookalikes,
            "hide_vulnerable": self.hide_vulnerable,
            "hide_scanned": self.hide_scanned,
            "require_provenance": self.require_provenance,
            "pin_publishers": self.pin_publishers,
        }


@dataclass(frozen=True)
class Candidate:
    """What is known about one file a view may show.

    ``uploaded`` None: the source publishes no upload time, so the file is aged from
    ``first_seen`` (when Bastion first listed it). ``license_expression`` and ``classifiers``
    None: not known yet (an upstream file's metadata was not fetched).
    """

    project: str
    version: str
    filename: str
    uploaded: datetime | None = None
    first_seen: datetime | None = None
    local: bool = False
    license_expression: str | None = None
    classifiers: tuple[str, ...] | None = None
    # Known vulnerabilities in force that affect this version: (id, level or None, malicious).
    advisories: tuple[tuple[str, str | None, bool], ...] = ()
    # An upstream file's sha256 as its page lists it (the blocklist of removed files reads it).
    sha256: str | None = None
    # The malware scanner's verdict on the file's bytes (None: not scanned yet).
    scan_verdict: str | None = None
    # Who built an upstream file, as its verified PEP 740 provenance says (None: it has
    # none, or it was not checked), and who the view pinned for the project (None: no pin).
    provenance_identity: str | None = None
    pinned_identity: str | None = None


@dataclass(frozen=True)
class Exempt:
    """Lets ``project`` (only ``version`` when given) through the cooldown until ``expires``."""

    project: str
    version: str | None
    reason: str
    expires: datetime

    def covers(self, candidate: Candidate, now: datetime) -> bool:
        return (_normalize(self.project) == _normalize(candidate.project)
                and (not self.version or self.version == candidate.version)
                and _utc(now) < _utc(self.expires))


@dataclass(frozen=True)
class Block:
    """Why ``view`` hides a file. ``until``: when a time-based hold ends (cooldown only)."""

    view: str
    reason: str  # "Blocked by policy '<view>': ..."; also the 403's reason phrase
    kind: str
    until: datetime | None = None


def _block(view: str, kind: str, detail: str, until: datetime | None = None) -> Block:
    return Block(view=view, reason=_phrase(f"Blocked by policy '{view}': {detail}"), kind=kind,
                 until=until)


def _phrase(text: str) -> str:
    """One line of printable ASCII: the reason becomes an HTTP reason phrase, and details in it
    (versions, license expressions) come from upstream metadata."""
    return "".join(c if " " <= c <= "~" else "?" for c in " ".join(text.split()))


def _release(candidate: Candidate) -> tuple[datetime | None, bool]:
    """When the file counts as released, and whether that is only when Bastion first saw it."""
    if candidate.uploaded is not None:
        return _utc(candidate.uploaded), False
    if candidate.first_seen is not None:
        return _utc(candidate.first_seen), True
    return None, False


def _hours_text(hours: int) -> str:
    return f"{hours // 24}-day" if hours % 24 == 0 else f"{hours}-hour"


def _name(candidate: Candidate) -> str:
    return _normalize(candidate.project)


def check_allow(view, policy, candidate, now, exemptions) -> Block | None:
    if not policy.allow:
        return None
    name = _name(candidate)
    if any(r.matches(name, candidate.version, unparsable=False) for r in policy.allow):
        return None
    if any(r.matches_name(name) for r in policy.allow):
        # The name is allowed, only not this version: say which.
        return _block(view, ALLOW, f"'{name} {candidate.version}' is not on the view's "
                                   f"allow list")
    return _block(view, ALLOW, f"'{name}' is not on the view's allow list")


def check_deny(view, policy, candidate, now, exemptions) -> Block | None:
    name = _name(candidate)
    for rule in policy.deny:
        if rule.matches(name, candidate.version, unparsable=True):
            return _block(view, DENY, f"'{name} {candidate.version}' matches the deny rule "
                                      f"'{rule.text}'")
    return None


def check_license(view, policy, candidate, now, exemptions) -> Block | None:
    if not policy.deny_licenses and not policy.deny_classifiers:
        return None
    expression = (candidate.license_expression or "").strip()
    classifiers = candidate.classifiers or ()
    if expression and policy.deny_licenses:
        denied = license_expression_denied(expression, policy.deny_licenses)
        if denied:
            return _block(view, LICENSE, f"license '{_short(expression, 100)}' is denied")
        if denied is None and policy.license_unknown == "deny":
            return _block(view, LICENSE, f"license '{_short(expression, 100)}' cannot be read "
                                         f"and the view denies unknown licenses")
    deny_classifiers = set(policy.deny_classifiers)
    for classifier in classifiers:
        if " ".join(str(classifier).split()) in deny_classifiers:
            return _block(view, LICENSE, f"license '{_short(classifier, 100)}' is denied")
    if not expression and not classifiers and policy.license_unknown == "deny":
        return _block(view, LICENSE, "its license is not known (yet) and the view denies "
                                     "unknown licenses")
    return None


def check_freeze(view, policy, candidate, now, exemptions) -> Block | None:
    if policy.frozen_at is None:
        return None
    released, _ = _release(candidate)
    frozen = _utc(policy.frozen_at)
    # Without any time, a file cannot be shown to predate the freeze.
    if released is None or released >= frozen:
        return _block(view, FREEZE, f"uploaded after the view's freeze at "
                                    f"{frozen.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC")
    return None


def check_cooldown(view, policy, candidate, now, exemptions) -> Block | None:
    hours = policy.cooldown_hours
    if hours <= 0 or (candidate.local and not policy.hold_local):
        return None
    released, estimated = _release(candidate)
    if released is None:
        return None
    until = released + timedelta(hours=hours)
    if _utc(now) >= until:
        return None
    if any(e.covers(candidate, now) for e in exemptions):
        return None
    seen = "first seen" if estimated else "released"
    return _block(view, COOLDOWN, f"{seen} {released.astimezone(timezone.utc):%Y-%m-%d}, "
                                  f"younger than the {_hours_text(hours)} cooldown", until)


def check_malicious(view, policy, candidate, now, exemptions) -> Block | None:
    """Every view, whatever its policy: a release a malicious-package record (OSV ``MAL-``)
    names is malware, not a bug to weigh."""
    ids = [osv_id for osv_id, _level, malicious in candidate.advisories if malicious]
    if not ids:
        return None
    return _block(view, MALICIOUS, f"'{_name(candidate)} {candidate.version}' is a known "
                                   f"malicious package ({', '.join(ids[:3])})")


def check_vulnerable(view, policy, candidate, now, exemptions) -> Block | None:
    threshold = policy.hide_vulnerable
    if threshold is None:
        return None
    rank = VULNERABILITY_LEVELS.index(threshold)
    ids = [osv_id for osv_id, level, malicious in candidate.advisories
           if not malicious and level in VULNERABILITY_LEVELS
           and VULNERABILITY_LEVELS.index(level) >= rank]
    if not ids:
        return None
    return _block(view, VULNERABLE, f"'{_name(candidate)} {candidate.version}' has known "
                                    f"vulnerabilities of severity {threshold} or higher "
                                    f"({', '.join(ids[:3])})")


# The scanner's verdicts that a view's ``hide_scanned`` can hide, by setting.
_HIDDEN_VERDICTS = {"malicious": ("malicious",), "suspicious": ("malicious", "suspicious")}


def verdict_may_hide(verdict: str | None) -> bool:
    """Whether some view's policy could hide a file for this scanner verdict. A change
    between verdicts that none can hide (not scanned yet, clean, a scan error) changes no
    page."""
    return any(verdict in hidden for hidden in _HIDDEN_VERDICTS.values())


def check_scanned(view, policy, candidate, now, exemptions) -> Block | None:
    verdict = candidate.scan_verdict
    if verdict not in _HIDDEN_VERDICTS.get(policy.hide_scanned, ()):
        return None
    return _block(view, SCANNED, f"the malware scanner judged {candidate.filename} {verdict}")


def normalize_identity(identity: str) -> str:
    """A publisher identity as pins compare it: a repository's URL (``https://github.com/
    owner/repo``) or a signer without one (a service account's email), case and a trailing
    slash or ``.git`` aside."""
    text = identity.strip().lower().rstrip("/")
    return text[:-4] if text.endswith(".git") else text


def parse_identity(value: object) -> str:
    """A pinned identity as an administrator typed it, checked; one-line refusal."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("A publisher identity is a repository URL, like "
                              "https://github.com/owner/repo, or a signer's email.")
    text = value.strip()
    if len(text) > MAX_IDENTITY_LENGTH or not re.fullmatch(r"[!-~]+", text):
        raise ValidationError(f"'{_short(text)}' is not a publisher identity (a repository URL "
                              f"or an email, at most {MAX_IDENTITY_LENGTH} characters).")
    if not (text.startswith("https://") or ("@" in text and "/" not in text)):
        raise ValidationError(f"'{_short(text)}' is not a publisher identity: give the "
                              "repository's https:// URL, or the signer's email.")
    return normalize_identity(text)


def parse_pin(value: object) -> tuple[str, str]:
    """``project=identity`` as (normalized project, identity); one-line refusal."""
    if not isinstance(value, str) or "=" not in value:
        raise ValidationError("A pin is PROJECT=IDENTITY, like "
                              "demo=https://github.com/owner/demo.")
    project, identity = value.split("=", 1)
    project = project.strip()
    if not project or len(project) > MAX_RULE_LENGTH or not re.fullmatch(
            r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", project):
        raise ValidationError(f"'{_short(project)}' is not a valid project name.")
    return _normalize(project), parse_identity(identity)


def check_provenance(view, policy, candidate, now, exemptions) -> Block | None:
    """Local files are judged by their project's own "uploads must be attested" rule."""
    if candidate.local or not policy.require_provenance or candidate.provenance_identity:
        return None
    return _block(view, PROVENANCE, f"{candidate.filename} has no verified provenance "
                                    f"(PEP 740 attestation) and the view requires one")


def check_pinned(view, policy, candidate, now, exemptions) -> Block | None:
    pinned, identity = candidate.pinned_identity, candidate.provenance_identity
    if candidate.local or not pinned or not identity:
        return None
    if normalize_identity(identity) == normalize_identity(pinned):
        return None
    return _block(view, PINNED, f"{candidate.filename} was attested by {_short(identity, 120)}, "
                                f"not by the publisher pinned for '{_name(candidate)}' "
                                f"({_short(pinned, 120)})")


Check = Callable[[str, Policy, Candidate, datetime, tuple], "Block | None"]

# In order; the first failing check is the reason given. Later features append theirs.
CHECKS: list[Check] = [check_allow, check_deny, check_license, check_freeze, check_cooldown]
# Malware is the first reason given, before any rule of the view; then known vulnerabilities.
CHECKS.insert(0, check_malicious)
CHECKS.insert(1, check_scanned)
CHECKS.append(check_vulnerable)
# Who built it comes right after what the scanner found: a file from another publisher than
# the pinned one is the supply-chain attack itself, whatever the view's other rules say.
CHECKS.insert(2, check_pinned)
CHECKS.append(check_provenance)


def evaluate(view_name: str, policy: Policy, candidate: Candidate, now: datetime,
             exemptions: Iterable[Exempt] = ()) -> Block | None:
    """The first reason ``view_name`` hides ``candidate`` at ``now``, or None: it is shown."""
    exemptions = tuple(exemptions)
    for check in CHECKS:
        block = check(view_name, policy, candidate, now, exemptions)
        if block is not None:
            return block
    return None


def visible_from(view_name: str, policy: Policy, candidate: Candidate, now: datetime,
                 exemptions: Iterable[Exempt] = ()) -> datetime | None:
    """The instant a file held only by the cooldown becomes visible; None when it is shown now
    or is hidden for a reason time does not lift."""
    block = evaluate(view_name, policy, candidate, now, exemptions)
    if block is None or block.kind != COOLDOWN:
        return None
    return block.until


def next_change(view_name: str, policy: Policy, candidate: Candidate, now: datetime,
                exemptions: Iterable[Exempt] = ()) -> datetime | None:
    """The next instant the verdict on ``candidate`` may change by time alone (a cooldown ends,
    or an exemption that lets it through lapses while it is still young); None: never.
    A rendered page listing the file may be kept until the earliest of these."""
    exemptions = tuple(exemptions)
    held_until = visible_from(view_name, policy, candidate, now, exemptions)
    if held_until is not None:
        return held_until
    if evaluate(view_name, policy, candidate, now, ()) is None:
        return None
    # Shown only thanks to an exemption: the verdict changes when the last covering one lapses,
    # unless the cooldown is over by then.
    covering = [_utc(e.expires) for e in exemptions if e.covers(candidate, now)]
    if not covering:
        return None
    lapse = max(covering)
    released, _ = _release(candidate)
    if released is not None and released + timedelta(hours=policy.cooldown_hours) <= lapse:
        return None
    return lapse
