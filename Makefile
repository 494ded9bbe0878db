# tokenlease: make run starts the service, make test runs every test.
GO        ?= go
BIN       := bin
PKGS      := ./...
DATA_DIR  := .data/pg

.PHONY: run test build generate check-generated vet fmt-check bench bench-churn bench-pools db-up db-stop docker clean

## run: start tokend against PostgreSQL at DATABASE_URL (default: local, created if missing)
run:
	@if [ -z "$$DATABASE_URL" ]; then deploy/dev-postgres.sh; fi
	$(GO) run ./cmd/tokend

## test: every test, with the race detector, against a real PostgreSQL
test:
	@if [ -z "$$TEST_DATABASE_URL" ]; then deploy/dev-postgres.sh --optional; fi
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

## build: the server binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/tokend ./cmd/tokend

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

## db-stop: stop the private cluster in .data/pg, if one runs
db-stop:
	@if [ -f $(DATA_DIR)/postmaster.pid ]; then \
		dir=$$(readlink -f $(DATA_DIR)); bin=$$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); \
		if [ "$$(id -u)" = 0 ]; then cd / && runuser -u postgres -- $$bin/pg_ctl -D $$dir stop; \
		else $$bin/pg_ctl -D $$dir stop; fi; fi

docker:
	docker compose up --build

## bench: the benchmark suite (deploy/bench/run.sh); BENCH_QUICK=1 for the short run
bench:
	deploy/bench/run.sh

## bench-churn: 5 minutes of churn on a 100k pool, then a 90 s A/B of the tokens table's settings (about 9 minutes)
bench-churn:
	BENCH_SCENARIO=churn deploy/bench/run.sh

## bench-pools: 16 clients over 8 pools vs one pool, and a 1k pool beside a 1M pool (about 3 minutes)
bench-pools:
	BENCH_SCENARIO=pools deploy/bench/run.sh

clean:
	rm -rf $(BIN)
