// Package fsm runs state machines as protoactor actors, in the spirit of
// Erlang's gen_statem, that can hold a cluster-wide name like package
// server's actors (elixir_locker's Locker.Fsm).
//
// A Machine names its states; each StateSpec has an enter action, a
// handler that returns the next state, and an optional state timeout.
// Messages a state leaves Unhandled go to the machine's AnyState
// handler, the place for requests answered in every state:
//
//	light := func() *fsm.Machine {
//		return &fsm.Machine{
//			Initial: "red",
//			States: map[fsm.State]fsm.StateSpec{
//				"red":    {Timeout: 30 * time.Second, TimeoutTo: "green"},
//				"green":  {Timeout: 25 * time.Second, TimeoutTo: "yellow"},
//				"yellow": {Timeout: 5 * time.Second, TimeoutTo: "red"},
//			},
//			AnyState: func(c *fsm.Context, msg any) fsm.State {
//				if _, ok := msg.(WhatColour); ok {
//					c.Respond(c.State())
//					return fsm.Keep
//				}
//				return fsm.Unhandled
//			},
//		}
//	}
//	pid, err := fsm.Spawn(system.Root, "crossing-7", light) // registered cluster-wide
//	pid := system.Root.Spawn(fsm.Props(light))              // or without a name
//
// A Producer makes one Machine per actor incarnation: after a panic the
// supervisor restarts the machine in its initial state, under the same
// PID and name. fsm.StateOf reports the current state, for tests.
package fsm
