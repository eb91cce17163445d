package faultsuite_test

import (
	"testing"

	"github.com/netkingdom/userstore/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
