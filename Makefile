# Build, lint and test entry points. `make test` is the one command that runs
# the whole suite on a fresh machine (it installs missing system tools when
# run as root on Debian).
.PHONY: all build lint typecheck test test-unit clean deps run

all: build

node_modules: package.json package-lock.json
	npm ci
	@touch node_modules

# dist/ is rebuilt from scratch, so a test whose source was moved or deleted
# cannot linger there and run.
build: node_modules
	rm -rf dist
	npx tsc -p tsconfig.json

typecheck: node_modules
	npx tsc -p tsconfig.json --noEmit

# eslint (type-aware rules, import boundaries, no cycles) and knip (unused
# files, exports and dependencies).
lint: node_modules
	npx eslint .
	npx knip

# Start nsregd on the shipped example configuration (loopback only, data in
# ./.nsregd-data). Stop it with Ctrl-C.
run: build
	node bin/nsregd -c nsregd.example.yaml

deps:
	bash scripts/ensure-tools.sh

# The whole suite: lint, then every test (integration tests start real
# servers and network namespaces, so they need root), with coverage.
test: deps build lint
	node --test --test-concurrency=1 --experimental-test-coverage $$(find dist/test -name '*.test.js' | sort)

# Unit tests only: no root, no system tools.
test-unit: build
	node --test --experimental-test-coverage $$(find dist/test/unit -name '*.test.js' | sort)

clean:
	rm -rf dist
