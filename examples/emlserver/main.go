// Command emlserver serves a directory of .eml files as one POP3 mailbox,
// on a core generated from pop3kit's table extended with a command of its
// own: "XHDR field" lists one header field of every message (XHDR in
// CAPA). gen.go extends the table and generates internal/emlpop3; the
// handler in server.go serves the files.
//
//	go run ./examples/emlserver -dir ./mail -listen 127.0.0.1:1112 -user demo -password demo
//
// The files are messages in name order; a message's unique-id is its file
// name without ".eml" (a hash of the name when that is not a valid
// unique-id); DELE and QUIT remove the file.
package main

//go:generate go run gen.go -out internal/emlpop3

import (
	"flag"
	"log"
	"net"
)

func main() {
	dir := flag.String("dir", ".", "directory of .eml files: the mailbox")
	listen := flag.String("listen", "127.0.0.1:1112", "address to listen on")
	user := flag.String("user", "demo", "the mailbox's user name")
	password := flag.String("password", "demo", "the mailbox's password")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("emlserver: POP3 on %s for %s (user %s)", ln.Addr(), *dir, *user)
	log.Fatal(Serve(ln, &Mailbox{Dir: *dir, User: *user, Password: *password}))
}
