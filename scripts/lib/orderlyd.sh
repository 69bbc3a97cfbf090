# Sourced by the scripts that run orderlyd in the background (bench.sh, crash-check.sh,
# two-servers.sh). Defines `orderlyd_start`.

# orderlyd_start BINARY LOG ARGS…: starts orderlyd (BINARY) with ARGS and --log-level warning,
# its output to LOG, and waits until it says it listens: 60 s at most, as a first start migrates
# the database and may load the demo data. Sets orderlyd_pid as soon as it runs (for the
# caller's clean-up) and orderlyd_port, the plain port it bound (`--listen …:0` picks one).
orderlyd_start() {
    local binary=$1 log=$2
    shift 2
    "$binary" "$@" --log-level warning >"$log" 2>&1 &
    orderlyd_pid=$!
    orderlyd_port=""
    for _ in $(seq 1 600); do
        orderlyd_port=$(sed -nE 's/.*listening on 127\.0\.0\.1:([0-9]+).*/\1/p' "$log" | head -1)
        [ -n "$orderlyd_port" ] && return 0
        kill -0 "$orderlyd_pid" 2>/dev/null || { echo "$(basename "$0"): orderlyd exited" >&2; cat "$log" >&2; return 1; }
        sleep 0.1
    done
    echo "$(basename "$0"): orderlyd did not start in 60 s" >&2; cat "$log" >&2; return 1
}
