package jetstream_test

import (
	"context"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/outbox/jetstream"
)

// A projector process that relays the log to JetStream. The URL comes from the deployment (here an
// environment variable); the stream is the operator's, with a duplicate window of at least 2 minutes.
// (Compiled, not run: it needs a projector pool and a NATS server.)
func ExampleConnect() {
	ctx := context.Background()
	var projectorPool *pgxpool.Pool // the provider's pool, as the projector role

	relay, err := jetstream.Connect(ctx, &jetstream.Config{
		URL:     os.Getenv("NATS_URL"),
		Subject: "userstore.events",
		Stream:  "USERSTORE_EVENTS",
	})
	if err != nil {
		panic(err)
	}
	defer relay.Close()

	store, err := eventstore.New(projectorPool, nil)
	if err != nil {
		panic(err)
	}
	runner, err := projections.New(projectorPool, store, []projections.Projection{relay}, nil)
	if err != nil {
		panic(err)
	}
	_ = runner.Run(ctx) // until ctx ends; a batch that fails (NATS down) is tried again
}
