// Command pop3bench measures pop3d side by side with the floor of this
// machine — a raw Go POP3 responder serving the same bytes from memory,
// with no parsing, store or policy — and with Dovecot where it is
// installed, in one run, on the same Maildir and passwd-file:
//
//   - the session mix (connect, USER/PASS, STAT, LIST, UIDL, RETR of every
//     message, QUIT) at several concurrencies: sessions per second, server
//     CPU per session (from /proc), login latency's 99th percentile;
//   - one RETR of a big message: MB/s and server CPU per MB;
//   - thousands of idle logged-in sessions: memory (PSS) and descriptors
//     per session, and whether every session survived;
//   - a maildrop of 100,000 messages: the first login, the second (the
//     first changed the directories) and a later one (nothing changed),
//     each until STAT's reply (the session memory per message is
//     server/maildir's BenchmarkDropOpen100k, measured in the process:
//     /proc cannot tell a Go heap's live octets from its slack).
//
// Each figure is the median of several repetitions, with their spread,
// and as a ratio to the floor and to Dovecot. It is a benchmark, not a
// test: nothing is asserted. Run it with make bench-compare; the README
// keeps its output with the date and the machine.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	users    int
	msgs     int
	msgSize  int
	conc     []int
	duration time.Duration
	repeat   int
	idle     int
	bigMB    int
	many     int
	only     map[string]bool
	pop3d    string // a built pop3d; empty builds one
	dovecot  string // the dovecot binary; "off" skips it
	keep     bool
}

func numCPU() int { return runtime.NumCPU() }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		floorMain(os.Args[2:])
		return
	}
	var o options
	var conc, only string
	flag.IntVar(&o.users, "users", 400, "users of the session mix")
	flag.IntVar(&o.msgs, "msgs", 20, "messages in each maildrop of the mix")
	flag.IntVar(&o.msgSize, "msg-size", 41_500, "octets of each message of the mix (20 × 41,500 ≈ 0.83 MB)")
	flag.StringVar(&conc, "concurrency", "1,16,64,256", "concurrent clients of the session mix, comma-separated")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each run of the session mix lasts")
	flag.IntVar(&o.repeat, "repeat", 3, "repetitions of each figure (the median is reported)")
	flag.IntVar(&o.idle, "idle", 5000, "idle logged-in sessions held at once")
	flag.IntVar(&o.bigMB, "big", 100, "MiB of the message one RETR fetches")
	flag.IntVar(&o.many, "many", 100_000, "messages of the large maildrop")
	flag.StringVar(&only, "only", "mix,retr,idle,many", "figures to measure")
	flag.StringVar(&o.pop3d, "pop3d", "", "a built pop3d (default: go build ./cmd/pop3d)")
	flag.StringVar(&o.dovecot, "dovecot", "", `the dovecot binary (default: found on PATH; "off" skips Dovecot)`)
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary site after the run")
	flag.Parse()
	for _, f := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fatalf("--concurrency %q: want positive numbers separated by commas", conc)
		}
		o.conc = append(o.conc, n)
	}
	o.only = map[string]bool{}
	for _, f := range strings.Split(only, ",") {
		o.only[strings.TrimSpace(f)] = true
	}
	if !o.only["idle"] {
		o.idle = 0
	}
	if !o.only["retr"] {
		o.bigMB = 0
	}
	if !o.only["many"] {
		o.many = 0
	}
	raiseFileLimit()
	if err := run(o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "pop3bench: "+format+"\n", a...)
	os.Exit(1)
}

// raiseFileLimit lifts the descriptor limit to its hard maximum, for the
// servers (which inherit it) and the clients of the idle figure.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func floorMain(args []string) {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	mail := fs.String("mail", "", "mail root")
	_ = fs.Parse(args)
	drops, err := loadFloor(*mail)
	if err != nil {
		fatalf("floor: %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatalf("floor: %v", err)
	}
	fatalf("floor: %v", serveFloor(ln, drops))
}

// results holds every figure of every server: figure → server → the
// repetitions' values.
type results map[string]map[string][]float64

func (r results) add(fig, srv string, v float64) {
	if r[fig] == nil {
		r[fig] = map[string][]float64{}
	}
	r[fig][srv] = append(r[fig][srv], v)
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "pop3bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "site kept in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if o.pop3d == "" {
		o.pop3d = filepath.Join(dir, "bin", "pop3d")
		out, err := exec.Command("go", "build", "-o", o.pop3d, "github.com/pop3kit/pop3kit/cmd/pop3d").CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build ./cmd/pop3d: %v\n%s", err, out)
		}
	}
	if o.dovecot == "" {
		if p, err := exec.LookPath("dovecot"); err == nil {
			o.dovecot = p
		} else if _, err := os.Stat("/usr/sbin/dovecot"); err == nil {
			o.dovecot = "/usr/sbin/dovecot"
		} else {
			o.dovecot = "off"
			fmt.Fprintln(os.Stderr, "Dovecot is not installed (Debian: apt-get install dovecot-pop3d): measured without it")
		}
	}
	servers := []string{"floor", "pop3d"}
	if o.dovecot != "off" {
		servers = append(servers, "dovecot")
	}
	res := results{}
	for _, name := range servers {
		fmt.Fprintf(os.Stderr, "== %s: building its site\n", name)
		st, err := newSite(filepath.Join(dir, name), o)
		if err != nil {
			return err
		}
		if err := measure(name, st, o, res); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	report(o, servers, res)
	return nil
}

// startServer starts the named server on st.
func startServer(name string, st *site, o options) (*server, error) {
	switch name {
	case "floor":
		return startFloor(st)
	case "pop3d":
		return startPop3d(o.pop3d, st, o)
	}
	return startDovecot(o.dovecot, st, o)
}

func measure(name string, st *site, o options, res results) error {
	s, err := startServer(name, st, o)
	if err != nil {
		return err
	}
	defer s.stop()
	// The idle sessions first, on a fresh server: what they cost is not
	// blurred by the heap the other figures leave behind.
	if o.idle > 0 {
		fmt.Fprintf(os.Stderr, "== %s: %d idle sessions\n", name, o.idle)
		r, err := runIdle(s, st)
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		if r.errors > 0 {
			fmt.Fprintf(os.Stderr, "   %d idle sessions failed; the first: %v\n", r.errors, r.firstErr)
		}
		res.add(fmt.Sprintf("memory per idle session (KiB), %d held", o.idle), name, r.pssPerKB)
		res.add("descriptors per idle session", name, r.fdsPer)
		res.add(fmt.Sprintf("idle sessions that failed, of %d", o.idle), name, float64(r.errors))
	}
	if o.many > 0 {
		fmt.Fprintf(os.Stderr, "== %s: a maildrop of %d messages\n", name, o.many)
		m, err := runMany(s)
		if err != nil {
			return fmt.Errorf("many: %w", err)
		}
		res.add("many: first login to STAT (ms)", name, float64(m.first.Microseconds())/1000)
		res.add("many: second login to STAT (ms)", name, float64(m.second.Microseconds())/1000)
		res.add("many: later login to STAT (ms)", name, float64(m.later.Microseconds())/1000)
	}
	if o.only["mix"] {
		fmt.Fprintf(os.Stderr, "== %s: warming %d maildrops\n", name, len(st.users))
		if err := warm(s, st.users, 8); err != nil {
			return fmt.Errorf("warm: %w", err)
		}
		for _, c := range o.conc {
			for rep := range o.repeat {
				fmt.Fprintf(os.Stderr, "== %s: session mix, %d concurrent, run %d\n", name, c, rep+1)
				m, err := runMix(s, st, c, o.duration)
				if err != nil {
					return err
				}
				if m.errors > 0 {
					fmt.Fprintf(os.Stderr, "   %d sessions failed; the first: %v\n", m.errors, m.firstErr)
				}
				res.add(fmt.Sprintf("sessions/s, %d concurrent", c), name, m.perSecond)
				res.add(fmt.Sprintf("server CPU per session (µs), %d concurrent", c), name, m.cpuPerSessUS)
				res.add(fmt.Sprintf("login p99 (ms), %d concurrent", c), name, m.loginP99MS)
				res.add(fmt.Sprintf("failed sessions, %d concurrent", c), name, float64(m.errors))
			}
		}
	}
	if o.bigMB > 0 {
		for rep := range o.repeat {
			fmt.Fprintf(os.Stderr, "== %s: RETR of %d MiB, run %d\n", name, o.bigMB, rep+1)
			r, err := runBigRetr(s)
			if err != nil {
				return fmt.Errorf("retr: %w", err)
			}
			res.add(fmt.Sprintf("RETR of %d MiB (MB/s)", o.bigMB), name, r.mbPerS)
			res.add("server CPU per MB of RETR (ms)", name, r.cpuPerM)
		}
	}
	return nil
}

// median returns the median of vs and their spread (min, max).
func median(vs []float64) (med, lo, hi float64) {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0, 0, 0
	}
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// report prints the figures as a Markdown table: each server's median
// (spread), and pop3d's ratio to the floor and to Dovecot.
func report(o options, servers []string, res results) {
	host, _ := os.Hostname()
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	fmt.Printf("pop3bench, %s, %s: %d CPUs, Linux %s, %s; %d repetitions, the median (min–max)\n\n",
		time.Now().UTC().Format("2006-01-02"), host, numCPU(), cstr(uts.Release[:]), runtime.Version(), o.repeat)
	fmt.Print("| figure |")
	for _, s := range servers {
		fmt.Printf(" %s |", s)
	}
	fmt.Print(" pop3d / floor |")
	if slices.Contains(servers, "dovecot") {
		fmt.Print(" pop3d / Dovecot |")
	}
	fmt.Println()
	fmt.Print("|---|")
	for range servers {
		fmt.Print("---|")
	}
	fmt.Print("---|")
	if slices.Contains(servers, "dovecot") {
		fmt.Print("---|")
	}
	fmt.Println()
	var figs []string
	for f := range res {
		figs = append(figs, f)
	}
	slices.SortFunc(figs, func(a, b string) int { return figOrder(a) - figOrder(b) })
	for _, f := range figs {
		fmt.Printf("| %s |", f)
		meds := map[string]float64{}
		for _, s := range servers {
			vs := res[f][s]
			if len(vs) == 0 {
				fmt.Print(" — |")
				continue
			}
			m, lo, hi := median(vs)
			meds[s] = m
			if len(vs) > 1 && lo != hi {
				fmt.Printf(" %s (%s–%s) |", num(m), num(lo), num(hi))
			} else {
				fmt.Printf(" %s |", num(m))
			}
		}
		ratio := func(a, b string) string {
			if meds[b] == 0 {
				return "—"
			}
			return num(meds[a]/meds[b]) + "×"
		}
		fmt.Printf(" %s |", ratio("pop3d", "floor"))
		if slices.Contains(servers, "dovecot") {
			fmt.Printf(" %s |", ratio("pop3d", "dovecot"))
		}
		fmt.Println()
	}
}

// figOrder keeps the table in the order the figures are described.
func figOrder(f string) int {
	for i, p := range []string{"sessions/s", "server CPU per session", "login p99", "failed sessions", "RETR", "server CPU per MB",
		"memory per idle", "descriptors", "idle sessions that failed", "many: first", "many: second", "many: later"} {
		if strings.HasPrefix(f, p) {
			n := 0
			if i < 4 {
				fields := strings.Fields(f[strings.LastIndexByte(f, ',')+1:])
				n, _ = strconv.Atoi(fields[0])
			}
			return i*100000 + n
		}
	}
	return 1 << 30
}

func cstr(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}
