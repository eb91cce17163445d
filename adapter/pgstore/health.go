package pgstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/netkingdom/userstore"
)

// Readiness check names, in the order Ready reports them.
const (
	CheckConnectivity      = "connectivity"
	CheckSchemaVersion     = "schema_version"
	CheckRowLevelSecurity  = "rls"
	CheckRole              = "role"
	CheckSynchronousCommit = "synchronous_commit"
	CheckServerVersion     = "server_version"
	CheckHorizon           = "horizon"
)

// MinServerVersion is the oldest PostgreSQL the store supports, as server_version_num.
const MinServerVersion = 150000

// Ready implements userstore.HealthStore. It reports one check per condition the store needs, each
// failing for its own reason:
//
//   - connectivity: the pool reaches the database;
//   - schema_version: the applied migrations are exactly this build's;
//   - rls: row-level security is enabled and forced on every table of schema userstore that has a
//     tenant_id column, and a policy applies to the role on every one it may read;
//   - role: the role is not a superuser, has no BYPASSRLS, and owns none of those tables (directly or
//     through a role it is a member of);
//   - synchronous_commit: the session default is not off;
//   - server_version: PostgreSQL 15 or later;
//   - horizon (a warning, never unready): the transaction that holds the log's read horizon back has
//     run longer than Config.HorizonWarnAfter; the reason names its backend pid and age. Only a
//     holder the role may see in pg_stat_activity is reported (its own role's backends, or every
//     backend with pg_read_all_stats).
//
// The store is ready when every check that is not a warning passed. Ready returns an error only when
// ctx ends; a database it cannot reach is a failed connectivity check.
func (s *Store) Ready(ctx context.Context) (*userstore.Readiness, error) {
	r := &userstore.Readiness{}
	add := func(name string, ok bool, reason string) {
		c := userstore.Check{Name: name, OK: ok}
		if !ok {
			c.Reason = reason
		}
		r.Checks = append(r.Checks, c)
	}

	var (
		serverVersion int
		syncCommit    string
		super, bypass bool
	)
	if err := s.pool.QueryRow(ctx, sqlReadyRole).Scan(&serverVersion, &syncCommit, &super, &bypass); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		reason := translate("connect", err, phaseWork).Error()
		add(CheckConnectivity, false, reason)
		for _, name := range []string{CheckSchemaVersion, CheckRowLevelSecurity, CheckRole, CheckSynchronousCommit, CheckServerVersion} {
			add(name, false, "not checked: the database is unreachable")
		}
		return r, nil
	}
	add(CheckConnectivity, true, "")

	if st, err := s.schemaStatus(ctx); err != nil {
		add(CheckSchemaVersion, false, err.Error())
	} else {
		add(CheckSchemaVersion, st.UpToDate(), schemaReason(st.Current, st.Expected, st.Pending, st.Unknown))
	}

	rls, role, err := s.tableChecks(ctx)
	if err != nil {
		add(CheckRowLevelSecurity, false, err.Error())
		role = append(role, err.Error())
	} else {
		add(CheckRowLevelSecurity, len(rls) == 0, strings.Join(rls, "; "))
	}
	if super {
		role = append([]string{"the role is a superuser"}, role...)
	}
	if bypass {
		role = append([]string{"the role has BYPASSRLS"}, role...)
	}
	add(CheckRole, len(role) == 0, strings.Join(role, "; "))

	add(CheckSynchronousCommit, syncCommit != "off",
		"synchronous_commit is off for this role or database: acknowledged commits can be lost in a crash")
	add(CheckServerVersion, serverVersion >= MinServerVersion,
		fmt.Sprintf("PostgreSQL %d.%d is older than the supported %d", serverVersion/10000, serverVersion%10000, MinServerVersion/10000))

	h, err := s.events.Horizon(ctx)
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.Checks = append(r.Checks, userstore.Check{Name: CheckHorizon, Warning: true,
			Reason: "cannot read the log's horizon: " + translate("horizon", err, phaseWork).Error()})
	case h.Holder != nil && h.Holder.XactAge > s.cfg.HorizonWarnAfter:
		r.Checks = append(r.Checks, userstore.Check{Name: CheckHorizon, Warning: true, Reason: fmt.Sprintf(
			"backend pid %d (application %q, %s) has held the log's read horizon for %s (warning after %s): readers of the log, the audit trail and the outbox wait for it",
			h.Holder.PID, h.Holder.ApplicationName, h.Holder.State, h.Holder.XactAge.Round(time.Millisecond), s.cfg.HorizonWarnAfter)})
	default:
		add(CheckHorizon, true, "")
	}

	r.Ready = true
	for _, c := range r.Checks {
		if !c.OK && !c.Warning {
			r.Ready = false
		}
	}
	return r, nil
}

// tableChecks returns what is wrong with the row-level security of the tenant tables, and which of
// them the role owns.
func (s *Store) tableChecks(ctx context.Context) (rls, owned []string, err error) {
	rows, err := s.pool.Query(ctx, sqlReadyTables)
	if err != nil {
		return nil, nil, translate("read the tables' security", err, phaseWork)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			name                                      string
			enabled, forced, own, readable, hasPolicy bool
		)
		if err := rows.Scan(&name, &enabled, &forced, &own, &readable, &hasPolicy); err != nil {
			return nil, nil, translate("read the tables' security", err, phaseWork)
		}
		n++
		table := "userstore." + name
		switch {
		case !enabled:
			rls = append(rls, "row-level security is not enabled on "+table)
		case !forced:
			rls = append(rls, "row-level security is not forced on "+table)
		case readable && !hasPolicy:
			rls = append(rls, "no row-level security policy applies to the role on "+table)
		}
		if own {
			owned = append(owned, "the role owns "+table)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, translate("read the tables' security", err, phaseWork)
	}
	if n == 0 {
		rls = append(rls, "no table of schema userstore has a tenant_id column")
	}
	return rls, owned, nil
}

func schemaReason(current, expected int64, pending, unknown []int64) string {
	switch {
	case len(unknown) > 0:
		return fmt.Sprintf("the database is at schema version %d, newer than this build's %d (unknown versions %v)", current, expected, unknown)
	case len(pending) > 0:
		return fmt.Sprintf("the database is at schema version %d, this build expects %d (pending versions %v)", current, expected, pending)
	}
	return ""
}

// SchemaVersion implements userstore.HealthStore: the database's applied version, this build's and
// the pending ones (migrations.Status).
func (s *Store) SchemaVersion(ctx context.Context) (*userstore.SchemaVersion, error) {
	st, err := s.schemaStatus(ctx)
	if err != nil {
		return nil, err
	}
	return &userstore.SchemaVersion{Current: st.Current, Expected: st.Expected, Pending: st.Pending}, nil
}
