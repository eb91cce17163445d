package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
)

// demo is what the workload made: the store, a context in the demo's tenant with its actor, the
// tenant's entities, and a short name for each entity id, to print.
type demo struct {
	store    *pgstore.Store
	ctx      context.Context
	tenant   *userstore.Tenant
	ann, bob *userstore.User
	names    map[uuid.UUID]string
}

// actor performs every mutation of the demo.
var actor = userstore.Actor{Type: userstore.ActorService, ID: "demo"}

// workload runs the demo's mutations through the durable store as the app role, in a fresh tenant, and
// prints one line per mutation.
func workload(ctx context.Context, p *pools, r *report) (*demo, error) {
	store, err := pgstore.New(ctx, p.app, nil) // refuses a schema older or newer than this build
	if err != nil {
		return nil, fmt.Errorf("open the store (as %s): %w", envApp, err)
	}
	id := userstore.NewID()
	d := &demo{store: store, ctx: userstore.WithActor(userstore.WithTenant(ctx, id), actor), names: map[uuid.UUID]string{}}
	ctx = d.ctx
	// The last 12 hex digits of a UUIDv7 are random: a fresh slug for every run.
	if d.tenant, err = store.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "demo-" + id.String()[24:], Name: "Demo Co"}); err != nil {
		return nil, fmt.Errorf("create the tenant: %w", err)
	}
	d.names[id] = d.tenant.Slug
	r.line("%-10s %s (%s), fresh for this run", "tenant", d.tenant.Slug, d.tenant.ID)
	r.section("workload (pgstore as userstore_app, actor %s/%s)", actor.Type, actor.ID)
	r.step("created tenant", "%s %q", d.tenant.Slug, d.tenant.Name)

	if d.ann, err = store.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Ann Owner", Email: "ann@example.com"}); err != nil {
		return nil, fmt.Errorf("create a user: %w", err)
	}
	if d.bob, err = store.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Bob Member", Email: "bob@example.com"}); err != nil {
		return nil, fmt.Errorf("create a user: %w", err)
	}
	d.names[d.ann.ID], d.names[d.bob.ID] = "Ann", "Bob"
	r.step("created users", "%s <%s>, %s <%s>", d.ann.DisplayName, d.ann.Email, d.bob.DisplayName, d.bob.Email)

	acct, err := store.OpenAccount(ctx, &userstore.OpenAccountParams{UserID: d.ann.ID, LoginName: "ann",
		Kind: userstore.AccountPassword, CredentialRef: "vault:kv/demo/ann"})
	if err != nil {
		return nil, fmt.Errorf("open an account: %w", err)
	}
	d.names[acct.ID] = "login ann"
	r.step("opened account", "login %q (%s) for Ann", acct.LoginName, acct.Kind)

	ident, err := store.LinkIdentity(ctx, &userstore.LinkIdentityParams{UserID: d.ann.ID, Issuer: "https://idp.example.com", Subject: "ann-42"})
	if err != nil {
		return nil, fmt.Errorf("link an external identity: %w", err)
	}
	d.names[ident.ID] = "ann-42"
	r.step("linked identity", "%s / %s to Ann", ident.Issuer, ident.Subject)

	app, err := store.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Name: "Console", ClientKey: "console", Kind: userstore.AppWeb})
	if err != nil {
		return nil, fmt.Errorf("register an application: %w", err)
	}
	b, err := store.Bind(ctx, &userstore.BindParams{ApplicationID: app.ID, UserID: d.bob.ID, Roles: []string{"viewer"}})
	if err != nil {
		return nil, fmt.Errorf("bind a user to the application: %w", err)
	}
	d.names[app.ID], d.names[b.ID] = "Console", "Bob/Console"
	r.step("registered app", "%s (%s, client key %q); bound Bob as %s", app.Name, app.Kind, app.ClientKey, strings.Join(b.Roles, ","))

	cat, err := store.DefineCatalog(ctx, &userstore.DefineCatalogParams{Name: "Profile", Attributes: []userstore.Attribute{
		{Key: "nickname", Type: userstore.AttrString}, {Key: "level", Type: userstore.AttrInt}}})
	if err != nil {
		return nil, fmt.Errorf("define a catalog: %w", err)
	}
	if _, err := store.SetProfileValues(ctx, &userstore.SetProfileValuesParams{UserID: d.ann.ID, CatalogID: cat.ID,
		Values: map[string]userstore.Value{"nickname": userstore.StringValue("Annie"), "level": userstore.IntValue(3)}}); err != nil {
		return nil, fmt.Errorf("set profile values: %w", err)
	}
	d.names[cat.ID] = "Profile"
	r.step("defined catalog", "%q (nickname string, level int); Ann: nickname=Annie level=3", cat.Name)

	for _, m := range []struct {
		u    *userstore.User
		role userstore.MemberRole
	}{{d.ann, userstore.RoleOwner}, {d.bob, userstore.RoleMember}} {
		if _, err := store.AddMember(ctx, &userstore.AddMemberParams{UserID: m.u.ID, Role: m.role}); err != nil {
			return nil, fmt.Errorf("add a member: %w", err)
		}
	}
	r.step("added members", "Ann as owner (the only one), Bob as member")
	return d, nil
}

// refusals makes two mutations the store refuses, and prints the typed error each caller gets: a
// duplicate (the kind of the rule, never the value) and a failed precondition (a reason code).
func refusals(d *demo, r *report) error {
	r.section("refused (nothing is written; the caller gets a typed error)")

	_, err := d.store.CreateUser(d.ctx, &userstore.CreateUserParams{DisplayName: "Imposter", Email: "ANN@Example.com"})
	var dup *userstore.DuplicateError
	if !errors.As(err, &dup) {
		return fmt.Errorf("a second user with Ann's email: want a *userstore.DuplicateError, got %v", err)
	}
	r.step("Ann's email again", "%T{Kind: %q}, errors.Is(err, ErrDuplicate) = %t", dup, dup.Kind, errors.Is(err, userstore.ErrDuplicate))

	_, err = d.store.ChangeMemberRole(d.ctx, &userstore.ChangeMemberRoleParams{UserID: d.ann.ID, Role: userstore.RoleAdmin})
	var pre *userstore.PreconditionError
	if !errors.As(err, &pre) {
		return fmt.Errorf("demoting the last owner: want a *userstore.PreconditionError, got %v", err)
	}
	r.step("demote last owner", "%T{Reason: %q}, errors.Is(err, ErrFailedPrecondition) = %t", pre, pre.Reason, errors.Is(err, userstore.ErrFailedPrecondition))
	return nil
}

// name returns the demo's name of an entity id, or the id's last 8 hex digits (random in a UUIDv7).
func (d *demo) name(id uuid.UUID) string {
	if n, ok := d.names[id]; ok {
		return n
	}
	return "…" + id.String()[28:]
}
