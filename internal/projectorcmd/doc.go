// Package projectorcmd is the projector program, cmd/projector (DESIGN §5, docs/projector.md): it runs
// the asynchronous projections (the audit trail and the outbox relay) with the runtime of package
// projections, serves /metrics (Prometheus), /healthz and /readyz, and offers the operator's commands —
// migrate, status, rebuild and dead-letters list|retry|skip.
//
// [Main] takes the arguments, the output streams and the environment, so that the commands run in
// tests in-process; cmd/projector's main only adds the signal handling.
package projectorcmd
