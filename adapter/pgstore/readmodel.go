package pgstore

import (
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/engine"
	"github.com/netkingdom/userstore/projections/readmodel"
)

// The read model's row mapping — which rows a stream's state makes, the statements that write them, and
// how rows are scanned back — lives in package projections/readmodel, shared with the rebuild
// (projections/rebuild), which folds the log into shadow tables with the same code.

// liveReadModel writes the live read tables (schema userstore).
var liveReadModel = readmodel.NewWriter(readmodel.SchemaDefault)

// queueReadModel queues the read-model change of a write (readmodel.Writer.QueueWrite): the stream's
// row becomes its state's View(), or is deleted when the state is no longer Found (an unlinked
// identity, a removed binding); for the roster, the memberships of the users its events name are set or
// deleted.
func queueReadModel(b *pgx.Batch, w *engine.Write) error {
	events := make([]domain.Event, len(w.Events))
	for i := range w.Events {
		events[i] = w.Events[i].Event
	}
	return liveReadModel.QueueWrite(b, w.Stream, w.State, events)
}

// scanner is a row: pgx.Row or pgx.Rows.
type scanner = readmodel.Scanner

// The scan functions of the read tables' select lists (readmodel.TenantColumns, …).
var (
	scanTenant      = readmodel.ScanTenant
	scanUser        = readmodel.ScanUser
	scanAccount     = readmodel.ScanAccount
	scanIdentity    = readmodel.ScanIdentity
	scanApplication = readmodel.ScanApplication
	scanBinding     = readmodel.ScanBinding
	scanCatalog     = readmodel.ScanCatalog
	scanProfileInto = readmodel.ScanProfileInto
	scanMembership  = readmodel.ScanMembership
)
