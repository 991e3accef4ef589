#!/bin/sh
# Start PostgreSQL on $PGDATA, creating the cluster, user and database on the first start.
# Runs as root only to own the volume (a fresh PersistentVolume is root's), then as `postgres`.
set -eu
: "${PGDATA:?}" "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
AUTH=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
as_postgres() { runuser -u postgres -- "$@"; }
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
else
  as_postgres() { "$@"; }
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ "$AUTH" != trust ] && [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "POSTGRES_PASSWORD is empty: set it, or POSTGRES_HOST_AUTH_METHOD=trust" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
  chmod 644 "$pwfile"
  as_postgres initdb --username="$POSTGRES_USER" --auth-local=trust --auth-host="$AUTH" \
    ${POSTGRES_PASSWORD:+--pwfile="$pwfile"} --encoding=UTF8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  echo "host all all all $AUTH" >> "$PGDATA/pg_hba.conf"
  as_postgres pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    as_postgres psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
  fi
  as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
if [ "$(id -u)" = 0 ]; then
  exec runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses='*'
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
