//go:build race

package server_test

// raceEnabled: the race detector slows hashing tenfold and more.
const raceEnabled = true
