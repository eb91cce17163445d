package replay_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore/replay"
)

// FuzzParseEntity: an entity argument of the replay tool (TYPE:ID, profile:USER/CATALOG, tenant, roster)
// parses or is rejected with a *replay.ValidationError on "entity", whose text never repeats the id it
// was given (the messages hold no digit, so an id with a digit must not appear). A parsed entity belongs
// to the tenant, has a known type, and renders (String) to a form that parses back to it.
func FuzzParseEntity(f *testing.F) {
	tenant := uuid.MustParse("01970000-0000-7000-8000-000000000001")
	for _, s := range []string{
		"user:01970000-0000-7000-8000-000000000002", "membership:01970000-0000-7000-8000-000000000002",
		"profile:01970000-0000-7000-8000-000000000002/01970000-0000-7000-8000-000000000007",
		"profile:01970000-0000-7000-8000-000000000002", "profile:/", "tenant", "roster", "tenant:" + tenant.String(),
		"roster:01970000-0000-7000-8000-000000000009", "user:00000000-0000-0000-0000-000000000000", "user:", "user",
		"USER:01970000-0000-7000-8000-000000000002", "user:{01970000-0000-7000-8000-000000000002}",
		"user:urn:uuid:01970000-0000-7000-8000-000000000002", "teleporter:1", "", ":", "\xff:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := replay.ParseEntity(tenant, s)
		if err != nil {
			var ve *replay.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, replay.ErrValidation) || ve.Field != "entity" {
				t.Fatalf("a rejection must be a *replay.ValidationError on \"entity\", got %T: %v", err, err)
			}
			if _, id, ok := strings.Cut(s, ":"); ok && strings.ContainsAny(id, "0123456789") && strings.Contains(err.Error(), id) {
				t.Fatalf("the error repeats the input: %v", err)
			}
			return
		}
		if ref.TenantID != tenant || !slices.Contains(replay.EntityTypes, ref.Type) {
			t.Fatalf("ParseEntity(%q) = %+v", s, ref)
		}
		back, err := replay.ParseEntity(tenant, ref.String())
		if err != nil || back != ref {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, ref, ref.String(), back, err)
		}
	})
}
