# tokenlease: make run starts the service, make test runs every test.
GO        ?= go
BIN       := bin
PKGS      := ./...
DATA_DIR  := .data/pg

.PHONY: help run test build generate check-generated vet fmt-check bench bench-churn bench-pools db-up db-stop docker dashboard-preview clean

## run: build tokend and run it against PostgreSQL at DATABASE_URL (default: local, created if missing),
## with the local admin key of .data/admin.key (created on first run)
# tokend replaces the recipe's shell (exec), so it is make's own child: make
# passes SIGTERM on to it, and Ctrl-C reaches it directly; it shuts down
# cleanly and exits 0, so make reports no error.
run:
	@if [ -z "$$DATABASE_URL" ]; then deploy/dev-postgres.sh; fi
	@GO=$(GO) deploy/admin-key.sh
	@echo "tokenlease: building tokend (the first build takes a few minutes)..." >&2
	@CGO_ENABLED=0 $(GO) build -o $(BIN)/tokend ./cmd/tokend
	@echo "tokenlease: starting $(BIN)/tokend (Ctrl-C stops it)" >&2
	@BOOTSTRAP_ADMIN_KEY="$$(cat .data/admin.key)" exec $(BIN)/tokend

## test: every test, with the race detector, against a real PostgreSQL; drops its template database after
# The test packages run in parallel processes that share one template
# database, so it is dropped once, after every package has finished.
test:
	@deploy/test-tools.sh
	@if [ -z "$$TEST_DATABASE_URL" ]; then deploy/dev-postgres.sh --optional; fi
	@status=0; $(GO) test -race -count=1 -timeout 20m $(PKGS) || status=$$?; \
		$(GO) run ./internal/testdb/droptemplate || true; exit $$status

## help: list the targets
help:
	@sed -n 's/^## \([a-z-]*\): /\1\t/p' $(MAKEFILE_LIST) | awk -F '\t' '{printf "  make %-18s %s\n", $$1, $$2}'

## build: the server and tokenctl binaries in bin/
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/tokend ./cmd/tokend
	CGO_ENABLED=0 $(GO) build -o $(BIN)/tokenctl ./cmd/tokenctl

## generate: regenerate db/ from queries/ and migrations/ with sqlc
generate:
	$(GO) tool sqlc generate

## check-generated: fail when db/ is stale
check-generated:
	$(GO) tool sqlc diff

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt wants to rewrite:"; echo "$$out"; exit 1; fi

## db-up: make sure PostgreSQL answers at 127.0.0.1:5432 (boots .data/pg if needed)
db-up:
	@deploy/dev-postgres.sh

## db-stop: stop the private cluster in .data/pg, if one runs (and remove its files when they live in /var/tmp)
db-stop:
	@deploy/dev-postgres.sh --stop

docker:
	docker compose up --build

## bench: the benchmark suite against the lean ceiling (deploy/bench/run.sh; about 13 minutes); BENCH_QUICK=1 for the short run (about 3)
bench:
	deploy/bench/run.sh

## bench-churn: 5 minutes of churn on a 100k pool, then a 90 s A/B of the tokens table's settings (about 9 minutes)
bench-churn:
	BENCH_SCENARIO=churn deploy/bench/run.sh

## bench-pools: 16 clients over 8 pools vs one pool, and a 1k pool beside a 1M pool (about 3 minutes)
bench-pools:
	BENCH_SCENARIO=pools deploy/bench/run.sh

## dashboard-preview: docs/img/dashboard.png, the Grafana dashboard drawn from a live tokend and Prometheus (about 4 minutes)
dashboard-preview:
	GO=$(GO) deploy/grafana/preview/run.sh

clean:
	rm -rf $(BIN)
