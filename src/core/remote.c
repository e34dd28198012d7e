/* SPDX-License-Identifier: MIT */
/* One remote's path policy (see remote.h; docs/ARCHITECTURE.md section 4). */
#include "core/remote.h"

#include <string.h>

#include "core/sockaddr.h"

static void note(kw__rp *r, kw__rp_note what, const kw_sockaddr *a,
                 uint64_t x, uint64_t y) {
  if (r->cbs->note)
    r->cbs->note(r->user, what, a, x, y);
}

void kw__rp_init(kw__rp *r, const kw__rp_cbs *cbs, void *user) {
  memset(r, 0, sizeof *r);
  r->cbs = cbs;
  r->user = user;
  kw__paths_init(&r->pt);
  kw__holepunch_init(&r->hp);
  kw__probe_budget_init_remote(&r->probes);
}

void kw__rp_free(kw__rp *r) {
  kw__paths_free(&r->pt);
  memset(r->pings, 0, sizeof r->pings);
}

void kw__rp_set_keyed(kw__rp *r, uint64_t now) {
  (void)now;
  r->keyed = true;
}

const kw_sockaddr *kw__rp_direct(const kw__rp *r) {
  int s = kw__paths_selected(&r->pt);
  if (s <= KW_PATHS_RELAY)
    return NULL;
  return &kw__paths_get(&r->pt, s)->addr;
}

bool kw__rp_on_relay(const kw__rp *r) {
  return kw__paths_selected(&r->pt) == KW_PATHS_RELAY;
}

/* Selection after a change; reports a new one. */
static bool reselect(kw__rp *r, uint64_t now) {
  bool changed = false;
  int s = kw__paths_select(&r->pt, now, &changed);
  /* one direct path carries the traffic; the others stop being used (a
   * later round pings them again) - never the last direct one or the relay */
  int red[KW_PATHS_SLOTS];
  size_t n = kw__paths_redundant(&r->pt, red, KW_PATHS_SLOTS);
  for (size_t i = 0; i < n && i < KW_PATHS_SLOTS; i++)
    (void)kw__paths_set_state(&r->pt, red[i], KW_PST_INACTIVE, now);
  kw__holepunch_set_good_direct(
      &r->hp, kw__paths_has_direct_within(&r->pt, KW_HP_GOOD_RTT_NS));
  if (!changed)
    return false;
  if (s > KW_PATHS_RELAY)
    kw__holepunch_direct_again(&r->hp); /* no more recovery rounds */
  r->selected_ns = now;
  r->direct_rx_ns = now;
  r->direct_ping_ns = now;
  note(r, KW_RP_NOTE_SELECTED, NULL, (uint64_t)(int64_t)s, n);
  if (r->cbs->path_changed)
    r->cbs->path_changed(r->user);
  return true;
}

/* False if nothing was sent. */
static bool send_ping(kw__rp *r, const kw_sockaddr *to, uint64_t now) {
  const kw__path *p = kw__paths_get(&r->pt, kw__paths_find(&r->pt, to));
  bool probe = !(p && p->state == KW_PST_VALIDATED);
  uint8_t tx[KW_DISCO_TXID_LEN];
  r->cbs->random(r->user, tx, sizeof tx);
  if (!r->cbs->send_ping(r->user, to, tx, probe))
    return false;
  /* remembered: a Pong must answer a Ping we sent, to that address */
  kw__rp_ping *t = &r->pings[r->next_ping++ % KW_RP_PINGS];
  memcpy(t->tx_id, tx, sizeof t->tx_id);
  t->to = *to;
  t->sent_ns = now;
  t->used = true;
  return true;
}

/* Which candidates ping_candidates pings (never unusable ones). */
enum {
  PING_ALL,         /* a round */
  PING_UNVALIDATED, /* the re-pings of a round */
  PING_ANSWER,      /* the answer to a CallMeMaybe: all but the validated
                     * paths that answered a Ping of ours already */
};

/* A validated path a Pong of ours proved: open both ways. */
static bool ponged(const kw__path *p) {
  return p->state == KW_PST_VALIDATED &&
         (p->has_rtt & (1u << KW_RP_RTT_SLOT_DISCO));
}

static size_t ping_candidates(kw__rp *r, int which, uint64_t now) {
  size_t n = 0, refused = 0;
  for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = kw__paths_get(&r->pt, i);
    if (!p || p->state == KW_PST_UNUSABLE)
      continue;
    if (which == PING_UNVALIDATED && p->state == KW_PST_VALIDATED)
      continue;
    if (which == PING_ANSWER && ponged(p))
      continue;
    if (!send_ping(r, &p->addr, now)) {
      refused++; /* left as it was: a later round pings it */
      continue;
    }
    if (p->state == KW_PST_UNKNOWN)
      (void)kw__paths_set_state(&r->pt, i, KW_PST_VALIDATING, now);
    n++;
  }
  if (refused)
    note(r, KW_RP_NOTE_PROBE_LIMITED, NULL, refused, r->probes.refused);
  return n;
}

/* Candidates just pinged get KW_RP_PUNCH_TRIES - 1 more Pings, then the
 * silent ones are retired. */
static void schedule_repings(kw__rp *r, uint64_t now) {
  r->punch_tries_left = KW_RP_PUNCH_TRIES - 1;
  r->punch_next_ns = now + KW_RP_PUNCH_RETRY_NS;
  r->punch_settle = false;
}

static void punch_round(kw__rp *r, uint64_t now) {
  bool cmm = r->cbs->send_call_me_maybe(r->user);
  size_t n = ping_candidates(r, PING_ALL, now);
  schedule_repings(r, now);
  if (!cmm)
    kw__holepunch_round_failed(&r->hp, now);
  note(r, KW_RP_NOTE_ROUND, NULL, n, cmm);
}

/* Carries out what the schedule says is due now. */
static void service(kw__rp *r, uint64_t now) {
  if (!r->keyed)
    return;
  if (kw__holepunch_poll(&r->hp, now)) {
    punch_round(r, now);
    return;
  }
  if (r->punch_tries_left > 0 && now >= r->punch_next_ns) {
    r->punch_tries_left--;
    r->punch_next_ns = now + KW_RP_PUNCH_RETRY_NS;
    if (kw__paths_selected(&r->pt) <= KW_PATHS_RELAY)
      (void)ping_candidates(r, PING_UNVALIDATED, now);
    if (r->punch_tries_left == 0)
      r->punch_settle = true;
  } else if (r->punch_settle && now >= r->punch_next_ns) {
    /* the round is over: candidates that never answered become inactive,
     * so the table's limits prune them (oldest first); a later round
     * pings them again */
    r->punch_settle = false;
    for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
      const kw__path *p = kw__paths_get(&r->pt, i);
      if (p && p->state == KW_PST_VALIDATING)
        (void)kw__paths_set_state(&r->pt, i, KW_PST_INACTIVE, now);
    }
  }
}

int kw__rp_conn_open(kw__rp *r) {
  r->nconns++;
  r->idle_since = 0;
  for (int i = 0; i < KW_RP_RTT_SLOT_DISCO; i++) {
    if (!(r->rtt_slots & (1u << i))) {
      r->rtt_slots |= 1u << i;
      r->rtt_at[i] = 0;
      return i;
    }
  }
  return -1;
}

void kw__rp_conn_close(kw__rp *r, int slot, uint64_t now) {
  if (slot >= 0 && slot < KW_RP_RTT_SLOT_DISCO &&
      (r->rtt_slots & (1u << slot))) {
    kw__paths_conn_gone(&r->pt, (size_t)slot);
    r->rtt_slots &= ~(1u << slot);
  }
  if (r->nconns > 0 && --r->nconns == 0)
    r->idle_since = now ? now : 1;
}

void kw__rp_conn_up(kw__rp *r, uint64_t now) {
  kw__holepunch_conn_added(&r->hp, now);
  service(r, now);
}

void kw__rp_conn_down(kw__rp *r, uint64_t now) {
  kw__holepunch_conn_removed(&r->hp, now);
}

void kw__rp_idle(kw__rp *r, uint64_t now) {
  if (!r->nconns)
    r->idle_since = now ? now : 1;
}

void kw__rp_rerace(kw__rp *r, uint64_t now) {
  r->idle_since = 0;
  for (int i = 0; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = kw__paths_get(&r->pt, i);
    if (!p || p->state != KW_PST_VALIDATED)
      continue;
    (void)kw__paths_set_state(&r->pt, i,
                              p->relay ? KW_PST_UNKNOWN : KW_PST_INACTIVE, now);
  }
  (void)kw__paths_select(&r->pt, now, NULL);
}

bool kw__rp_candidate(kw__rp *r, const kw_sockaddr *a, uint8_t source,
                      uint64_t now) {
  bool created = false;
  /* over the limits the table prunes (oldest inactive first, then the
   * lowest priority; never the selected path); a refused add is dropped */
  if (kw__paths_add(&r->pt, a, source, now, NULL, &created) != KW_OK)
    return false;
  if (created && a && r->cbs->path_known)
    r->cbs->path_known(r->user, a);
  return created;
}

/* A path a connection's packets already validated. */
static bool known_by_conn(const kw__path *p) {
  return p && p->state == KW_PST_VALIDATED && (p->sources & KW_PSRC_CONN);
}

void kw__rp_packet(kw__rp *r, const kw_sockaddr *from, uint64_t now) {
  int idx;
  if (!from) {
    if (known_by_conn(kw__paths_get(&r->pt, KW_PATHS_RELAY)))
      return; /* the common case on the relay: nothing new */
    if (kw__paths_add(&r->pt, NULL, KW_PSRC_CONN, now, &idx, NULL) != KW_OK)
      return;
  } else {
    const kw_sockaddr *cur = kw__rp_direct(r);
    if (cur && kw__sockaddr_equal(cur, from)) {
      r->direct_rx_ns = now;
      return; /* the common case: a packet on the selected path */
    }
    /* the remote's packets come from another address while the selected
     * one has gone quiet: its NAT rebound (or it moved). Follow it now
     * rather than after the liveness timeout. */
    bool rebind = cur && now - r->direct_rx_ns >= KW_RP_REBIND_QUIET_NS;
    if (!rebind &&
        known_by_conn(kw__paths_get(&r->pt, kw__paths_find(&r->pt, from))))
      return; /* a validated other path: selection already knows it */
    bool created = false;
    if (kw__paths_add(&r->pt, from, KW_PSRC_CONN, now, &idx, &created) !=
        KW_OK)
      return;
    if (created && r->cbs->path_known)
      r->cbs->path_known(r->user, from);
    if (rebind) {
      int old = kw__paths_selected(&r->pt);
      note(r, KW_RP_NOTE_REBIND, from, (uint64_t)(int64_t)old, 0);
      (void)kw__paths_set_state(&r->pt, old, KW_PST_INACTIVE, now);
    }
  }
  const kw__path *p = kw__paths_get(&r->pt, idx);
  if (p->state != KW_PST_VALIDATED)
    (void)kw__paths_set_state(&r->pt, idx, KW_PST_VALIDATED, now);
  (void)reselect(r, now);
}

bool kw__rp_rtt_due(const kw__rp *r, int slot, uint64_t now) {
  if (slot < 0 || slot >= KW_RP_RTT_SLOT_DISCO)
    return false;
  if (kw__paths_selected(&r->pt) == KW_PATHS_NONE ||
      now - r->selected_ns < KW_RP_RTT_SETTLE_NS)
    return false; /* QUIC sees one path and averages: only a settled one */
  return !r->rtt_at[slot] || now - r->rtt_at[slot] >= KW_RP_RTT_EVERY_NS;
}

void kw__rp_rtt_sample(kw__rp *r, int slot, uint64_t rtt_ns, uint64_t now) {
  if (rtt_ns == 0 || !kw__rp_rtt_due(r, slot, now))
    return;
  int s = kw__paths_selected(&r->pt);
  r->rtt_at[slot] = now;
  (void)kw__paths_rtt_sample(&r->pt, s, (size_t)slot, rtt_ns);
  (void)reselect(r, now); /* RTT samples may move the selection */
}

void kw__rp_ping_received(kw__rp *r, const kw_sockaddr *from, uint64_t now) {
  if (!r->keyed)
    return;
  /* an address the remote pings us from is worth pinging back (it may be
   * a mapping its NAT made for us: peer-reflexive); one we know but have
   * not validated too, as the remote's mapping may just have opened */
  const kw__path *p = kw__paths_get(&r->pt, kw__paths_find(&r->pt, from));
  if (p && p->state == KW_PST_VALIDATED)
    return;
  if (kw__rp_candidate(r, from, KW_PSRC_DISCO, now))
    kw__holepunch_remote_candidates(&r->hp, now);
  (void)send_ping(r, from, now);
}

bool kw__rp_pong_received(kw__rp *r, const uint8_t tx_id[KW_DISCO_TXID_LEN],
                          const kw_sockaddr *from, uint64_t now,
                          uint64_t *rtt_ns) {
  for (size_t i = 0; i < KW_RP_PINGS; i++) {
    kw__rp_ping *t = &r->pings[i];
    if (!t->used || memcmp(t->tx_id, tx_id, sizeof t->tx_id) != 0 ||
        !kw__sockaddr_equal(&t->to, from))
      continue;
    t->used = false;
    uint64_t rtt = now - t->sent_ns;
    if (rtt_ns)
      *rtt_ns = rtt;
    const kw_sockaddr *cur = kw__rp_direct(r);
    if (cur && kw__sockaddr_equal(cur, from))
      r->direct_rx_ns = now;
    int idx;
    if (kw__paths_add(&r->pt, from, KW_PSRC_DISCO, now, &idx, NULL) != KW_OK)
      return true;
    /* a Pong revives a path given up as inactive */
    (void)kw__paths_set_state(&r->pt, idx, KW_PST_VALIDATED, now);
    (void)kw__paths_rtt_sample(&r->pt, idx, KW_RP_RTT_SLOT_DISCO, rtt);
    (void)reselect(r, now);
    return true;
  }
  return false;
}

void kw__rp_call_me_maybe(kw__rp *r, const kw_sockaddr *addrs, size_t n,
                          uint64_t now) {
  if (!r->keyed)
    return;
  bool fresh = false;
  for (size_t i = 0; i < n; i++)
    fresh = kw__rp_candidate(r, &addrs[i], KW_PSRC_DISCO, now) || fresh;
  bool ran = false;
  if (fresh) {
    kw__holepunch_remote_candidates(&r->hp, now);
    ran = kw__holepunch_poll(&r->hp, now);
    if (ran)
      punch_round(r, now); /* ours, with every candidate, now */
  }
  if (!ran && kw__holepunch_answer(&r->hp, now)) {
    /* the simultaneous open: the remote is pinging our candidates now, so
     * ping its candidates now too - all but the validated paths that
     * answered a Ping of ours already (open both ways; the remote's own
     * Pings check them). A path validated by connection packets only is
     * pinged: its Pong tells us our address as the remote sees it.
     * Nothing new within 2 s of our last answer: its re-pings cover that
     * time */
    size_t pinged = ping_candidates(r, PING_ANSWER, now);
    schedule_repings(r, now);
    note(r, KW_RP_NOTE_ANSWER, NULL, pinged, 0);
  }
}

void kw__rp_local_candidates(kw__rp *r, uint64_t now) {
  kw__holepunch_local_candidates(&r->hp, now);
  service(r, now);
}

void kw__rp_network_change(kw__rp *r, uint64_t now) {
  /* the round this asks for pings every path, the selected one too:
   * whether it survived is known within a round trip, not in 2 s */
  kw__holepunch_network_change(&r->hp, now);
  service(r, now);
}

/* The selected direct path: liveness Pings when quiet, fall back when
 * silent too long. */
static void watch_direct(kw__rp *r, uint64_t now) {
  const kw_sockaddr *d = kw__rp_direct(r);
  if (!d || !r->nconns || !r->keyed)
    return;
  uint64_t quiet = now - r->direct_rx_ns;
  if (quiet > KW_RP_DIRECT_DEAD_NS) {
    note(r, KW_RP_NOTE_DIRECT_LOST, d, quiet, 0);
    (void)kw__paths_set_state(&r->pt, kw__paths_selected(&r->pt),
                              KW_PST_INACTIVE, now);
    (void)reselect(r, now);
    kw__holepunch_path_lost(&r->hp, now);
    service(r, now);
  } else if (quiet > KW_RP_DIRECT_QUIET_NS &&
             now - r->direct_ping_ns > KW_RP_DIRECT_PING_EVERY_NS) {
    r->direct_ping_ns = now;
    (void)send_ping(r, d, now);
  }
}

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

uint64_t kw__rp_next_deadline(const kw__rp *r) {
  if (!r->nconns)
    return r->idle_since ? r->idle_since + KW_RP_IDLE_NS : KW_RP_NEVER;
  if (!r->keyed)
    return KW_RP_NEVER;
  uint64_t d = kw__holepunch_next_deadline(&r->hp);
  if (r->punch_tries_left > 0 || r->punch_settle)
    d = min64(d, r->punch_next_ns);
  if (kw__rp_direct(r)) {
    /* strictly past the quiet and dead times, as watch_direct counts */
    d = min64(d, r->direct_rx_ns + KW_RP_DIRECT_DEAD_NS + 1);
    d = min64(d, max64(r->direct_rx_ns + KW_RP_DIRECT_QUIET_NS + 1,
                       r->direct_ping_ns + KW_RP_DIRECT_PING_EVERY_NS + 1));
  }
  return d;
}

void kw__rp_handle_timeout(kw__rp *r, uint64_t now) {
  if (!r->nconns) {
    if (r->idle_since && now - r->idle_since >= KW_RP_IDLE_NS &&
        r->cbs->idle_expired)
      r->cbs->idle_expired(r->user); /* last: it may free r */
    return;
  }
  watch_direct(r, now);
  service(r, now);
}
