package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
)

// session runs the session mix once for user: connect, USER/PASS, STAT,
// LIST, UIDL, RETR of every message, QUIT. It returns how long the login
// took (from the connection to PASS's +OK) and the octets retrieved.
func session(addr, user string) (login time.Duration, octets int64, err error) {
	start := time.Now()
	c, err := pop3.Dial(addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	_ = c.Conn().SetDeadline(time.Now().Add(5 * time.Minute))
	if err := c.User(user); err != nil {
		return 0, 0, fmt.Errorf("USER %s: %w", user, err)
	}
	if err := c.Pass(password); err != nil {
		return 0, 0, fmt.Errorf("PASS %s: %w", user, err)
	}
	login = time.Since(start)
	n, _, err := c.Stat()
	if err != nil {
		return login, 0, err
	}
	if _, err := c.List(); err != nil {
		return login, 0, err
	}
	if _, err := c.UIDL(); err != nil {
		return login, 0, err
	}
	for i := 1; i <= n; i++ {
		r, err := c.Retr(uint32(i))
		if err != nil {
			return login, octets, err
		}
		m, err := io.Copy(io.Discard, r)
		octets += m
		if err != nil {
			return login, octets, err
		}
	}
	return login, octets, c.Quit()
}

// mixResult is one run of the session mix at one concurrency.
type mixResult struct {
	sessions     int
	errors       int
	firstErr     error
	elapsed      time.Duration
	cpu          time.Duration // the server's
	logins       []time.Duration
	octets       int64
	perSecond    float64
	cpuPerSessUS float64
	loginP99MS   float64
}

// runMix runs conc workers for d, each logging in as the users of its
// own share in turn, so that no two hold the same maildrop at once (the
// lock profile refuses a second session).
func runMix(s *server, st *site, conc int, d time.Duration) (mixResult, error) {
	if conc > len(st.users) {
		return mixResult{}, fmt.Errorf("%d concurrent clients need at least as many users (-users)", conc)
	}
	var res mixResult
	before, err := s.stat()
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var stop atomic.Bool
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			share := st.users[w*len(st.users)/conc : (w+1)*len(st.users)/conc]
			for i := 0; !stop.Load(); i++ {
				login, octets, err := session(s.addr, share[i%len(share)])
				mu.Lock()
				if err != nil {
					res.errors++
					if res.firstErr == nil {
						res.firstErr = err
					}
				} else {
					res.sessions++
					res.logins = append(res.logins, login)
					res.octets += octets
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	res.elapsed = time.Since(start)
	after, err := s.stat()
	if err != nil {
		return res, err
	}
	res.cpu = after.cpu - before.cpu
	if res.sessions > 0 {
		res.perSecond = float64(res.sessions) / res.elapsed.Seconds()
		res.cpuPerSessUS = float64(res.cpu.Microseconds()) / float64(res.sessions)
		slices.Sort(res.logins)
		res.loginP99MS = float64(res.logins[(len(res.logins)*99)/100].Microseconds()) / 1000
	}
	return res, nil
}

// warm logs every user in once, so that no server pays a first scan of a
// maildrop (or a first look at a file) inside a measurement.
func warm(s *server, users []string, conc int) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan string)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range next {
				if _, _, err := session(s.addr, u); err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, u := range users {
		next <- u
	}
	close(next)
	wg.Wait()
	return first
}

// retrResult is one RETR of the big message.
type retrResult struct {
	mbPerS  float64
	cpuPerM float64 // server CPU milliseconds per MB
}

func runBigRetr(s *server) (retrResult, error) {
	var res retrResult
	c, err := pop3.Dial(s.addr)
	if err != nil {
		return res, err
	}
	defer c.Close()
	_ = c.Conn().SetDeadline(time.Now().Add(10 * time.Minute))
	if err := c.User(bigUser); err != nil {
		return res, err
	}
	if err := c.Pass(password); err != nil {
		return res, err
	}
	before, err := s.stat()
	if err != nil {
		return res, err
	}
	start := time.Now()
	r, err := c.Retr(1)
	if err != nil {
		return res, err
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return res, err
	}
	el := time.Since(start)
	after, err := s.stat()
	if err != nil {
		return res, err
	}
	mb := float64(n) / 1e6
	res.mbPerS = mb / el.Seconds()
	res.cpuPerM = float64((after.cpu - before.cpu).Microseconds()) / 1000 / mb
	return res, c.Quit()
}

// idleResult is what holding n logged-in sessions costs the server.
type idleResult struct {
	held     int
	errors   int
	firstErr error
	pssPerKB float64 // KiB of PSS per session
	fdsPer   float64
}

// runIdle logs the idle users in, one session each, holds them, and
// measures the server's memory and descriptors against before; then
// checks that every session still answers.
func runIdle(s *server, st *site) (idleResult, error) {
	var res idleResult
	before, err := s.stat()
	if err != nil {
		return res, err
	}
	conns := make([]*pop3.Client, len(st.idle))
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, 32)
	for i, u := range st.idle {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := pop3.Dial(s.addr)
			if err == nil {
				_ = c.Conn().SetDeadline(time.Now().Add(5 * time.Minute))
				if err = c.User(u); err == nil {
					err = c.Pass(password)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.errors++
				if res.firstErr == nil {
					res.firstErr = err
				}
				if c != nil {
					c.Close()
				}
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // let the server settle (goroutines park, buffers go back)
	after, err := s.stat()
	if err != nil {
		return res, err
	}
	for _, c := range conns {
		if c != nil {
			res.held++
		}
	}
	if res.held > 0 {
		res.pssPerKB = float64(after.pss-before.pss) / 1024 / float64(res.held)
		res.fdsPer = float64(after.fds-before.fds) / float64(res.held)
	}
	for _, c := range conns {
		if c == nil {
			continue
		}
		if err := c.Noop(); err != nil {
			res.errors++
			if res.firstErr == nil {
				res.firstErr = fmt.Errorf("an idle session stopped answering: %w", err)
			}
		}
		_ = c.Quit()
		c.Close()
	}
	return res, nil
}

// manyResult is the 100,000-message maildrop: the first login (every
// message moved from new/ and measured), the second, a moment later (the
// directories changed at the first: pop3d lists them against its UID
// list), and a later one (nothing changed: pop3d lists nothing).
type manyResult struct {
	first, second, later time.Duration // login to STAT's reply
}

func runMany(s *server) (manyResult, error) {
	var res manyResult
	login := func() (*pop3.Client, time.Duration, error) {
		start := time.Now()
		c, err := pop3.Dial(s.addr)
		if err != nil {
			return nil, 0, err
		}
		_ = c.Conn().SetDeadline(time.Now().Add(10 * time.Minute))
		if err := c.User(manyUser); err != nil {
			c.Close()
			return nil, 0, err
		}
		if err := c.Pass(password); err != nil {
			c.Close()
			return nil, 0, err
		}
		if _, _, err := c.Stat(); err != nil {
			c.Close()
			return nil, 0, err
		}
		return c, time.Since(start), nil
	}
	once := func() (time.Duration, error) {
		c, d, err := login()
		if err != nil {
			return 0, err
		}
		_ = c.Quit()
		c.Close()
		// The session's lock is let go, and the directories the login
		// changed are more than a second old: a directory changed within
		// the clock's resolution of a listing is listed again.
		time.Sleep(1500 * time.Millisecond)
		return d, nil
	}
	var err error
	for _, to := range []*time.Duration{&res.first, &res.second, &res.later} {
		if *to, err = once(); err != nil {
			return res, err
		}
	}
	return res, nil
}
