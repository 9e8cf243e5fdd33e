"""The engine's shortcuts answer as the plain searches they replace: the node budget still
counts every node, guarded tokens and anchors are still found."""

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


@pytest.mark.parametrize("token", indicators.STRONG_TOKENS)
def test_every_strong_token_is_found_behind_its_guard(token):
    for text in (b"x = " + token + b"\n", b"x = y." + token + b"\n", b"model.eval()\n" + token):
        assert indicators.strong_trigger(text) == _plain_trigger(text)
    assert indicators.strong_trigger(b"model.eval()\nprint(1)\n") is False


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


def test_every_guard_is_part_of_the_anchors_it_guards():
    assert indicators._GUARD_OF
    assert all(guard in anchor for anchor, guard in indicators._GUARD_OF.items())
