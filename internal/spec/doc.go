// Package spec holds a Promela model of Locker's write protocol
// (locker.pml) and the tests that check it with the SPIN model checker.
//
// What the model is: one key, three masters with W = 2, two clients that
// each call Lock once. A Lock is the two-phase quorum write of
// internal/core (txn.go, core.go): Prepare to every master; a master
// promises (a write lock that expires) only if it holds no live write
// lock of another transaction and the key is absent; the client commits if
// W promised (token: the largest proposal, and above any refuser's token),
// aborts otherwise or when it times out; a master applies a Commit only
// over its own live promise (or acknowledges a repeat of a write it
// applied) and starts the lease from the Commit's receipt; the client
// holds from its W-th ok acknowledgement until its own lease, counted from
// its call, runs out. Time is an abstract global tick that advances at any
// point; leases (2 ticks) and write locks (1 tick) are counted down per
// tick, so the model needs no time horizon. Messages sit in one slot per
// (client, master, kind), are delivered in any order or never (loss), and
// a Promise may be lost after the master granted it.
//
// Checked by assertions (spin -a, pan compiled with -DSAFETY, exhaustive):
// at most one client holds the key at any instant (A1), and each holder's
// fencing token is larger than every earlier holder's (A2).
// TestSpinMutantFails checks that the checker finds violations in broken
// variants: W = 1 (-DMUTANT=1), and a client counting its lease from the
// commit acknowledgement instead of its call (-DMUTANT=3).
//
// What it does not prove: it is a bounded model (one key, 3 masters, 2
// clients, one Lock each, no Extend, Update or Release, no replicas,
// repair or replication); Promises and acks are not delayed (a promise is
// received at once or lost; an ack at once, which only starts a holding
// window earlier); clocks run at one rate (README: "clock rates being
// equal"); tokens come from a per-master counter, without the wall-clock
// part of the hybrid clock; masters never restart. The reconfiguration
// part (-DRECONFIG: epochs, joint configuration, lease copy before the
// old master steps down) is written but its state space is too large to
// check exhaustively within CI's bounds yet, so no test runs it; the
// mutants 2, 4 and 5 described in locker.pml are likewise not checked.
//
// Running it: CI installs spin and a C compiler (apt-get install spin gcc
// libc6-dev; spin also needs cpp, which gcc brings). Then
//
//	go test -run Spin -v ./internal/spec/
//
// or by hand:
//
//	spin -a locker.pml && cc -O2 -DSAFETY -DMEMLIM=1024 -o pan pan.c && ./pan -m100000
//	spin -DMUTANT=3 -a locker.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan && spin -t -p locker.pml
//
// The last command replays the counterexample trail that pan wrote.
package spec
