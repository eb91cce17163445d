package crashtest

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Environment variables of the harness.
const (
	// envLong selects the long configuration (make test-faults): more rounds, writers and faults.
	envLong = "USERSTORE_FAULTS_LONG"
	// envSeed fixes the seed of the random choices (fault moments, victims, operations).
	envSeed = "USERSTORE_FAULTS_SEED"
	// envArtifacts is the directory failing histories are saved to.
	envArtifacts = "USERSTORE_FAULTS_ARTIFACTS"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// long reports whether the long configuration was asked for.
func long() bool {
	v, _ := strconv.ParseBool(os.Getenv(envLong))
	return v
}

// durabilitySize is the size of one crash-durability run.
type durabilitySize struct {
	Rounds  int // runs per variant, each on a fresh database
	Writers int // concurrent writers
	Tenants int // tenants the writers share (writer i works in tenant i mod Tenants)
	Faults  int // faults per run
	// Gap bounds the random time between two faults (and before the first); Tail is how long the
	// writers go on after the last fault.
	GapMin, GapMax, Tail time.Duration
	// Resubmit caps the acknowledged operations resubmitted with their idempotency keys at the end
	// (0: all).
	Resubmit int
}

func durabilityConfig() durabilitySize {
	if long() {
		return durabilitySize{Rounds: 3, Writers: 16, Tenants: 4, Faults: 5,
			GapMin: 300 * time.Millisecond, GapMax: 2 * time.Second, Tail: 2 * time.Second}
	}
	return durabilitySize{Rounds: 1, Writers: 4, Tenants: 2, Faults: 2,
		GapMin: 200 * time.Millisecond, GapMax: 600 * time.Millisecond, Tail: 400 * time.Millisecond, Resubmit: 60}
}

// linearizabilitySize is the size of one linearizability run.
type linearizabilitySize struct {
	Rounds  int
	Clients int
	Streams int
	Faults  int
	GapMin  time.Duration
	GapMax  time.Duration
	Tail    time.Duration
}

func linearizabilityConfig() linearizabilitySize {
	if long() {
		return linearizabilitySize{Rounds: 3, Clients: 10, Streams: 4, Faults: 6,
			GapMin: 200 * time.Millisecond, GapMax: time.Second, Tail: time.Second}
	}
	return linearizabilitySize{Rounds: 1, Clients: 5, Streams: 3, Faults: 2,
		GapMin: 200 * time.Millisecond, GapMax: 500 * time.Millisecond, Tail: 300 * time.Millisecond}
}

// seed returns the seed of a test's random choices ($USERSTORE_FAULTS_SEED, or a new one) and logs
// it, so that a failing run's choices can be repeated (its timing cannot).
func seed(t *testing.T) uint64 {
	t.Helper()
	s := rand.Uint64()
	if v := os.Getenv(envSeed); v != "" {
		var err error
		if s, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("crashtest: %s must be an unsigned integer, got %q", envSeed, v)
		}
	}
	t.Logf("crashtest: seed %d (repeat the choices with %s=%d)", s, envSeed, s)
	return s
}

// newRand returns a generator for one goroutine, derived from the test's seed and a stream number.
func newRand(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }
