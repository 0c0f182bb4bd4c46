#!/usr/bin/env bash
# Runs the suite on SQLite and, when reachable, on PostgreSQL (+ Redis), side by side.
# Under CI=true a missing PostgreSQL, Redis or Chromium is an error, not a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS_TEST_URL=${REDIS_TEST_URL:-redis://127.0.0.1:6379/15}
# The PostgreSQL pass's own Redis database (the passes run side by side).
REDIS_PG_TEST_URL=${REDIS_PG_TEST_URL:-${REDIS_TEST_URL%/*}/14}
CI=${CI:-false}
skipped=()

reachable() { # host port
  $BIN/python - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

if reachable 127.0.0.1 6379; then
  export OPENLINE_TEST_REDIS_URL=$REDIS_TEST_URL
elif [ "$CI" = "true" ]; then
  echo "CI: Redis is not reachable on 127.0.0.1:6379" >&2; exit 1
else
  skipped+=("Redis-backed tests (no Redis on 127.0.0.1:6379)")
fi
if [ -z "${OPENLINE_CHROMIUM:-}" ]; then
  for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
    [ -x "$candidate" ] && export OPENLINE_CHROMIUM=$candidate && break
  done
fi
if [ -z "${OPENLINE_CHROMIUM:-}" ]; then
  [ "$CI" = "true" ] && { echo "CI: Chromium is not installed" >&2; exit 1; }
  skipped+=("browser tests (apt-get install -y chromium)")
fi

status=0
host=$(echo "$PG_URL" | sed -E 's#.*@([^:/]+).*#\1#'); port=$(echo "$PG_URL" | sed -E 's#.*:([0-9]+)/.*#\1#')
pg=false
if reachable "$host" "$port"; then
  pg=true
elif [ "$CI" = "true" ]; then
  echo "CI: PostgreSQL is not reachable at $PG_URL" >&2; exit 1
else
  skipped+=("the PostgreSQL pass (no server at $PG_URL)")
fi

sqlite_pass() {
  OPENLINE_VAR_DIR=$(mktemp -d) $BIN/pytest "$@"
}
postgres_pass() {
  # Its own Redis database, so that it can run beside the SQLite pass.
  local redis=()
  if [ -n "${OPENLINE_TEST_REDIS_URL:-}" ]; then
    redis=(REDIS_URL="$REDIS_PG_TEST_URL" OPENLINE_TEST_REDIS_URL="$REDIS_PG_TEST_URL")
  fi
  env DATABASE_URL="$PG_URL" "${redis[@]}" OPENLINE_VAR_DIR=$(mktemp -d) $BIN/pytest "$@"
}

# The two passes run side by side (one core each: the suite is mostly one busy process and
# a browser), which keeps the whole run well under 30 minutes on a 2-core machine; each
# pass's output follows when both are done. OPENLINE_TEST_SEQUENTIAL=1 runs one, then the other.
if [ "$pg" = true ] && [ "${OPENLINE_TEST_SEQUENTIAL:-0}" != "1" ]; then
  # Tests that claim a spare Redis database leave both passes' databases alone.
  export OPENLINE_TEST_REDIS_SUITES="${REDIS_TEST_URL##*/},${REDIS_PG_TEST_URL##*/}"
  logs=$(mktemp -d)
  echo "Running the SQLite and PostgreSQL passes side by side (logs in $logs)..."
  sqlite_pass "$@" >"$logs/sqlite.log" 2>&1 & sqlite_pid=$!
  postgres_pass "$@" >"$logs/postgres.log" 2>&1 & postgres_pid=$!
  wait $sqlite_pid || status=1
  wait $postgres_pid || status=1
  echo "== SQLite (embedded profile) =="; cat "$logs/sqlite.log"
  echo "== PostgreSQL (scaled-out profile: PostgreSQL + Redis) =="; cat "$logs/postgres.log"
else
  echo "== SQLite (embedded profile) =="
  sqlite_pass "$@" || status=1
  if [ "$pg" = true ]; then
    echo "== PostgreSQL (scaled-out profile: PostgreSQL + Redis) =="
    postgres_pass "$@" || status=1
  fi
fi

if [ ${#skipped[@]} -gt 0 ]; then
  echo; echo "Skipped on this machine:"; printf '  - %s\n' "${skipped[@]}"
fi
exit $status
