package projections

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/eventstore"
)

// Projection is an asynchronous projection of the event log: it turns each event into rows of its own
// tables, inside the batch transaction of the runtime, which also advances the projection's checkpoint.
// A Projection must be safe for concurrent use: the runtime applies the events of different partitions
// on several goroutines at once.
type Projection interface {
	// Name identifies the projection: 1 to 63 characters of [a-z0-9_.-], starting with a letter. It
	// keys the projection's checkpoints and dead letters, so it must never change.
	Name() string

	// Version is the version of the projection's output, from 1. A new version has checkpoints of its
	// own and starts at the beginning of the log: it must write into new tables (a rebuild).
	Version() int

	// Apply applies one event inside tx, the batch transaction (READ COMMITTED). The runtime calls it
	// for the events of one partition in the log's order, each of a tenant after that tenant's earlier
	// ones, and wraps each call in a savepoint: when Apply returns an error, its statements are rolled
	// back and the event is parked as a dead letter of its tenant. Apply must not commit or roll back tx,
	// and must not keep state across calls that a rolled-back call could leave wrong (see [Batcher]).
	//
	// The error's text is stored with the dead letter: it must not carry secrets or personal data. A
	// database error is stored as its SQLSTATE and constraint only. An error that says nothing about
	// the event — a cancelled context, a lost connection, a serialization failure — fails the whole
	// batch instead, which is tried again later.
	//
	// tx runs as the projector role, which row-level security lets see every tenant; it may carry a
	// transaction-local userstore.tenant_id of some tenant (set by the runtime's reads), which Apply
	// must not rely on.
	Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error
}

// Batcher is implemented by a [Projection] that works per batch as well as per event: one that caches
// what it read within a batch (the audit projection keeps each tenant's last hash), or one that must act
// once per batch, such as an outbox relay that publishes the batch's messages in the batch transaction.
//
// When a Projection implements Batcher, the runtime calls StartBatch once per batch transaction, before
// the first event is applied, and applies the batch's events through the returned [BatchApplier]
// instead of Projection.Apply. The applier is discarded when the transaction ends, whether it commits or
// not, so it may hold state that is only valid inside the transaction.
type Batcher interface {
	StartBatch(ctx context.Context, tx pgx.Tx, info *BatchInfo) (BatchApplier, error)
}

// BatchApplier applies the events of one batch transaction; see [Batcher].
type BatchApplier interface {
	// Apply is Projection.Apply within the batch. When it returns an error, the runtime rolls its
	// statements back to a savepoint and parks the event; the applier's own state must then be as it
	// was before the call (update caches only after the statements succeeded).
	Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error

	// Flush is called once after the last Apply of the batch and before the checkpoint is advanced, in
	// the same transaction. An error fails the whole batch: nothing of it commits and it is tried again
	// later (unlike an Apply error, it cannot be isolated to one tenant).
	Flush(ctx context.Context, tx pgx.Tx) error
}

// BatchInfo describes the batch transaction a [BatchApplier] works in.
type BatchInfo struct {
	// Projection and Version are the projection's.
	Projection string
	Version    int
	// Partition is the partition of the log the batch processes.
	Partition int16
	// Retry is true in the transaction of an operator's Retry or Skip, which applies one tenant's parked
	// events.
	Retry bool
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)

// registered is a projection as the runner holds it.
type registered struct {
	p       Projection
	name    string
	version int
	// key is the first key of the projection's advisory locks (the second is the partition).
	key int32
}

func register(p Projection) (*registered, error) {
	if p == nil {
		return nil, fmt.Errorf("projections: projection must not be nil")
	}
	name, version := p.Name(), p.Version()
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("projections: projection name %q must be 1 to 63 characters of [a-z0-9_.-] starting with a letter", name)
	}
	if version < 1 {
		return nil, fmt.Errorf("projections: projection %s: version must be at least 1, got %d", name, version)
	}
	return &registered{p: p, name: name, version: version, key: LockKey(name, version)}, nil
}

// start returns the applier of one batch transaction: the projection's own batch applier when it is a
// Batcher, or one that calls Projection.Apply.
func (r *registered) start(ctx context.Context, tx pgx.Tx, info *BatchInfo) (BatchApplier, error) {
	if b, ok := r.p.(Batcher); ok {
		a, err := b.StartBatch(ctx, tx, info)
		if err != nil {
			return nil, fmt.Errorf("start batch: %w", err)
		}
		return a, nil
	}
	return plainApplier{r.p}, nil
}

type plainApplier struct{ p Projection }

func (a plainApplier) Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error {
	return a.p.Apply(ctx, tx, ev)
}

func (plainApplier) Flush(context.Context, pgx.Tx) error { return nil }

// LockKey returns the first key of the transaction-scoped advisory locks of a projection version,
// pg_try_advisory_xact_lock(LockKey(name, version), partition): FNV-1a (32 bit) of
// "userstore.projection/<name>/<version>". Two projections whose keys collide only wait for each other
// now and then: correctness rests on the checkpoint's compare-and-set, not on the lock.
func LockKey(name string, version int) int32 {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for _, b := range []byte("userstore.projection/" + name + "/" + strconv.Itoa(version)) {
		h ^= uint32(b)
		h *= prime32
	}
	return int32(h)
}
