# Conveniences over scripts/: the README's commands work without make.
GO ?= go

.PHONY: test demo bench lint fuzz check dashboard

## test: install redis-server if missing, then vet and run every test with -race.
test:
	./scripts/test.sh

## demo: two tiered instances on an embedded miniredis (REDIS=host:port for a real one).
demo:
	$(GO) run ./cmd/tierstore demo $(if $(REDIS),-redis $(REDIS))

## bench: the l1 / l2 / tiered comparison on a real redis-server, 6 runs each.
bench:
	./scripts/ensure-redis.sh
	cd benchmarks && $(GO) test -run '^$$' -bench . -benchmem -count 6 ./stores | tee ../bench.out

## lint: gofmt, go vet and staticcheck.
lint:
	./scripts/lint.sh

## fuzz: run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

## check: the staleness checker under every fault; SOAK=1000000 for a soak in separate processes.
check:
	$(GO) run ./cmd/tierstore check $(if $(SOAK),-procs -ops $(SOAK))

## dashboard: draw docs/dashboard.png, the shipped dashboard's panels from a run under faults.
dashboard:
	./scripts/ensure-redis.sh
	cd cmd && $(GO) run ./tierstore dashboard -out ../docs/dashboard.png
