package projections_test

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
)

// The audit projection, run by a Runner on the projector role. (The tests of this package run their
// runners in databases of their own; the example has the package database to itself.)
func ExampleRunner_CatchUp() {
	ctx := context.Background()

	// A mutation's event, appended as the app role (the durable store does this).
	app, err := eventstore.New(pgtest.ExamplePool(pgtest.App), nil)
	if err != nil {
		panic(err)
	}
	tenant := uuid.New()
	enc, err := domain.Encode(domain.TenantCreated{TenantID: tenant, Slug: "acme", Name: "Acme", At: time.Now().UTC()})
	if err != nil {
		panic(err)
	}
	meta := logcodec.StoreMetadata(domain.Metadata{Actor: userstore.Actor{Type: userstore.ActorUser, ID: "ada"}})
	if _, err := app.Append(ctx, &eventstore.AppendParams{
		TenantID: tenant, StreamType: "tenant", StreamID: tenant, Expected: eventstore.NoStream(),
		Events: []eventstore.EventData{{Type: enc.Type, SchemaVersion: int16(enc.SchemaVersion), Payload: enc.Payload, Metadata: meta}},
	}); err != nil {
		panic(err)
	}

	// The projector: a pool and an event store as the projector role, and the projections to run.
	pool := pgtest.ExamplePool(pgtest.Projector)
	store, err := eventstore.New(pool, nil)
	if err != nil {
		panic(err)
	}
	runner, err := projections.New(pool, store, []projections.Projection{audit.New(nil)}, nil)
	if err != nil {
		panic(err)
	}
	// A long-running process calls runner.Run(ctx); CatchUp returns once everything committed so far
	// is projected.
	if err := runner.CatchUp(ctx); err != nil {
		panic(err)
	}

	recs, err := audit.Read(ctx, pool, &audit.ReadParams{TenantID: tenant})
	if err != nil {
		panic(err)
	}
	fmt.Println(recs[0].Sequence, recs[0].Action, recs[0].Actor.ID)
	st, err := runner.Status(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("events behind:", st.Projections[0].EventsBehind)
	// Output:
	// 1 tenant.created ada
	// events behind: 0
}
