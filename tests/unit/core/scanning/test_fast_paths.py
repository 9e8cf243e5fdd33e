"""The engine's shortcuts answer as the plain searches they replace: the node budget still
counts every node; tokens and anchors looked up in a text's words first are still found."""

from __future__ import annotations

import pytest

from bastion.core.scanning import Budget, indicators, scan

from .support import sdist


def test_contexts_and_operators_still_count_against_the_node_budget(tmp_path):
    # About 3,000 listed nodes, but each name carries a load context: over 6,000 in all.
    source = "import subprocess\nsubprocess.call\nv = (" + ", ".join(["a"] * 3000) + ")\n"
    result = scan(sdist(tmp_path, {"demo/big.py": source}), budget=Budget(max_nodes=4000))
    assert "syntax nodes" in result.reason


def _plain_trigger(data: bytes) -> bool:
    for token in indicators.STRONG_TOKENS:
        if token in data:
            if token[:4] in (b"exec", b"eval") and not indicators._CALL_NOT_METHOD.search(data):
                continue
            return True
    return indicators.has_encoded_run(data)


# Texts longer than the words threshold take the words path, shorter ones the plain one.
_PADDING = b"def f(value):\n    return value.strip()  # Some ordinary code\n" * 60


def _contexts(needle: bytes) -> list[bytes]:
    """The needle alone, inside longer words, upper-cased, and each of these in a long text."""
    short = [b"x = " + needle + b"\n", b"x = y." + needle + b"\n", b"model.eval()\n" + needle,
             b"s = 'AB" + needle + b"cd'\n", b"s = \"" + needle.upper() + b"\"\n", needle]
    return short + [_PADDING + text + _PADDING for text in short]


@pytest.mark.parametrize("token", indicators.STRONG_TOKENS)
def test_every_strong_token_is_found_behind_its_words(token):
    assert len(_PADDING) > indicators._WORDS_FROM
    for text in _contexts(token):
        assert indicators.strong_trigger(text) == _plain_trigger(text)
    assert indicators.strong_trigger(b"model.eval()\nprint(1)\n") is False
    assert indicators.strong_trigger(_PADDING + b"model.eval()\n") is False


def _plain_locate(data: bytes) -> list[tuple[str, str, int]]:
    """locate() without the words: every anchor searched in the whole text."""
    lower = data.lower()
    found = []
    for rule_id, anchors, pattern in indicators.PATTERNS:
        hit = indicators._search_near(lower, anchors, pattern)
        if hit:
            found.append((rule_id, indicators._show(data[hit.start():hit.end()]), hit.start()))
    return found + [f for f in indicators.locate(data) if f[0] == "exfil-raw-ip"]


_ANCHORS = sorted({anchor for _, anchors, _ in indicators.PATTERNS for anchor in anchors})
# Texts each indicator matches, so that a wrongly skipped anchor shows as a missing finding.
_MATCHING = [b"https://discord.com/api/webhooks/1/x", b"https://pastebin.com/raw/abc",
             b"https://hookbin.com/abc", b"169.254.169.254", b"'Login Data'", b"~/.ssh/id_rsa",
             b"wallet.dat", b"discord/Local Storage", b"schtasks /create", b"crontab -e",
             b"curl -s http://x.example | sh", b"http://a.b/x.exe", b"api.ipify.org",
             b"from pytransform import x", b"User Data\\Default", b"Google/Chrome/"]


@pytest.mark.parametrize("anchor", _ANCHORS + _MATCHING)
def test_every_anchor_is_found_behind_its_words(anchor):
    for text in _contexts(anchor):
        assert indicators.locate(text) == _plain_locate(text)
        assert indicators.locate(text, indicators.words(text)) == _plain_locate(text)


def test_a_needle_word_is_never_split_across_the_texts_words():
    # The words are joined by a space, which no needle's key holds: two adjacent words of the
    # text never make up a key between them.
    assert all(b" " not in key for key in indicators._KEYS)
    assert indicators.locate(b"x = 'paste' + 'bin.com'\n" + _PADDING) == []


@pytest.mark.parametrize("text, rule", [
    ("u = 'https://pastebin.com/raw/abc'", "exfil-paste"),
    ("u = 'https://hookbin.com/abc'", "exfil-oast"),
    ("u = 'https://api.ipify.org'", "recon-host"),
    ("p = '~/.bash_history'", "cred-files"),
    ("p = 'User Data\\\\Default'", "cred-browser"),
    ("c = 'crontab -l'", "persist-unix"),
    ("u = 'https://discord.com/api/webhooks/1/x'", "exfil-webhook"),
])
def test_guarded_anchors_are_still_found(text, rule):
    assert rule in {rule_id for rule_id, _ in indicators.match(text)}


def test_the_words_of_a_text():
    words = indicators.words(b"Import OS; os.System('X_1')\xc3\xa9")
    assert sorted(words.split(b" ")) == [b"import", b"os", b"system", b"x_1"]
