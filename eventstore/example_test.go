package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

func ExampleStore_Append() {
	ctx := context.Background()
	pool := pgtest.ExamplePool(pgtest.App) // a *pgxpool.Pool connected as the app role

	store, err := eventstore.New(pool, nil)
	if err != nil {
		panic(err)
	}
	tenant, user := uuid.New(), uuid.New()

	res, err := store.Append(ctx, &eventstore.AppendParams{
		TenantID:   tenant,
		StreamType: "user",
		StreamID:   user,
		Expected:   eventstore.NoStream(),
		Events: []eventstore.EventData{
			{Type: "user.created", Payload: json.RawMessage(`{"name": "Ada"}`)},
			{Type: "user.renamed", Payload: json.RawMessage(`{"name": "Ada Lovelace"}`),
				Metadata: eventstore.Metadata{ActorType: "admin", RequestID: "req-1"}},
		},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("new version:", res.NewVersion)

	// A second writer that still believes the stream is new loses.
	_, err = store.Append(ctx, &eventstore.AppendParams{
		TenantID: tenant, StreamType: "user", StreamID: user, Expected: eventstore.NoStream(),
		Events: []eventstore.EventData{{Type: "user.created", Payload: json.RawMessage(`{}`)}},
	})
	var conflict *eventstore.VersionConflictError
	if errors.As(err, &conflict) {
		fmt.Println("conflict, actual version:", conflict.Actual)
	}
	// Output:
	// new version: 2
	// conflict, actual version: 2
}

func ExampleStore_ReadStream() {
	ctx := context.Background()
	store, err := eventstore.New(pgtest.ExamplePool(pgtest.App), nil)
	if err != nil {
		panic(err)
	}
	tenant, user := uuid.New(), uuid.New()
	for i, name := range []string{"Ada", "Grace", "Hedy"} {
		_, err := store.Append(ctx, &eventstore.AppendParams{
			TenantID: tenant, StreamType: "user", StreamID: user, Expected: eventstore.Exact(int64(i)),
			Events: []eventstore.EventData{{Type: "user.renamed", Payload: json.RawMessage(`{"name":"` + name + `"}`)}},
		})
		if err != nil {
			panic(err)
		}
	}

	res, err := store.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: user, FromVersion: 2})
	if err != nil {
		panic(err)
	}
	for _, e := range res.Events {
		fmt.Println(e.StreamVersion, e.EventType, string(e.Payload))
	}
	// Output:
	// 2 user.renamed {"name": "Grace"}
	// 3 user.renamed {"name": "Hedy"}
}
