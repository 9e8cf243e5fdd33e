"""The index's TUF metadata (PEP 458) end to end: a real server signs what it renders, python-tuf's
ngclient verifies it, and pip and uv install through ``bastion verify-proxy`` — and stop when
a page is changed on disk behind the index.

One server with TUF on serves the whole module; the proxy runs in this process (a thread),
as ``bastion verify-proxy`` runs it.
"""

from __future__ import annotations

import io
import json
import secrets
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import requests
from django.test import override_settings
from tuf.api import exceptions
from tuf.ngclient import Updater

from bastion import cli
from bastion.core.tufmeta import target_name
from bastion.events import tags
from bastion.events.models import SecurityEvent
from tests.e2e.simple_support import (
    client_env,
    installed_version,
    new_publisher,
    new_venv,
    pip_install,
    publish,
    uv_install,
    wheel,
)
from tests.e2e.nginx_support import Nginx, require_nginx
from tests.e2e.tuf_support import own_site, proxy, site  # noqa: F401 (fixtures)


def _name() -> str:
    return "tufdemo-" + secrets.token_hex(4)


def test_init_makes_offline_keys_and_an_online_key_and_records_the_event(site):
    assert sorted(p.name for p in site.keys.iterdir()) == ["root-1.pem", "targets.pem"]
    for key in (*site.keys.iterdir(), site.online_key):
        assert key.stat().st_mode & 0o077 == 0
    root = json.loads(site.root.read_bytes())
    assert root["signed"]["consistent_snapshot"] is True
    assert root["signed"]["roles"]["root"]["keyids"][0] in site.init_output
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_TUF_INIT).exists()


def test_ngclient_with_the_index_root_verifies_pages_in_both_formats_and_files(site, tmp_path):
    name = _name()
    stored = publish(site.server.url, site.publisher, wheel(name, "1.0"))
    updater = site.updater(tmp_path)
    updater.refresh()
    for page in ("index.html", "index.v1.json"):
        info = updater.get_targetinfo(f"simple/{name}/{page}")
        body = Path(updater.download_target(info)).read_bytes()
        # The very bytes the index renders for nginx to serve at the page's URL.
        assert body == (site.render_dir / "simple" / name / page).read_bytes()
    document = json.loads((site.render_dir / "simple" / name / "index.v1.json").read_bytes())
    assert name in {p["name"] for p in json.loads(Path(updater.download_target(
        updater.get_targetinfo("simple/index.v1.json"))).read_bytes())["projects"]}
    for path in (stored.path, stored.path + ".metadata"):
        info = updater.get_targetinfo(path)
        assert info is not None, path
        updater.download_target(info)
    assert updater.get_targetinfo(stored.path).hashes["sha256"] == document["files"][0]["hashes"]["sha256"]


def test_a_page_changed_on_disk_behind_the_index_is_refused(site, tmp_path):
    name = _name()
    publish(site.server.url, site.publisher, wheel(name, "1.0"))
    updater = site.updater(tmp_path)
    updater.refresh()
    info = updater.get_targetinfo(f"simple/{name}/index.html")
    copy = site.render_dir / "tuf" / "targets" / target_name(info.path, info.hashes["sha256"])
    copy.write_bytes(copy.read_bytes().replace(b"</body>", b"<a href='/evil'>x</a></body>"))
    # A longer page is cut off at the signed length; one of the same length fails the hash.
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        updater.download_target(info)
    copy.write_bytes(copy.read_bytes()[:info.length - 1] + b"!")
    with pytest.raises(exceptions.LengthOrHashMismatchError):
        updater.download_target(info)


@pytest.mark.slow
def test_pip_and_uv_install_through_the_verify_proxy_and_stop_at_a_tampered_page(
        site, proxy, tmp_path):
    good, bad = _name(), _name()
    for name in (good, bad):
        publish(site.server.url, site.publisher, wheel(name, "1.0"))
    # The second project's pages are changed behind the index, in both formats and at the
    # URLs nginx serves: a file of another release is offered in place of the real one.
    for page in (site.render_dir / "simple" / bad).glob("index*"):
        tampered = page.read_bytes().replace(b"1.0", b"1.1")
        page.write_bytes(tampered)
        for copy in (site.render_dir / "tuf" / "targets" / "simple" / bad).glob(f"*.{page.name}"):
            copy.write_bytes(tampered)

    # The proxy answers 502 to what fails verification; both clients would retry it with
    # growing pauses before giving up, which only costs time here.
    env = client_env(tmp_path / "home", PIP_RETRIES="0", UV_HTTP_RETRIES="0")
    for install in (pip_install, uv_install):
        python = new_venv(tmp_path / f"venv-{install.__name__}", env)
        installed = install(python, f"{proxy}/simple/", [good], env)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert installed_version(python, good.replace("-", "_")) == "1.0"
        refused = install(python, f"{proxy}/simple/", [bad], env)
        assert refused.returncode != 0
        assert installed_version(python, bad.replace("-", "_")) is None
    assert requests.get(f"{proxy}/simple/{bad}/", timeout=10).status_code == 502


def test_the_verify_proxy_refuses_what_the_metadata_does_not_list(site, proxy):
    missing = requests.get(f"{proxy}/simple/{_name()}/", timeout=10)
    assert missing.status_code == 404
    assert missing.text.startswith("Not Found")
    assert requests.get(f"{proxy}/elsewhere", timeout=10).status_code == 404
    moved = requests.get(f"{proxy}/simple/TufDemo_X", allow_redirects=False, timeout=10)
    assert moved.status_code == 301 and moved.headers["Location"] == "/simple/tufdemo-x/"


def test_the_metadata_urls_serve_only_repository_files(site):
    url = site.server.url + "/tuf/"
    assert requests.get(url + "metadata/timestamp.json", timeout=10).status_code == 200
    versioned = requests.get(url + "metadata/1.root.json", timeout=10)
    assert "immutable" in versioned.headers["Cache-Control"]
    for bad in ("metadata/../secret_key", "metadata/online-key.pem", "targets/x/y",
                "targets/packages/ab/cd/" + "0" * 64 + ".nothing.whl"):
        assert requests.get(url + bad, timeout=10).status_code == 404, bad


def test_sign_root_rotates_the_online_key_and_ngclient_follows(site, tmp_path):
    old_key = site.online_key.read_bytes()
    with site.settings, redirect_stdout(io.StringIO()):
        assert cli.main(["tuf", "sign-root", "--keys", str(site.keys),
                         "--rotate-online-key"]) == 0
    assert site.online_key.read_bytes() != old_key
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_TUF_ROOT_SIGN).exists()
    # The server reads the new key file at its next change; a client holding root v1 moves
    # to the new root and verifies what the new key signed.
    name = _name()
    publish(site.server.url, site.publisher, wheel(name, "1.0"))
    updater = site.updater(tmp_path)
    updater.refresh()
    assert updater.get_targetinfo(f"simple/{name}/index.html") is not None
    with site.settings, redirect_stdout(io.StringIO()) as out:
        assert cli.main(["tuf", "status"]) == 0
    assert "root       version 2" in out.getvalue()


def test_nginx_serves_the_metadata_and_page_targets_as_files_and_ngclient_verifies(
        site, tmp_path):
    require_nginx()
    name = _name()
    stored = publish(site.server.url, site.publisher, wheel(name, "1.0"))
    nginx = Nginx(site.render_dir, f"127.0.0.1:{site.server.port}")
    try:
        updater = Updater(str(site.md_dir(tmp_path)), nginx.url + "/tuf/metadata/",
                          str(tmp_path / "t"), nginx.url + "/tuf/targets/",
                          bootstrap=site.root.read_bytes())
        updater.refresh()
        for path in (f"simple/{name}/index.v1.json", f"simple/{name}/index.html", stored.path):
            updater.download_target(updater.get_targetinfo(path))
        timestamp = requests.get(nginx.url + "/tuf/metadata/timestamp.json", timeout=10)
        assert timestamp.headers.get("X-Bastion-Rendered") == "1"
        info = updater.get_targetinfo(f"simple/{name}/index.v1.json")
        page = requests.get(f"{nginx.url}/tuf/targets/simple/{name}/"
                            f"{info.hashes['sha256']}.index.v1.json", timeout=10)
        assert page.headers.get("X-Bastion-Rendered") == "1"
        assert page.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
        assert requests.get(nginx.url + "/tuf/metadata/../../secret_key",
                            timeout=10).status_code in (400, 404)
    finally:
        nginx.stop()


# -- the air-gapped root signing ceremony ----------------------------------------------------

def _online_env(site) -> dict[str, str]:
    """The index host's environment: the server's render directory and online key."""
    import os

    return {**os.environ, "BASTION_TUF": "true", "BASTION_RENDER_PAGES": "sync",
            "BASTION_RENDER_DIR": str(site.render_dir),
            "BASTION_TUF_KEY_FILE": str(site.online_key)}


def _offline_env(tmp_path) -> dict[str, str]:
    """The offline machine's: no data directory, no database, and settings that do not even
    import, so a command that reached for Django would fail."""
    import os

    home = tmp_path / "offline-home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "the_offline_machine_has_no_settings"}


def _offline_keys(site) -> list[str]:
    return [str(p) for p in sorted(site.keys.glob("root-*.pem"))] + [str(site.keys / "targets.pem")]


def _root_version(site) -> int:
    return json.loads((site.render_dir / "tuf" / "metadata" / "root.json").read_bytes()
                      )["signed"]["version"]


def _error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, (result.returncode, result.stderr)
    return lines[0]


def test_an_offline_ceremony_rotates_the_online_key_and_ngclient_follows(site, tmp_path):
    from tests.cli_runner import run_cli

    before, ceremony = _root_version(site), tmp_path / "ceremony"
    old_key = site.online_key.read_bytes()
    prepared = run_cli(["tuf", "sign-root", "--prepare", ceremony, "--rotate-online-key"],
                       env=_online_env(site))
    assert prepared.returncode == 0, prepared.stderr
    assert sorted(p.name for p in ceremony.iterdir()) == [
        "current-root.json", "manifest.json", "online-key.json", "root.json", "targets.json"]
    assert not json.loads((ceremony / "root.json").read_bytes())["signatures"]
    assert site.online_key.read_bytes() == old_key  # nothing changes before --apply

    # On the offline machine, told the new online key's id the index printed: what is signed
    # is shown first, and "no" signs nothing.
    printed = prepared.stdout.split("new online key: ", 1)[1].split()[0]
    assert f"--expect-online-key {printed}`" in prepared.stdout
    expect = ["--expect-online-key", printed]
    declined = run_cli(["tuf", "sign", ceremony, "--keys", *_offline_keys(site), *expect],
                       input="n\n", env=_offline_env(tmp_path))
    assert "nothing was signed" in _error(declined)
    shown = declined.stdout
    assert f"root version {before + 1} (the index is at {before})" in shown
    assert "timestamp: threshold 1 of 1" in shown and "(was threshold 1 of" in shown
    # The key the offline machine would vouch for is the one the index printed.
    assert f"a new online key: {printed}" in shown and "expires" in shown
    assert not json.loads((ceremony / "root.json").read_bytes())["signatures"]
    signed = run_cli(["tuf", "sign", ceremony, "--keys", *_offline_keys(site), *expect],
                     input="y\n", env=_offline_env(tmp_path))
    assert signed.returncode == 0, signed.stderr
    assert "signed root" in signed.stdout and "signed targets" in signed.stdout

    applied = run_cli(["tuf", "sign-root", "--apply", ceremony], env=_online_env(site))
    assert applied.returncode == 0, applied.stderr
    assert f"installed root version {before + 1}" in applied.stdout
    assert site.online_key.read_bytes() != old_key
    for tag in (tags.ADMIN_TUF_ROOT_PREPARE, tags.ADMIN_TUF_ROOT_SIGN):
        assert SecurityEvent.objects.filter(tag=tag).exists()
    # A client holding root v1 walks the chain to the new root, and the index still
    # verifies: a new page signed by the new online key, an older one re-signed with it.
    name = _name()
    publish(site.server.url, site.publisher, wheel(name, "1.0"))
    updater = site.updater(tmp_path)
    updater.refresh()
    assert updater._trusted_set.root.version == before + 1
    for page in ("index.html", "index.v1.json"):
        body = Path(updater.download_target(
            updater.get_targetinfo(f"simple/{name}/{page}"))).read_bytes()
        assert body == (site.render_dir / "simple" / name / page).read_bytes()
    assert updater.get_targetinfo("simple/index.v1.json") is not None
    # The same directory again is a root for a version the index has passed.
    again = run_cli(["tuf", "sign-root", "--apply", ceremony], env=_online_env(site))
    assert f"prepared against root version {before}" in _error(again)


def test_an_offline_ceremony_refuses_a_tampered_or_short_or_stale_directory(site, tmp_path):
    from tests.cli_runner import run_cli

    online, offline = _online_env(site), _offline_env(tmp_path)
    first, second = tmp_path / "first", tmp_path / "second"
    for ceremony in (first, second):
        result = run_cli(["tuf", "sign-root", "--prepare", ceremony], env=online)
        assert result.returncode == 0, result.stderr
    before = _root_version(site)

    # Too few signatures: the targets key alone does not make a root.
    result = run_cli(["tuf", "sign", first, "--keys", str(site.keys / "targets.pem"), "--yes"],
                     env=offline)
    assert result.returncode == 0, result.stderr
    assert "needs 1 signature(s) of the current root's keys; 0 valid given" in _error(
        run_cli(["tuf", "sign-root", "--apply", first], env=online))
    # A key that is neither root nor targets is refused before anything is signed.
    stranger = tmp_path / "stranger.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stranger.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    assert "is not a root or targets key" in _error(run_cli(
        ["tuf", "sign", first, "--keys", str(stranger), "--yes"], env=offline))

    # Tampered after signing: a year more of life for the root.
    result = run_cli(["tuf", "sign", first, "--keys", *_offline_keys(site), "--yes"],
                     env=offline)
    assert result.returncode == 0, result.stderr
    document = json.loads((first / "root.json").read_bytes())
    document["signed"]["expires"] = document["signed"]["expires"].replace(
        document["signed"]["expires"][:4], str(int(document["signed"]["expires"][:4]) + 1), 1)
    (first / "root.json").write_text(json.dumps(document))
    assert "was changed after it was prepared" in _error(
        run_cli(["tuf", "sign-root", "--apply", first], env=online))
    assert "was changed after it was prepared" in _error(run_cli(
        ["tuf", "sign", first, "--keys", *_offline_keys(site), "--yes"], env=offline))
    assert _root_version(site) == before

    # Prepared against an older root: the second directory, once the first is in.
    result = run_cli(["tuf", "sign", second, "--keys", *_offline_keys(site), "--yes"],
                     env=offline)
    assert result.returncode == 0, result.stderr
    third = tmp_path / "third"
    assert run_cli(["tuf", "sign-root", "--prepare", third], env=online).returncode == 0
    assert run_cli(["tuf", "sign", third, "--keys", *_offline_keys(site), "--yes"],
                   env=offline).returncode == 0
    applied = run_cli(["tuf", "sign-root", "--apply", third], env=online)
    assert applied.returncode == 0, applied.stderr
    assert (f"prepared against root version {before}, but the index is at root version "
            f"{before + 1}") in _error(run_cli(["tuf", "sign-root", "--apply", second],
                                               env=online))
    assert _root_version(site) == before + 1
    updater = site.updater(tmp_path)
    updater.refresh()
    assert updater._trusted_set.root.version == before + 1


def _rewrite(ceremony: Path, name: str, change) -> None:
    """Change a file of the ceremony directory on its way to the offline machine, as whoever
    carries it could: its digest in the manifest too."""
    import hashlib

    from tuf.api.metadata import Metadata

    md = Metadata.from_bytes((ceremony / name).read_bytes())
    change(md)
    data = md.to_bytes()
    (ceremony / name).write_bytes(data)
    manifest = json.loads((ceremony / "manifest.json").read_bytes())
    manifest["sha256"][name] = hashlib.sha256(
        data if name == "current-root.json" else md.signed_bytes).hexdigest()
    (ceremony / "manifest.json").write_text(json.dumps(manifest))


def test_tuf_sign_refuses_a_root_rewritten_on_its_way_and_signs_nothing(site, tmp_path):
    """The offline keys vouch only for the index's root: a root key or targets key of someone
    else's in the prepared root, or a current root the given keys never signed, is refused
    in one line, before anything is signed or a new root key made."""
    from securesystemslib.signer import CryptoSigner

    from tests.cli_runner import run_cli

    online, offline = _online_env(site), _offline_env(tmp_path)
    intruder = CryptoSigner.generate_ed25519()

    def their_root_key(md):
        for keyid in list(md.signed.roles["root"].keyids):
            md.signed.revoke_key(keyid, "root")
        md.signed.add_key(intruder.public_key, "root")

    def their_targets_key(md):
        md.signed.revoke_key(md.signed.roles["targets"].keyids[0], "targets")
        md.signed.add_key(intruder.public_key, "targets")

    def their_current_root(md):  # names our keys, but theirs beside them signs it
        md.signed.add_key(intruder.public_key, "root")
        md.signatures.clear()
        md.sign(intruder)

    def beside_ours(md):
        md.signed.add_key(intruder.public_key, "root")

    cases = [("root", [("root.json", their_root_key)], "names other root keys or another "
                                                       "threshold than the current root"),
             ("targets", [("root.json", their_targets_key)], "names another targets key"),
             ("current", [("current-root.json", their_current_root),
                          ("root.json", beside_ours)], "carries no valid signature of the "
                                                       "root key")]
    for which, changes, reason in cases:
        ceremony = tmp_path / which
        result = run_cli(["tuf", "sign-root", "--prepare", ceremony], env=online)
        assert result.returncode == 0, result.stderr
        for name, change in changes:
            _rewrite(ceremony, name, change)
        before = {p.name: p.read_bytes() for p in ceremony.iterdir()}
        for extra in ([], ["--new-root-key", tmp_path / f"{which}-new.pem"]):
            result = run_cli(["tuf", "sign", ceremony, "--keys", *_offline_keys(site), *extra,
                              "--yes"], input="pw\n", env=offline)
            assert reason in _error(result), result.stderr
            assert "signed" not in result.stdout
        assert {p.name: p.read_bytes() for p in ceremony.iterdir()} == before
        assert not (tmp_path / f"{which}-new.pem").exists()
    # The reported hole: the foreign key is named by its id, and the only way past is the
    # operator typing the key id another offline machine printed.
    result = run_cli(["tuf", "sign", tmp_path / "root", "--keys", *_offline_keys(site),
                      "--yes"], env=offline)
    assert f"made the new root key {intruder.public_key.keyid[:16]}…" in _error(result)


def test_tuf_sign_signs_a_new_online_key_only_under_the_id_prepare_printed(own_site, tmp_path):
    """An online key of someone else's put into the directory on its way, online-key.json,
    root, targets and manifest alike: `tuf sign` refuses it without --expect-online-key and
    with the id `--prepare` printed, in one line, writing nothing; the directory as prepared
    is signed with that id and applied."""
    from securesystemslib.signer import CryptoSigner

    from bastion.core import tufceremony
    from tests.cli_runner import run_cli

    site = own_site
    online, offline = _online_env(site), _offline_env(tmp_path)
    ceremony, swapped = tmp_path / "ceremony", tmp_path / "swapped"
    prepared = run_cli(["tuf", "sign-root", "--prepare", ceremony, "--rotate-online-key"],
                       env=online)
    assert prepared.returncode == 0, prepared.stderr
    printed = prepared.stdout.split("new online key: ", 1)[1].split()[0]
    intruder = CryptoSigner.generate_ed25519().public_key
    theirs = tufceremony.read(ceremony)
    for role in ("snapshot", "timestamp"):
        theirs.root.signed.revoke_key(printed, role)
        theirs.root.signed.add_key(intruder, role)
    theirs.targets.signed.delegations.keys = {intruder.keyid: intruder}
    theirs.targets.signed.delegations.succinct_roles.keyids = [intruder.keyid]
    tufceremony.write(swapped, theirs.current, theirs.root, theirs.targets, intruder)

    before = {p.name: p.read_bytes() for p in swapped.iterdir()}
    for extra, reason in [([], f"names a new online key {intruder.keyid[:16]}… for snapshot "
                               f"and timestamp: sign with --expect-online-key"),
                          (["--expect-online-key", printed],
                           f"names the online key {intruder.keyid[:16]}… for snapshot and "
                           f"timestamp, not the key {printed[:16]}… expected")]:
        result = run_cli(["tuf", "sign", swapped, "--keys", *_offline_keys(site), *extra,
                          "--yes"], env=offline)
        assert reason in _error(result), result.stderr
        assert "signed" not in result.stdout
    assert {p.name: p.read_bytes() for p in swapped.iterdir()} == before

    wrong = run_cli(["tuf", "sign", ceremony, "--keys", *_offline_keys(site),
                     "--expect-online-key", intruder.keyid, "--yes"], env=offline)
    assert "expected (--expect-online-key)" in _error(wrong)
    signed = run_cli(["tuf", "sign", ceremony, "--keys", *_offline_keys(site),
                      "--expect-online-key", printed, "--yes"], env=offline)
    assert signed.returncode == 0, signed.stderr
    applied = run_cli(["tuf", "sign-root", "--apply", ceremony], env=online)
    assert applied.returncode == 0, applied.stderr
    root = json.loads((site.render_dir / "tuf" / "metadata" / "root.json").read_bytes())
    assert root["signed"]["roles"]["timestamp"]["keyids"] == [printed]


def test_an_offline_ceremony_makes_a_new_root_key_and_ngclient_holding_the_old_root_follows(
        own_site, tmp_path):
    from tests.cli_runner import run_cli

    site = own_site
    online, offline = _online_env(site), _offline_env(tmp_path)
    old_root_key = str(site.keys / "root-1.pem")
    targets_key = str(site.keys / "targets.pem")
    rotated, impostor = tmp_path / "rotated", tmp_path / "impostor"
    for ceremony in (rotated, impostor):
        result = run_cli(["tuf", "sign-root", "--prepare", ceremony], env=online)
        assert result.returncode == 0, result.stderr

    # A root signed only by a new key (the old root key never signed it) is refused.
    result = run_cli(["tuf", "sign", impostor, "--keys", targets_key, "--new-root-key",
                      tmp_path / "impostor.pem", "--yes"], input="pw\n", env=offline)
    assert result.returncode == 0, result.stderr
    assert "needs 1 signature(s) of the current root's keys; 0 valid given" in _error(
        run_cli(["tuf", "sign-root", "--apply", impostor], env=online))

    # On the offline machine: the new key is made there, shown, encrypted with the password
    # given, and signs beside the old root key.
    new_key = tmp_path / "offline-keys" / "root-2.pem"
    result = run_cli(["tuf", "sign", rotated, "--keys", old_root_key, targets_key,
                      "--new-root-key", new_key], input="y\ncorrect horse\n", env=offline)
    assert result.returncode == 0, result.stderr
    assert "a new root key: " in result.stdout and f"{new_key}: signed root" in result.stdout
    assert f"{old_root_key}: signed root" in result.stdout
    assert b"ENCRYPTED PRIVATE KEY" in new_key.read_bytes()
    assert new_key.stat().st_mode & 0o077 == 0
    [new_keyid] = json.loads((rotated / "root.json").read_bytes()
                             )["signed"]["roles"]["root"]["keyids"]
    assert new_keyid in result.stdout
    # Without the new key's signature, the index refuses it too.
    document = json.loads((rotated / "root.json").read_bytes())
    complete = document["signatures"]
    document["signatures"] = [s for s in complete if s["keyid"] != new_keyid]
    (rotated / "root.json").write_text(json.dumps(document))
    assert "needs 1 signature(s) of its own root keys; 0 valid given" in _error(
        run_cli(["tuf", "sign-root", "--apply", rotated], env=online))
    document["signatures"] = complete
    (rotated / "root.json").write_text(json.dumps(document))

    # Bound to the key id the offline machine printed: another one is refused (and the
    # option binds nothing but an apply).
    assert "--expect-root-key belongs to --apply" in _error(run_cli(
        ["tuf", "sign-root", "--prepare", tmp_path / "unused", "--expect-root-key", new_keyid],
        env=online))
    assert not (tmp_path / "unused").exists()
    assert "names the root keys " + new_keyid + ", not the ones expected" in _error(run_cli(
        ["tuf", "sign-root", "--apply", rotated, "--expect-root-key", "0" * 64], env=online))
    applied = run_cli(["tuf", "sign-root", "--apply", rotated, "--expect-root-key", new_keyid],
                      env=online)
    assert applied.returncode == 0, applied.stderr
    assert "installed root version 2" in applied.stdout
    assert f"root keys: {new_keyid}" in applied.stdout
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_TUF_ROOT_SIGN).latest("pk")
    assert event.additional["change"] == "signed offline: renewed, new root key"
    assert event.additional["root_keyids"] == [new_keyid]

    # A client holding the old root (v1) walks to v2 and verifies a page signed after it.
    name = _name()
    publish(site.server.url, site.publisher, wheel(name, "1.0"))
    updater = site.updater(tmp_path)
    updater.refresh()
    assert updater._trusted_set.root.version == 2
    assert list(updater._trusted_set.root.roles["root"].keyids) == [new_keyid]
    body = Path(updater.download_target(
        updater.get_targetinfo(f"simple/{name}/index.html"))).read_bytes()
    assert body == (site.render_dir / "simple" / name / "index.html").read_bytes()

    # The next root is the new key's to sign (its password asked for); the old one is retired.
    following = tmp_path / "following"
    assert run_cli(["tuf", "sign-root", "--prepare", following], env=online).returncode == 0
    assert "is not a root or targets key of root version 3" in _error(run_cli(
        ["tuf", "sign", following, "--keys", old_root_key, "--yes"], env=offline))
    result = run_cli(["tuf", "sign", following, "--keys", new_key, targets_key, "--yes"],
                     input="correct horse\n", env=offline)
    assert result.returncode == 0, result.stderr
    applied = run_cli(["tuf", "sign-root", "--apply", following], env=online)
    assert applied.returncode == 0, applied.stderr
    updater = site.updater(tmp_path)
    updater.refresh()
    assert updater._trusted_set.root.version == 3
