"""Look-alike project names: does a new name imitate an established one, and how?

Pure: no Django, no I/O beyond reading the shipped corpus when asked to. A :class:`Corpus` is
built once from established names with weights (downloads) and answers :meth:`Corpus.check`
from precomputed indexes, so that the upload path and the proxy can afford it on every new
name: every rule is a few dictionary lookups except the scaled edit distance, which rapidfuzz
runs only over the popular names of about the candidate's length.

Typosquats imitate what people install, so the rules are tiered by popularity: folding a
name (case, separators, look-alike characters, Unicode confusables) protects every name in
the corpus, while single typos, affixes and edit distance protect only the ``popular`` most
downloaded names, whose near neighbours are rarely legitimate. The tiers and the length
floors are what keeps established names from being reported as look-alikes of each other
(tests/unit/core/test_lookalike.py measures that rate over the whole shipped corpus).
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Iterable

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from .errors import ValidationError
from .names import is_valid_name, normalize

SHIPPED_CORPUS = "top-pypi-packages.csv"
MAX_CORPUS_BYTES = 20 * 1024 * 1024
MAX_CORPUS_NAMES = 100_000
DEFAULT_POPULAR = 2000
DEFAULT_TOP = 500
# A version digit added or dropped ("psycopg" and "psycopg2", "elasticsearch7") is how many
# legitimate projects are named: it counts only against the very top ("urllib" for urllib3).
DIGIT_TOP = 150
# Shorter words are too dense for a single typo to mean imitation ("pymysql" and "pymssql"
# are both fine, "asgi" and "wsgi" too); only the ``top`` names are watched from 5 letters on.
MIN_TYPO_LENGTH = 6
MIN_TOP_TYPO_LENGTH = 5
MIN_SUBSTITUTION_LENGTH = 8
MIN_DISTANCE_2_LENGTH = 10

_SEPARATORS = re.compile(r"[-_.]+")
# Letters from other scripts that render like Latin ones (a subset of Unicode's confusables:
# those a project name could smuggle in before normalization rejects or folds it).
_HOMOGLYPHS = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
    "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ɡ": "g", "ı": "i",
    "α": "a", "ε": "e", "ο": "o", "ρ": "p", "τ": "t", "ι": "i", "κ": "k", "ν": "v",
    "υ": "u", "χ": "x", "ϲ": "c", "ℓ": "l",
})
# Character sequences that read alike in most fonts, folded to one spelling.
_LOOKALIKE_SEQUENCES = (("rn", "m"), ("vv", "w"))
_LOOKALIKE_CHARS = str.maketrans({"1": "l", "i": "l", "|": "l", "0": "o"})
_KEYBOARD_ROWS = ("1234567890-", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_PREFIXES = ("python3-", "python2-", "python-", "py3-", "py2-", "py-")
_SUFFIXES = ("-python3", "-python", "-py3", "-py2", "-py", "-lib", "-pkg", "-official")

NEAR_DUPLICATE = "near-duplicate"
OMITTED = "omitted"
REPEATED = "repeated"
INSERTED = "inserted"
SWAPPED = "swapped"
ADJACENT_KEY = "adjacent-key"
SUBSTITUTED = "substituted"
WORD_ORDER = "word-order"
AFFIX = "affix"
SIMILAR = "similar"
KINDS = (NEAR_DUPLICATE, OMITTED, REPEATED, INSERTED, SWAPPED, ADJACENT_KEY, SUBSTITUTED,
         WORD_ORDER, AFFIX, SIMILAR)


def _neighbours() -> dict[str, set[str]]:
    near: dict[str, set[str]] = {}
    for r, row in enumerate(_KEYBOARD_ROWS):
        for c, char in enumerate(row):
            keys = {row[c - 1] if c else "", row[c + 1] if c + 1 < len(row) else ""}
            for other in (r - 1, r + 1):
                if 0 <= other < len(_KEYBOARD_ROWS):
                    keys.update(_KEYBOARD_ROWS[other][max(c - 1, 0):c + 2])
            near[char] = keys - {"", char}
    return near


_NEAR_KEYS = _neighbours()


@dataclass(frozen=True)
class LookAlike:
    """``candidate`` imitates the established ``target``: ``kind`` (one of :data:`KINDS`)
    says how; ``detail`` holds the characters or affix involved."""

    candidate: str
    target: str
    kind: str
    detail: str = ""

    @property
    def reason(self) -> str:
        """One English sentence (the upload API and the command line speak English)."""
        return describe(self)


def gettext_noop(message: str) -> str:
    """Marks a template for extraction into the console's catalog (core imports no Django)."""
    return message


def describe(match: LookAlike, gettext=gettext_noop) -> str:
    """``match`` as one sentence; ``gettext`` translates the template (a page passes Django's;
    the upload API and the command line keep English)."""
    templates = {
        NEAR_DUPLICATE: gettext_noop("'{candidate}' reads the same as '{target}' once case, "
                                     "separators and look-alike characters are folded"),
        OMITTED: gettext_noop("'{candidate}' is '{target}' with a '{detail}' left out"),
        REPEATED: gettext_noop("'{candidate}' is '{target}' with a '{detail}' doubled"),
        INSERTED: gettext_noop("'{candidate}' is '{target}' with a '{detail}' inserted"),
        SWAPPED: gettext_noop("'{candidate}' is '{target}' with the letters '{detail}' swapped"),
        ADJACENT_KEY: gettext_noop("'{candidate}' is '{target}' with a neighbouring key typed "
                                   "('{detail}')"),
        SUBSTITUTED: gettext_noop("'{candidate}' is '{target}' with one character replaced "
                                  "('{detail}')"),
        WORD_ORDER: gettext_noop("'{candidate}' is '{target}' with its words in another order"),
        AFFIX: gettext_noop("'{candidate}' is '{target}' with '{detail}' added or changed"),
        SIMILAR: gettext_noop("'{candidate}' is within {detail} edits of '{target}'"),
    }
    return gettext(templates[match.kind]).format(candidate=match.candidate, target=match.target,
                                                 detail=match.detail)


# --- the forms names are compared in --------------------------------------------------------

def _letters(name: str) -> str:
    """Lower case, Unicode compatibility and confusable letters folded, accents dropped."""
    text = unicodedata.normalize("NFKC", name).lower().translate(_HOMOGLYPHS)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def compact(name: str) -> str:
    """The name's characters without separators: the form typos are counted in."""
    return _SEPARATORS.sub("", _letters(name))


def fold(name: str) -> str:
    """The name as a reader sees it: ``Py.L0g``, ``pylog`` and ``pyIog`` fold alike."""
    text = compact(name)
    for sequence, replacement in _LOOKALIKE_SEQUENCES:
        text = text.replace(sequence, replacement)
    return text.translate(_LOOKALIKE_CHARS)


def _words(name: str) -> tuple[str, ...]:
    return tuple(sorted(w for w in _SEPARATORS.split(_letters(name)) if w))


def _core(name: str) -> str:
    """The name without one 'python'/'py' prefix and one such suffix:
    ``python3-dateutil``, ``dateutil-py`` and ``python-dateutil`` share the core ``dateutil``."""
    text = _SEPARATORS.sub("-", _letters(name))
    for prefix in _PREFIXES:
        if text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix):]
            break
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[:-len(suffix)]
            break
    return text.replace("-", "")


def _deletes(text: str) -> set[str]:
    return {text[:i] + text[i + 1:] for i in range(len(text))}


def _single_edit(candidate: str, target: str) -> tuple[str, str] | None:
    """How ``candidate`` is one typo away from ``target`` (both compact), or None."""
    if len(candidate) + 1 == len(target):
        for i, char in enumerate(target):
            if target[:i] + target[i + 1:] == candidate:
                return OMITTED, char
        return None
    if len(candidate) == len(target) + 1:
        for i, char in enumerate(candidate):
            if candidate[:i] + candidate[i + 1:] == target:
                doubled = (i and candidate[i - 1] == char) or (
                    i + 1 < len(candidate) and candidate[i + 1] == char)
                return (REPEATED if doubled else INSERTED), char
        return None
    if len(candidate) != len(target) or candidate == target:
        return None
    diff = [i for i in range(len(target)) if candidate[i] != target[i]]
    if len(diff) == 1:
        want, got = target[diff[0]], candidate[diff[0]]
        return (ADJACENT_KEY if got in _NEAR_KEYS.get(want, ()) else SUBSTITUTED), f"{want}→{got}"
    if (len(diff) == 2 and diff[1] == diff[0] + 1 and candidate[diff[0]] == target[diff[1]]
            and candidate[diff[1]] == target[diff[0]]):
        return SWAPPED, target[diff[0]:diff[1] + 1]
    return None


# --- the corpus -------------------------------------------------------------------------------

def parse_corpus(data: bytes) -> list[tuple[str, int]]:
    """Names and download counts from a top-pypi-packages file (its CSV or its JSON) or a plain
    list of names, one a line. Raises ValidationError (one line) for anything else."""
    if len(data) > MAX_CORPUS_BYTES:
        raise ValidationError(f"The corpus file is larger than {MAX_CORPUS_BYTES // 2**20} MiB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The corpus file is not UTF-8 text.") from None
    rows: list[tuple[str, int]] = []
    if text.lstrip().startswith(("{", "[")):
        try:
            document = json.loads(text)
        except ValueError:
            raise ValidationError("The corpus file is not valid JSON.") from None
        items = document.get("rows") if isinstance(document, dict) else document
        if not isinstance(items, list):
            raise ValidationError("The corpus JSON has no list of 'rows'.")
        for item in items:
            if not isinstance(item, dict):
                raise ValidationError("Each row of the corpus JSON must be an object with "
                                      "'project' and 'download_count'.")
            rows.append((item.get("project"), item.get("download_count", 0)))
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        header = [h.strip().lower() for h in lines[0].split(",")] if lines else []
        if "project" in header:
            reader = csv.DictReader(io.StringIO("\n".join(lines)),
                                    fieldnames=header)
            next(reader)
            rows = [(r.get("project"), r.get("download_count") or 0) for r in reader]
        else:
            rows = [(line.strip(), 0) for line in lines]
    if len(rows) > MAX_CORPUS_NAMES:
        raise ValidationError(f"The corpus file lists more than {MAX_CORPUS_NAMES} names.")
    names: dict[str, tuple[str, int]] = {}
    for number, (name, count) in enumerate(rows, 1):
        name = name.strip() if isinstance(name, str) else ""
        if not is_valid_name(name):
            raise ValidationError(f"Entry {number} of the corpus is not a valid project name.")
        try:
            count = int(count)
        except (TypeError, ValueError):
            raise ValidationError(f"Entry {number} of the corpus has an invalid download "
                                  "count.") from None
        if count < 0:
            raise ValidationError(f"Entry {number} of the corpus has a negative download count.")
        key = normalize(name)
        if key not in names or names[key][1] < count:
            names[key] = (name, count)
    if not names:
        raise ValidationError("The corpus file lists no names.")
    return list(names.values())


def shipped_corpus() -> list[tuple[str, int]]:
    """The most downloaded PyPI projects, as shipped with Bastion."""
    data = resources.files("bastion.core").joinpath("data", SHIPPED_CORPUS).read_bytes()
    return parse_corpus(data)


class Corpus:
    """Established names and their weights, indexed for :meth:`check`.

    ``popular``: how many of the heaviest names the typo, word-order and distance rules
    protect; ``top``: how many of those also short-name typos, version digits and affixes.
    """

    def __init__(self, names: Iterable[tuple[str, int]], *, popular: int = DEFAULT_POPULAR,
                 top: int = DEFAULT_TOP):
        weights: dict[str, int] = {}
        spelled: dict[str, str] = {}
        for name, weight in names:
            key = normalize(name)
            if key not in weights or weights[key] < weight:
                weights[key] = int(weight)
                spelled[key] = name
        self.weights = weights
        self.spelled = spelled
        ranked = sorted(weights, key=lambda n: (-weights[n], n))
        self.popular = frozenset(ranked[:popular])
        self.top = frozenset(ranked[:min(top, popular)])
        self.digit_top = frozenset(ranked[:min(DIGIT_TOP, top, popular)])
        self._folded: dict[str, list[str]] = {}
        for key in ranked:
            self._folded.setdefault(fold(key), []).append(key)
        self._words: dict[tuple[str, ...], list[str]] = {}
        self._compact: dict[str, list[str]] = {}
        self._deleted: dict[str, list[str]] = {}
        self._cores: dict[str, list[str]] = {}
        self._by_length: dict[int, list[tuple[str, str]]] = {}
        for key in ranked[:popular]:
            text = compact(key)
            words = _words(key)
            if len(words) > 1:
                self._words.setdefault(words, []).append(key)
            if key in self.top:
                self._cores.setdefault(_core(key), []).append(key)
            if len(text) >= MIN_DISTANCE_2_LENGTH and key in self.top:
                self._by_length.setdefault(len(text), []).append((text, key))
            if len(text) < MIN_TOP_TYPO_LENGTH:
                continue
            self._compact.setdefault(text, []).append(key)
            for variant in _deletes(text):
                self._deleted.setdefault(variant, []).append(key)

    def __len__(self) -> int:
        return len(self.weights)

    def __contains__(self, name: str) -> bool:
        return normalize(name) in self.weights

    def check(self, name: str) -> LookAlike | None:
        """The established name ``name`` imitates, or None. A name in the corpus is
        established itself: it imitates nothing."""
        if normalize(name) in self.weights:
            return None
        return self.imitates(name)

    def imitates(self, name: str) -> LookAlike | None:
        """What ``name`` imitates among the corpus names other than itself (the test of the
        corpus against itself asks this)."""
        key = normalize(name)
        for rule in (self._near_duplicate, self._typo, self._word_order, self._affix,
                     self._distance):
            match = rule(name, key)
            if match is not None:
                return match
        return None

    def _best(self, keys: Iterable[str], own: str) -> str | None:
        keys = [k for k in keys if k != own]
        return max(keys, key=lambda k: (self.weights[k], k)) if keys else None

    def _match(self, name: str, target: str, kind: str, detail: str = "") -> LookAlike:
        return LookAlike(candidate=name, target=self.spelled[target], kind=kind, detail=detail)

    def _near_duplicate(self, name: str, key: str) -> LookAlike | None:
        target = self._best(self._folded.get(fold(name), ()), key)
        return self._match(name, target, NEAR_DUPLICATE) if target else None

    def _typo_counts(self, name: str, target: str, kind: str, detail: str) -> bool:
        """Whether a single typo makes ``name`` imitate ``target``: the word it changed is
        long enough, and a changed digit ("psycopg" and "psycopg2") counts only for the top."""
        length = _edited_word_length(name, target)
        top = target in self.top
        if any(c.isdigit() for c in detail):
            return target in self.digit_top and length >= MIN_TOP_TYPO_LENGTH
        if kind in (OMITTED, INSERTED) and detail == "s" and _plural_of(name, target):
            return top and length >= MIN_TOP_TYPO_LENGTH
        if kind in (OMITTED, INSERTED) and _at_an_end(name, target):
            # A letter before or after a name is how variants are named ("cattrs", "torchx",
            # "tomli"), not how it is mistyped; a doubled one is REPEATED, not this.
            return False
        if kind == SUBSTITUTED:
            return length >= (MIN_TYPO_LENGTH if top else MIN_SUBSTITUTION_LENGTH)
        return length >= (MIN_TOP_TYPO_LENGTH if top else MIN_TYPO_LENGTH)

    def _typo(self, name: str, key: str) -> LookAlike | None:
        text = compact(name)
        if len(text) + 1 < MIN_TOP_TYPO_LENGTH:
            return None
        keys = set(self._compact.get(text, ()))  # an inserted character
        keys.update(self._deleted.get(text, ()))  # an omitted one
        for variant in _deletes(text):  # a replaced or swapped one
            keys.update(self._deleted.get(variant, ()))
            keys.update(self._compact.get(variant, ()))
        found = [(self.weights[k], k, edit) for k in keys if k != key
                 for edit in [_single_edit(text, compact(k))]
                 if edit is not None and self._typo_counts(name, k, *edit)]
        if not found:
            return None
        _weight, target, (kind, detail) = max(found)
        return self._match(name, target, kind, detail)

    def _word_order(self, name: str, key: str) -> LookAlike | None:
        words = _words(name)
        if len(words) < 2:
            return None
        target = self._best(self._words.get(words, ()), key)
        return self._match(name, target, WORD_ORDER) if target else None

    def _affix(self, name: str, key: str) -> LookAlike | None:
        core = _core(name)
        if len(core) < MIN_TOP_TYPO_LENGTH:
            return None
        target = self._best(self._cores.get(core, ()), key)
        if target is None:
            return None
        return self._match(name, target, AFFIX, _affix_of(name, target))

    def _distance(self, name: str, key: str) -> LookAlike | None:
        text = compact(name)
        if len(text) < MIN_DISTANCE_2_LENGTH:
            return None
        choices = [pair for length in range(len(text) - 2, len(text) + 3)
                   for pair in self._by_length.get(length, ()) if pair[1] != key]
        if not choices:
            return None
        found = [(self.weights[choices[index][1]], choices[index][1])
                 for _text, distance, index in process.extract(
                     text, [c[0] for c in choices], scorer=Levenshtein.distance,
                     score_cutoff=2, limit=20)
                 if distance == 2 and _same_words_but_one(name, choices[index][1])]
        if not found:
            return None
        return self._match(name, max(found)[1], SIMILAR, "2")


def _at_an_end(name: str, target: str) -> bool:
    """Whether one name is the other with a character added in front or at the end."""
    a, b = compact(name), compact(target)
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[1:] == shorter or longer[:-1] == shorter


def _plural_of(name: str, target: str) -> bool:
    """Whether one name is the other with a final 's' ("future" and "futures")."""
    a, b = compact(name), compact(target)
    return a + "s" == b or b + "s" == a


def _same_words_but_one(name: str, target: str) -> bool:
    """Whether the names have the same words but one long one (two typos in a short word, or
    spread over words, make another name: "frozenlist" is not "frozendict")."""
    words = [w for w in _SEPARATORS.split(_letters(name)) if w]
    target_words = [w for w in _SEPARATORS.split(target) if w]
    if len(words) != len(target_words):
        return False
    changed = [t for w, t in zip(words, target_words) if w != t]
    return len(changed) == 1 and len(changed[0]) >= MIN_DISTANCE_2_LENGTH


def _edited_word_length(name: str, target: str) -> int:
    """The length of the one word ``name`` changed in ``target`` (both split at separators),
    or of the whole name when the words do not line up one to one; 0 when ``name`` only adds
    or drops a whole word ("tree-sitter-c", "x-transformers": other projects, not typos)."""
    words = [w for w in _SEPARATORS.split(_letters(name)) if w]
    target_words = [w for w in _SEPARATORS.split(target) if w]
    if len(words) == len(target_words):
        changed = [t for w, t in zip(words, target_words) if w != t]
        if len(changed) == 1:
            return len(changed[0])
    elif abs(len(words) - len(target_words)) == 1:
        longer, shorter = sorted((words, target_words), key=len, reverse=True)
        if any(longer[:i] + longer[i + 1:] == shorter for i in range(len(longer))):
            return 0
    return len(compact(target))


def _affix_of(name: str, target: str) -> str:
    """What ``name`` has that ``target`` lacks (or the reverse), for the reason."""
    a, b = _SEPARATORS.sub("-", name.lower()), target
    if a.startswith(b) or b.startswith(a):
        return (a[len(b):] or b[len(a):]).strip("-") or a
    if a.endswith(b) or b.endswith(a):
        return (a[:len(a) - len(b)] or b[:len(b) - len(a)]).strip("-") or a
    return a.split("-")[0] if "-" in a else a
