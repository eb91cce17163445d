package outbox

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/projections"
)

// Name and Version identify the relay's checkpoints and dead letters.
const (
	Name    = "outbox"
	Version = 1
)

// DefaultTopic is the topic the relay publishes to unless configured otherwise; migration
// 00006_outbox.sql creates its table.
const DefaultTopic = "userstore.events"

// Metadata keys of a message.
const (
	MetaTenantID         = "tenant_id"
	MetaAggregateType    = "aggregate_type"
	MetaAggregateID      = "aggregate_id"
	MetaAggregateVersion = "aggregate_version"
	MetaType             = "type"
	MetaPosition         = "position"
	MetaOccurredAt       = "occurred_at"
)

// topicRE: watermill-sql's topic characters, short enough for "watermill_" + topic to be a PostgreSQL
// identifier (63 bytes).
var topicRE = regexp.MustCompile(`^[A-Za-z0-9._:$-]{1,53}$`)

// publishChunk bounds the messages of one INSERT (3 parameters each; PostgreSQL takes at most 65535).
const publishChunk = 1000

// Config configures the relay.
type Config struct {
	// Topic is the watermill topic; its table, userstore."watermill_<Topic>", must exist. Default:
	// DefaultTopic.
	Topic string
}

// Projection is the outbox relay. It holds no state between batches and is safe for concurrent use.
type Projection struct {
	topic  string
	schema wsql.SchemaAdapter
}

var (
	_ projections.Projection   = (*Projection)(nil)
	_ projections.Batcher      = (*Projection)(nil)
	_ projections.BatchApplier = (*batch)(nil)
)

// New returns the outbox relay; cfg may be nil.
func New(cfg *Config) (*Projection, error) {
	topic := DefaultTopic
	if cfg != nil && cfg.Topic != "" {
		topic = cfg.Topic
	}
	if !topicRE.MatchString(topic) {
		return nil, fmt.Errorf("%w: Topic: %q must be 1 to 53 characters of [A-Za-z0-9._:$-]", projections.ErrValidation, topic)
	}
	return &Projection{topic: topic, schema: textArgs{SchemaAdapter()}}, nil
}

// Name returns "outbox".
func (*Projection) Name() string { return Name }

// Version returns the version of the relay's messages (1).
func (*Projection) Version() int { return Version }

// Topic returns the topic the relay publishes to.
func (p *Projection) Topic() string { return p.topic }

// SchemaAdapter returns watermill-sql's default PostgreSQL schema adapter with the topic tables in the
// schema userstore: userstore."watermill_<topic>". Subscribers of the relay's topic must use it.
func SchemaAdapter() wsql.DefaultPostgreSQLSchema {
	return wsql.DefaultPostgreSQLSchema{GenerateMessagesTableName: TableName}
}

// TableName returns the (quoted, schema-qualified) topic table of a topic: userstore."watermill_<topic>".
func TableName(topic string) string {
	return pgx.Identifier{"userstore", "watermill_" + topic}.Sanitize()
}

// Apply publishes the message of one event at once, on tx. The runtime applies events through
// StartBatch's applier, which publishes a batch's messages together in Flush.
func (p *Projection) Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error {
	msg, err := Message(ev)
	if err != nil {
		return err
	}
	return p.publish(ctx, tx, []*message.Message{msg})
}

// StartBatch returns the applier of one batch transaction: Apply turns each event into its message,
// Flush publishes them all on the batch transaction.
func (p *Projection) StartBatch(context.Context, pgx.Tx, *projections.BatchInfo) (projections.BatchApplier, error) {
	return &batch{p: p}, nil
}

// batch collects the messages of one batch transaction. Apply adds a message only when it succeeds, so
// a parked event leaves none behind.
type batch struct {
	p    *Projection
	msgs []*message.Message
}

// Apply turns the event into its message; it writes nothing.
func (b *batch) Apply(_ context.Context, _ pgx.Tx, ev *eventstore.RecordedEvent) error {
	msg, err := Message(ev)
	if err != nil {
		return err
	}
	b.msgs = append(b.msgs, msg)
	return nil
}

// Flush publishes the batch's messages, in the order they were applied, on the batch transaction.
func (b *batch) Flush(ctx context.Context, tx pgx.Tx) error {
	msgs := b.msgs
	b.msgs = nil
	return b.p.publish(ctx, tx, msgs)
}

// publish inserts msgs into the topic table through a watermill-sql Publisher on tx.
func (p *Projection) publish(ctx context.Context, tx pgx.Tx, msgs []*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	pub, err := wsql.NewPublisher(wsql.TxFromPgx(tx), wsql.PublisherConfig{SchemaAdapter: p.schema}, watermill.NopLogger{})
	if err != nil {
		return fmt.Errorf("outbox: publisher: %w", err)
	}
	defer pub.Close()
	for start := 0; start < len(msgs); start += publishChunk {
		chunk := msgs[start:min(start+publishChunk, len(msgs))]
		// watermill-sql runs the insert with the first message's context.
		for _, m := range chunk {
			m.SetContext(ctx)
		}
		if err := pub.Publish(p.topic, chunk...); err != nil {
			return fmt.Errorf("outbox: publish to %s: %w", p.topic, err)
		}
	}
	return nil
}

// Message returns the watermill message of one stored event: its public integration event
// (domain.Outbox), with the event id as the message UUID, the public JSON body as the payload and the
// envelope in the metadata.
func Message(ev *eventstore.RecordedEvent) (*message.Message, error) {
	r, err := logcodec.Recorded(ev)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	out, err := domain.Outbox(r)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	msg := message.NewMessage(out.ID.String(), message.Payload(out.Payload))
	msg.Metadata.Set(MetaTenantID, out.TenantID.String())
	msg.Metadata.Set(MetaAggregateType, out.AggregateType)
	msg.Metadata.Set(MetaAggregateID, out.AggregateID.String())
	msg.Metadata.Set(MetaAggregateVersion, strconv.FormatInt(out.AggregateVersion, 10))
	msg.Metadata.Set(MetaType, out.Type)
	msg.Metadata.Set(MetaPosition, strconv.FormatInt(out.Position, 10))
	msg.Metadata.Set(MetaOccurredAt, out.OccurredAt.UTC().Format(time.RFC3339Nano))
	return msg, nil
}

// textArgs is the schema adapter the relay publishes with: DefaultPostgreSQLSchema's insert, with the
// JSON payload and metadata passed as strings rather than []byte. Under pgx's QueryExecModeExec (the
// mode behind PgBouncer in transaction pooling, and the test pools') a []byte parameter is sent as
// bytea text ("\x…"), which the json columns refuse; a string is sent as is in every mode.
type textArgs struct {
	wsql.DefaultPostgreSQLSchema
}

func (s textArgs) InsertQuery(params wsql.InsertQueryParams) (wsql.Query, error) {
	q, err := s.DefaultPostgreSQLSchema.InsertQuery(params)
	if err != nil {
		return q, err
	}
	for i, a := range q.Args {
		if b, ok := a.([]byte); ok {
			q.Args[i] = string(b)
		}
	}
	return q, nil
}
