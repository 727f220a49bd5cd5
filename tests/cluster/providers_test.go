package cluster_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/protoactor-locker/locker/internal/testcluster"
)

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestAutomanagedOnLoopback: three members with protoactor's automanaged
// provider (each serves its health on its own port, every member polls
// all of them) configure themselves, share a lock, and reconfigure when
// one leaves.
func TestAutomanagedOnLoopback(t *testing.T) {
	testcluster.SkipUnderRace(t)
	ports := []int{freePort(t), freePort(t), freePort(t)}
	var hosts []string
	for _, p := range ports {
		hosts = append(hosts, fmt.Sprintf("127.0.0.1:%d", p))
	}
	var ms []*member
	for i, p := range ports {
		ms = append(ms, startMember(t, string(rune('A'+i)), automanaged.NewWithConfig(200*time.Millisecond, p, hosts...)))
	}
	awaitConfig(t, ms, ms, nil)
	ctx := testCtx(t)
	_, err := ms[0].locker.Lock(ctx, "k", []byte("a"), time.Minute)
	require.NoError(t, err)
	v, err := ms[2].locker.WaitFor(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "a", string(v))

	awaitReady(t, ms) // every master caught up: the change after B leaves can complete
	ms[1].leave()
	awaitConfig(t, []*member{ms[0], ms[2]}, []*member{ms[0], ms[2]}, nil)
	requireStillHeld(t, ctx, ms[2].locker, "k", []byte("c")) // the lock taken before the change
}

// etcdBinary returns the etcd server binary, or "" when none is
// installed (.ci/run installs Debian's etcd-server).
func etcdBinary() string {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	return ""
}

// startEtcd runs a one-node etcd on 127.0.0.1 with a temporary data
// directory until t ends, and returns its client endpoint.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin := etcdBinary()
	if bin == "" {
		t.Skip("no etcd server binary (apt-get install etcd-server); .ci/run installs it")
	}
	client, peer := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--name", "locker-test", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "locker-test=http://"+peer, "--log-level", "error")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
	})
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: time.Second})
	require.NoError(t, err)
	defer cli.Close()
	testcluster.Eventually(t, 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := cli.Get(ctx, "/ready")
		return err == nil
	}, "etcd answers on %s (log: %s)", client, func() string { b, _ := os.ReadFile(logf.Name()); return strings.TrimSpace(string(b)) }())
	return client
}

// TestEtcdProvider: three members with protoactor's etcd provider
// against a real etcd server configure themselves, share a lock, and
// reconfigure when one leaves and when a new one joins.
func TestEtcdProvider(t *testing.T) {
	testcluster.SkipUnderRace(t)
	endpoint := startEtcd(t)
	base := fmt.Sprintf("/locker-test/%d", time.Now().UnixNano())
	newProvider := func() *etcd.Provider {
		// The provider never closes its etcd client; cancelling the
		// client's context when the test ends stops the client's own
		// loops (its gRPC connection stays, see TestMain).
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		p, err := etcd.NewWithConfig(base, clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Context: ctx})
		require.NoError(t, err)
		return p
	}
	var ms []*member
	for i := 0; i < 3; i++ {
		ms = append(ms, startMember(t, string(rune('A'+i)), newProvider()))
	}
	awaitConfig(t, ms, ms, nil)
	ctx := testCtx(t)
	_, err := ms[0].locker.Lock(ctx, "k", []byte("a"), time.Minute)
	require.NoError(t, err)
	v, err := ms[2].locker.WaitFor(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "a", string(v))

	awaitReady(t, ms) // every master caught up: the change after B leaves can complete
	ms[1].leave()
	awaitConfig(t, []*member{ms[0], ms[2]}, []*member{ms[0], ms[2]}, nil)

	d := startMember(t, "D", newProvider())
	awaitConfig(t, []*member{ms[0], ms[2], d}, []*member{ms[0], ms[2], d}, nil)
	requireStillHeld(t, ctx, d.locker, "k", []byte("d")) // the lock taken before the changes
}
