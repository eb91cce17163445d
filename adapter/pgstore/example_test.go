package pgstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// A consumer builds a pool that logs in as the app role (its own settings, TLS and secrets; here the
// test database of USERSTORE_APP_DATABASE_URL), checks that the store is ready, and uses it as the
// userstore.Store it depends on.
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

	// The audit trail derives from the event log; Sync waits until it shows every returned mutation.
	if err := store.Sync(ctx); err != nil {
		panic(err)
	}
	audit, err := store.ListAuditRecords(ctx, &userstore.ListAuditParams{})
	if err != nil {
		panic(err)
	}
	for _, r := range audit.Items {
		fmt.Println(r.Sequence, r.Action, r.Actor.ID)
	}
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
}
