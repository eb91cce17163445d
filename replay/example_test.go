package replay_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/replay"
)

// Example rebuilds a tenant's audit trail from the log and verifies its hash chain against
// audit_records, as the projector role (a tenant without events here: nothing to show, nothing
// diverges).
func Example() {
	ctx := context.Background()
	pool := pgtest.ExamplePool(pgtest.Projector) // in production: a pool that logs in as userstore_projector
	r, err := replay.New(pool, &replay.Config{BatchSize: 1000})
	if err != nil {
		panic(err)
	}
	tenant := uuid.New()
	res, err := r.Audit(ctx, &replay.AuditParams{TenantID: tenant}, func(rec *userstore.AuditRecord) error {
		fmt.Println(rec.Sequence, rec.Action, rec.Hash)
		return nil
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("records:", res.Records)
	rep, err := r.VerifyChain(ctx, &replay.VerifyChainParams{TenantID: tenant})
	if err != nil {
		panic(err)
	}
	fmt.Println("diverged:", rep.Diverged())
	// Output:
	// records: 0
	// diverged: false
}
