package outbox_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections/outbox"
)

// TestTableIsWatermillsSchema: the table of migration 00006 is, column for column, the one watermill-sql's
// DefaultPostgreSQLSchema creates for the topic (created here in a scratch schema to compare).
func TestTableIsWatermillsSchema(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	owner := db.Pool(t, pgtest.Owner)

	_, err := owner.Exec(ctx, `CREATE SCHEMA scratch`)
	require.NoError(t, err)
	queries, err := wsql.DefaultPostgreSQLSchema{
		GenerateMessagesTableName: func(topic string) string {
			return pgx.Identifier{"scratch", "watermill_" + topic}.Sanitize()
		},
	}.SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: outbox.DefaultTopic})
	require.NoError(t, err)
	tx, err := owner.Begin(ctx)
	require.NoError(t, err)
	for _, q := range queries {
		_, err := tx.Exec(ctx, q.Query, q.Args...)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit(ctx))

	describe := func(schema string) []string {
		rows, err := owner.Query(ctx, `
			SELECT c.column_name || ' ' || c.data_type || ' ' || coalesce(c.character_maximum_length::text, '') || ' ' ||
			       c.is_nullable || ' ' || regexp_replace(coalesce(c.column_default, ''), '"?' || $1 || '"?\.', '') || ' ' ||
			       coalesce((SELECT string_agg(k.column_name, ',' ORDER BY k.ordinal_position)
			                   FROM information_schema.key_column_usage AS k
			                  WHERE k.table_schema = c.table_schema AND k.table_name = c.table_name
			                    AND k.column_name = c.column_name), '')
			  FROM information_schema.columns AS c
			 WHERE c.table_schema = $1 AND c.table_name = $2
			 ORDER BY c.ordinal_position`, schema, "watermill_"+outbox.DefaultTopic)
		require.NoError(t, err)
		cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return cols
	}
	want := describe("scratch")
	require.Len(t, want, 6)
	require.Equal(t, want, describe("userstore"))
}

// TestSubscriberReceivesEveryMessage: a watermill-sql Subscriber of the topic, with the relay's schema
// adapter, receives every event's message once, in each stream's order.
func TestSubscriberReceivesEveryMessage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	history(t, ctx, db, 2)
	relay, err := outbox.New(nil)
	require.NoError(t, err)
	require.NoError(t, runner(t, db, relay, nil).CatchUp(ctx))
	events := logEvents(t, ctx, db)

	// The owner creates the subscriber's offsets table (InitializeSchema); the topic table exists.
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(db.Pool(t, pgtest.Owner)), wsql.SubscriberConfig{
		ConsumerGroup: "test",
		SchemaAdapter: outbox.SchemaAdapter(),
		OffsetsAdapter: wsql.DefaultPostgreSQLOffsetsAdapter{GenerateMessagesOffsetsTableName: func(topic string) string {
			return pgx.Identifier{"userstore", "watermill_offsets_" + topic}.Sanitize()
		}},
		InitializeSchema: true,
		PollInterval:     10 * time.Millisecond,
	}, watermill.NopLogger{})
	require.NoError(t, err)
	defer func() { require.NoError(t, sub.Close()) }()
	msgs, err := sub.Subscribe(ctx, outbox.DefaultTopic)
	require.NoError(t, err)

	seen := map[string]bool{}
	last := map[string]string{} // stream → last version seen
	for range len(events) {
		var m *message.Message
		select {
		case m = <-msgs:
		case <-ctx.Done():
			t.Fatalf("received %d of %d messages: %v", len(seen), len(events), ctx.Err())
		}
		require.NotNil(t, m)
		require.False(t, seen[m.UUID], "message %s received twice", m.UUID)
		seen[m.UUID] = true
		stream := m.Metadata.Get(outbox.MetaAggregateID)
		v := m.Metadata.Get(outbox.MetaAggregateVersion)
		if prev, ok := last[stream]; ok {
			require.Less(t, atoi(t, prev), atoi(t, v), "stream %s out of order", stream)
		}
		last[stream] = v
		m.Ack()
	}
	for id := range events {
		require.True(t, seen[id.String()], "event %s not received", id)
	}
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}
