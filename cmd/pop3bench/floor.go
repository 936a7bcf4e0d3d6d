package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// The floor: a POP3 responder that serves the site's messages from
// memory with no parsing beyond the keyword, no store, no policy and no
// limits — what this machine can do at best, against which pop3d and
// Dovecot are measured. It answers the session mix (USER, PASS, STAT,
// LIST, UIDL, RETR, NOOP, QUIT) for any user and password, from replies
// built once at start: each user's maildrop is read into memory in its
// wire form (CRLF, dot-stuffed).

// floorDrop is one maildrop's replies.
type floorDrop struct {
	stat, list, uidl []byte
	retr             [][]byte // "+OK n octets", the stuffed body, "."
}

// loadFloor reads every Maildir under mail into replies; maildrops that
// are byte for byte alike (the hard-linked ones) share theirs.
func loadFloor(mail string) (map[string]*floorDrop, error) {
	users, err := os.ReadDir(mail)
	if err != nil {
		return nil, err
	}
	drops := map[string]*floorDrop{}
	seen := map[string]*floorDrop{}
	for _, u := range users {
		var names []string
		for _, sub := range []string{"cur", "new"} {
			ents, err := os.ReadDir(filepath.Join(mail, u.Name(), sub))
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				names = append(names, filepath.Join(sub, e.Name()))
			}
		}
		slices.Sort(names)
		key := fmt.Sprint(names)
		if d := seen[key]; d != nil && len(names) > 0 {
			drops[u.Name()] = d
			continue
		}
		d := &floorDrop{}
		var total int64
		var list, uidl bytes.Buffer
		list.WriteString("+OK scan listing follows\r\n")
		uidl.WriteString("+OK unique-id listing follows\r\n")
		for i, n := range names {
			b, err := os.ReadFile(filepath.Join(mail, u.Name(), n))
			if err != nil {
				return nil, err
			}
			wire := stuff(b)
			size := crlfSize(b) // the message's octets, before stuffing
			total += size
			fmt.Fprintf(&list, "%d %d\r\n", i+1, size)
			fmt.Fprintf(&uidl, "%d %d\r\n", i+1, i+1)
			d.retr = append(d.retr, append([]byte("+OK "+strconv.FormatInt(size, 10)+" octets\r\n"), wire...))
		}
		list.WriteString(".\r\n")
		uidl.WriteString(".\r\n")
		d.list, d.uidl = list.Bytes(), uidl.Bytes()
		d.stat = []byte(fmt.Sprintf("+OK %d %d\r\n", len(names), total))
		drops[u.Name()] = d
		seen[key] = d
	}
	return drops, nil
}

// crlfSize is the size of b's CRLF form with its final line break: what
// STAT, LIST and RETR's +OK state.
func crlfSize(b []byte) int64 {
	n := int64(len(b))
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			n++
		}
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n += 2
	}
	return n
}

// stuff returns a message in its wire form: CRLF line ends, a final
// line break, dot-stuffed, and the terminating ".".
func stuff(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/20+8)
	start := true
	for i, c := range b {
		if start && c == '.' {
			out = append(out, '.')
		}
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
		start = c == '\n'
	}
	if !start {
		out = append(out, '\r', '\n')
	}
	return append(out, '.', '\r', '\n')
}

// serveFloor serves ln until it fails.
func serveFloor(ln net.Listener, drops map[string]*floorDrop) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go floorSession(c, drops)
	}
}

func floorSession(c net.Conn, drops map[string]*floorDrop) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1024)
	w := bufio.NewWriterSize(c, 64<<10)
	w.WriteString("+OK floor ready\r\n")
	w.Flush()
	var d *floorDrop
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		kw, arg, _ := bytes.Cut(line, []byte(" "))
		switch string(kw) {
		case "USER":
			d = drops[string(arg)]
			w.WriteString("+OK\r\n")
		case "PASS":
			if d == nil {
				w.WriteString("-ERR no such user\r\n")
			} else {
				w.WriteString("+OK logged in\r\n")
			}
		case "STAT":
			w.Write(d.stat)
		case "LIST":
			w.Write(d.list)
		case "UIDL":
			w.Write(d.uidl)
		case "RETR":
			n, _ := strconv.Atoi(string(arg))
			if d == nil || n < 1 || n > len(d.retr) {
				w.WriteString("-ERR no such message\r\n")
			} else {
				w.Write(d.retr[n-1])
			}
		case "NOOP":
			w.WriteString("+OK\r\n")
		case "QUIT":
			w.WriteString("+OK bye\r\n")
			w.Flush()
			return
		default:
			w.WriteString("-ERR unknown command\r\n")
		}
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}
