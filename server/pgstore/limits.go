package pgstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pop3kit/pop3kit/server/store"
)

// Limits every front end shares (server.SharedLimits): LOGIN-DELAY by the
// time of the user's last login in the logins table, and the per-user
// session limit by the sessions table, where each session is a lease its
// front end renews every leaseRenew. A front end that dies stops
// renewing, and its sessions lapse within leaseTime: a crash frees its
// users' slots without anyone's help.

// leaseTime is how long a session's row and a mailbox lock stay without
// renewal; leaseRenew how often their front end renews them. A front end
// that dies frees its users' session slots and locks within leaseTime.
const (
	leaseTime  = 15 * time.Second
	leaseRenew = 5 * time.Second
)

var _ store.SharedLimits = (*Store)(nil)

// leases are the sessions and mailbox locks this front end holds,
// renewed together.
type leases struct {
	mu    sync.Mutex
	ids   map[int64]struct{}  // sessions
	locks map[string]struct{} // mailbox locks, by holder
	start sync.Once
	stop  chan struct{}
}

// LoginAllowed records a login of user now and reports whether it keeps
// delay since the last one, whichever front end that was on.
func (s *Store) LoginAllowed(ctx context.Context, user string, delay time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.LockWait)
	defer cancel()
	var ok bool
	err := s.pool.QueryRow(ctx, `INSERT INTO logins (name, at) VALUES ($1, now())
		ON CONFLICT (name) DO UPDATE SET at = now() WHERE logins.at <= now() - make_interval(secs => $2)
		RETURNING true`, user, delay.Seconds()).Scan(&ok)
	if err == pgx.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: login delay: %w", err)
	}
	return ok, nil
}

// BeginSession records a session of user unless max (> 0) of its
// sessions are open on all front ends together; release ends it. The
// count and the insert are one transaction under an advisory lock on the
// user's name, so two front ends cannot both take the last slot.
func (s *Store) BeginSession(ctx context.Context, user string, max int) (release func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, s.LockWait)
	defer cancel()
	var id int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('pop3kit-sessions'), hashtext($1))", user); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE name = $1 AND expires < now()", user); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM sessions WHERE name = $1", user).Scan(&n); err != nil {
			return err
		}
		if max > 0 && n >= max {
			return store.ErrTooManySessions
		}
		return tx.QueryRow(ctx, "INSERT INTO sessions (name, expires) VALUES ($1, now() + make_interval(secs => $2)) RETURNING id",
			user, leaseTime.Seconds()).Scan(&id)
	})
	if err != nil {
		if err == store.ErrTooManySessions {
			return nil, err
		}
		return nil, fmt.Errorf("pgstore: session limit: %w", err)
	}
	s.lease(id)
	return func() { s.endLease(id) }, nil
}

// lease starts renewing session id (and the renewer, at the first).
func (s *Store) lease(id int64) {
	l := &s.leases
	l.mu.Lock()
	l.init()
	l.ids[id] = struct{}{}
	l.mu.Unlock()
	l.start.Do(func() { go s.renew() })
}

// leaseLock starts renewing the mailbox lock of holder.
func (s *Store) leaseLock(holder string) {
	l := &s.leases
	l.mu.Lock()
	l.init()
	l.locks[holder] = struct{}{}
	l.mu.Unlock()
	l.start.Do(func() { go s.renew() })
}

// endLockLease stops renewing the mailbox lock of holder.
func (s *Store) endLockLease(holder string) {
	l := &s.leases
	l.mu.Lock()
	delete(l.locks, holder)
	l.mu.Unlock()
}

// init makes the maps and the stop channel; l.mu is held.
func (l *leases) init() {
	if l.ids == nil {
		l.ids = map[int64]struct{}{}
		l.locks = map[string]struct{}{}
		l.stop = make(chan struct{})
	}
}

// endLease removes session id.
func (s *Store) endLease(id int64) {
	l := &s.leases
	l.mu.Lock()
	delete(l.ids, id)
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.QueryTimeout)
	defer cancel()
	if _, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE id = $1", id); err != nil {
		s.log.Warn("pgstore: a session's lease was not ended; it lapses by itself", "err", err)
	}
}

// renew extends this front end's leases every leaseRenew until Close.
func (s *Store) renew() {
	s.leases.mu.Lock()
	stop := s.leases.stop
	s.leases.mu.Unlock()
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.leases.mu.Lock()
		ids := make([]int64, 0, len(s.leases.ids))
		for id := range s.leases.ids {
			ids = append(ids, id)
		}
		holders := make([]string, 0, len(s.leases.locks))
		for h := range s.leases.locks {
			holders = append(holders, h)
		}
		s.leases.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), leaseRenew)
		if len(ids) > 0 {
			if _, err := s.pool.Exec(ctx, "UPDATE sessions SET expires = now() + make_interval(secs => $2) WHERE id = ANY($1)", ids, leaseTime.Seconds()); err != nil {
				s.log.Warn("pgstore: sessions' leases not renewed", "err", err)
			}
		}
		if len(holders) > 0 {
			if _, err := s.pool.Exec(ctx, "UPDATE mailbox_locks SET expires = now() + make_interval(secs => $2) WHERE holder = ANY($1)", holders, leaseTime.Seconds()); err != nil {
				s.log.Warn("pgstore: mailbox locks not renewed", "err", err)
			}
		}
		cancel()
	}
}
