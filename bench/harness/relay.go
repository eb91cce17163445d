package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/outbox"
)

// --- 4. Outbox relay: ours against watermill-sql's subscriber + forwarder -------------------------

// The watermill topics of the baselines (tables bench."watermill_<topic>", offsets
// bench."watermill_offsets_<topic>"): measurement 4's forwarder moves fwd_in → fwd_out, measurement
// 5's lat_in → lat_out.
const (
	topicRelayIn    = "fwd_in"
	topicRelayOut   = "fwd_out"
	topicLatencyIn  = "lat_in"
	topicLatencyOut = "lat_out"
)

// relayTopicTable is the relay's topic table (migration 00006).
var relayTopicTable = outbox.TableName(outbox.DefaultTopic)

func watermillOffsets() wsql.DefaultPostgreSQLOffsetsAdapter {
	return wsql.DefaultPostgreSQLOffsetsAdapter{
		GenerateMessagesOffsetsTableName: func(topic string) string { return `bench."watermill_offsets_` + topic + `"` },
	}
}

// relayFixture is the database of measurements 4 and 5: a log with its tenants, the baselines'
// tables, and a pool of the owner role for watermill's forwarder.
type relayFixture struct {
	*logFixture
	// fwd is the forwarders' pool (the owner role owns the baselines' tables).
	fwd *pgxpool.Pool
	// templates are the payloads and metadata of messages the relay published: the baseline moves the
	// same messages.
	templates []*message.Message
	// lat is measurement 5's store and tenants.
	lat *latencyStore
}

func (l *Lab) relayDB(ctx context.Context) (*relayFixture, error) {
	if l.relay != nil {
		return l.relay, nil
	}
	f, err := l.preloadedSized(ctx, &l.relayLog, "relay", l.Sizes.Tenants,
		DBSizes{Owner: 4, App: 20, Projector: 20, Admin: 2})
	if err != nil {
		return nil, err
	}
	if _, err := f.db.Owner.Exec(ctx, baselineSchema); err != nil {
		return nil, fmt.Errorf("create baseline tables: %w", err)
	}
	err = pgx.BeginFunc(ctx, f.db.Owner, func(tx pgx.Tx) error {
		for _, topic := range []string{topicRelayIn, topicRelayOut, topicLatencyIn, topicLatencyOut} {
			qs, err := watermillSchema().SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: topic})
			if err != nil {
				return err
			}
			oqs, err := watermillOffsets().SchemaInitializingQueries(wsql.OffsetsSchemaInitializingQueriesParams{Topic: topic})
			if err != nil {
				return err
			}
			for _, q := range append(qs, oqs...) {
				if _, err := tx.Exec(ctx, q.Query, q.Args...); err != nil {
					return err
				}
			}
		}
		_, err := tx.Exec(ctx, `GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA bench TO userstore_app;
			GRANT USAGE ON ALL SEQUENCES IN SCHEMA bench TO userstore_app`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create watermill topic tables: %w", err)
	}
	cfg, err := parse(EnvOwnerURL, f.db.Name)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.RuntimeParams["application_name"] = "userstore-bench/forwarder"
	r := &relayFixture{logFixture: f}
	if r.fwd, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, safe(err)
	}
	l.closers = append(l.closers, func(context.Context) error { r.fwd.Close(); return nil })
	l.relay = r
	return r, nil
}

// relayRunner returns an outbox relay runner on the fixture's projector pool.
func relayRunner(f *logFixture, cfg *projections.Config) (*projections.Runner, error) {
	st, err := eventstore.New(f.db.Projector, nil)
	if err != nil {
		return nil, err
	}
	ob, err := outbox.New(nil)
	if err != nil {
		return nil, err
	}
	return projections.New(f.db.Projector, st, []projections.Projection{ob}, cfg)
}

// loadTemplates reads the payloads and metadata of the last n messages the relay published.
func (r *relayFixture) loadTemplates(ctx context.Context, n int) error {
	if len(r.templates) >= n {
		return nil
	}
	rows, err := r.db.Projector.Query(ctx, `SELECT payload::text, metadata::text FROM `+relayTopicTable+
		` ORDER BY "offset" DESC LIMIT $1`, n)
	if err != nil {
		return err
	}
	defer rows.Close()
	r.templates = r.templates[:0]
	for rows.Next() {
		var payload, meta string
		if err := rows.Scan(&payload, &meta); err != nil {
			return err
		}
		m := message.NewMessage("", message.Payload(payload))
		if err := json.Unmarshal([]byte(meta), &m.Metadata); err != nil {
			return err
		}
		r.templates = append(r.templates, m)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(r.templates) < n {
		return fmt.Errorf("the relay's topic table holds %d messages, want %d templates", len(r.templates), n)
	}
	return nil
}

// forwarderPipe is the baseline pipeline of measurements 4 and 5: the messages are in watermill-sql's
// topic table `in`, enveloped by watermill's forwarder.Publisher (what an application publishes in its
// own transaction); a forwarder.Forwarder reads them with a watermill-sql Subscriber and publishes
// each, unwrapped, with a watermill-sql Publisher into the topic table `out`.
type forwarderPipe struct {
	pool    *pgxpool.Pool
	in, out string
	// batch is the subscriber's SubscribeBatchSize and poll its PollInterval (0: watermill's defaults,
	// 100 and 1 s).
	batch int
	poll  time.Duration
}

// countingPublisher counts the messages published and closes reached when the count reaches target.
type countingPublisher struct {
	message.Publisher
	n       atomic.Int64
	target  int64
	reached chan struct{}
	// onPublish, when set, is called after each successful Publish with its messages.
	onPublish func([]*message.Message)
}

func (c *countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := c.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	if c.onPublish != nil {
		c.onPublish(msgs)
	}
	if n := c.n.Add(int64(len(msgs))); c.target > 0 && n >= c.target && n-int64(len(msgs)) < c.target {
		close(c.reached)
	}
	return nil
}

// runningForwarder is a started forwarder.
type runningForwarder struct {
	f    *forwarder.Forwarder
	pub  *countingPublisher
	done chan error
	pipe *forwarderPipe
}

// start starts the forwarder; target > 0 closes pub.reached once that many messages were published.
func (p *forwarderPipe) start(ctx context.Context, target int64, onPublish func([]*message.Message)) (*runningForwarder, error) {
	logger := watermill.NopLogger{}
	schema := watermillSchema()
	schema.SubscribeBatchSize = p.batch
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(p.pool), wsql.SubscriberConfig{
		SchemaAdapter: schema, OffsetsAdapter: watermillOffsets(), PollInterval: p.poll,
	}, logger)
	if err != nil {
		return nil, err
	}
	wpub, err := wsql.NewPublisher(wsql.BeginnerFromPgx(p.pool), wsql.PublisherConfig{SchemaAdapter: watermillSchema()}, logger)
	if err != nil {
		return nil, err
	}
	pub := &countingPublisher{Publisher: wpub, target: target, reached: make(chan struct{}), onPublish: onPublish}
	f, err := forwarder.NewForwarder(sub, pub, logger, forwarder.Config{ForwarderTopic: p.in, CloseTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	rf := &runningForwarder{f: f, pub: pub, done: make(chan error, 1), pipe: p}
	go func() { rf.done <- f.Run(context.WithoutCancel(ctx)) }()
	select {
	case <-f.Running():
	case err := <-rf.done:
		return nil, fmt.Errorf("forwarder stopped at start: %w", err)
	case <-ctx.Done():
		_ = f.Close()
		return nil, ctx.Err()
	}
	return rf, nil
}

// stop waits until the subscriber has acknowledged everything in its topic table (so that no message
// is delivered again by the next run), then closes the forwarder.
func (rf *runningForwarder) stop(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	var waitErr error
	for {
		var pending bool
		// The subscriber's own order: (transaction_id, offset) after its acknowledged position.
		err := rf.pipe.pool.QueryRow(ctx, fmt.Sprintf(`SELECT EXISTS (
			SELECT 1 FROM bench."watermill_%s" AS m, bench."watermill_offsets_%s" AS o
			 WHERE o.consumer_group = '' AND (m.transaction_id, m."offset") > (o.last_processed_transaction_id, o.offset_acked))`,
			rf.pipe.in, rf.pipe.in)).Scan(&pending)
		if err != nil {
			waitErr = err
			break
		}
		if !pending {
			break
		}
		if time.Now().After(deadline) {
			waitErr = errors.New("the forwarder did not acknowledge every message within 30s")
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	closeErr := rf.f.Close()
	return errors.Join(waitErr, closeErr, <-rf.done)
}

// publishEnveloped publishes msgs into the forwarder's topic, enveloped for topic out, in chunks (one
// multi-row INSERT each) on pool.
func publishEnveloped(ctx context.Context, pool *pgxpool.Pool, in, out string, msgs []*message.Message) error {
	wpub, err := wsql.NewPublisher(wsql.BeginnerFromPgx(pool), wsql.PublisherConfig{SchemaAdapter: watermillSchema()}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	pub := forwarder.NewPublisher(wpub, forwarder.PublisherConfig{ForwarderTopic: in})
	for lo := 0; lo < len(msgs); lo += 500 {
		chunk := msgs[lo:min(lo+500, len(msgs))]
		for _, m := range chunk {
			m.SetContext(ctx)
		}
		if err := pub.Publish(out, chunk...); err != nil {
			return err
		}
	}
	return nil
}

// relayCase is measurement 4 with the relay's Config cfg and the subscriber's batch size and poll
// interval.
func (l *Lab) relayCase(ctx context.Context, id, what string, cfg *projections.Config, batch int, poll time.Duration) (*Case, error) {
	r, err := l.relayDB(ctx)
	if err != nil {
		return nil, err
	}
	runner, err := relayRunner(r.logFixture, cfg)
	if err != nil {
		return nil, err
	}
	// The relay starts at the head: the preload's events are not part of the runs.
	if err := runner.CatchUp(ctx); err != nil {
		return nil, err
	}
	usersPerRun := max(1, l.Sizes.RelayMessages/(len(r.tenants)*eventsPerUser))
	n := usersPerRun * len(r.tenants) * eventsPerUser
	var expect int64
	ours := Side{
		Trips: r.db.trips,
		Name:  fmt.Sprintf("outbox relay (projections.Runner.CatchUp, BatchSize %d, Workers %d)", cfg.WithDefaults().BatchSize, cfg.WithDefaults().Workers),
		Prepare: func(ctx context.Context) error {
			before, err := count(ctx, r.db.Projector, relayTopicTable)
			if err != nil {
				return err
			}
			written, err := r.appendUsers(ctx, usersPerRun)
			expect = before + written
			return err
		},
		Job: func(ctx context.Context) (RunStats, error) {
			start := time.Now()
			if err := runner.CatchUp(ctx); err != nil {
				return RunStats{}, err
			}
			secs := time.Since(start).Seconds()
			got, err := count(ctx, r.db.Projector, relayTopicTable)
			if err != nil {
				return RunStats{}, err
			}
			if got != expect {
				return RunStats{}, fmt.Errorf("the relay's topic table holds %d messages, want %d", got, expect)
			}
			return RunStats{Units: n, Seconds: secs}, nil
		},
	}
	pipe := &forwarderPipe{pool: r.fwd, in: topicRelayIn, out: topicRelayOut, batch: batch, poll: poll}
	subName := "watermill-sql Subscriber (defaults: batch 100, poll 1s) + forwarder + Publisher"
	if batch != 0 || poll != 0 {
		subName = fmt.Sprintf("watermill-sql Subscriber (batch %d, poll %s) + forwarder + Publisher", batch, poll)
	}
	baseline := Side{
		Name: subName,
		Prepare: func(ctx context.Context) error {
			if err := r.loadTemplates(ctx, n); err != nil {
				return err
			}
			msgs := make([]*message.Message, n)
			for i := range msgs {
				t := r.templates[i%len(r.templates)]
				msgs[i] = message.NewMessage(watermill.NewUUID(), t.Payload)
				msgs[i].Metadata = maps.Clone(t.Metadata)
			}
			return publishEnveloped(ctx, r.fwd, topicRelayIn, topicRelayOut, msgs)
		},
		Job: func(ctx context.Context) (RunStats, error) {
			start := time.Now()
			rf, err := pipe.start(ctx, int64(n), nil)
			if err != nil {
				return RunStats{}, err
			}
			var secs float64
			select {
			case <-rf.pub.reached:
				secs = time.Since(start).Seconds()
			case <-time.After(10 * time.Minute):
				err = errors.New("the forwarder did not move every message within 10 minutes")
			case <-ctx.Done():
				err = ctx.Err()
			}
			if serr := rf.stop(context.WithoutCancel(ctx)); err == nil {
				err = serr
			}
			if got := rf.pub.n.Load(); err == nil && got != int64(n) {
				err = fmt.Errorf("the forwarder published %d messages, want %d", got, n)
			}
			return RunStats{Units: n, Seconds: secs}, err
		},
	}
	return &Case{
		ID: id, Unit: "messages", Workers: 1, NoRoundTrips: true, Warmup: true,
		What: fmt.Sprintf("4. outbox relay into watermill-sql topic tables, %s messages per run, %s", count3(int64(n)), what),
		Goal: 3, GoalText: "≥ 3×",
		Ours: ours, Baseline: baseline,
	}, nil
}
