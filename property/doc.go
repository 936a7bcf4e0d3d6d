// Package property holds pop3kit's properties, checked with
// github.com/leanovate/gopter against the generated core and a running
// pop3d: random mailboxes, user names and sessions, each property shrinking
// a failure to a minimal counterexample.
//
// Every run logs its seed; set POP3KIT_PROPERTY_SEED to replay it, and
// POP3KIT_PROPERTY_RUNS to change how many cases each property tries.
package property
