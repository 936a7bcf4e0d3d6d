//go:build ignore

// gen.go generates internal/emlpop3, emlserver's own copy of the core,
// from pop3kit's table extended with the command XHDR: `go generate
// ./examples/emlserver` (main.go holds the //go:generate line) runs it.
package main

import (
	"github.com/pop3kit/pop3kit/gen"
	"github.com/pop3kit/pop3kit/spec"
)

func main() {
	t := spec.POP3.Clone()
	t.Clauses = append(t.Clauses, spec.Clause{ID: "EMLSERVER-XHDR", Source: "emlserver", Layer: spec.Server,
		Summary: "XHDR field lists one header field of every message.",
		Behaviour: "The server answers +OK and one line \"n value\" for each message not marked deleted that has the field, " +
			"the value unfolded and cut to fit the line, then \".\"."})
	t.Capabilities = append(t.Capabilities, spec.Capability{Tag: "XHDR", When: "always",
		Clauses: []string{"EMLSERVER-XHDR"}, Doc: "The XHDR command."})
	// A Handler method answers XHDR (Answer's zero value, spec.ByHandler);
	// Optional makes it the interface emlpop3.XhdrHandler rather than a
	// method every Handler of emlpop3 must have.
	t.Commands = append(t.Commands, spec.Command{Name: "XHDR", Args: spec.Word, In: spec.Transaction, Reply: spec.MultiLine,
		Capability: "XHDR", Optional: true, Clauses: []string{"EMLSERVER-XHDR"}, Doc: "Lists one header field (Subject, From, …) of every message."})
	gen.Main(&t)
}
