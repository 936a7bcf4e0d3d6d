// Package account is pop3d's accounts: the Account a login is checked
// against — its password scheme (PLAIN, SHA-crypt, bcrypt, argon2) and the
// secrets of the challenge-response mechanisms (SCRAM-SHA-256, CRAM-MD5,
// NTLM), read and written in Dovecot's passwd-file format — the
// Authenticator that stores of accounts implement, and the passwd-file
// itself (Passwd), reloaded when it changes. PostgreSQL's store
// (server/pgstore) implements Authenticator with it, without importing the
// server.
package account
