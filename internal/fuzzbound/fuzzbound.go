// Package fuzzbound holds a fuzz target to a bound on the time its inputs
// take. A target whose inputs wait on wall-clock time — a failure delay, a
// read deadline, a penalty, a timer — fuzzes the clock rather than the
// code: the fuzzer stalls between bursts and runs a fraction of the inputs
// it could. Every target of the project calls Fuzz instead of f.Fuzz, and
// go test's replay of its corpus (make test) fails when its inputs took
// more than Limit each on average.
package fuzzbound

import (
	"flag"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// Limit is the mean time an input of a target's corpus may take when go
// test replays it (ten times as much under the race detector). The first
// input is not counted: it pays for what a target sets up once. The
// targets' inputs take microseconds to 3 ms on an idle machine (the
// whole-session ones the most), and up to four times that while make
// test runs other packages beside them; one that waits on a failure
// delay, a penalty or a deadline takes hundreds of milliseconds.
const Limit = 20 * time.Millisecond

// InputLimit is the time any one input may take, the first of a process
// excepted, under -fuzz too, where an input beyond it fails and is kept
// in the corpus (ten times as much under the race detector).
const InputLimit = time.Second

// Fuzz is f.Fuzz(fn), with each input timed. When go test replays the
// corpus (not under -fuzz, where the fuzzer reports its own rate), the
// target fails if its inputs took more than Limit each on average.
func Fuzz(f *testing.F, fn any) {
	f.Helper()
	v := reflect.ValueOf(fn)
	var mu sync.Mutex
	var n int
	var total, first time.Duration
	timed := reflect.MakeFunc(v.Type(), func(args []reflect.Value) []reflect.Value {
		start := time.Now()
		defer func() {
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if n == 0 && first == 0 {
				// The first input of the process pays for what the
				// target sets up once (servers, keytabs): neither bound
				// counts it.
				first = d + 1
				return
			}
			if msg := slowInput(d, InputLimit*time.Duration(raceFactor)); msg != "" {
				// Under -fuzz too: the fuzzer then keeps the input that
				// stalled it, to be replayed and fixed.
				args[0].Interface().(*testing.T).Error(msg)
			}
			n++
			total += d
		}()
		return v.Call(args)
	})
	f.Cleanup(func() {
		if fuzzing() || n == 0 {
			return
		}
		if msg := slowCorpus(n, total, first-1, Limit*time.Duration(raceFactor)); msg != "" {
			f.Error(msg)
		}
		if testing.Verbose() {
			f.Logf("fuzzbound: %s: %d inputs, %v each on average", f.Name(), n, total/time.Duration(n))
		}
	})
	f.Fuzz(timed.Interface())
}

// fuzzing reports whether go test runs with -fuzz.
func fuzzing() bool {
	fl := flag.Lookup("test.fuzz")
	return fl != nil && fl.Value.String() != ""
}

// slowInput is the failure of an input that took d, or "".
func slowInput(d, limit time.Duration) string {
	if d <= limit {
		return ""
	}
	return fmt.Sprintf("this input took %v (bound %v): it waits on the clock (a delay, a deadline, a timer) rather than running the code", d, limit)
}

// slowCorpus is the failure of a corpus of n inputs (the first not
// counted) that took total, or "".
func slowCorpus(n int, total, first, limit time.Duration) string {
	if n == 0 || total/time.Duration(n) <= limit {
		return ""
	}
	return fmt.Sprintf("the corpus's %d inputs took %v each on average (the first, not counted, %v): more than %v; an input waits on the clock (a delay, a deadline, a timer) rather than running the code", n, total/time.Duration(n), first, limit)
}
