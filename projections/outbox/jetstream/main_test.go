package jetstream_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/netkingdom/userstore/internal/pgtest"
)

// natsURLEnv locates the local NATS server of scripts/pg.sh.
const natsURLEnv = "USERSTORE_NATS_URL"

// natsHint tells how to provide NATS when the environment does not locate it.
const natsHint = `start the local services and export their URLs first:

	scripts/pg.sh up && eval "$(scripts/pg.sh env)"

(make test does both; scripts/pg.sh up installs Debian's nats-server when it is missing.)`

func TestMain(m *testing.M) {
	if os.Getenv(natsURLEnv) == "" {
		fmt.Fprintf(os.Stderr, "jetstream: these tests need NATS with JetStream, and %s is unset: %s\n", natsURLEnv, natsHint)
		os.Exit(2)
	}
	pgtest.Main(m)
}
