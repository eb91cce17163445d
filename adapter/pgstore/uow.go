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

	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/engine"
	"github.com/netkingdom/userstore/internal/logcodec"
)

// uow is the unit of work of one attempt of one mutation: one REPEATABLE READ transaction, scoped to
// the mutation's tenant. Everything it writes — events, read rows, claims, the idempotency record —
// commits or rolls back together.
type uow struct {
	s        *Store
	tx       pgx.Tx
	tenantID uuid.UUID
	// operation and requestHash describe the mutation, for its idempotency reservation.
	operation   string
	requestHash string
	// scoped is set once the transaction-local settings were sent.
	scoped bool
	// reserved is set when Idempotency reserved the key; saved when SaveIdempotency recorded the result.
	reserved, saved bool
}

var _ engine.UnitOfWork = (*uow)(nil)

// batch returns a new batch for the transaction; the first one starts with the transaction-local
// settings (tenant, synchronous_commit), so that they cost no round trip of their own.
func (u *uow) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if !u.scoped {
		b.Queue(sqlSetTxLocals, u.tenantID.String())
		u.scoped = true
	}
	return b
}

// send sends a batch and translates its error.
func (u *uow) send(ctx context.Context, op string, b *pgx.Batch) error {
	return translate(op, u.tx.SendBatch(ctx, b).Close(), phaseWork)
}

// checkTenant refuses a call about another tenant than the transaction's: the engine never makes one.
func (u *uow) checkTenant(tenantID uuid.UUID) error {
	if tenantID != u.tenantID {
		return fmt.Errorf("pgstore: unit of work of tenant %s called for tenant %s", u.tenantID, tenantID)
	}
	return nil
}

// Load implements engine.UnitOfWork: the stream's events, whatever its type, read in the transaction.
func (u *uow) Load(ctx context.Context, tenantID, streamID uuid.UUID) (*engine.Stream, error) {
	if err := u.checkTenant(tenantID); err != nil {
		return nil, err
	}
	res, err := u.s.events.ReadStreamTx(ctx, u.tx, &eventstore.ReadStreamParams{TenantID: tenantID, StreamID: streamID})
	if err != nil {
		return nil, translate("load stream", err, phaseWork)
	}
	st := &engine.Stream{Events: make([]domain.Encoded, len(res.Events))}
	for i, e := range res.Events {
		if i == 0 {
			st.Type = domain.StreamType(e.StreamType)
		}
		st.Events[i] = domain.Encoded{Type: e.EventType, SchemaVersion: int(e.EventVersion), Payload: e.Payload}
	}
	st.Version = int64(len(res.Events))
	return st, nil
}

// Append implements engine.UnitOfWork: the events go to the log (eventstore.AppendTx: the version check
// and the insert in one statement) and the stream's read row is set to its state's view. A concurrent
// append that won the race for the next version fails the transaction with a retryError.
func (u *uow) Append(ctx context.Context, w *engine.Write) error {
	if err := u.checkTenant(w.Stream.TenantID); err != nil {
		return err
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
	_, err := u.s.events.AppendTx(ctx, u.tx, &eventstore.AppendParams{
		TenantID:   w.Stream.TenantID,
		StreamType: string(w.Stream.Type),
		StreamID:   w.Stream.ID,
		Expected:   eventstore.Exact(w.ExpectedVersion),
		Events:     events,
	})
	if err != nil {
		return translate("append", err, phaseWork)
	}
	b := u.batch()
	if err := queueReadModel(b, w); err != nil {
		return err
	}
	if err := u.send(ctx, "update the read model", b); err != nil {
		return err
	}
	if u.s.cfg.afterAppend != nil {
		return u.s.cfg.afterAppend(ctx)
	}
	return nil
}

// Claim implements engine.UnitOfWork. A claim another stream holds — committed before our snapshot, or
// by a concurrent transaction that commits while we wait on the unique index — is a
// *userstore.DuplicateError of the claim's kind.
func (u *uow) Claim(ctx context.Context, c domain.Claim, owner domain.StreamRef) error {
	var (
		holderType string
		holderID   uuid.UUID
		found      bool
	)
	if err := u.checkScope(c, owner); err != nil {
		return err
	}
	b := u.batch()
	if c.Scope == domain.PlatformScope {
		// The tenant slug: the one platform-wide claim, owned by the tenant's stream.
		b.Queue(sqlClaimSlug, c.Value, owner.ID).QueryRow(func(row pgx.Row) error {
			found, holderType = true, string(domain.StreamTenant)
			return row.Scan(&holderID)
		})
	} else {
		b.Queue(sqlClaim, c.Scope, c.Kind, c.Value, string(owner.Type), owner.ID).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				found = true
				if err := rows.Scan(&holderType, &holderID); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	}
	err := u.send(ctx, "claim", b)
	switch {
	case errors.Is(err, errClaimTaken):
		return engine.DuplicateOf(c)
	case err != nil:
		return err
	case !found:
		return fmt.Errorf("pgstore: claim of kind %s returned no holder", c.Kind)
	case holderType != string(owner.Type) || holderID != owner.ID:
		return engine.DuplicateOf(c)
	}
	return nil
}

// Release implements engine.UnitOfWork.
func (u *uow) Release(ctx context.Context, c domain.Claim, owner domain.StreamRef) error {
	if err := u.checkScope(c, owner); err != nil {
		return err
	}
	b := u.batch()
	if c.Scope == domain.PlatformScope {
		b.Queue(sqlReleaseSlug, c.Value, owner.ID)
	} else {
		b.Queue(sqlRelease, c.Scope, c.Kind, c.Value, string(owner.Type), owner.ID)
	}
	return u.send(ctx, "release claim", b)
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

// Guard implements engine.UnitOfWork (docs/adr/0004). Users and applications are guarded by a real
// write of their read row (guard_seq + 1, at the decided version); tenants and catalogs by a shared row
// lock and a version check. A guarded row that is not at the version the command decided on fails the
// transaction with a retryError: the re-run decides on the new state.
func (u *uow) Guard(ctx context.Context, ref domain.StreamRef, version int64) error {
	if err := u.checkTenant(ref.TenantID); err != nil {
		return err
	}
	switch ref.Type {
	case domain.StreamTenant, domain.StreamCatalog, domain.StreamUser, domain.StreamApplication:
	default:
		return fmt.Errorf("pgstore: no guard for %s streams", ref.Type)
	}
	b := u.batch()
	var (
		current int64
		found   bool
		rows    int64
	)
	lock := func(row pgx.Row) error {
		err := row.Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	}
	write := func(ct pgconn.CommandTag) error {
		rows = ct.RowsAffected()
		return nil
	}
	switch ref.Type {
	case domain.StreamTenant:
		b.Queue(sqlGuardTenant, ref.ID).QueryRow(lock)
	case domain.StreamCatalog:
		b.Queue(sqlGuardCatalog, ref.TenantID, ref.ID).QueryRow(lock)
	case domain.StreamUser:
		b.Queue(sqlGuardUser, ref.TenantID, ref.ID, version).Exec(write)
	case domain.StreamApplication:
		b.Queue(sqlGuardApplication, ref.TenantID, ref.ID, version).Exec(write)
	}
	if err := u.send(ctx, "guard "+string(ref.Type), b); err != nil {
		return err
	}
	switch ref.Type {
	case domain.StreamTenant, domain.StreamCatalog:
		if !found || current != version {
			return &retryError{cause: "guard"}
		}
	default:
		if rows != 1 {
			return &retryError{cause: "guard"}
		}
	}
	return nil
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

// Idempotency implements engine.UnitOfWork. When the key has no record yet, it also reserves the key
// for this transaction (see sqlIdempotencyReserve): a concurrent request with the same key then waits
// for this one and, once it commits, is re-run and finds its record — before it could trip over a
// claim or a version this one took.
func (u *uow) Idempotency(ctx context.Context, tenantID uuid.UUID, key string) (*engine.IdempotencyRecord, error) {
	if err := u.checkTenant(tenantID); err != nil {
		return nil, err
	}
	var rec *engine.IdempotencyRecord
	b := u.batch()
	b.Queue(sqlIdempotencyReserve, tenantID, key, u.operation, u.requestHash).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			r := &engine.IdempotencyRecord{TenantID: tenantID, Key: key}
			var result string
			if err := rows.Scan(&r.Operation, &r.RequestHash, &result); err != nil {
				return err
			}
			r.Result = []byte(result)
			rec = r
		}
		return rows.Err()
	})
	if err := u.send(ctx, "read the idempotency key", b); err != nil {
		return nil, err
	}
	u.reserved = rec == nil
	return rec, nil
}

// SaveIdempotency implements engine.UnitOfWork: it records the result on the reservation.
func (u *uow) SaveIdempotency(ctx context.Context, rec *engine.IdempotencyRecord) error {
	if err := u.checkTenant(rec.TenantID); err != nil {
		return err
	}
	result := rec.Result
	if len(result) == 0 {
		result = []byte("null")
	}
	b := u.batch()
	b.Queue(sqlIdempotencySave, rec.TenantID, rec.Key, rec.Operation, rec.RequestHash, string(result))
	if err := u.send(ctx, "save the idempotency key", b); err != nil {
		return err
	}
	u.saved = true
	return nil
}

// compareIDs orders uuids by their bytes: PostgreSQL's uuid order, and that of their canonical strings.
func compareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }
