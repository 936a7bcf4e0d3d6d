# pop3kit — the commands a developer needs. `make test` is what CI runs.

GO        ?= go
FUZZTIME  ?= 1m
# SMOKE_FUZZTIME is how long `make test` fuzzes each target.
SMOKE_FUZZTIME ?= 7s
# Minimizing a new input can take the fuzzer minutes; cap it.
FUZZMINIMIZE ?= 5s
BENCHTIME ?= 1s

.PHONY: all generate check-generated coverage test race bench bench-compare dialects fuzz fuzz-long fuzz-keep run install

all: generate test

# Regenerate pop3gen/, pop3/table.go and pop3/variations.go, docs/CONFORMANCE.md and the
# README's state diagram from the spec table (and docs/coverage.txt, which
# make coverage writes).
generate:
	$(GO) generate ./...

# Fail when the committed generated files differ from a fresh generation.
GENFLAGS = -out pop3gen -pkg pop3gen -docs docs -coverage docs/coverage.txt -readme README.md -runtime pop3
check-generated:
	$(GO) run ./gen/cmd/pop3kit-gen $(GENFLAGS) -check

# Rewrite docs/coverage.txt (and CONFORMANCE.md) from the clause.Covers
# declarations that a full test run records (internal/clause).
coverage:
	d=$$(mktemp -d) && POP3KIT_CLAUSES=$$d $(GO) test -count=1 ./... && $(GO) run ./gen/cmd/pop3kit-gen $(GENFLAGS) -collect $$d; s=$$?; rm -rf "$$d"; exit $$s

# Every test: unit, generator goldens, end-to-end, real clients, fuzz seed
# corpora and properties as regression tests, recording the clauses each
# declares it covers, which must be what docs/coverage.txt says; the
# packages with goroutines, locks or shared state again under the race
# detector; then every fuzz target for SMOKE_FUZZTIME.
test:
	d=$$(mktemp -d) && POP3KIT_CLAUSES=$$d $(GO) test -count=1 ./... && $(GO) run ./gen/cmd/pop3kit-gen $(GENFLAGS) -collect $$d -check; s=$$?; rm -rf "$$d"; exit $$s
	$(MAKE) race
	$(MAKE) fuzz FUZZTIME=$(SMOKE_FUZZTIME)

# The packages with goroutines, locks or shared state, under the race
# detector (-short leaves out the slowest soak cases, which the plain run
# above has already run).
RACE_PKGS ?= ./pop3/... ./pop3gen/... ./server/... ./cmd/... ./examples/... ./property/...
race:
	$(GO) test -race -short -count=1 $(RACE_PKGS)

# Benchmarks, each against its baseline in the same run.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# pop3d beside the floor (a raw Go responder serving the same bytes from
# memory) and Dovecot where it is installed (cmd/pop3bench): about a
# quarter of an hour; BENCHFLAGS passes its flags (-only mix, -repeat 5).
# Its table goes in the README's Benchmarks, with the date and machine.
# Probe a private Dovecot and pop3d's profiles and write the comparison,
# docs/dialects/README.md, which make test holds the probe to.
dialects:
	$(GO) test -count=1 ./interop -run '^TestDialects$$' -update-dialects

bench-compare:
	$(GO) run ./cmd/pop3bench $(BENCHFLAGS)

# Every fuzz target for FUZZTIME each (make fuzz FUZZTIME=10m).
# Go 1.26's fuzz coordinator can report a bare "context deadline exceeded"
# when -fuzztime ends while a worker is mid-input (go.dev/issue/75804,
# fixed in Go 1.27): such a run, with no failing input written, is run
# once more; any other failure, or the same twice, fails.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			for try in 1 2; do \
				out=$$($(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg 2>&1); rc=$$?; \
				echo "$$out"; \
				[ $$rc -eq 0 ] && break; \
				if [ $$try -eq 1 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
					echo "== $$target: the Go 1.26 fuzztime deadline race (go.dev/issue/75804), no failing input: once more"; continue; \
				fi; \
				exit 1; \
			done; \
		done; \
	done

# A fuzzing campaign: every target for FUZZLONG with FUZZPARALLEL
# workers (make fuzz-long FUZZLONG=1h), each run's CPU time, inputs and
# failures appended to fuzz/campaign.tsv (commit it: a campaign adds up
# across sessions; go run ./internal/cmd/fuzzcampaign -table sums it),
# then fuzz-keep. FUZZONLY picks targets by a regular expression.
FUZZLONG ?= 10m
FUZZPARALLEL ?= 1
FUZZONLY ?=
fuzz-long:
	$(GO) run ./internal/cmd/fuzzcampaign -time $(FUZZLONG) -parallel $(FUZZPARALLEL) -only '$(FUZZONLY)'
	$(MAKE) fuzz-keep

# Copy every input the fuzzers found that widened coverage, from Go's
# fuzz cache into the package's testdata/fuzz/TARGET, where make test
# replays it; inputs already there are left as they are. Commit what it
# adds.
fuzz-keep:
	@cache=$$($(GO) env GOCACHE)/fuzz; n=0; \
	for pkg in $$($(GO) list ./...); do \
		[ -d "$$cache/$$pkg" ] || continue; \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		targets=$$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); \
		for t in $$(ls "$$cache/$$pkg" | grep '^Fuzz'); do \
			echo "$$targets" | grep -qx "$$t" || continue; \
			mkdir -p "$$dir/testdata/fuzz/$$t"; \
			for f in "$$cache/$$pkg/$$t"/*; do \
				[ -e "$$dir/testdata/fuzz/$$t/$$(basename $$f)" ] || { cp "$$f" "$$dir/testdata/fuzz/$$t/"; n=$$((n+1)); }; \
			done; \
		done; \
	done; \
	echo "fuzz-keep: $$n new inputs under testdata/fuzz"

# The server on the embedded default: 127.0.0.1:1110, a demo Maildir and
# passwd-file created on first run.
run:
	$(GO) run ./cmd/pop3d serve

# Install pop3d where a Debian administrator looks for a locally built
# daemon: the binary in $(BINDIR) (the units' ExecStart), the systemd units
# in $(UNITDIR), pop3d(8) in $(MANDIR), and the example configuration in
# $(CONFDIR), never over an existing pop3d.toml. DESTDIR stages a package.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man/man8
UNITDIR ?= /etc/systemd/system
CONFDIR ?= /etc/pop3kit
install:
	$(GO) build -buildvcs=true -o pop3d.install ./cmd/pop3d
	install -D -m 0755 pop3d.install $(DESTDIR)$(BINDIR)/pop3d
	./pop3d.install man > pop3d.8.install
	install -D -m 0644 pop3d.8.install $(DESTDIR)$(MANDIR)/pop3d.8
	rm -f pop3d.install pop3d.8.install
	for u in dist/systemd/*.service dist/systemd/*.socket dist/systemd/*.timer; do \
		install -D -m 0644 $$u $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	done
	install -D -m 0644 dist/pop3d.example.toml $(DESTDIR)$(CONFDIR)/pop3d.example.toml
	@echo "installed pop3d in $(DESTDIR)$(BINDIR), its units in $(DESTDIR)$(UNITDIR), pop3d(8) in $(DESTDIR)$(MANDIR);"
	@echo "copy $(CONFDIR)/pop3d.example.toml to $(CONFDIR)/pop3d.toml, then: systemctl daemon-reload && systemctl enable --now pop3d.socket pop3d-tls.socket"
