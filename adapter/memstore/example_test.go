package memstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/memstore"
)

// A consumer's unit test uses the in-memory store as the userstore.Store it depends on.
func Example() {
	store, err := memstore.New(nil)
	if err != nil {
		panic(err)
	}
	tenantID := uuid.MustParse("0197a000-0000-7000-8000-000000000001")
	ctx := userstore.WithTenant(context.Background(), tenantID)
	ctx = userstore.WithActor(ctx, userstore.Actor{Type: userstore.ActorService, ID: "signup"})

	if _, err := store.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "acme", Name: "Acme"}); err != nil {
		panic(err)
	}
	user, err := store.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Ann", Email: "Ann@Example.com"})
	if err != nil {
		panic(err)
	}
	fmt.Println(user.Email, user.Status, user.Version)

	// Emails are unique per tenant after case folding; errors name the rule, never the value.
	_, err = store.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Imposter", Email: "ann@example.COM"})
	var dup *userstore.DuplicateError
	fmt.Println(errors.As(err, &dup), dup.Kind)

	found, err := store.GetUserByEmail(ctx, "ANN@example.com")
	if err != nil {
		panic(err)
	}
	fmt.Println(found.ID == user.ID)

	// Every committed change is in the audit trail and the outbox.
	audit, err := store.ListAuditRecords(ctx, &userstore.ListAuditParams{})
	if err != nil {
		panic(err)
	}
	for _, r := range audit.Items {
		fmt.Println(r.Sequence, r.Action, r.Actor.ID)
	}
	outbox, err := store.ReadOutbox(ctx, &userstore.ReadOutboxParams{})
	if err != nil {
		panic(err)
	}
	for _, e := range outbox.Items {
		fmt.Println(e.Type)
	}
	// Output:
	// Ann@Example.com active 1
	// true email
	// true
	// 1 tenant.created signup
	// 2 user.created signup
	// userstore.tenant.created.v1
	// userstore.user.created.v1
}
