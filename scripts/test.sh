#!/usr/bin/env bash
# Runs the whole suite: on SQLite, then again on PostgreSQL when a server can be started.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
BIN=$VENV/bin

bash scripts/system-deps.sh

status=0
echo "== import contracts (apps call down, core is pure)"
"$BIN/lint-imports" --no-cache || status=$?

echo "== test suite on SQLite"
"$BIN/python" -m pytest -n 2 "$@" || status=$?

if pg_url=$(bash scripts/postgres.sh start); then
  echo "== test suite on PostgreSQL"
  # Pure tests (no database; tests/conftest.py refuses them one) ran above already.
  BASTION_TEST_DATABASE_URL="$pg_url" "$BIN/python" -m pytest -n 2 -m "not browser and not pure" "$@" || status=$?
  bash scripts/postgres.sh stop || true
else
  echo "== PostgreSQL not available here: PostgreSQL run skipped"
fi
exit $status
