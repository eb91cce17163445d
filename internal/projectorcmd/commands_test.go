package projectorcmd

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/projections/outbox"
)

// TestMigrateAndStatus: status on a database without the schema reports the mismatch (exit 1); migrate
// applies every version and says so, then that it is up to date; status then reports the projections'
// lag in text and JSON (exit 0), and a database migrated by a newer build as a problem (exit 1).
func TestMigrateAndStatus(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, &pgtest.DatabaseOpts{Unmigrated: true})
	vars := map[string]string{
		EnvProjectorDatabaseURL: dsn(t, pgtest.EnvProjectorURL, db),
		EnvOwnerDatabaseURL:     dsn(t, pgtest.EnvOwnerURL, db),
	}

	res := runMain(t, ctx, vars, "status")
	require.Equal(t, ExitFailed, res.code)
	require.Contains(t, res.stdout, "schema version 0: this build expects")
	require.Contains(t, res.stdout, "problems:")

	res = runMain(t, ctx, vars, "migrate")
	require.Equal(t, ExitOK, res.code)
	require.Regexp(t, `^schema version \d+: applied \[1 2 .*\]\n$`, res.stdout)
	res = runMain(t, ctx, vars, "migrate")
	require.Equal(t, ExitOK, res.code)
	require.Regexp(t, `^schema version \d+: up to date\n$`, res.stdout)

	history(t, ctx, db, 2)
	events := countEvents(t, ctx, db)

	res = runMain(t, ctx, vars, "status")
	require.Equal(t, ExitOK, res.code)
	require.Contains(t, res.stdout, ": up to date\n")
	require.Contains(t, res.stdout, "horizon: transaction ")
	require.Regexp(t, `(?m)^PROJECTION\s+VERSION\s+EVENTS BEHIND\s+SECONDS BEHIND\s+PARKED\s+CHECKPOINTS\s+PROCESSED\s+LAST CHECKPOINT$`, res.stdout)
	require.Regexp(t, `(?m)^audit\s+1\s+\d+\s+[0-9.]+\s+0\s+0/64\s+0\s+-$`, res.stdout)
	require.Regexp(t, `(?m)^outbox\s+1\s+`, res.stdout)

	res = runMain(t, ctx, vars, "status", "-json", "-projections", "audit")
	require.Equal(t, ExitOK, res.code)
	var rep statusReport
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &rep))
	require.True(t, rep.Schema.UpToDate)
	require.Equal(t, rep.Schema.Expected, rep.Schema.Current)
	require.NotNil(t, rep.Horizon)
	require.Empty(t, rep.Problems)
	require.Len(t, rep.Projections, 1)
	p := rep.Projections[0]
	require.Equal(t, audit.Name, p.Name)
	require.Equal(t, events, p.EventsBehind)
	require.Positive(t, p.SecondsBehind)
	require.Len(t, p.Partitions, eventstore.Partitions)
	require.Zero(t, p.Checkpoints)

	// Catch up, as a projector would: no lag, a checkpoint per partition with events.
	catchUp(t, ctx, db)
	res = runMain(t, ctx, vars, "status", "-json")
	require.Equal(t, ExitOK, res.code)
	rep = statusReport{}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &rep))
	require.Len(t, rep.Projections, 2)
	for _, p := range rep.Projections {
		require.Zero(t, p.EventsBehind, p.Name)
		require.Zero(t, p.SecondsBehind, p.Name)
		require.Equal(t, events, p.Processed, p.Name)
		require.Positive(t, p.Checkpoints, p.Name)
		require.NotNil(t, p.LastUpdatedAt, p.Name)
	}

	_, err := db.Pool(t, pgtest.Owner).Exec(ctx,
		`INSERT INTO userstore.goose_db_version (version_id, is_applied) VALUES (99999, true)`)
	require.NoError(t, err)
	res = runMain(t, ctx, vars, "status", "-json")
	require.Equal(t, ExitFailed, res.code)
	rep = statusReport{}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &rep))
	require.False(t, rep.Schema.UpToDate)
	require.Equal(t, []int64{99999}, rep.Schema.Unknown)
	require.Len(t, rep.Problems, 1)
	res = runMain(t, ctx, vars, "migrate")
	require.Equal(t, ExitFailed, res.code)
	require.Contains(t, res.stderr, "newer build")
}

// catchUp processes the whole log with the program's projections, as the projector role.
func catchUp(t *testing.T, ctx context.Context, db *pgtest.Database) {
	t.Helper()
	pool := db.Pool(t, pgtest.Projector)
	st, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	projs, release, err := projectionsFor(ctx, &projectionOptions{names: projectionsDefault, outboxTopic: outbox.DefaultTopic}, nil)
	require.NoError(t, err)
	t.Cleanup(release)
	r, err := projections.New(pool, st, projs, nil)
	require.NoError(t, err)
	require.NoError(t, r.CatchUp(ctx))
}

// TestDeadLetters: dead-letters list shows parked events; retry of a tenant whose event still fails
// exits 1, retry after the cause is fixed applies them (exit 0); skip of a poison event applies the
// events behind it (exit 0) and is recorded; skipping it again, an unknown projection, missing flags are
// errors; status reports the parked dead letters that remain as problems.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	vars := map[string]string{EnvProjectorDatabaseURL: dsn(t, pgtest.EnvProjectorURL, db)}
	tenants := history(t, ctx, db, 2)
	poisoned, blocked := tenants[0], tenants[1]
	admin := db.Pool(t, pgtest.Admin)

	// Tenant "poisoned": an event no projection can decode, then a valid one behind it.
	app, err := eventstore.New(db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	appended, err := app.Append(ctx, &eventstore.AppendParams{TenantID: poisoned, StreamType: "user", StreamID: uuid.New(),
		Expected: eventstore.NoStream(), Events: []eventstore.EventData{{Type: "test.poison", Payload: json.RawMessage(`{}`)}}})
	require.NoError(t, err)
	poison := appended.EventIDs[0]
	store, err := pgstore.New(ctx, db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	_, err = store.CreateUser(userstore.WithActor(userstore.WithTenant(ctx, poisoned),
		userstore.Actor{Type: userstore.ActorService, ID: "late"}), &userstore.CreateUserParams{DisplayName: "Late", Email: "late@example.com"})
	require.NoError(t, err)

	// Tenant "blocked": an audit record that claims its first event already (an operator's mistake, say)
	// makes the audit projection's insert of that event fail (unique violation) until it is removed.
	var first uuid.UUID
	require.NoError(t, admin.QueryRow(ctx, `SELECT event_id FROM userstore.events WHERE tenant_id = $1
		ORDER BY transaction_id, global_position LIMIT 1`, blocked).Scan(&first))
	_, err = admin.Exec(ctx, `
		INSERT INTO userstore.audit_records (tenant_id, sequence, event_id, position, transaction_id, occurred_at,
		       actor_type, actor_id, action, target_type, target_id, request_id, outcome, prev_hash, hash)
		VALUES ($1, 1, $2, 0, '1', now(), 'service', 'x', 'bogus', 'tenant', $1, '', 'success', repeat('0', 64), repeat('a', 64))`,
		blocked, first)
	require.NoError(t, err)

	catchUp(t, ctx, db)

	var poisonedEvents, blockedEvents int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE tenant_id = $1 AND global_position >=
		(SELECT global_position FROM userstore.events WHERE event_id = $3)), count(*) FILTER (WHERE tenant_id = $2)
		FROM userstore.events`, poisoned, blocked, poison).Scan(&poisonedEvents, &blockedEvents))
	require.Greater(t, poisonedEvents, 1)

	res := runMain(t, ctx, vars, "dead-letters", "list", "-projection", "audit")
	require.Equal(t, ExitOK, res.code)
	require.Contains(t, res.stdout, "test.poison")
	require.Contains(t, res.stdout, "SQLSTATE 23505")
	require.Contains(t, res.stdout, "\n"+itoa(poisonedEvents+blockedEvents)+" dead letters\n")

	list := func(args ...string) []deadLetterJSON {
		t.Helper()
		res := runMain(t, ctx, vars, append([]string{"dead-letters", "list", "-json"}, args...)...)
		require.Equal(t, ExitOK, res.code)
		var out []deadLetterJSON
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &out))
		return out
	}
	dls := list("-projection", "audit", "-tenant", poisoned.String())
	require.Len(t, dls, poisonedEvents)
	require.Equal(t, poison.String(), dls[0].EventID)
	require.Equal(t, "parked", dls[0].Status)
	require.Positive(t, dls[0].Attempts)
	require.NotEmpty(t, dls[0].Error)
	require.Len(t, list("-projection", "outbox", "-tenant", poisoned.String()), poisonedEvents)
	require.Empty(t, list("-projection", "audit", "-status", "skipped"))

	// Retrying the poisoned tenant fails again: exit 1, nothing applied.
	res = runMain(t, ctx, vars, "dead-letters", "retry", "-projection", "audit", "-tenant", poisoned.String(), "-by", "alice")
	require.Equal(t, ExitFailed, res.code)
	require.Contains(t, res.stdout, "event "+poison.String()+" failed again")
	require.Contains(t, res.stderr, "failed again")

	// The cause of the blocked tenant is removed: a retry applies its events.
	_, err = admin.Exec(ctx, `DELETE FROM userstore.audit_records WHERE tenant_id = $1`, blocked)
	require.NoError(t, err)
	res = runMain(t, ctx, vars, "dead-letters", "retry", "-projection", "audit", "-tenant", blocked.String(), "-by", "alice", "-json")
	require.Equal(t, ExitOK, res.code)
	var rr retryReport
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &rr))
	require.Equal(t, retryReport{Projection: "audit", TenantID: blocked.String(), Retried: blockedEvents}, rr)
	recs, err := audit.Read(ctx, db.Pool(t, pgtest.Projector), &audit.ReadParams{TenantID: blocked})
	require.NoError(t, err)
	require.Len(t, recs, blockedEvents)

	// Skipping the poison event applies the events behind it.
	res = runMain(t, ctx, vars, "dead-letters", "skip", "-projection", "audit", "-tenant", poisoned.String(),
		"-event", poison.String(), "-by", "bob")
	require.Equal(t, ExitOK, res.code)
	require.Contains(t, res.stdout, "skipped event "+poison.String())
	require.Contains(t, res.stdout, "retried "+itoa(poisonedEvents-1)+" events")
	require.Contains(t, res.stdout, "; 0 still parked")
	dls = list("-projection", "audit", "-tenant", poisoned.String(), "-status", "all")
	require.Len(t, dls, poisonedEvents)
	require.Equal(t, "skipped", dls[0].Status)
	require.Equal(t, "bob", dls[0].ResolvedBy)
	require.NotNil(t, dls[0].ResolvedAt)
	for _, d := range dls[1:] {
		require.Equal(t, "retried", d.Status)
		require.Equal(t, "bob", d.ResolvedBy)
	}

	res = runMain(t, ctx, vars, "dead-letters", "skip", "-projection", "audit", "-tenant", poisoned.String(),
		"-event", poison.String(), "-by", "bob")
	require.Equal(t, ExitFailed, res.code)
	require.Contains(t, res.stderr, "not parked")
	res = runMain(t, ctx, vars, "dead-letters", "retry", "-projection", "nope", "-tenant", poisoned.String(), "-by", "bob")
	require.Equal(t, ExitUsage, res.code)
	require.Contains(t, res.stderr, "unknown projection")

	// The outbox's dead letters of the poisoned tenant remain: status reports them, exit 1.
	res = runMain(t, ctx, vars, "status")
	require.Equal(t, ExitFailed, res.code)
	require.Contains(t, res.stdout, "outbox: "+itoa(poisonedEvents)+" dead letters parked")
	require.NotContains(t, res.stdout, "audit: ")
	require.True(t, strings.Contains(res.stdout, "problems:"))
}

func itoa(n int) string { return strconv.Itoa(n) }
