// Command memserver is a small POP3 server that reuses pop3kit's generated
// core (package pop3gen) with a store of its own: mailboxes held in memory.
// It shows what another server writes on top of pop3gen — the logins of a
// Handler, and a Maildrop of values they return — and nothing else: the
// connection (pop3.Server), parsing, states, variations, CAPA, every
// TRANSACTION reply and UPDATE come from the core.
//
//	go run ./examples/memserver -listen 127.0.0.1:1111
//
// It serves one mailbox, "demo" with password "demo", holding two messages.
package main

import (
	"flag"
	"log"
	"net"

	"github.com/pop3kit/pop3kit/pop3gen"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:1111", "address to listen on")
	profile := flag.String("profile", pop3gen.DefaultProfile, "behaviour profile")
	flag.Parse()
	v, err := pop3gen.Profile(*profile)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("memserver: POP3 on %s (user demo, password demo)", ln.Addr())
	log.Fatal(Serve(ln, DemoStore(), v))
}
