package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/engine"
	"github.com/netkingdom/userstore/internal/logcodec"
)

// uow is the unit of work of one attempt of one mutation: one REPEATABLE READ transaction on one
// connection, scoped to the mutation's tenant. Everything it writes — events, read rows, claims, the
// idempotency record — commits or rolls back together.
//
// It sends SQL only when it needs an answer (docs/adr/0010):
//
//   - Plan sends BEGIN, the transaction-local settings, the idempotency lookup and the planned loads as
//     one batch, and answers the calls that follow from what it read;
//   - the guards and the writes (Guard, Append, Claim, Release, SaveIdempotency) are queued and go with
//     the next batch: that of a read the plan did not cover, or the commit's;
//   - commit sends the queued statements as one batch, then COMMIT.
//
// CreateUser so costs three round trips: the plan, the writes, COMMIT.
type uow struct {
	s        *Store
	conn     *pgxpool.Conn
	tenantID uuid.UUID
	// operation and requestHash describe the mutation, for its idempotency record.
	operation   string
	requestHash string
	// begun is set once BEGIN was queued (it goes with the first batch).
	begun bool

	// key is the mutation's idempotency key, once the engine named it (Plan or Idempotency).
	key string
	// idem is the result of the key's lookup, once read.
	idem *idemLookup
	// streams are the streams read in the transaction, with the events the unit of work appended since.
	streams map[uuid.UUID]*engine.Stream

	// locks are the queued locks of the guarded rows this unit of work writes (see lockWritten), guards
	// the queued guards (Guard), pending the queued writes in the order the engine made them. A batch
	// carries them in that order.
	locks, guards, pending pgx.Batch
	// locked and guarded are the streams queued in locks and guards.
	locked, guarded map[domain.StreamRef]bool
	// pendingTake is set while pending holds a claim (taken, not released).
	pendingTake bool
	// record is the idempotency record SaveIdempotency was given, until it is queued.
	record *engine.IdempotencyRecord
	// reserved is set once the key was reserved, saved once its record was queued.
	reserved, saved bool
	// wrote is set once the operation queued a write.
	wrote bool
}

// idemLookup is what the idempotency lookup found: rec is nil when the key has no record.
type idemLookup struct {
	key string
	rec *engine.IdempotencyRecord
}

var (
	_ engine.UnitOfWork = (*uow)(nil)
	_ engine.Planner    = (*uow)(nil)
)

func newUOW(s *Store, conn *pgxpool.Conn, op engine.Operation) *uow {
	return &uow{
		s: s, conn: conn, tenantID: op.TenantID(), operation: op.Name(), requestHash: op.RequestHash(),
		streams: map[uuid.UUID]*engine.Stream{},
		locked:  map[domain.StreamRef]bool{},
		guarded: map[domain.StreamRef]bool{},
	}
}

// batch returns a new batch for the transaction: the first one begins it (BEGIN and the
// transaction-local settings: tenant, synchronous_commit); every one carries the queued writes first,
// so that what it reads sees them.
func (u *uow) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if !u.begun {
		b.Queue(sqlBeginWrite)
		b.Queue(sqlSetTxLocals, u.tenantID.String())
		u.begun = true
	}
	u.queuePending(b)
	return b
}

// queuePending moves the queued statements into b: the locks of written guarded rows, the guards, the
// idempotency record, then the writes (docs/adr/0010).
//
// The locks go first so that a tenant or catalog command is given its transaction id — the log's first
// order key — only when it meets the guards of concurrent commands (see lockWritten). The idempotency
// record goes before the writes: a concurrent mutation with the same key then waits on the key (and is
// re-run once this one commits) before it can meet one of our claims and take it for a duplicate. When
// claims must be sent before the record exists (a read the plan did not cover comes after them), the
// key is reserved ahead of them instead.
func (u *uow) queuePending(b *pgx.Batch) {
	b.QueuedQueries = append(b.QueuedQueries, u.locks.QueuedQueries...)
	b.QueuedQueries = append(b.QueuedQueries, u.guards.QueuedQueries...)
	u.locks.QueuedQueries, u.guards.QueuedQueries = nil, nil
	if u.key != "" && !u.reserved && !u.saved && u.record == nil && u.pendingTake {
		b.Queue(sqlIdempotencyReserve, u.tenantID, u.key, u.operation, u.requestHash)
		u.reserved = true
	}
	if rec := u.record; rec != nil {
		result := rec.Result
		if len(result) == 0 {
			result = []byte("null")
		}
		if u.reserved {
			b.Queue(sqlIdempotencySave, rec.TenantID, rec.Key, string(result)).Exec(func(ct pgconn.CommandTag) error {
				if ct.RowsAffected() != 1 {
					return internalf("the reserved idempotency key of %s was not found", u.operation)
				}
				return nil
			})
		} else {
			b.Queue(sqlIdempotencyInsert, rec.TenantID, rec.Key, rec.Operation, rec.RequestHash, string(result))
		}
		u.record, u.saved = nil, true
	}
	b.QueuedQueries = append(b.QueuedQueries, u.pending.QueuedQueries...)
	u.pending.QueuedQueries, u.pendingTake = nil, false
}

// send sends a batch and translates its error.
func (u *uow) send(ctx context.Context, op string, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	return translate(op, u.conn.SendBatch(ctx, b).Close(), phaseWork)
}

// flush sends the queued statements (with BEGIN, if nothing was sent yet).
func (u *uow) flush(ctx context.Context) error {
	if u.locks.Len() == 0 && u.guards.Len() == 0 && u.pending.Len() == 0 && u.record == nil {
		return nil
	}
	return u.send(ctx, "write", u.batch())
}

// commit sends the queued writes and then COMMIT. COMMIT goes on its own, as a simple query, after the
// writes' answer: a write that failed must never be followed by a COMMIT, and a COMMIT that cannot be
// told apart on the wire is one a fault test cannot aim at (docs/adr/0010). A COMMIT whose answer is
// lost because the connection broke is ErrCommitOutcomeUnknown; one answered with ROLLBACK (the
// transaction had failed) is re-run.
func (u *uow) commit(ctx context.Context) error {
	if !u.wrote {
		// The operation wrote nothing (an update to the current value): the guards protect writes,
		// there is none to protect.
		u.guards.QueuedQueries = nil
	}
	if err := u.flush(ctx); err != nil {
		return err
	}
	if u.reserved && !u.saved {
		return fmt.Errorf("pgstore: %s: the idempotency key was reserved but its result never saved", u.operation)
	}
	if !u.begun {
		return nil
	}
	ct, err := u.conn.Exec(ctx, sqlCommit)
	if err != nil {
		return translate("commit "+u.operation, err, phaseCommit)
	}
	if ct.String() == "ROLLBACK" {
		return &retryError{cause: "rollback at commit"}
	}
	return nil
}

// checkTenant refuses a call about another tenant than the transaction's: the engine never makes one.
func (u *uow) checkTenant(tenantID uuid.UUID) error {
	if tenantID != u.tenantID {
		return fmt.Errorf("pgstore: unit of work of tenant %s called for tenant %s", u.tenantID, tenantID)
	}
	return nil
}

// Plan implements engine.Planner: it begins the transaction and reads, in the same round trip, what
// the operation will read before it decides — the idempotency record and the streams.
func (u *uow) Plan(ctx context.Context, p *engine.Plan) error {
	if err := u.checkTenant(p.TenantID); err != nil {
		return err
	}
	b := u.batch()
	if p.IdempotencyKey != "" {
		u.key = p.IdempotencyKey
		u.queueIdempotency(b, p.IdempotencyKey)
	}
	for _, id := range p.Streams {
		if err := u.queueLoad(b, id); err != nil {
			return err
		}
	}
	return u.send(ctx, "begin "+u.operation, b)
}

// queueLoad queues the read of a stream into b (once per stream).
func (u *uow) queueLoad(b *pgx.Batch, streamID uuid.UUID) error {
	if _, ok := u.streams[streamID]; ok {
		return nil
	}
	u.streams[streamID] = nil // queued
	err := u.s.events.QueueReadStream(b, &eventstore.ReadStreamParams{TenantID: u.tenantID, StreamID: streamID},
		func(res *eventstore.ReadStreamResult) error {
			st := &engine.Stream{Events: make([]domain.Encoded, len(res.Events))}
			for i, e := range res.Events {
				if i == 0 {
					st.Type = domain.StreamType(e.StreamType)
				}
				st.Events[i] = domain.Encoded{Type: e.EventType, SchemaVersion: int(e.EventVersion), Payload: e.Payload}
			}
			st.Version = int64(len(res.Events))
			u.streams[streamID] = st
			return nil
		})
	if err != nil {
		return translate("load stream", err, phaseWork)
	}
	return nil
}

// Load implements engine.UnitOfWork: the stream's events, whatever its type, read in the transaction
// (by Plan, or now), with the events this unit of work appended to it since.
func (u *uow) Load(ctx context.Context, tenantID, streamID uuid.UUID) (*engine.Stream, error) {
	if err := u.checkTenant(tenantID); err != nil {
		return nil, err
	}
	if st := u.streams[streamID]; st == nil {
		delete(u.streams, streamID)
		b := u.batch()
		if err := u.queueLoad(b, streamID); err != nil {
			return nil, err
		}
		if err := u.send(ctx, "load stream", b); err != nil {
			return nil, err
		}
	}
	st := *u.streams[streamID]
	st.Events = slices.Clip(st.Events)
	return &st, nil
}

// Append implements engine.UnitOfWork: it queues the events for the log (eventstore.QueueAppend: the
// version check and the insert in one statement) and the stream's read row, set to its state's view. A
// concurrent append that won the race for the next version fails the transaction, when the writes are
// sent, with a retryError.
func (u *uow) Append(ctx context.Context, w *engine.Write) error {
	if err := u.checkTenant(w.Stream.TenantID); err != nil {
		return err
	}
	st := u.streams[w.Stream.ID]
	if st != nil && st.Version != w.ExpectedVersion {
		// The engine appends at the version it loaded: anything else is a bug, not a race.
		return fmt.Errorf("pgstore: append to %s stream at version %d, read at version %d",
			w.Stream.Type, w.ExpectedVersion, st.Version)
	}
	events := make([]eventstore.EventData, len(w.Events))
	meta := logcodec.StoreMetadata(w.Metadata)
	for i, ev := range w.Events {
		if ev.Version != w.ExpectedVersion+int64(i)+1 {
			return fmt.Errorf("pgstore: append to %s stream: event %d has version %d after expected version %d",
				w.Stream.Type, i, ev.Version, w.ExpectedVersion)
		}
		events[i] = eventstore.EventData{
			ID: ev.EventID, Type: ev.Type, SchemaVersion: int16(ev.SchemaVersion), Payload: ev.Payload, Metadata: meta,
		}
	}
	err := u.s.events.QueueAppend(&u.pending, &eventstore.AppendParams{
		TenantID:   w.Stream.TenantID,
		StreamType: string(w.Stream.Type),
		StreamID:   w.Stream.ID,
		Expected:   eventstore.Exact(w.ExpectedVersion),
		Events:     events,
	}, nil)
	if err != nil {
		return translate("append", err, phaseWork)
	}
	if err := queueReadModel(&u.pending, w); err != nil {
		return err
	}
	u.wrote = true
	u.lockWritten(w)
	if st != nil {
		if st.Version == 0 {
			st.Type = w.Stream.Type
		}
		for _, ev := range w.Events {
			st.Events = append(st.Events, ev.Encoded)
		}
		st.Version += int64(len(w.Events))
	}
	if u.s.cfg.afterAppend != nil {
		// The hook runs after the events and read rows were written: send them now.
		if err := u.flush(ctx); err != nil {
			return err
		}
		return u.s.cfg.afterAppend(ctx)
	}
	return nil
}

// Claim implements engine.UnitOfWork. A claim another stream holds — committed before our snapshot, or
// by a concurrent transaction that commits while we wait on the unique index — is a
// *userstore.DuplicateError of the claim's kind: a tenant's claim is queued with the writes and fails
// them when they are sent; a tenant slug (platform-wide, CreateTenant only) is claimed at once.
func (u *uow) Claim(ctx context.Context, c domain.Claim, owner domain.StreamRef) error {
	if err := u.checkScope(c, owner); err != nil {
		return err
	}
	var (
		holderType string
		holderID   uuid.UUID
		found      bool
	)
	check := func(err error) error {
		switch {
		case isClaimTaken(err):
			return engine.DuplicateOf(c)
		case err != nil:
			return err
		case !found:
			return internalf("claim of kind %s returned no holder", c.Kind)
		case holderType != string(owner.Type) || holderID != owner.ID:
			return engine.DuplicateOf(c)
		}
		return nil
	}
	u.pendingTake, u.wrote = true, true
	if c.Scope == domain.PlatformScope {
		// The tenant slug: the one platform-wide claim, owned by the tenant's stream.
		b := u.batch()
		b.Queue(sqlClaimSlug, c.Value, owner.ID).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				found, holderType = true, string(domain.StreamTenant)
				if err := rows.Scan(&holderID); err != nil {
					return err
				}
			}
			return check(rows.Err())
		})
		return u.send(ctx, "claim", b)
	}
	u.pending.Queue(sqlClaim, c.Scope, c.Kind, c.Value, string(owner.Type), owner.ID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			found = true
			if err := rows.Scan(&holderType, &holderID); err != nil {
				return err
			}
		}
		return check(rows.Err())
	})
	return nil
}

// Release implements engine.UnitOfWork: the release is queued with the writes.
func (u *uow) Release(ctx context.Context, c domain.Claim, owner domain.StreamRef) error {
	if err := u.checkScope(c, owner); err != nil {
		return err
	}
	u.wrote = true
	if c.Scope == domain.PlatformScope {
		u.pending.Queue(sqlReleaseSlug, c.Value, owner.ID)
	} else {
		u.pending.Queue(sqlRelease, c.Scope, c.Kind, c.Value, string(owner.Type), owner.ID)
	}
	return nil
}

// checkScope refuses a claim outside the transaction's tenant: a tenant claim of another tenant, or a
// platform claim (the tenant slug) whose owner is not the transaction's tenant's own stream.
func (u *uow) checkScope(c domain.Claim, owner domain.StreamRef) error {
	if c.Scope != domain.PlatformScope {
		return u.checkTenant(c.Scope)
	}
	if owner.Type != domain.StreamTenant || owner.ID != u.tenantID {
		return fmt.Errorf("pgstore: a platform claim of kind %s for a %s stream", c.Kind, owner.Type)
	}
	return nil
}

// Guard implements engine.UnitOfWork (docs/adr/0004, 0010). Users and applications are guarded by a
// real write of their read row (guard_seq + 1); tenants and catalogs by a shared row lock. The guard is
// queued and goes with the next batch, ahead of the writes; a guarded row that is not at the version
// the command decided on then fails the transaction with a retryError (before COMMIT is sent): the
// re-run decides on the new state.
func (u *uow) Guard(ctx context.Context, ref domain.StreamRef, version int64) error {
	if err := u.checkTenant(ref.TenantID); err != nil {
		return err
	}
	if u.guarded[ref] {
		return nil
	}
	var q *pgx.QueuedQuery
	switch ref.Type {
	case domain.StreamTenant:
		q = u.guards.Queue(sqlGuardTenant, ref.ID)
	case domain.StreamCatalog:
		q = u.guards.Queue(sqlGuardCatalog, ref.TenantID, ref.ID)
	case domain.StreamUser:
		q = u.guards.Queue(sqlGuardUser, ref.TenantID, ref.ID)
	case domain.StreamApplication:
		q = u.guards.Queue(sqlGuardApplication, ref.TenantID, ref.ID)
	default:
		return fmt.Errorf("pgstore: no guard for %s streams", ref.Type)
	}
	u.guarded[ref] = true
	q.Query(func(rows pgx.Rows) error {
		found := false
		var current int64
		for rows.Next() {
			found = true
			if err := rows.Scan(&current); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !found || current != version {
			return &retryError{cause: "guard"}
		}
		return nil
	})
	return nil
}

// lockWritten queues, for a write to a tenant or a catalog that exists, a lock of its read row (FOR NO
// KEY UPDATE, what the row's update takes anyway) that goes first in the next batch, before any other
// write of the transaction. Commands that depend on the tenant or the catalog share-lock that row
// (Guard); taking it first gives this transaction its id — the log's order key — only once the
// commands that share-lock the row before it have committed, so that the log lists their events first,
// as they committed (docs/adr/0010).
func (u *uow) lockWritten(w *engine.Write) {
	ref := w.Stream
	if w.ExpectedVersion == 0 || u.locked[ref] {
		return
	}
	switch ref.Type {
	case domain.StreamTenant:
		u.locks.Queue(sqlLockTenant, ref.ID)
	case domain.StreamCatalog:
		u.locks.Queue(sqlLockCatalog, ref.TenantID, ref.ID)
	default:
		return
	}
	u.locked[ref] = true
}

// UserDependents implements engine.UnitOfWork, from the read tables in the transaction's snapshot.
func (u *uow) UserDependents(ctx context.Context, tenantID, userID uuid.UUID) (*engine.UserDependents, error) {
	if err := u.checkTenant(tenantID); err != nil {
		return nil, err
	}
	deps := &engine.UserDependents{}
	b := u.batch()
	b.Queue(sqlUserDependents, tenantID, userID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				kind string
				id   uuid.UUID
			)
			if err := rows.Scan(&kind, &id); err != nil {
				return err
			}
			switch kind {
			case "account":
				deps.Accounts = append(deps.Accounts, id)
			case "identity":
				deps.Identities = append(deps.Identities, id)
			case "binding":
				deps.Bindings = append(deps.Bindings, id)
			case "catalog":
				deps.Catalogs = append(deps.Catalogs, id)
			}
		}
		return rows.Err()
	})
	if err := u.send(ctx, "read the user's dependents", b); err != nil {
		return nil, err
	}
	for _, ids := range [][]uuid.UUID{deps.Accounts, deps.Identities, deps.Bindings, deps.Catalogs} {
		slices.SortFunc(ids, compareIDs)
	}
	return deps, nil
}

// ApplicationBindings implements engine.UnitOfWork, from the read tables in the transaction's snapshot.
func (u *uow) ApplicationBindings(ctx context.Context, tenantID, applicationID uuid.UUID) ([]uuid.UUID, error) {
	if err := u.checkTenant(tenantID); err != nil {
		return nil, err
	}
	var ids []uuid.UUID
	b := u.batch()
	b.Queue(sqlApplicationBindings, tenantID, applicationID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err := u.send(ctx, "read the application's bindings", b); err != nil {
		return nil, err
	}
	return ids, nil
}

// queueIdempotency queues the lookup of a key into b.
func (u *uow) queueIdempotency(b *pgx.Batch, key string) {
	u.idem = nil
	b.Queue(sqlIdempotencyFind, u.tenantID, key).Query(func(rows pgx.Rows) error {
		look := &idemLookup{key: key}
		for rows.Next() {
			r := &engine.IdempotencyRecord{TenantID: u.tenantID, Key: key}
			var result string
			if err := rows.Scan(&r.Operation, &r.RequestHash, &result); err != nil {
				return err
			}
			r.Result = []byte(result)
			look.rec = r
		}
		u.idem = look
		return rows.Err()
	})
}

// Idempotency implements engine.UnitOfWork: the key's committed record in the transaction's snapshot,
// read by Plan or now. Nothing is written for the key until the mutation's writes are sent (see
// queuePending): a concurrent request with the same key then waits on idempotency_keys_pkey and, once
// this one commits, is re-run and finds its record.
func (u *uow) Idempotency(ctx context.Context, tenantID uuid.UUID, key string) (*engine.IdempotencyRecord, error) {
	if err := u.checkTenant(tenantID); err != nil {
		return nil, err
	}
	u.key = key
	if u.idem == nil || u.idem.key != key {
		b := u.batch()
		u.queueIdempotency(b, key)
		if err := u.send(ctx, "read the idempotency key", b); err != nil {
			return nil, err
		}
	}
	return u.idem.rec, nil
}

// SaveIdempotency implements engine.UnitOfWork: the record goes first into the next batch of writes.
func (u *uow) SaveIdempotency(ctx context.Context, rec *engine.IdempotencyRecord) error {
	if err := u.checkTenant(rec.TenantID); err != nil {
		return err
	}
	if rec.Key != u.key {
		return fmt.Errorf("pgstore: %s: saving an idempotency key the operation did not look up", u.operation)
	}
	u.record, u.wrote = rec, true
	return nil
}

// isClaimTaken reports whether err is the unique violation of a claim another stream holds.
func isClaimTaken(err error) bool {
	return err != nil && errors.Is(translate("claim", err, phaseWork), errClaimTaken)
}

// compareIDs orders uuids by their bytes: PostgreSQL's uuid order, and that of their canonical strings.
func compareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }
