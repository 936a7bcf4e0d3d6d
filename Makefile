# pop3kit — the commands a developer needs. `make test` is what CI runs.

GO        ?= go
FUZZTIME  ?= 1m
# SMOKE_FUZZTIME is how long `make test` fuzzes each target.
SMOKE_FUZZTIME ?= 10s
# Minimizing a new input can take the fuzzer minutes; cap it.
FUZZMINIMIZE ?= 5s
BENCHTIME ?= 1s

.PHONY: all generate check-generated test race bench fuzz run

all: generate test

# Regenerate pop3gen/, docs/CONFORMANCE.md and the README's state diagram
# from the spec table.
generate:
	$(GO) generate ./...

# Fail when the committed generated files differ from a fresh generation.
check-generated:
	$(GO) run ./gen -out pop3gen -pkg pop3gen -docs docs -readme README.md -root . -check

# Every test: unit, generator goldens, end-to-end, real clients, fuzz seed
# corpora and properties as regression tests; the packages with
# goroutines, locks or shared state again under the race detector; then
# every fuzz target for SMOKE_FUZZTIME.
test:
	$(GO) test ./...
	$(MAKE) race
	$(MAKE) fuzz FUZZTIME=$(SMOKE_FUZZTIME)

# The packages with goroutines, locks or shared state, under the race
# detector (-short leaves out the slowest soak cases, which the plain run
# above has already run).
RACE_PKGS ?= ./server/... ./cmd/... ./examples/... ./property/...
race:
	$(GO) test -race -short -count=1 $(RACE_PKGS)

# Benchmarks, each against its baseline in the same run.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# Every fuzz target for FUZZTIME each (make fuzz FUZZTIME=10m).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg || exit 1; \
		done; \
	done

# The server on the embedded default: 127.0.0.1:1110, a demo Maildir and
# passwd-file created on first run.
run:
	$(GO) run ./cmd/pop3d serve
