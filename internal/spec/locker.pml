/*
 * locker.pml: a Promela model of Locker's write protocol, checked with spin.
 * See doc.go for what it models, what it abstracts away, and how to run it.
 *
 * One key. Clients Lock it with a two-phase quorum write (Prepare/Promise,
 * Commit/Abort, Committed acks) against the masters, W = 2 of 3. Leases
 * and write locks count down on an abstract global tick that can come
 * between any two steps (no time horizon needed). Prepare and Commit sit
 * in one-place slots per (client, master); a slot may be delivered at any
 * time (so messages reorder) or never (loss).
 *
 * Two models, both checked in CI (spec_test.go):
 *
 * default: 3 masters, two clients that each call Lock once from the start.
 *
 * -DRECONFIG: a change of masters while a lease is held. Nodes 0..2 are the
 *   masters of epoch 0 (W = 2) and node 3 a new node. The run starts with
 *   client 0 already holding the key: its Lock (token 1) committed on
 *   nodes 0 and 1, with LEASE ticks left at the client and at both masters
 *   (node 2 never saw token 1). A coordinator replaces node 0, a holder of
 *   the lease, by node 3:
 *     epoch 1, joint: masters M' = {1,2,3}, W = 2, and old masters
 *       {0,1,2}, OldW = 2 (a write needs both quorums);
 *     sync: once W old masters moved to epoch 1, each node of M' copies
 *       the lease from OldW old masters (itself included) that are at
 *       epoch >= 1, merged as onReplicate does, until W nodes of M' have;
 *     epoch 2: masters M', W = 2.
 *   Each move is committed by the coordinator, then adopted by each node
 *   at any later time, or never, or (epoch 0 to 2) skipping epoch 1.
 *   Client 1 calls Lock once, while the lease lives somewhere, under any
 *   epoch committed by then (a client that has not learnt the newest one
 *   uses an older one). Client 0 does not Lock again.
 *
 * Checked (assertions; run with -DSAFETY):
 *   A1  at most one client believes it holds the key at any instant: a
 *       client holds from its W-th commit ack until its own lease deadline,
 *       counted from its invoke (before Prepare);
 *   A2  each new holder's fencing token is strictly greater than every
 *       earlier holder's.
 *
 * Mutants, -DMUTANT=n; each makes spin find an assertion violation (CI):
 *   1  W = 1 (quorums need not intersect)
 *   2  masters promise regardless of an existing write lock, and apply a
 *      commit without checking that the promise is still theirs
 *   3  the client counts its lease from the commit ack instead of from its
 *      invoke (its deadline may pass a master's)
 *   4  (RECONFIG) the sync copies nothing: new masters start empty
 *   6  (RECONFIG) no joint configuration: the coordinator moves straight to
 *      the new masters (epoch 2) and syncs after that
 */

#ifndef LEASE
#define LEASE 2       /* lease length, ticks */
#endif
#ifndef WLT
#define WLT 1         /* write-lock (promise) timeout, ticks */
#endif
#ifndef MUTANT
#define MUTANT 0
#endif

#define CLIENTS 2
#if MUTANT == 1
#define W 1
#else
#define W 2
#endif
#define OLDW 2

#ifdef RECONFIG
#define NN 4
#else
#define NN 3
#endif

/* client phases */
#define IDLE   0
#define PREP   1
#define COMMIT 2
#define HOLD   3

#define IX(c,n) ((c)*NN+(n))
#define CN (CLIENTS*NN)

/* ---- masters ---- */
byte val[NN];     /* 0: key absent; c+1: leased to client c */
byte tok[NN];     /* the entry's fencing token */
byte mrem[NN];    /* ticks left of the lease here: LEASE from receipt of Commit */
byte wlc[NN];     /* write lock: 0 none, else client+1 */
byte wlt[NN];     /* write lock: txn */
byte wrem[NN];    /* write lock: ticks left */
byte hlc[NN];     /* largest token proposed or seen */

/* ---- clients ---- */
byte ph[CLIENTS];
byte tx[CLIENTS];    /* current txn (Lock call number) */
byte tep[CLIENTS];   /* epoch of the current txn */
byte crem[CLIENTS];  /* ticks left of the client's lease: LEASE from its invoke */
byte acc[CLIENTS];   /* token being assembled from answers */
byte ctok[CLIENTS];  /* token committed */
byte yA[CLIENTS]; byte nA[CLIENTS]; byte yB[CLIENTS]; byte nB[CLIENTS]; /* promise counts */
byte kA[CLIENTS]; byte fA[CLIENTS]; byte kB[CLIENTS]; byte fB[CLIENTS]; /* commit-ack counts */
byte ans[CN];        /* 0 no answer, 1 granted, 2 refused (per client, master) */
byte got[CN];        /* commit ack: 0 none, 1 counted */

/* ---- messages: one slot per (client, master, kind); txn 0 = empty ---- */
byte pT[CN]; byte pE[CN];                         /* Prepare: txn, epoch */
byte qT[CN]; bool qG[CN]; byte qV[CN];            /* Promise: txn, granted, proposal or entry token */
byte cT[CN]; bool cA[CN]; byte cK[CN]; byte cE[CN]; /* Commit: txn, abort, token, epoch */
byte aT[CN]; bool aO[CN];                         /* Committed: txn, ok */

/* ---- monitors ---- */
byte lastTok;        /* token of the latest holder */

#ifdef RECONFIG
byte ep[NN];         /* configuration epoch */
byte since[NN];      /* mastersSince: epoch from which the current masters hold */
byte copied[NN];     /* sync at node n: bit s set when s's lease was copied */
byte rs;             /* coordinator: 0 old, 1 first move committed, 2 final move committed */
byte cfgEp;          /* newest epoch committed */
byte wf;             /* wall-clock floor: every token of a lease that expired somewhere */
#if MUTANT == 6
#define JEP 2        /* no joint configuration: the first move goes to epoch 2 */
#else
#define JEP 1
#endif
/* configurations by epoch: group A = Masters (W), group B = OldMasters (OLDW) */
#define INA(e,n)   (((e) == 0) -> ((n) < 3) : ((n) != 0))
#define INB(e,n)   (((e) == 1) && ((n) < 3))
#define VOTER(e,n) (INA(e,n) || INB(e,n))
#define EPOCH(n)   ep[n]
#define SIZEB(e)   (((e) == 1) -> 3 : 0)
#else
#define INA(e,n)   true
#define INB(e,n)   false
#define VOTER(e,n) true
#define EPOCH(n)   0
#define SIZEB(e)   0
#endif
#define SIZEA(e) 3

byte i, j, k, m;     /* scratch, reset after use */

inline observe(n, t) {
	if
	:: t > hlc[n] -> hlc[n] = t
	:: else -> skip
	fi
}

inline dropLock(n) {
	wlc[n] = 0; wlt[n] = 0; wrem[n] = 0
}

/* the client is done with its txn: forget its counts */
inline endTxn(c) {
	yA[c] = 0; nA[c] = 0; yB[c] = 0; nB[c] = 0;
	kA[c] = 0; fA[c] = 0; kB[c] = 0; fB[c] = 0;
	acc[c] = 0; ctok[c] = 0; tep[c] = 0;
	if :: ph[c] != HOLD -> crem[c] = 0 :: else -> skip fi;
	for (i : 0 .. NN-1) { ans[IX(c,i)] = 0; got[IX(c,i)] = 0 }
	i = 0
}

/* W of the masters (and OLDW of the old masters in a joint epoch) */
#define REACHED(e,ya,yb)  ((ya) >= W && (SIZEB(e) == 0 || (yb) >= OLDW))
#define IMPOSSIBLE(e,na,nb) ((na) > SIZEA(e) - W || (SIZEB(e) > 0 && (nb) > SIZEB(e) - OLDW))

/* ---- client: Lock ---- */
inline invoke(c, e) {
	tx[c]++;
	ph[c] = PREP;
	tep[c] = e;                    /* the epoch the client knows */
#if MUTANT == 3
	crem[c] = 0;
#else
	crem[c] = LEASE;               /* the client counts from its call */
#endif
	for (i : 0 .. NN-1) {
		if
		:: VOTER(tep[c], i) -> pT[IX(c,i)] = tx[c]; pE[IX(c,i)] = tep[c]
		:: else -> skip
		fi
	}
	i = 0
}

inline sendCommit(c, n) {
	cT[IX(c,n)] = tx[c]; cA[IX(c,n)] = false; cK[IX(c,n)] = ctok[c]; cE[IX(c,n)] = tep[c]
}

inline abort(c) {
	for (i : 0 .. NN-1) {
		if
		:: ans[IX(c,i)] == 1 ->
			cT[IX(c,i)] = tx[c]; cA[IX(c,i)] = true; cK[IX(c,i)] = 0; cE[IX(c,i)] = tep[c]
		:: else -> skip
		fi
	}
	i = 0;
	ph[c] = IDLE;
	endTxn(c)
}

inline decide(c) {
	if
	:: REACHED(tep[c], yA[c], yB[c]) ->
		ph[c] = COMMIT;
		ctok[c] = acc[c];
		for (i : 0 .. NN-1) {
			if
			:: ans[IX(c,i)] == 1 -> sendCommit(c, i)
			:: else -> skip
			fi
		}
		i = 0
	:: IMPOSSIBLE(tep[c], nA[c], nB[c]) -> abort(c)
	:: else -> skip
	fi
}

/* the W-th commit ack: the client holds the key until crem runs out */
inline holds(c) {
#if MUTANT == 3
	crem[c] = LEASE;               /* counts from the ack: wrong */
#endif
	if
	:: crem[c] > 0 ->
		for (j : 0 .. CLIENTS-1) {
			assert(j == c || ph[j] != HOLD)          /* A1: one holder */
		}
		j = 0;
		assert(ctok[c] > lastTok);                    /* A2: tokens increase */
		lastTok = ctok[c];
		ph[c] = HOLD
	:: else -> ph[c] = IDLE                           /* its lease ran out already */
	fi;
	endTxn(c)
}

/* the write lock at n belongs to another txn than (c, k) */
#define OTHERLOCK(n,c) (wlc[n] != 0 && (wlc[n] != (c)+1 || wlt[n] != k))
#ifdef RECONFIG
#define EPOCHOK(c,n) (pE[IX(c,n)] == ep[n])
#define FENCEOK(c,n) (cE[IX(c,n)] >= since[n])
/* the hybrid clock: a proposal exceeds every token whose lease expired */
#define PROPOSE(n) if :: wf > hlc[n] -> hlc[n] = wf + 1 :: else -> hlc[n]++ fi
#else
#define EPOCHOK(c,n) true
#define FENCEOK(c,n) true
#define PROPOSE(n) hlc[n]++
#endif

/* ---- master n receives client c's Prepare ---- */
inline onPrepare(c, n) {
	k = pT[IX(c,n)];
	qT[IX(c,n)] = k;
	qG[IX(c,n)] = false;
	qV[IX(c,n)] = (val[n] != 0 -> tok[n] : 0);
	if
	:: !EPOCHOK(c,n) -> skip                                         /* STALE_EPOCH */
	:: EPOCHOK(c,n) && !VOTER(EPOCH(n), n) -> skip                   /* NOT_MASTER */
#if MUTANT == 2
	:: EPOCHOK(c,n) && VOTER(EPOCH(n), n) && val[n] != 0 -> skip
	:: EPOCHOK(c,n) && VOTER(EPOCH(n), n) && val[n] == 0 ->
#else
	:: EPOCHOK(c,n) && VOTER(EPOCH(n), n) && OTHERLOCK(n,c) -> skip                  /* WRITE_LOCKED */
	:: EPOCHOK(c,n) && VOTER(EPOCH(n), n) && !OTHERLOCK(n,c) && val[n] != 0 -> skip  /* ALREADY_LOCKED */
	:: EPOCHOK(c,n) && VOTER(EPOCH(n), n) && !OTHERLOCK(n,c) && val[n] == 0 ->
#endif
		PROPOSE(n);
		qG[IX(c,n)] = true;
		qV[IX(c,n)] = hlc[n];
		wlc[n] = c+1; wlt[n] = k; wrem[n] = WLT
	fi;
	k = 0
}

/* ---- client c receives master n's Promise ---- */
inline onPromise(c, n) {
	if
	:: qT[IX(c,n)] != tx[c] || ph[c] == IDLE || ph[c] == HOLD || ans[IX(c,n)] != 0 ->
		skip   /* stale or repeated: ignored (its promise expires; abortPromise is an optimisation) */
	:: else ->
		if
		:: qG[IX(c,n)] ->
			ans[IX(c,n)] = 1;
			if
			:: ph[c] == PREP ->
				if :: qV[IX(c,n)] > acc[c] -> acc[c] = qV[IX(c,n)] :: else -> skip fi;
				if :: INA(tep[c], n) -> yA[c]++ :: else -> skip fi;
				if :: INB(tep[c], n) -> yB[c]++ :: else -> skip fi;
				decide(c)
			:: else -> sendCommit(c, n)     /* decided already: a late promise gets the commit */
			fi
		:: else ->
			ans[IX(c,n)] = 2;
			if
			:: ph[c] == PREP ->
				if :: qV[IX(c,n)] > 0 && qV[IX(c,n)] + 1 > acc[c] -> acc[c] = qV[IX(c,n)] + 1 :: else -> skip fi;
				if :: INA(tep[c], n) -> nA[c]++ :: else -> skip fi;
				if :: INB(tep[c], n) -> nB[c]++ :: else -> skip fi;
				decide(c)
			:: else -> skip
			fi
		fi
	fi
}

/* ---- master n receives client c's Commit or Abort ---- */
inline onCommit(c, n) {
	k = cT[IX(c,n)];
	if
	:: cA[IX(c,n)] ->
		if :: wlc[n] == c+1 && wlt[n] == k -> dropLock(n) :: else -> skip fi
	:: else ->
		aT[IX(c,n)] = k;
		aO[IX(c,n)] = false;
		if
		:: !FENCEOK(c,n) -> skip                                     /* STALE_EPOCH */
#if MUTANT == 2
		:: FENCEOK(c,n) && !(wlc[n] == c+1 && wlt[n] == k) ->
			if :: val[n] == 0 || tok[n] < cK[IX(c,n)] ->
				val[n] = c+1; tok[n] = cK[IX(c,n)]; mrem[n] = LEASE;
				observe(n, cK[IX(c,n)]); aO[IX(c,n)] = true
			:: else -> skip fi
#else
		:: FENCEOK(c,n) && !(wlc[n] == c+1 && wlt[n] == k) ->
			/* a repeated Commit of a write applied here: say so again */
			aO[IX(c,n)] = (val[n] == c+1 && tok[n] == cK[IX(c,n)])
#endif
		:: FENCEOK(c,n) && wlc[n] == c+1 && wlt[n] == k ->
			dropLock(n);
			val[n] = c+1; tok[n] = cK[IX(c,n)]; mrem[n] = LEASE;   /* the master counts from receipt */
			observe(n, cK[IX(c,n)]);
			aO[IX(c,n)] = true
		fi
	fi;
	k = 0
}

/* ---- client c receives master n's Committed ---- */
inline onAck(c, n) {
	if
	:: aT[IX(c,n)] != tx[c] || ph[c] != COMMIT || ans[IX(c,n)] != 1 || got[IX(c,n)] != 0 -> skip
	:: else ->
		got[IX(c,n)] = 1;
		if
		:: aO[IX(c,n)] ->
			if :: INA(tep[c], n) -> kA[c]++ :: else -> skip fi;
			if :: INB(tep[c], n) -> kB[c]++ :: else -> skip fi
		:: else ->
			if :: INA(tep[c], n) -> fA[c]++ :: else -> skip fi;
			if :: INB(tep[c], n) -> fB[c]++ :: else -> skip fi
		fi;
		if
		:: REACHED(tep[c], kA[c], kB[c]) -> holds(c)
		:: IMPOSSIBLE(tep[c], fA[c], fB[c]) -> ph[c] = IDLE; endTxn(c)
		:: else -> skip
		fi
	fi
}

#ifdef RECONFIG
/* node n adopts the configuration of epoch e (adopt in reconfig.go): a
 * change of masters drops the promises of the older epoch and fences its
 * commits; leaving the joint configuration for its new masters does not */
inline adopt(n, e) {
	if
	:: (ep[n] == 0) != (e == 0) -> since[n] = e; dropLock(n)
	:: else -> skip
	fi;
	ep[n] = e
}

/* node n copies source s's lease (a snapshot, merged as onReplicate does:
 * a newer token or a later deadline wins; a different lease landing drops
 * the write lock, which was promised against the state it replaces) */
inline copyLease(n, s) {
#if MUTANT != 4
	if
	:: val[s] != 0 && !(val[n] != 0 && (tok[n] > tok[s] || (tok[n] == tok[s] && mrem[n] >= mrem[s]))) ->
		if :: val[n] == 0 || tok[n] != tok[s] -> dropLock(n) :: else -> skip fi;
		observe(n, tok[s]);
		val[n] = val[s]; tok[n] = tok[s]; mrem[n] = mrem[s]
	:: else -> skip
	fi;
#endif
	copied[n] = copied[n] | (1 << s)
}

/* the number of old masters {0,1,2} that moved on from epoch 0 */
#define MOVED ((ep[0] >= JEP -> 1 : 0) + (ep[1] >= JEP -> 1 : 0) + (ep[2] >= JEP -> 1 : 0))
/* node n (a new master) has copied OLDW old masters' leases (itself included) */
#define BITS(b) (((b) & 1) + (((b) >> 1) & 1) + (((b) >> 2) & 1))
#define SYNCED(n) (n != 0 && BITS(copied[n]) >= OLDW)
#define NSYNCED ((SYNCED(1) -> 1 : 0) + (SYNCED(2) -> 1 : 0) + (SYNCED(3) -> 1 : 0))
#endif

/* Delivery of (c, n)'s Prepare and Commit, in any order, at any time or
 * never (a message never delivered is a lost one: no fairness is assumed,
 * and a newer message in the same slot replaces it). A Promise reaches the
 * client at once or is lost; a Committed ack reaches it at once (see
 * doc.go for why a delayed or lost ack adds no behaviour that matters to
 * A1 and A2). */
#define CLRQ(c,n) qT[IX(c,n)] = 0; qG[IX(c,n)] = 0; qV[IX(c,n)] = 0
#define CLRP(c,n) pT[IX(c,n)] = 0; pE[IX(c,n)] = 0
#define CLRA(c,n) aT[IX(c,n)] = 0; aO[IX(c,n)] = 0
#define CLRC(c,n) cT[IX(c,n)] = 0; cA[IX(c,n)] = 0; cK[IX(c,n)] = 0; cE[IX(c,n)] = 0
#ifdef RECONFIG
/* one Lock competes with a lease, not with another Lock: a promise granted
 * and lost is the same as a Prepare never delivered (the write lock it
 * leaves blocks nobody else) */
#define LOSTPROMISE(c,n)
#else
#define LOSTPROMISE(c,n) :: d_step { pT[IX(c,n)] != 0 -> onPrepare(c,n); CLRQ(c,n); CLRP(c,n) }
#endif
#define PAIR(c,n) \
	:: d_step { pT[IX(c,n)] != 0 -> onPrepare(c,n); onPromise(c,n); CLRQ(c,n); CLRP(c,n) } \
	LOSTPROMISE(c,n) \
	:: d_step { cT[IX(c,n)] != 0 -> onCommit(c,n); onAck(c,n); CLRA(c,n); CLRC(c,n) }

/* A client that stops waiting for commit acks (its timeout: the outcome is
 * unknown, and it does not hold) is the same, for a client that calls Lock
 * once more at most, as one waiting for acks that never come. */
#define TIMEOUT(c) :: d_step { ph[c] == PREP -> abort(c) }   /* timeout: any time before W promises */

#ifdef RECONFIG
/* Client 1 calls Lock once, while client 0 holds or its lease lives on some
 * node, under any epoch committed by then. A Lock called later competes
 * with nobody, and its tokens exceed 1 by the hybrid clock (wf). */
#define LIVE (ph[0] == HOLD || val[0] != 0 || val[1] != 0 || val[2] != 0 || val[3] != 0)
#define INVOKE(c,e) :: d_step { ph[c] == IDLE && tx[c] == 0 && e <= cfgEp && LIVE -> invoke(c,e) }
#define CLIENT(c) INVOKE(c,0) INVOKE(c,1) INVOKE(c,2) TIMEOUT(c)
#define CLIENTPAIRS(c) PAIR(c,0) PAIR(c,1) PAIR(c,2) PAIR(c,3)
/* node n adopts a committed epoch newer than its own (the coordinator's
 * ConfigCommit, or a peer's, or gossip: any of them may be lost) */
#define CFG(n) \
	:: d_step { ep[n] < cfgEp -> adopt(n, cfgEp) } \
	:: d_step { ep[n] == 0 && cfgEp == 2 && JEP == 1 -> adopt(n, 1) }
/* sync: node n of the new masters, having moved, copies the leases of old
 * masters s and t (n itself when it is one), both having moved (their
 * snapshots are taken after their move, and at one instant) */
#define SYNC(n,s,t) \
	:: d_step { rs == 1 && MOVED >= W && ep[n] >= JEP && ep[s] >= JEP && ep[t] >= JEP && !SYNCED(n) -> copyLease(n,s); copyLease(n,t) }
#else
#define INVOKE(c) :: d_step { ph[c] == IDLE && tx[c] == 0 -> invoke(c,0) }
#define CLIENT(c) INVOKE(c) TIMEOUT(c)
#define CLIENTPAIRS(c) PAIR(c,0) PAIR(c,1) PAIR(c,2)
#endif

active proctype System() {
#ifdef RECONFIG
	/* Client 0 holds the key: its Lock, token 1, committed on nodes 0 and 1
	 * (its other messages lost); old masters count as copied from themselves */
	d_step {
		ph[0] = HOLD; tx[0] = 1; lastTok = 1; crem[0] = LEASE;
		val[0] = 1; tok[0] = 1; hlc[0] = 1; mrem[0] = LEASE;
		val[1] = 1; tok[1] = 1; hlc[1] = 1; mrem[1] = LEASE;
		copied[1] = 2; copied[2] = 4
	}
#endif
end:
	do
	/* time passes: expiries happen on the tick they are due */
	:: d_step { true ->
		for (m : 0 .. NN-1) {
			if :: wrem[m] > 0 -> wrem[m]-- :: else -> skip fi;
			if :: wlc[m] != 0 && wrem[m] == 0 -> dropLock(m) :: else -> skip fi;
			if :: mrem[m] > 0 -> mrem[m]-- :: else -> skip fi;
			if :: val[m] != 0 && mrem[m] == 0 ->
#ifdef RECONFIG
				if :: tok[m] > wf -> wf = tok[m] :: else -> skip fi;
#endif
				val[m] = 0; tok[m] = 0
			:: else -> skip fi
		}
		m = 0;
		for (m : 0 .. CLIENTS-1) {
			if :: crem[m] > 0 -> crem[m]-- :: else -> skip fi;
			if :: ph[m] == HOLD && crem[m] == 0 -> ph[m] = IDLE :: else -> skip fi;
#ifdef RECONFIG
			/* a Lock whose lease ran out at its client can no longer hold,
			 * and nobody else Locks: its messages in flight are lost */
			if
			:: (ph[m] == PREP || ph[m] == COMMIT) && crem[m] == 0 ->
				for (i : 0 .. NN-1) {
					pT[IX(m,i)] = 0; pE[IX(m,i)] = 0;
					cT[IX(m,i)] = 0; cA[IX(m,i)] = 0; cK[IX(m,i)] = 0; cE[IX(m,i)] = 0
				}
				ph[m] = IDLE; endTxn(m)
			:: else -> skip
			fi
#endif
		}
		m = 0
	}
#ifndef RECONFIG
	CLIENT(0)
	CLIENTPAIRS(0)
#endif
	CLIENT(1)
	CLIENTPAIRS(1)
#ifdef RECONFIG
	/* the coordinator: first move, sync, final move */
	:: d_step { rs == 0 -> rs = 1; cfgEp = JEP }
	:: d_step { rs == 1 && MOVED >= W && NSYNCED >= W -> rs = 2; cfgEp = 2 }
	CFG(0) CFG(1) CFG(2) CFG(3)
	SYNC(1,0,1) SYNC(1,2,1) SYNC(2,0,2) SYNC(2,1,2) SYNC(3,0,1) SYNC(3,0,2) SYNC(3,1,2)
#endif
	od
}
