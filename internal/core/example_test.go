package core

import (
	"fmt"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// Example drives two Cores by hand, as the shell's peer actor does: a
// call returns a RequestID at once, and after every input the owner
// takes the Core's output, sends its messages and hands on its answers.
func Example() {
	clock := &fakeClock{now: t0}
	addrs := []string{n1, n2}
	cores := map[string]*Core{}
	for i, addr := range addrs {
		cores[addr] = New(Config{
			Self: addr, W: 1, Clock: clock, Seed: uint64(i+1) << 32,
			RequestTimeout: time.Second, WriteLockTimeout: 2 * time.Second,
			ReplicationInterval: 100 * time.Millisecond, MaxMessageBytes: 64 << 10,
		})
	}
	// run takes every Core's output until no message is left in flight,
	// delivering the messages and printing the answers.
	run := func() {
		for more := true; more; {
			more = false
			for _, from := range addrs {
				out := cores[from].TakeOutput()
				for _, a := range out.Answers {
					switch a.Kind {
					case KindAdmin:
						applied := 0
						for _, r := range a.Admin {
							if r.Reason == messages.Reason_REASON_UNSPECIFIED {
								applied++
							}
						}
						fmt.Println(a.Kind, "request", a.ID, "applied on", applied, "of", len(a.Admin), "peers")
					case KindWrite:
						fmt.Println(a.Kind, "request", a.ID, "ok:", a.Outcomes[0].OK, "votes:", a.Outcomes[0].Votes)
					}
				}
				for _, env := range out.Messages {
					more = true
					cores[env.To].Step(from, env.Msg)
				}
			}
		}
	}

	cores[n1].SetNodes(addrs, addrs, nil) // both masters
	run()
	cores[n1].Submit([]Op{lockOp("job", "worker-1", time.Minute)})
	run()
	v, ok := cores[n2].Store().Read("job")
	fmt.Println("n2 holds job:", string(v), ok)
	// Output:
	// admin request 1 applied on 2 of 2 peers
	// write request 2 ok: true votes: 2
	// n2 holds job: worker-1 true
}
