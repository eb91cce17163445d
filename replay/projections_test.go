package replay_test

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/replay"
)

// TestVerifyProjectionsDetectsDrift: on an untouched database every read row of every table equals the
// fold of the log; after a superuser changes one row, deletes another and inserts a third, the check
// reports exactly those three rows — the changed column with both values, the missing row, the extra
// row — and the other tenants stay clean.
func TestVerifyProjectionsDetectsDrift(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t, 2, 2)
	r := e.replayer(t, &replay.Config{BatchSize: 3})

	clean, err := r.VerifyProjections(ctx, nil)
	require.NoError(t, err)
	require.False(t, clean.Drifted(), "%+v", clean.Diffs)
	require.EqualValues(t, 4, clean.Tenants)
	for _, s := range clean.Tables {
		require.Positive(t, s.Expected, s.Table)
		require.Equal(t, s.Expected, s.Live, s.Table)
		require.Equal(t, s.Expected, s.Matching, s.Table)
	}

	tenant := e.tenants[3] // a rich one: every table has rows
	var changed, deleted uuid.UUID
	asAdmin(t, ctx, e.db, false, func(tx pgx.Tx) {
		require.NoError(t, tx.QueryRow(ctx, `SELECT id FROM userstore.users WHERE tenant_id = $1 AND status = 'active' ORDER BY id LIMIT 1`, tenant).Scan(&changed))
		require.NoError(t, tx.QueryRow(ctx, `SELECT id FROM userstore.accounts WHERE tenant_id = $1 LIMIT 1`, tenant).Scan(&deleted))
		exec(t, ctx, tx, `UPDATE userstore.users SET display_name = 'Mallory' WHERE tenant_id = $1 AND id = $2`, tenant, changed)
		exec(t, ctx, tx, `DELETE FROM userstore.accounts WHERE tenant_id = $1 AND id = $2`, tenant, deleted)
		exec(t, ctx, tx, `INSERT INTO userstore.memberships (tenant_id, user_id, role, version, created_at, updated_at)
			VALUES ($1, $2, 'owner', 1, now(), now())`, tenant, uuid.New())
	})

	rep, err := r.VerifyProjections(ctx, &replay.VerifyProjectionsParams{TenantID: tenant})
	require.NoError(t, err)
	require.True(t, rep.Drifted())
	require.EqualValues(t, 3, rep.DiffsTotal)
	require.Len(t, rep.Diffs, 3)
	byTable := map[string]replay.RowDiff{}
	for _, d := range rep.Diffs {
		byTable[d.Table] = d
	}
	users := byTable["users"]
	require.Equal(t, replay.RowDiffers, users.Kind)
	require.Equal(t, []replay.ColumnValue{{Column: "tenant_id", Value: tenant.String()}, {Column: "id", Value: changed.String()}}, users.Key)
	require.Len(t, users.Columns, 1)
	require.Equal(t, "display_name", users.Columns[0].Column)
	require.Equal(t, "Mallory", users.Columns[0].Found)
	require.NotEqual(t, "Mallory", users.Columns[0].Expected)
	accounts := byTable["accounts"]
	require.Equal(t, replay.RowMissing, accounts.Kind)
	require.Equal(t, deleted.String(), accounts.Key[1].Value)
	require.Equal(t, replay.RowExtra, byTable["memberships"].Kind)
	for _, s := range rep.Tables {
		switch s.Table {
		case "users":
			require.EqualValues(t, 1, s.Differing)
		case "accounts":
			require.EqualValues(t, 1, s.Missing)
			require.Equal(t, s.Expected-1, s.Live)
		case "memberships":
			require.EqualValues(t, 1, s.Extra)
		default:
			require.False(t, s.Drifted(), s.Table)
		}
	}
	var out bytes.Buffer
	require.NoError(t, replay.WriteProjectionReport(&out, rep, replay.FormatTable))
	require.Contains(t, out.String(), "DRIFT users tenant_id="+tenant.String()+" id="+changed.String())
	require.Contains(t, out.String(), "found    Mallory")
	require.Contains(t, out.String(), "DRIFT: 3 row(s)")

	// Every tenant: the same three rows, nothing else; MaxDiffs caps the list, not the count.
	capped := e.replayer(t, &replay.Config{MaxDiffs: 1})
	all, err := capped.VerifyProjections(ctx, nil)
	require.NoError(t, err)
	require.EqualValues(t, 3, all.DiffsTotal)
	require.Len(t, all.Diffs, 1)
	other, err := r.VerifyProjections(ctx, &replay.VerifyProjectionsParams{TenantID: e.tenants[2]})
	require.NoError(t, err)
	require.False(t, other.Drifted())
}
