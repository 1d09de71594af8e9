#!/bin/sh
# The entrypoint of portico.local/postgresql: Debian's PostgreSQL configured
# from the environment the catalog's PostgreSQL template sets:
#   POSTGRES_USER      the superuser to create (default postgres)
#   POSTGRES_PASSWORD  its password (required on first start)
#   POSTGRES_DB        a database to create (default: the user's name)
#   PGDATA             the data directory (default /var/lib/postgresql/data)
# On first start it initialises PGDATA with password authentication
# (scram-sha-256) for every TCP connection; it then runs postgres, listening
# on every address on port 5432, as the user postgres. postgres is this
# container's main process: SIGTERM (smart) or the image's stop signal
# SIGINT (fast) shut it down cleanly.
set -eu

bin=/usr/lib/postgresql/15/bin
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"

say() { echo "postgresql-entrypoint: $*" >&2; }

if [ "$(id -u)" = 0 ]; then
  # The volume is created by root: hand it (and the directory it is in) to postgres.
  mkdir -p "$PGDATA" /run/postgresql
  chown postgres:postgres "$PGDATA" "$(dirname "$PGDATA")" /run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    say "POSTGRES_PASSWORD is empty: set it, every TCP login needs the password"
    exit 1
  fi
  say "initialising $PGDATA for the user $user and the database $db"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  "$bin/initdb" --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    quoted=$(printf '%s' "$db" | sed 's/"/""/g')
    printf 'CREATE DATABASE "%s";\n' "$quoted" |
      "$bin/postgres" --single -D "$PGDATA" -c log_min_messages=warning postgres >/dev/null
  fi
fi

say "starting PostgreSQL $(cat "$PGDATA/PG_VERSION") on port 5432"
# jit is off: the image leaves out the LLVM just-in-time compiler.
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c port=5432 -c jit=off "$@"
