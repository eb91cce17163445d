package crashtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
)

// opKind is a mutation the writers run.
type opKind int

const (
	// opCreateUser creates a user (a new stream, an email claim).
	opCreateUser opKind = iota
	// opUpdateProfile renames a user (its stream; contention between writers).
	opUpdateProfile
	// opChangeEmail changes a user's email (a claim released and another taken).
	opChangeEmail
	// opOpenAccount opens an account for a user (a new stream, a login claim, a guard write of the
	// user's row).
	opOpenAccount
)

func (k opKind) String() string {
	return [...]string{"CreateUser", "UpdateUserProfile", "ChangeUserEmail", "OpenAccount"}[k]
}

// outcome classifies what one attempt of a mutation returned.
type outcome int

const (
	// outAck: the mutation returned its result: it must be durable.
	outAck outcome = iota
	// outUnknown: ErrCommitOutcomeUnknown — it may or may not have committed.
	outUnknown
	// outFailed: an error that promises nothing was committed (ErrUnavailable, ErrConflict after the
	// store's retries, a context error before COMMIT was sent).
	outFailed
	// outUnexpected: any other error; the ops are built so that none occurs.
	outUnexpected
)

func (o outcome) String() string {
	return [...]string{"ack", "unknown", "failed", "unexpected"}[o]
}

// classify maps a mutation's error to its outcome.
func classify(err error) outcome {
	switch {
	case err == nil:
		return outAck
	case errors.Is(err, userstore.ErrCommitOutcomeUnknown):
		return outUnknown
	case errors.Is(err, userstore.ErrUnavailable), errors.Is(err, userstore.ErrConflict),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return outFailed
	}
	return outUnexpected
}

// attempt is one call of a mutation.
type attempt struct {
	// RequestID is unique per attempt: the store records it in the events' metadata, so the events
	// tell which attempt committed them. It is not part of the idempotency request hash.
	RequestID string
	Outcome   outcome
	Err       string
	At        time.Duration
}

// result is what an acknowledged mutation returned: the entity (= stream) and its version.
type result struct {
	ID      uuid.UUID
	Version int64
	Text    string // the display name, email or login name the mutation set
}

// op is one logical mutation with its idempotency key; a writer retries it with the same key until it
// is acknowledged.
type op struct {
	Key    string // idempotency key, unique per op
	Writer int
	Kind   opKind
	Tenant uuid.UUID
	User   uuid.UUID // the user created or changed, or the account's user
	// Account is the new account's id (opOpenAccount).
	Account  uuid.UUID
	Text     string // display name, email or login name
	Attempts []attempt
	Acked    bool
	Result   result
}

// call runs one attempt of o on s.
func (o *op) call(ctx context.Context, s *pgstore.Store, requestID string) (result, error) {
	m := userstore.Mutation{
		TenantID:       o.Tenant,
		Actor:          userstore.Actor{Type: userstore.ActorService, ID: fmt.Sprintf("crashtest-writer-%d", o.Writer)},
		IdempotencyKey: o.Key,
		RequestID:      requestID,
	}
	user := func(u *userstore.User, err error, text string) (result, error) {
		if err != nil {
			return result{}, err
		}
		return result{ID: u.ID, Version: u.Version, Text: text}, nil
	}
	switch o.Kind {
	case opCreateUser:
		u, err := s.CreateUser(ctx, &userstore.CreateUserParams{Mutation: m, ID: o.User, DisplayName: "User " + o.Key, Email: o.Text})
		return user(u, err, o.Text)
	case opUpdateProfile:
		u, err := s.UpdateUserProfile(ctx, &userstore.UpdateUserProfileParams{Mutation: m, ID: o.User, DisplayName: o.Text})
		return user(u, err, o.Text)
	case opChangeEmail:
		u, err := s.ChangeUserEmail(ctx, &userstore.ChangeUserEmailParams{Mutation: m, ID: o.User, Email: o.Text})
		return user(u, err, o.Text)
	case opOpenAccount:
		a, err := s.OpenAccount(ctx, &userstore.OpenAccountParams{Mutation: m, ID: o.Account, UserID: o.User,
			LoginName: o.Text, Kind: userstore.AccountPassword, CredentialRef: "vault:crashtest"})
		if err != nil {
			return result{}, err
		}
		return result{ID: a.ID, Version: a.Version, Text: o.Text}, nil
	}
	return result{}, fmt.Errorf("crashtest: unknown op kind %d", o.Kind)
}

// userRegistry holds the acknowledged users of each tenant, for the writers to pick targets from.
type userRegistry struct {
	mu    sync.Mutex
	users map[uuid.UUID][]uuid.UUID
}

func (r *userRegistry) add(tenant, user uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users[tenant] = append(r.users[tenant], user)
}

func (r *userRegistry) pick(rng *rand.Rand, tenant uuid.UUID) (uuid.UUID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	us := r.users[tenant]
	if len(us) == 0 {
		return uuid.Nil, false
	}
	return us[rng.IntN(len(us))], true
}

// writer runs mutations through the store until it is told to stop, retrying each with its
// idempotency key until it is acknowledged, and logs every attempt.
type writer struct {
	id     int
	tenant uuid.UUID
	store  *pgstore.Store
	users  *userRegistry
	rng    *rand.Rand
	start  time.Time
	// recovered is when the cluster last came back from a fault (ns since start): a writer stops only
	// once it has had an acknowledgement after it, so every writer proves that its pool recovered.
	recovered *atomic.Int64

	ops     []*op
	lastAck time.Duration
}

// next draws the writer's next op.
func (w *writer) next() *op {
	o := &op{Key: fmt.Sprintf("w%d-op%d", w.id, len(w.ops)+1), Writer: w.id, Tenant: w.tenant}
	target, ok := w.users.pick(w.rng, w.tenant)
	p := w.rng.Float64()
	switch {
	case !ok || p < 0.3:
		o.Kind, o.User, o.Text = opCreateUser, userstore.NewID(), o.Key+"@example.com"
	case p < 0.6:
		o.Kind, o.User, o.Text = opUpdateProfile, target, "Name "+o.Key
	case p < 0.8:
		o.Kind, o.User, o.Text = opChangeEmail, target, "changed-"+o.Key+"@example.com"
	default:
		o.Kind, o.User, o.Account, o.Text = opOpenAccount, target, userstore.NewID(), "login-"+o.Key
	}
	return o
}

// run writes until stop is closed and the writer has been acknowledged since the last recovery, or
// until ctx ends. An op in progress when stop closes is still resolved.
func (w *writer) run(ctx context.Context, stop <-chan struct{}) {
	for ctx.Err() == nil {
		select {
		case <-stop:
			if w.lastAck > time.Duration(w.recovered.Load()) {
				return
			}
		default:
		}
		o := w.next()
		w.ops = append(w.ops, o)
		w.resolve(ctx, o)
	}
}

// resolve runs o until it is acknowledged, fails unexpectedly, or ctx ends.
func (w *writer) resolve(ctx context.Context, o *op) {
	backoff := 5 * time.Millisecond
	for n := 1; ctx.Err() == nil; n++ {
		requestID := fmt.Sprintf("%s-a%d", o.Key, n)
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		res, err := o.call(actx, w.store, requestID)
		cancel()
		a := attempt{RequestID: requestID, Outcome: classify(err), At: time.Since(w.start)}
		if err != nil {
			a.Err = err.Error()
		}
		o.Attempts = append(o.Attempts, a)
		switch a.Outcome {
		case outAck:
			o.Acked, o.Result = true, res
			w.lastAck = a.At
			if o.Kind == opCreateUser {
				w.users.add(o.Tenant, o.User)
			}
			return
		case outUnexpected:
			return
		}
		if ctx.Err() != nil {
			return
		}
		// The cluster is down or recovering, or the outcome is unknown: retry with the same key.
		_ = sleep(ctx, backoff/2+time.Duration(w.rng.Int64N(int64(backoff))))
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}
