# Sourced by scripts that need a throw-away PostgreSQL cluster of their own (crash-check.sh,
# two-servers.sh): initdb + pg_ctl in a folder, as the `postgres` user when run as root, reachable
# only through a Unix socket in that folder. Defines `pg` (runs a PostgreSQL server program) and
# `pg_cluster_start`; sets pgbin, pgdata, as_postgres and cluster_url.

pgbin=""
pgdata=""
as_postgres=()

# pg PROGRAM ARGS…: initdb, pg_ctl, … of the chosen installation, as the cluster's owner.
pg() { "${as_postgres[@]}" env -C / "$pgbin/$1" "${@:2}"; }

# pg_cluster_start WORK NAME [postgresql.conf lines…]: creates and starts a cluster in WORK/pgdata
# (log WORK/postgres.log) with a database "orderly". NAME prefixes the error messages.
pg_cluster_start() {
    local work=$1 name=$2
    shift 2
    for dir in "$(pg_config --bindir 2>/dev/null || true)" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then pgbin=$dir; break; fi
    done
    [ -n "$pgbin" ] || { echo "$name: initdb/pg_ctl not found (apt-get install postgresql)" >&2; return 2; }
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$work"
        chmod 755 "$work"
        as_postgres=(runuser -u postgres --)
    fi
    pgdata="$work/pgdata"
    pg initdb -D "$pgdata" -U postgres --auth-local=trust --auth-host=reject -E UTF8 >"$work/initdb.log" 2>&1 \
        || { cat "$work/initdb.log"; return 1; }
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$work'"
        echo "port = 5432"
        echo "max_connections = 100"
        local line
        for line in "$@"; do echo "$line"; done
    } >>"$pgdata/postgresql.conf"
    pg pg_ctl -D "$pgdata" -l "$work/postgres.log" -w -t 60 start >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 -h "$work" -p 5432 -U postgres -d postgres -c "CREATE DATABASE orderly"
    cluster_url="host=$work port=5432 user=postgres dbname=orderly"
}
