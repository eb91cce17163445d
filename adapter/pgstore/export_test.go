package pgstore

import "context"

// WithAfterAppend returns a copy of cfg (nil: the defaults) whose stores run fn after every Append of a
// unit of work, inside its transaction; an error from fn fails the mutation there, after its events
// and read rows were written and before its commit.
func WithAfterAppend(cfg *Config, fn func(ctx context.Context) error) *Config {
	out := Config{}
	if cfg != nil {
		out = *cfg
	}
	out.afterAppend = fn
	return &out
}
