# redis-ratelimit: build, run and test the Redis module.
#
#   make run    build, then start redis-server on 127.0.0.1:6379 with the module
#   make test   unit, property and integration tests (real redis-server),
#               the client examples, the Python client's tests and the
#               `limits` library's own test suite against the module
#   make test-cluster   Redis Cluster suite: 3 primaries + 3 replicas on
#                       127.0.0.1, resharding and failover under load (~30 s)
#   make test-servers   the whole suite (cargo, cluster, examples, Python) on
#                       Redis 7.0, Valkey 8.0, Valkey 9.1 and Redis 8.2
#                       (SERVERS="valkey9 redis8" for some; tools/servers.sh)
#   make bench  server cost and memory next to INCR and the `limits` Lua
#               scripts (BENCH_QUICK=1 for a ~2 minute run; REDIS_SERVER=
#               a binary, or BENCH_SERVER=valkey9 etc. from tools/servers.sh)
#   make fuzz / leakcheck / soak   hardening runs (docs/hardening.md)
#
# Each target installs the Debian packages it needs when they are missing.

SO        := target/release/libredis_ratelimit.so
DEB_PKGS  := redis-server redis-tools libclang1-14 libclang-common-14-dev
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT      ?= 6379

.PHONY: deps build run test unit integration test-cluster test-servers servers test-python bench examples docs-output fuzz leakcheck soak lint clean

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	cargo build --release

run: build
	redis-server --port $(PORT) --bind 127.0.0.1 --save "" --appendonly no \
	  --loadmodule $(CURDIR)/$(SO)

unit: deps
	cargo test --release --lib

integration: build
	RL_MODULE=$(CURDIR)/$(SO) cargo test --release --tests

test: build
	RL_MODULE=$(CURDIR)/$(SO) cargo test --release
	RL_MODULE=$(CURDIR)/$(SO) bash examples/run.sh
	RL_MODULE=$(CURDIR)/$(SO) clients/python/run-tests.sh
	RL_MODULE=$(CURDIR)/$(SO) clients/python/limits-suite/run.sh

test-python: build
	RL_MODULE=$(CURDIR)/$(SO) clients/python/run-tests.sh

examples: build
	RL_MODULE=$(CURDIR)/$(SO) bash examples/run.sh

# Re-creates the sessions pasted in docs/commands.md and docs/algorithms.md.
docs-output: build
	RL_MODULE=$(CURDIR)/$(SO) bash examples/gen-docs-output.sh
	RL_MODULE=$(CURDIR)/$(SO) bash examples/compare-limits.sh

test-cluster: build
	RL_MODULE=$(CURDIR)/$(SO) cargo test --release --test cluster -- --ignored --nocapture --test-threads=1

SERVERS ?= $(shell tools/servers.sh names)

# Installs the servers of test-servers (Debian packages, PyPI wheels in a venv).
servers:
	tools/servers.sh install

test-servers: build servers
	RL_MODULE=$(CURDIR)/$(SO) tools/test-servers.sh $(SERVERS)

BENCH_VENV ?= .venv-bench

bench: build
	@[ -x $(BENCH_VENV)/bin/python ] || python3 -m venv $(BENCH_VENV) || \
	  { $(SUDO) apt-get install -y -qq python3-venv && python3 -m venv $(BENCH_VENV); }
	@$(BENCH_VENV)/bin/python -c 'import redis, limits, sys; sys.exit(not limits.__version__.startswith("5.8."))' 2>/dev/null || \
	  $(BENCH_VENV)/bin/pip install -q 'limits==5.8.*' redis
	cargo build --release --example bench_floor
	@server="$(REDIS_SERVER)"; \
	if [ -n "$(BENCH_SERVER)" ]; then tools/servers.sh install && server=$$(tools/servers.sh path $(BENCH_SERVER)) || exit 1; fi; \
	RL_MODULE=$(CURDIR)/$(SO) REDIS_SERVER=$${server:-redis-server} $(BENCH_VENV)/bin/python bench/bench.py && \
	RL_MODULE=$(CURDIR)/$(SO) REDIS_SERVER=$${server:-redis-server} $(BENCH_VENV)/bin/python bench/large_log.py && \
	RL_MODULE=$(CURDIR)/$(SO) REDIS_SERVER=$${server:-redis-server} $(BENCH_VENV)/bin/python bench/leases.py

FUZZ_SECS     ?= 60
LEAK_COMMANDS ?= 100000
SOAK_SECS     ?= 600

# Coverage-guided fuzzing of the pure core, each target for FUZZ_SECS seconds.
fuzz: deps
	tools/fuzz.sh $(FUZZ_SECS)

# LEAK_COMMANDS mixed commands against redis-server under valgrind; fails on
# any byte the module loses.
leakcheck: build
	@dpkg-query -W -f='$${Status}' valgrind 2>/dev/null | grep -q "install ok installed" || \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq valgrind >/dev/null; }
	tools/leakcheck.sh $(LEAK_COMMANDS) $(CURDIR)/$(SO)

# Soak: 50 clients over 1M keys for SOAK_SECS (then at most 180 s drain).
soak: build
	RL_MODULE=$(CURDIR)/$(SO) tools/soak.sh $(SOAK_SECS)

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

clean:
	cargo clean
