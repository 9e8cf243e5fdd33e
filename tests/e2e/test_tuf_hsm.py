"""The root key on a PKCS#11 token (docs/tuf.md "Keys held elsewhere"): a SoftHSM2 token
stands in for a YubiKey. `bastion tuf add-key --uri hsm:` imports its public key, `init` and
`sign-root` sign the root on the token (its PIN on standard input), as does `tuf sign` in the
air-gapped ceremony, and python-tuf's ngclient holding that root verifies the index's pages."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess  # nosec B404 # softhsm2-util and a python-pkcs11 script, fixed arguments
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from tuf.ngclient import Updater

from tests.cli_runner import run_cli
from tests.conftest import Server
from tests.e2e.simple_support import new_publisher, publish, wheel
from tests.e2e.tuf_support import assert_verified, served_pages

PIN = "2468"
SO_PIN = "13579"
MODULES = ("/usr/lib/softhsm/libsofthsm2.so",
           "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
           "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so")


def _module() -> str | None:
    return next((m for m in MODULES if Path(m).is_file()), None)


pytestmark = pytest.mark.skipif(
    _module() is None or shutil.which("softhsm2-util") is None,
    reason="Debian's softhsm2 is not installed (scripts/system-deps.sh installs it as root)")

# Runs in its own process: the PKCS#11 module reads SOFTHSM2_CONF once, when first loaded.
# The public key is made private (readable only after login), so that add-key needs the PIN.
MAKE_KEY = """
import os, pkcs11
from pkcs11 import Attribute, KeyType
from pkcs11.util.ec import encode_named_curve_parameters
token = pkcs11.lib(os.environ["PYKCS11LIB"]).get_token(token_label=os.environ["LABEL"])
with token.open(rw=True, user_pin=os.environ["PIN"]) as session:
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
        local=True)
    params.generate_keypair(store=True, id=b"\\x02", label="bastion-root",
                            public_template={Attribute.PRIVATE: True})
"""


@pytest.fixture
def token():
    """A SoftHSM2 token of its own (a temporary SOFTHSM2_CONF), holding an ECDSA P-256 key
    with id 2, securesystemslib's default; yields the environment that finds it."""
    directory = Path(tempfile.mkdtemp(prefix="bastion-hsm-"))
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\n"
                    "objectstore.backend = file\nlog.level = ERROR\n")
    label = "bastion-" + secrets.token_hex(4)
    env = {"SOFTHSM2_CONF": str(conf), "PYKCS11LIB": _module()}
    try:
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,  # nosec B603 B607
                        "--so-pin", SO_PIN, "--pin", PIN],
                       env={**os.environ, **env}, check=True, capture_output=True, timeout=120)
        subprocess.run([sys.executable, "-c", MAKE_KEY],  # nosec B603 # our own script
                       env={**os.environ, **env, "LABEL": label, "PIN": PIN},
                       check=True, capture_output=True, timeout=120)
        yield SimpleNamespace(env=env, label=label, dir=directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _cli(args, env, pin: str | None = None):
    return run_cli(args, env=env, input=None if pin is None else pin + "\n", timeout=300)


def test_the_root_key_on_a_pkcs11_token_signs_init_sign_root_and_a_ceremony_and_ngclient_verifies(
        token, tmp_path):
    render_dir, keys = tmp_path / "rendered", tmp_path / "offline-keys"
    online_key = tmp_path / "online-key.pem"
    settings = {"BASTION_TUF": "true", "BASTION_RENDER_PAGES": "sync",
                "BASTION_RENDER_DIR": str(render_dir), "BASTION_TUF_KEY_FILE": str(online_key)}
    env = {**os.environ, **settings, **token.env}

    # Its public key is readable only after login: add-key asks for the PIN too.
    added = _cli(["tuf", "add-key", "--keys", keys, "--role", "root", "--uri", "hsm:"], env,
                 pin=PIN)
    assert added.returncode == 0, added.stdout + added.stderr
    described = json.loads((keys / "root-1.signer.json").read_text())
    assert described["uri"] == f"hsm:2?label={token.label}"
    assert described["public_key"]["scheme"] == "ecdsa-sha2-nistp256"
    hsm_keyid = described["keyid"]
    assert hsm_keyid in added.stdout
    assert PIN not in added.stdout + added.stderr

    # A wrong PIN: one readable line, and nothing published.
    wrong = _cli(["tuf", "init", "--keys", keys, "--bins", "16"], env, pin="0000")
    lines = wrong.stderr.strip().splitlines()
    assert wrong.returncode != 0 and len(lines) == 1, wrong.stderr
    assert "PinIncorrect" in lines[0] and "0000" not in lines[0]
    assert not (render_dir / "tuf" / "metadata" / "1.root.json").exists()

    done = _cli(["tuf", "init", "--keys", keys, "--bins", "16"], env, pin=PIN)
    assert done.returncode == 0, done.stdout + done.stderr
    root_v1 = render_dir / "tuf" / "metadata" / "1.root.json"
    root = json.loads(root_v1.read_bytes())
    # The token's key is the only root key, and its signature is the root's.
    assert root["signed"]["roles"]["root"]["keyids"] == [hsm_keyid]
    assert [s["keyid"] for s in root["signatures"]] == [hsm_keyid]
    assert not list(keys.glob("root-*.pem"))

    server = Server(settings)
    try:
        name = "tufhsm-" + secrets.token_hex(4)
        publish(server.url, new_publisher(), wheel(name, "1.0"))
        site = SimpleNamespace(server=server)

        def updater(directory: Path) -> Updater:
            directory.mkdir()
            (directory / "t").mkdir()
            return Updater(str(directory), server.url + "/tuf/metadata/", str(directory / "t"),
                           server.url + "/tuf/targets/", bootstrap=root_v1.read_bytes())

        client = updater(tmp_path / "client-1")
        client.refresh()
        assert_verified(client, f"simple/{name}", served_pages(site, "/", name))

        def follows_root_signed_on_the_token(version: int) -> None:
            """Root ``version`` carries only the token's signature, and a client holding
            root v1 walks to it and verifies a page published after it."""
            root = json.loads((render_dir / "tuf" / "metadata" / f"{version}.root.json")
                              .read_bytes())
            assert [s["keyid"] for s in root["signatures"]] == [hsm_keyid]
            name = "tufhsm-" + secrets.token_hex(4)
            publish(server.url, new_publisher(), wheel(name, "1.0"))
            client = updater(tmp_path / f"client-{version}")
            client.refresh()
            assert client._trusted_set.root.version == version
            assert_verified(client, f"simple/{name}", served_pages(site, "/", name))

        # A new root version, signed on the token again; a client holding root v1 follows.
        signed = _cli(["tuf", "sign-root", "--keys", keys, "--rotate-online-key"], env, pin=PIN)
        assert signed.returncode == 0, signed.stdout + signed.stderr
        follows_root_signed_on_the_token(2)

        # The air-gapped ceremony with the token on the offline machine: `tuf sign` asks the
        # PIN after the operator agreed to sign.
        ceremony = tmp_path / "ceremony"
        prepared = _cli(["tuf", "sign-root", "--prepare", ceremony], env)
        assert prepared.returncode == 0, prepared.stderr
        home = tmp_path / "offline-home"
        home.mkdir()
        offline = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
                   "DJANGO_SETTINGS_MODULE": "the_offline_machine_has_no_settings",
                   **token.env}
        signed = _cli(["tuf", "sign", ceremony, "--keys", keys / "root-1.signer.json",
                       keys / "targets.pem"], offline, pin="y\n" + PIN)
        assert signed.returncode == 0, signed.stdout + signed.stderr
        assert PIN not in signed.stdout + signed.stderr
        applied = _cli(["tuf", "sign-root", "--apply", ceremony], env)
        assert applied.returncode == 0, applied.stderr
        follows_root_signed_on_the_token(3)
    finally:
        server.stop()
