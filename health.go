package userstore

// Check is the result of one readiness check.
type Check struct {
	// Name identifies the check ("connectivity", "schema_version", "rls", …).
	Name string
	// OK is false when the check failed.
	OK bool
	// Warning marks a failed check that does not make the store unready (e.g. a held horizon).
	Warning bool
	// Reason says why the check failed, for operators; empty when OK.
	Reason string
}

// Readiness is the result of Ready: ready only when every non-warning check passed.
type Readiness struct {
	Ready  bool
	Checks []Check
}

// SchemaVersion reports the database schema against the code.
type SchemaVersion struct {
	// Current is the latest applied migration version in the database (0: none).
	Current int64
	// Expected is the latest migration version compiled into this code.
	Expected int64
	// Pending lists versions compiled in but not applied, in order.
	Pending []int64
}
