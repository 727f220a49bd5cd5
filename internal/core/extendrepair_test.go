package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestLateExtendRepairAfterRelease: a repair needs no promise, so
// nothing orders it with the writes after it. A master that lacked the
// holder's lease (it missed an Extend, and its shorter copy ran out) is
// sent the repair of the holder's next Extend, delayed on its way past
// the holder's Release, whose own repair left a tombstone with the
// lease's token there. The late repair brought the released lease back
// on that master, for the Extend's hour, a little longer than the
// tombstones the others keep (the ghost lease on one master; found by
// review of the shadow change). A tombstone with the Extend's token (the
// Release of this very lease) now stops it.
//
// Masters n1 n2 n3 (W=2). c1 locks k for 5 s and extends it to an hour
// (n3's commit is lost); once n3's 5 s ran out, c1 extends again (the
// repair to n3 is held) and releases k (the repair reaches n3 first).
func TestLateExtendRepairAfterRelease(t *testing.T) {
	n := newNetwork(t, n1, n2, n3)
	n.configure(n1, []string{n1, n2, n3}, nil, 2)
	if o := n.do1(n1, lockOp("k", "v", 5*time.Second)); !o.OK {
		t.Fatalf("lock: %+v", o)
	}
	n.dropIf = func(p packet) bool { _, cm := p.msg.(*messages.Commit); return cm && p.to == n3 }
	if o := n.do1(n1, extendOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("extend: %+v", o)
	}
	n.dropIf = nil
	n.sleep(6 * time.Second) // n3's 5 s ran out
	n.logKey("k", n1, n2, n3)
	n.holdIf = func(p packet) bool { _, cm := p.msg.(*messages.Commit); return cm && p.to == n3 }
	if o := n.do1(n1, extendOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("extend 2: %+v", o)
	}
	n.holdIf = nil
	if o := n.do1(n1, releaseOp("k", "v")); !o.OK {
		t.Fatalf("release: %+v", o)
	}
	n.logKey("k", n1, n2, n3)
	n.unholdAll()
	n.run()
	n.logKey("k", n1, n2, n3)
	for _, a := range []string{n1, n2, n3} {
		if v, ok := n.read(a, "k"); ok {
			t.Errorf("%s holds k = %q after the holder's Release", a, v)
		}
	}
}

// TestExtendRepairOverAResidueTombstone is the other side of that rule:
// a tombstone with a larger token than the lease may be a failed
// write's residue (token order is not commit order: a coordinator's
// clock ahead), and must not keep the lease a quorum committed off the
// master that holds it. A first version of the rule refused every
// Extend repair below a tombstone's token, and a registry name stayed
// unresolved on a healed member (registry TestFaultRegistryNodeLoss).
//
// Masters n1 n2 n3 (W=2). c1 locks k for an hour through n2 (the commit
// to n1 is lost); n1 holds a tombstone of k with a larger token, as a
// Release residue from a coordinator whose clock runs ahead would leave.
// c1 extends k through n2: the repair to n1 lands.
func TestExtendRepairOverAResidueTombstone(t *testing.T) {
	n := newNetwork(t, n1, n2, n3)
	n.configure(n1, []string{n1, n2, n3}, nil, 2)
	n.dropIf = func(p packet) bool { _, cm := p.msg.(*messages.Commit); return cm && p.to == n1 }
	lock := n.do1(n2, lockOp("k", "v", time.Hour))
	n.dropIf = nil
	if !lock.OK {
		t.Fatalf("lock: %+v", lock)
	}
	c := n.core(n1)
	c.store.keepTombstone("k", lock.Token+1_000_000, c.now()+int64(time.Minute))
	if o := n.do1(n2, extendOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("extend: %+v", o)
	}
	n.run()
	n.logKey("k", n1, n2, n3)
	wantRead(t, n, n1, "k", "v", "the Extend's repair over the residue tombstone")
}
