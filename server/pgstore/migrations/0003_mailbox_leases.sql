-- 0003: rfc1939's exclusive lock as a lease row instead of an advisory
-- lock held on a connection of the session's own, so that an idle locked
-- session holds no pool connection. The front end that holds a lock
-- renews it with its sessions' leases; one that dies stops, and its locks
-- lapse within the lease, as its sessions do.
CREATE TABLE mailbox_locks (
	mailbox_id bigint PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
	holder     text NOT NULL,
	expires    timestamptz NOT NULL
);
CREATE INDEX mailbox_locks_holder ON mailbox_locks (holder);
