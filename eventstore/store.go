package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// anyAttempts bounds Append's retries of an Any append that lost a race for the next version.
const anyAttempts = 5

// rollbackTimeout bounds the ROLLBACK that cleans up after a failed append.
const rollbackTimeout = 5 * time.Second

// Store is the event log. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	cfg  *Config
	log  *slog.Logger
	wake notifier
}

// New returns a Store on pool. A nil cfg is valid (all defaults). New does no I/O: the schema must
// have been migrated (package migrations).
func New(pool *pgxpool.Pool, cfg *Config) (*Store, error) {
	if pool == nil {
		return nil, errors.New("eventstore: pool must not be nil")
	}
	if cfg != nil {
		if err := cfg.validate(); err != nil {
			return nil, err
		}
	}
	cfg = cfg.WithDefaults()
	return &Store{pool: pool, cfg: cfg, log: cfg.Logger}, nil
}

// Append appends events to one stream in a transaction of its own (REPEATABLE READ, synchronous
// commit), sent as one pipelined round trip, and wakes this Store's followers after the commit.
//
// Invalid input is an ErrValidation before any SQL. A failed expected-version check is a
// *VersionConflictError carrying the actual version. An Any or StreamExists append that loses a race
// for the next version number (its condition still holds: a stream never stops existing) is retried a
// few times. ErrCommitOutcomeUnknown means the connection broke after
// the commit was sent.
func (s *Store) Append(ctx context.Context, params *AppendParams) (*AppendResult, error) {
	b, err := s.prepareAppend(params)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		res, err := s.appendOwnTx(ctx, b)
		var conflict *VersionConflictError
		if err == nil || !errors.As(err, &conflict) || !retriable(params.Expected, conflict) || attempt == anyAttempts {
			if err == nil {
				s.Notify()
			}
			return res, err
		}
		s.log.DebugContext(ctx, "eventstore: retrying an append that lost a version race",
			slog.String("stream_id", params.StreamID.String()), slog.Int("attempt", attempt))
	}
}

// retriable reports whether an append that failed with conflict may simply run again: one whose
// condition does not name a version — Any, or StreamExists on a stream that exists (a conflict with
// Actual 0 says it does not) — and lost the race for the next version to a concurrent append.
func retriable(expected ExpectedVersion, conflict *VersionConflictError) bool {
	switch expected.kind {
	case kindAny:
		return true
	case kindStreamExists:
		return conflict.Actual != 0
	}
	return false
}

func (s *Store) appendOwnTx(ctx context.Context, b *appendBatch) (*AppendResult, error) {
	p := b.params
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, translateError("append", err, nil, false)
	}
	defer func() {
		// After a failed statement the transaction is open and aborted: end it so the connection
		// can go back to the pool (the pool discards a connection that is still in a transaction).
		if conn.Conn().PgConn().TxStatus() != 'I' && !conn.Conn().IsClosed() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			_, _ = conn.Exec(rctx, sqlRollback)
			cancel()
		}
		conn.Release()
	}()

	// One round trip: BEGIN, the transaction-local settings, the append statement and COMMIT are
	// pipelined. If a statement fails, PostgreSQL skips the rest (COMMIT included) and the
	// transaction stays open and aborted until our ROLLBACK.
	var res *AppendResult
	batch := &pgx.Batch{}
	batch.Queue(sqlBeginRepeatableRead)
	batch.Queue(sqlSetAppendLocals, p.TenantID.String())
	s.queueAppend(batch, b, &res, nil)
	batch.Queue(sqlCommit)
	err = translateError("append", conn.SendBatch(ctx, batch).Close(), b.conflict(), true)

	var conflict *VersionConflictError
	if errors.As(err, &conflict) && conflict.Actual == ActualVersionUnknown {
		// We lost the race for the next version: the transaction is aborted, the winner committed.
		// Roll back and read the version the winner left.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		_, rbErr := conn.Exec(rctx, sqlRollback)
		cancel()
		if rbErr == nil {
			if v, rerr := s.streamVersion(ctx, conn.Conn(), p.TenantID, p.StreamID); rerr == nil {
				conflict.Actual = v
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// AppendTx appends events to one stream inside the caller's transaction tx, in one round trip. tx
// must be REPEATABLE READ or SERIALIZABLE (otherwise ErrIsolation and nothing is written): the log's
// causal order depends on it. AppendTx may be called several times in one transaction, for several
// streams (of the same tenant: it scopes tx to params.TenantID with set_config(..., true)); it also
// sets synchronous_commit on for tx.
//
// The events become visible when the caller commits; call Notify after the commit to wake this
// Store's followers at once. A failed expected-version check is a *VersionConflictError with the
// actual version; a lost race to a concurrent append (SQLSTATE 23505 on the version constraint, or
// 40001) is one with Actual = ActualVersionUnknown, and leaves tx aborted: roll it back and retry the
// whole command from BEGIN.
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, params *AppendParams) (*AppendResult, error) {
	b, err := s.prepareAppend(params)
	if err != nil {
		return nil, err
	}
	if tx == nil {
		return nil, invalid("tx", "must not be nil")
	}
	var res *AppendResult
	batch := &pgx.Batch{}
	batch.Queue(sqlSetAppendLocals, params.TenantID.String())
	s.queueAppend(batch, b, &res, nil)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, translateError("append", err, b.conflict(), false)
	}
	return res, nil
}

// QueueAppend queues into batch the statements AppendTx sends, for a caller that sends them in its own
// transaction together with statements of its own, in one round trip (pgx.Tx.SendBatch or a connection
// inside BEGIN … COMMIT). Invalid params are an ErrValidation before anything is queued. Once the
// batch's results are read (BatchResults.Close), done receives the result; when the append fails,
// Close returns its error instead, translated as AppendTx's are (a *VersionConflictError for a failed
// expected-version check or a lost race, which leaves the transaction aborted), and done is not called.
// The transaction must be REPEATABLE READ or SERIALIZABLE (ErrIsolation otherwise, and nothing is
// written); the statements scope it to params.TenantID and set synchronous_commit on, as AppendTx does.
// A nil done is valid.
func (s *Store) QueueAppend(batch *pgx.Batch, params *AppendParams, done func(*AppendResult) error) error {
	b, err := s.prepareAppend(params)
	if err != nil {
		return err
	}
	if batch == nil {
		return invalid("batch", "must not be nil")
	}
	queueTranslated(batch, "append", sqlSetAppendLocals, params.TenantID.String())
	var res *AppendResult
	s.queueAppend(batch, b, &res, func(err error) error {
		if err != nil {
			return translateError("append", err, b.conflict(), false)
		}
		if done != nil {
			return done(res)
		}
		return nil
	})
	return nil
}

// queueTranslated queues a statement whose rows are ignored and whose error, when it fails, is returned
// translated (a batch's error is otherwise returned as the driver's).
func queueTranslated(batch *pgx.Batch, op, sql string, args ...any) {
	batch.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		rows.Close()
		return translateError(op, rows.Err(), nil, false)
	})
}

// queueAppend queues the append statement; its callback stores the result in *out or returns the
// error (a version conflict when the condition failed). When then is not nil, the callback ends with
// then(err): err is the statement's driver error (nil on success), for then to translate.
func (s *Store) queueAppend(batch *pgx.Batch, b *appendBatch, out **AppendResult, then func(error) error) {
	if then == nil {
		then = func(err error) error { return err }
	}
	p := b.params
	batch.Queue(sqlAppend,
		p.TenantID, p.StreamID, p.StreamType, p.Expected.sqlKind(), p.Expected.version, b.partition,
		b.idTexts, b.types, b.versions, b.payloads, b.metadata,
	).QueryRow(func(row pgx.Row) error {
		var (
			current     int64
			isolationOK bool
			positions   []int64
			xid         string
		)
		if err := row.Scan(&current, &isolationOK, &positions, &xid); err != nil {
			return then(err)
		}
		if !isolationOK {
			return fmt.Errorf("eventstore: append to stream %s: %w", p.StreamID, ErrIsolation)
		}
		if len(positions) == 0 {
			return &VersionConflictError{StreamID: p.StreamID, Expected: p.Expected, Actual: current}
		}
		if len(positions) != len(b.ids) {
			return fmt.Errorf("eventstore: append to stream %s: inserted %d of %d events", p.StreamID, len(positions), len(b.ids))
		}
		txid, err := strconv.ParseUint(xid, 10, 64)
		if err != nil {
			return fmt.Errorf("eventstore: append: parse transaction id: %w", err)
		}
		*out = &AppendResult{
			NewVersion:    current + int64(len(b.ids)),
			Positions:     positions,
			EventIDs:      b.ids,
			TransactionID: txid,
			Partition:     b.partition,
		}
		return then(nil)
	})
}

// streamVersion reads a stream's current version in a transaction of its own on conn.
func (s *Store) streamVersion(ctx context.Context, conn *pgx.Conn, tenantID, streamID uuid.UUID) (int64, error) {
	var v int64
	batch := &pgx.Batch{}
	batch.Queue(sqlSetTenant, tenantID.String())
	batch.Queue(sqlStreamVersion, tenantID, streamID).QueryRow(func(row pgx.Row) error { return row.Scan(&v) })
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return 0, translateError("read stream version", err, nil, false)
	}
	return v, nil
}

// Notify wakes this Store's followers so they poll at once. Append calls it after each commit; a
// caller of AppendTx calls it after committing its transaction.
func (s *Store) Notify() { s.wake.notify() }

// querier is what the read functions need from a pool or a transaction. SendBatch without an open
// transaction runs the batch as one implicit transaction, so set_config(..., true) in it scopes the
// statements that follow it.
type querier interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// ReadStream reads a stream's events in version order, from params.FromVersion on.
func (s *Store) ReadStream(ctx context.Context, params *ReadStreamParams) (*ReadStreamResult, error) {
	return s.readStream(ctx, s.pool, params)
}

// ReadStreamTx reads a stream's events inside the caller's transaction (for example to load an
// aggregate before AppendTx in the same REPEATABLE READ transaction). It scopes tx to
// params.TenantID.
func (s *Store) ReadStreamTx(ctx context.Context, tx pgx.Tx, params *ReadStreamParams) (*ReadStreamResult, error) {
	if tx == nil {
		return nil, invalid("tx", "must not be nil")
	}
	return s.readStream(ctx, tx, params)
}

// QueueReadStream queues into batch the statements ReadStreamTx sends, for a caller that sends them in
// its own transaction together with statements of its own, in one round trip. Invalid params are an
// ErrValidation before anything is queued. Once the batch's results are read (BatchResults.Close), done
// receives the result; when the read fails, Close returns its error instead, translated as
// ReadStreamTx's are, and done is not called. The statements scope the transaction to params.TenantID.
func (s *Store) QueueReadStream(batch *pgx.Batch, params *ReadStreamParams, done func(*ReadStreamResult) error) error {
	if batch == nil {
		return invalid("batch", "must not be nil")
	}
	if done == nil {
		return invalid("done", "must not be nil")
	}
	return queueReadStream(batch, params, true, func(res *ReadStreamResult, err error) error {
		if err != nil {
			return translateError("read stream", err, nil, false)
		}
		return done(res)
	})
}

func (s *Store) readStream(ctx context.Context, q querier, p *ReadStreamParams) (*ReadStreamResult, error) {
	var res *ReadStreamResult
	batch := &pgx.Batch{}
	err := queueReadStream(batch, p, false, func(r *ReadStreamResult, err error) error {
		res = r
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := q.SendBatch(ctx, batch).Close(); err != nil {
		return nil, translateError("read stream", err, nil, false)
	}
	return res, nil
}

// queueReadStream validates p and queues its read; then receives the result, or the driver's error of
// the read. translated: a failed set_config fails the batch with a translated error (otherwise with
// the driver's, for the caller to translate); then is not called then.
func queueReadStream(batch *pgx.Batch, p *ReadStreamParams, translated bool, then func(*ReadStreamResult, error) error) error {
	switch {
	case p == nil:
		return invalid("ReadStreamParams", "must not be nil")
	case p.TenantID == uuid.Nil:
		return invalid("TenantID", "must not be empty")
	case p.StreamID == uuid.Nil:
		return invalid("StreamID", "must not be empty")
	case p.FromVersion < 0:
		return invalid("FromVersion", "must not be negative, got %d", p.FromVersion)
	case p.Limit < 0:
		return invalid("Limit", "must not be negative, got %d", p.Limit)
	}
	var limit *int64
	if p.Limit > 0 {
		l := int64(p.Limit)
		limit = &l
	}
	if translated {
		queueTranslated(batch, "read stream", sqlSetTenant, p.TenantID.String())
	} else {
		batch.Queue(sqlSetTenant, p.TenantID.String())
	}
	batch.Queue(sqlReadStream, p.TenantID, p.StreamID, p.FromVersion, limit).Query(func(rows pgx.Rows) error {
		events, err := scanEvents(rows, p.Limit)
		if err != nil {
			return then(nil, err)
		}
		return then(&ReadStreamResult{Events: events}, nil)
	})
	return nil
}

// ReadAll reads a page of the log in (transaction id, global position) order after params.After,
// bounded by the horizon: only events of transactions that ended before every transaction still
// running are returned, so a later page never holds an event that sorts before this one's last.
func (s *Store) ReadAll(ctx context.Context, params *ReadAllParams) (*ReadAllResult, error) {
	return s.readAll(ctx, s.pool, params)
}

// ReadAllTx is ReadAll inside the caller's transaction. In a REPEATABLE READ transaction the
// horizon is that of the transaction's snapshot.
func (s *Store) ReadAllTx(ctx context.Context, tx pgx.Tx, params *ReadAllParams) (*ReadAllResult, error) {
	if tx == nil {
		return nil, invalid("tx", "must not be nil")
	}
	return s.readAll(ctx, tx, params)
}

func (s *Store) readAll(ctx context.Context, q querier, p *ReadAllParams) (*ReadAllResult, error) {
	if p == nil {
		p = &ReadAllParams{}
	}
	limit := p.Limit
	switch {
	case limit < 0 || limit > ReadLimitMax:
		return nil, invalid("Limit", "must be between 0 and %d, got %d", ReadLimitMax, limit)
	case limit == 0:
		limit = ReadLimitDefault
	}
	if p.Partition != nil && (*p.Partition < 0 || *p.Partition >= Partitions) {
		return nil, invalid("Partition", "must be between 0 and %d, got %d", Partitions-1, *p.Partition)
	}
	if p.After.Position < 0 {
		return nil, invalid("After", "position must not be negative")
	}

	args := []any{strconv.FormatUint(p.After.TransactionID, 10), p.After.Position, int64(limit)}
	if p.Partition != nil {
		args = append(args, *p.Partition)
	}
	tenant := p.TenantID != uuid.Nil
	if tenant {
		args = append(args, p.TenantID)
	}
	sql := sqlReadAll[b2i(p.Partition != nil)][b2i(tenant)]

	res := &ReadAllResult{Next: p.After}
	batch := &pgx.Batch{}
	if tenant {
		batch.Queue(sqlSetTenant, p.TenantID.String())
	}
	batch.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		var err error
		res.Events, err = scanEvents(rows, limit)
		return err
	})
	if err := q.SendBatch(ctx, batch).Close(); err != nil {
		return nil, translateError("read all", err, nil, false)
	}
	if n := len(res.Events); n > 0 {
		res.Next = res.Events[n-1].Cursor()
	}
	return res, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func scanEvents(rows pgx.Rows, sizeHint int) ([]RecordedEvent, error) {
	events := make([]RecordedEvent, 0, min(max(sizeHint, 16), 1024))
	for rows.Next() {
		var (
			e        RecordedEvent
			xid      string
			payload  string
			metadata string
		)
		if err := rows.Scan(&e.GlobalPosition, &xid, &e.TenantID, &e.StreamType, &e.StreamID, &e.StreamVersion,
			&e.Partition, &e.EventID, &e.EventType, &e.EventVersion, &payload, &metadata, &e.RecordedAt); err != nil {
			return nil, err
		}
		var err error
		if e.TransactionID, err = strconv.ParseUint(xid, 10, 64); err != nil {
			return nil, fmt.Errorf("parse transaction id: %w", err)
		}
		e.Payload = json.RawMessage(payload)
		if err := json.Unmarshal([]byte(metadata), &e.Metadata); err != nil {
			return nil, fmt.Errorf("decode metadata of event at position %d: %w", e.GlobalPosition, err)
		}
		events = append(events, e)
	}
	return events, rows.Err()
}

// Horizon reports the log's read horizon and, when an open transaction holds it back, that
// transaction's backend (visible to roles with pg_read_all_stats, such as the projector role). A
// long-running write transaction anywhere in the cluster holds every reader back: expose this in
// readiness and metrics.
func (s *Store) Horizon(ctx context.Context) (*Horizon, error) {
	var (
		xmin      string
		pid       *int32
		appName   *string
		state     *string
		xactStart *time.Time
		ageSecs   *float64
		xidAge    *int32
	)
	err := s.pool.QueryRow(ctx, sqlHorizon).Scan(&xmin, &pid, &appName, &state, &xactStart, &ageSecs, &xidAge)
	if err != nil {
		return nil, translateError("horizon", err, nil, false)
	}
	h := &Horizon{}
	if h.Xmin, err = strconv.ParseUint(xmin, 10, 64); err != nil {
		return nil, fmt.Errorf("eventstore: horizon: parse xmin: %w", err)
	}
	if pid != nil {
		h.Holder = &HorizonHolder{PID: int(*pid)}
		if appName != nil {
			h.Holder.ApplicationName = *appName
		}
		if state != nil {
			h.Holder.State = *state
		}
		if xactStart != nil {
			h.Holder.XactStart = *xactStart
		}
		if ageSecs != nil {
			h.Holder.XactAge = time.Duration(*ageSecs * float64(time.Second))
		}
		if xidAge != nil {
			h.Holder.XidAge = *xidAge
		}
	}
	return h, nil
}

// notifier wakes goroutines waiting for a local append: wait returns a channel that notify closes.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}
