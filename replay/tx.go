package replay

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// rollbackTimeout bounds the ROLLBACK that ends a failed or interrupted operation.
const rollbackTimeout = 5 * time.Second

// readOnly runs fn in one transaction BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY: one snapshot for
// everything fn reads, and no write possible. It works on a hot standby (which allows REPEATABLE READ
// but not SERIALIZABLE) and with default_transaction_read_only on. The transaction takes no
// transaction id, so it holds back no reader of the log (only VACUUM's cleanup, for as long as it runs).
func (r *Replayer) readOnly(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return translate(op, err)
	}
	if err := fn(tx); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		_ = tx.Rollback(rctx)
		cancel()
		return err
	}
	// Nothing was written: COMMIT just ends the transaction.
	return translate(op, tx.Commit(ctx))
}

// progress reports progress to the configured ProgressFunc, if any.
type progress struct {
	fn   func(Progress)
	done int64
	tot  int64
}

func (r *Replayer) newProgress() *progress { return &progress{fn: r.cfg.ProgressFunc} }

// enabled reports whether anyone listens: only then is the total worth counting.
func (p *progress) enabled() bool { return p.fn != nil }

func (p *progress) total(n int64) {
	p.tot = n
	if p.fn != nil {
		p.fn(Progress{Done: p.done, Total: p.tot})
	}
}

func (p *progress) add(n int) {
	p.done += int64(n)
	if p.fn != nil && n > 0 {
		p.fn(Progress{Done: p.done, Total: p.tot})
	}
}
