package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/maildir"
)

// newLogger returns pop3d's logger: slog's text handler (key=value, as
// Dovecot's log lines are grepped) or its JSON handler, one object a line.
func newLogger(w io.Writer, level slog.Level, format string) (*slog.Logger, error) {
	o := &slog.HandlerOptions{Level: level}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// serveMetrics serves srv's metrics over HTTP on ln until ctx ends.
func serveMetrics(ctx context.Context, ln net.Listener, srv *server.Server, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", srv.MetricsHandler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(c)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics endpoint stopped", "err", err)
	}
}

// listenAdmin opens the admin socket, mode 0600: only its owner (root,
// or the account pop3d runs as) may list and kick sessions. A socket
// left by an earlier pop3d is replaced; anything else at the path is not.
func listenAdmin(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("admin socket %s: something other than a socket is there", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin socket %s: another pop3d answers there", path)
		}
		_ = os.Remove(path)
	}
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, err
	}
	return ln, os.Chmod(path, 0o600)
}

// serveAdmin answers the admin socket's commands, one a connection:
//
//	who          → USER REMOTE SINCE IN OUT, a line a session, then "."
//	kick USER    → "kicked N"
func serveAdmin(ln net.Listener, srv *server.Server, log *slog.Logger) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(io.LimitReader(c, 512)).ReadString('\n')
			if err != nil {
				return
			}
			cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
			switch cmd {
			case "who":
				for _, s := range srv.Who() {
					user := s.User
					if user == "" {
						user = "-"
					}
					fmt.Fprintf(c, "%s %s %s %d %d\n", user, s.Remote, s.Start.UTC().Format(time.RFC3339), s.In, s.Out)
				}
				fmt.Fprintln(c, ".")
			case "kick":
				if arg == "" {
					fmt.Fprintln(c, "error: kick needs a user name")
					return
				}
				n := srv.Kick(arg)
				log.Info("kicked by the administrator", "user", arg, "sessions", n)
				fmt.Fprintf(c, "kicked %d\n", n)
			default:
				fmt.Fprintf(c, "error: unknown command %q (who, kick USER)\n", cmd)
			}
		}()
	}
}

// adminCommand runs pop3d who or pop3d kick USER against a running
// pop3d's admin socket and prints its answer.
func adminCommand(name string, args []string, stdout io.Writer) error {
	var sock string
	var rest []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--admin-socket" && i+1 < len(args):
			sock = args[i+1]
			i++
		case strings.HasPrefix(args[i], "--admin-socket="):
			sock = strings.TrimPrefix(args[i], "--admin-socket=")
		default:
			rest = append(rest, args[i])
		}
	}
	if sock == "" {
		return fmt.Errorf("%s: give --admin-socket PATH (pop3d serve's --admin-socket)", name)
	}
	line := name
	if name == "kick" {
		if len(rest) != 1 {
			return errors.New("usage: pop3d kick USER --admin-socket PATH")
		}
		line += " " + rest[0]
	} else if len(rest) > 0 {
		return fmt.Errorf("who: unexpected argument %q", rest[0])
	}
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return fmt.Errorf("%s: %v (is pop3d serving with --admin-socket %s?)", name, err, sock)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		return err
	}
	sc := bufio.NewScanner(c)
	if name == "who" {
		fmt.Fprintln(stdout, "USER\tREMOTE\tSINCE\tIN\tOUT")
	}
	for sc.Scan() {
		l := sc.Text()
		if l == "." {
			break
		}
		if strings.HasPrefix(l, "error: ") {
			return errors.New(strings.TrimPrefix(l, "error: "))
		}
		fmt.Fprintln(stdout, strings.ReplaceAll(l, " ", "\t"))
	}
	return sc.Err()
}

// check validates a configuration file as serve would read it and prints
// the settings that differ from the defaults, as TOML (like doveconf -n),
// then the variations in force where they differ from the profile's.
func check(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("config", "", "TOML config `file` to check")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: pop3d check --config FILE")
			return err
		}
		return fmt.Errorf("check: %v (usage: pop3d check --config FILE)", err)
	}
	if *file == "" {
		return errors.New("usage: pop3d check --config FILE")
	}
	cfg := server.DefaultConfig()
	if err := loadConfigFile(*file, &cfg); err != nil {
		return err
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	var problems []error
	if err := cfg.Check(); err != nil {
		problems = append(problems, fmt.Errorf("%s: %v", *file, err))
	}
	if err := checkDeployment(cfg, *file, data); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	def := server.DefaultConfig()
	fmt.Fprintf(stdout, "# %s: valid; settings that differ from the defaults\n", *file)
	cv, dv := reflect.ValueOf(cfg), reflect.ValueOf(def)
	for i := 0; i < cv.NumField(); i++ {
		f := cv.Type().Field(i)
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" || tag == "set" || !f.IsExported() {
			continue
		}
		if reflect.DeepEqual(cv.Field(i).Interface(), dv.Field(i).Interface()) {
			continue
		}
		fmt.Fprintf(stdout, "%s = %s\n", tag, tomlValue(cv.Field(i).Interface()))
	}
	v, err := cfg.Variations()
	if err != nil {
		return err
	}
	base, err := pop3gen.Profile(cfg.Profile)
	if err != nil {
		return err
	}
	var changed []string
	for _, info := range pop3gen.VariationTable {
		now, was := variationValue(&v, info.Name), variationValue(&base, info.Name)
		if now != was {
			changed = append(changed, fmt.Sprintf("%s = %q  # profile %s: %s", info.Name, now, cfg.Profile, was))
		}
	}
	if len(changed) > 0 {
		fmt.Fprintln(stdout, "[set]")
		for _, c := range changed {
			fmt.Fprintln(stdout, c)
		}
	}
	return nil
}

// tomlValue writes v as a TOML value.
func tomlValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case fmt.Stringer:
		return strconv.Quote(x.String())
	}
	return fmt.Sprint(v)
}

// variationValue returns the value of the named variation in v, as text.
func variationValue(v *pop3gen.Variations, name string) string {
	f := reflect.ValueOf(v).Elem().FieldByName(name)
	if !f.IsValid() {
		return ""
	}
	if s, ok := f.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(f.Interface())
}

// profilesDiff prints the variations on which two profiles differ.
func profilesDiff(a, b string, w io.Writer) error {
	va, err := pop3gen.Profile(a)
	if err != nil {
		return err
	}
	vb, err := pop3gen.Profile(b)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VARIATION\t%s\t%s\tCLAUSES\n", a, b)
	n := 0
	for _, info := range pop3gen.VariationTable {
		x, y := variationValue(&va, info.Name), variationValue(&vb, info.Name)
		if x != y {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", info.Name, x, y, strings.Join(info.Clauses, " "))
			n++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d of %d variations differ\n", n, len(pop3gen.VariationTable))
	return nil
}

// expire runs the retention sweep (MS-STANXPOP3 E0005): every message
// older than --older-than (default: the config's retention) is removed
// from every Maildir under the mail root; --dry-run only counts them.
// Maildrops a session holds are left for the next run. Run it from cron
// or a systemd timer.
func expire(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("expire", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("config", "", "TOML config `file` (its mail_root and retention)")
	root := fs.String("mail-root", "", "mail root `dir` (overrides the config's)")
	older := fs.String("older-than", "", "remove messages older than this, e.g. 60d (overrides the config's retention)")
	dry := fs.Bool("dry-run", false, "count what would be removed; change nothing")
	userName := fs.String("user", "", "as root: the `account` to run as, the one pop3d serves as (overrides the config's user)")
	group := fs.String("group", "", "with --user: the `group` to run as (overrides the config's group)")
	if err := fs.Parse(args); err != nil {
		const use = "usage: pop3d expire [--config FILE] [--mail-root DIR] [--older-than 60d] [--dry-run] [--user ACCOUNT [--group GROUP]]"
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, use)
			return err
		}
		return fmt.Errorf("expire: %v (%s)", err, use)
	}
	cfg := server.DefaultConfig()
	if *file != "" {
		if err := loadConfigFile(*file, &cfg); err != nil {
			return err
		}
	}
	if *root != "" {
		cfg.MailRoot = *root
	}
	if *userName != "" {
		cfg.User, cfg.Group = *userName, *group
	} else if *group != "" {
		cfg.Group = *group
	}
	if *older != "" {
		if err := cfg.Retention.UnmarshalText([]byte(*older)); err != nil {
			return fmt.Errorf("--older-than: %v", err)
		}
	}
	if cfg.MailRoot == "" || cfg.Retention <= 0 {
		return errors.New("expire: needs a mail root and an age (--mail-root, --older-than, or a config with mail_root and retention)")
	}
	// The mail root's handle is opened first, as serve opens it: a mail
	// root under a directory only root may search is still reached.
	mr, err := maildir.OpenMailRoot(cfg.MailRoot)
	if err != nil {
		return err
	}
	defer mr.Close()
	if err := asMailUser("expire", cfg.User, cfg.Group); err != nil {
		return err
	}
	rep, err := mr.Expire(context.Background(), time.Duration(cfg.Retention), time.Now(), *dry, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	verb := "removed"
	if *dry {
		verb = "would remove"
	}
	fmt.Fprintf(stdout, "pop3d expire: %s %d messages (%s) from %d maildrops; %d left for the next run\n",
		verb, rep.Removed, server.Bytes(rep.Octets).String(), rep.Users, rep.Skipped)
	return err
}
