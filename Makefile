# The two commands: `make run` and `make test`. Both install what is missing (as root) first.
.PHONY: run test bench build deps test-deps bench-deps readme clean

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

bench-deps:
	@scripts/install-deps.sh --bench

build: deps
	swift build -c release

## Build orderlyd and the orderly client, and start orderlyd on its embedded PostgreSQL with demo
## users and the carriers' webhook on loopback (the README's examples use both); Ctrl-C stops it.
run: deps
	swift build -c release --product orderlyd
	swift build -c release --product orderly
	.build/release/orderlyd --demo --webhook-listen 127.0.0.1:7480

## pgTAP and the Swift test suites against a throw-away PostgreSQL cluster.
test: test-deps
	@scripts/test.sh

## orderly-bench against pgbench on the same api functions at 8/32/128 connections (BENCH_DURATION=10 s).
bench: bench-deps
	@scripts/bench.sh

## The README's command reference, written from the command registry in sql/ (a test checks it).
readme: test-deps
	@scripts/readme-commands.sh

clean:
	rm -rf .build
