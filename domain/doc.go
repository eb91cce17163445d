// Package domain is the functional core of the store: the aggregates, their commands and events, and
// the pure rules every adapter shares. It does no I/O and reads no clock and no randomness: times and
// ids come in with the commands.
//
// # Aggregates
//
// One aggregate is one event stream (StreamType, StreamRef): tenant, user, account, identity,
// application, binding, catalog, profile (one per user and catalog, id ProfileStreamID) and roster (one
// per tenant, id RosterStreamID: the memberships, which hold the last-owner invariant so that
// optimistic concurrency on one stream serializes concurrent demotions). Each aggregate has a state type
// (TenantState, UserState, …) with
//
//   - Decide(command) ([]Event, error): the business rules. A command carries normalized input and the
//     facts it needs from other aggregates (Bind carries the user's and the application's status,
//     SetProfileValues the catalog's attributes). An update to the current value decides no event; a
//     status transition the state does not allow is a *userstore.PreconditionError with
//     ReasonInvalidState.
//   - Evolve(event) state: the pure fold; it never modifies maps or slices of the state it was given.
//   - View(): the entity the store returns and keeps as its read model.
//
// Fold and NewState fold a stream of any type.
//
// # Events
//
// Events are plain structs named "<aggregate>.<change>" ("user.created", "roster.member_added"). The
// Registry encodes them as (type, schema version, JSON payload) and decodes stored ones, upcasting older
// payload versions; unknown types and versions are errors, never panics.
//
// # Normalization
//
// One Normalize… or Validate… function per kind of input returns the normalized value or a
// *userstore.ValidationError naming the field, never echoing the value. They are pure, total and never
// panic (they are fuzz targets). Every string must be valid UTF-8 without NUL bytes; lengths in
// characters count code points after normalization (trim, Unicode NFC).
//
// Case-insensitive uniqueness keys (EmailKey, LoginKey, CatalogNameKey) are the full Unicode case fold
// (golang.org/x/text/cases.Fold) of the normalized value, in NFC: "STRASSE@x.de", "Straße@x.de" and
// "strasse@X.DE" share the key "strasse@x.de" (ß folds to "ss"), and the Kelvin sign folds to "k".
// Folding is locale-independent. The store keeps and returns the normalized value as given; only the
// key is folded. Issuers, subjects and client keys are compared exactly.
//
// # Shared rules
//
//   - Claims: the uniqueness claims an event takes and releases.
//   - Audit, ChainAudit, AuditHash, AuditCanonical, VerifyAuditChain: the audit record of an event and
//     its hash chain.
//   - Outbox: the public, PII-minimized integration event of an event.
//
// The engine (internal/engine) orchestrates commands over a storage port; the projector and the replay
// tool reuse Fold, Audit and Outbox on the log.
package domain
