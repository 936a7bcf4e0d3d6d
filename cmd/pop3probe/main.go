// Command pop3probe tells a live POP3 server's dialect, variation by
// variation of pop3kit's table (package probe):
//
//	pop3probe [--tls] [--user NAME --pass SECRET] [--json] HOST:PORT
//
// Probes that need a login use the test account given; none removes a
// message. The report says, for each variation, the value seen and what
// showed it, or why it could not be told.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pop3kit/pop3kit/probe"
)

func main() {
	var o probe.Options
	useTLS := flag.Bool("tls", false, "implicit TLS (port 995)")
	insecure := flag.Bool("insecure", false, "with --tls, do not verify the server's certificate")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	flag.StringVar(&o.User, "user", "", "a test account's name, for the probes that log in")
	flag.StringVar(&o.Pass, "pass", "", "the test account's password")
	flag.DurationVar(&o.Timeout, "timeout", 15*time.Second, "bound of each reply")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pop3probe [--tls] [--user NAME --pass SECRET] [--json] HOST:PORT")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	o.Addr = flag.Arg(0)
	if *useTLS {
		host, _, _ := cutPort(o.Addr)
		o.TLS = &tls.Config{ServerName: host, InsecureSkipVerify: *insecure}
	}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		o.Progress = func(what string) { fmt.Fprintf(os.Stderr, "\r\033[Kprobing %s…", what) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := probe.Run(ctx, o)
	if o.Progress != nil {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pop3probe:", err)
		if rep == nil {
			os.Exit(1)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(os.Stderr, "pop3probe:", err)
			os.Exit(1)
		}
		return
	}
	// What the server sent is printed with every octet that is not a
	// printable character escaped: a hostile server's escape sequences
	// never reach the terminal.
	fmt.Printf("%s\ngreeting: %s\n", printable(rep.Addr), printable(rep.Greeting))
	if len(rep.Capabilities) > 0 {
		fmt.Printf("CAPA: %s\n", printable(strings.Join(rep.Capabilities, " | ")))
	}
	if len(rep.Codes) > 0 {
		fmt.Printf("response codes seen: %s\n", printable(strings.Join(rep.Codes, " ")))
	}
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "variation\tvalue\thow")
	for _, ob := range rep.Variations {
		v := ob.Value
		if !ob.Told {
			v = "?"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", ob.Name, printable(v), printable(ob.How))
	}
	w.Flush()
}

// printable returns s with every rune that is not printable (control
// characters, C1 controls, invalid UTF-8) written as a Go escape.
func printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

func cutPort(addr string) (host, port string, ok bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], true
		}
	}
	return addr, "", false
}
