package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/eventstore"
)

// baselineSchema is what a team would write without this library (measurement 1), the plain copy of
// the event table for the COPY baseline (measurement 2) and the watermill-sql topic table
// (measurement 8, watermill-sql's own DDL, created up front because the app role may not CREATE).
// It runs as the owner; the app role gets what it needs to write.
const baselineSchema = `
CREATE SCHEMA bench;
GRANT USAGE ON SCHEMA bench TO userstore_app;

CREATE TABLE bench.users (
    tenant_id    uuid        NOT NULL,
    id           uuid        NOT NULL,
    display_name text        NOT NULL,
    email        text        NOT NULL,
    status       text        NOT NULL,
    version      bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_tenant_email_key ON bench.users (tenant_id, email);

CREATE TABLE bench.audit (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    actor_type  text        NOT NULL,
    actor_id    text        NOT NULL,
    request_id  text        NOT NULL,
    action      text        NOT NULL,
    target_id   uuid        NOT NULL,
    payload     jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_tenant_time_idx ON bench.audit (tenant_id, recorded_at);

CREATE TABLE bench.outbox (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    topic        text        NOT NULL,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON bench.outbox (created_at) WHERE published_at IS NULL;

-- Identical columns, defaults, constraints and indexes; none of the log's trigger, RLS or grants logic.
CREATE TABLE bench.copy_events (LIKE userstore.events INCLUDING ALL);

GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA bench TO userstore_app;
`

const watermillTopic = "bench_log"

func watermillSchema() wsql.DefaultPostgreSQLSchema {
	return wsql.DefaultPostgreSQLSchema{
		GenerateMessagesTableName: func(topic string) string { return `bench."watermill_` + topic + `"` },
	}
}

// Setup is the state shared by the cases.
type Setup struct {
	Env     *Env
	Store   *pgstore.Store
	Events  *eventstore.Store
	Pub     *wsql.Publisher
	Tenants []uuid.UUID
	seq     atomic.Int64
	runID   string
}

// NewSetup creates the baseline tables, the stores, the watermill publisher and one tenant per
// writer (writer w works in tenant w on both sides).
func NewSetup(ctx context.Context, env *Env, tenants int) (*Setup, error) {
	if _, err := env.Owner.Exec(ctx, baselineSchema); err != nil {
		return nil, fmt.Errorf("create baseline tables: %w", err)
	}
	wq, err := watermillSchema().SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: watermillTopic})
	if err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, env.Owner, func(tx pgx.Tx) error {
		for _, q := range wq {
			if _, err := tx.Exec(ctx, q.Query, q.Args...); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA bench TO userstore_app;
			GRANT USAGE ON ALL SEQUENCES IN SCHEMA bench TO userstore_app`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create watermill topic table: %w", err)
	}

	s := &Setup{Env: env, runID: uuid.NewString()[:8]}
	if s.Store, err = pgstore.New(ctx, env.App, nil); err != nil {
		return nil, err
	}
	if s.Events, err = eventstore.New(env.App, nil); err != nil {
		return nil, err
	}
	s.Pub, err = wsql.NewPublisher(wsql.BeginnerFromPgx(env.App), wsql.PublisherConfig{SchemaAdapter: watermillSchema()}, nil)
	if err != nil {
		return nil, err
	}
	for i := range tenants {
		id := userstore.NewID()
		tctx := userstore.WithActor(userstore.WithTenant(ctx, id), benchActor)
		if _, err := s.Store.CreateTenant(tctx, &userstore.CreateTenantParams{
			Slug: fmt.Sprintf("bench-%s-%d", s.runID, i), Name: fmt.Sprintf("Bench %d", i),
		}); err != nil {
			return nil, fmt.Errorf("create tenant: %w", err)
		}
		s.Tenants = append(s.Tenants, id)
	}
	return s, nil
}

var benchActor = userstore.Actor{Type: userstore.ActorService, ID: "bench"}

// next returns a number unique within the run, for emails, keys and request ids.
func (s *Setup) next() int64 { return s.seq.Add(1) }

// Cases returns the measurements of issue 9 (1, 2 and 8).
func (s *Setup) Cases() []*Case {
	var out []*Case
	for _, w := range []int{1, 4, 16} {
		goal, text := 0.0, "—"
		if w == 16 {
			goal, text = 1.0, "≥ 1.0"
		}
		out = append(out, &Case{
			ID:       fmt.Sprintf("create_user/w%d", w),
			What:     fmt.Sprintf("1. command write path, %d writer(s)", w),
			Unit:     "commands",
			Workers:  w,
			Goal:     goal,
			GoalText: text,
			Ours:     Side{Name: "pgstore.CreateUser", Op: s.createUserOurs},
			Baseline: Side{Name: "hand-written tx: users + audit + outbox", Op: s.createUserBaseline},
		})
	}
	bulk := makeEventData(1000)
	out = append(out, &Case{
		ID: "bulk_append/1000", What: "2. bulk append, 1,000-event batches, 1 writer", Unit: "events", Workers: 1,
		Goal: 0.8, GoalText: "≥ 0.8",
		Ours:     Side{Name: "eventstore.Append", Op: s.appendOurs(bulk)},
		Baseline: Side{Name: "pgx CopyFrom into a plain copy of the table", Op: s.copyBaseline(bulk)},
	})
	for _, size := range []int{1, 100} {
		for _, w := range []int{1, 16} {
			evs := makeEventData(size)
			out = append(out, &Case{
				ID:   fmt.Sprintf("log/b%d/w%d", size, w),
				What: fmt.Sprintf("8. log vs watermill-sql, batches of %d, %d publisher(s)", size, w),
				Unit: "events", Workers: w, Goal: 0, GoalText: "> 1 (ahead)",
				Ours:     Side{Name: "eventstore.Append", Op: s.appendOurs(evs)},
				Baseline: Side{Name: "watermill-sql v4 Publish (pgx)", Op: s.publishWatermill(evs)},
			})
		}
	}
	return out
}

func (s *Setup) tenant(w int) uuid.UUID { return s.Tenants[w%len(s.Tenants)] }

// --- 1. Command write path -------------------------------------------------------------------------

func (s *Setup) userInput() (name, email, key, req string) {
	n := s.next()
	return fmt.Sprintf("User %d", n), fmt.Sprintf("User.%s.%d@Example.com", s.runID, n),
		fmt.Sprintf("create-%s-%d", s.runID, n), fmt.Sprintf("req-%s-%d", s.runID, n)
}

func (s *Setup) createUserOurs(ctx context.Context, w, _ int) (int, error) {
	name, email, key, req := s.userInput()
	ctx = userstore.WithRequestID(userstore.WithActor(userstore.WithTenant(ctx, s.tenant(w)), benchActor), req)
	_, err := s.Store.CreateUser(ctx, &userstore.CreateUserParams{
		Mutation: userstore.Mutation{IdempotencyKey: key}, DisplayName: name, Email: email,
	})
	return 1, err
}

const (
	sqlBaseUser = `INSERT INTO bench.users (tenant_id, id, display_name, email, status, version, created_at, updated_at)
VALUES ($1, $2, $3, $4, 'active', 1, $5, $5)`
	sqlBaseAudit = `INSERT INTO bench.audit (tenant_id, actor_type, actor_id, request_id, action, target_id, payload)
VALUES ($1, $2, $3, $4, 'user.created', $5, $6)`
	sqlBaseOutbox = `INSERT INTO bench.outbox (id, tenant_id, topic, payload) VALUES ($1, $2, 'user.created', $3)`
)

// createUserBaseline is the straightforward pgx code: BEGIN, three INSERTs, COMMIT, one round trip
// each, read committed, the database's synchronous_commit (on).
func (s *Setup) createUserBaseline(ctx context.Context, w, _ int) (int, error) {
	name, email, _, req := s.userInput()
	tenant, id, now := s.tenant(w), userstore.NewID(), time.Now().UTC()
	email = strings.ToLower(strings.TrimSpace(email))
	payload, err := json.Marshal(map[string]any{"id": id, "tenant_id": tenant, "display_name": name, "email": email, "status": "active", "created_at": now})
	if err != nil {
		return 0, err
	}
	err = pgx.BeginFunc(ctx, s.Env.App, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlBaseUser, tenant, id, name, email, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlBaseAudit, tenant, string(benchActor.Type), benchActor.ID, req, id, payload); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlBaseOutbox, userstore.NewID(), tenant, payload)
		return err
	})
	return 1, err
}

// --- 2. and 8. Appends ----------------------------------------------------------------------------

type eventSpec struct {
	Type     string
	Payload  json.RawMessage
	Metadata eventstore.Metadata
	metaJSON json.RawMessage
}

// makeEventData builds n user-like events of about 150 bytes of payload each.
func makeEventData(n int) []eventSpec {
	out := make([]eventSpec, n)
	for i := range out {
		p, _ := json.Marshal(map[string]any{
			"display_name": fmt.Sprintf("User %d", i), "email": fmt.Sprintf("user.%d@example.com", i),
			"status": "active", "created_at": "2026-01-01T00:00:00Z", "locale": "en-GB",
		})
		md := eventstore.Metadata{ActorType: "service", ActorID: "bench", RequestID: fmt.Sprintf("req-%d", i), Command: "Import"}
		mj, _ := json.Marshal(md)
		out[i] = eventSpec{Type: "user.imported", Payload: p, Metadata: md, metaJSON: mj}
	}
	return out
}

// appendOurs appends the events as a new stream (expected: no stream) in the writer's tenant.
func (s *Setup) appendOurs(evs []eventSpec) Op {
	data := make([]eventstore.EventData, len(evs))
	for i, e := range evs {
		data[i] = eventstore.EventData{Type: e.Type, Payload: e.Payload, Metadata: e.Metadata}
	}
	return func(ctx context.Context, w, _ int) (int, error) {
		_, err := s.Events.Append(ctx, &eventstore.AppendParams{
			TenantID: s.tenant(w), StreamType: "user", StreamID: userstore.NewID(),
			Expected: eventstore.NoStream(), Events: data,
		})
		return len(data), err
	}
}

var copyColumns = []string{"tenant_id", "stream_type", "stream_id", "stream_version", "partition",
	"event_id", "event_type", "event_version", "payload", "metadata"}

// copyBaseline COPYs the same rows (new event ids, one new stream, versions 1..n) into
// bench.copy_events: no version check, no trigger, no RLS, no transaction settings.
func (s *Setup) copyBaseline(evs []eventSpec) Op {
	return func(ctx context.Context, w, _ int) (int, error) {
		tenant, stream := s.tenant(w), userstore.NewID()
		part := eventstore.PartitionOf(tenant)
		rows := make([][]any, len(evs))
		for i, e := range evs {
			// Plain Go types that pgx encodes in binary directly ([16]byte for uuid, string for jsonb):
			// uuid.UUID and json.RawMessage take slower encode plans.
			rows[i] = []any{[16]byte(tenant), "user", [16]byte(stream), int64(i + 1), part, [16]byte(userstore.NewID()),
				e.Type, int16(1), string(e.Payload), string(e.metaJSON)}
		}
		n, err := s.Env.App.CopyFrom(ctx, pgx.Identifier{"bench", "copy_events"}, copyColumns, pgx.CopyFromRows(rows))
		return int(n), err
	}
}

// publishWatermill publishes the same payloads and metadata as one Publish call (one multi-row
// INSERT, autocommit) to watermill-sql's PostgreSQL topic table.
func (s *Setup) publishWatermill(evs []eventSpec) Op {
	return func(ctx context.Context, _, _ int) (int, error) {
		msgs := make([]*message.Message, len(evs))
		for i, e := range evs {
			m := message.NewMessage(watermill.NewUUID(), message.Payload(e.Payload))
			m.Metadata.Set("event_type", e.Type)
			m.Metadata.Set("actor_type", e.Metadata.ActorType)
			m.Metadata.Set("actor_id", e.Metadata.ActorID)
			m.Metadata.Set("request_id", e.Metadata.RequestID)
			m.Metadata.Set("command", e.Metadata.Command)
			m.SetContext(ctx)
			msgs[i] = m
		}
		return len(msgs), s.Pub.Publish(watermillTopic, msgs...)
	}
}
