// Package spec is the declarative description of POP3 that pop3kit
// generates its protocol core from.
//
// It holds data only: the states, the commands with their argument grammars
// and replies, the capabilities, the behaviour variations and their values
// under each named profile, the error replies, and the clauses of the
// standards that every row implements. Validate checks a table; package
// gen turns it into package pop3gen; nothing in this package is used at run
// time by the server.
//
// Another module extends the table by value: Clone copies POP3 so that
// rows can be appended or changed (AddProfile, Everywhere, Command and
// Variation help), and gen.Generate or gen.Main turns the result into a
// core of its own.
//
// Every row cites the clause it implements by id. Clause ids of
// MS-STANXPOP3 are the document's own (2.1.1 … 2.1.5, V0001 … V0012,
// C0001 … C0011, E0001 … E0007, written "MS-2.1.1", "MS-V0001", …); RFC
// rules carry ids of the form "RFC1939-3-KEYWORD" (RFC number, section,
// short name).
package spec

import "strconv"

// State is a set of POP3 session states, so that a row can say
// In: Authorization | Transaction.
type State uint8

// The states of RFC 1939 §3.
const (
	Authorization State = 1 << iota // before the client has identified itself
	Transaction                     // the maildrop is open
	Update                          // after QUIT from TRANSACTION: deletions are applied
)

// StateInfo describes one state.
type StateInfo struct {
	State  State
	Name   string // upper case, as RFC 1939 spells it
	Clause string // clause id
	Doc    string
	// Initial marks the state a session starts in after the greeting.
	Initial bool
	// Final marks a state after which the connection closes.
	Final bool
}

// Args is the argument grammar of a command: a small closed set, each with
// one builder in the generator.
type Args uint8

// The argument grammars.
const (
	NoArgs      Args = iota // keyword alone
	MsgNum                  // one message-number (RFC 1939 §5: 1*DIGIT, not 0)
	OptMsgNum               // an optional message-number
	MsgNumCount             // a message-number and a non-negative line count (TOP)
	Word                    // one argument without spaces (USER name)
	Secret                  // one argument; the rest of the line when the variation PassKeepsSpaces is on (PASS)
	NameDigest              // a name and an MD5 digest in 32 lower-case hex digits (APOP)
	Mechanism               // a SASL mechanism and an optional initial response (AUTH)
	OptWord                 // an optional single argument (LANG)
)

// Reply is the shape of a positive reply.
type Reply uint8

// The reply shapes.
const (
	SingleLine     Reply = iota // one status line
	MultiLine                   // status line, dot-stuffed lines, "."
	MultiUnlessArg              // multi-line without an argument, single-line with one (LIST, UIDL, LANG)
	Challenge                   // "+ " continuation lines until a final status line (AUTH)
)

// Edge is a transition taken when a command succeeds in state From.
type Edge struct {
	From, To State
}

// Command is one row of the command table.
type Command struct {
	Name string // the keyword, upper case, 3 or 4 characters
	Args Args
	In   State // states in which the command is allowed
	// Reply is the shape of the positive reply.
	Reply Reply
	// Capability is the CAPA tag that advertises the command; empty when
	// the command belongs to the RFC 1939 minimal set.
	Capability string
	// After names a command that must have succeeded immediately before
	// this one (PASS after USER).
	After string
	// Edges are the transitions on success; a command without an edge
	// from the current state leaves the state as it is.
	Edges []Edge
	// Then is what the connection does after a positive reply.
	Then Action
	// Sets is a session mode a positive reply switches on.
	Sets Mode
	// EnabledBy names a boolean variation that switches the command on;
	// when it is off the command is answered as not supported.
	EnabledBy string
	// Guard is checked before the handler is called.
	Guard Guard
	// AlwaysOKWhen names a boolean variation under which the command is
	// answered +OK even when the handler refuses it (USER under
	// MS-STANXPOP3 V0008: the refusal comes at PASS).
	AlwaysOKWhen string
	// AfterAnyWhen names a boolean variation under which After is met by
	// any earlier success of that command in the same state, not only the
	// one immediately before (PASS under StickyUser).
	AfterAnyWhen string
	// IgnoresArgsWhen names a boolean variation under which arguments given
	// to a command of the NoArgs grammar are checked for separators and
	// octets, then ignored, instead of refused (NOOP under IgnoreExtraArgs).
	IgnoresArgsWhen string
	// LongArgs exempts the arguments from MaxArgOctets, for commands
	// whose arguments are bounded only by the command length (AUTH's
	// initial response, RFC 5034 §4).
	LongArgs bool
	// Answer says who answers the command: a Handler method (the zero
	// value, and what a command a table adds gets) or the core itself.
	Answer Answer
	// Optional makes the command's Handler method an optional interface
	// (AuthHandler): without it the command is refused as not supported
	// and not announced. A command a variation switches on (EnabledBy)
	// is always optional.
	Optional bool
	// Clauses are the ids of the clauses the row implements.
	Clauses []string
	Doc     string
}

// Answer is who answers a command.
type Answer uint8

// The answerers. The runtime answers only the commands whose semantics it
// knows (pop3.CoreCommands()); any other command is a Handler method.
const (
	// ByHandler: a Handler method. One that opens the maildrop (an edge
	// from the initial state into a state that is not final) returns it
	// as a Maildrop value; any other writes its reply through a Writer.
	ByHandler Answer = iota
	// ByCore: the core alone, from the session and its connection (STLS,
	// CAPA, NOOP, QUIT and the UPDATE state it enters).
	ByCore
	// ByMaildrop: the core, from the Maildrop the login returned (STAT,
	// LIST, RETR, TOP, DELE, RSET, UIDL): the backend returns values and
	// the core writes, terminates and dot-stuffs every reply.
	ByMaildrop
)

var answerNames = [...]string{ByHandler: "ByHandler", ByCore: "ByCore", ByMaildrop: "ByMaildrop"}

func (a Answer) String() string {
	if int(a) < len(answerNames) {
		return answerNames[a]
	}
	return "Answer(" + strconv.Itoa(int(a)) + ")"
}

var argsNames = [...]string{NoArgs: "NoArgs", MsgNum: "MsgNum", OptMsgNum: "OptMsgNum", MsgNumCount: "MsgNumCount",
	Word: "Word", Secret: "Secret", NameDigest: "NameDigest", Mechanism: "Mechanism", OptWord: "OptWord"}

func (a Args) String() string {
	if int(a) < len(argsNames) {
		return argsNames[a]
	}
	return "Args(" + strconv.Itoa(int(a)) + ")"
}

// Action is what the connection does after a command's positive reply.
type Action uint8

// The actions.
const (
	Continue Action = iota // read the next command
	Close                  // close the connection (QUIT)
	StartTLS               // discard buffered input and start the TLS handshake (STLS)
)

// Mode is a session mode that a command switches on.
type Mode uint8

// The modes.
const (
	NoMode   Mode = iota
	UTF8Mode      // RFC 6856 §2.1: USER, PASS and APOP take UTF-8
)

// Guard is a check the core makes before a command reaches the handler.
type Guard uint8

// The guards.
const (
	NoGuard   Guard = iota
	NotTLS          // refused when TLS is already active (RFC 2595 §4)
	Plaintext       // refused when the PlaintextAuth variation forbids plaintext on this connection (MS-STANXPOP3 V0010)
)

// Kind is the type of a variation's value.
type Kind uint8

// The variation kinds.
const (
	Bool     Kind = iota + 1
	Octets        // an int count of octets
	Count         // an int count of things
	Duration      // a time.Duration
	Enum          // one of Values
)

// Variation is one point of behaviour that the standards leave open or on
// which Exchange departs from them.
type Variation struct {
	Name string // Go identifier and --set key
	Kind Kind
	// Values are the names an Enum variation can take, in order.
	Values []string
	// Min and Max bound Octets, Count and Duration values (inclusive).
	// For Octets and Count, Zero says whether 0 ("no limit") is allowed
	// besides the range.
	Min, Max int64
	Zero     bool
	// Profile gives the value under each profile, by profile name; the
	// value is written as --set would take it.
	Profile map[string]string
	// Layer is the part of a server that honours the variation; Validate
	// requires one. A StoreLayer variation is only carried by the core:
	// the backend must apply it, and its Doc should say so.
	Layer   VariationLayer
	Clauses []string
	Doc     string
}

// VariationLayer is the part of a server that honours a variation. The
// lexer, the session and the runtime are parts of the generated core (the
// Core layer of the clauses); the store is the backend behind it.
type VariationLayer uint8

// The layers that honour variations.
const (
	LexerLayer   VariationLayer = iota + 1 // the generated lexer (Command.Parse): how a command line is read
	SessionLayer                           // the generated session: guards, replies and state, around the backend's handler
	RuntimeLayer                           // the generated runtime (Server): the connection, its timers and greeting
	StoreLayer                             // the backend: the core only carries the value, the backend must apply it
)

var layerNames = [...]string{LexerLayer: "lexer", SessionLayer: "session", RuntimeLayer: "runtime", StoreLayer: "store"}

// String returns the layer's name as the generated docs print it: lexer,
// session, runtime or store; "" for a layer that is not one of them.
func (l VariationLayer) String() string {
	if int(l) < len(layerNames) {
		return layerNames[l]
	}
	return ""
}

// Profile is a named set of variation values.
type Profile struct {
	Name    string
	Aliases []string
	Default bool
	Doc     string
}

// Capability is a CAPA tag (RFC 2449 §6) that the core can announce.
type Capability struct {
	Tag string
	// Params documents the parameters the tag carries.
	Params string
	// When says when the tag is announced: "always", or the name of a
	// boolean variation, or "server" when only the server knows (TLS
	// available, SASL mechanisms).
	When    string
	Clauses []string
	Doc     string
}

// RespCode is an extended response code (RFC 2449 §8, RFC 3206).
type RespCode struct {
	Name    string // Go identifier suffix
	Code    string // as on the wire, without brackets
	Clauses []string
	Doc     string
}

// Error is a negative reply the core itself sends.
type Error struct {
	Name string // Go identifier suffix: ErrName
	Code string // RespCode name, or empty
	Text string // informative text (MS-STANXPOP3 V0001)
	// Exported says that the runtime exports the error of the standard
	// table (ErrName): a Handler returns it, or an observer of Events
	// tells it apart. The others are replies only the runtime itself
	// sends (errName). A table's own errors are always exported by its
	// generated package.
	Exported bool
	// Clauses cite the rule that makes this an error.
	Clauses []string
}

// Layer says which part of pop3kit honours a clause.
type Layer uint8

// The layers.
const (
	Core   Layer = iota + 1 // the generated core, pop3gen
	Server                  // the server, server/ and cmd/pop3d
	Store                   // the maildrop store behind the server
	NotApplicable
)

// Clause is one statement of a standard that pop3kit implements or
// explains.
type Clause struct {
	ID      string // "MS-V0011", "RFC1939-3-KEYWORD"
	Source  string // document and section, as printed there
	Summary string // what the clause says, in a sentence
	Layer   Layer
	// Behaviour says what pop3kit does; for clauses tied to a variation,
	// the per-profile values are added from the variation.
	Behaviour string
	// Pending names the work that will implement a clause that no test
	// covers yet; the coverage test insists that a pending clause has no
	// test and every other clause has one.
	Pending string
}

// Table is the whole protocol description.
type Table struct {
	States       []StateInfo
	Commands     []Command
	Variations   []Variation
	Profiles     []Profile
	Capabilities []Capability
	RespCodes    []RespCode
	Errors       []Error
	Clauses      []Clause
	// Limits are constants of the protocol (reply line length, …).
	Limits []Limit
}

// Limit is a protocol constant.
type Limit struct {
	Name    string
	Value   int64
	Clauses []string
	Doc     string
}
