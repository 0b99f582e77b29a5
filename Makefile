# shoal — the gates. `make test` is what the README and CI run.
CARGO ?= cargo

.PHONY: test verify lint fmt-check clippy doc fix bench demo demo-native build release chaos

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# Every test: unit tests and the integration tests against real mariadbd processes.
test:
	bash proxy-tests/setup.sh
	$(CARGO) test

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

lint: fmt-check clippy

# The read-only gate: formatting, lints, tests, docs.
verify: lint test doc

fix:
	$(CARGO) fmt --all
	$(CARGO) clippy --all-targets --fix --allow-dirty --allow-staged

# Classifier cost, WAL throughput (vs dd oflag=dsync), Raft commit, apply rate, then sysbench/scale/large-result through shoal vs
# direct, then write_only with capture on vs direct, then write_only/read_write through a 3-node cluster vs direct,
# then the four-way replicated-write comparison (shoal, async, semi-sync, Galera; each vs direct)
# (see docs/benchmarks.md for the knobs, e.g. BENCH_QUICK=1).
bench: release
	$(CARGO) bench --bench classify
	$(CARGO) bench --bench wal
	$(CARGO) bench --bench raft
	$(CARGO) bench --bench apply
	bash proxy-tests/bench/run.sh
	bash proxy-tests/bench/capture.sh
	bash proxy-tests/bench/cluster.sh
	bash proxy-tests/bench/replicated.sh

# The chaos harness (proxy-tests/chaos, docs/reliability.md): seeded fault rounds on three
# and five nodes, then the safety checker. SHOAL_SEED=N replays a plan; `make test` runs a
# short profile (6 rounds, 3 nodes, pauses and partitions only).
CHAOS_ROUNDS ?= 50
chaos:
	bash proxy-tests/setup.sh
	SHOAL_CHAOS_FAULTS=all SHOAL_CHAOS_NODES=3 SHOAL_CHAOS_ROUNDS=$(CHAOS_ROUNDS) $(CARGO) test --test proxy chaos::a_seeded -- --nocapture
	SHOAL_CHAOS_FAULTS=all SHOAL_CHAOS_NODES=5 SHOAL_CHAOS_ROUNDS=$(CHAOS_ROUNDS) $(CARGO) test --test proxy chaos::a_seeded -- --nocapture

# A three-node shoal cluster, each node with its own MariaDB (config/demo.sh).
demo: release
	bash proxy-tests/setup.sh
	bash config/demo.sh

# shoal proxy in front of a MariaDB primary and two native GTID replicas (config/demo-native.sh).
demo-native: release
	bash proxy-tests/setup.sh
	bash config/demo-native.sh
