package nodeproc

import "github.com/protoactor-locker/locker/messages"

// Environment variables a node process reads.
const (
	// EnvNode, when set (to anything), makes a test binary whose TestMain
	// calls Main run as a node process instead of its tests.
	EnvNode = "LOCKER_NODE"
	// EnvPort is the port the node's remote listens on (0: any free
	// port; the ready line tells which).
	EnvPort = "LOCKER_NODE_PORT"
	// EnvName names the node in its error messages.
	EnvName = "LOCKER_NODE_NAME"
	// EnvClockAhead, when set, is a duration (time.ParseDuration) the
	// node's Locker clock runs ahead of the system clock
	// (testcluster.AheadClock): its fencing tokens are the larger ones.
	EnvClockAhead = "LOCKER_NODE_CLOCK_AHEAD"
)

// Ops of Command.
const (
	OpConnect     = "connect"     // Touch every peer in Addrs once (opens the endpoints)
	OpSetNodes    = "setnodes"    // SetNodes(Addrs, Masters, Replicas) then SetW(Addrs, W)
	OpReconfigure = "reconfigure" // Reconfigure(Masters, Replicas)
	OpConfig      = "config"      // reply with the node's Configuration
	OpLoad        = "load"        // start Load's clients; the reply comes at once
	OpStopLoad    = "stopload"    // stop the clients and reply when every one has returned
	OpWrite       = "write"       // one recorded write (Write)
	OpBatch       = "batch"       // one recorded Batch (Batch)
	OpWaitFor     = "waitfor"     // WaitFor(Key) within TimeoutMs
	OpRead        = "read"        // DirtyRead(Key)
	OpProbe       = "probe"       // Lock and Release a fresh key; reply with the Lock's votes
	OpSummary     = "summary"     // reply with the Locker's Summary
	OpSpawn       = "spawn"       // spawn a named Actor ("server" or "fsm") as Key with a lease of LeaseMs (registry, server, fsm)
	OpWhereIs     = "whereis"     // reply with the PID the node's Registry resolves Key to (PID, "" for none)
)

// Command is one line the parent writes to a node's stdin.
type Command struct {
	ID        int      `json:"id"`
	Op        string   `json:"op"`
	Addrs     []string `json:"addrs,omitempty"`
	Masters   []string `json:"masters,omitempty"`
	Replicas  []string `json:"replicas,omitempty"`
	W         int      `json:"w,omitempty"`
	Key       string   `json:"key,omitempty"`
	TimeoutMs int64    `json:"timeoutMs,omitempty"`
	Load      *Load    `json:"load,omitempty"`
	Write     *Write   `json:"write,omitempty"`
	Batch     []Write  `json:"batch,omitempty"`
	// OpSpawn: "server" (server.Spawn) or "fsm" (fsm.Spawn), and its lease.
	Actor   string `json:"actor,omitempty"`
	LeaseMs int64  `json:"leaseMs,omitempty"`
}

// Load is what the clients of OpLoad do: Clients goroutines, client ids
// ClientBase, ClientBase+1, ..., each running lock cycles (Lock, maybe
// Update, maybe ExtendLease, Release) on a key drawn from Hot (checked:
// leases of HotLeaseMs, longer than the run) or Short (unchecked: leases
// of ShortLeaseMs, sometimes left to expire). With MixedLeaseMs set, one
// Lock of a Short key in three asks for MixedLeaseMs instead: long leases
// beside the short ones, released, never left to expire. Every write is
// recorded.
type Load struct {
	Clients      int      `json:"clients"`
	ClientBase   int      `json:"clientBase"`
	Seed         uint64   `json:"seed"`
	Hot          []string `json:"hot"`
	Short        []string `json:"short"`
	HotLeaseMs   int64    `json:"hotLeaseMs"`
	ShortLeaseMs int64    `json:"shortLeaseMs"`
	MixedLeaseMs int64    `json:"mixedLeaseMs,omitempty"`
}

// Write is one write a node performs and records.
type Write struct {
	Client   int                `json:"client"`
	Checked  bool               `json:"checked"`
	Kind     messages.WriteKind `json:"kind"`
	Key      string             `json:"key"`
	Value    string             `json:"value"`
	NewValue string             `json:"newValue,omitempty"`
	LeaseMs  int64              `json:"leaseMs,omitempty"`
}

// Kinds of Event.
const (
	EvReady  = "ready" // the node runs; Addr is its address
	EvReply  = "reply" // the answer to Command ID
	EvInvoke = "inv"   // a write is invoked (written before the call)
	EvReturn = "ret"   // a write answered (written after the call)
	EvLog    = "log"   // a note for the test log
	// EvOwned: the node's Registry holds Name for PID with Token until
	// Deadline (machine-wide monotonic nanoseconds); sent when a name is
	// spawned here and at each renewal seen.
	EvOwned = "owned"
	// EvLost: the node's Registry no longer holds Name for PID (lost,
	// or its actor stopped); T is when the node saw it.
	EvLost = "lost"
)

// Event is one line a node writes to its stdout.
type Event struct {
	Ev string `json:"ev"`
	// EvReady
	Addr string `json:"addr,omitempty"`
	// EvReply
	ID  int    `json:"id,omitempty"`
	Err string `json:"err,omitempty"`
	// OpConfig
	Epoch    uint64   `json:"epoch,omitempty"`
	Masters  []string `json:"masters,omitempty"`
	Replicas []string `json:"replicas,omitempty"`
	W        int      `json:"w,omitempty"`
	// OpWrite, OpProbe (Votes, Token); OpWaitFor, OpRead (Value)
	Outcome string         `json:"outcome,omitempty"`
	Votes   int            `json:"votes,omitempty"`
	Token   uint64         `json:"token,omitempty"`
	Value   string         `json:"value,omitempty"`
	Results []BatchOutcome `json:"results,omitempty"`
	// OpSummary
	Leases  int `json:"leases,omitempty"`
	Waiters int `json:"waiters,omitempty"`
	// EvInvoke, EvReturn: Seq pairs them within one process; T is the
	// machine-wide monotonic clock (CLOCK_MONOTONIC) in nanoseconds,
	// comparable across the processes of one machine. EvInvoke carries
	// Write, EvReturn Outcome and Token.
	Seq   int64  `json:"seq,omitempty"`
	T     int64  `json:"t,omitempty"`
	Write *Write `json:"write,omitempty"`
	// EvLog
	Msg string `json:"msg,omitempty"`
	// EvOwned, EvLost; OpSpawn and OpWhereIs reply with PID (and OpSpawn
	// with Token).
	Name     string `json:"name,omitempty"`
	PID      string `json:"pid,omitempty"`
	Deadline int64  `json:"deadline,omitempty"`
}

// BatchOutcome is the answer to one write of an OpBatch.
type BatchOutcome struct {
	Outcome string `json:"outcome"`
	Token   uint64 `json:"token,omitempty"`
	Err     string `json:"err,omitempty"`
}
