package multiproc

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/protoactor-locker/locker/internal/nodeproc"
	"github.com/protoactor-locker/locker/internal/testcluster"
)

// TestMain runs the test binary as a node process when the harness
// started it so (nodeproc.EnvNode set), and as the tests otherwise. The
// parent runs no actor system; goleak still checks that the harness's
// own goroutines (stdout readers, waiters) end with their processes.
func TestMain(m *testing.M) {
	if os.Getenv(nodeproc.EnvNode) != "" {
		os.Exit(nodeproc.Main())
	}
	goleak.VerifyTestMain(m, testcluster.LeakOptions()...)
}
