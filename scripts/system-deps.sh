#!/usr/bin/env bash
# Debian packages the tests need, installed when we are root and they are missing.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v oathtool >/dev/null 2>&1 || need+=(oathtool)
# xgettext, for the test that the translation catalogs match the code (make messages).
command -v xgettext >/dev/null 2>&1 || need+=(gettext)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# nginx in front of rendered pages (tests/e2e/test_static_pages.py, bench/).
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
# A PKCS#11 token in software, standing in for a YubiKey (tests/e2e/test_tuf_hsm.py).
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# npm fetches axe-core for the browser tests' accessibility check (tests/browser/pagecheck.py).
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "not root or no apt-get: missing ${need[*]}; the tests that need them will be skipped" >&2
  exit 0
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
