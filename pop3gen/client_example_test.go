package pop3gen_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/pop3kit/pop3kit/pop3"
)

// exampleServer answers like the example session of RFC 1939 §10, one
// reply per command line.
func exampleServer() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n")
		replies := []string{
			"+OK mrose's maildrop has 2 messages (320 octets)\r\n",
			"+OK 2 320\r\n",
			"+OK 120 octets\r\nSubject: hello\r\n\r\n..a line that starts with a dot\r\n.\r\n",
			"-ERR [SYS/PERM] no such message\r\n",
			"+OK dewey POP3 server signing off\r\n",
		}
		r := bufio.NewReader(c)
		for _, reply := range replies {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			io.WriteString(c, reply)
		}
	}()
	return ln.Addr().String()
}

// ExampleClient logs in with APOP, reads a message as a stream and tells
// a -ERR's response code from its text.
func ExampleClient() {
	c, err := pop3.Dial(exampleServer())
	if err != nil {
		panic(err)
	}
	fmt.Println("timestamp:", c.Timestamp())
	if err := c.APOP("mrose", "tanstaaf"); err != nil {
		panic(err)
	}
	n, size, _ := c.Stat()
	fmt.Println("messages:", n, "octets:", size)
	body, _ := c.Retr(1)
	b, _ := io.ReadAll(body)
	fmt.Printf("%q\n", strings.Split(string(b), "\r\n"))
	_, err = c.Retr(9)
	var e *pop3.Error
	if errors.As(err, &e) {
		fmt.Println("code:", e.Code, "text:", e.Text)
	}
	fmt.Println(c.Quit())
	// Output:
	// timestamp: <1896.697170952@dbc.mtview.ca.us>
	// messages: 2 octets: 320
	// ["Subject: hello" "" ".a line that starts with a dot" ""]
	// code: SYS/PERM text: no such message
	// <nil>
}

// ExampleParseReply reads a status line with a hierarchical response
// code.
func ExampleParseReply() {
	r, _ := pop3.ParseReply([]byte("-ERR [SYS/TEMP/DISK] maildrop full\r\n"))
	fmt.Println(r.Status, string(r.Code), r.HasCode(pop3.CodeSysTemp), r.HasCode("SYS"), string(r.Text))
	// Output: -ERR SYS/TEMP/DISK true true maildrop full
}
