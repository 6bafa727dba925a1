#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for licsync's store tests and print its URL on stdout.
#
#   export LICSYNC_TEST_POSTGRES_URL=$(bash .ci/postgres.sh)     # start (or reuse) and print the URL
#   bash .ci/postgres.sh stop                                    # stop it and delete its files
#
# Idempotent: a second call reuses the running server and prints the same URL. The server listens on
# 127.0.0.1 only, on a free port, from a fresh cluster in $LICSYNC_PG_DIR (default
# ${TMPDIR:-/tmp}/licsync-postgres). Installs the Debian `postgresql` package if no server binaries are
# found. Run as root, the server runs as the `postgres` user. Everything but the URL goes to stderr.
set -euo pipefail

DIR=${LICSYNC_PG_DIR:-${TMPDIR:-/tmp}/licsync-postgres}
DATA=$DIR/data
DB=licsync_test
ROLE=licsync

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n $d && -x $d/initdb ]]; then echo "$d"; return; fi
  if command -v pg_config >/dev/null && [[ -x $(pg_config --bindir)/initdb ]]; then
    pg_config --bindir; return
  fi
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(command -v initdb)"; return
  fi
}

# Run a command as the server's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

BIN=$(find_bindir)

if [[ ${1:-start} == stop ]]; then
  if [[ -n $BIN && -f $DATA/PG_VERSION ]]; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
  fi
  rm -rf "$DIR"
  log "stopped and removed $DIR"
  exit 0
fi

if [[ -z $BIN ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    log "no PostgreSQL server binaries found and not root: install the 'postgresql' package"
    exit 1
  fi
  log "installing PostgreSQL from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends postgresql >&2
  BIN=$(find_bindir)
  [[ -n $BIN ]] || { log "postgresql installed but initdb not found"; exit 1; }
fi

if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

# Reuse a server this script started earlier.
if [[ -f $DIR/url ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  log "reusing the server in $DIR"
  cat "$DIR/url"
  exit 0
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ ! -f $DATA/PG_VERSION ]]; then
  rm -rf "$DIR"
  mkdir -p "$DIR"
  PASSWORD=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  umask 077
  printf '%s\n' "$PASSWORD" >"$DIR/password"
  [[ $(id -u) -eq 0 ]] && chown -R postgres: "$DIR"
  log "creating a cluster in $DATA with $BIN/initdb"
  as_owner "$BIN/initdb" -D "$DATA" -U "$ROLE" --pwfile="$DIR/password" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >&2
fi
PASSWORD=$(cat "$DIR/password")

PORT=
for candidate in $(seq 55432 55532); do
  if ! port_busy "$candidate"; then PORT=$candidate; break; fi
done
[[ -n $PORT ]] || { log "no free port in 55432-55532"; exit 1; }

log "starting the server on 127.0.0.1:$PORT"
as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR" start >&2 \
  || { cat "$DIR/server.log" >&2; exit 1; }

export PGPASSWORD=$PASSWORD
if ! "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$ROLE" "$DB" >&2
fi

URL="postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
( umask 077; printf '%s\n' "$URL" >"$DIR/url" )
[[ $(id -u) -eq 0 ]] && chown postgres: "$DIR/url"
echo "$URL"
