# ML Defender developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
BINARIES := sniffer ml-detector firewall-agent rag-ingester rag etcd-server

.PHONY: help setup build test e2e readme-test corpus corpus-smoke corpus-flows evaluate-corpus train evaluate bench-detector bench-detector-soak fuzz fuzz-smoke lint fmt check-fmt clippy validate-configs bench bench-crypto bench-sniffer bench-block bench-etcd bench-rag bench-peers install-test system-lab run-lab status-lab kill-lab

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: ## Install every system package and model the suite needs (Debian 12, as root; idempotent)
	bash scripts/setup.sh

build: ## Build the whole workspace (debug)
	$(CARGO) build --workspace --all-targets --locked

test: check-fmt clippy validate-configs fuzz-smoke ## Formatting, lints, config validation, every test, 10 s per fuzz target, the e2e lab, install/upgrade/uninstall, the system lab, the README's commands, the corpus smoke
	$(CARGO) test --workspace --locked
	$(MAKE) --no-print-directory e2e
	$(MAKE) --no-print-directory install-test
	$(MAKE) --no-print-directory system-lab
	$(MAKE) --no-print-directory readme-test
	$(MAKE) --no-print-directory corpus-smoke

install-test: ## scripts/install.sh under DESTDIR with the debug binaries: install, an invalid kept config stops an upgrade before any change, upgrade keeps configs, uninstall, purge
	$(CARGO) build --workspace --locked --bins
	MLD_BIN_DIR="$${CARGO_TARGET_DIR:-target}/debug" scripts/install-test.sh

CORPUS ?= /var/tmp/mld-corpus
CORPUS_SMOKE ?= /tmp/mld-corpus-smoke

corpus: ## Build the labelled real-tool corpus in network namespaces into CORPUS (root, about 25 minutes), then check its labels
	scripts/corpus/build.sh --out "$(CORPUS)"
	scripts/corpus/check.py "$(CORPUS)"

corpus-smoke: ## One short scenario per class (root, about 3 minutes), its labels checked, scored by the evaluator and gated: every host of seven classes at MALICIOUS, no benign host blocked
	$(CARGO) build --workspace --locked --bins
	scripts/corpus/build.sh --smoke --out "$(CORPUS_SMOKE)"
	scripts/corpus/check.py "$(CORPUS_SMOKE)"
	"$${CARGO_TARGET_DIR:-target}/debug/ml-detector" evaluate --corpus "$(CORPUS_SMOKE)" --all \
	  --require-malicious bruteforce,dns,flood,lateral,scan,slowdos,webattack >/dev/null

evaluate-corpus: ## The cross-corpus table: trained on ../shared/data, tested on CORPUS's test part (writes docs/quality/cross-corpus.md)
	$(CARGO) run --release --locked -p mld-ml-detector -- evaluate --corpus "$(CORPUS)" --write docs/quality/cross-corpus.md

readme-test: ## The README's quick-start and operating commands, run as written in a private namespace (root)
	$(CARGO) build --workspace --locked --bins
	scripts/readme-test.py --bin "$${CARGO_TARGET_DIR:-target}/debug"

system-lab: ## The suite installed by scripts/install.sh on a Debian 12 gateway booted with systemd (nspawn, root): units, order, blocks, kill -9, upgrade, reboot, uninstall
	$(CARGO) build --workspace --locked --bins
	MLD_SYSLAB_BIN="$${CARGO_TARGET_DIR:-target}/debug" scripts/system-lab.sh run

e2e: ## The lab scenario as a test (root): attackers blocked, benign hosts not, every packet accounted for; systemd units' capabilities
	$(CARGO) build --workspace --locked --bins
	MLD_LAB_BIN="$${CARGO_TARGET_DIR:-target}/debug" MLD_LAB_PREFIX=mlde2e MLD_LAB_DIR=/tmp/mld-e2e scripts/lab.sh e2e
	MLD_LAB_BIN="$${CARGO_TARGET_DIR:-target}/debug" scripts/check-units.sh

lint: check-fmt clippy ## Formatting and clippy (warnings are errors)

check-fmt:
	$(CARGO) fmt --all --check

fmt: ## Format the code
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

validate-configs: ## Run each daemon's `validate` on its shipped config in config/
	$(CARGO) build --workspace --locked --bins
	@set -e; dir="$${CARGO_TARGET_DIR:-target}/debug"; \
	for bin in $(BINARIES); do \
	  cfg=config/$$bin.json; \
	  "$$dir/$$bin" validate --config "$$cfg"; \
	done

FUZZ_TARGETS := packet capture envelope apps
FUZZ_SECS ?= 300

fuzz: ## Fuzz each target FUZZ_SECS seconds (default 300), seeded from ../shared/data
	scripts/fuzz.sh $(FUZZ_SECS) $(FUZZ_TARGETS)

fuzz-smoke: ## Build the fuzz targets and run each for 10 s
	scripts/fuzz.sh 10 $(FUZZ_TARGETS)

corpus-flows: ## Turn the corpus in CORPUS into the labelled model inputs training reads (crates/train/data/corpus-flows.lz4; after engine or feature changes)
	$(CARGO) run --release --locked -p mld-train -- --data ../shared/data --root . --corpus-flows "$(CORPUS)"

train: ## Retrain the four forests from ../shared/data + synthetic traffic + the corpus flows (writes ml-detector/src/forests, docs/models)
	$(CARGO) run --release --locked -p mld-train -- --data ../shared/data --root .

evaluate: ## Detection quality on the held-out shared captures (per class and overall)
	$(CARGO) run --release --locked -p mld-ml-detector -- evaluate --data ../shared/data

bench: bench-crypto bench-sniffer bench-detector bench-detector-soak bench-block bench-etcd bench-rag bench-peers ## Run every benchmark and print the tables

bench-peers: ## ml-detector analyze vs nfstream (PyPI, in a venv it makes) on the same captures, one core each: time, packets/s, peak RSS
	bench/peers.sh

bench-crypto: ## Seal+open per payload size, portable vs x86-64-v3 (about 5 minutes)
	bench/crypto.sh

bench-detector: ## The four forests per event and in batch, and the daemon's work per flow stage by stage (criterion)
	$(CARGO) bench --locked -p mld-ml-detector --bench forests --bench pipeline

bench-detector-soak: ## sniffer -> ml-detector over the bus for SOAK_SECS (default 600): detections/s, RSS, rotation
	bench/detector.sh

bench-block: ## Block latency in the lab (p50/p99 over RUNS=99 scans) and block throughput (root, about 3 minutes)
	bench/block.sh

bench-etcd: ## etcd-server vs a real etcd 3.4: put/get/watch latency, put throughput, config change -> applied (about 1 minute)
	$(CARGO) bench --locked --workspace --bench etcd

bench-rag: ## RAG: ingest events/s, feature-vector search at 10k/100k/1M (p50/p99, recall), rag ask first token and total (about 10 minutes)
	$(CARGO) bench --locked --workspace --bench rag

bench-sniffer: ## pcap frames/s per core, live XDP on veth (root), RSS (about 1 minute)
	bench/sniffer.sh

run-lab: ## The lab (root): namespaces, services, the suite on a gateway, real attacks; left running
	$(CARGO) build --release --workspace --locked --bins
	MLD_LAB_BIN="$${CARGO_TARGET_DIR:-target}/release" scripts/lab.sh up
	MLD_LAB_BIN="$${CARGO_TARGET_DIR:-target}/release" scripts/lab.sh scenario
	@echo "[lab] left running: make status-lab, make kill-lab (state in /tmp/mldlab)"

status-lab: ## Components, counters and blocks of the running lab
	@MLD_LAB_BIN="$${CARGO_TARGET_DIR:-target}/release" scripts/lab.sh status

kill-lab: ## Stop the lab and remove its namespaces
	@MLD_LAB_BIN="$${CARGO_TARGET_DIR:-target}/release" scripts/lab.sh down
