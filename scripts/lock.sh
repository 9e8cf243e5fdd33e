#!/usr/bin/env bash
# Re-locks our dependencies, with hashes: `make lock` (keeps the current pins, adds what
# pyproject.toml now asks for) or `make lock UPGRADE=1` (the newest versions pyproject.toml
# allows). Writes two files, both installed by pip in hash-checking mode:
#   constraints.txt          everything `make install-test` installs (runtime + test extras)
#   constraints-runtime.txt  the subset `make install` / `make serve` installs
# Both also lock pip and setuptools: the Makefile installs with --no-build-isolation, so the
# build backend is the hash-checked one and nothing is fetched unchecked.
# The resolution is universal (any OS, Python >= 3.11) and every hash of every file of a
# pinned version is kept, so any machine with Python 3.11+ finds one that matches.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
UV=${UV:-$BIN/uv}
if [ ! -x "$UV" ]; then
  # uv from the lock itself, hash-checked, even when the lock no longer fits pyproject.toml.
  only_uv=$(mktemp)
  trap 'rm -f "$only_uv"' EXIT
  awk '/^uv==/ {p = 1} p && /^ *#/ {exit} p' constraints.txt >"$only_uv"
  "$BIN/python" -m pip install -q --require-hashes --no-deps -r "$only_uv"
fi
upgrade=()
if [ -n "${UPGRADE:-}" ]; then upgrade=(--upgrade); fi

tools=scripts/lock-tools.in

common=(--quiet --universal --python-version 3.11 --generate-hashes
        --index-url https://pypi.org/simple --no-emit-index-url
        --custom-compile-command "make lock")
"$UV" pip compile "${common[@]}" "${upgrade[@]}" pyproject.toml "$tools" --extra test \
  -o constraints.txt
# The runtime lock takes its versions from the full one, so both agree.
"$UV" pip compile "${common[@]}" pyproject.toml "$tools" -c constraints.txt \
  -o constraints-runtime.txt
echo "locked: constraints.txt ($(grep -c '^[A-Za-z0-9]' constraints.txt) packages)," \
     "constraints-runtime.txt ($(grep -c '^[A-Za-z0-9]' constraints-runtime.txt) packages)"
