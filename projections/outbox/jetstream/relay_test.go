package jetstream_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/outbox"
	"github.com/netkingdom/userstore/projections/outbox/jetstream"
)

// TestRelayEveryEventOnceInStreamOrder: after CatchUp, the stream holds one message per event of the
// log — Nats-Msg-Id and watermill UUID = event id, the envelope in the headers — with each aggregate's
// messages in version order; a second CatchUp publishes nothing more, and later events follow.
func TestRelayEveryEventOnceInStreamOrder(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	history(t, ctx, db, 12)
	url := natsURL(t)
	cfg := streamConfig(t, url)
	relay := connect(t, ctx, cfg)
	require.Equal(t, jetstream.Name, relay.Name())
	require.Equal(t, cfg.Subject, relay.Subject())
	require.Equal(t, cfg.Stream, relay.Stream())
	require.Equal(t, jetstream.DuplicateWindowDefault, relay.DuplicateWindow())

	r := runner(t, db, &projections.Config{BatchSize: 7}, relay)
	require.NoError(t, r.CatchUp(ctx))
	events := logEvents(t, ctx, db)
	requireEveryEventOnce(t, events, streamMessages(t, ctx, url, cfg.Stream), cfg.Subject)
	all, _ := processed(t, ctx, db, jetstream.Name, 0)
	require.Equal(t, int64(len(events)), all)

	require.NoError(t, r.CatchUp(ctx))
	requireEveryEventOnce(t, events, streamMessages(t, ctx, url, cfg.Stream), cfg.Subject)

	history(t, ctx, db, 2)
	require.NoError(t, r.CatchUp(ctx))
	requireEveryEventOnce(t, logEvents(t, ctx, db), streamMessages(t, ctx, url, cfg.Stream), cfg.Subject)
}

// TestSubscriberReceivesEveryMessage: a watermill-nats Subscriber of the subject (JetStream, the
// default NATSMarshaler) receives every event's message once, as the watermill message the relay
// built — UUID = event id, the envelope as metadata — in each aggregate's order.
func TestSubscriberReceivesEveryMessage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	history(t, ctx, db, 3)
	url := natsURL(t)
	cfg := streamConfig(t, url)
	relay := connect(t, ctx, cfg)
	require.NoError(t, runner(t, db, nil, relay).CatchUp(ctx))
	events := logEvents(t, ctx, db)

	sub, err := wnats.NewSubscriber(wnats.SubscriberConfig{
		URL:              url,
		CloseTimeout:     5 * time.Second,
		AckWaitTimeout:   30 * time.Second,
		SubscribeTimeout: 5 * time.Second,
		JetStream: wnats.JetStreamConfig{
			// A durable consumer (as docs/outbox.md shows) of the stream that captures the subject, from
			// its first message.
			DurablePrefix:    "consumer_" + cfg.Stream,
			SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
		},
	}, watermill.NopLogger{})
	require.NoError(t, err)
	defer func() { require.NoError(t, sub.Close()) }()
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, err := sub.Subscribe(subCtx, cfg.Subject)
	require.NoError(t, err)

	seen := map[string]bool{}
	last := map[string]int64{} // aggregate → last version seen
	for range len(events) {
		var m *message.Message
		select {
		case m = <-msgs:
		case <-ctx.Done():
			t.Fatalf("received %d of %d messages: %v", len(seen), len(events), ctx.Err())
		}
		require.False(t, seen[m.UUID], "message %s received twice", m.UUID)
		seen[m.UUID] = true
		aggregate := m.Metadata.Get(outbox.MetaAggregateID)
		v, err := strconv.ParseInt(m.Metadata.Get(outbox.MetaAggregateVersion), 10, 64)
		require.NoError(t, err)
		require.Greater(t, v, last[aggregate], "aggregate %s out of order", aggregate)
		last[aggregate] = v
		for _, key := range []string{outbox.MetaTenantID, outbox.MetaAggregateType, outbox.MetaType, outbox.MetaPosition, outbox.MetaOccurredAt} {
			require.NotEmpty(t, m.Metadata.Get(key), key)
		}
		m.Ack()
	}
	for id := range events {
		require.True(t, seen[id.String()], "event %s not received", id)
	}
}
