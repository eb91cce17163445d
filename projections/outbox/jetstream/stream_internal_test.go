package jetstream

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSubjectMatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		filter, subject string
		want            bool
	}{
		{"userstore.events", "userstore.events", true},
		{"userstore.*", "userstore.events", true},
		{"userstore.>", "userstore.events", true},
		{"userstore.>", "userstore.events.x", true},
		{">", "userstore.events", true},
		{"*.events", "userstore.events", true},
		{"userstore.>", "userstore", false},
		{"userstore.*", "userstore.events.x", false},
		{"userstore.events", "userstore.events.x", false},
		{"userstore.events.x", "userstore.events", false},
		{"other.events", "userstore.events", false},
		{"userstore.ev*", "userstore.events", false},
	} {
		require.Equal(t, tc.want, subjectMatches(tc.filter, tc.subject), "%s ~ %s", tc.filter, tc.subject)
	}
}
