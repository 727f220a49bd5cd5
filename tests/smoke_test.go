package tests

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/testcluster"
)

func TestSmoke(t *testing.T) {
	c := testcluster.New(t, 3)
	c.SetNodes(t, []int{0, 1, 2}, nil)
	ctx := context.Background()
	res, err := c.Peer(0).Lock(ctx, "k", []byte("v"), time.Second)
	require.NoError(t, err)
	t.Logf("%+v", res)
	v, err := c.Peer(1).DirtyRead("k")
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
	res, err = c.Peer(2).Release(ctx, "k", []byte("v"))
	require.NoError(t, err)
	t.Logf("%+v", res)
	_, err = c.Peer(1).Release(ctx, "k", []byte("v"))
	t.Logf("%v", err)
	require.Error(t, err)
}
