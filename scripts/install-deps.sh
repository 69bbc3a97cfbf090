#!/usr/bin/env bash
# Installs the Debian packages Orderly needs when they are missing: PostgreSQL (server, for the
# embedded cluster and the test cluster), libpq-dev and pkg-config (to build the libpq module),
# libedit-dev (line editing in the orderly client's REPL).
# With --test also pgTAP and pg_prove for the installed PostgreSQL major version, tmux and
# openssl for the client's terminal and TLS tests, haproxy for HaproxyTests and
# scripts/two-servers.sh, and python3-yaml for scripts/check-least-privilege.sh (it reads
# docker-compose.yml where `docker compose` is missing), python3-aiosmtpd (the real SMTP server the
# outbox tests send to, scripts/test-smtp-server.py, run with Debian's /usr/bin/python3) and curl (the webhook tests post
# with it, as the README shows). With --bench also pgbench (in the
# postgresql-client package of the installed major version) and haproxy for `make bench`.
# As root it installs them; otherwise it prints the command to run and fails.
set -euo pipefail

wanted=(postgresql postgresql-contrib libpq-dev libedit-dev pkg-config)
missing() {
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || echo "$package"
    done
}

install() {
    local packages=("$@")
    [ ${#packages[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "Orderly needs these packages: ${packages[*]}" >&2
        echo "Install them with:  sudo apt-get install -y ${packages[*]}" >&2
        exit 1
    fi
    echo "Installing ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${ORDERLY_APT_UPDATED:-}" ]; then
        apt-get update -qq
        export ORDERLY_APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}

mapfile -t needed < <(missing "${wanted[@]}")
install "${needed[@]}"

if [ "${1:-}" = "--test" ]; then
    major=$(ls /usr/lib/postgresql | sort -n | tail -1)
    mapfile -t needed < <(missing "postgresql-$major-pgtap" libtap-parser-sourcehandler-pgtap-perl tmux openssl haproxy python3-yaml python3-aiosmtpd curl)
    install "${needed[@]}"
fi

if [ "${1:-}" = "--bench" ]; then
    # pg_virtualenv (postgresql-common) and pgbench (postgresql-client-N, pulled in by postgresql);
    # haproxy for the rows through two instances.
    major=$(ls /usr/lib/postgresql | sort -n | tail -1)
    mapfile -t needed < <(missing "postgresql-client-$major" postgresql-common haproxy)
    install "${needed[@]}"
fi
