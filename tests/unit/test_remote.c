/* SPDX-License-Identifier: MIT */
/* Unit tests of core/remote: one remote's path policy (src/core/remote.h,
 * docs/ARCHITECTURE.md section 4), rule by rule, on a hand-advanced clock
 * with a recording callback table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/remote.h"
#include "core/sockaddr.h"

#define MS 1000000ull
#define S 1000000000ull
#define T0 (1000 * S)

/* ---- a recording caller ------------------------------------------------- */

typedef struct rec {
  size_t pings, probes, cmms, changes, known, idle, rounds, answers, limited;
  size_t rebinds, lost, selected, rechecks;
  bool lost_under_load; /* the last DIRECT_LOST note's b */
  unsigned lost_why;
  kw_sockaddr ping_to[64];
  uint8_t ping_tx[64][KW_DISCO_TXID_LEN];
  bool refuse_probes; /* the probe budget is spent */
  bool cmm_fails;     /* the relay cannot take a CallMeMaybe */
  uint8_t rnd;
  kw__rp *freed; /* idle_expired was called for it */
  /* birthday probing */
  size_t bsent, bstarts, bhits, bmisses, bcloses;
  unsigned bkeep, bmaxsock;
  unsigned bsock[2304];
  kw_sockaddr bto[2304];
  uint8_t btx[2304][KW_DISCO_TXID_LEN];
} rec;

static bool cb_bday_send(void *u, unsigned sock, const kw_sockaddr *to,
                         const uint8_t tx[KW_DISCO_TXID_LEN]) {
  rec *r = u;
  if (r->bsent < 2304) {
    r->bsock[r->bsent] = sock;
    r->bto[r->bsent] = *to;
    memcpy(r->btx[r->bsent], tx, KW_DISCO_TXID_LEN);
  }
  r->bsent++;
  if (sock > r->bmaxsock)
    r->bmaxsock = sock;
  return true;
}

static void cb_bday_close(void *u, unsigned keep) {
  rec *r = u;
  r->bcloses++;
  r->bkeep = keep;
}

static bool cb_ping(void *u, const kw_sockaddr *to,
                    const uint8_t tx[KW_DISCO_TXID_LEN], bool probe) {
  rec *r = u;
  if (probe && r->refuse_probes)
    return false;
  if (r->pings < 64) {
    r->ping_to[r->pings] = *to;
    memcpy(r->ping_tx[r->pings], tx, KW_DISCO_TXID_LEN);
  }
  r->pings++;
  r->probes += probe;
  return true;
}

static bool cb_cmm(void *u) {
  rec *r = u;
  r->cmms++;
  return !r->cmm_fails;
}

static void cb_changed(void *u) {
  ((rec *)u)->changes++;
}

static void cb_known(void *u, const kw_sockaddr *a) {
  (void)a;
  ((rec *)u)->known++;
}

static void cb_idle(void *u) {
  ((rec *)u)->idle++;
}

static void cb_random(void *u, uint8_t *buf, size_t n) {
  rec *r = u;
  for (size_t i = 0; i < n; i++)
    buf[i] = r->rnd++;
}

static void cb_note(void *u, kw__rp_note what, const kw_sockaddr *a, uint64_t x,
                    uint64_t y) {
  rec *r = u;
  (void)a;
  (void)x;
  (void)y;
  switch (what) {
  case KW_RP_NOTE_ROUND:
    r->rounds++;
    break;
  case KW_RP_NOTE_ANSWER:
    r->answers++;
    break;
  case KW_RP_NOTE_PROBE_LIMITED:
    r->limited++;
    break;
  case KW_RP_NOTE_REBIND:
    r->rebinds++;
    break;
  case KW_RP_NOTE_DIRECT_LOST:
    r->lost++;
    r->lost_under_load = y == KW_RP_LOST_LOAD;
    r->lost_why = (unsigned)y;
    break;
  case KW_RP_NOTE_SELECTED:
    r->selected++;
    break;
  case KW_RP_NOTE_BDAY_START:
    r->bstarts++;
    break;
  case KW_RP_NOTE_BDAY_HIT:
    r->bhits++;
    break;
  case KW_RP_NOTE_BDAY_MISS:
    r->bmisses++;
    break;
  }
}

static void cb_recheck(void *u) {
  ((rec *)u)->rechecks++;
}

static const kw__rp_cbs cbs = {
    .send_ping = cb_ping,
    .send_call_me_maybe = cb_cmm,
    .path_changed = cb_changed,
    .path_known = cb_known,
    .idle_expired = cb_idle,
    .random = cb_random,
    .note = cb_note,
    .bday_send = cb_bday_send,
    .bday_close = cb_bday_close,
    .recheck = cb_recheck,
};
/* No optional callbacks: path_changed, path_known, idle_expired, note,
 * bday_*. */
static const kw__rp_cbs bare = {
    .send_ping = cb_ping, .send_call_me_maybe = cb_cmm, .random = cb_random};

static kw_sockaddr A(const char *s) {
  kw_sockaddr a;
  assert_int_equal(kw_sockaddr_parse(s, &a), KW_OK);
  return a;
}

static const kw__path *path_of(const kw__rp *r, const char *s) {
  kw_sockaddr a = A(s);
  return kw__paths_get(&r->pt, kw__paths_find(&r->pt, &a));
}

/* Index of the last Ping sent to `s`, -1 if none. */
static int last_ping_to(const rec *c, const char *s) {
  kw_sockaddr a = A(s);
  for (int i = (int)(c->pings < 64 ? c->pings : 64) - 1; i >= 0; i--)
    if (kw__sockaddr_equal(&c->ping_to[i], &a))
      return i;
  return -1;
}

/* Answers the last Ping to `s` with a Pong at `now`. */
static bool pong(kw__rp *r, rec *c, const char *s, uint64_t now) {
  int i = last_ping_to(c, s);
  assert_true(i >= 0);
  kw_sockaddr a = A(s);
  uint64_t rtt = 0;
  return kw__rp_pong_received(r, c->ping_tx[i], &a, now, &rtt);
}

/* A keyed remote with one connection that came up on the relay at T0
 * (its first round ran: no candidates yet). */
static void on_relay(kw__rp *r, rec *c) {
  memset(c, 0, sizeof *c);
  kw__rp_init(r, &cbs, c);
  kw__rp_set_keyed(r, T0);
  assert_int_equal(kw__rp_conn_open(r), 0);
  kw__rp_packet(r, NULL, T0);
  assert_true(kw__rp_on_relay(r));
  kw__rp_conn_up(r, T0);
  assert_int_equal(c->rounds, 1);
  assert_int_equal(c->cmms, 1);
}

/* ... and a direct path 198.19.0.2:1000 validated by a Pong at T0 + 1 s. */
static void on_direct(kw__rp *r, rec *c) {
  on_relay(r, c);
  kw_sockaddr d = A("198.19.0.2:1000");
  assert_true(kw__rp_candidate(r, &d, KW_PSRC_APP, T0));
  kw__rp_local_candidates(r, T0 + 1 * S); /* a round: pings it */
  assert_true(pong(r, c, "198.19.0.2:1000", T0 + 1 * S + 40 * MS));
  assert_non_null(kw__rp_direct(r));
  assert_true(kw__sockaddr_equal(kw__rp_direct(r), &d));
}

/* ---- life cycle --------------------------------------------------------- */

static void test_unkeyed_remote_does_nothing(void **state) {
  (void)state;
  rec c;
  memset(&c, 0, sizeof c);
  kw__rp r;
  kw__rp_init(&r, &cbs, &c);
  kw_sockaddr a = A("198.19.0.2:1000");
  kw__rp_conn_open(&r);
  kw__rp_conn_up(&r, T0);
  kw__rp_ping_received(&r, &a, T0);
  kw__rp_call_me_maybe(&r, &a, 1, T0);
  kw__rp_local_candidates(&r, T0);
  assert_int_equal(c.pings + c.cmms, 0);
  /* without a key nothing is due (no busy timer) */
  assert_int_equal(kw__rp_next_deadline(&r), KW_RP_NEVER);
  kw__rp_handle_timeout(&r, T0 + 10 * S);
  assert_int_equal(c.pings + c.cmms, 0);
  /* the key arrives: the pending round runs at once */
  kw__rp_set_keyed(&r, T0 + 10 * S);
  assert_int_equal(kw__rp_next_deadline(&r), T0);
  kw__rp_handle_timeout(&r, T0 + 10 * S);
  assert_int_equal(c.rounds, 1);
  kw__rp_free(&r);
}

static void test_rtt_slots_and_idle_expiry(void **state) {
  (void)state;
  rec c;
  memset(&c, 0, sizeof c);
  kw__rp r;
  kw__rp_init(&r, &cbs, &c);
  assert_int_equal(kw__rp_next_deadline(&r), KW_RP_NEVER);
  int s[KW_RP_RTT_SLOT_DISCO + 1];
  for (int i = 0; i <= KW_RP_RTT_SLOT_DISCO; i++)
    s[i] = kw__rp_conn_open(&r);
  for (int i = 0; i < KW_RP_RTT_SLOT_DISCO; i++)
    assert_int_equal(s[i], i);
  /* the Pong slot is never a connection's: one too many gets none */
  assert_int_equal(s[KW_RP_RTT_SLOT_DISCO], -1);
  assert_int_equal(r.nconns, KW_RP_RTT_SLOT_DISCO + 1);
  /* a freed slot is reused */
  kw__rp_conn_close(&r, 3, T0);
  assert_int_equal(kw__rp_conn_open(&r), 3);
  for (int i = 0; i <= KW_RP_RTT_SLOT_DISCO; i++)
    kw__rp_conn_close(&r, s[i], T0 + 1 * S);
  assert_int_equal(r.nconns, 0);
  assert_int_equal(r.rtt_slots, 0);
  /* idle: freed KW_RP_IDLE_NS after the last connection went */
  assert_int_equal(kw__rp_next_deadline(&r), T0 + 1 * S + KW_RP_IDLE_NS);
  kw__rp_handle_timeout(&r, T0 + 1 * S + KW_RP_IDLE_NS - 1);
  assert_int_equal(c.idle, 0);
  kw__rp_handle_timeout(&r, T0 + 1 * S + KW_RP_IDLE_NS);
  assert_int_equal(c.idle, 1);
  /* used again: no longer idle */
  kw__rp_rerace(&r, T0 + 2 * S);
  assert_int_equal(kw__rp_next_deadline(&r), KW_RP_NEVER);
  /* kw__rp_idle restarts it (a dial that failed), never with connections */
  kw__rp_idle(&r, 0);
  assert_int_equal(r.idle_since, 1);
  kw__rp_conn_open(&r);
  kw__rp_idle(&r, T0 + 3 * S);
  assert_int_equal(r.idle_since, 0);
  /* closing slot -1 or one never held changes no slot */
  kw__rp_conn_close(&r, -1, 0);
  assert_int_equal(r.idle_since, 1);
  kw__rp_conn_close(&r, 5, T0); /* no connection left: nothing to count */
  assert_int_equal(r.nconns, 0);
  kw__rp_free(&r);
}

static void test_optional_callbacks_may_be_null(void **state) {
  (void)state;
  rec c;
  memset(&c, 0, sizeof c);
  kw__rp r;
  kw__rp_init(&r, &bare, &c);
  kw__rp_set_keyed(&r, T0);
  kw__rp_conn_open(&r);
  kw__rp_packet(&r, NULL, T0);
  kw__rp_conn_up(&r, T0);
  kw_sockaddr a = A("198.19.0.2:1000");
  kw__rp_packet(&r, &a, T0 + 1);
  assert_non_null(kw__rp_direct(&r));
  kw__rp_conn_close(&r, 0, T0 + 2);
  kw__rp_handle_timeout(&r, T0 + 2 + KW_RP_IDLE_NS);
  kw__rp_free(&r);
}

/* ---- candidates and rounds ---------------------------------------------- */

static void test_rule_candidate_new_once_and_path_known(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000");
  assert_true(kw__rp_candidate(&r, &a, KW_PSRC_APP, T0));
  assert_false(kw__rp_candidate(&r, &a, KW_PSRC_DISCO, T0));
  assert_int_equal(c.known, 1);
  /* the relay slot is no direct path: not "known" */
  assert_false(kw__rp_candidate(&r, NULL, KW_PSRC_APP, T0));
  assert_int_equal(c.known, 1);
  kw__rp_free(&r);
}

static void test_rule_round_pings_every_usable_candidate(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000"), b = A("198.19.0.3:1000");
  kw__rp_candidate(&r, &a, KW_PSRC_APP, T0);
  kw__rp_candidate(&r, &b, KW_PSRC_APP, T0);
  (void)kw__paths_set_state(&r.pt, kw__paths_find(&r.pt, &b), KW_PST_UNUSABLE,
                            T0);
  size_t p0 = c.pings, m0 = c.cmms;
  kw__rp_local_candidates(&r, T0 + 1 * S); /* fresh: no throttle */
  assert_int_equal(c.rounds, 2);
  assert_int_equal(c.cmms, m0 + 1);
  assert_int_equal(c.pings, p0 + 1); /* the unusable one is skipped */
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_VALIDATING);
  assert_true(c.probes >= 1); /* not validated: out of the probe budget */
  kw__rp_free(&r);
}

static void test_rule_repings_then_settle(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000");
  kw__rp_candidate(&r, &a, KW_PSRC_APP, T0);
  uint64_t t = T0 + 1 * S;
  kw__rp_local_candidates(&r, t);
  assert_int_equal(c.pings, 1);
  /* KW_RP_PUNCH_TRIES in all, KW_RP_PUNCH_RETRY_NS apart */
  for (int k = 1; k < KW_RP_PUNCH_TRIES; k++) {
    assert_int_equal(kw__rp_next_deadline(&r), t + k * KW_RP_PUNCH_RETRY_NS);
    kw__rp_handle_timeout(&r, t + k * KW_RP_PUNCH_RETRY_NS - 1);
    assert_int_equal(c.pings, (size_t)k);
    kw__rp_handle_timeout(&r, t + k * KW_RP_PUNCH_RETRY_NS);
    assert_int_equal(c.pings, (size_t)k + 1);
  }
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_VALIDATING);
  /* a retry interval after the last re-ping: the silent one is retired */
  uint64_t end = t + KW_RP_PUNCH_TRIES * KW_RP_PUNCH_RETRY_NS;
  assert_int_equal(kw__rp_next_deadline(&r), end);
  kw__rp_handle_timeout(&r, end);
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_INACTIVE);
  assert_int_equal(c.pings, KW_RP_PUNCH_TRIES);
  /* nothing left of the round: the next deadline is the upgrade check */
  assert_int_equal(kw__rp_next_deadline(&r), t + KW_HP_UPGRADE_NS);
  kw__rp_free(&r);
}

static void test_rule_repings_stop_once_direct(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000"), b = A("198.19.0.3:1000");
  kw__rp_candidate(&r, &a, KW_PSRC_APP, T0);
  kw__rp_candidate(&r, &b, KW_PSRC_APP, T0);
  uint64_t t = T0 + 1 * S;
  kw__rp_local_candidates(&r, t);
  assert_int_equal(c.pings, 2);
  assert_true(pong(&r, &c, "198.19.0.2:1000", t + 40 * MS));
  size_t p = c.pings;
  kw__rp_handle_timeout(&r, t + KW_RP_PUNCH_RETRY_NS);
  assert_int_equal(c.pings, p); /* a direct path is selected: no re-ping */
  kw__rp_free(&r);
}

static void test_rule_probe_refused_left_for_later(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000");
  kw__rp_candidate(&r, &a, KW_PSRC_DISCO, T0);
  c.refuse_probes = true;
  kw__rp_local_candidates(&r, T0 + 1 * S);
  assert_int_equal(c.pings, 0);
  assert_int_equal(c.limited, 1);
  /* not pinged: left unknown, never retired as silent */
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_UNKNOWN);
  kw__rp_free(&r);
}

static void test_rule_round_failed_retries_soon(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  c.cmm_fails = true;
  kw__rp_local_candidates(&r, T0 + 1 * S);
  assert_int_equal(c.rounds, 2);
  assert_int_equal(kw__rp_next_deadline(&r), T0 + 1 * S + KW_HP_RETRY_NS);
  c.cmm_fails = false;
  kw__rp_handle_timeout(&r, T0 + 1 * S + KW_HP_RETRY_NS);
  assert_int_equal(c.rounds, 3);
  kw__rp_free(&r);
}

static void test_rule_network_change_pings_selected_too(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  size_t p = c.pings;
  kw__rp_network_change(&r, T0 + 2 * S);
  assert_int_equal(c.pings, p + 1);
  assert_int_equal(last_ping_to(&c, "198.19.0.2:1000"), (int)p);
  kw__rp_free(&r);
}

/* ---- Pings, Pongs, CallMeMaybe ------------------------------------------ */

static void test_rule_ping_from_new_address(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.9:4000");
  size_t rounds = c.rounds;
  kw__rp_ping_received(&r, &a, T0 + 2 * S);
  /* a candidate now, pinged back, and a round for it is due now */
  assert_non_null(path_of(&r, "198.19.0.9:4000"));
  assert_true(last_ping_to(&c, "198.19.0.9:4000") >= 0);
  assert_true(kw__rp_next_deadline(&r) <= T0 + 2 * S);
  kw__rp_handle_timeout(&r, T0 + 2 * S);
  assert_int_equal(c.rounds, rounds + 1);
  assert_true(last_ping_to(&c, "198.19.0.9:4000") >= 0);
  /* again from the same (unvalidated) address: pinged back, no round */
  size_t p = c.pings;
  kw__rp_ping_received(&r, &a, T0 + 3 * S);
  assert_int_equal(c.rounds, rounds + 1);
  assert_int_equal(c.pings, p + 1);
  kw__rp_free(&r);
}

static void test_rule_ping_on_validated_path_ignored(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  kw_sockaddr d = A("198.19.0.2:1000");
  size_t p = c.pings, rounds = c.rounds;
  kw__rp_ping_received(&r, &d, T0 + 2 * S);
  assert_int_equal(c.pings, p);
  assert_int_equal(c.rounds, rounds);
  kw__rp_free(&r);
}

static void test_rule_pong_must_match_tx_and_address(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000"), other = A("198.19.0.3:1000");
  kw__rp_candidate(&r, &a, KW_PSRC_APP, T0);
  kw__rp_local_candidates(&r, T0 + 1 * S);
  int i = last_ping_to(&c, "198.19.0.2:1000");
  uint8_t wrong[KW_DISCO_TXID_LEN];
  memset(wrong, 0xee, sizeof wrong);
  uint64_t rtt = 0;
  assert_false(kw__rp_pong_received(&r, wrong, &a, T0 + 2 * S, &rtt));
  assert_false(
      kw__rp_pong_received(&r, c.ping_tx[i], &other, T0 + 2 * S, &rtt));
  assert_true(kw__rp_on_relay(&r));
  assert_true(
      kw__rp_pong_received(&r, c.ping_tx[i], &a, T0 + 1 * S + 42 * MS, &rtt));
  assert_int_equal(rtt, 42 * MS);
  /* validated with its RTT in the disco slot, and selected */
  const kw__path *p = path_of(&r, "198.19.0.2:1000");
  assert_int_equal(p->state, KW_PST_VALIDATED);
  assert_int_equal(p->rtt[KW_RP_RTT_SLOT_DISCO], 42 * MS);
  assert_true(kw__sockaddr_equal(kw__rp_direct(&r), &a));
  assert_false(kw__rp_on_relay(&r));
  /* once: a replayed Pong matches nothing */
  assert_false(kw__rp_pong_received(&r, c.ping_tx[i], &a, T0 + 3 * S, NULL));
  kw__rp_free(&r);
}

static void test_rule_pong_revives_inactive_path(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000");
  kw__rp_candidate(&r, &a, KW_PSRC_APP, T0);
  uint64_t t = T0 + 1 * S;
  kw__rp_local_candidates(&r, t);
  for (int k = 1; k <= KW_RP_PUNCH_TRIES; k++)
    kw__rp_handle_timeout(&r, t + k * KW_RP_PUNCH_RETRY_NS);
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_INACTIVE);
  /* a late Pong to a Ping of the ring */
  assert_true(pong(&r, &c, "198.19.0.2:1000", t + 4 * S));
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_VALIDATED);
  assert_non_null(kw__rp_direct(&r));
  kw__rp_free(&r);
}

static void test_rule_ping_ring_overwrites_oldest(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000");
  kw__rp_ping_received(&r, &a, T0 + 1 * S); /* ping 0 */
  uint8_t first[KW_DISCO_TXID_LEN];
  memcpy(first, c.ping_tx[0], sizeof first);
  for (int k = 0; k < KW_RP_PINGS; k++) /* ... KW_RP_PINGS more */
    kw__rp_ping_received(&r, &a, T0 + 2 * S + (uint64_t)k);
  assert_false(kw__rp_pong_received(&r, first, &a, T0 + 3 * S, NULL));
  assert_true(pong(&r, &c, "198.19.0.2:1000", T0 + 3 * S));
  kw__rp_free(&r);
}

static void test_rule_call_me_maybe_new_candidates_round_now(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr l[2] = {A("198.19.0.2:1000"), A("198.19.0.3:1000")};
  kw__rp_call_me_maybe(&r, l, 2, T0 + 1 * S);
  assert_int_equal(c.rounds, 2); /* ours, with every candidate, now */
  assert_int_equal(c.cmms, 2);
  assert_int_equal(c.pings, 2);
  assert_int_equal(c.answers, 0);
  kw__rp_free(&r);
}

static void test_rule_call_me_maybe_known_answered_by_pings(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  kw_sockaddr b = A("198.19.0.3:1000");
  kw__rp_candidate(&r, &b, KW_PSRC_APP, T0);
  kw_sockaddr l[2] = {A("198.19.0.2:1000"), b};
  size_t p = c.pings, m = c.cmms;
  kw__rp_call_me_maybe(&r, l, 2, T0 + 10 * S);
  /* no round (nothing new): Pings to the candidates not validated */
  assert_int_equal(c.cmms, m);
  assert_int_equal(c.answers, 1);
  assert_int_equal(c.pings, p + 1);
  assert_int_equal(last_ping_to(&c, "198.19.0.3:1000"), (int)p);
  /* with re-pings: the answer is a round of Pings */
  assert_int_equal(r.punch_tries_left, KW_RP_PUNCH_TRIES - 1);
  /* a second one within KW_HP_ANSWER_MIN_NS: nothing */
  kw__rp_call_me_maybe(&r, l, 2, T0 + 11 * S);
  assert_int_equal(c.answers, 1);
  assert_int_equal(c.pings, p + 1);
  kw__rp_free(&r);
}

static void test_rule_answer_pings_path_known_by_packets_only(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  /* selected by connection packets, no Pong yet: the answer pings it (its
   * Pong tells us our address as the remote sees it) */
  kw_sockaddr q = A("198.19.0.4:1000");
  kw__rp_packet(&r, &q, T0 + 1 * S);
  assert_true(kw__sockaddr_equal(kw__rp_direct(&r), &q));
  size_t p = c.pings;
  kw__rp_call_me_maybe(&r, &q, 1, T0 + 1 * S + 10 * MS);
  assert_int_equal(c.answers, 1);
  assert_int_equal(c.pings, p + 1);
  assert_int_equal(last_ping_to(&c, "198.19.0.4:1000"), (int)p);
  /* once it answered, a later answer leaves it alone */
  assert_true(pong(&r, &c, "198.19.0.4:1000", T0 + 1 * S + 20 * MS));
  p = c.pings;
  kw__rp_call_me_maybe(&r, &q, 1, T0 + 4 * S);
  assert_int_equal(c.answers, 2);
  assert_int_equal(c.pings, p);
  kw__rp_free(&r);
}

/* ---- connection packets: validation and rebinding ------------------------ */

static void test_rule_packet_validates_its_path(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  size_t changes = c.changes;
  kw__rp_packet(&r, NULL, T0 + 1); /* the relay again: nothing new */
  assert_int_equal(c.changes, changes);
  kw_sockaddr a = A("198.19.0.2:1000");
  kw__rp_packet(&r, &a, T0 + 1 * S);
  const kw__path *p = path_of(&r, "198.19.0.2:1000");
  assert_int_equal(p->state, KW_PST_VALIDATED);
  assert_true(p->sources & KW_PSRC_CONN);
  assert_int_equal(c.known, 1);
  assert_true(kw__sockaddr_equal(kw__rp_direct(&r), &a));
  assert_int_equal(c.changes, changes + 1);
  /* on the selected path: only liveness */
  kw__rp_packet(&r, &a, T0 + 2 * S);
  assert_int_equal(r.direct_rx_ns, T0 + 2 * S);
  assert_int_equal(c.changes, changes + 1);
  kw__rp_free(&r);
}

static void test_rule_rebind_after_quiet(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000"), b = A("198.19.0.2:2000");
  kw__rp_packet(&r, &a, T0 + 1 * S);
  /* another validated address while the selected one is not quiet: kept */
  kw__rp_packet(&r, &b, T0 + 1 * S + 10 * MS);
  assert_int_equal(c.rebinds, 0);
  kw__rp_packet(&r, &a, T0 + 1 * S + 20 * MS);
  uint64_t last = T0 + 1 * S + 20 * MS;
  kw__rp_packet(&r, &b, last + KW_RP_REBIND_QUIET_NS - 1);
  assert_int_equal(c.rebinds, 0);
  /* quiet KW_RP_REBIND_QUIET_NS: the remote's NAT rebound; follow it */
  kw__rp_packet(&r, &b, last + KW_RP_REBIND_QUIET_NS);
  assert_int_equal(c.rebinds, 1);
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_INACTIVE);
  assert_true(kw__sockaddr_equal(kw__rp_direct(&r), &b));
  kw__rp_free(&r);
}

/* ---- liveness ------------------------------------------------------------ */

static void test_rule_liveness_pings_then_falls_back(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t sel = r.selected_ns;
  assert_int_equal(r.direct_rx_ns, sel);
  /* quiet KW_RP_DIRECT_QUIET_NS: a Ping, then one every second */
  uint64_t q = sel + KW_RP_DIRECT_QUIET_NS + 1;
  assert_true(kw__rp_next_deadline(&r) <= q);
  size_t p = c.pings;
  kw__rp_handle_timeout(&r, q - 1);
  assert_int_equal(c.pings, p);
  kw__rp_handle_timeout(&r, q);
  assert_int_equal(c.pings, p + 1);
  assert_int_equal(last_ping_to(&c, "198.19.0.2:1000"), (int)p);
  assert_int_equal(c.probes, 1); /* validated: outside the probe budget */
  assert_true(kw__rp_next_deadline(&r) <= q + KW_RP_DIRECT_PING_EVERY_NS + 1);
  kw__rp_handle_timeout(&r, q + KW_RP_DIRECT_PING_EVERY_NS);
  assert_int_equal(c.pings, p + 1);
  kw__rp_handle_timeout(&r, q + KW_RP_DIRECT_PING_EVERY_NS + 1);
  assert_int_equal(c.pings, p + 2);
  /* a packet on it: quiet again from there */
  kw__rp_packet(&r, kw__rp_direct(&r), q + 1500 * MS);
  kw__rp_handle_timeout(&r, q + 2 * KW_RP_DIRECT_PING_EVERY_NS + 2);
  assert_int_equal(c.pings, p + 2);
  /* silent KW_RP_DIRECT_DEAD_NS: inactive, the relay again, a round */
  uint64_t dead = q + 1500 * MS + KW_RP_DIRECT_DEAD_NS + 1;
  size_t rounds = c.rounds;
  kw__rp_handle_timeout(&r, dead);
  assert_int_equal(c.lost, 1);
  assert_true(kw__rp_on_relay(&r));
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_INACTIVE);
  assert_int_equal(c.rounds, rounds + 1);
  /* and recovery rounds are armed */
  assert_int_equal(r.hp.recover_left, KW_HP_RECOVER_ROUNDS);
  kw__rp_free(&r);
}

static void test_rule_pong_on_selected_path_is_liveness(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t q = r.selected_ns + KW_RP_DIRECT_QUIET_NS + 1;
  kw__rp_handle_timeout(&r, q);
  assert_true(pong(&r, &c, "198.19.0.2:1000", q + 40 * MS));
  assert_int_equal(r.direct_rx_ns, q + 40 * MS);
  kw__rp_free(&r);
}

/* ---- liveness under load (remote.h) ------------------------------------- */

/* A transfer on the selected direct path from `from` to `to`: a send every
 * ms and, unless `silent` or the packet is lost (1 in `loss_every` by a
 * fixed pattern; 0: none), a packet heard back; the policy's deadlines run
 * as the caller runs them. Returns the time reached. */
static uint64_t load(kw__rp *r, uint64_t from, uint64_t to, bool silent,
                     unsigned loss_every, uint64_t *seed) {
  uint64_t t = from;
  for (; t < to; t += 1 * MS) {
    const kw_sockaddr *d = kw__rp_direct(r);
    if (d)
      kw__rp_sent(r, t);
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    bool lost = loss_every && (*seed >> 33) % loss_every == 0;
    if (d && !silent && !lost)
      kw__rp_packet(r, d, t);
    while (kw__rp_next_deadline(r) <= t)
      kw__rp_handle_timeout(r, t);
  }
  return t;
}

static void test_rule_busy_silence_probes_then_falls_back(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t seed = 1, t0 = r.selected_ns;
  uint64_t t = load(&r, t0, t0 + 3 * S, false, 0, &seed);
  assert_int_equal(c.lost, 0);
  size_t pings = c.pings;
  /* the path goes dead: our sends go unanswered from t on */
  uint64_t first = t; /* the first unanswered send */
  kw__rp_sent(&r, first);
  assert_int_equal(r.unanswered_ns, first);
  assert_int_equal(kw__rp_next_deadline(&r), first + KW_RP_BUSY_QUIET_NS);
  t = load(&r, first + 1 * MS, first + KW_RP_BUSY_QUIET_NS, true, 0, &seed);
  assert_int_equal(c.pings, pings); /* not yet */
  assert_int_equal(c.rechecks, 0);
  /* busy_quiet of unanswered sending: a Ping at once, and a recheck of
   * our own mapping */
  t = load(&r, t, t + 1 * MS, true, 0, &seed);
  assert_int_equal(c.pings, pings + 1);
  assert_int_equal(last_ping_to(&c, "198.19.0.2:1000"), (int)pings);
  assert_int_equal(c.rechecks, 1);
  assert_int_equal(r.suspect_ns, first + KW_RP_BUSY_QUIET_NS);
  /* Pings every KW_RP_BUSY_PING_EVERY_NS; the relay after the grace */
  t = load(&r, t, r.suspect_ns + KW_RP_BUSY_GRACE_NS, true, 0, &seed);
  assert_int_equal(c.pings,
                   pings + KW_RP_BUSY_GRACE_NS / KW_RP_BUSY_PING_EVERY_NS + 1);
  assert_int_equal(c.lost, 0);
  assert_non_null(kw__rp_direct(&r));
  size_t rounds = c.rounds;
  t = load(&r, t, t + 1 * MS, true, 0, &seed);
  assert_int_equal(c.lost, 1);
  assert_true(c.lost_under_load);
  assert_true(kw__rp_on_relay(&r));
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_INACTIVE);
  assert_int_equal(c.rounds, rounds + 1);
  assert_int_equal(r.hp.recover_left, KW_HP_RECOVER_ROUNDS);
  /* ~1.75 s of silence, far from the idle rule's 5 s */
  assert_true(t - first < KW_RP_DIRECT_DEAD_NS / 2);
  assert_int_equal(c.rechecks, 1); /* asked once */
  kw__rp_free(&r);
}

static void test_rule_busy_answer_in_grace_keeps_path(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t seed = 1, t0 = r.selected_ns;
  uint64_t t = load(&r, t0, t0 + 1 * S, false, 0, &seed);
  t = load(&r, t, t + KW_RP_BUSY_QUIET_NS + 1 * MS, true, 0, &seed);
  assert_true(r.suspect_ns != 0);
  /* the Pong comes: heard, suspicion over, the path stays */
  assert_true(pong(&r, &c, "198.19.0.2:1000", t + 80 * MS));
  assert_int_equal(r.suspect_ns, 0);
  assert_int_equal(r.unanswered_ns, 0);
  t = load(&r, t + 80 * MS, t + 3 * S, false, 0, &seed);
  assert_int_equal(c.lost, 0);
  assert_non_null(kw__rp_direct(&r));
  /* so does a Ping from the remote by it (it reaches us that way) */
  t = load(&r, t, t + KW_RP_BUSY_QUIET_NS + 1 * MS, true, 0, &seed);
  assert_true(r.suspect_ns != 0);
  kw__rp_ping_received(&r, kw__rp_direct(&r), t);
  assert_int_equal(r.suspect_ns, 0);
  assert_int_equal(r.direct_rx_ns, t);
  kw__rp_free(&r);
}

static void test_rule_busy_random_loss_is_not_dead(void **state) {
  (void)state;
  unsigned every[] = {100, 20}; /* 1% and 5% of packets lost */
  for (size_t i = 0; i < 2; i++) {
    rec c;
    kw__rp r;
    on_direct(&r, &c);
    uint64_t seed = 7 + i, t0 = r.selected_ns;
    size_t pings = c.pings;
    (void)load(&r, t0, t0 + 30 * S, false, every[i], &seed);
    assert_int_equal(c.lost, 0);
    assert_int_equal(c.pings, pings); /* never even suspect */
    assert_non_null(kw__rp_direct(&r));
    kw__rp_free(&r);
  }
}

static void test_rule_busy_unanswered_sends_then_idle_forgotten(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t t = r.selected_ns + 100 * MS;
  kw__rp_packet(&r, kw__rp_direct(&r), t);
  /* the last ACKs of a transfer, then nothing is sent */
  kw__rp_sent(&r, t + 1 * MS);
  uint64_t d = t + 1 * MS + KW_RP_BUSY_QUIET_NS;
  while (kw__rp_next_deadline(&r) < d) /* the round's re-pings */
    kw__rp_handle_timeout(&r, kw__rp_next_deadline(&r));
  assert_int_equal(kw__rp_next_deadline(&r), d);
  size_t pings = c.pings;
  kw__rp_handle_timeout(&r, d);
  assert_int_equal(c.pings, pings); /* no recent send: idle, forgotten */
  assert_int_equal(r.unanswered_ns, 0);
  assert_int_equal(r.suspect_ns, 0);
  assert_true(kw__rp_next_deadline(&r) > d); /* and no busy loop */
  /* the idle rule: a Ping at KW_RP_DIRECT_QUIET_NS, the relay at 5 s */
  kw__rp_handle_timeout(&r, t + KW_RP_DIRECT_QUIET_NS + 1);
  assert_int_equal(c.pings, pings + 1);
  kw__rp_handle_timeout(&r, t + KW_RP_DIRECT_DEAD_NS);
  assert_int_equal(c.lost, 0);
  kw__rp_handle_timeout(&r, t + KW_RP_DIRECT_DEAD_NS + 1);
  assert_int_equal(c.lost, 1);
  assert_false(c.lost_under_load);
  assert_int_equal(c.rechecks, 1); /* the idle rule's loss asks too */
  kw__rp_free(&r);
}

static void test_rule_busy_backed_off_sends_count(void **state) {
  (void)state;
  /* a blocked QUIC sender: its probe timeouts back off (0.4, 1.2, 2.8 s
   * after the first unanswered send), so its last send may be long ago
   * at busy_quiet: still suspect, sending went on for >= SPAN */
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t u = r.selected_ns + 4 * S;
  while (kw__rp_next_deadline(&r) < u - 1 * MS) /* the round's re-pings */
    kw__rp_handle_timeout(&r, kw__rp_next_deadline(&r));
  kw__rp_packet(&r, kw__rp_direct(&r), u - 1 * MS);
  kw__rp_sent(&r, u);
  kw__rp_sent(&r, u + 400 * MS);
  uint64_t q = u + KW_RP_BUSY_QUIET_NS;
  while (kw__rp_next_deadline(&r) < q)
    kw__rp_handle_timeout(&r, kw__rp_next_deadline(&r));
  assert_int_equal(r.suspect_ns, 0);
  kw__rp_handle_timeout(&r, q);
  assert_int_equal(r.suspect_ns, q);
  /* less than SPAN of sending (a burst of ACKs): forgotten instead */
  kw__rp_packet(&r, kw__rp_direct(&r), q + 1 * MS);
  uint64_t v = q + 2 * MS;
  kw__rp_sent(&r, v);
  kw__rp_sent(&r, v + KW_RP_BUSY_SPAN_NS - 1);
  while (kw__rp_next_deadline(&r) <= v + KW_RP_BUSY_QUIET_NS)
    kw__rp_handle_timeout(&r, kw__rp_next_deadline(&r));
  assert_int_equal(r.suspect_ns, 0);
  assert_int_equal(r.unanswered_ns, 0);
  kw__rp_free(&r);
}

static void test_rule_busy_checked_without_rearm(void **state) {
  (void)state;
  /* the caller arms its timer at deadlines only; a send does not re-arm
   * it: the deadline heard + busy_quiet is already there, once */
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t t = r.selected_ns + 4 * S;
  while (kw__rp_next_deadline(&r) < t)
    kw__rp_handle_timeout(&r, kw__rp_next_deadline(&r));
  kw__rp_packet(&r, kw__rp_direct(&r), t);
  kw__rp_handle_timeout(&r, t); /* a timer turn right after it */
  uint64_t d = kw__rp_next_deadline(&r);
  assert_int_equal(d, t + KW_RP_BUSY_QUIET_NS);
  /* nothing was sent: the check finds nothing, and is not repeated */
  kw__rp_handle_timeout(&r, d);
  assert_int_equal(r.suspect_ns, 0);
  assert_true(kw__rp_next_deadline(&r) > d);
  /* sent since: the check at that deadline counts from the first send */
  kw__rp_packet(&r, kw__rp_direct(&r), d + 10 * MS);
  kw__rp_handle_timeout(&r, d + 10 * MS);
  kw__rp_sent(&r, d + 11 * MS);
  kw__rp_sent(&r, d + 300 * MS);
  uint64_t e = kw__rp_next_deadline(&r);
  assert_int_equal(e, d + 11 * MS + KW_RP_BUSY_QUIET_NS);
  kw__rp_handle_timeout(&r, e);
  assert_int_equal(r.suspect_ns, e);
  kw__rp_free(&r);
}

static void test_rule_busy_quiet_scales_with_rtt(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  /* a 400 ms path: 4 RTTs = 1.6 s before suspicion, 3 RTTs of grace */
  kw_sockaddr a = A("198.19.0.2:1000");
  assert_true(kw__rp_candidate(&r, &a, KW_PSRC_APP, T0));
  kw__rp_local_candidates(&r, T0 + 1 * S);
  assert_true(pong(&r, &c, "198.19.0.2:1000", T0 + 1 * S + 400 * MS));
  assert_true(kw__paths_rtt(&r.pt, kw__paths_selected(&r.pt)) == 400 * MS);
  uint64_t t = T0 + 4 * S; /* past the round's re-pings */
  while (kw__rp_next_deadline(&r) <= t)
    kw__rp_handle_timeout(&r, t);
  kw__rp_packet(&r, &a, t);
  kw__rp_sent(&r, t);
  uint64_t q = t + KW_RP_BUSY_QUIET_RTTS * 400 * MS;
  while (kw__rp_next_deadline(&r) < q) { /* the schedule's own deadlines */
    uint64_t x = kw__rp_next_deadline(&r);
    kw__rp_handle_timeout(&r, x);
  }
  assert_int_equal(kw__rp_next_deadline(&r), q);
  kw__rp_sent(&r, t + 1500 * MS);
  kw__rp_handle_timeout(&r, q);
  assert_int_equal(r.suspect_ns, t + KW_RP_BUSY_QUIET_RTTS * 400 * MS);
  assert_true(kw__rp_next_deadline(&r) <=
              r.suspect_ns + KW_RP_BUSY_GRACE_RTTS * 400 * MS);
  kw__rp_handle_timeout(&r,
                        r.suspect_ns + KW_RP_BUSY_GRACE_RTTS * 400 * MS - 1);
  assert_int_equal(c.lost, 0);
  kw__rp_handle_timeout(&r, r.suspect_ns + KW_RP_BUSY_GRACE_RTTS * 400 * MS);
  assert_int_equal(c.lost, 1);
  kw__rp_free(&r);
}

static void test_rule_lost_path_pinged_until_it_answers(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t seed = 1, t0 = r.selected_ns;
  uint64_t t = load(&r, t0, t0 + 1 * S, false, 0, &seed);
  t = load(&r, t, t + 1800 * MS, true, 0, &seed);
  assert_true(kw__rp_on_relay(&r));
  uint64_t lost = r.lost_ns;
  assert_true(lost != 0);
  /* on the relay: a Ping to the lost address every second */
  int before = last_ping_to(&c, "198.19.0.2:1000");
  assert_true(kw__rp_next_deadline(&r) <= lost + KW_RP_LOST_PING_EVERY_NS);
  kw__rp_handle_timeout(&r, lost + KW_RP_LOST_PING_EVERY_NS);
  int i = last_ping_to(&c, "198.19.0.2:1000");
  assert_true(i > before);
  kw__rp_handle_timeout(&r, lost + KW_RP_LOST_PING_EVERY_NS + 500 * MS);
  assert_int_equal(last_ping_to(&c, "198.19.0.2:1000"), i); /* one a second */
  /* the outage ends: its Pong brings the direct path back */
  assert_true(pong(&r, &c, "198.19.0.2:1000",
                   lost + KW_RP_LOST_PING_EVERY_NS + 80 * MS));
  assert_non_null(kw__rp_direct(&r));
  assert_int_equal(r.lost_ns, 0);
  kw__rp_free(&r);
}

static void test_rule_lost_path_pings_are_bounded(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t seed = 1, t0 = r.selected_ns;
  uint64_t t = load(&r, t0, t0 + 1 * S, false, 0, &seed);
  t = load(&r, t, t + 1800 * MS, true, 0, &seed);
  assert_true(kw__rp_on_relay(&r));
  uint64_t lost = r.lost_ns;
  /* a Ping a second until KW_RP_LOST_PING_FOR_NS (the recovery rounds
   * at 5 and 15 s and their re-pings are over by 17 s, the next is at
   * 35 s), then none */
  size_t late = 0, quiet = 0;
  for (uint64_t x = lost; x < lost + 34 * S; x += 100 * MS) {
    size_t p = c.pings;
    while (kw__rp_next_deadline(&r) <= x)
      kw__rp_handle_timeout(&r, x);
    if (x >= lost + 19500 * MS && x < lost + 29900 * MS)
      late += c.pings - p;
    if (x >= lost + KW_RP_LOST_PING_FOR_NS)
      quiet += c.pings - p;
  }
  assert_int_equal(late, 10);
  assert_int_equal(quiet, 0);
  assert_int_equal(r.lost_ns, 0);
  kw__rp_free(&r);
}

static void test_rule_busy_after_idle_counts_from_first_send(void **state) {
  (void)state;
  /* idle 3 s (the idle rule's Ping went unanswered), then sending starts
   * on the dead path: suspicion busy_quiet after the first send, the
   * relay after the grace; every deadline is consumed (no busy loop) */
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t t = r.selected_ns + 1 * MS, first = t + 3 * S;
  kw__rp_packet(&r, kw__rp_direct(&r), t); /* the remote used it */
  for (uint64_t x = t; x < first; x += 10 * MS)
    while (kw__rp_next_deadline(&r) <= x)
      kw__rp_handle_timeout(&r, x);
  assert_non_null(kw__rp_direct(&r));
  assert_int_equal(r.unanswered_ns, 0);
  size_t calls = 0;
  for (uint64_t x = first; x < first + 2 * S && kw__rp_direct(&r);
       x += 1 * MS) {
    kw__rp_sent(&r, x);
    while (kw__rp_next_deadline(&r) <= x) {
      kw__rp_handle_timeout(&r, x);
      assert_true(++calls < 1000);
    }
    if (x < first + KW_RP_BUSY_QUIET_NS)
      assert_int_equal(r.suspect_ns, 0);
  }
  assert_true(kw__rp_on_relay(&r));
  assert_int_equal(c.lost, 1);
  assert_true(c.lost_under_load);
  kw__rp_free(&r);
}

static void test_rule_busy_only_on_path_remote_used(void **state) {
  (void)state;
  /* a path only a Pong validated: the remote may still be switching to
   * it (its packets still come by the relay); neither the rule under
   * load nor the relay rule gives it up, the idle rule does */
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t t0 = r.selected_ns;
  for (uint64_t x = t0; x < t0 + 4 * S; x += 1 * MS) {
    kw__rp_sent(&r, x);
    kw__rp_packet(&r, NULL, x);
    while (kw__rp_next_deadline(&r) <= x)
      kw__rp_handle_timeout(&r, x);
  }
  assert_int_equal(c.lost, 0);
  assert_int_equal(r.suspect_ns, 0);
  assert_non_null(kw__rp_direct(&r));
  for (uint64_t x = t0 + 4 * S; x < t0 + 6 * S; x += 1 * MS)
    while (kw__rp_next_deadline(&r) <= x)
      kw__rp_handle_timeout(&r, x);
  assert_int_equal(c.lost, 1);
  assert_int_equal(c.lost_why, KW_RP_LOST_IDLE);
  kw__rp_free(&r);
}

static void test_rule_remote_on_relay_while_quiet(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t t = r.selected_ns + 100 * MS;
  kw__rp_packet(&r, kw__rp_direct(&r), t);
  /* relay packets while the direct path is heard: kept (the race, the
   * remote's last packets by the relay) */
  kw__rp_packet(&r, NULL, t + KW_RP_REBIND_QUIET_NS - 1);
  assert_non_null(kw__rp_direct(&r));
  assert_int_equal(c.lost, 0);
  /* quiet KW_RP_REBIND_QUIET_NS: the remote gave the path up; so do we */
  size_t rounds = c.rounds;
  kw__rp_packet(&r, NULL, t + KW_RP_REBIND_QUIET_NS);
  assert_true(kw__rp_on_relay(&r));
  assert_int_equal(c.lost, 1);
  assert_int_equal(c.lost_why, KW_RP_LOST_REMOTE_RELAY);
  assert_int_equal(c.rounds, rounds + 1);
  assert_int_equal(c.rechecks, 1);
  assert_true(r.lost_ns != 0); /* and its Pings bring it back */
  kw__rp_free(&r);
}

static void test_rule_answer_pings_quiet_selected_path(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  kw_sockaddr l[1] = {A("198.19.0.2:1000")};
  uint64_t t = r.selected_ns + 100 * MS;
  kw__rp_packet(&r, kw__rp_direct(&r), t);
  /* heard just now: a CallMeMaybe naming it gets no Ping to it */
  size_t p = c.pings;
  kw__rp_call_me_maybe(&r, l, 1, t + KW_RP_ANSWER_QUIET_NS - 1);
  assert_int_equal(c.answers, 1);
  assert_int_equal(c.pings, p);
  /* quiet KW_RP_ANSWER_QUIET_NS: the remote may not get through to us
   * (our NAT forgot it): the answer pings it */
  kw__rp_packet(&r, kw__rp_direct(&r), t + 10 * S);
  kw__rp_call_me_maybe(&r, l, 1, t + 10 * S + KW_RP_ANSWER_QUIET_NS);
  assert_int_equal(c.answers, 2);
  assert_int_equal(c.pings, p + 1);
  assert_int_equal(last_ping_to(&c, "198.19.0.2:1000"), (int)p);
  kw__rp_free(&r);
}

static void test_rule_pong_by_other_path_while_suspect_moves(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t seed = 1, t0 = r.selected_ns;
  uint64_t t = load(&r, t0, t0 + 3 * S, false, 0, &seed);
  /* a Pong by another path while the selected one is heard: kept */
  kw_sockaddr n = A("198.19.0.2:40000");
  assert_true(kw__rp_candidate(&r, &n, KW_PSRC_DISCO, t));
  kw__rp_call_me_maybe(&r, &n, 1, t); /* pings it */
  assert_true(pong(&r, &c, "198.19.0.2:40000", t + 80 * MS));
  kw_sockaddr o = A("198.19.0.2:1000");
  assert_true(kw__sockaddr_equal(kw__rp_direct(&r), &o));
  t = load(&r, t + 80 * MS, t + 1 * S, false, 0, &seed);
  /* suspect: the remote's NAT rebound, it answers from 40000 */
  t = load(&r, t, t + KW_RP_BUSY_QUIET_NS + 1 * MS, true, 0, &seed);
  assert_true(r.suspect_ns != 0);
  kw__rp_call_me_maybe(&r, &n, 1, t + 10 * MS); /* its new CallMeMaybe */
  assert_true(last_ping_to(&c, "198.19.0.2:40000") >= 0);
  assert_true(pong(&r, &c, "198.19.0.2:40000", t + 90 * MS));
  assert_int_equal(c.rebinds, 1);
  assert_true(kw__sockaddr_equal(kw__rp_direct(&r), &n));
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_INACTIVE);
  assert_int_equal(c.lost, 0);
  kw__rp_free(&r);
}

static void test_rule_busy_recheck_then_round_tells_remote(void **state) {
  (void)state;
  /* our NAT rebound: the remote's NAT filters our new port, so nothing
   * comes back; the recheck learns the new reflexive address and its
   * round (a CallMeMaybe through the relay, Pings) runs at once, while
   * the old path is still selected */
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  uint64_t seed = 1, t0 = r.selected_ns;
  uint64_t t = load(&r, t0, t0 + 10 * S, false, 0, &seed);
  t = load(&r, t, t + KW_RP_BUSY_QUIET_NS + 1 * MS, true, 0, &seed);
  assert_int_equal(c.rechecks, 1);
  size_t cmms = c.cmms;
  kw__rp_local_candidates(&r, t + 40 * MS); /* the caller's STUN answer */
  assert_int_equal(c.cmms, cmms + 1);
  assert_non_null(kw__rp_direct(&r));
  kw__rp_free(&r);
}

/* ---- RTT ------------------------------------------------------------------
 */

static void test_rule_rtt_credited_once_settled(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  int s = KW_PATHS_NONE;
  const kw__path *p = path_of(&r, "198.19.0.2:1000");
  s = kw__paths_find(&r.pt, &p->addr);
  uint64_t sel = r.selected_ns;
  kw__rp_rtt_sample(&r, 0, 30 * MS, sel + KW_RP_RTT_SETTLE_NS - 1);
  assert_false(p->has_rtt & 1u);
  kw__rp_rtt_sample(&r, 0, 30 * MS, sel + KW_RP_RTT_SETTLE_NS);
  assert_true(p->has_rtt & 1u);
  assert_int_equal(p->rtt[0], 30 * MS);
  assert_int_equal(kw__paths_rtt(&r.pt, s), 30 * MS); /* min with Pong's */
  /* at most one sample per slot every KW_RP_RTT_EVERY_NS */
  kw__rp_rtt_sample(&r, 0, 20 * MS, sel + KW_RP_RTT_SETTLE_NS + 1);
  assert_int_equal(p->rtt[0], 30 * MS);
  kw__rp_rtt_sample(&r, 0, 20 * MS,
                    sel + KW_RP_RTT_SETTLE_NS + KW_RP_RTT_EVERY_NS);
  assert_int_equal(p->rtt[0], 20 * MS);
  /* no slot, the Pong slot, or a zero sample: ignored */
  kw__rp_rtt_sample(&r, -1, 1 * MS, sel + 10 * S);
  kw__rp_rtt_sample(&r, KW_RP_RTT_SLOT_DISCO, 1 * MS, sel + 10 * S);
  kw__rp_rtt_sample(&r, 1, 0, sel + 10 * S);
  assert_int_equal(p->rtt[0], 20 * MS);
  /* the slot's connection goes: its samples go with it */
  kw__rp_conn_close(&r, 0, sel + 11 * S);
  assert_false(p->has_rtt & 1u);
  kw__rp_free(&r);
}

static void test_rule_rtt_nothing_selected(void **state) {
  (void)state;
  rec c;
  memset(&c, 0, sizeof c);
  kw__rp r;
  kw__rp_init(&r, &cbs, &c);
  kw__rp_conn_open(&r);
  kw__rp_rtt_sample(&r, 0, 30 * MS, T0);
  assert_int_equal(kw__paths_selected(&r.pt), KW_PATHS_NONE);
  kw__rp_free(&r);
}

/* ---- selection and re-racing ------------------------------------------- */

static void test_rule_redundant_direct_paths_closed(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000"), b = A("198.19.0.3:1000");
  kw__rp_candidate(&r, &a, KW_PSRC_APP, T0);
  kw__rp_candidate(&r, &b, KW_PSRC_APP, T0);
  kw__rp_local_candidates(&r, T0 + 1 * S);
  assert_true(pong(&r, &c, "198.19.0.2:1000", T0 + 1 * S + 40 * MS));
  assert_true(pong(&r, &c, "198.19.0.3:1000", T0 + 1 * S + 80 * MS));
  /* one direct path carries the traffic; the slower one is closed */
  assert_true(kw__sockaddr_equal(kw__rp_direct(&r), &a));
  assert_int_equal(path_of(&r, "198.19.0.3:1000")->state, KW_PST_INACTIVE);
  kw__rp_free(&r);
}

static void test_rule_good_direct_stops_upgrade_rounds(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.18.1.3:1000");
  kw__rp_candidate(&r, &a, KW_PSRC_APP, T0);
  kw__rp_local_candidates(&r, T0 + 1 * S);
  assert_true(pong(&r, &c, "198.18.1.3:1000", T0 + 1 * S + 1 * MS));
  assert_true(r.hp.good_direct); /* RTT <= KW_HP_GOOD_RTT_NS */
  kw__rp_free(&r);
}

static void test_rule_rerace_demotes_validated(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_direct(&r, &c);
  kw__rp_conn_close(&r, 0, T0 + 5 * S);
  kw__rp_rerace(&r, T0 + 6 * S);
  assert_int_equal(path_of(&r, "198.19.0.2:1000")->state, KW_PST_INACTIVE);
  assert_int_equal(kw__paths_get(&r.pt, KW_PATHS_RELAY)->state, KW_PST_UNKNOWN);
  assert_null(kw__rp_direct(&r));
  assert_false(kw__rp_on_relay(&r));
  kw__rp_free(&r);
}

static void test_conn_down_stops_rounds(void **state) {
  (void)state;
  rec c;
  kw__rp r;
  on_relay(&r, &c);
  kw__rp_conn_down(&r, T0 + 1 * S);
  kw__rp_local_candidates(&r, T0 + 2 * S);
  assert_int_equal(c.rounds, 1);
  kw__rp_free(&r);
}

/* ---- birthday probing --------------------------------------------------- */

/* Runs every deadline up to `until`; returns the time reached. */
static uint64_t run_until(kw__rp *r, uint64_t from, uint64_t until) {
  uint64_t now = from;
  for (int i = 0; i < 100000; i++) {
    uint64_t d = kw__rp_next_deadline(r);
    if (d > until)
      break;
    now = d > now ? d : now;
    kw__rp_handle_timeout(r, now);
  }
  return until;
}

static void test_bday_edm_side_opens_bounded_sockets(void **state) {
  (void)state;
  kw__rp r;
  rec c;
  on_relay(&r, &c);
  kw_sockaddr eim = A("198.19.0.2:1000");
  kw__rp_local_nat(&r, KW_RP_NAT_EDM, T0 + 10 * MS);
  assert_int_equal(c.bsent, 0); /* the remote's behaviour is not known */
  kw__rp_remote_nat(&r, KW_RP_NAT_EIM, &eim, T0 + 20 * MS);
  assert_int_equal(c.bstarts, 1);
  /* one tick's sockets at once, each with one Ping to the reflexive
   * address */
  assert_int_equal(c.bsent, KW_RP_BDAY_OPEN_PER_TICK);
  for (size_t i = 0; i < c.bsent; i++) {
    assert_int_equal(c.bsock[i], i + 1);
    assert_true(kw__sockaddr_equal(&c.bto[i], &eim));
  }
  run_until(&r, T0 + 20 * MS, T0 + 1 * S);
  assert_int_equal(c.bsent, KW_RP_BDAY_SOCKETS); /* the bound */
  assert_int_equal(c.bmaxsock, KW_RP_BDAY_SOCKETS);
  assert_true(kw__rp_on_relay(&r));
  /* a spray Ping found socket 77: pinged back from it */
  kw__rp_ping_received_on(&r, &eim, 77, T0 + 1 * S);
  assert_int_equal(c.bsent, KW_RP_BDAY_SOCKETS + 1);
  size_t k = c.bsent - 1;
  assert_int_equal(c.bsock[k], 77);
  /* ... from an address that is not the target: nothing */
  kw_sockaddr other = A("198.19.0.3:1000");
  kw__rp_ping_received_on(&r, &other, 78, T0 + 1 * S);
  assert_int_equal(c.bsent, KW_RP_BDAY_SOCKETS + 1);
  /* its Pong on another socket does not count; on socket 77 it is the hit */
  assert_false(kw__rp_pong_received_on(&r, c.btx[k], &eim, 78,
                                       T0 + 1 * S + 40 * MS, NULL));
  assert_false(kw__rp_pong_received_on(&r, c.btx[k], &other, 77,
                                       T0 + 1 * S + 40 * MS, NULL));
  assert_true(kw__rp_pong_received_on(&r, c.btx[k], &eim, 77,
                                      T0 + 1 * S + 40 * MS, NULL));
  assert_int_equal(c.bhits, 1);
  assert_non_null(kw__rp_direct(&r));
  assert_true(kw__sockaddr_equal(kw__rp_direct(&r), &eim));
  assert_int_equal(kw__rp_direct_sock(&r), 77);
  /* every other extra socket closed at once */
  assert_int_equal(c.bcloses, 1);
  assert_int_equal(c.bkeep, 77);
  /* the path's Pings (a tracked one for its RTT) go from socket 77 */
  assert_int_equal(c.bsock[c.bsent - 1], 77);
  assert_true(kw__rp_pong_received_on(&r, c.btx[c.bsent - 1], &eim, 77,
                                      T0 + 1 * S + 60 * MS, NULL));
  assert_int_not_equal(kw__paths_rtt(&r.pt, kw__paths_selected(&r.pt)),
                       KW_PATHS_RTT_UNKNOWN);
  /* no second attempt while direct */
  run_until(&r, T0 + 1 * S + 60 * MS, T0 + 3 * S);
  assert_int_equal(c.bstarts, 1);
  assert_int_equal(kw__rp_direct_sock(&r), 77);
  /* the path goes silent and is given up: socket 77 closes too, and a new
   * attempt runs (KW_RP_BDAY_EVERY_NS after the first) */
  run_until(&r, T0 + 3 * S, T0 + 40 * S);
  assert_int_equal(c.bcloses,
                   3); /* the hit, the loss, the 2nd attempt's miss */
  assert_int_equal(c.bkeep, 0);
  assert_int_equal(c.bstarts, 2);
  kw__rp_free(&r);
}

/* A QUIC packet on an extra socket that overtakes its Pong (the remote
 * answers a Ping from socket 9 with the Pong and its connection's packets
 * at once) makes no path on our own socket and does not end the attempt;
 * the Pong on socket 9 then is the hit, and later packets there keep it. */
static void test_bday_packet_before_pong(void **state) {
  (void)state;
  kw__rp r;
  rec c;
  on_relay(&r, &c);
  kw_sockaddr eim = A("198.19.0.2:1000");
  kw__rp_local_nat(&r, KW_RP_NAT_EDM, T0 + 10 * MS);
  kw__rp_remote_nat(&r, KW_RP_NAT_EIM, &eim, T0 + 20 * MS);
  assert_int_equal(c.bstarts, 1);
  size_t k = 8; /* socket 9's Ping */
  assert_int_equal(c.bsock[k], 9);
  kw__rp_packet_on(&r, &eim, 9, T0 + 60 * MS);
  assert_true(kw__rp_on_relay(&r));
  assert_null(kw__rp_direct(&r));
  assert_int_equal(c.bcloses, 0);
  assert_int_equal(c.bhits, 0);
  assert_true(
      kw__rp_pong_received_on(&r, c.btx[k], &eim, 9, T0 + 61 * MS, NULL));
  assert_int_equal(c.bhits, 1);
  assert_int_equal(c.bkeep, 9);
  assert_int_equal(kw__rp_direct_sock(&r), 9);
  kw__rp_packet_on(&r, &eim, 9, T0 + 70 * MS);
  assert_true(kw__sockaddr_equal(kw__rp_direct(&r), &eim));
  assert_int_equal(kw__rp_direct_sock(&r), 9);
  kw__rp_free(&r);
}

static void test_bday_eim_side_sprays_paced_random_ports(void **state) {
  (void)state;
  kw__rp r;
  rec c;
  on_relay(&r, &c);
  kw_sockaddr edm = A("198.19.0.9:5000");
  kw__rp_local_nat(&r, KW_RP_NAT_EIM, T0);
  kw__rp_remote_nat(&r, KW_RP_NAT_EDM, &edm, T0);
  assert_int_equal(c.bstarts, 1);
  assert_int_equal(c.bsent, KW_RP_BDAY_SPRAY_PER_TICK);
  /* paced: never more than a tick's worth per tick */
  uint64_t now = T0;
  size_t prev = c.bsent;
  for (int i = 0; i < 1000 && c.bsent < KW_RP_BDAY_SPRAY; i++) {
    uint64_t d = kw__rp_next_deadline(&r);
    assert_true(d >= now + KW_RP_BDAY_TICK_NS || d > T0 + 60 * S);
    now = d;
    kw__rp_handle_timeout(&r, now);
    assert_true(c.bsent - prev <= KW_RP_BDAY_SPRAY_PER_TICK);
    prev = c.bsent;
  }
  assert_int_equal(c.bsent, KW_RP_BDAY_SPRAY);
  /* the spray took ~1 s: its rate stays within KW_RP_BDAY_BYTES_S */
  assert_true((now - T0) >=
              (uint64_t)(KW_RP_BDAY_SPRAY / KW_RP_BDAY_SPRAY_PER_TICK - 1) *
                  KW_RP_BDAY_TICK_NS);
  size_t distinct = 0;
  for (size_t i = 0; i < KW_RP_BDAY_SPRAY; i++) {
    assert_int_equal(c.bsock[i], 0); /* from our own socket */
    assert_int_equal(c.bto[i].family, 4);
    assert_memory_equal(c.bto[i].ip, edm.ip, 4);
    assert_true(c.bto[i].port >= KW_RP_BDAY_PORT_MIN);
    distinct += c.bto[i].port != c.bto[0].port;
  }
  assert_true(distinct > KW_RP_BDAY_SPRAY / 2); /* random, not one port */
  run_until(&r, now, T0 + 2 * S);
  assert_int_equal(c.bsent, KW_RP_BDAY_SPRAY); /* nothing more */
  /* the answer from port 700th: that port is the path; the same tx id
   * from another port is not */
  kw_sockaddr hit = c.bto[700];
  kw_sockaddr wrong = hit;
  wrong.port = (uint16_t)(hit.port ^ 1);
  assert_false(
      kw__rp_pong_received_on(&r, c.btx[700], &wrong, 0, T0 + 2 * S, NULL));
  assert_false(
      kw__rp_pong_received_on(&r, c.btx[700], &hit, 3, T0 + 2 * S, NULL));
  assert_true(
      kw__rp_pong_received_on(&r, c.btx[700], &hit, 0, T0 + 2 * S, NULL));
  assert_true(kw__sockaddr_equal(kw__rp_direct(&r), &hit));
  assert_int_equal(kw__rp_direct_sock(&r), 0);
  assert_int_equal(c.bhits, 1);
  kw__rp_free(&r);
}

static void test_bday_miss_closes_and_attempts_are_rate_limited(void **state) {
  (void)state;
  kw__rp r;
  rec c;
  on_relay(&r, &c);
  kw_sockaddr eim = A("198.19.0.2:1000");
  kw__rp_local_nat(&r, KW_RP_NAT_EDM, T0);
  kw__rp_remote_nat(&r, KW_RP_NAT_EIM, &eim, T0);
  run_until(&r, T0, T0 + KW_RP_BDAY_ATTEMPT_NS + 1);
  assert_int_equal(c.bmisses, 1);
  assert_int_equal(c.bcloses, 1);
  assert_int_equal(c.bkeep, 0); /* all of them */
  /* a late Pong of the attempt is no hit */
  assert_false(kw__rp_pong_received_on(&r, c.btx[5], &eim, c.bsock[5],
                                       T0 + KW_RP_BDAY_ATTEMPT_NS + 2, NULL));
  /* a new hint does not start another before KW_RP_BDAY_EVERY_NS */
  kw__rp_remote_nat(&r, KW_RP_NAT_EIM, &eim, T0 + 10 * S);
  run_until(&r, T0, T0 + KW_RP_BDAY_EVERY_NS - 1);
  assert_int_equal(c.bstarts, 1);
  /* then one does, on its own (the relay carries the connection) */
  run_until(&r, T0, T0 + KW_RP_BDAY_EVERY_NS + 10 * MS);
  assert_int_equal(c.bstarts, 2);
  /* per minute: at most 60 s / KW_RP_BDAY_EVERY_NS + 1 */
  run_until(&r, T0, T0 + 60 * S);
  assert_true(c.bstarts <= 60 * S / KW_RP_BDAY_EVERY_NS + 1);
  assert_true(c.bsent <= c.bstarts * KW_RP_BDAY_SOCKETS);
  kw__rp_free(&r);
}

static void test_bday_only_eim_against_edm(void **state) {
  (void)state;
  kw_sockaddr a = A("198.19.0.2:1000");
  const struct {
    kw__rp_nat local, remote;
  } none[] = {{KW_RP_NAT_EDM, KW_RP_NAT_EDM},
              {KW_RP_NAT_EIM, KW_RP_NAT_EIM},
              {KW_RP_NAT_UNKNOWN, KW_RP_NAT_EDM},
              {KW_RP_NAT_EDM, KW_RP_NAT_UNKNOWN}};
  for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
    kw__rp r;
    rec c;
    on_relay(&r, &c);
    kw__rp_local_nat(&r, none[i].local, T0);
    kw__rp_remote_nat(&r, none[i].remote, &a, T0);
    run_until(&r, T0, T0 + 120 * S);
    assert_int_equal(c.bsent, 0);
    assert_int_equal(c.bstarts, 0);
    kw__rp_free(&r);
  }
  /* no reflexive address in the hint: nothing to aim at */
  kw__rp r;
  rec c;
  on_relay(&r, &c);
  kw__rp_local_nat(&r, KW_RP_NAT_EIM, T0);
  kw__rp_remote_nat(&r, KW_RP_NAT_EDM, NULL, T0);
  assert_int_equal(c.bsent, 0);
  kw__rp_free(&r);
  /* a direct path already: no attempt */
  on_direct(&r, &c);
  kw__rp_local_nat(&r, KW_RP_NAT_EIM, T0 + 2 * S);
  kw__rp_remote_nat(&r, KW_RP_NAT_EDM, &a, T0 + 2 * S);
  assert_int_equal(c.bsent, 0);
  kw__rp_free(&r);
}

static void test_bday_switched_off(void **state) {
  (void)state;
  kw__rp r;
  rec c;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000");
  kw__rp_set_birthday(&r, false);
  kw__rp_local_nat(&r, KW_RP_NAT_EIM, T0);
  kw__rp_remote_nat(&r, KW_RP_NAT_EDM, &a, T0);
  run_until(&r, T0, T0 + 120 * S);
  assert_int_equal(c.bsent, 0);
  assert_true(kw__rp_on_relay(&r));
  /* switched off mid-attempt: it stops, its sockets close */
  kw__rp_set_birthday(&r, true);
  kw__rp_handle_timeout(&r, T0 + 121 * S);
  assert_int_equal(c.bstarts, 1);
  size_t sent = c.bsent;
  kw__rp_set_birthday(&r, false);
  assert_int_equal(c.bcloses, 1);
  run_until(&r, T0 + 121 * S, T0 + 125 * S);
  assert_int_equal(c.bsent, sent);
  kw__rp_free(&r);
}

/* The last connection goes mid-attempt: the attempt stops, sockets close. */
static void test_bday_stops_without_connection(void **state) {
  (void)state;
  kw__rp r;
  rec c;
  on_relay(&r, &c);
  kw_sockaddr a = A("198.19.0.2:1000");
  kw__rp_local_nat(&r, KW_RP_NAT_EDM, T0);
  kw__rp_remote_nat(&r, KW_RP_NAT_EIM, &a, T0);
  assert_int_equal(c.bstarts, 1);
  kw__rp_conn_close(&r, 0, T0 + 5 * MS);
  assert_int_equal(c.bcloses, 1);
  assert_int_equal(c.bkeep, 0);
  size_t sent = c.bsent;
  kw__rp_handle_timeout(&r, T0 + 100 * MS);
  assert_int_equal(c.bsent, sent);
  kw__rp_free(&r);
}

/* Without the bday callbacks (an older caller) nothing runs. */
static void test_bday_needs_callbacks(void **state) {
  (void)state;
  rec c;
  memset(&c, 0, sizeof c);
  kw__rp r;
  kw__rp_init(&r, &bare, &c);
  kw__rp_set_keyed(&r, T0);
  (void)kw__rp_conn_open(&r);
  kw__rp_packet(&r, NULL, T0);
  kw__rp_conn_up(&r, T0);
  kw_sockaddr a = A("198.19.0.2:1000");
  kw__rp_local_nat(&r, KW_RP_NAT_EIM, T0);
  kw__rp_remote_nat(&r, KW_RP_NAT_EDM, &a, T0);
  run_until(&r, T0, T0 + 5 * S);
  assert_int_equal(c.bsent, 0);
  kw__rp_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unkeyed_remote_does_nothing),
      cmocka_unit_test(test_rtt_slots_and_idle_expiry),
      cmocka_unit_test(test_optional_callbacks_may_be_null),
      cmocka_unit_test(test_rule_candidate_new_once_and_path_known),
      cmocka_unit_test(test_rule_round_pings_every_usable_candidate),
      cmocka_unit_test(test_rule_repings_then_settle),
      cmocka_unit_test(test_rule_repings_stop_once_direct),
      cmocka_unit_test(test_rule_probe_refused_left_for_later),
      cmocka_unit_test(test_rule_round_failed_retries_soon),
      cmocka_unit_test(test_rule_network_change_pings_selected_too),
      cmocka_unit_test(test_rule_ping_from_new_address),
      cmocka_unit_test(test_rule_ping_on_validated_path_ignored),
      cmocka_unit_test(test_rule_pong_must_match_tx_and_address),
      cmocka_unit_test(test_rule_pong_revives_inactive_path),
      cmocka_unit_test(test_rule_ping_ring_overwrites_oldest),
      cmocka_unit_test(test_rule_call_me_maybe_new_candidates_round_now),
      cmocka_unit_test(test_rule_call_me_maybe_known_answered_by_pings),
      cmocka_unit_test(test_rule_answer_pings_path_known_by_packets_only),
      cmocka_unit_test(test_rule_packet_validates_its_path),
      cmocka_unit_test(test_rule_rebind_after_quiet),
      cmocka_unit_test(test_rule_liveness_pings_then_falls_back),
      cmocka_unit_test(test_rule_pong_on_selected_path_is_liveness),
      cmocka_unit_test(test_rule_busy_silence_probes_then_falls_back),
      cmocka_unit_test(test_rule_busy_answer_in_grace_keeps_path),
      cmocka_unit_test(test_rule_busy_random_loss_is_not_dead),
      cmocka_unit_test(test_rule_busy_unanswered_sends_then_idle_forgotten),
      cmocka_unit_test(test_rule_busy_quiet_scales_with_rtt),
      cmocka_unit_test(test_rule_busy_checked_without_rearm),
      cmocka_unit_test(test_rule_busy_backed_off_sends_count),
      cmocka_unit_test(test_rule_lost_path_pinged_until_it_answers),
      cmocka_unit_test(test_rule_lost_path_pings_are_bounded),
      cmocka_unit_test(test_rule_busy_recheck_then_round_tells_remote),
      cmocka_unit_test(test_rule_pong_by_other_path_while_suspect_moves),
      cmocka_unit_test(test_rule_busy_after_idle_counts_from_first_send),
      cmocka_unit_test(test_rule_remote_on_relay_while_quiet),
      cmocka_unit_test(test_rule_busy_only_on_path_remote_used),
      cmocka_unit_test(test_rule_answer_pings_quiet_selected_path),
      cmocka_unit_test(test_rule_rtt_credited_once_settled),
      cmocka_unit_test(test_rule_rtt_nothing_selected),
      cmocka_unit_test(test_rule_redundant_direct_paths_closed),
      cmocka_unit_test(test_rule_good_direct_stops_upgrade_rounds),
      cmocka_unit_test(test_rule_rerace_demotes_validated),
      cmocka_unit_test(test_conn_down_stops_rounds),
      cmocka_unit_test(test_bday_edm_side_opens_bounded_sockets),
      cmocka_unit_test(test_bday_packet_before_pong),
      cmocka_unit_test(test_bday_eim_side_sprays_paced_random_ports),
      cmocka_unit_test(test_bday_miss_closes_and_attempts_are_rate_limited),
      cmocka_unit_test(test_bday_only_eim_against_edm),
      cmocka_unit_test(test_bday_switched_off),
      cmocka_unit_test(test_bday_needs_callbacks),
      cmocka_unit_test(test_bday_stops_without_connection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
