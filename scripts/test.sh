#!/usr/bin/env bash
# Runs the suite on SQLite, then on PostgreSQL (+ Redis) when reachable. Under CI=true a
# missing PostgreSQL, Redis or Chromium is an error, not a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS_TEST_URL=${REDIS_TEST_URL:-redis://127.0.0.1:6379/15}
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
echo "== SQLite (embedded profile) =="
OPENLINE_VAR_DIR=$(mktemp -d) $BIN/pytest "$@" || status=1

host=$(echo "$PG_URL" | sed -E 's#.*@([^:/]+).*#\1#'); port=$(echo "$PG_URL" | sed -E 's#.*:([0-9]+)/.*#\1#')
if reachable "$host" "$port"; then
  echo "== PostgreSQL (scaled-out profile: PostgreSQL + Redis) =="
  pg_redis=()
  [ -n "${OPENLINE_TEST_REDIS_URL:-}" ] && pg_redis=(REDIS_URL="$OPENLINE_TEST_REDIS_URL")
  env DATABASE_URL="$PG_URL" "${pg_redis[@]}" OPENLINE_VAR_DIR=$(mktemp -d) $BIN/pytest "$@" || status=1
elif [ "$CI" = "true" ]; then
  echo "CI: PostgreSQL is not reachable at $PG_URL" >&2; exit 1
else
  skipped+=("the PostgreSQL pass (no server at $PG_URL)")
fi

if [ ${#skipped[@]} -gt 0 ]; then
  echo; echo "Skipped on this machine:"; printf '  - %s\n' "${skipped[@]}"
fi
exit $status
