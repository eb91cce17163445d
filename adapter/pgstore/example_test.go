package pgstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
)

// A consumer builds a pool that logs in as the app role (its own settings, TLS and secrets; here the
// test database of USERSTORE_APP_DATABASE_URL), checks that the store is ready, and uses it as the
// userstore.Store it depends on. The audit trail it reads is the projector's: a projections.Runner of
// the audit projection, on a pool of the projector role, writes it.
func Example() {
	ctx := context.Background()
	pool := pgtest.ExamplePool(pgtest.App) // a *pgxpool.Pool connected as userstore_app

	store, err := pgstore.New(ctx, pool, nil) // refuses a schema older or newer than this build
	if err != nil {
		panic(err)
	}
	ready, err := store.Ready(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("ready:", ready.Ready)

	// Every call runs in a tenant and every mutation on behalf of an actor.
	tenantID := userstore.NewID()
	ctx = userstore.WithTenant(ctx, tenantID)
	ctx = userstore.WithActor(ctx, userstore.Actor{Type: userstore.ActorService, ID: "signup"})

	tenant, err := store.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "acme-" + tenantID.String()[:8], Name: "Acme"})
	if err != nil {
		panic(err)
	}
	fmt.Println("tenant:", tenant.Name, tenant.Status, tenant.Version)

	user, err := store.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Ann", Email: "Ann@Example.com"})
	if err != nil {
		panic(err)
	}
	account, err := store.OpenAccount(ctx, &userstore.OpenAccountParams{
		UserID: user.ID, LoginName: "ann", Kind: userstore.AccountPassword, CredentialRef: "vault:kv/users/ann",
	})
	if err != nil {
		panic(err)
	}

	// Reads see every mutation that returned.
	found, err := store.GetUserByEmail(ctx, "ann@example.COM")
	if err != nil {
		panic(err)
	}
	fmt.Println("user:", found.DisplayName, found.Email, found.Status, found.ID == user.ID)
	byLogin, err := store.GetAccountByLogin(ctx, "ANN")
	if err != nil {
		panic(err)
	}
	fmt.Println("account:", byLogin.LoginName, byLogin.Kind, byLogin.Status, byLogin.ID == account.ID)
	accounts, err := store.ListAccountsByUser(ctx, &userstore.ListAccountsParams{UserID: user.ID})
	if err != nil {
		panic(err)
	}
	fmt.Println("accounts of the user:", len(accounts.Items))

	// Uniqueness errors name the rule, never the value.
	_, err = store.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Imposter", Email: "ANN@example.com"})
	var dup *userstore.DuplicateError
	fmt.Println("duplicate:", errors.As(err, &dup) && dup.Kind == userstore.KindEmail)

	// The audit trail is written by the projector (cmd/projector, as userstore_projector) from the event
	// log, a little after the mutations. Here one catch-up of the audit projection does it in-process.
	projector := pgtest.ExamplePool(pgtest.Projector) // a *pgxpool.Pool connected as userstore_projector
	events, err := eventstore.New(projector, nil)
	if err != nil {
		panic(err)
	}
	runner, err := projections.New(projector, events, []projections.Projection{audit.New(nil)}, nil)
	if err != nil {
		panic(err)
	}
	if err := runner.CatchUp(ctx); err != nil { // returns once every event committed so far is projected
		panic(err)
	}
	trail, err := store.ListAuditRecords(ctx, &userstore.ListAuditParams{})
	if err != nil {
		panic(err)
	}
	for _, r := range trail.Items {
		fmt.Println(r.Sequence, r.Action, r.Actor.ID)
	}
	if _, err := domain.VerifyAuditChain(trail.Items); err != nil {
		panic(err)
	}
	fmt.Println("chain verified:", len(trail.Items), "records")
	// Output:
	// ready: true
	// tenant: Acme active 1
	// user: Ann Ann@Example.com active true
	// account: ann password active true
	// accounts of the user: 1
	// duplicate: true
	// 1 tenant.created signup
	// 2 user.created signup
	// 3 account.opened signup
	// chain verified: 3 records
}
