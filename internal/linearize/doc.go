// Package linearize records histories of Locker writes and checks them
// for linearizability with porcupine against a sequential model of the
// store, per key: Lock succeeds only on a free key; Update, ExtendLease
// and Release only with the key's current value; Lock and Update return
// a fencing token larger than every earlier one, ExtendLease and Release
// the holder's.
//
// The deterministic simulation (internal/sim), the soak and fault tests
// over real protoactor remote (tests/) and the multi-process tests all
// record into a History and check it with Check.
//
// A write whose outcome is unknown (it failed after commits went out, or
// its caller gave up) keeps an open-ended return time, as porcupine
// intends: it may take effect at any point after its invocation, or
// never. Such writes are never dropped from the history.
//
// The model has no time: leases do not expire within a checked history,
// so the keys whose histories are checked must be written with leases
// longer than the run (Checked marks them); other keys are recorded for
// counting only.
//
// Usage:
//
//	h := &linearize.History{}
//	start := time.Now()
//	op := h.Invoke(client, true, key, messages.WriteKind_WRITE_KIND_LOCK, "me", "", 60000, linearize.Since(start))
//	res, err := l.Lock(ctx, key, []byte("me"), time.Minute)
//	h.Finish(op, linearize.OutcomeOf(err), res.Token, linearize.Since(start))
//	...
//	r := linearize.Check(h.Operations(), 10*time.Second)
//	for _, v := range r.Violations {
//		t.Error(v)
//	}
package linearize
