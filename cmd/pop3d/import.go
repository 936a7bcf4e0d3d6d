package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/maildir"
	"github.com/pop3kit/pop3kit/server/pgstore"
)

// openStore opens the PostgreSQL store that --store (or the file's store
// key, which the flag overrides) names; nil when neither does.
func openStore(flagURL, fileURL string, log *slog.Logger) (*pgstore.Store, error) {
	url := flagURL
	if url == "" {
		url = fileURL
	}
	if url == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return pgstore.Open(ctx, url, log)
}

// useStore serves the maildrops from st and, unless a passwd-file is
// configured, the users too. A nil st changes nothing.
func useStore(c *server.Config, st *pgstore.Store) {
	if st == nil {
		return
	}
	c.Store = st
	if c.Passwd == "" {
		c.Users = st
	}
}

// importCmd is pop3d import --from maildir DIR --store URL: every user's
// Maildir under DIR (DIR/<user>/{cur,new}) into PostgreSQL, each message
// with the unique-id pop3d showed for it. Each message is committed on
// its own and remembered as imported, so an import that is interrupted
// (Ctrl-C, a lost connection) loses nothing and completes when run
// again, and a second run imports nothing.
func importCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		from   = fs.String("from", "", "what DIR is: maildir (a mail root, DIR/<user>/{cur,new})")
		store  = fs.String("store", "", "the PostgreSQL store's `URL` (postgres://…)")
		passwd = fs.String("passwd", "", "also import the users and password hashes of this passwd-`file`")
		uidl   = fs.String("uidl", "auto", "unique-ids to keep: auto (Dovecot's where the Maildir has a dovecot-uidlist, else pop3kit's decimal UIDs), decimal or dovecot")
		users  = fs.String("users", "", "comma-separated users to import (default: every user directory under DIR)")
		// Reading a Maildir keeps its UID list (the unique-ids to import
		// are the ones pop3d showed), so import writes into the tree.
		userName = fs.String("user", "", "as root: the `account` to run as, the one pop3d serves DIR as (required as root)")
		group    = fs.String("group", "", "with --user: the `group` to run as")
	)
	var dirs []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		dirs, rest = append(dirs, fs.Arg(0)), fs.Args()[1:]
	}
	switch {
	case *from != "maildir":
		return errors.New("usage: pop3d import --from maildir DIR --store postgres://… [--passwd FILE] [--user ACCOUNT [--group GROUP]]")
	case len(dirs) != 1:
		return errors.New("import: give one mail root DIR")
	case *store == "":
		return errors.New("import: --store postgres://… is required")
	case *uidl != "auto" && *uidl != "decimal" && *uidl != "dovecot":
		return fmt.Errorf("import: --uidl %q: want auto, decimal or dovecot", *uidl)
	}
	dir := dirs[0]
	// What only root may reach is opened before the switch of accounts,
	// read-only: the passwd-file, the mail root's handle and its list of
	// users. Nothing in a Maildir is opened until after it.
	var pw *os.File
	if *passwd != "" {
		f, err := os.Open(*passwd)
		if err != nil {
			return err
		}
		defer f.Close()
		pw = f
	}
	names, err := maildirUsers(dir, *users)
	if err != nil {
		return err
	}
	for _, n := range names {
		if w := unreachableName(server.DefaultConfig(), n); w != "" {
			fmt.Fprintln(stderr, "import: warning: the default profile:", w)
		}
	}
	root, err := maildir.OpenMailRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := asMailUser("import", *userName, *group); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := pgstore.Open(ctx, *store, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if pw != nil {
		n, err := importPasswd(ctx, st, pw, *passwd)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "import: %d users from %s\n", n, *passwd)
	}
	var imported, seen int
	var failed []string
	for k, user := range names {
		dovecot := *uidl == "dovecot"
		if *uidl == "auto" {
			_, err := os.Lstat(filepath.Join(dir, user, "dovecot-uidlist"))
			dovecot = err == nil
		}
		var last time.Time
		progress := func(done, total int) {
			if now := time.Now(); done == total || now.Sub(last) > 200*time.Millisecond {
				last = now
				fmt.Fprintf(stderr, "\rimport: user %d/%d %s: %d/%d messages", k+1, len(names), user, done, total)
			}
		}
		n, total, err := st.ImportMaildir(ctx, root, user, pgstore.ImportOptions{DovecotUIDs: dovecot, Progress: progress})
		imported, seen = imported+n, seen+total
		if total > 0 {
			fmt.Fprintln(stderr)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("import interrupted after %d messages; run it again to complete it (nothing is imported twice)", imported)
		}
		if err != nil {
			fmt.Fprintf(stderr, "import: %s: %v\n", user, err)
			failed = append(failed, user)
		}
	}
	fmt.Fprintf(stdout, "import: %d users, %d messages, %d imported now, %d imported before\n", len(names), seen, imported, seen-imported)
	if len(failed) > 0 {
		return fmt.Errorf("import: %d users not complete (%s): fix the cause and run it again", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// maildirUsers lists the users to import: only, or every directory under
// dir whose name is a valid user name and holds cur/ or new/.
func maildirUsers(dir, only string) ([]string, error) {
	if only != "" {
		var out []string
		for _, u := range strings.Split(only, ",") {
			if u = strings.TrimSpace(u); u != "" {
				out = append(out, u)
			}
		}
		return out, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, ".") || account.CheckUserName(name) != nil {
			continue
		}
		for _, sub := range []string{"cur", "new"} {
			if st, err := os.Lstat(filepath.Join(dir, name, sub)); err == nil && st.IsDir() {
				out = append(out, name)
				break
			}
		}
	}
	return out, nil
}

// importPasswd copies a passwd-file's users and password fields into the
// users table, checking each line as pop3d reads it.
func importPasswd(ctx context.Context, st *pgstore.Store, f io.Reader, path string) (int, error) {
	sc := bufio.NewScanner(f)
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if _, err := account.ParseAccount(text); err != nil {
			return n, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		parts := strings.SplitN(text, ":", 3)
		if err := st.SetPassword(ctx, parts[0], parts[1]); err != nil {
			return n, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		n++
	}
	return n, sc.Err()
}
