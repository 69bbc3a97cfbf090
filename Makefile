# The two commands: `make run` and `make test`. Both install what is missing (as root) first.
.PHONY: run test build deps test-deps clean

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

build: deps
	swift build -c release

## Build and start orderlyd on its embedded PostgreSQL with demo users; Ctrl-C stops both.
run: deps
	swift build -c release --product orderlyd
	.build/release/orderlyd --demo

## pgTAP and the Swift test suites against a throw-away PostgreSQL cluster.
test: test-deps
	@scripts/test.sh

clean:
	rm -rf .build
