/*
 * restart.pml: restarts with empty memory, catch-up by copying, and a
 * coordinator whose clock runs ahead; checked with spin (spec_test.go).
 * See doc.go for what it models and what it abstracts away.
 *
 * One key, masters m0, m1, m2, W = 2. Two clients each call Lock once;
 * client c's Lock is coordinated by node c (the coordinators are the
 * masters, as in Locker), and node 0's clock runs FAST ahead of the
 * others'. Client 0's lease is SHORT, client 1's LONG. Clocks are hybrid
 * logical clocks reduced to their logical part: a coordinator's clock
 * observes every ballot, bound and token it handles, and a restart sets
 * it back to its physical base (FAST for node 0, 0 for the others).
 *
 * The write (internal/core txn.go, master.go, ballot.go): the coordinator
 * draws a ballot from its clock (one above everything it has seen) and
 * sends it in the Prepare. A master promises (a write lock that expires
 * after WLT ticks) only if no other write holds a live write lock there,
 * the key is absent, and the ballot is above its bound: the largest
 * ballot it granted, the key's token, and its floor (BALLOT_TOO_LOW,
 * with the bound, otherwise). A write the coordinator decided not to
 * commit anywhere (an abort item) takes its ballot back where it holds
 * the bound (one record back is kept, as ballotRec does); a retry's abort
 * of its transaction does not. The coordinator commits at W promises,
 * with the ballot as the token; at a BALLOT_TOO_LOW before W promises it
 * aborts the promises it has and starts again (at most ATTEMPTS times in
 * all) with a ballot above the bounds it heard; it aborts when W promises
 * are out of reach, or at any time before W (its timeout). A master
 * applies a Commit only over its own live promise, starting the lease
 * from the Commit's receipt. The client holds from its W-th ok ack until
 * its own lease, counted from its call, runs out; it may stop waiting for
 * acks at any time (its timeout).
 *
 * Restart: any master may restart, RESTARTS times in all, one at a time
 * (the next only once no master is catching up). It loses everything:
 * the key, write locks, granted ballots, its floor; its clock falls back
 * to its base. It refuses Prepares (CATCHING_UP) and cannot apply
 * Commits (no promise survives) until it caught up: once every Lock that
 * was under way when it restarted is over (held, failed or given up: no
 * ack of it counts any more; settleWait), it copies a snapshot from each
 * of the n-W+1 = 2 other masters (that are not catching up themselves),
 * one at a time, merged by the larger token (a later deadline on equal
 * tokens), and raises its floor to each source's ballot bound (the real
 * snapshot carries the source's clock, which is at least that bound: the
 * model takes the least the safety argument needs).
 *
 * The probe: once some client has held, a third Lock may take any two
 * masters that are free at one instant (caught up, key absent, no write
 * lock), with the lowest ballot they both grant (a coordinator whose
 * clock lags); A1 and A2 are checked for it and the run ends there.
 *
 * Messages: one slot per (client, master) for the Prepare and one for
 * the Commit or Abort; delivered in any order, at any time, or never; a
 * newer message replaces an older one in its slot. A Promise reaches the
 * coordinator at once or is lost; a Committed ack at once.
 *
 * Checked (assertions; -DSAFETY, exhaustive):
 *   A1  at most one client (the probe included) holds the key at any
 *       instant;
 *   A2  each holder's token is larger than every earlier holder's.
 *
 * Mutants, -DMUTANT=n; each makes spin find an assertion violation:
 *   7  the rule before ballots: a master grants without a ballot check
 *      and proposes a token from its own clock, the Lock commits the
 *      largest proposal (and above a refuser's token); a restarted master
 *      takes no floor (it still waits for the earlier Locks to be over,
 *      so that what fails is the token order); two holders (A1)
 *   8  a restarted master does not take its sources' bounds as floor:
 *      A2 with one restart; two holders (A1, -DNOA2) with two
 *   9  a restarted master copies before the Locks under way at its
 *      restart are over: two holders (A1)
 */

#ifndef MUTANT
#define MUTANT 0
#endif
#ifndef RESTARTS
#define RESTARTS 1     /* 2 by hand: see doc.go */
#endif
#ifndef ATTEMPTS
#define ATTEMPTS 2     /* attempts of one Lock, the first included */
#endif
#ifndef FAST
#define FAST 2         /* node 0's clock is this far ahead */
#endif
#define SHORT 1        /* lease of client 0, ticks */
#define LONG 2         /* lease of client 1, ticks */
#define WLT 1          /* write-lock (promise) timeout, ticks */

#define NN 3
#define CL 2
#define W 2
#define LEASE(c) ((c) == 1 -> LONG : SHORT)
#define BASE(n) ((n) == 0 -> FAST : 0)
#define CO(c) (c)      /* the node that coordinates client c's Lock */

/* client phases */
#define IDLE   0
#define PREP   1
#define COMMIT 2
#define HOLD   3

#define IX(c,n) ((c)*NN+(n))
#define CN (CL*NN)

/* ---- masters ---- */
byte val[NN];    /* 0: key absent; c+1: leased to client c */
byte tok[NN];    /* the entry's fencing token */
byte mrem[NN];   /* ticks left of the lease here */
byte wlc[NN];    /* write lock: 0 none, else client+1 */
byte wlt[NN];    /* write lock: attempt */
byte wrem[NN];   /* write lock: ticks left */
byte clk[NN];    /* hybrid clock (logical part) */
byte flo[NN];    /* the floor */
/* the ballot record (ballotRec): largest ballot granted, the write that
 * was granted it (c*ATTEMPTS+attempt), the bound before it (base), and one
 * record back (prev), to go back to when that write is aborted */
byte bb[NN]; byte bw[NN]; byte bbase[NN];
byte pb[NN]; byte pw[NN]; byte pbase[NN];
bool cu[NN];     /* catching up after a restart */
byte pend[NN];   /* catching up: bit c set while client c's Lock, under way at the restart, is not over */
byte cop[NN];    /* catching up: bit s set once s's snapshot was copied */
byte rst;        /* restarts so far */
#if MUTANT == 7
byte wf;         /* wall-clock floor: every token of a lease that expired somewhere */
#define PROPOSE(n) clk[n] = MAX(clk[n], wf) + 1
#endif

/* ---- clients ---- */
byte ph[CL];
byte att[CL];    /* attempt of the current Lock (0: not called yet) */
byte crem[CL];   /* ticks left of the client's lease, from its call */
byte bal[CL];    /* ballot of the current attempt */
byte acc[CL];    /* MUTANT 7: token assembled from the proposals */
byte ctok[CL];   /* token committed */
byte yes[CL]; byte no[CL]; bool low[CL]; byte hb[CL]; /* promises, refusals, BALLOT_TOO_LOW, largest bound */
byte oks[CL]; byte fails[CL];                         /* commit acks */
byte ans[CN];    /* 0 no answer, 1 granted, 2 refused */

/* ---- messages ---- */
byte pT[CN];                          /* Prepare: attempt (its ballot is bal[c]) */
byte cT[CN]; bool cA[CN]; byte cK[CN]; /* Commit or Abort: attempt, abort, token (an Abort: 1 when it names the item) */
byte qT; bool qG; bool qL; byte qV;   /* the Promise being delivered: attempt, granted, too low, value */

/* ---- monitor ---- */
byte lastTok;

byte i, j, k, m;  /* scratch, reset after use */

#if MUTANT == 7 || defined(NOA2)
/* -DNOA2 checks A1 alone. The old rule's tokens increase across leases
 * through the wall-clock part of the hybrid clock, which this model
 * lacks (wf only floors them by expired tokens): A2 is not checked for
 * it */
#define A2(t) skip
#else
#define A2(t) assert((t) > lastTok)      /* A2: tokens increase */
#endif
#define MAX(a,b) ((a) > (b) -> (a) : (b))
#define BOUND(n) MAX(MAX(flo[n], bb[n]), tok[n])
#define WRITER(c,a) ((c)*ATTEMPTS+(a))

/* master n grants ballot b to write w (grantBallot) */
inline grantBallot(n, b, w) {
	if
	:: bb[n] > 0 ->
		pb[n] = bb[n]; pw[n] = bw[n]; pbase[n] = bbase[n];
		bbase[n] = bb[n]; bb[n] = MAX(b, bb[n])
	:: else ->
		pb[n] = 0; pw[n] = 0; pbase[n] = 0; bbase[n] = 0; bb[n] = b
	fi;
	bw[n] = w
}

/* the coordinator of write w decided not to commit it anywhere
 * (abortedBallot): if w holds the bound, it goes back */
inline abortedBallot(n, w) {
	if
	:: bb[n] > 0 && bw[n] == w && pb[n] > 0 ->
		bb[n] = pb[n]; bw[n] = pw[n]; bbase[n] = pbase[n];
		pb[n] = 0; pw[n] = 0; pbase[n] = 0
	:: bb[n] > 0 && bw[n] == w && pb[n] == 0 ->
		bb[n] = bbase[n]; bw[n] = 0; bbase[n] = 0
	:: else -> skip
	fi
}
#if MUTANT == 7
#define OBS(n,v) clk[n] = MAX(clk[n], v)
#else
/* Ballots are drawn from the clocks of nodes 0 and 1 (the coordinators
 * of clients 0 and 1), and only while their client may still start an
 * attempt; other clocks are never read (a snapshot brings its source's
 * ballot bound as floor, see copyFrom), and are kept at 0 to keep the
 * state space small. */
#define LIVEC(c) (att[c] == 0 || (ph[c] == PREP && att[c] < ATTEMPTS))
#define LIVECLK(n) (((n) == 0 && LIVEC(0)) || ((n) == 1 && LIVEC(1)))
#define OBS(n,v) if :: LIVECLK(n) -> clk[n] = MAX(clk[n], v) :: else -> skip fi
#endif
/* forget what no later step reads: dead clocks, ballots of Locks with
 * no Prepare left to deliver */
inline norm() {
#if MUTANT != 7
	if :: !LIVEC(0) -> clk[0] = 0 :: else -> skip fi;
	if :: !LIVEC(1) -> clk[1] = 0 :: else -> skip fi;
#endif
	if :: ph[0] != PREP && pT[IX(0,0)] == 0 && pT[IX(0,1)] == 0 && pT[IX(0,2)] == 0 -> bal[0] = 0 :: else -> skip fi;
	if :: ph[1] != PREP && pT[IX(1,0)] == 0 && pT[IX(1,1)] == 0 && pT[IX(1,2)] == 0 -> bal[1] = 0 :: else -> skip fi
}
#define OTHERLOCK(n,c) (wlc[n] != 0 && (wlc[n] != (c)+1 || wlt[n] != k))

inline dropLock(n) {
	wlc[n] = 0; wlt[n] = 0; wrem[n] = 0
}

/* client c's Lock is over (it holds, failed, or gave up): no commit of
 * it counts any more, and a restarted master no longer waits for it */
inline endTxn(c) {
	for (i : 0 .. NN-1) { pend[i] = pend[i] & ~(1 << (c)) }
	yes[c] = 0; no[c] = 0; low[c] = false; hb[c] = 0; oks[c] = 0; fails[c] = 0;
	acc[c] = 0; ctok[c] = 0;
	if :: ph[c] != HOLD -> crem[c] = 0 :: else -> skip fi;
	for (i : 0 .. NN-1) { ans[IX(c,i)] = 0 }
	i = 0
}

/* send the Prepares of client c's current attempt */
inline prepare(c) {
#if MUTANT != 7
	clk[CO(c)] = MAX(clk[CO(c)], hb[c]) + 1;   /* above every bound heard */
	bal[c] = clk[CO(c)];
#endif
	yes[c] = 0; no[c] = 0; low[c] = false; hb[c] = 0; acc[c] = 0;
	for (i : 0 .. NN-1) { ans[IX(c,i)] = 0; pT[IX(c,i)] = att[c] }
	i = 0
}

inline invoke(c) {
	printf("Lock c%d\n", c);
	att[c] = 1;
	ph[c] = PREP;
	crem[c] = LEASE(c);
	prepare(c)
}

/* abort the promises client c holds for its current attempt */
/* item: the coordinator decided not to commit the write (an abort item,
 * which takes its ballot back); else a retry's abort of the transaction
 * (abortPromise: no items, the ballot stays) */
inline abortPromises(c, item) {
	for (i : 0 .. NN-1) {
		if
		:: ans[IX(c,i)] == 1 -> cT[IX(c,i)] = att[c]; cA[IX(c,i)] = true; cK[IX(c,i)] = item
		:: else -> skip
		fi
	}
	i = 0
}

inline abort(c) {
	abortPromises(c, 1);
	ph[c] = IDLE;
	endTxn(c)
}

inline sendCommit(c, n) {
	cT[IX(c,n)] = att[c]; cA[IX(c,n)] = false; cK[IX(c,n)] = ctok[c]
}

inline decide(c) {
	if
	:: yes[c] >= W ->
		ph[c] = COMMIT;
#if MUTANT == 7
		ctok[c] = acc[c];
#else
		ctok[c] = bal[c];
#endif
		for (i : 0 .. NN-1) {
			if :: ans[IX(c,i)] == 1 -> sendCommit(c, i) :: else -> skip fi
		}
		i = 0
	:: yes[c] < W && low[c] && att[c] < ATTEMPTS ->
		/* a master's bound is above the ballot: start again */
		abortPromises(c, 0);
		att[c]++;
		prepare(c)
	:: yes[c] < W && !(low[c] && att[c] < ATTEMPTS) && no[c] > NN - W -> abort(c)
	:: else -> skip
	fi
}

/* the W-th ok ack: client c holds the key until crem runs out */
inline holds(c) {
	if
	:: crem[c] > 0 ->
		for (j : 0 .. CL-1) {
			assert(j == c || ph[j] != HOLD)          /* A1: one holder */
		}
		j = 0;
		A2(ctok[c]);
		lastTok = ctok[c];
		printf("c%d holds, token %d\n", c, ctok[c]);
		ph[c] = HOLD
	:: else -> ph[c] = IDLE
	fi;
	endTxn(c)
}

/* ---- master n receives client c's Prepare; the answer in q* ---- */
inline onPrepare(c, n) {
	k = pT[IX(c,n)];
	qT = k; qG = false; qL = false; qV = (val[n] != 0 -> tok[n] : 0);
	if
	:: cu[n] -> skip                                              /* CATCHING_UP */
	:: !cu[n] && OTHERLOCK(n,c) -> skip                           /* WRITE_LOCKED */
	:: !cu[n] && !OTHERLOCK(n,c) && val[n] != 0 -> skip           /* ALREADY_LOCKED */
#if MUTANT == 7
	:: !cu[n] && !OTHERLOCK(n,c) && val[n] == 0 ->
		PROPOSE(n);                                 /* a proposal from its clock */
		qG = true; qV = clk[n];
		wlc[n] = c+1; wlt[n] = k; wrem[n] = WLT
#else
	:: !cu[n] && !OTHERLOCK(n,c) && val[n] == 0 && bal[c] <= BOUND(n) ->
		qL = true; qV = BOUND(n)                    /* BALLOT_TOO_LOW */
	:: !cu[n] && !OTHERLOCK(n,c) && val[n] == 0 && bal[c] > BOUND(n) ->
		grantBallot(n, bal[c], WRITER(c, k));
		OBS(n, bal[c]);
		qG = true;
		wlc[n] = c+1; wlt[n] = k; wrem[n] = WLT
#endif
	fi;
	printf("Prepare c%d.%d ballot %d at m%d: granted %d, too low %d, value %d\n", c, k, bal[c], n, qG, qL, qV);
	k = 0
}

/* ---- client c receives master n's Promise (in q*) ---- */
inline onPromise(c, n) {
	if
	:: qT == att[c] && ph[c] == COMMIT && qG && ans[IX(c,n)] == 0 ->
		ans[IX(c,n)] = 1; sendCommit(c, n)    /* decided already: a late promise gets the commit */
	:: qT != att[c] || ph[c] != PREP || ans[IX(c,n)] != 0 -> skip
	:: else ->
#if MUTANT != 7
		OBS(CO(c), qV);
#endif
		if
		:: qG ->
			ans[IX(c,n)] = 1; yes[c]++;
#if MUTANT == 7
			acc[c] = MAX(acc[c], qV)
#endif
		:: else ->
			ans[IX(c,n)] = 2; no[c]++;
#if MUTANT == 7
			if :: qV > 0 -> acc[c] = MAX(acc[c], qV + 1) :: else -> skip fi
#else
			if :: qL -> low[c] = true; hb[c] = MAX(hb[c], qV) :: else -> skip fi
#endif
		fi;
		decide(c)
	fi;
	qT = 0; qG = false; qL = false; qV = 0
}

/* ---- master n receives client c's Commit or Abort, and c its ack ---- */
inline onCommit(c, n) {
	k = cT[IX(c,n)];
	printf("Commit c%d.%d (abort %d) token %d at m%d: applied %d\n", c, k, cA[IX(c,n)], cK[IX(c,n)], n, !cA[IX(c,n)] && wlc[n] == c+1 && wlt[n] == k);
	if
	:: cA[IX(c,n)] ->
		if :: wlc[n] == c+1 && wlt[n] == k -> dropLock(n) :: else -> skip fi;
		if :: cK[IX(c,n)] == 1 -> abortedBallot(n, WRITER(c, k)) :: else -> skip fi
	:: !cA[IX(c,n)] && !(wlc[n] == c+1 && wlt[n] == k) ->
		/* PROMISE_EXPIRED (or lost with the master's memory) */
		if :: k == att[c] && ph[c] == COMMIT -> fails[c]++ :: else -> skip fi
	:: !cA[IX(c,n)] && wlc[n] == c+1 && wlt[n] == k ->
		dropLock(n);
		val[n] = c+1; tok[n] = cK[IX(c,n)]; mrem[n] = LEASE(c);
		OBS(n, tok[n]);
		if :: k == att[c] && ph[c] == COMMIT -> oks[c]++ :: else -> skip fi
	fi;
	if
	:: ph[c] == COMMIT && oks[c] >= W -> holds(c)
	:: ph[c] == COMMIT && fails[c] > NN - W -> ph[c] = IDLE; endTxn(c)
	:: else -> skip
	fi;
	k = 0
}

/* ---- master r restarts with empty memory ---- */
inline restart(r) {
	printf("m%d restarts\n", r);
	rst++;
	val[r] = 0; tok[r] = 0; mrem[r] = 0; dropLock(r);
	flo[r] = 0; bb[r] = 0; bw[r] = 0; bbase[r] = 0; pb[r] = 0; pw[r] = 0; pbase[r] = 0;
	clk[r] = BASE(r);
	cu[r] = true; cop[r] = 0;
#if MUTANT == 9
	pend[r] = 0
#else
	pend[r] = (ph[0] == PREP || ph[0] == COMMIT -> 1 : 0) | (ph[1] == PREP || ph[1] == COMMIT -> 2 : 0)
#endif
}

/* ---- catching-up master n copies master s's snapshot ---- */
inline copyFrom(n, s) {
	printf("m%d copies m%d: c%d token %d, bound %d\n", n, s, val[s] - 1, tok[s], BOUND(s));
	if
	:: val[s] != 0 && (val[n] == 0 || tok[s] > tok[n] || (tok[s] == tok[n] && mrem[s] > mrem[n])) ->
		val[n] = val[s]; tok[n] = tok[s]; mrem[n] = mrem[s];
		OBS(n, tok[n])
	:: else -> skip
	fi;
#if MUTANT != 7 && MUTANT != 8
	flo[n] = MAX(flo[n], BOUND(s));                /* the source's bound is the floor */
	OBS(n, flo[n]);
#endif
	cop[n] = cop[n] | (1 << s);
	if
	:: cop[n] == (7 & ~(1 << n)) -> cu[n] = false; cop[n] = 0   /* caught up: votes again */
	:: else -> skip
	fi
}

#define CLRP(c,n) pT[IX(c,n)] = 0
#define CLRC(c,n) cT[IX(c,n)] = 0; cA[IX(c,n)] = 0; cK[IX(c,n)] = 0
#define PAIR(c,n) \
	:: d_step { pT[IX(c,n)] != 0 -> onPrepare(c,n); onPromise(c,n); CLRP(c,n); norm() } \
	:: d_step { pT[IX(c,n)] != 0 -> onPrepare(c,n); qT = 0; qG = false; qL = false; qV = 0; CLRP(c,n); norm() } \
	:: d_step { cT[IX(c,n)] != 0 -> onCommit(c,n); CLRC(c,n); norm() }
#define CLIENT(c) \
	:: d_step { ph[c] == IDLE && att[c] == 0 -> invoke(c); norm() } \
	:: d_step { ph[c] == PREP -> abort(c); norm() } \
	:: d_step { ph[c] == COMMIT -> ph[c] = IDLE; endTxn(c); norm() } \
	PAIR(c,0) PAIR(c,1) PAIR(c,2)
#define RESTART(r) \
	:: d_step { rst < RESTARTS && !cu[0] && !cu[1] && !cu[2] -> restart(r); norm() }
#define COPY(n,s) \
	:: d_step { cu[n] && pend[n] == 0 && !cu[s] && (cop[n] & (1 << s)) == 0 -> copyFrom(n,s); norm() }

/* ---- the probe: a third Lock, after a client held, taking masters a
 * and b at one instant (no message lost or delayed); the run ends there ---- */
#define FREE(n) (!cu[n] && val[n] == 0 && wlc[n] == 0)
inline probe(a, b) {
#if MUTANT == 7
	PROPOSE(a); PROPOSE(b);
	k = MAX(clk[a], clk[b]);                   /* the larger proposal */
#else
	k = MAX(BOUND(a), BOUND(b)) + 1;           /* the lowest ballot the two grant */
#endif
	printf("probe Locks on m%d, m%d: token %d\n", a, b, k);
	for (j : 0 .. CL-1) {
		assert(ph[j] != HOLD)                  /* A1: one holder */
	}
	j = 0;
	A2(k)
}
#define PROBE(a,b) \
	:: d_step { lastTok > 0 && FREE(a) && FREE(b) -> probe(a,b) }; break

init {
	clk[0] = FAST;
end:
	do
	/* time passes: expiries happen on the tick they are due */
	:: d_step { true ->
		printf("tick\n");
		for (m : 0 .. NN-1) {
			if :: wrem[m] > 0 -> wrem[m]-- :: else -> skip fi;
			if :: wlc[m] != 0 && wrem[m] == 0 -> dropLock(m) :: else -> skip fi;
			if :: mrem[m] > 0 -> mrem[m]-- :: else -> skip fi;
			if :: val[m] != 0 && mrem[m] == 0 ->
#if MUTANT == 7
				wf = MAX(wf, tok[m]);
#endif
				val[m] = 0; tok[m] = 0
			:: else -> skip fi
		}
		m = 0;
		for (m : 0 .. CL-1) {
			if :: crem[m] > 0 -> crem[m]-- :: else -> skip fi;
			if :: ph[m] == HOLD && crem[m] == 0 -> ph[m] = IDLE :: else -> skip fi;
			/* a Lock whose client lease ran out while committing can no
			 * longer hold (its commits may still land) */
			if :: ph[m] == COMMIT && crem[m] == 0 -> ph[m] = IDLE; endTxn(m) :: else -> skip fi
		}
		m = 0;
		norm()
	}
	CLIENT(0) CLIENT(1)
	PROBE(0,1) PROBE(0,2) PROBE(1,2)
	RESTART(0) RESTART(1) RESTART(2)
	COPY(0,1) COPY(0,2) COPY(1,0) COPY(1,2) COPY(2,0) COPY(2,1)
	od
}
