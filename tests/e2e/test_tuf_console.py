"""The air-gapped root ceremony through the admin console (``/admin/tuf/``), end to end: a
real server with TUF on prepares the next root as a zip, the offline machine signs it with
``bastion tuf sign`` (no Django), and the console applies the zip of the signed directory —
after which ``bastion tuf status`` and python-tuf's ngclient see the new root. Zips that are
not exactly a signed ceremony directory are refused in one line with nothing installed.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from bastion.events import tags
from bastion.events.models import SecurityEvent
from tests.cli_runner import run_cli
from tests.e2e.manage_support import Client, make_user, text_of
from tests.e2e.tuf_support import Site, own_site  # noqa: F401 (fixture)

from .test_tuf import _offline_env, _offline_keys, _online_env, _root_version

NAMES = ["current-root.json", "manifest.json", "online-key.json", "root.json", "targets.json"]


@pytest.fixture(scope="module")
def site():
    s = Site()
    yield s
    s.stop()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def _apply(admin: Client, data: bytes, *, csrf: bool = True, expect: str | None = None):
    fields = {"csrfmiddlewaretoken": admin.csrf()} if csrf else {}
    if expect is not None:
        fields["expect_root_key"] = expect
    return admin.http.post(admin.base + "/admin/tuf/apply/", data=fields,
                           files={"file": ("signed.zip", data, "application/zip")},
                           allow_redirects=False, timeout=60)


def _refusal(response) -> str:
    assert response.status_code == 400, (response.status_code, text_of(response.text)[:500])
    match = re.search(r'id="form-error">([^<]*)<', response.text)
    assert match, text_of(response.text)[:500]
    assert "\n" not in match.group(1).strip()
    return text_of(match.group(1))


def test_admins_prepare_and_apply_a_root_signed_offline_through_the_console(site, tmp_path):
    admin_user = make_user("tufadmin", admin=True)
    admin = Client(site.server, admin_user)
    before, old_key = _root_version(site), site.online_key.read_bytes()
    page = admin.get("/admin/tuf/")
    assert page.status_code == 200 and 'id="tuf-prepare-form"' in page.text
    assert 'id="tuf-pending"' not in page.text

    # Without the CSRF token nothing is prepared.
    refused = admin.post("/admin/tuf/prepare/", {"rotate_online_key": "1"}, csrf=False)
    assert refused.status_code == 403
    prepared = admin.post("/admin/tuf/prepare/", {"rotate_online_key": "1"})
    assert prepared.status_code == 200, text_of(prepared.text)[:500]
    assert prepared.headers["Content-Type"] == "application/zip"
    assert prepared.headers["Content-Disposition"] == (
        f'attachment; filename="bastion-tuf-root-v{before + 1}-unsigned.zip"')
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_TUF_ROOT_PREPARE, actor=admin_user,
                                        additional__root_version=before + 1).exists()
    assert site.online_key.read_bytes() == old_key
    page = admin.get("/admin/tuf/")
    assert 'id="tuf-pending"' in page.text and "online-key.pem.next" in page.text
    with zipfile.ZipFile(io.BytesIO(prepared.content)) as zf:
        named = json.loads(zf.read("online-key.json"))
    assert f'<code id="tuf-pending-keyid">{named["keyid"]}</code>' in page.text
    # What the operator copies from the page for the offline machine's --expect-online-key.
    shown_keyid = re.search(r'<code id="tuf-pending-keyid">([0-9a-f]+)</code>', page.text)[1]

    # On the offline machine: unzip, sign, zip the directory's files.
    ceremony = tmp_path / "ceremony"
    with zipfile.ZipFile(io.BytesIO(prepared.content)) as zf:
        assert sorted(zf.namelist()) == NAMES
        zf.extractall(ceremony)
    unsigned = {name: (ceremony / name).read_bytes() for name in NAMES}
    signed = run_cli(["tuf", "sign", ceremony, "--keys", *_offline_keys(site),
                      "--expect-online-key", shown_keyid, "--yes"], env=_offline_env(tmp_path))
    assert signed.returncode == 0, signed.stderr
    signed_files = {name: (ceremony / name).read_bytes() for name in NAMES}

    # Refused in one line, and nothing installed: unsigned, an unknown member, a path out,
    # no CSRF token, not an administrator.
    assert "signature" in _refusal(_apply(admin, _zip(unsigned)))
    assert "'notes.txt', which is not a file of a root ceremony" in _refusal(
        _apply(admin, _zip({**signed_files, "notes.txt": b"hello"})))
    assert "'../root.json', which is not a file of a root ceremony" in _refusal(
        _apply(admin, _zip({**signed_files, "../root.json": signed_files["root.json"]})))
    assert "not a readable zip" in _refusal(_apply(admin, b"PK not a zip at all"))
    assert _apply(admin, _zip(signed_files), csrf=False).status_code == 403
    stranger = Client(site.server, make_user("tufuser"))
    denied = stranger.http.post(site.server.url + "/admin/tuf/apply/",
                                data={"csrfmiddlewaretoken": stranger.csrf()},
                                files={"file": ("signed.zip", _zip(signed_files))},
                                allow_redirects=False, timeout=60)
    assert denied.status_code == 403
    anonymous = Client(site.server).post("/admin/tuf/prepare/", {}, csrf=False)
    assert anonymous.status_code in (302, 403)
    assert _root_version(site) == before
    assert site.online_key.read_bytes() == old_key
    assert not (tmp_path / "root.json").exists()

    applied = _apply(admin, _zip(signed_files))
    assert applied.status_code == 302, text_of(applied.text)[:500]
    shown = admin.get(applied.headers["Location"])
    assert f"Installed root version {before + 1}." in text_of(shown.text)
    assert 'id="tuf-pending"' not in shown.text
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_TUF_ROOT_SIGN, actor=admin_user,
                                        additional__root_version=before + 1).exists()
    assert site.online_key.read_bytes() != old_key
    status = run_cli(["tuf", "status"], env=_online_env(site))
    assert status.returncode == 0, status.stderr
    assert re.search(rf"^root\s+version {before + 1}\b", status.stdout, re.M), status.stdout
    updater = site.updater(tmp_path)
    updater.refresh()
    assert updater._trusted_set.root.version == before + 1
    assert json.loads(Path(site.render_dir / "tuf" / "metadata" / "root.json").read_bytes(
    ))["signed"]["version"] == before + 1

    # The same zip again: prepared against a root the index has passed.
    assert f"prepared against root version {before}" in _refusal(
        _apply(admin, _zip(signed_files)))


def test_the_console_applies_a_root_whose_new_root_key_was_made_offline(own_site, tmp_path):
    site = own_site
    admin = Client(site.server, make_user("tufrot", admin=True))
    page = admin.get("/admin/tuf/")
    assert "--new-root-key" in page.text
    offline, old_root_key = _offline_env(tmp_path), str(site.keys / "root-1.pem")
    zips = {}
    for which, keys in (("impostor", [str(site.keys / "targets.pem")]),
                        ("rotated", [old_root_key, str(site.keys / "targets.pem")])):
        prepared = admin.post("/admin/tuf/prepare/", {})
        assert prepared.status_code == 200, text_of(prepared.text)[:500]
        ceremony = tmp_path / which
        with zipfile.ZipFile(io.BytesIO(prepared.content)) as zf:
            zf.extractall(ceremony)
        signed = run_cli(["tuf", "sign", ceremony, "--keys", *keys, "--new-root-key",
                          tmp_path / f"{which}.pem", "--yes"], input="pw\n", env=offline)
        assert signed.returncode == 0, signed.stderr
        zips[which] = _zip({p.name: p.read_bytes() for p in ceremony.iterdir()})

    # Signed by its new key alone, never by the root key the index trusts: refused.
    assert "needs 1 signature(s) of the current root's keys; 0 valid given" in _refusal(
        _apply(admin, zips["impostor"]))
    assert _root_version(site) == 1
    new_keyid = json.loads((tmp_path / "rotated" / "root.json").read_bytes()
                           )["signed"]["roles"]["root"]["keyids"][0]
    # The apply bound to the key id the offline machine printed: another one is refused.
    assert f"names the root keys {new_keyid}, not the ones expected" in _refusal(
        _apply(admin, zips["rotated"], expect="0" * 64))
    assert "longer than 1024 characters" in _refusal(
        _apply(admin, zips["rotated"], expect="0" * 1025))
    assert _root_version(site) == 1
    applied = _apply(admin, zips["rotated"], expect=new_keyid)
    assert applied.status_code == 302, text_of(applied.text)[:500]
    assert new_keyid in admin.get("/admin/tuf/").text
    updater = site.updater(tmp_path)
    updater.refresh()
    assert updater._trusted_set.root.version == 2
    assert list(updater._trusted_set.root.roles["root"].keyids) == [new_keyid]
