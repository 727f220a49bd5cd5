/*
 * locker.pml: a Promela model of Locker's write protocol, checked with spin.
 * See doc.go for what it models, what it abstracts away, and how to run it.
 *
 * One key. Clients Lock it with a two-phase quorum write (Prepare/Promise,
 * Commit/Abort, Committed acks) against 3 masters, W = 2. Leases and write
 * locks count down on an abstract global tick that can come between any
 * two steps (no time horizon needed). Prepare and Commit sit in one-place
 * slots per (client, master); a slot may be delivered at any time (so
 * messages reorder) or never (loss) or, with DUPS > 0, delivered and kept
 * (a duplicate) up to DUPS times in a run. Checked in CI: the default
 * (2 clients, TRIES=1, DUPS=0) and mutants 1 and 3. Mutant 2, DUPS=1,
 * TRIES=2 and RECONFIG did not finish within 2 GiB (not checked).
 *
 * With -DRECONFIG a fourth node takes part, and one coordinator replaces
 * master 2 by node 3 while clients lock: epoch 0 {0,1,2} W=2, joint epoch 1
 * ({0,1,3} W=2 and old {0,1,2} OldW=2), lease copy (sync) to the new
 * masters, epoch 2 {0,1,3} W=2.
 *
 * Checked (assertions; run with -DSAFETY):
 *   A1  at most one client believes it holds the key at any instant: a
 *       client holds from its W-th commit ack until its own lease deadline,
 *       counted from its invoke (before Prepare);
 *   A2  each new holder's fencing token is strictly greater than every
 *       earlier holder's.
 *
 * Mutants, -DMUTANT=n (1 and 3 fail in CI; 2, 4, 5 not yet checked):
 *   1  W = 1 (quorums need not intersect)
 *   2  masters promise regardless of an existing write lock, and apply a
 *      commit without checking that the promise is still theirs
 *   3  the client counts its lease from the commit ack instead of from its
 *      invoke (its deadline may pass a master's)
 *   4  (with RECONFIG) the coordinator leaves the joint configuration
 *      without the new masters copying the old masters' leases
 *   5  (with RECONFIG) a master keeps accepting commits of writes prepared
 *      under the epoch it moved away from (no mastersSince fence)
 */

#ifndef CLIENTS
#define CLIENTS 2
#endif
#ifndef LEASE
#define LEASE 2       /* lease length, ticks */
#endif
#ifndef WLT
#define WLT 1         /* write-lock (promise) timeout, ticks */
#endif
#ifndef TRIES
#define TRIES 1       /* Lock calls per client */
#endif
#ifndef DUPS
#define DUPS 0        /* duplicated deliveries per run */
#endif
#ifndef MUTANT
#define MUTANT 0
#endif

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

/* configurations by epoch: group A = Masters (W), group B = OldMasters (OLDW) */
#define INA(e,n)   (((e) == 0) -> ((n) < 3) : ((n) != 2))
#define INB(e,n)   (((e) == 1) && ((n) < 3))
#define VOTER(e,n) (INA(e,n) || INB(e,n))
/* the masters of epoch e differ from those of epoch f */
#define MCHANGE(e,f) ((((e) == 0) && ((f) > 0)) || (((e) > 0) && ((f) == 0)))

/* client phases */
#define IDLE   0
#define PREP   1
#define COMMIT 2
#define HOLD   3

#define IX(c,n) ((c)*NN+(n))
#define CN (CLIENTS*NN)

/* ---- masters ---- */
byte ep[NN];      /* configuration epoch */
byte since[NN];   /* mastersSince: epoch from which the current masters hold */
byte val[NN];     /* 0: key absent; c+1: leased to client c */
byte tok[NN];     /* the entry's fencing token */
byte mrem[NN];    /* ticks left of the lease here: LEASE from receipt of Commit */
byte wlc[NN];     /* write lock: 0 none, else client+1 */
byte wlt[NN];     /* write lock: txn */
byte wrem[NN];    /* write lock: ticks left */
byte hlc[NN];     /* largest token proposed or seen */

/* ---- clients ---- */
byte ph[CLIENTS];
byte tx[CLIENTS];    /* current txn (Lock call number, 1..TRIES) */
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
byte dups = DUPS;

/* ---- monitors ---- */
byte lastTok;        /* token of the latest holder */

#ifdef RECONFIG
byte rs;             /* coordinator: 0 old, 1 joint committed, 2 new committed */
byte cfgEp;          /* newest epoch committed */
byte mCfg[NN];       /* ConfigCommit in flight: epoch, 0 none */
byte copied[NN];     /* sync at node n: bit s set when s's snapshot was copied */
#endif

byte i, j, k, m;     /* scratch, reset after use */

/* the number of the old masters {0,1,2} with epoch >= 1 */
#define MOVED ((ep[0] >= 1 -> 1 : 0) + (ep[1] >= 1 -> 1 : 0) + (ep[2] >= 1 -> 1 : 0))
/* node n (a new master) has copied OLDW old masters' leases (itself included) */
#define BITS(b) (((b) & 1) + (((b) >> 1) & 1) + (((b) >> 2) & 1))
#define SYNCED(n) (BITS(copied[n]) >= OLDW)
#define NSYNCED ((SYNCED(0) -> 1 : 0) + (SYNCED(1) -> 1 : 0) + (SYNCED(3) -> 1 : 0))

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
#define REACHED(e,ya,yb)  ((ya) >= W && (!((e) == 1) || (yb) >= OLDW))
#define SIZEA(e) 3
#define SIZEB(e) (((e) == 1) -> 3 : 0)
#define IMPOSSIBLE(e,na,nb) ((na) > SIZEA(e) - W || (((e) == 1) && (nb) > SIZEB(e) - OLDW))

/* ---- client: Lock ---- */
inline invoke(c, e) {
	tx[c]++;
	ph[c] = PREP;
	tep[c] = e;                    /* the epoch the client knows: any committed one */
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
#ifndef NOABORT
		:: ans[IX(c,i)] == 1 ->
			cT[IX(c,i)] = tx[c]; cA[IX(c,i)] = true; cK[IX(c,i)] = 0; cE[IX(c,i)] = tep[c]
#endif
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

/* ---- master n receives client c's Prepare ---- */
inline onPrepare(c, n) {
	k = pT[IX(c,n)];
	qT[IX(c,n)] = k;
	qG[IX(c,n)] = false;
	qV[IX(c,n)] = (val[n] != 0 -> tok[n] : 0);
	if
	:: pE[IX(c,n)] != ep[n] -> skip                                  /* STALE_EPOCH */
	:: pE[IX(c,n)] == ep[n] && !VOTER(ep[n], n) -> skip              /* NOT_MASTER */
#if MUTANT == 2
	:: pE[IX(c,n)] == ep[n] && VOTER(ep[n], n) && val[n] != 0 -> skip
	:: pE[IX(c,n)] == ep[n] && VOTER(ep[n], n) && val[n] == 0 ->
#else
	:: pE[IX(c,n)] == ep[n] && VOTER(ep[n], n) && wlc[n] != 0 && (wlc[n] != c+1 || wlt[n] != k) -> skip  /* WRITE_LOCKED */
	:: pE[IX(c,n)] == ep[n] && VOTER(ep[n], n) && !(wlc[n] != 0 && (wlc[n] != c+1 || wlt[n] != k)) && val[n] != 0 -> skip  /* ALREADY_LOCKED */
	:: pE[IX(c,n)] == ep[n] && VOTER(ep[n], n) && !(wlc[n] != 0 && (wlc[n] != c+1 || wlt[n] != k)) && val[n] == 0 ->
#endif
		hlc[n]++;
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
#if MUTANT != 5
		:: cE[IX(c,n)] < since[n] -> skip                                     /* STALE_EPOCH */
		:: cE[IX(c,n)] >= since[n] && !(wlc[n] == c+1 && wlt[n] == k) ->
#else
		:: !(wlc[n] == c+1 && wlt[n] == k) ->
#endif
#if MUTANT == 2
			if :: val[n] == 0 || tok[n] < cK[IX(c,n)] ->
				val[n] = c+1; tok[n] = cK[IX(c,n)]; mrem[n] = LEASE;
				observe(n, cK[IX(c,n)]); aO[IX(c,n)] = true
			:: else -> skip fi
#else
			/* a repeated Commit of a write applied here: say so again */
			aO[IX(c,n)] = (val[n] == c+1 && tok[n] == cK[IX(c,n)])
#endif
#if MUTANT != 5
		:: cE[IX(c,n)] >= since[n] && wlc[n] == c+1 && wlt[n] == k ->
#else
		:: wlc[n] == c+1 && wlt[n] == k ->
#endif
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
/* node n adopts the configuration of epoch e (adopt in reconfig.go) */
inline adopt(n, e) {
	if
	:: MCHANGE(ep[n], e) -> since[n] = e; dropLock(n)   /* promises of the older masters die */
	:: else -> skip
	fi;
	ep[n] = e
}

/* node n copies source s's lease (a snapshot, merged as onReplicate does) */
inline copyLease(n, s) {
	if
	:: val[s] != 0 && !(val[n] != 0 && (tok[n] > tok[s] || (tok[n] == tok[s] && mrem[n] >= mrem[s]))) ->
		observe(n, tok[s]);
		val[n] = val[s]; tok[n] = tok[s]; mrem[n] = mrem[s]
	:: else -> skip
	fi;
	copied[n] = copied[n] | (1 << s)
}
#endif

/* Delivery of (c, n)'s Prepare and Commit, in any order, at any time or
 * never (a message never delivered is a lost one: no fairness is assumed,
 * and a newer message in the same slot replaces it). A Promise reaches the
 * client at once or is lost; a Committed ack reaches it at once (see
 * doc.go for why a delayed or lost ack adds no behaviour that matters to
 * A1 and A2). A Prepare (with DUPP) or Commit may also be delivered and
 * kept, to be delivered again: a duplicate, at most DUPS in a run. */
#define CLRQ(c,n) qT[IX(c,n)] = 0; qG[IX(c,n)] = 0; qV[IX(c,n)] = 0
#define CLRP(c,n) pT[IX(c,n)] = 0; pE[IX(c,n)] = 0
#define CLRA(c,n) aT[IX(c,n)] = 0; aO[IX(c,n)] = 0
#define CLRC(c,n) cT[IX(c,n)] = 0; cA[IX(c,n)] = 0; cK[IX(c,n)] = 0; cE[IX(c,n)] = 0
#ifdef DUPP
#define DUPPREP(c,n) :: d_step { pT[IX(c,n)] != 0 && dups > 0 -> dups--; onPrepare(c,n); onPromise(c,n); CLRQ(c,n) }
#else
#define DUPPREP(c,n)
#endif
#ifdef NOPLOSS
#define LOSTPROMISE(c,n)
#else
#define LOSTPROMISE(c,n) :: d_step { pT[IX(c,n)] != 0 -> onPrepare(c,n); CLRQ(c,n); CLRP(c,n) }
#endif
#define PAIR(c,n) \
	:: d_step { pT[IX(c,n)] != 0 -> onPrepare(c,n); onPromise(c,n); CLRQ(c,n); CLRP(c,n) } \
	LOSTPROMISE(c,n) \
	DUPPREP(c,n) \
	:: d_step { cT[IX(c,n)] != 0 -> onCommit(c,n); onAck(c,n); CLRA(c,n); CLRC(c,n) } \
	:: d_step { cT[IX(c,n)] != 0 && dups > 0 -> dups--; onCommit(c,n); onAck(c,n); CLRA(c,n) }

/* A client that stops waiting for commit acks (its timeout: the outcome is
 * unknown, and it does not hold) matters only if it calls Lock again: with
 * TRIES = 1 it is the same as waiting for acks that never come. */
#ifdef NOABORT
#define TIMEOUT(c)
#else
#define TIMEOUT(c) :: d_step { ph[c] == PREP -> abort(c) }   /* timeout: any time before W promises */
#endif
#if TRIES > 1
#define GIVEUP(c) :: d_step { ph[c] == COMMIT -> ph[c] = IDLE; endTxn(c) }
#else
#define GIVEUP(c)
#endif
#ifdef RECONFIG
/* Scenario: client 0 calls Lock before the change begins, the change
 * begins after that call, and client 1 calls Lock after the change began,
 * with any epoch committed by then (0: a client that has not learnt of it). */
#define INVOKE(c,e) :: d_step { ph[c] == IDLE && tx[c] < TRIES && e <= cfgEp && (c == 0 || (rs >= 1 && (ph[0] == HOLD || ph[0] == IDLE))) -> invoke(c,e) }
#else
#define INVOKE(c,e) :: d_step { ph[c] == IDLE && tx[c] < TRIES && e == 0 -> invoke(c,e) }
#endif
#define CLIENT(c) \
	INVOKE(c,0) INVOKE(c,1) INVOKE(c,2) \
	TIMEOUT(c) \
	GIVEUP(c)

#ifdef RECONFIG
#define CLIENTPAIRS(c) PAIR(c,0) PAIR(c,1) PAIR(c,2) PAIR(c,3)
#define CFG(n) \
	:: d_step { mCfg[n] != 0 -> if :: mCfg[n] > ep[n] -> adopt(n, mCfg[n]) :: else -> skip fi; mCfg[n] = 0 }
/* sync: new master n copies old master s's lease, s having moved to the joint epoch */
#define SYNC1(n,s) \
	:: d_step { rs == 1 && MOVED >= W && ep[n] >= 1 && ep[s] >= 1 && !SYNCED(n) -> copyLease(n,s) }
#define SYNC2(n,s,t) \
	:: d_step { rs == 1 && MOVED >= W && ep[n] >= 1 && ep[s] >= 1 && ep[t] >= 1 && !SYNCED(n) -> copyLease(n,s); copyLease(n,t) }
#else
#define CLIENTPAIRS(c) PAIR(c,0) PAIR(c,1) PAIR(c,2)
#endif

#if MUTANT == 4
#define SYNCDONE true
#else
#define SYNCDONE (NSYNCED >= W)
#endif

active proctype System() {
#ifdef RECONFIG
	/* node 3 starts as a replica of epoch 0; old masters count themselves as copied */
	copied[0] = 1; copied[1] = 2;
#endif
end:
	do
	/* time passes: expiries happen on the tick they are due */
	:: d_step { true ->
		for (m : 0 .. NN-1) {
			if :: wrem[m] > 0 -> wrem[m]-- :: else -> skip fi;
			if :: wlc[m] != 0 && wrem[m] == 0 -> dropLock(m) :: else -> skip fi;
			if :: mrem[m] > 0 -> mrem[m]-- :: else -> skip fi;
			if :: val[m] != 0 && mrem[m] == 0 -> val[m] = 0; tok[m] = 0 :: else -> skip fi
		}
		m = 0;
		for (m : 0 .. CLIENTS-1) {
			if :: crem[m] > 0 -> crem[m]-- :: else -> skip fi;
			if :: ph[m] == HOLD && crem[m] == 0 -> ph[m] = IDLE :: else -> skip fi
		}
		m = 0
	}
	CLIENT(0)
	CLIENT(1)
	CLIENTPAIRS(0)
	CLIENTPAIRS(1)
#if CLIENTS > 2
	CLIENT(2)
	CLIENTPAIRS(2)
#endif
#ifdef RECONFIG
	/* the coordinator: joint configuration, sync, new configuration */
	:: d_step { rs == 0 && tx[0] >= 1 -> rs = 1; cfgEp = 1; for (m : 0 .. NN-1) { mCfg[m] = 1 }; m = 0 }
	:: d_step { rs == 1 && MOVED >= W && SYNCDONE -> rs = 2; cfgEp = 2; for (m : 0 .. NN-1) { mCfg[m] = 2 }; m = 0 }
	CFG(0) CFG(1) CFG(2) CFG(3)
	SYNC1(0,1) SYNC1(0,2) SYNC1(1,0) SYNC1(1,2) SYNC2(3,0,1) SYNC2(3,0,2) SYNC2(3,1,2)
#endif
	od
}
