#!/usr/bin/env bash
# Runs the whole suite: on SQLite, then again on PostgreSQL when a server can be started.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
BIN=$VENV/bin

bash scripts/system-deps.sh

# Test processes per pass, more than the cores: a test and the server it talks to take turns,
# and mail, timeouts and start-ups leave a core idle now and then. The line printed after each
# pass says how busy the cores were, which is what to look at before changing this.
WORKERS=${BASTION_TEST_WORKERS:-4}

# How busy the machine's cores were during a pass: whether more or fewer workers would help.
cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
report_cpu() {
  read -r busy0 all0 <<<"$1"
  read -r busy1 all1 <<<"$(cpu_ticks)"
  awk -v b=$((busy1 - busy0)) -v a=$((all1 - all0)) -v n="$(nproc)" \
    'BEGIN { if (a > 0) printf "== cores busy %.0f%% of the time (%d cores)\n", 100 * b / a, n }'
}

status=0
echo "== import contracts (apps call down, core is pure)"
"$BIN/lint-imports" --no-cache || status=$?
# Every finding is fixed or justified where it is (`# nosec BXXX # why`): none is skipped
# wholesale, so any new one fails the run (docs/security.md, "Our own supply chain").
echo "== bandit on our own code"
"$BIN/bandit" -q -r src/bastion || status=$?

# worksteal: each worker starts on one contiguous part (a module's expensive fixtures, such
# as servers and client venvs, are set up once) and an idle worker takes over part of the
# others' queues, so one slow file no longer keeps a worker busy alone at the end.
echo "== test suite on SQLite"
start=$(cpu_ticks)
"$BIN/python" -m pytest -n "$WORKERS" --dist worksteal "$@" || status=$?
report_cpu "$start"

if pg_url=$(bash scripts/postgres.sh start); then
  echo "== test suite on PostgreSQL"
  # Pure tests (no database; tests/conftest.py refuses them one) ran above already.
  start=$(cpu_ticks)
  BASTION_TEST_DATABASE_URL="$pg_url" "$BIN/python" -m pytest -n "$WORKERS" --dist worksteal -m "not browser and not pure" "$@" || status=$?
  report_cpu "$start"
  bash scripts/postgres.sh stop || true
else
  echo "== PostgreSQL not available here: PostgreSQL run skipped"
fi
exit $status
