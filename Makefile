# userstore — developer and CI entry points. `make` (or `make help`) lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
PG := scripts/pg.sh

.PHONY: help db-up db-down db-status db-reset test vet

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

db-up: ## Start the local PostgreSQL and PgBouncer (installs them with apt-get when missing)
	@$(PG) up

db-down: ## Stop the local PostgreSQL and PgBouncer; leaves nothing running
	@$(PG) down

db-status: ## Tell whether the local PostgreSQL and PgBouncer run (exit 0 running, 3 stopped, 4 absent)
	@$(PG) status

db-reset: ## Stop the local PostgreSQL and delete its data (.pg/)
	@$(PG) reset

vet: ## go vet the whole module
	$(GO) vet ./...

# Under CI (CI=true) the database is stopped again afterwards, whatever the outcome.
test: db-up ## Start the database if needed, then go vet and go test -race over the whole module
	@status=0; \
	eval "$$($(PG) env)"; \
	{ $(GO) vet ./... && $(GO) test -race -count=1 ./...; } || status=$$?; \
	if [ -n "$${CI:-}" ]; then $(PG) down; fi; \
	exit $$status
