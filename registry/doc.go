// Package registry is a cluster-wide actor name registry kept in a
// Locker's quorum lease store, as elixir_locker's Locker.Registry is
// for Erlang processes: a name is held by one PID across the cluster at
// a time, for a lease that the registering node renews, and disappears
// when that node stops renewing it (it crashed, or the actor stopped).
//
//	l, _ := lockeractor.Start(system)   // after remote.Start
//	r, err := registry.New(l)           // the system's extension: registry.Get(system)
//	err := r.Register(ctx, "billing", pid, 10*time.Second)
//	pid := r.WhereIs("billing")         // on any member; nil when unknown
//	err = r.Send("billing", msg)        // ErrNotRegistered when unknown
//	res, err := r.Request(ctx, "billing", msg)
//
// Most users spawn named actors with package server (or fsm), which
// registers the name before the actor runs and releases it when it stops.
//
// # Holding a name
//
// Register takes the name with a quorum write (Locker.Lock). The name is
// then tied to the PID's life: the Registry watches the actor and
// releases the name when it stops; if a renewal fails (no quorum before
// the lease ends, another value in the store), it stops the actor, which
// no longer owns its name, and publishes NameLost. A name taken by
// another PID fails with *AlreadyRegisteredError{Name, Holder}.
//
// # Renewals
//
// Each Registry renews the names it holds on its own goroutine, never
// behind a named actor's mailbox: when the first lease is due (its
// threshold before expiry), every lease due within Config.RenewWindow is
// extended by one Locker.Batch call, which sends one Prepare and one
// Commit per master for as many names as fit in a message.
//
// # Lookups
//
// WhereIs reads a cache of name → PID that the store's watch keeps in
// step with this node's store (writes add entries, releases and expiries
// drop them), so a lookup is a map read without decoding or allocation.
// Masters see a name as soon as it is committed, replicas after the next
// replication.
//
// # Events
//
// NameRegistered, NameReleased and NameExpired are published on the
// actor system's EventStream as this node's store sees them; NameLost on
// the node whose renewal failed.
//
// # Store layout
//
// A name is the key Config.KeyPrefix + name ("registry/billing"). Its
// value is the PID: the byte 0x01 (format version), the address, a zero
// byte, the id. Other programs may read it with Locker.DirtyRead.
package registry
