"""How the base URL, the allowed hosts and the WebAuthn relying party follow the configuration.

Settings are read once per process, so each case loads them in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = ("import json, bastion.settings as s; print(json.dumps([s.BASE_URL, s.ALLOWED_HOSTS, "
         "s.WEBAUTHN_RP_ID, s.WEBAUTHN_ORIGIN, s.BASE_URL_GUESSED]))")


def loaded(tmp_path, **env) -> list:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("BASTION_") or k in ("BASTION_DATA_DIR", "BASTION_SECRET_KEY")}
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env={**clean, "BASTION_DATA_DIR": str(tmp_path), **env}, timeout=60)
    if result.returncode:
        return ["error", result.stderr.strip().splitlines()[-1]]
    return json.loads(result.stdout)


LOOPBACK = ["localhost", "127.0.0.1", "[::1]"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_a_loopback_bind_links_to_localhost_and_answers_every_loopback_name(tmp_path, host):
    assert loaded(tmp_path, BASTION_HOST=host, BASTION_PORT="9000") == [
        "http://localhost:9000", LOOPBACK, "localhost", "http://localhost:9000", False]


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_wildcard_bind_without_a_base_url_is_treated_as_loopback(tmp_path, host):
    assert loaded(tmp_path, BASTION_HOST=host, BASTION_PORT="9000") == [
        "http://localhost:9000", LOOPBACK, "localhost", "http://localhost:9000", True]


@pytest.mark.parametrize("host, wildcard", [
    ("", True), ("0.0.0.0", True), ("::", True), ("[::]", True), (" 0:0::0 ", True),
    ("127.0.0.1", False), ("[::1]", False), ("localhost", False), ("index.example", False)])
def test_every_spelling_of_the_unspecified_address_is_a_wildcard_bind(host, wildcard):
    from bastion.settings import is_wildcard_bind

    assert is_wildcard_bind(host) is wildcard


def test_a_named_bind_links_to_that_name_and_answers_only_it(tmp_path):
    assert loaded(tmp_path, BASTION_HOST="10.1.2.3", BASTION_PORT="9000") == [
        "http://10.1.2.3:9000", ["10.1.2.3"], "10.1.2.3", "http://10.1.2.3:9000", False]


def test_a_configured_base_url_sets_links_hosts_and_relying_party(tmp_path):
    assert loaded(tmp_path, BASTION_HOST="0.0.0.0",
                  BASTION_BASE_URL="https://Pkgs.Example.org/") == [
        "https://Pkgs.Example.org", ["pkgs.example.org"], "pkgs.example.org",
        "https://Pkgs.Example.org", False]


def test_explicit_allowed_hosts_and_relying_party_win(tmp_path):
    base, hosts, rp_id, origin, _ = loaded(
        tmp_path, BASTION_BASE_URL="https://pkgs.example.org", BASTION_ALLOWED_HOSTS="a.test,b.test",
        BASTION_WEBAUTHN_RP_ID="example.org", BASTION_WEBAUTHN_ORIGIN="https://login.example.org")
    assert (base, hosts, rp_id, origin) == ("https://pkgs.example.org", ["a.test", "b.test"],
                                            "example.org", "https://login.example.org")


@pytest.mark.parametrize("url", ["pkgs.example.org", "ftp://pkgs.example.org",
                                 "https://user:pw@pkgs.example.org", "https://pkgs.example.org/?x=1"])
def test_a_base_url_that_is_not_a_plain_http_url_is_a_configuration_error(tmp_path, url):
    outcome = loaded(tmp_path, BASTION_BASE_URL=url)
    assert outcome[0] == "error" and "BASTION_BASE_URL" in outcome[1]
