"""`bastion admin check` over the whole index: orphans in the store are found."""

from __future__ import annotations

import io
import secrets

from bastion.ops import integrity
from bastion.storage import get_store


def test_a_stored_file_no_row_names_is_an_orphan():
    store = get_store()
    path = f"packages/zz/zz/{secrets.token_hex(30)}/orphan-1.0.tar.gz"
    elsewhere = f"rendered/{secrets.token_hex(8)}.html"  # not a prefix rows refer to
    store.put(path, io.BytesIO(b"nobody's"))
    store.put(elsewhere, io.BytesIO(b"<html>"))
    try:
        found = integrity.orphans()
        assert path in found and elsewhere not in found
        report = integrity.check_index()
        assert f"ORPHAN {path}: a stored file no row refers to" in report.problems
        assert not report.ok
    finally:
        store.delete(path)
        store.delete(elsewhere)
    assert path not in integrity.orphans()
