import gettext
import io

from bastion.core.catalogs import compile_mo, parse_po

PO = r'''# header
msgid ""
msgstr ""
"Language: de\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

#, python-brace-format
msgid "Hello {name},"
msgstr "Hallo {name},"

msgid ""
"Two lines:\n"
"a \"quote\""
msgstr "Zwei Zeilen:\n"
"ein \"Zitat\""

msgid "%(n)s key"
msgid_plural "%(n)s keys"
msgstr[0] "%(n)s Schlüssel"
msgstr[1] "%(n)s Schlüssel (mehrere)"

msgctxt "badge"
msgid "on"
msgstr "an"

#, fuzzy
msgid "Guessed"
msgstr "Geraten"

msgid "Missing"
msgstr ""

#~ msgid "Old"
#~ msgstr "Alt"
'''


def test_a_compiled_catalog_reads_back_through_gettext():
    translations = gettext.GNUTranslations(io.BytesIO(compile_mo(parse_po(PO))))
    assert translations.gettext("Hello {name},") == "Hallo {name},"
    assert translations.gettext('Two lines:\na "quote"') == 'Zwei Zeilen:\nein "Zitat"'
    assert translations.ngettext("%(n)s key", "%(n)s keys", 1) == "%(n)s Schlüssel"
    assert translations.ngettext("%(n)s key", "%(n)s keys", 3) == "%(n)s Schlüssel (mehrere)"
    assert translations.pgettext("badge", "on") == "an"
    # Fuzzy and empty entries are left out, as msgfmt leaves them out.
    assert translations.gettext("Guessed") == "Guessed"
    assert translations.gettext("Missing") == "Missing"


def test_untranslated_fuzzy_and_obsolete_entries_are_told_apart():
    catalog = parse_po(PO)
    by_id = {e.msgid: e for e in catalog.entries}
    assert "Old" not in by_id
    assert by_id["Guessed"].fuzzy and not by_id["Guessed"].translated
    assert not by_id["Missing"].translated
    assert by_id["on"].context == "badge" and by_id["on"].translated
    assert "Language: de" in catalog.header
