// Package faultproxy is a TCP proxy for tests that puts network faults between a PostgreSQL client and
// its server: added latency, a blackholed connection, a refused connection, and — the case that matters
// most for a store — the reply to COMMIT dropped after the server has committed, so that the client
// cannot know the outcome.
//
// It understands just enough of the PostgreSQL wire protocol to find a COMMIT sent as a simple query
// (pgx sends Tx.Commit that way). Clients must connect with sslmode=disable: the proxy does not speak TLS.
package faultproxy
