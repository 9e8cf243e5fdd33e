"""Update the German catalogs from the code and compile them: `make messages`.

Runs Django's makemessages (which needs GNU xgettext: Debian's `gettext`) in each app that
has a locale/ folder, then compiles each .mo with Babel (no gettext tools needed to install
or run: the .mo files are committed). Translate the new entries in the .po files (remove any
"fuzzy" flag once checked) and run it again.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from babel.messages.mofile import write_mo  # noqa: E402
from babel.messages.pofile import read_po  # noqa: E402

APPS = ["accounts", "packaging", "tokens", "console", "events", "web", "proxy", "publishing",
        "inventory", "advisories",
        "scanning", "provenance", "tuf"]
LANGUAGES = ["de"]
# Modules outside any app whose messages go into an app's catalog: core has no locale/ of its
# own (it is no app), and the events app is the one that translates the log's sentences; the
# outage answers of ops (no locale/ either) are the error pages' (web's).
SOURCES = {"events": ["core/event_text.py"], "console": ["core/lookalike.py"],
           "web": ["ops/outages.py"]}


def app_dirs() -> list[Path]:
    return [SRC / "bastion" / app for app in APPS]


def configure() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(USE_I18N=True, LANGUAGE_CODE="en", INSTALLED_APPS=[],
                           TEMPLATES=[{"BACKEND": "django.template.backends.django."
                                       "DjangoTemplates"}])
        django.setup()


def extract(app: Path, *, into: Path | None = None) -> None:
    """makemessages for ``app``; into another directory (a copy of the app) if given."""
    from django.core.management import call_command

    if into is None and app.name in SOURCES:
        # makemessages reads only the folder it runs in: run it in a copy holding the other
        # sources too, and keep the catalogs it writes.
        with tempfile.TemporaryDirectory() as tmp:
            copy = copy_app(app, Path(tmp))
            extract(app, into=copy)
            for po in copy.glob("locale/*/LC_MESSAGES/*.po"):
                (app / po.relative_to(copy)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(po, app / po.relative_to(copy))
        return
    here = os.getcwd()
    os.chdir(into or app)
    try:
        for domain in ("django",):
            call_command("makemessages", locale=LANGUAGES, domain=domain, no_location=True,
                         no_obsolete=True, verbosity=0, ignore_patterns=["static/*"])
    finally:
        os.chdir(here)


def copy_app(app: Path, tmp: Path) -> Path:
    """A copy of ``app`` under ``tmp`` with its committed catalogs (not the .mo files) and the
    other sources whose messages it holds."""
    copy = tmp / app.name
    shutil.copytree(app, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    (copy / "locale").mkdir(exist_ok=True)
    for source in SOURCES.get(app.name, []):
        target = copy / "_sources" / source
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SRC / "bastion" / source, target)
    return copy


def compile_all(root: Path | None = None) -> list[Path]:
    written = []
    for app in ([root] if root else app_dirs()):
        for po in sorted(app.glob("locale/*/LC_MESSAGES/*.po")):
            mo = po.with_suffix(".mo")
            with po.open("rb") as source, mo.open("wb") as target:
                write_mo(target, read_po(source))
            written.append(mo)
    return written


def keys(po: Path) -> set[tuple]:
    """Each message of a catalog as (context, id); an empty set if there is no catalog."""
    if not po.exists():
        return set()
    with po.open("rb") as handle:
        return {(message.context, message.id) for message in read_po(handle) if message.id}


def stale() -> list[str]:
    """What the committed catalogs lack or hold beyond the code's messages, one line each.

    Extracts from a copy of each app, so that the committed files stay as they are.
    """
    problems = []
    configure()
    for app in app_dirs():
        with tempfile.TemporaryDirectory() as tmp:
            copy = copy_app(app, Path(tmp))
            extract(app, into=copy)
            for language in LANGUAGES:
                relative = Path("locale", language, "LC_MESSAGES", "django.po")
                fresh = copy / relative
                committed = app / relative
                want, have = keys(fresh), keys(committed)
                for key in sorted(want - have):
                    problems.append(f"{app.name} {language}: not in the catalog: {key!r}")
                for key in sorted(have - want):
                    problems.append(f"{app.name} {language}: no longer in the code: {key!r}")
    return problems


def main() -> None:
    if sys.argv[1:] == ["--check"]:
        problems = stale()
        print("\n".join(problems) or "catalogs up to date")
        sys.exit(1 if problems else 0)
    configure()
    for app in app_dirs():
        (app / "locale").mkdir(exist_ok=True)
        extract(app)
    for mo in compile_all():
        print(mo.relative_to(SRC.parent))


if __name__ == "__main__":
    main()
