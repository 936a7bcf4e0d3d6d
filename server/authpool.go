package server

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/pop3kit/pop3kit/server/account"
)

// authPool bounds password verification: at most a number of
// verifications at once, and at most a number of bytes of hash memory
// charged to those running. Each verification is charged its hash's real
// memory cost (argon2's m; a small constant for bcrypt and SHA-crypt), so
// a login storm against ARGON2ID users queues instead of taking the
// process's memory with it: 40 concurrent argon2id checks at 64 MiB each
// took 2.6 GB before the pool.
//
// It uses golang.org/x/sync/semaphore's weighted semaphore, which is FIFO
// (a large charge at the head is not starved by small ones behind it) and
// honours a context while waiting, so the wait for a slot is bounded.
type authPool struct {
	workers *semaphore.Weighted
	memory  *semaphore.Weighted
	memCap  int64
	wait    time.Duration

	// charged is the memory charged to the verifications running now,
	// and peak the most it has been; verified counts the verifications
	// run. Tests read them.
	charged, peak, verified atomic.Int64
}

// errAuthBusy is returned when no verification slot freed up in time.
var errAuthBusy = errors.New("password verification queue is full")

func newAuthPool(workers int, memCap int64, wait time.Duration) *authPool {
	return &authPool{
		workers: semaphore.NewWeighted(int64(workers)),
		memory:  semaphore.NewWeighted(memCap),
		memCap:  memCap,
		wait:    wait,
	}
}

// verify checks password against a in the pool. It waits at most the
// pool's wait for a slot, or until ctx is done, and then returns
// errAuthBusy.
func (p *authPool) verify(ctx context.Context, a *account.Account, password []byte) (bool, error) {
	// A hash that needs more than the whole cap runs alone, charged the
	// whole cap: refusing it would lock its user out for good. Loading
	// the passwd-file logs such hashes.
	cost := min(a.Cost(), p.memCap)
	// Memory first, then a worker, always in this order, so two waiters
	// never hold one each while waiting for the other. Free ones are
	// taken at once; only a wait makes a context with the pool's
	// deadline (a child of the connection's, which keeps a table of its
	// children for as long as the session lasts).
	var wait context.Context
	cancel := context.CancelFunc(func() {})
	defer func() { cancel() }()
	waiting := func() context.Context {
		if wait == nil {
			wait, cancel = context.WithTimeout(ctx, p.wait)
		}
		return wait
	}
	if !p.memory.TryAcquire(cost) {
		if err := p.memory.Acquire(waiting(), cost); err != nil {
			return false, errAuthBusy
		}
	}
	defer p.memory.Release(cost)
	if !p.workers.TryAcquire(1) {
		if err := p.workers.Acquire(waiting(), 1); err != nil {
			return false, errAuthBusy
		}
	}
	defer p.workers.Release(1)
	now := p.charged.Add(cost)
	for peak := p.peak.Load(); now > peak && !p.peak.CompareAndSwap(peak, now); peak = p.peak.Load() {
	}
	defer p.charged.Add(-cost)
	p.verified.Add(1)
	ok := a.Verify(password)
	if cost >= gcAfterCost {
		// argon2's blocks are garbage the moment it returns, but the
		// collector, paced by GOGC, would let up to as much again pile
		// up before it runs: the heap would reach twice the cap. Collect
		// now, before the charge is released, so the next verification's
		// blocks take the place of these. The blocks hold no pointers,
		// so marking costs little.
		runtime.GC()
	}
	return ok, nil
}

// gcAfterCost is the charge from which a verification is followed by a
// collection: argon2 hashes (a few MiB and up), not bcrypt or SHA-crypt,
// whose garbage is small enough for the collector's own pacing.
const gcAfterCost = 4 << 20

// minAuthMemory is the least memory cap: one verification of the
// ARGON2ID hashes pop3d writes (RFC 9106's low-memory profile, m = 64 MiB).
const minAuthMemory = 64<<20 + account.SmallHashCost

// DefaultAuthMemory is the memory cap when none is configured: an eighth
// of the memory the machine (or its cgroup) has, at most maxDefaultAuthMemory
// and at least one ARGON2ID verification's worth. The cap, not the
// number of workers, bounds what verification takes: with an eighth of a
// large machine as the cap, 16 workers on ARGON2ID users took over 1 GB.
func DefaultAuthMemory() int64 {
	return min(max(physicalMemory()/8, minAuthMemory), maxDefaultAuthMemory)
}

// maxDefaultAuthMemory is the largest default cap: four ARGON2ID
// verifications at RFC 9106's low-memory m = 64 MiB (or one at 256 MiB)
// at once, so that a login storm keeps pop3d within half a gigabyte
// whatever the host; a site that wants more says so (auth_memory).
const maxDefaultAuthMemory = 4 * minAuthMemory

// physicalMemory returns the smaller of the machine's memory and its
// cgroup v2 limit, or 0 when neither can be read.
func physicalMemory() int64 {
	total := systemMemory()
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}
