package jetstream

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/outbox"
)

// Name and Version identify the relay's checkpoints and dead letters: its own, apart from those of the
// watermill-sql relay (outbox.Name), so both sinks may run side by side.
const (
	Name    = "outbox.jetstream"
	Version = 1
)

// Projection is the JetStream relay: a projection whose batches publish their events' messages to a
// JetStream stream before the batch's checkpoint commits. It is safe for concurrent use (the runtime
// flushes several partitions at once over the one connection). Close it when done.
type Projection struct {
	nc      *nats.Conn
	pub     *wnats.Publisher
	subject string
	stream  string
	window  time.Duration
	log     *slog.Logger

	closeOnce sync.Once
}

var (
	_ projections.Projection   = (*Projection)(nil)
	_ projections.Batcher      = (*Projection)(nil)
	_ projections.BatchApplier = (*batch)(nil)
)

// Connect connects to NATS, checks the stream (creating it when Config.CreateStream says so), and
// returns the relay; cfg may be nil. It fails with a *ConfigError before any I/O when cfg is invalid,
// with ErrUnavailable when no server can be reached, with ErrStreamNotFound or ErrStreamMismatch when
// the stream is missing or does not fit. ctx bounds the whole call, the dial included.
//
// Once connected, the relay reconnects by itself after an outage (forever, every 2s by default, see
// nats.ReconnectWait): meanwhile each batch fails at its first message, without waiting, and is tried
// again by the runner.
func Connect(ctx context.Context, cfg *Config) (*Projection, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("outbox/jetstream: connect: %w", err)
	}
	log := cfg.Logger
	dialer := &dialer{timeout: cfg.ConnectTimeout}
	dialer.setContext(ctx)
	opts := []nats.Option{
		nats.Name(cfg.ConnectionName),
		nats.Timeout(cfg.ConnectTimeout),
		nats.SetCustomDialer(dialer),
		// No buffering while the connection is down: a publish fails at once (the batch is retried)
		// instead of waiting for an acknowledgement that cannot come before the reconnect.
		nats.ReconnectBufSize(-1),
		nats.MaxReconnects(-1),
		nats.NoCallbacksAfterClientClose(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("outbox/jetstream: disconnected from NATS", slog.String("error", translate("connection", err).Error()))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("outbox/jetstream: reconnected to NATS", slog.String("server", RedactURL(nc.ConnectedUrl())))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("outbox/jetstream: NATS connection error", slog.String("error", translate("connection", err).Error()))
		}),
	}
	nc, err := nats.Connect(cfg.URL, append(opts, cfg.NatsOptions...)...)
	if err != nil {
		return nil, translate("connect to "+RedactURL(cfg.URL), err)
	}
	// Reconnects dial without the caller's context.
	dialer.setContext(context.Background())

	window, err := ensureStream(ctx, nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	pub, err := wnats.NewPublisherWithNatsConn(nc, wnats.PublisherPublishConfig{
		Marshaler:         &wnats.NATSMarshaler{},
		SubjectCalculator: wnats.DefaultSubjectCalculator,
		JetStream: wnats.JetStreamConfig{
			// The stream is checked (or created) above, never per publish.
			AutoProvision: false,
			// Nats-Msg-Id = the message UUID = the event id: the stream drops a republished message
			// within its duplicate window.
			TrackMsgId: true,
			// Synchronous publishes, each waiting for its acknowledgement, in order: see Flush.
			AckAsync: false,
			PublishOptions: []nats.PubOpt{
				nats.ExpectStream(cfg.Stream),
				nats.AckWait(cfg.AckTimeout),
			},
		},
	}, watermill.NopLogger{})
	if err != nil {
		nc.Close()
		return nil, translate("publisher", err)
	}
	log.Info("outbox/jetstream: connected", slog.String("server", RedactURL(nc.ConnectedUrl())),
		slog.String("subject", cfg.Subject), slog.String("stream", cfg.Stream), slog.Duration("duplicate_window", window))
	return &Projection{nc: nc, pub: pub, subject: cfg.Subject, stream: cfg.Stream, window: window, log: log}, nil
}

// Close closes the connection. Batches flushed afterwards fail with ErrClosed.
func (p *Projection) Close() error {
	p.closeOnce.Do(func() { _ = p.pub.Close() })
	return nil
}

// Name returns "outbox.jetstream".
func (*Projection) Name() string { return Name }

// Version returns the version of the relay's messages (1).
func (*Projection) Version() int { return Version }

// Subject returns the subject the relay publishes to.
func (p *Projection) Subject() string { return p.subject }

// Stream returns the stream that stores the relay's messages.
func (p *Projection) Stream() string { return p.stream }

// DuplicateWindow returns the stream's duplicate window, as Connect found it (or created it).
func (p *Projection) DuplicateWindow() time.Duration { return p.window }

// Apply publishes the message of one event at once. The runtime applies events through StartBatch's
// applier, which publishes a batch's messages in Flush.
func (p *Projection) Apply(ctx context.Context, _ pgx.Tx, ev *eventstore.RecordedEvent) error {
	msg, err := outbox.Message(ev)
	if err != nil {
		return err
	}
	return p.publish(ctx, []*message.Message{msg})
}

// StartBatch returns the applier of one batch transaction: Apply turns each event into its message,
// Flush publishes them all.
func (p *Projection) StartBatch(context.Context, pgx.Tx, *projections.BatchInfo) (projections.BatchApplier, error) {
	return &batch{p: p}, nil
}

// batch collects the messages of one batch transaction. Apply adds a message only when it succeeds, so
// a parked event leaves none behind.
type batch struct {
	p    *Projection
	msgs []*message.Message
}

// Apply turns the event into its message (outbox.Message); it publishes nothing and writes nothing.
func (b *batch) Apply(_ context.Context, _ pgx.Tx, ev *eventstore.RecordedEvent) error {
	msg, err := outbox.Message(ev)
	if err != nil {
		return err
	}
	b.msgs = append(b.msgs, msg)
	return nil
}

// Flush publishes the batch's messages to the stream, one after the other in the order they were
// applied, each waiting for the stream's acknowledgement before the next is sent. It returns after the
// last acknowledgement; only then does the runtime advance the checkpoint. An error — NATS down, a
// timeout, a refusal — fails the batch: the checkpoint stays, the batch is tried again (the runner backs
// off), and the messages it had published already are published again, which the stream drops as
// duplicates (Nats-Msg-Id) within its duplicate window.
//
// One message at a time is what keeps each stream's order: with several in flight, a failed message
// could be followed by a stored later one, and its republication would land after it.
func (b *batch) Flush(ctx context.Context, _ pgx.Tx) error {
	msgs := b.msgs
	b.msgs = nil
	return b.p.publish(ctx, msgs)
}

// publish publishes msgs in order, each through the watermill publisher and waiting for its ack.
func (p *Projection) publish(ctx context.Context, msgs []*message.Message) error {
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("outbox/jetstream: publish: %w", err)
		}
		if p.nc.IsClosed() {
			return ErrClosed
		}
		if err := p.pub.Publish(p.subject, m); err != nil {
			op := fmt.Sprintf("publish message %d of %d (event %s) to %s", i+1, len(msgs), m.UUID, p.subject)
			if st := p.nc.Status(); st != nats.CONNECTED {
				return fmt.Errorf("%w: %s: not connected (%s)", ErrUnavailable, op, st)
			}
			return translate(op, err)
		}
	}
	return nil
}

// dialer dials with a context: the caller's while Connect runs, none (only the timeout) for reconnects.
type dialer struct {
	timeout time.Duration
	mu      sync.Mutex
	ctx     context.Context
}

func (d *dialer) setContext(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ctx = ctx
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	nd := net.Dialer{Timeout: d.timeout}
	return nd.DialContext(ctx, network, address)
}
