"""Every shipped language translates every message, and the compiled catalogs are current."""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from bastion.core.catalogs import parse_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = sorted((ROOT / "src" / "bastion").glob("*/locale/*/LC_MESSAGES/django.po"))
SHIPPED = [code for code, _name in settings.LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"\{[a-z_]*\}|%\([a-z_]+\)[sd]|%[sd]")


def _id(po: Path) -> str:
    return f"{po.parents[3].name}-{po.parents[1].name}"


def test_every_shipped_language_has_catalogs():
    for code in SHIPPED:
        assert [po for po in CATALOGS if po.parents[1].name == code], code
    assert {po.parents[1].name for po in CATALOGS} <= set(SHIPPED)


@pytest.mark.parametrize("po", CATALOGS, ids=_id)
def test_every_message_is_translated_and_keeps_its_placeholders(po):
    catalog = parse_po(po.read_text(encoding="utf-8"))
    untranslated = [e.msgid for e in catalog.entries if not e.translated]
    assert not untranslated, f"{len(untranslated)} untranslated or fuzzy: {untranslated[:5]}"
    for entry in catalog.entries:
        sources = [entry.msgid] + ([entry.msgid_plural] if entry.msgid_plural else [])
        want = sorted(set(PLACEHOLDER.findall(" ".join(sources))))
        for text in entry.msgstr:
            assert sorted(set(PLACEHOLDER.findall(text))) == want, (entry.msgid, text)


@pytest.mark.parametrize("po", CATALOGS, ids=_id)
def test_the_committed_mo_is_compiled_from_its_po(po):
    """Installs need no gettext tools: the .mo is committed, and must match its .po."""
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{mo} missing: run `make messages`"
    with mo.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog
    expected = parse_po(po.read_text(encoding="utf-8")).messages()
    # gettext keys plural entries by (msgid, n); fold them back to compare.
    folded: dict[str, list[str]] = {}
    for key, value in compiled.items():
        if isinstance(key, tuple):
            folded.setdefault(key[0], []).append(value)
        else:
            folded[key] = [value]
    singular = {k.split("\0")[0]: v.split("\0") for k, v in expected.items()}
    assert folded == singular, f"{mo} is stale: run `make messages`"


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext (Debian's gettext)")
def test_the_catalogs_hold_exactly_the_messages_of_the_code():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "messages.py"), "--check"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_german_reader_gets_german_from_each_app():
    with translation.override("de"):
        assert translation.gettext("Two-factor authentication") == "Zwei-Faktor-Authentifizierung"
        assert translation.ngettext("%(counter)s security key", "%(counter)s security keys",
                                    2) == "%(counter)s Sicherheitsschlüssel"
