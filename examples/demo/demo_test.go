package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/migrations"
)

// packageEnv is the demo's environment pointed at database name: the URLs of the local cluster (as
// `scripts/pg.sh env` exports them) with the database replaced.
func packageEnv(t *testing.T, name string) func(string) string {
	t.Helper()
	env := map[string]string{}
	for _, key := range []string{envOwner, envApp, envProjector} {
		u, err := url.Parse(os.Getenv(key))
		require.NoError(t, err, key)
		u.Path = "/" + name
		env[key] = u.String()
	}
	return func(key string) string { return env[key] }
}

// passwords returns the passwords of the environment's URLs, which no output may show.
func passwords(t *testing.T, getenv func(string) string) []string {
	t.Helper()
	var out []string
	for _, key := range []string{envOwner, envApp, envProjector} {
		u, err := url.Parse(getenv(key))
		require.NoError(t, err)
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	require.NotEmpty(t, out)
	return out
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// TestRun runs the demo twice against the package database: each run makes a fresh tenant and prints
// the refusals as typed errors, the tenant's counts, an audit trail whose chain verifies and the outbox
// messages — in under 60 lines, with no connection URL or password in them.
func TestRun(t *testing.T) {
	ctx := testCtx(t)
	getenv := packageEnv(t, pgtest.Default(t).Name)
	var tenants []string
	for range 2 {
		var out bytes.Buffer
		require.NoError(t, run(ctx, getenv, &out))
		text := out.String()
		t.Log("\n" + text)
		for _, want := range []string{
			fmt.Sprintf("schema version %d", slices.Max(migrations.Versions())),
			`*userstore.DuplicateError{Kind: "email"}, errors.Is(err, ErrDuplicate) = true`,
			`*userstore.PreconditionError{Reason: "last_owner"}, errors.Is(err, ErrFailedPrecondition) = true`,
			"  events in the log   11\n",
			"  read rows           tenants 1, users 2, accounts 1, external_identities 1, applications 1,\n",
			"bindings 1, catalogs 1, profiles 1, memberships 2\n",
			"  audit records       11\n",
			"  outbox messages     11\n",
			"user.created            user Ann ",
			"roster.member_added     user Bob ",
			"\nchain verified: 11 records\n",
			"userstore.tenant.created.v1 ",
			"userstore.roster.member_added.v1 ",
		} {
			require.Contains(t, text, want)
		}
		require.Less(t, strings.Count(text, "\n"), 60, "about a screen")
		for _, secret := range append(passwords(t, getenv), "postgres://", "@127.0.0.1") {
			require.NotContains(t, text, secret)
		}
		line, _, _ := strings.Cut(text[strings.Index(text, "tenant     "):], "\n")
		tenants = append(tenants, line)
	}
	require.NotEqual(t, tenants[0], tenants[1], "every run has a tenant of its own")
}

// TestRunFailsClearly: a missing or broken setting fails the run with an error that names the variable
// and holds neither the URL nor its password.
func TestRunFailsClearly(t *testing.T) {
	t.Parallel()
	good := packageEnv(t, pgtest.Default(t).Name)
	const secret = "s3cret-not-shown"
	with := func(key, value string) func(string) string {
		return func(k string) string {
			if k == key {
				return value
			}
			return good(k)
		}
	}
	wrongPassword, err := url.Parse(good(envOwner))
	require.NoError(t, err)
	wrongPassword.User = url.UserPassword(wrongPassword.User.Username(), secret)
	for name, c := range map[string]struct {
		getenv func(string) string
		want   string
	}{
		"Missing":       {with(envApp, ""), envApp + " is not set"},
		"NotAURL":       {with(envProjector, "postgres://u:"+secret+"@[::1"), envProjector + " does not hold a valid PostgreSQL URL"},
		"WrongPassword": {with(envOwner, wrongPassword.String()), "migrate the database (as " + envOwner + ")"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var out bytes.Buffer
			err := run(ctx, c.getenv, &out)
			require.Error(t, err)
			t.Log(err)
			require.Contains(t, err.Error(), c.want)
			for _, s := range append(passwords(t, good), secret, "postgres://") {
				require.NotContains(t, err.Error(), s)
				require.NotContains(t, out.String(), s)
			}
		})
	}
}
