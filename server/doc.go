// Package server spawns protoactor actors that hold a cluster-wide name,
// as elixir_locker's Locker.Server does for GenServers: the name is
// registered with a quorum of the Locker's masters before the actor
// runs, renewed in the background for as long as it runs (on the
// Registry's own goroutine, never queued behind the actor's messages),
// and released when it stops.
//
// Any actor can be a server; nothing in its Receive changes:
//
//	l, _ := lockeractor.Start(system)       // after remote.Start
//	_, err = registry.New(l)                // once per actor system
//	pid, err := server.Spawn(system.Root, "billing", props,
//		server.WithLeaseLength(10*time.Second))
//	var taken *registry.AlreadyRegisteredError
//	if errors.As(err, &taken) {
//		// taken.Holder runs somewhere in the cluster
//	}
//	// from any member:
//	registry.Get(system).Send("billing", msg)
//
// Spawning from system.Root is Locker.Server's start; spawning from an
// actor's context makes the server that actor's child, linked to it, as
// start_link. An actor without a name is spawned the usual protoactor
// way (parent.Spawn(props)).
package server
