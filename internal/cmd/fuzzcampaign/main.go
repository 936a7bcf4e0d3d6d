// Command fuzzcampaign runs the project's fuzz targets one after the other
// and keeps a ledger of what each ran: the CPU time its fuzzing processes
// used (the go command's and its children's, as wait4 counts them), the
// inputs run, those that widened coverage, and any failure. A campaign of
// an hour a target runs across sessions: each run appends to the ledger,
// and -table sums it per target for the README.
//
//	go run ./internal/cmd/fuzzcampaign -time 10m -parallel 1 [-only REGEXP]
//	go run ./internal/cmd/fuzzcampaign -table
package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ledgerPath is the ledger, in the repository so that campaigns add up
// across sessions.
const ledgerPath = "fuzz/campaign.tsv"

var (
	execsRe = regexp.MustCompile(`execs: (\d+) .*new interesting: (\d+) \(total: (\d+)\)`)
	failRe  = regexp.MustCompile(`Failing input written to (\S+)`)
)

func main() {
	per := flag.Duration("time", 10*time.Minute, "fuzzing time of each target")
	parallel := flag.Int("parallel", 1, "fuzzing workers of each target")
	only := flag.String("only", "", "fuzz only the targets whose name matches this regular expression")
	table := flag.Bool("table", false, "print the ledger's sums per target as a Markdown table, and fuzz nothing")
	flag.Parse()
	if *table {
		if err := printTable(os.Stdout); err != nil {
			fatal(err)
		}
		return
	}
	re, err := regexp.Compile(*only)
	if err != nil {
		fatal(err)
	}
	targets, err := listTargets()
	if err != nil {
		fatal(err)
	}
	failed := false
	for _, t := range targets {
		if !re.MatchString(t[1]) {
			continue
		}
		rec, err := fuzz(t[0], t[1], *per, *parallel)
		if err != nil {
			fatal(err)
		}
		if err := appendLedger(rec); err != nil {
			fatal(err)
		}
		fmt.Printf("== %s %s: %s CPU, %s inputs, %s new, %s\n", t[0], t[1], rec[3], rec[4], rec[5], rec[7])
		failed = failed || rec[7] != "ok"
	}
	if failed {
		os.Exit(1)
	}
}

// listTargets returns every package and fuzz target of the module.
func listTargets() ([][2]string, error) {
	out, err := exec.Command("go", "list", "./...").Output()
	if err != nil {
		return nil, err
	}
	var targets [][2]string
	for _, pkg := range strings.Fields(string(out)) {
		list, err := exec.Command("go", "test", "-list", "^Fuzz", pkg).Output()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pkg, err)
		}
		for _, name := range strings.Fields(string(list)) {
			if strings.HasPrefix(name, "Fuzz") {
				targets = append(targets, [2]string{pkg, name})
			}
		}
	}
	return targets, nil
}

// fuzz runs one target and returns its ledger record: date, package,
// target, CPU seconds, inputs, new inputs, corpus, result.
func fuzz(pkg, target string, d time.Duration, parallel int) ([]string, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+target+"$", "-fuzztime", d.String(),
		"-fuzzminimizetime", "5s", "-parallel", strconv.Itoa(parallel), pkg)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	if cmd.ProcessState == nil {
		return nil, err
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	execs, news, corpus := "0", "0", "0"
	result := "ok"
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := execsRe.FindStringSubmatch(sc.Text()); m != nil {
			execs, news, corpus = m[1], m[2], m[3]
		}
		if m := failRe.FindStringSubmatch(sc.Text()); m != nil {
			result = "failed: " + m[1]
		}
	}
	if err != nil && result == "ok" {
		result = "failed: " + strings.ReplaceAll(err.Error(), "\t", " ")
	}
	return []string{time.Now().UTC().Format("2006-01-02"), pkg, target, strconv.FormatFloat(cpu.Seconds(), 'f', 0, 64), execs, news, corpus, result}, nil
}

func appendLedger(rec []string) error {
	f, err := os.OpenFile(ledgerPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Comma = '\t'
	if err := w.Write(rec); err != nil {
		f.Close()
		return err
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// printTable sums the ledger per target.
func printTable(w io.Writer) error {
	f, err := os.Open(ledgerPath)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = '\t'
	r.FieldsPerRecord = 8
	recs, err := r.ReadAll()
	if err != nil {
		return err
	}
	type sum struct {
		pkg                string
		cpu, execs, news   float64
		corpus, runs, fail int
		last               string
	}
	sums := map[string]*sum{}
	var names []string
	for _, rec := range recs {
		s := sums[rec[2]]
		if s == nil {
			s = &sum{pkg: rec[1]}
			sums[rec[2]] = s
			names = append(names, rec[2])
		}
		cpu, _ := strconv.ParseFloat(rec[3], 64)
		execs, _ := strconv.ParseFloat(rec[4], 64)
		news, _ := strconv.ParseFloat(rec[5], 64)
		corpus, _ := strconv.Atoi(rec[6])
		s.cpu += cpu
		s.execs += execs
		s.news += news
		s.corpus = max(s.corpus, corpus)
		s.runs++
		if rec[7] != "ok" {
			s.fail++
		}
		s.last = rec[0]
	}
	slices.Sort(names)
	fmt.Fprintln(w, "| target | package | CPU time | inputs | inputs/s of CPU | new inputs | corpus | runs | failures | last run |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, n := range names {
		s := sums[n]
		rate := 0.0
		if s.cpu > 0 {
			rate = s.execs / s.cpu
		}
		fmt.Fprintf(w, "| `%s` | `%s` | %s | %.0f | %.0f | %.0f | %d | %d | %d | %s |\n", n, strings.TrimPrefix(s.pkg, "github.com/pop3kit/pop3kit/"),
			(time.Duration(s.cpu) * time.Second).String(), s.execs, rate, s.news, s.corpus, s.runs, s.fail, s.last)
	}
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "fuzzcampaign:", err)
	os.Exit(2)
}
