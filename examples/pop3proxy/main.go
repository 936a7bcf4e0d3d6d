// Command pop3proxy is a POP3 proxy built on pop3kit's generated core:
// it accepts clients with pop3.Server, logs them in to a backend POP3
// server with their own credentials (USER/PASS, or AUTH PLAIN, which it
// turns into USER/PASS) through pop3.Client, and hands the core a
// Maildrop backed by that backend session: the backend's LIST and UIDL,
// read once at login, give the messages; RETR (and TOP) stream each from
// the backend's DotReader into the client's DotWriter; DELE reaches the
// backend only when the client QUITs. Both sides go through the core's
// parser: the client's commands through the Session, the backend's
// replies through ReplyReader.
//
//	go run ./examples/pop3proxy -listen 127.0.0.1:1113 -backend 127.0.0.1:1110
//
// The backend is reached over plain TCP; run the proxy beside it, or on a
// network you trust.
package main

import (
	"flag"
	"log"
	"net"
	"net/netip"

	"github.com/pop3kit/pop3kit/pop3gen"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:1113", "address to listen on")
	backend := flag.String("backend", "127.0.0.1:1110", "backend POP3 server (host:port)")
	profile := flag.String("profile", "rfc1939", "behaviour profile towards clients")
	flag.Parse()
	v, err := pop3gen.Profile(*profile)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	// Clients on loopback count as secure, for profiles that allow
	// plaintext logins only on secure connections.
	p := &Proxy{Backend: *backend, Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	log.Printf("pop3proxy: POP3 on %s for %s", ln.Addr(), *backend)
	log.Fatal(p.Serve(ln, v))
}
