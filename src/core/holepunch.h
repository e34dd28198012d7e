/* SPDX-License-Identifier: MIT */
/*
 * The hole-punching scheduler of one remote endpoint (docs/protocol/disco.md,
 * "Hole punching"; docs/ARCHITECTURE.md section 4), sans-IO:
 * it decides when a round runs; the io layer runs it (CallMeMaybe with our
 * candidates through the relay and a disco Ping to every remote candidate,
 * at once) when kw__holepunch_poll says so. Time is passed in (ns,
 * monotonic; a time earlier than one seen before is treated as that one).
 *
 * Rules (the constants are the contract):
 *  - Rounds run only while the remote has at least one connection.
 *  - Triggers: a connection added, new local candidates, new remote
 *    candidates, a major network change, the selected direct path lost.
 *    Each asks for a round now.
 *  - Throttle: with no new candidates (local or remote, a network change or
 *    a lost direct path) since the last round, a round starts at most every
 *    KW_HP_MIN_INTERVAL_NS: a trigger earlier than that is deferred to
 *    last round + KW_HP_MIN_INTERVAL_NS (not dropped). New candidates
 *    bypass the throttle.
 *  - Upgrade check: KW_HP_UPGRADE_NS after the last round, if no connection
 *    has a direct path with RTT <= KW_HP_GOOD_RTT_NS (the caller reports it
 *    with kw__holepunch_set_good_direct), a round runs; otherwise the check
 *    repeats KW_HP_UPGRADE_NS later.
 *  - A transient failure of a round (e.g. the relay send failed) retries it
 *    KW_HP_RETRY_NS later, regardless of the throttle.
 *  - Recovery: after the selected direct path was lost, besides the round
 *    at once, KW_HP_RECOVER_ROUNDS more run KW_HP_RECOVER_FIRST_NS later,
 *    then at doubling intervals (5, 15, 35 s after the loss), until the
 *    caller reports a direct path again (kw__holepunch_direct_again): a
 *    short outage should not cost a minute on the relay waiting for the
 *    upgrade check. Every round still restarts the upgrade check's 60 s.
 */
#ifndef KW_CORE_HOLEPUNCH_H
#define KW_CORE_HOLEPUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KW_HP_MIN_INTERVAL_NS (5ull * 1000000000ull)
#define KW_HP_UPGRADE_NS (60ull * 1000000000ull)
#define KW_HP_GOOD_RTT_NS (10ull * 1000000ull)
#define KW_HP_RETRY_NS (100ull * 1000000ull)
#define KW_HP_RECOVER_FIRST_NS (5ull * 1000000000ull)
#define KW_HP_RECOVER_ROUNDS 3
#define KW_HP_NEVER UINT64_MAX

typedef struct kw__holepunch {
  uint64_t now;          /* latest time seen */
  size_t n_conns;        /* connections of the remote */
  bool have_last;        /* a round has run */
  uint64_t last;         /* when the last round started */
  bool pending;          /* a round is wanted ... */
  uint64_t due;          /* ... at this time */
  bool fresh;            /* new candidates / network change since last round */
  bool good_direct;      /* a connection has a direct path with RTT <= 10 ms */
  uint64_t next_upgrade; /* KW_HP_NEVER when not armed */
  int recover_left;      /* recovery rounds still to run */
  uint64_t recover_at;   /* ... the next one then */
  uint64_t recover_step; /* ... and the gap before the one after */
  uint64_t rounds;       /* rounds started, for counters */
  bool have_answer;      /* a CallMeMaybe was answered ... */
  uint64_t last_answer;  /* ... then */
} kw__holepunch;

/* Starts with no connection and no round. */
void kw__holepunch_init(kw__holepunch *hp);

/* Call after a connection to the remote was added / removed. */
void kw__holepunch_conn_added(kw__holepunch *hp, uint64_t now);
void kw__holepunch_conn_removed(kw__holepunch *hp, uint64_t now);
/* Call when our candidate set gained addresses. */
void kw__holepunch_local_candidates(kw__holepunch *hp, uint64_t now);
/* Call when the remote's candidate set gained addresses. */
void kw__holepunch_remote_candidates(kw__holepunch *hp, uint64_t now);
/* Call on a major network change (interface up/down, new default route). */
void kw__holepunch_network_change(kw__holepunch *hp, uint64_t now);
/* Call when the selected direct path went silent and was given up. */
void kw__holepunch_path_lost(kw__holepunch *hp, uint64_t now);
/* Call when a direct path is selected again: recovery rounds stop. */
void kw__holepunch_direct_again(kw__holepunch *hp);
/* Call when a round could not be carried out (transient failure). */
void kw__holepunch_round_failed(kw__holepunch *hp, uint64_t now);
/* Call whenever "some connection has a direct path with RTT <= 10 ms"
 * changes (see kw__paths_has_direct_within). */
void kw__holepunch_set_good_direct(kw__holepunch *hp, bool good);

/* When kw__holepunch_poll next has something to do (KW_HP_NEVER: nothing
 * scheduled). */
uint64_t kw__holepunch_next_deadline(const kw__holepunch *hp);
/* Returns true if a round is to run now (and records it as started). */
bool kw__holepunch_poll(kw__holepunch *hp, uint64_t now);

/* ---- answering a CallMeMaybe ----------------------------------------------
 * A CallMeMaybe that did not run a round of ours is answered (a Ping to
 * every candidate of the sender: the simultaneous open) at most once per
 * KW_HP_ANSWER_MIN_NS; within that the re-pings of the last answer are all
 * there is, so a flood of CallMeMaybes buys nothing new. (Connections and
 * rounds do not matter: the CallMeMaybe may arrive before our side of the
 * handshake completes, or just after a round of ours that pinged before
 * the remote's NAT was open.) True (and the answer recorded) if one is to
 * be sent now. */
#define KW_HP_ANSWER_MIN_NS (2ull * 1000000000ull)
bool kw__holepunch_answer(kw__holepunch *hp, uint64_t now);

/* ---- probe budget -----------------------------------------------------------
 * Token buckets bounding what a remote can make this endpoint send toward
 * addresses that are not validated paths (the Pings of hole punching to
 * candidates a CallMeMaybe or a Ping named): those addresses may belong to
 * third parties, so whatever the remotes send, the endpoint reflects at
 * most this much toward them:
 *  - per remote: bursts of KW_PROBE_REMOTE_BURST_PKTS packets /
 *    KW_PROBE_REMOTE_BURST_BYTES bytes, refilled at KW_PROBE_REMOTE_PKTS_S
 *    packets / KW_PROBE_REMOTE_BYTES_S bytes per second;
 *  - for the whole endpoint, all remotes together: KW_PROBE_EP_*.
 * A probe is sent only if both of its remote's buckets and both of the
 * endpoint's have room; it then takes from all four. Over any interval of T
 * seconds one remote gets at most BURST + RATE * T. Time in ns, monotonic
 * (an earlier time than one seen before counts as that one). */
#define KW_PROBE_REMOTE_BURST_PKTS 32
#define KW_PROBE_REMOTE_PKTS_S 8
#define KW_PROBE_REMOTE_BURST_BYTES 4608 /* 32 Pings of 144 bytes */
#define KW_PROBE_REMOTE_BYTES_S 1152
#define KW_PROBE_EP_BURST_PKTS 256
#define KW_PROBE_EP_PKTS_S 64
#define KW_PROBE_EP_BURST_BYTES 36864
#define KW_PROBE_EP_BYTES_S 9216

typedef struct kw__tbucket {
  uint64_t burst;  /* capacity, tokens */
  uint64_t rate;   /* tokens per second */
  uint64_t level;  /* tokens x 1e9 (token-nanoseconds: exact refills) */
  uint64_t last;   /* time of the last refill */
  bool started;
} kw__tbucket;

/* A full bucket of `burst` tokens refilled at `rate` per second. */
void kw__tbucket_init(kw__tbucket *b, uint64_t burst, uint64_t rate);
/* Whole tokens available at `now` (after refilling). */
uint64_t kw__tbucket_avail(kw__tbucket *b, uint64_t now);
/* Takes `n` tokens if available at `now`; false (nothing taken) if not. */
bool kw__tbucket_take(kw__tbucket *b, uint64_t now, uint64_t n);

typedef struct kw__probe_budget {
  kw__tbucket pkts, bytes;
  uint64_t refused; /* probes refused, for logs and counters */
} kw__probe_budget;

/* The per-remote / per-endpoint budget with the constants above. */
void kw__probe_budget_init_remote(kw__probe_budget *b);
void kw__probe_budget_init_endpoint(kw__probe_budget *b);
/* True, and a packet of `bytes` taken from both budgets, if both have room
 * at `now`; false (nothing taken, `refused` counted in both) otherwise.
 * `ep` may be NULL (only the remote's budget applies). */
bool kw__probe_allow(kw__probe_budget *remote, kw__probe_budget *ep,
                     uint64_t now, size_t bytes);

#endif /* KW_CORE_HOLEPUNCH_H */
