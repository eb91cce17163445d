package pgstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/faultproxy"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// canary is the password of the throwaway roles of these tests: every character that URLs and
// connection strings treat specially, so that an escaped form would show too.
const canary = "c@n/a:r?y#p%w' x"

// secretForms returns the forms in which a secret could leak: as is and URL-escaped (query, path and
// user-info escaping) — and, for the canary password, every 6-byte piece of it, since a half-parsed
// connection string quotes a part of its password.
func secretForms(secret string) []string {
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret),
		strings.TrimPrefix(url.UserPassword("u", secret).String(), "u:")}
	if secret == canary {
		for i := 0; i+6 <= len(secret); i++ {
			forms = append(forms, secret[i:i+6])
		}
	}
	return forms
}

// renderings renders err every way a program might print or log it: the verbs, JSON, slog's JSON and
// text handlers, and %+v and %#v of every error in its tree.
func renderings(err error) map[string]string {
	out := map[string]string{
		"%v":  fmt.Sprintf("%v", err),
		"%+v": fmt.Sprintf("%+v", err),
		"%#v": fmt.Sprintf("%#v", err),
		"%s":  fmt.Sprintf("%s", err),
		"%q":  fmt.Sprintf("%q", err),
	}
	if b, jerr := json.Marshal(err); jerr == nil {
		out["json"] = string(b)
	} else {
		out["json"] = "unmarshalable: " + jerr.Error()
	}
	var jsonBuf, textBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonBuf, nil)).Error("operation failed", slog.Any("err", err))
	slog.New(slog.NewTextHandler(&textBuf, nil)).Error("operation failed", slog.Any("err", err))
	out["slog json"] = jsonBuf.String()
	out["slog text"] = textBuf.String()
	var walk func(prefix string, e error)
	walk = func(prefix string, e error) {
		if e == nil {
			return
		}
		out[prefix+" %+v"] = fmt.Sprintf("%+v", e)
		out[prefix+" %#v"] = fmt.Sprintf("%#v", e)
		if b, jerr := json.Marshal(e); jerr == nil {
			out[prefix+" json"] = string(b)
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(prefix+".0", u.Unwrap())
		case interface{ Unwrap() []error }:
			for i, c := range u.Unwrap() {
				walk(fmt.Sprintf("%s.%d", prefix, i), c)
			}
		}
	}
	walk("tree", err)
	return out
}

// leaks lists where a form of one of secrets appears in a rendering of err.
func leaks(err error, secrets ...string) []string {
	var found []string
	for how, text := range renderings(err) {
		for _, s := range secrets {
			for _, form := range secretForms(s) {
				if strings.Contains(text, form) {
					found = append(found, fmt.Sprintf("%s shows %q", how, form))
				}
			}
		}
		if strings.Contains(text, "postgres://") || strings.Contains(text, "postgresql://") || strings.Contains(text, "password=") {
			found = append(found, how+" shows a connection string")
		}
	}
	return found
}

// requireRedacted fails when err, rendered any way, shows one of secrets or a connection string.
func requireRedacted(t *testing.T, err error, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	require.Empty(t, leaks(err, secrets...), "the error leaks: %v", err)
}

// TestRedactionCheckSeesALeak is the control of the tests below: pgx's own parse error of a
// connection string that holds the canary does show it (in %#v, in JSON, and partly in %v), and
// leaks finds it. No path of pgstore takes a connection string; NewPool builds its configuration
// field by field.
func TestRedactionCheckSeesALeak(t *testing.T) {
	t.Parallel()
	_, err := pgxpool.ParseConfig("postgres://userstore_app:" + canary + "@127.0.0.1:5432/db")
	require.Error(t, err)
	require.NotEmpty(t, leaks(err, canary))
	_, err = pgxpool.ParseConfig("postgres://userstore_app:" + url.QueryEscape(canary) + "@127.0.0.1:notaport/db")
	require.Error(t, err)
	require.NotEmpty(t, leaks(err, canary))
}

// TestNewPoolErrorsDoNotLeakThePassword exercises every failure of NewPool with the canary as the
// password sent or expected.
func TestNewPoolErrorsDoNotLeakThePassword(t *testing.T) {
	t.Parallel()
	role := loginRole(t, canary)
	for _, tc := range []struct {
		name   string
		modify func(t *testing.T, c *pgstore.ConnectConfig)
	}{
		{"connection refused", func(t *testing.T, c *pgstore.ConnectConfig) {
			c.PasswordFile, c.Port = writeSecret(t, canary), closedPort(t)
		}},
		{"wrong password sent", func(t *testing.T, c *pgstore.ConnectConfig) { c.PasswordFile = writeSecret(t, canary) }},
		{"wrong password expected", func(t *testing.T, c *pgstore.ConnectConfig) {
			c.User, c.PasswordFile = role, writeSecret(t, "not-the-"+role)
		}},
		{"password func to a closed port", func(t *testing.T, c *pgstore.ConnectConfig) {
			c.PasswordFile, c.Port = "", closedPort(t)
			c.PasswordFunc = func(context.Context) (string, error) { return canary, nil }
		}},
		{"unknown database", func(t *testing.T, c *pgstore.ConnectConfig) {
			c.User, c.PasswordFile, c.Database = role, writeSecret(t, canary), "ut_no_such_database"
		}},
		{"refused by the network", func(t *testing.T, c *pgstore.ConnectConfig) {
			p := proxy(t)
			p.SetMode(faultproxy.Refuse)
			c.User, c.PasswordFile, c.Host, c.Port = role, writeSecret(t, canary), "127.0.0.1", p.Port()
		}},
		{"blackholed", func(t *testing.T, c *pgstore.ConnectConfig) {
			p := proxy(t)
			p.SetMode(faultproxy.Blackhole)
			c.User, c.PasswordFile, c.Host, c.Port = role, writeSecret(t, canary), "127.0.0.1", p.Port()
			c.ConnectTimeout = 300 * time.Millisecond
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := connectConfig(t, pgtest.App)
			tc.modify(t, cfg)
			pool, err := pgstore.NewPool(t.Context(), cfg)
			require.Nil(t, pool)
			requireLibraryError(t, err, userstore.ErrUnavailable)
			requireRedacted(t, err, canary)
		})
	}
}

// TestNewStoreErrorsDoNotLeakThePassword: pgstore.New on pools (the caller's, built from a pgx config
// that holds the canary) that cannot connect.
func TestNewStoreErrorsDoNotLeakThePassword(t *testing.T) {
	t.Parallel()
	role := loginRole(t, canary)
	for _, tc := range []struct {
		name   string
		modify func(t *testing.T, c *pgxpool.Config)
	}{
		{"connection refused", func(t *testing.T, c *pgxpool.Config) {
			c.ConnConfig.User, c.ConnConfig.Port = role, closedPort(t)
		}},
		{"wrong password sent", func(t *testing.T, c *pgxpool.Config) {}},
		{"refused by the network", func(t *testing.T, c *pgxpool.Config) {
			p := proxy(t)
			p.SetMode(faultproxy.Refuse)
			c.ConnConfig.User, c.ConnConfig.Host, c.ConnConfig.Port = role, "127.0.0.1", p.Port()
		}},
		{"blackholed", func(t *testing.T, c *pgxpool.Config) {
			p := proxy(t)
			p.SetMode(faultproxy.Blackhole)
			c.ConnConfig.User, c.ConnConfig.Host, c.ConnConfig.Port = role, "127.0.0.1", p.Port()
			c.ConnConfig.ConnectTimeout = 300 * time.Millisecond
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := pgtest.Default(t).PoolConfig(t, pgtest.App)
			cfg.ConnConfig.Password = canary // userstore_app's password is another: "wrong password sent"
			cfg.ConnConfig.TLSConfig, cfg.ConnConfig.Fallbacks = nil, nil
			tc.modify(t, cfg)
			pool := pgtest.NewPool(t, cfg) // pgxpool connects lazily: this cannot fail
			s, err := pgstore.New(t.Context(), pool, nil)
			require.Nil(t, s)
			requireLibraryError(t, err, userstore.ErrUnavailable)
			requireRedacted(t, err, canary)
		})
	}
}

// TestStoreErrorsDoNotLeakThePassword: a working store (logged in with the canary) loses its
// network; the errors of its calls show neither the password nor the values of the call.
func TestStoreErrorsDoNotLeakThePassword(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	role := loginRole(t, canary)
	p := proxy(t)
	cfg := connectConfig(t, pgtest.App)
	cfg.User, cfg.PasswordFile, cfg.Host, cfg.Port = role, writeSecret(t, canary), "127.0.0.1", p.Port()
	cfg.ConnectTimeout = 300 * time.Millisecond
	pool := newPool(t, cfg)
	closeFirst(t, p) // releases pgx's cancel requests held by the blackhole before the pool closes
	s, err := pgstore.New(ctx, pool, nil)
	require.NoError(t, err)
	tctx, _ := newTenantCtx(t, ctx, s)
	email := "net-" + uuid.NewString() + "@example.com"

	// The network refuses new connections and resets the open ones.
	p.SetMode(faultproxy.Refuse)
	p.CloseConnections()
	_, err = s.CreateUser(tctx, createUserParams(email))
	requireLibraryError(t, err, userstore.ErrUnavailable)
	requireRedacted(t, err, canary, email)
	_, err = s.GetUserByEmail(tctx, email)
	requireLibraryError(t, err, userstore.ErrUnavailable)
	requireRedacted(t, err, canary, email)

	// The network goes dark: the connection attempt times out.
	p.SetMode(faultproxy.Blackhole)
	_, err = s.GetUserByEmail(tctx, email)
	requireLibraryError(t, err, userstore.ErrUnavailable)
	requireRedacted(t, err, canary, email)

	// The caller gives up: the context's error, still without the values.
	short, cancelShort := context.WithTimeout(tctx, 100*time.Millisecond)
	defer cancelShort()
	_, err = s.CreateUser(short, createUserParams(email))
	require.Error(t, err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	requireRedacted(t, err, canary, email)
	p.SetMode(faultproxy.Pass)
}

// TestDuplicateErrorsDoNotLeakTheValue: a uniqueness refusal names the kind of rule, never the email
// or login name; a validation error names the field, never the value.
func TestDuplicateErrorsDoNotLeakTheValue(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := pgstore.New(ctx, pgtest.AppPool(t), nil)
	require.NoError(t, err)
	tctx, _ := newTenantCtx(t, ctx, s)
	email := "dup." + strings.ReplaceAll(uuid.NewString(), "-", "") + "@example.com"
	other := "other." + strings.ReplaceAll(uuid.NewString(), "-", "") + "@example.com"
	login := "login-" + strings.ReplaceAll(uuid.NewString(), "-", "")

	u, err := s.CreateUser(tctx, &userstore.CreateUserParams{DisplayName: "Ann", Email: email})
	require.NoError(t, err)
	_, err = s.CreateUser(tctx, &userstore.CreateUserParams{DisplayName: "Bob", Email: email})
	require.ErrorIs(t, err, userstore.ErrDuplicate)
	var dup *userstore.DuplicateError
	require.ErrorAs(t, err, &dup)
	require.Equal(t, userstore.KindEmail, dup.Kind)
	requireLibraryError(t, err, userstore.ErrDuplicate)
	requireRedacted(t, err, email)

	v, err := s.CreateUser(tctx, &userstore.CreateUserParams{DisplayName: "Cid", Email: other})
	require.NoError(t, err)
	_, err = s.ChangeUserEmail(tctx, &userstore.ChangeUserEmailParams{ID: v.ID, Email: email, ExpectedVersion: v.Version})
	require.ErrorIs(t, err, userstore.ErrDuplicate)
	requireRedacted(t, err, email, other)

	_, err = s.OpenAccount(tctx, &userstore.OpenAccountParams{UserID: u.ID, LoginName: login, Kind: userstore.AccountPassword})
	require.NoError(t, err)
	_, err = s.OpenAccount(tctx, &userstore.OpenAccountParams{UserID: v.ID, LoginName: login, Kind: userstore.AccountPassword})
	require.ErrorIs(t, err, userstore.ErrDuplicate)
	require.ErrorAs(t, err, &dup)
	require.Equal(t, userstore.KindLoginName, dup.Kind)
	requireRedacted(t, err, login)

	_, err = s.CreateUser(tctx, &userstore.CreateUserParams{DisplayName: "Dee", Email: "not an email " + canary})
	require.ErrorIs(t, err, userstore.ErrValidation)
	requireRedacted(t, err, canary)

	require.False(t, errors.Is(err, userstore.ErrDuplicate))
}
