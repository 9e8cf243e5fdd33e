"""One scan: read the sample, analyse what it holds, weigh the findings, give a verdict.

The same finding weighs more where it runs unasked: at install time (``setup.py``, a custom
install command, a ``.pth`` file) more than at import time (a package's ``__init__`` top
level), more than in a function of the package, far more than in tests, docs or examples.
A sample's score is its worst file's score plus a little of the others': malicious code
usually sits in one file, while a large honest library has many files with one weak signal.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import tomllib
from dataclasses import dataclass, field

from . import indicators
from .budget import Budget, Clock, OutOfBudget
from .folding import DecodeBudget
from .popular import POPULAR
from .python import Analysis, Hit, analyse
from .reading import Member, Unreadable, open_sample
from .rules import CRITICAL, HIGH, RULES, RULESET_VERSION

SCANNER_VERSION = "1.0"

MALICIOUS_SCORE = 10.0
SUSPICIOUS_SCORE = 5.0

INSTALL, IMPORT, PACKAGE, AUX = "install", "import", "package", "aux"
# Weak signals (low and medium rules) are common in honest code: they count fully only where
# code runs unasked.
CONTEXT_WEIGHT = {
    INSTALL: (1.5, 1.5),    # (low/medium rules, high/critical rules)
    IMPORT: (0.7, 1.2),
    PACKAGE: (0.4, 1.0),
    AUX: (0.1, 0.3),
}
OTHER_FILES_SHARE = 0.2
OTHER_FILES_CAP = 1.0

# Tests and CI configuration anywhere; docs, examples, benchmarks and the maintainers' scripts
# at the project's top; the old bootstrap helpers a setup.py could import. None of it runs
# when the package is installed or imported.
_AUX = re.compile(r"(?:^|/)(?:tests?|testing|\.github|\.buildkite|\.circleci|\.gitlab|\.ci)/|"
                  r"^(?:docs?|examples?|benchmarks?|bench|scripts?|tools?|ci|dev|build_tools|"
                  r"misc|contrib)/|"
                  r"(?:^|/)(?:test_[^/]*|[^/]*_test|conftest|tests?)\.py$|"
                  r"^(?:ez_setup|distribute_setup|noxfile|tasks|fabfile)\.py$", re.I)
# A module at the top of an sdist: import time if the build names it, else a maintainer's tool.
_TOP = "toplevel"
_BOOTSTRAP_HELPERS = frozenset({"bootstrap", "bootstrap-buildout", "bootstrap_buildout"})
_BINARY_MAGIC = (b"\x7fELF", b"MZ", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                 b"\xcf\xfa\xed\xfe")
_MAX_FINDINGS = 200
_SMALL_MODULE = 16 * 1024
# Calls that act: a file holding one of these does something with the strings it holds.
_ACTS = frozenset({"net-call", "proc-exec", "exec-dynamic", "exec-decoded", "exec-marshal",
                   "download-exec", "proc-shell-download", "proc-install-package", "exfil-dns",
                   "exfil-host-data", "cred-env-dump", "cred-clipboard", "win-api", "recon-host"})
# Beyond this, an __init__ or top-level module is parsed only on a strong trigger: such sizes
# are generated code (bindings, tables), costly to parse and rarely where malware hides.
_LARGE_MODULE = 256 * 1024


@dataclass
class Finding:
    rule: str
    severity: str
    file: str
    line: int
    message: str
    detail: str = ""
    weight: float = 0.0

    def as_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "file": self.file,
                "line": self.line, "message": self.message}


@dataclass
class ScanResult:
    path: str
    verdict: str                      # clean | suspicious | malicious | error
    score: float
    seconds: float
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""                  # why the verdict is "error", or which budget ended the scan
    scanner_version: str = SCANNER_VERSION
    ruleset_version: str = RULESET_VERSION

    def as_dict(self) -> dict:
        out = {"path": self.path, "verdict": self.verdict, "score": round(self.score, 2),
               "seconds": round(self.seconds, 4),
               "findings": [f.as_dict() for f in self.findings],
               "scanner": SCANNER_VERSION, "ruleset": RULESET_VERSION}
        if self.reason:
            out["reason"] = self.reason
        return out


def verdict_for(score: float) -> str:
    if score >= MALICIOUS_SCORE:
        return "malicious"
    if score >= SUSPICIOUS_SCORE:
        return "suspicious"
    return "clean"


def scan(path: str, *, disabled: frozenset[str] | set[str] = frozenset(),
         budget: Budget | None = None, name: str | None = None) -> ScanResult:
    """Scan the archive or directory at ``path``. Never raises for hostile input: an unreadable
    sample is an "error" verdict with its reason; a spent budget ends the scan early and the
    verdict covers what was seen, with the budget named in ``reason``. ``name``: the
    distribution's filename when ``path`` is a temporary file."""
    budget = budget or Budget()
    clock = Clock(budget)
    state = _State(budget, clock, frozenset(disabled))
    reason = ""
    try:
        sample = open_sample(path, budget, name)
        state.kind = sample.kind
        for member in sample.members:
            clock.check()
            state.member(member)
    except Unreadable as exc:
        return ScanResult(path, "error", 0.0, clock.elapsed(), reason=str(exc))
    except OutOfBudget as exc:
        reason = f"budget: {exc}"
    except (RecursionError, MemoryError) as exc:
        reason = f"budget: {type(exc).__name__}"
    except Exception as exc:  # hostile input must end in a verdict, never in a crash
        if not state.files:
            return ScanResult(path, "error", 0.0, clock.elapsed(),
                              reason=f"unreadable ({type(exc).__name__}: {str(exc)[:120]})")
        reason = f"stopped reading ({type(exc).__name__}: {str(exc)[:120]})"
    try:
        state.parse_deferred()
    except OutOfBudget as exc:
        reason = reason or f"budget: {exc}"
    except (RecursionError, MemoryError) as exc:
        reason = reason or f"budget: {type(exc).__name__}"
    state.finish()
    state.weigh()
    if state.notes and not reason:
        reason = "budget: " + "; ".join(sorted(set(state.notes))[:3])
    score = state.score()
    findings = sorted(state.findings, key=lambda f: (-f.weight, f.file, f.line))[:_MAX_FINDINGS]
    return ScanResult(path, verdict_for(score), score, clock.elapsed(), findings, reason)


class _State:
    def __init__(self, budget: Budget, clock: Clock, disabled: frozenset[str]) -> None:
        self.budget = budget
        self.clock = clock
        self.disabled = disabled
        self.kind = "dir"
        self.files: dict[str, dict[str, float]] = {}   # file -> rule -> weighted score
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.parsed = 0
        self.metadata: dict[str, str] = {}
        self.install_hook = False
        self.install_code = False
        self.install_active = False
        self.deferred: list[tuple[str, bytes, int, bytes]] = []
        self.deferred_bytes = 0
        # Findings are weighed once the whole sample is seen: whether a top-level module is
        # installed, and whether a file acts at all, is only known then.
        self.raw: list[tuple[str, str, int, str, str, bool]] = []
        self.scored: set[tuple[str, str, str, bool]] = set()
        self.acting: set[str] = set()        # files with a call that acts, not only strings
        self.build_text = ""                 # setup.py, setup.cfg, pyproject.toml: what they name
        self.text_bytes = 0
        self.text_skipped = 0

    # -- members ----------------------------------------------------------------------------
    def member(self, member: Member) -> None:
        name = member.name.lstrip("./")
        self.files.setdefault(name, {})
        base = name.rsplit("/", 1)[-1]
        depth = name.count("/")
        if base in ("PKG-INFO", "METADATA") and depth <= 1 and member.complete:
            self._metadata(member.data)
            return
        if base in ("pyproject.toml", "setup.cfg", "setup.py") and depth <= 1 and self.kind != "wheel":
            self.build_text += member.data[:1 << 20].decode("utf-8", "replace").lower() + "\n"
        if base == "pyproject.toml" and depth <= 1:
            self._pyproject(name, member.data)
            return
        if base.endswith(".pth"):
            self._pth(name, member.data, self._context(name, depth, True))
            return
        if base.endswith((".py", ".pyw")):
            self._python(name, member, depth)
            return
        if base.endswith((".sh", ".bat", ".cmd", ".ps1", ".vbs")):
            # Nothing runs a script deep in the package unasked (pip does not, import does
            # not): what it says weighs as data there, like strings no call acts on. A script
            # at the top of the sample, next to setup.py, stays what setup.py may run.
            context = self._context(name, depth, True)
            inert = context in (PACKAGE, AUX)
            for rule_id, snippet in indicators.match(member.data[:200_000]):
                self.add(rule_id, name, 1, snippet, AUX if inert else context, inert)
            return
        # Wheels carry compiled extensions by design; a source distribution has no need to.
        if self.kind in ("sdist", "dir", "egg") and member.data.startswith(_BINARY_MAGIC):
            self.add("drop-binary", name, 1, "executable file", self._context(name, depth, False))

    def _context(self, name: str, depth: int, toplevel: bool) -> str:
        inner = name.split("/", 1)[1] if self.kind in ("sdist", "dir") and "/" in name else name
        base = inner.rsplit("/", 1)[-1]
        if inner == "setup.py":
            return INSTALL
        if _AUX.search(inner):
            return AUX
        if base == "__init__.py" and toplevel:
            return IMPORT
        if "/" not in inner:
            # A wheel's top-level module is imported by name; an sdist's is either what the
            # build installs (named in setup.py or pyproject.toml) or a maintainer's tool.
            return _TOP if self.kind in ("sdist", "dir") else IMPORT
        return PACKAGE

    def _python(self, name: str, member: Member, depth: int) -> None:
        inner = name.split("/", 1)[1] if self.kind in ("sdist", "dir") and "/" in name else name
        is_setup = inner == "setup.py"
        # A setup.py is parsed up to the member limit: a huge one is itself the sign.
        limit = self.budget.max_member_bytes if is_setup else self.budget.max_python_bytes
        data = member.data
        if member.size > limit or not member.complete:
            self.notes.append(f"a module larger than {limit} bytes matched as text only")
            self._analyse(name, data, depth, is_setup, parse=False)
            return
        # What runs unasked (setup.py, top-level modules, __init__) is parsed first; modules
        # deep in the package only with a strong trigger, smallest first, while the parse
        # budget lasts (see finish); the others are matched as text.
        if is_setup:
            self._analyse(name, data, depth, True, parse=True)
            return
        context = self._context(name, depth, True)
        # Both the trigger test and the indicators look words up: listed once per module.
        words = indicators.words(data)
        trigger = None
        if context in (IMPORT, _TOP) and self.parsed + len(data) <= 2 * self.budget.max_parsed_bytes:
            if len(data) <= _LARGE_MODULE or (trigger := indicators.strong_trigger(data, words)):
                self._analyse(name, data, depth, False, parse=True, words=words)
                return
        if trigger is None:
            trigger = indicators.strong_trigger(data, words)
        if context == AUX:
            # Tests, docs and examples are never parsed (what they do weighs next to nothing)
            # and matched as text only when they hold a strong trigger.
            if trigger:
                self._text_only(name, data, depth, words)
        elif trigger and self.deferred_bytes + len(data) <= self.budget.max_deferred_bytes:
            self.deferred.append((name, data, depth, words))
            self.deferred_bytes += len(data)
        else:
            self._text_only(name, data, depth, words)

    def _text_only(self, name: str, data: bytes, depth: int, words: bytes) -> None:
        """Match a module's text, while the archive's text budget lasts: a large library's
        hundredth module is where its own strings live, not where a payload is dropped."""
        if self.text_bytes + len(data) > self.budget.max_text_bytes:
            self.text_skipped += 1
            return
        self.text_bytes += len(data)
        self._analyse(name, data, depth, False, parse=False, words=words)

    def _analyse(self, name: str, data: bytes, depth: int, is_setup: bool, parse: bool,
                 words: bytes | None = None) -> None:
        if parse:
            self.parsed += len(data)
        self.clock.start_file()
        try:
            analysis = analyse(data, self.budget, self.clock, DecodeBudget(self.budget),
                               always=is_setup, parse=parse, words=words)
        except OutOfBudget as exc:
            self.notes.append(f"{name}: {exc}")
            return
        except (RecursionError, MemoryError):
            self.notes.append(f"{name}: too deeply nested")
            return
        self.notes.extend(analysis.budget_notes)
        if is_setup:
            # Methods of command classes pip never runs (upload, release, test) are package
            # code, not install time.
            inert = analysis.inert_scopes
            self._setup_extras(analysis, [h for h in analysis.hits if h.scope not in inert])
        for hit in analysis.hits:
            context = self._context(name, depth, hit.toplevel)
            if is_setup and (hit.scope in analysis.inert_scopes or hit.literal and any(
                    first <= hit.line <= last for first, last in analysis.inert_spans)):
                # A string on a line that only a maintainer's command runs is not install time.
                context = PACKAGE
            self.add(hit.rule, name, hit.line, hit.detail, context, hit.literal)
            if not hit.literal and hit.rule in _ACTS:
                self.acting.add(name)
        self._combinations(name, depth, analysis.hits, is_setup, len(data))

    def _setup_extras(self, analysis: Analysis, hits: list[Hit]) -> None:
        self.install_hook = self.install_hook or analysis.install_hook
        # Reading the platform to configure a build is not action; running, fetching is.
        active = {"proc-exec", "net-call", "exec-dynamic", "exec-decoded", "proc-install-package",
                  "exfil-dns", "download-exec", "win-api", "cred-env-dump"}
        if any(h.rule in active and h.toplevel for h in hits):
            self.install_code = True
        if any(h.rule in active for h in hits):
            self.install_active = True

    def _combinations(self, name: str, depth: int, hits: list[Hit], is_setup: bool, size: int) -> None:
        """Behaviours that only mean harm together: fetch and run, collect and send."""
        by_scope: dict[int, set[str]] = {}
        # A small module's functions work together; in a large one, unrelated functions
        # merely share a file.
        whole_file = size <= _SMALL_MODULE and (
            name.endswith("__init__.py") or self._context(name, depth, True) in (IMPORT, _TOP))
        for hit in hits:
            if hit.literal and hit.rule == "recon-host":
                continue   # a what-is-my-IP URL alone is common in honest clients
            by_scope.setdefault(hit.scope, set()).add(hit.rule)
            if hit.toplevel or whole_file:
                by_scope.setdefault(-1, set()).add(hit.rule)
        runs = {"exec-dynamic", "exec-decoded"}
        if is_setup or whole_file:
            runs.add("proc-exec")   # deep in a package, fetching and running tools is common
            # pip install runs what it fetches (a git URL, a wheel from anywhere).
            runs.add("proc-install-package")
        collects = {"recon-host", "cred-env-dump", "cred-browser", "cred-files", "cred-wallet",
                    "cred-discord-token", "cred-clipboard"}
        collected: dict[int, set[str]] = {}
        for hit in hits:
            if hit.rule in collects and not hit.literal:
                collected.setdefault(hit.scope, set()).add(hit.detail)
        for scope, rules in by_scope.items():
            if "net-call" not in rules:
                continue
            line = min((h.line for h in hits if h.rule == "net-call"
                        and (scope == -1 or h.scope == scope)), default=1)
            context = INSTALL if is_setup else self._context(name, depth, scope in (0, -1))
            if rules & runs:
                self.add("download-exec", name, line, "network access and execution together", context)
            if rules & collects and (scope == -1 or is_setup or context in (INSTALL, IMPORT)
                                     or len(collected.get(scope, ())) >= 2):
                # Deep in a package one identity next to a request is a default user name or
                # a client header; what phones home gathers several.
                self.add("exfil-host-data", name, line, "host data collected and sent", context)
        # setup.py runs as a whole at install time: collecting in one function and sending from
        # another is still sending.
        if is_setup:
            everything = {h.rule for h in hits if not (h.literal and h.rule == "recon-host")}
            if "net-call" in everything and everything & collects:
                self.add("exfil-host-data", name, 1, "host data collected and sent", INSTALL)

    def _pth(self, name: str, data: bytes, context: str) -> None:
        base = name.rsplit("/", 1)[-1]
        if base.endswith("-nspkg.pth") or base == "distutils-precedence.pth":
            return
        # A .pth among the tests is a fixture; anywhere else it may be installed and run.
        context = AUX if context == AUX else INSTALL
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines()[:1000], 1):
            if line.startswith(("import ", "import\t")):
                hits = self._pth_line(line)
                # Importing a module at every start is how coverage measures subprocesses;
                # the module's own code is scanned where it lies. A line that itself does
                # anything a rule sees (runs, fetches, decodes, hides) is more than that.
                acts = hits is None or bool(hits)
                self.add("pth-exec" if acts else "pth-import", name, number, line[:80], context)
                for hit in hits or ():
                    self.add(hit.rule, name, number, hit.detail, context, hit.literal)
                for rule_id, snippet in indicators.match(line):
                    self.add(rule_id, name, number, snippet, context)
                return

    def _pth_line(self, line: str) -> list[Hit] | None:
        """What one executable line of a .pth does, read as Python (None: it cannot be read)."""
        try:
            analysis = analyse(line, self.budget, self.clock, DecodeBudget(self.budget), always=True)
        except (OutOfBudget, RecursionError, MemoryError):
            return None
        if analysis.syntax_error:
            return None
        return analysis.hits

    def _pyproject(self, name: str, data: bytes) -> None:
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
            return
        build = doc.get("build-system") if isinstance(doc, dict) else None
        if isinstance(build, dict) and build.get("backend-path"):
            self.add("build-backend-hook", name, 1, str(build.get("build-backend"))[:80], INSTALL)

    def _metadata(self, data: bytes) -> None:
        if self.metadata:
            return
        try:
            message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
                data[:256 * 1024], headersonly=False)
            self.metadata = {
                "name": str(message.get("Name") or ""),
                "summary": str(message.get("Summary") or ""),
                "description": str(message.get("Description") or message.get_payload() or ""),
            }
        except Exception:  # odd metadata is not a reason to stop the scan
            self.metadata = {"name": "", "summary": "", "description": ""}

    # -- findings and score -----------------------------------------------------------------
    def add(self, rule_id: str, file: str, line: int, detail: str, context: str,
            literal: bool = False) -> None:
        if rule_id in self.disabled:
            return
        key = (file, rule_id, context, literal)
        if key not in self.scored:
            self.scored.add(key)
            self.raw.append((rule_id, file, line, detail, context, literal))
        elif len(self.raw) < 10 * _MAX_FINDINGS and not any(
                r[0] == rule_id and r[1] == file and r[2] == line for r in self.raw[-20:]):
            self.raw.append((rule_id, file, line, detail, context, literal))

    def weigh(self) -> None:
        """Weights for the findings, now that the whole sample is known."""
        for rule_id, file, line, detail, context, literal in self.raw:
            if context == _TOP:
                stem = file.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
                named = not self.build_text or re.search(rf"(?<![\w-]){re.escape(stem)}(?![\w-])",
                                                         self.build_text)
                # buildout's bootstrap.py fetches and runs buildout by design, like ez_setup.py;
                # unless the build names it, nothing runs it unasked.
                context = IMPORT if named else AUX if stem in _BOOTSTRAP_HELPERS else PACKAGE
            rule = RULES[rule_id]
            strong = rule.severity in (HIGH, CRITICAL)
            # A telling string (a webhook, a payload URL, a wallet path) in package code that
            # never acts on anything (no call runs, fetches or evaluates) is data: installer
            # helpers, scanners' signatures, prompt templates, manifests of downloads.
            if literal and file not in self.acting:
                if context == IMPORT:
                    context = PACKAGE
                if context in (PACKAGE, AUX):
                    strong = False
            weight = rule.weight * CONTEXT_WEIGHT[context][1 if strong else 0]
            scores = self.files.setdefault(file, {})
            if weight > scores.get(rule_id, -1):
                scores[rule_id] = weight
            self.findings.append(Finding(rule_id, rule.severity, file, line, rule.message, detail, weight))

    def parse_deferred(self) -> None:
        self.deferred.sort(key=lambda item: len(item[1]))
        skipped = 0
        for name, data, depth, words in self.deferred:
            self.clock.check()
            if self.parsed + len(data) <= self.budget.max_parsed_bytes:
                self._analyse(name, data, depth, False, parse=True, words=words)
            else:
                skipped += 1
                self._text_only(name, data, depth, words)
        if skipped:
            self.notes.append(f"parse budget of {self.budget.max_parsed_bytes} bytes spent: "
                              f"{skipped} module(s) matched as text only")
        if self.text_skipped:
            self.notes.append(f"text budget of {self.budget.max_text_bytes} bytes spent: "
                              f"{self.text_skipped} module(s) not read")

    def finish(self) -> None:
        package_file = "PKG-INFO" if self.kind != "wheel" else "METADATA"
        setup_file = next((f for f in self.files if f.split("/", 1)[-1] == "setup.py"), "setup.py")
        if self.install_code or (self.install_hook and self.install_active):
            self.add("install-code", setup_file, 1, "behaviour at install time", INSTALL)
        name = self.metadata.get("name", "")
        if name:
            near = _typosquat(name)
            if near:
                self.add("meta-typosquat", package_file, 1, f"{name} resembles {near}", INSTALL)
        if (self.install_hook or self.install_code) and self.metadata:
            text = (self.metadata.get("summary", "") + " " + self.metadata.get("description", "")).strip()
            if len(text) < 20 or text.upper() in ("UNKNOWN", "UNKNOWN UNKNOWN"):
                self.add("meta-empty-description", package_file, 1, "no description", INSTALL)

    def score(self) -> float:
        return combined_score(self.files)


def combined_score(files: dict[str, dict[str, float]]) -> float:
    """The archive's score from each file's strongest weight per rule: the worst file counts
    whole, the others in part (capped), so one bad module is not diluted by a large package and
    many weak hints across files do not add up to a verdict."""
    totals = sorted((sum(rules.values()) for rules in files.values() if rules), reverse=True)
    if not totals:
        return 0.0
    return totals[0] + min(OTHER_FILES_CAP, OTHER_FILES_SHARE * sum(totals[1:]))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _typosquat(name: str) -> str | None:
    """The popular project ``name`` is one edit (or one swap) away from, if any."""
    normal = _normal(name)
    if normal in POPULAR or len(normal) < 5:
        return None
    for popular in POPULAR:
        if abs(len(popular) - len(normal)) <= 1 and len(popular) >= 5 and _one_edit(normal, popular):
            return popular
    return None


def _one_edit(a: str, b: str) -> bool:
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]
