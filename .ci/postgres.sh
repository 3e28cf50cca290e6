#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the distributed tests (as root, no systemd;
# shared/design/distributed.md).  "start DIR" initializes and starts a cluster in DIR with trust
# auth on loopback, creates database "ulsam", and prints its URL; "stop DIR" stops it and
# deletes DIR.  Needs Debian's postgresql package.
set -euo pipefail
action=${1:?start or stop}
data=${2:?a data folder}
port=${ULSAM_NAS_PG_PORT:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
case "$action" in
  start)
    mkdir -p "$data"
    chown postgres:postgres "$data"
    runuser -u postgres -- "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale --no-sync >/dev/null
    runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $data" start >/dev/null
    runuser -u postgres -- "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres ulsam
    echo "postgresql+psycopg2://postgres@127.0.0.1:$port/ulsam"
    ;;
  stop)
    runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
    rm -rf "$data"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
