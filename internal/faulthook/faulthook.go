// Package faulthook is the seam between a Locker peer and the fault
// injection of package lockeractor/lockertest: the peer consults an
// Injector for every message it sends and receives, when a test
// installed one, and pays one nil check otherwise.
package faulthook

import "time"

// Injector decides the fate of a peer's messages. Peers call it
// concurrently, each from its own actor: every method must be safe for
// concurrent use and must not block.
type Injector interface {
	// Route decides a message from from to to: dropped, or sent once or
	// twice (dup), each after its delay (0: at once).
	Route(from, to string) (drop bool, delays [2]time.Duration, dup bool)
	// BlockedInbound reports whether a partition drops a message from
	// from arriving at to.
	BlockedInbound(from, to string) bool
	// Paused reports whether the peer at addr is paused: it holds every
	// message until it is resumed.
	Paused(addr string) bool
	// Stashed counts one message a paused peer held.
	Stashed()
	// OnResume registers wake, called when addr is resumed, and returns
	// its deregistration.
	OnResume(addr string, wake func()) (cancel func())
}

// WithInjector returns a lockeractor.Option (as any: this package cannot
// name lockeractor's types) that makes the peer consult inj. Package
// lockeractor sets it when it is initialised; only lockertest calls it.
var WithInjector func(inj Injector) any
