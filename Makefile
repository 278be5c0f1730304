# Build, lint and test entry points. `make test` is the one command that runs
# the whole suite on a fresh machine (it installs missing system tools when
# run as root on Debian).
.PHONY: all build lint typecheck test clean deps run

all: build

node_modules: package.json package-lock.json
	npm ci
	@touch node_modules

build: node_modules
	npx tsc -p tsconfig.json

typecheck: node_modules
	npx tsc -p tsconfig.json --noEmit

lint: node_modules
	npx eslint .

# Start nsregd on the shipped example configuration (loopback only, data in
# ./.nsregd-data). Stop it with Ctrl-C.
run: build
	node bin/nsregd -c nsregd.example.yaml

deps:
	bash scripts/ensure-tools.sh

test: deps build
	node --test --test-concurrency=1 $$(find dist/test -name '*.test.js' | sort)

clean:
	rm -rf dist
