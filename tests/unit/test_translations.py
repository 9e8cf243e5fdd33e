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

from tests.catalogs import key, messages, texts, translated

# No database: run in the SQLite pass only (tests/conftest.py).
pytestmark = pytest.mark.pure

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
    catalog = messages(po)
    untranslated = [m.id for m in catalog if not translated(m)]
    assert not untranslated, f"{len(untranslated)} untranslated or fuzzy: {untranslated[:5]}"
    for message in catalog:
        want = sorted(set(PLACEHOLDER.findall(" ".join(texts(message.id)))))
        for text in texts(message.string):
            assert sorted(set(PLACEHOLDER.findall(text))) == want, (message.id, text)


@pytest.mark.parametrize("po", CATALOGS, ids=_id)
def test_the_committed_mo_is_compiled_from_its_po(po):
    """Installs need no gettext tools: the .mo is committed, and must match its .po."""
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{mo} missing: run `make messages`"
    with mo.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog
    compiled.pop("", None)  # the header: dates and tool names, not translations
    # gettext keys each plural form by (msgid, n); fold them back to compare.
    folded: dict[str, list[str]] = {}
    for found, value in sorted(compiled.items(), key=lambda item: str(item[0])):
        if isinstance(found, tuple):
            folded.setdefault(found[0], []).append(value)
        else:
            folded[found] = [value]
    expected = {key(m).split("\0")[0]: list(texts(m.string)) for m in messages(po)
                if translated(m)}
    assert folded == expected, f"{mo} is stale: run `make messages`"


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
