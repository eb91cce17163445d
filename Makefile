# userstore — developer and CI entry points. `make` (or `make help`) lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
PG := scripts/pg.sh

.PHONY: help demo db-up db-down db-status db-reset test test-faults vet

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

demo: db-up ## Start the database if needed, migrate, run a short workload, catch the projector up, show the results
	@eval "$$($(PG) env)"; $(GO) run ./examples/demo

db-up: ## Start the local PostgreSQL, PgBouncer and nats-server (installs them with apt-get when missing)
	@$(PG) up

db-down: ## Stop the local PostgreSQL, PgBouncer and nats-server; leaves nothing running
	@$(PG) down

db-status: ## Tell whether the local PostgreSQL, PgBouncer and nats-server run (exit 0 running, 3 stopped, 4 absent)
	@$(PG) status

db-reset: ## Stop the local PostgreSQL and delete its data (.pg/)
	@$(PG) reset

vet: ## go vet the whole module
	$(GO) vet ./...

# Under CI (CI=true) the database is stopped again afterwards, whatever the outcome.
test: db-up ## Start the database if needed; go vet, check that the docs cite only existing tests, go test -race ./...
	@status=0; \
	eval "$$($(PG) env)"; \
	{ $(GO) vet ./... && scripts/check-doc-tests.sh && $(GO) test -race -count=1 ./...; } || status=$$?; \
	if [ -n "$${CI:-}" ]; then $(PG) down; fi; \
	exit $$status

# The long fault runs (docs/reliability.md): network faults, crashes and linearizability at the long size,
# then every fuzz target for FUZZTIME (20 s) each. Under CI the database is stopped afterwards.
test-faults: db-up ## The long crash, linearizability, network-fault and fuzz runs (about 15 min)
	@status=0; \
	eval "$$($(PG) env)"; \
	{ $(GO) test -race -count=1 -v ./internal/faultsuite/ && \
	  USERSTORE_FAULTS_LONG=1 $(GO) test -race -count=1 -v -timeout 60m ./internal/crashtest/ && \
	  scripts/fuzz.sh; } || status=$$?; \
	if [ -n "$${CI:-}" ]; then $(PG) down; fi; \
	exit $$status

# The harness is a module of its own (bench/): peers and baselines never enter the library's go.mod.
.PHONY: bench
bench: db-up ## Run the benchmarks against the local PostgreSQL and write docs/benchmarks.md (BENCH_QUICK=1: < 5 min)
	@eval "$$($(PG) env)"; \
	cd bench && $(GO) run ./cmd/userstore-bench -out ../docs/benchmarks.md -json ../docs/benchmarks.json
