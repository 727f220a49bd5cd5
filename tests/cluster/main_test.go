// Package cluster_test runs Locker in cluster mode on real protoactor
// clusters: several members in one process with protoactor's in-memory
// provider, members with the automanaged provider on loopback, and
// members with the etcd provider against a real etcd server started by
// the test (skipped only when no etcd binary is installed).
//
// Every test here starts several protoactor remotes in one process and
// so skips itself under -race (protoactor-go's own races; see
// testcluster.SkipUnderRace).
package cluster_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if goroutines of ours outlive the tests.
// The ignored ones are protoactor's and gRPC's, left by a member's
// shutdown (see lockeractor.LeaveCluster and the README's defects table);
// none of them belongs to Locker.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// remote.Shutdown(false) does not stop the endpoint writers: a
		// writer to a stopped member retries 5 times, 2 s apart, then ends.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/remote.(*endpointWriter).initialize"),
		// ...and the gRPC client connections of those writers reconnect
		// in the background until the writer gives up.
		goleak.IgnoreTopFunction("google.golang.org/grpc.(*addrConn).resetTransport"),
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		// protoactor's log throttles start a goroutine that sleeps out the
		// throttle period (seconds to a minute) and ends; nothing stops it.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.(*Gossiper).StartGossiping.NewThrottle.func3.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.NewGossipActor.NewThrottleWithLogger.func2.1"),
		// The in-memory test provider's TTL loop ranges over a ticker's
		// channel; Shutdown stops the ticker, which never closes it.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster/clusterproviders/test.(*Provider).startTtlReport.func1"),
		// The etcd provider never closes its etcd client, so the client's
		// lease keep-alive (and the provider's loop reading it) outlive
		// Shutdown; cancelling the client's context does not reach them.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd.(*Provider).keepAliveForever"),
		// When the keep-alive fails (the test's etcd server is gone), the
		// provider's retry loop sleeps its retry interval (1 s) before it
		// sees the shutdown and ends.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd.(*Provider).startKeepAlive.func1"),
		goleak.IgnoreTopFunction("go.etcd.io/etcd/client/v3.(*lessor).deadlineLoop"),
		goleak.IgnoreAnyFunction("go.etcd.io/etcd/client/v3.(*lessor).recvKeepAliveLoop"),
	)
}
