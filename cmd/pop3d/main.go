// Command pop3d is pop3kit's POP3 server.
//
//	pop3d serve [flags]            serve POP3 (with no flags: a demo on 127.0.0.1:1110)
//	pop3d check --config FILE      check a config file, print what differs from the defaults
//	pop3d profiles [--diff A B]    print the variations of every profile, or where A and B differ
//	pop3d who, pop3d kick USER     list or end sessions over --admin-socket
//	pop3d user add NAME [flags]    print (or append) a hashed passwd-file line
//
// Run "pop3d serve -h" for the flags of serve.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/pgstore"
)

func main() {
	err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return // the help was asked for and printed: not a failure
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pop3d:", err)
		os.Exit(2)
	}
}

const usage = `usage:
  pop3d serve [flags]           serve POP3 (no flags: a demo on 127.0.0.1:1110)
  pop3d check --config FILE     check a config file; print what differs from the defaults
  pop3d profiles                print every variation with each profile's value
  pop3d profiles --diff A B     print the variations on which profiles A and B differ
  pop3d expire [--older-than 60d] [--dry-run] [--config F | --mail-root D] [--user U]
                                remove messages older than the retention
                                (as root: as --user, or the config's user)
  pop3d who --admin-socket P    list the sessions of a running pop3d
  pop3d kick USER --admin-socket P   end USER's sessions (nothing is removed)
  pop3d user add NAME [flags]   print a hashed passwd-file line (password on stdin)
  pop3d import --from maildir DIR --store postgres://… [--passwd FILE] [--user U]
                                import every user's Maildir into PostgreSQL, keeping UIDLs
                                (as root: as --user)
  pop3d --version               print the version, VCS revision and Go version
  pop3d settings --markdown     every setting: flag, config key, meaning, default
  pop3d man                     the pop3d(8) manual page, in troff
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr, nil)
	case "profiles":
		if len(args) == 4 && args[1] == "--diff" {
			return profilesDiff(args[2], args[3], stdout)
		}
		if len(args) > 1 {
			return errors.New("usage: pop3d profiles [--diff PROFILE PROFILE]")
		}
		return profiles(stdout)
	case "check":
		return check(args[1:], stdout)
	case "expire":
		return expire(args[1:], stdout)
	case "who", "kick":
		return adminCommand(args[0], args[1:], stdout)
	case "import":
		return importCmd(args[1:], stdout, stderr)
	case "user":
		if len(args) < 2 || args[1] != "add" {
			return errors.New("usage: pop3d user add NAME [--scheme SCHEME] [--passwd FILE]")
		}
		return userAdd(args[2:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, server.BuildInfo())
		return nil
	case "settings":
		if len(args) != 2 || args[1] != "--markdown" {
			return errors.New("usage: pop3d settings --markdown")
		}
		fmt.Fprint(stdout, settingsMarkdown())
		return nil
	case "man":
		fmt.Fprint(stdout, manPage())
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// serve runs the server until SIGINT or SIGTERM (or until ready, in
// tests, is told the addresses and stop is closed).
func serve(args []string, stdout, stderr io.Writer, hooks *testHooks) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfgFile  = fs.String("config", "", "TOML config `file` (flags override it)")
		storeURL = fs.String("store", "", "PostgreSQL store `URL` (postgres://…): mailboxes, and users unless --passwd is given, in PostgreSQL instead of --mail-root (see pop3d import)")
		demoDir  = fs.String("demo-dir", "pop3kit-demo", "where the demo mail root and passwd-file live (used when no --mail-root, --passwd or --config is given)")
	)
	// Every other flag is a setting of the config file (settings.go).
	flags := registerSettings(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	cfg := server.DefaultConfig()
	var fileStore string // the file's store key
	if *cfgFile != "" {
		var err error
		if fileStore, err = loadConfigFileStore(*cfgFile, &cfg); err != nil {
			return err
		}
	}
	demo := *cfgFile == "" && !given["mail-root"] && !given["passwd"] && *storeURL == ""
	// demoAs is the account the demo serves as when started as root
	// without --user: pop3d never serves mail as root, not even the demo.
	var demoAs *serviceAccount
	if demo && os.Geteuid() == 0 && !given["user"] && (hooks == nil || !hooks.keepPrivileges) {
		var err error
		if demoAs, err = demoAccount(); err != nil {
			return fmt.Errorf("demo: started as root, and %v", err)
		}
	}
	applyDemo := func(*server.Config) {}
	var demoLine func(say func(text, msg string, attrs ...any))
	if demo {
		d, err := setUpDemo(*demoDir, demoAs)
		if err != nil {
			return fmt.Errorf("demo: %v", err)
		}
		applyDemo = func(cfg *server.Config) {
			cfg.MailRoot, cfg.Passwd, cfg.TLSCert, cfg.TLSKey = d.root, d.passwd, d.cert, d.key
			if !given["listen"] && !given["listen-tls"] {
				cfg.Listen, cfg.ListenTLS = []string{"127.0.0.1:1110"}, []string{"127.0.0.1:1995"}
			}
			if !given["trusted-networks"] && len(cfg.TrustedNetworks) == 0 {
				// The demo listens on loopback for someone trying it out on
				// this host: trust it, so that USER/PASS works without TLS.
				cfg.TrustedNetworks = []string{"127.0.0.0/8", "::1"}
			}
		}
		demoLine = func(say func(text, msg string, attrs ...any)) {
			say(fmt.Sprintf("pop3d demo: user %q, password %q (mail root %s, passwd-file %s)", d.user, d.password, d.root, d.passwd),
				"pop3d demo", "user", d.user, "password", d.password, "mail_root", d.root, "passwd", d.passwd)
		}
	}
	// applyFlags puts the flags given over cfg (the file's, or the
	// defaults): at start, and again at every SIGHUP over the file read
	// again.
	applyFlags := flags.apply
	applyDemo(&cfg)
	if err := applyFlags(&cfg); err != nil {
		return err
	}
	// Socket activation (systemd): the listeners are passed in, and
	// --listen and --listen-tls are not opened.
	sockets, err := socketActivation()
	if err != nil {
		return err
	}
	if len(sockets) > 0 {
		cfg.Listen, cfg.ListenTLS, cfg.Activated = nil, nil, true
	}
	var pg *pgstore.Store // --store: opened once, kept across SIGHUP
	// loadConfig builds the configuration again, for SIGHUP: the file
	// read again, the demo's settings and the flags over it.
	buildConfig := func(readFile func(c *server.Config) error) (server.Config, error) {
		c := server.DefaultConfig()
		if *cfgFile != "" {
			if err := readFile(&c); err != nil {
				return c, err
			}
		}
		applyDemo(&c)
		err := applyFlags(&c)
		useStore(&c, pg)
		if len(sockets) > 0 {
			c.Listen, c.ListenTLS, c.Activated = cfg.Listen, cfg.ListenTLS, true
		}
		return c, err
	}
	loadConfig := func() (server.Config, error) {
		return buildConfig(func(c *server.Config) error { return loadConfigFile(*cfgFile, c) })
	}
	// configFrom is loadConfig on the file's content as already read.
	configFrom := func(data []byte) (server.Config, error) {
		return buildConfig(func(c *server.Config) error {
			_, err := loadConfigData(*cfgFile, data, c)
			return err
		})
	}
	if os.Getenv(confReaderEnv) == "1" {
		// This process is the privileged config reader of a pop3d that
		// gave root up (confreader.go).
		return serveConfReader(*cfgFile, configFrom)
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // cfg.Check has vetted it
	log, err := newLogger(stderr, level, cfg.LogFormat)
	if err != nil {
		return err
	}
	// say writes what pop3d tells whoever started it to stdout: a line of
	// text, or with --log-format json a JSON object like every log line,
	// so that nothing but JSON reaches a JSON log collector.
	say := func(text, msg string, attrs ...any) { fmt.Fprintln(stdout, text) }
	if cfg.LogFormat == "json" {
		out := slog.New(slog.NewJSONHandler(stdout, nil))
		say = func(_, msg string, attrs ...any) { out.Info(msg, attrs...) }
	}
	if demoLine != nil {
		demoLine(say)
	}
	if pg, err = openStore(*storeURL, fileStore, log); err != nil {
		return err
	}
	if pg != nil {
		defer pg.Close() // after the sessions end: their locks go with them
	}
	useStore(&cfg, pg)
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	// Decide before binding whether pop3d may run as it is; switch
	// accounts after binding (ports below 1024) and after New read the
	// TLS key, which only root may read.
	if demoAs != nil {
		cfg.User, cfg.Group = demoAs.name, demoAs.groupName
		log.Warn("the demo was started as root: it serves as "+demoAs.name+" instead", "user", demoAs.name, "group", demoAs.groupName)
	}
	var acct *serviceAccount
	if hooks == nil || !hooks.keepPrivileges {
		if acct, err = checkPrivileges(cfg.User, cfg.Group, demo, log); err != nil {
			return err
		}
	}
	for _, a := range sockets {
		srv.AddListener(a.ln, a.implicit)
		log.Info("socket activation", "name", a.name, "addr", a.ln.Addr().String(), "implicit_tls", a.implicit)
	}
	addrs, err := srv.Listen()
	if err != nil {
		return err
	}
	for _, a := range sockets {
		addrs = append(addrs, a.ln.Addr())
	}
	// The metrics listener and the admin socket are opened before the
	// switch of accounts too (a privileged port, a socket in /run).
	ctx, cancelAux := context.WithCancel(context.Background())
	defer cancelAux()
	pop3Addrs := addrs // the POP3 listeners only, for the "serving" line
	if cfg.Metrics != "" {
		mln, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return fmt.Errorf("--metrics: %v", err)
		}
		log.Info("metrics", "addr", mln.Addr().String())
		go serveMetrics(ctx, mln, srv, log)
		addrs = append(addrs, mln.Addr())
	}
	if cfg.AdminSocket != "" {
		aln, err := listenAdmin(cfg.AdminSocket)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		defer aln.Close()
		go serveAdmin(aln, srv, log)
	}
	if acct != nil && cfg.TLSCert != "" && !demo {
		// A reload must read the key again, which the account may not:
		// a reader stays root for it.
		reader, err := startConfReader(args)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		defer reader.close()
		loadConfig = func() (server.Config, error) {
			rep, err := reader.fetch()
			if err != nil {
				return server.Config{}, err
			}
			c, err := configFrom(rep.ConfigFile)
			if rep.Cert != nil {
				c.TLSPEM = &server.PEMPair{Cert: rep.Cert, Key: rep.Key}
			}
			return c, err
		}
	}
	if acct != nil {
		if err := dropPrivileges(acct); err != nil {
			_ = srv.Shutdown(context.Background())
			return fmt.Errorf("switching to --user %s: %v", acct.name, err)
		}
		log.Info("serving as", "user", acct.name, "uid", acct.uid, "group", acct.groupName, "gid", acct.gid)
		if err := checkPasswdReadable(cfg.Passwd, acct, srv.CheckPasswd); err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
	}
	for _, a := range pop3Addrs {
		log.Info("listening", "addr", a.String())
	}
	if a := srv.LMTPAddr(); a != nil {
		log.Info("listening for LMTP", "addr", a.String())
	}
	listening := make([]string, len(pop3Addrs))
	for i, a := range pop3Addrs {
		listening[i] = a.String()
	}
	say(fmt.Sprintf("pop3d: serving POP3 on %v (profile %s)", pop3Addrs, cfg.Profile), "serving POP3", "addrs", listening, "profile", cfg.Profile)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	var testStop <-chan struct{}
	if hooks != nil {
		hooks.ready(addrs)
		testStop = hooks.stop
	}
	for {
		select {
		case err := <-done:
			return err
		case s := <-sig:
			switch s {
			case syscall.SIGHUP:
				reload(srv, loadConfig, log)
				continue
			case syscall.SIGTERM:
				return stopServer(srv, log, time.Duration(cfg.DrainTimeout))
			}
		case <-testStop:
		}
		return stopServer(srv, log, 0)
	}
}

// reload applies the configuration read again (SIGHUP) to the sessions
// that start from now on; a bad one is logged and changes nothing.
func reload(srv *server.Server, load func() (server.Config, error), log *slog.Logger) {
	cfg, err := load()
	if err == nil {
		var restart []string
		if restart, err = srv.Reload(cfg); err == nil && len(restart) > 0 {
			log.Warn("reload: these settings change only with a restart", "settings", strings.Join(restart, ", "))
		}
	}
	if err != nil {
		log.Error("reload refused: the configuration in force is kept", "err", err)
	}
}

// stopServer ends pop3d: with drain > 0 (SIGTERM) it stops accepting and
// lets the sessions finish for up to drain, then cuts the rest off; with
// 0 (SIGINT) it cuts them off at once. Nothing is removed for a session
// cut off: only QUIT removes.
func stopServer(srv *server.Server, log *slog.Logger, drain time.Duration) error {
	var err error
	if drain > 0 {
		log.Info("draining: no new connections; sessions may finish", "for", drain.String())
		ctx, cancel := context.WithTimeout(context.Background(), drain)
		err = srv.Drain(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			log.Info("drain deadline reached: the remaining sessions were cut off, nothing removed for them")
			err = nil
		}
	} else {
		log.Info("shutting down: sessions end without removing anything")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Shutdown(ctx)
		cancel()
	}
	st := srv.Stats()
	log.Info("stopped", "sessions", st.Sessions, "logins", st.Logins, "login_failures", st.LoginFailures)
	return err
}

// profiles prints every variation with each profile's value.
func profiles(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VARIATION\tLAYER\t%s\tCLAUSES\n", strings.Join(pop3gen.ProfileNames, "\t"))
	for _, v := range pop3gen.VariationTable {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, v.Layer, strings.Join(v.Profiles, "\t"), strings.Join(v.Clauses, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ndefault profile: %s (aliases: rfc = rfc1939, exchange = exchange2010)\nchange one with: pop3d serve --set NAME=VALUE\n", pop3gen.DefaultProfile)
	fmt.Fprintf(w, "layer: what honours it — the core's lexer, session or runtime, or the store (pop3d's Maildir store and logins)\n")
	return nil
}

// userAdd prints a passwd-file line for NAME, with the password read from
// the first line of stdin, or appends it to --passwd.
func userAdd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	scheme := fs.String("scheme", "SHA512-CRYPT", "password scheme: SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2ID, SCRAM-SHA-256, CRAM-MD5 or PLAIN")
	file := fs.String("passwd", "", "append the line to this passwd-`file` instead of printing it")
	config := fs.String("config", "", "the server's config `file`, for how its profile reads user names (default: the default profile)")
	// Accept the name before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" {
		return errors.New("usage: pop3d user add NAME [--scheme SCHEME] [--passwd FILE] < password")
	}
	if err := account.CheckUserName(name); err != nil {
		return err
	}
	cfg := server.DefaultConfig()
	if *config != "" {
		if err := loadConfigFile(*config, &cfg); err != nil {
			return err
		}
	}
	if w := unreachableName(cfg, name); w != "" {
		fmt.Fprintln(stderr, "pop3d user add: warning:", w)
	}
	pw, err := readPassword(stdin)
	if err != nil {
		return err
	}
	field, err := account.HashPassword(*scheme, pw)
	if err != nil {
		return err
	}
	line := name + ":" + field + "\n"
	if *file == "" {
		_, err = io.WriteString(stdout, line)
		return err
	}
	if p, err := account.LoadPasswd(*file); err == nil {
		if _, ok, _ := p.Lookup(name); ok {
			return fmt.Errorf("%s: user %q exists", *file, name)
		}
	} else if !os.IsNotExist(errors.Unwrap(err)) && !os.IsNotExist(err) {
		return err
	}
	f, err := os.OpenFile(*file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, line); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %s to %s\n", name, *file)
	return nil
}

// readPassword reads the first line of r.
func readPassword(r io.Reader) (string, error) {
	buf := make([]byte, 0, 256)
	one := make([]byte, 1)
	for len(buf) < 1024 {
		n, err := r.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				break
			}
			buf = append(buf, one[0])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	pw := strings.TrimSuffix(string(buf), "\r")
	if pw == "" {
		return "", errors.New("no password on standard input")
	}
	return pw, nil
}

// testHooks let tests run serve in-process.
type testHooks struct {
	ready func([]net.Addr)
	stop  chan struct{}
	// keepPrivileges skips the root check and the switch of accounts:
	// in-process tests run as root in CI and cannot give root up without
	// taking it from the rest of the test binary. privileges_test.go
	// runs pop3d as its own process for that.
	keepPrivileges bool
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// unreachableName says why an account named name could never log in under
// cfg's profile, or "": where UserNameCase is lower (the Exchange
// profiles, the default) every login's name is lower-cased before the
// lookup, so an account with an upper-case letter is never found.
func unreachableName(cfg server.Config, name string) string {
	v, err := cfg.Variations()
	if err != nil || v.UserNameCase != pop3.UserNameCaseLower || strings.ToLower(name) == name {
		return ""
	}
	return fmt.Sprintf("%q has upper-case letters, but profile %s lower-cases every login's name (UserNameCase=lower): "+
		"it could never log in; name it %q, or serve with --set UserNameCase=keep", name, cfg.Profile, strings.ToLower(name))
}
