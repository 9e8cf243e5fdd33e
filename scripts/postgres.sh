#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite: `start` prints its URL, `stop` removes it.
set -euo pipefail
PGROOT=${PGROOT:-/tmp/bastion-test-pg}
PORT=${BASTION_TEST_PG_PORT:-54329}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -n "$bindir" ] || { echo "no PostgreSQL server installed" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
options="-p $PORT -k $PGROOT -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
case "${1:-}" in
  start)
    rm -rf "$PGROOT"; mkdir -p "$PGROOT"
    [ "$(id -u)" = 0 ] && chown postgres "$PGROOT"
    as_pg "$bindir/initdb" -D "$PGROOT/data" -U postgres -A trust >/dev/null
    as_pg "$bindir/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/log" -w -o "$options" start >/dev/null
    echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
    ;;
  restart)
    # A fast shutdown (every session cut, as an operator's restart) and a start; data kept.
    as_pg "$bindir/pg_ctl" -D "$PGROOT/data" -m fast -w stop >/dev/null
    as_pg "$bindir/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/log" -w -o "$options" start >/dev/null
    ;;
  stop)
    as_pg "$bindir/pg_ctl" -D "$PGROOT/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PGROOT"
    ;;
  *) echo "usage: $0 start|restart|stop" >&2; exit 2 ;;
esac
