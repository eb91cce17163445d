package projectorcmd

import (
	"slices"
	"strings"

	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/projections/outbox"
)

// projectionsFor returns the projections the program runs, in order, as o selects them. It is the one
// place that knows the program's projections and their settings: a new projection, or another outbox
// sink, is added here.
func projectionsFor(o *projectionOptions) ([]projections.Projection, error) {
	names := o.list()
	if len(names) == 0 {
		return nil, usagef("-projections must name at least one of %s", projectionsDefault)
	}
	var out []projections.Projection
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			return nil, usagef("-projections names %s twice", name)
		}
		switch name {
		case audit.Name:
			out = append(out, audit.New())
		case outbox.Name:
			relay, err := outbox.New(&outbox.Config{Topic: o.outboxTopic})
			if err != nil {
				return nil, usagef("-outbox-topic: %s", strings.TrimPrefix(err.Error(), projections.ErrValidation.Error()+": "))
			}
			out = append(out, relay)
		default:
			return nil, usagef("-projections: unknown projection %q (known: %s)", name, projectionsDefault)
		}
	}
	return out, nil
}
