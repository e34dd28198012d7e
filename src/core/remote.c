/* SPDX-License-Identifier: MIT */
/* One remote's path policy (see remote.h; docs/ARCHITECTURE.md section 4). */
#include "core/remote.h"

#include <string.h>

#include "core/sockaddr.h"

static void bday_reap(kw__rp *r);
static void lose_direct(kw__rp *r, uint64_t now, unsigned why);

/* The selected direct path was heard (a packet, a Pong, a Ping by it). */
static void heard_direct(kw__rp *r, uint64_t now) {
  r->direct_rx_ns = now;
  r->unanswered_ns = 0;
  r->suspect_ns = 0;
}

static void note(kw__rp *r, kw__rp_note what, const kw_sockaddr *a, uint64_t x,
                 uint64_t y) {
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
  if (s > KW_PATHS_RELAY) {
    kw__holepunch_direct_again(&r->hp); /* no more recovery rounds */
    r->lost_ns = 0;                     /* nor Pings of a lost path */
  }
  r->selected_ns = now;
  heard_direct(r, now);
  r->direct_ping_ns = now;
  r->direct_tx_ns = 0;
  r->direct_by_conn = false;
  note(r, KW_RP_NOTE_SELECTED, NULL, (uint64_t)(int64_t)s, n);
  bday_reap(r);
  if (r->cbs->path_changed)
    r->cbs->path_changed(r->user);
  return true;
}

/* False if nothing was sent. */
static bool send_ping_on(kw__rp *r, const kw_sockaddr *to, unsigned sock,
                         uint64_t now) {
  const kw__path *p = kw__paths_get(&r->pt, kw__paths_find(&r->pt, to));
  bool probe = !(p && p->state == KW_PST_VALIDATED);
  uint8_t tx[KW_DISCO_TXID_LEN];
  r->cbs->random(r->user, tx, sizeof tx);
  if (sock) {
    if (!r->cbs->bday_send || !r->cbs->bday_send(r->user, sock, to, tx))
      return false;
  } else if (!r->cbs->send_ping(r->user, to, tx, probe)) {
    return false;
  }
  /* remembered: a Pong must answer a Ping we sent, to that address */
  kw__rp_ping *t = &r->pings[r->next_ping++ % KW_RP_PINGS];
  memcpy(t->tx_id, tx, sizeof t->tx_id);
  t->sock = (uint16_t)sock;
  t->to = *to;
  t->sent_ns = now;
  t->used = true;
  return true;
}

/* A Ping on the path's own socket (an extra one for a birthday path). */
static bool send_ping(kw__rp *r, const kw_sockaddr *to, uint64_t now) {
  const kw__path *p = kw__paths_get(&r->pt, kw__paths_find(&r->pt, to));
  return send_ping_on(r, to, p ? p->sock : 0, now);
}

/* ---- birthday probing (remote.h) ---------------------------------------- */

static bool same_ip_of(const kw_sockaddr *a, const kw_sockaddr *b) {
  return a->family == b->family &&
         memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16) == 0;
}

/* Whether an attempt fits now; *spray: which side of it we are. */
static bool bday_wanted(const kw__rp *r, bool *spray) {
  if (r->bday_off || !r->cbs->bday_send || !r->keyed || !r->nconns ||
      !r->remote_refl.family || kw__rp_direct(r))
    return false;
  if (r->nat_local == KW_RP_NAT_EDM && r->nat_remote == KW_RP_NAT_EIM) {
    *spray = false;
    return true;
  }
  if (r->nat_local == KW_RP_NAT_EIM && r->nat_remote == KW_RP_NAT_EDM) {
    *spray = true;
    return true;
  }
  return false;
}

/* An attempt's tx id: its random prefix, the socket, the port sprayed. */
static void bday_tx(const kw__rp *r, unsigned sock, uint16_t port,
                    uint8_t tx[KW_DISCO_TXID_LEN]) {
  memcpy(tx, r->bday.key, sizeof r->bday.key);
  tx[8] = (uint8_t)(sock >> 8);
  tx[9] = (uint8_t)sock;
  tx[10] = (uint8_t)(port >> 8);
  tx[11] = (uint8_t)port;
}

static void bday_end(kw__rp *r, unsigned keep) {
  r->bday.active = false;
  r->bday.chosen = (uint16_t)keep;
  if (r->cbs->bday_close)
    r->cbs->bday_close(r->user, keep);
}

/* The sends due now: a tick's sockets or spray Pings. */
static void bday_step(kw__rp *r, uint64_t now) {
  if (!r->bday.active || now < r->bday.next_ns)
    return;
  if (now - r->bday.start_ns >= KW_RP_BDAY_ATTEMPT_NS || kw__rp_direct(r)) {
    if (!kw__rp_direct(r))
      note(r, KW_RP_NOTE_BDAY_MISS, &r->bday.target, r->bday.sent, 0);
    bday_end(r, 0); /* a direct path by other means, or no hit in time */
    return;
  }
  unsigned limit = r->bday.spray ? KW_RP_BDAY_SPRAY : KW_RP_BDAY_SOCKETS;
  unsigned per =
      r->bday.spray ? KW_RP_BDAY_SPRAY_PER_TICK : KW_RP_BDAY_OPEN_PER_TICK;
  for (unsigned k = 0; k < per && r->bday.sent < limit; k++) {
    kw_sockaddr to = r->bday.target;
    unsigned sock = 0;
    uint16_t port = 0;
    if (r->bday.spray) {
      uint8_t b[2];
      r->cbs->random(r->user, b, sizeof b);
      port =
          (uint16_t)(KW_RP_BDAY_PORT_MIN + ((unsigned)b[0] << 8 | b[1]) %
                                               (65536u - KW_RP_BDAY_PORT_MIN));
      to.port = port;
    } else {
      sock = r->bday.sent + 1;
    }
    uint8_t tx[KW_DISCO_TXID_LEN];
    bday_tx(r, sock, port, tx);
    r->bday.sent++;
    if (!r->cbs->bday_send(r->user, sock, &to, tx) && !r->bday.spray)
      break; /* no more sockets now: the next tick tries again */
  }
  r->bday.next_ns = r->bday.sent < limit
                        ? now + KW_RP_BDAY_TICK_NS
                        : r->bday.start_ns + KW_RP_BDAY_ATTEMPT_NS;
}

static void bday_maybe_start(kw__rp *r, uint64_t now) {
  bool spray;
  if (r->bday.active || !bday_wanted(r, &spray))
    return;
  if (r->bday.have_last && now - r->bday.start_ns < KW_RP_BDAY_EVERY_NS)
    return;
  if (r->bday.chosen)
    bday_end(r, 0); /* the socket of an old hit, no longer selected */
  r->bday.active = true;
  r->bday.spray = spray;
  r->bday.have_last = true;
  r->cbs->random(r->user, r->bday.key, sizeof r->bday.key);
  r->bday.target = r->remote_refl;
  r->bday.sent = 0;
  r->bday.chosen = 0;
  r->bday.start_ns = now;
  r->bday.next_ns = now;
  r->bday.attempts++;
  note(r, KW_RP_NOTE_BDAY_START, &r->bday.target, spray ? 0 : 1, 0);
  bday_step(r, now);
}

/* A Pong answering an attempt's Ping: the hit. */
static bool bday_pong(kw__rp *r, const uint8_t tx[KW_DISCO_TXID_LEN],
                      const kw_sockaddr *from, unsigned sock, uint64_t now) {
  if (!r->bday.active || memcmp(tx, r->bday.key, sizeof r->bday.key) != 0)
    return false;
  unsigned tsock = (unsigned)tx[8] << 8 | tx[9];
  uint16_t port = (uint16_t)((unsigned)tx[10] << 8 | tx[11]);
  if (tsock != sock)
    return false;
  if (r->bday.spray ? (sock != 0 || !same_ip_of(from, &r->bday.target) ||
                       from->port != port)
                    : (sock == 0 || !kw__sockaddr_equal(from, &r->bday.target)))
    return false;
  int idx;
  if (kw__paths_add(&r->pt, from, KW_PSRC_DISCO, now, &idx, NULL) != KW_OK)
    return true;
  (void)kw__paths_set_sock(&r->pt, idx, (uint16_t)sock);
  (void)kw__paths_set_state(&r->pt, idx, KW_PST_VALIDATED, now);
  r->bday.hits++;
  note(r, KW_RP_NOTE_BDAY_HIT, from, sock, r->bday.sent);
  bday_end(r, sock); /* every other extra socket closes now */
  (void)reselect(r, now);
  (void)send_ping(r, from, now); /* a tracked Ping: the path's RTT */
  return true;
}

/* After a selection change: an extra socket no path selected uses is
 * closed (and the paths on it fall back to our own socket). */
static void bday_reap(kw__rp *r) {
  if (r->bday.active || !r->bday.chosen)
    return;
  if (kw__rp_direct_sock(r) == r->bday.chosen)
    return;
  for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = kw__paths_get(&r->pt, i);
    if (p && p->sock == r->bday.chosen)
      (void)kw__paths_set_sock(&r->pt, i, 0);
  }
  bday_end(r, 0);
}

unsigned kw__rp_direct_sock(const kw__rp *r) {
  int s = kw__paths_selected(&r->pt);
  if (s <= KW_PATHS_RELAY)
    return 0;
  return kw__paths_get(&r->pt, s)->sock;
}

void kw__rp_set_birthday(kw__rp *r, bool on) {
  r->bday_off = !on;
  if (!on && r->bday.active)
    bday_end(r, 0);
}

void kw__rp_remote_nat(kw__rp *r, kw__rp_nat nat, const kw_sockaddr *refl,
                       uint64_t now) {
  r->nat_remote = (uint8_t)nat;
  if (refl && (refl->family == 4 || refl->family == 6) && refl->port)
    r->remote_refl = *refl;
  bday_maybe_start(r, now);
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

/* The selected direct path, quiet long enough that a CallMeMaybe from
 * the remote means it does not get through to us (remote.h). */
static bool selected_quiet(const kw__rp *r, int i, uint64_t now) {
  uint64_t quiet = now - r->direct_rx_ns;
  return i == kw__paths_selected(&r->pt) && quiet >= KW_RP_ANSWER_QUIET_NS &&
         quiet < KW_RP_DIRECT_QUIET_NS;
}

static size_t ping_candidates(kw__rp *r, int which, uint64_t now) {
  size_t n = 0, refused = 0;
  for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = kw__paths_get(&r->pt, i);
    if (!p || p->state == KW_PST_UNUSABLE)
      continue;
    if (which == PING_UNVALIDATED && p->state == KW_PST_VALIDATED)
      continue;
    if (which == PING_ANSWER && ponged(p) && !selected_quiet(r, i, now))
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
  bday_step(r, now);
  bday_maybe_start(r, now);
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
  if (r->nconns > 0 && --r->nconns == 0) {
    r->idle_since = now ? now : 1;
    if (r->bday.active)
      bday_end(r, 0); /* no connection to carry: its sockets close now */
  }
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
    const kw_sockaddr *cur = kw__rp_direct(r);
    if (cur && r->direct_by_conn && r->nconns && r->keyed &&
        now - r->direct_rx_ns >= KW_RP_REBIND_QUIET_NS)
      /* the remote's packets come by the relay while the direct path is
       * quiet: it gave that path up; so do we (the lost path's Pings
       * bring it back) rather than send into it until our own rule */
      lose_direct(r, now, KW_RP_LOST_REMOTE_RELAY);
    else if (known_by_conn(kw__paths_get(&r->pt, KW_PATHS_RELAY)))
      return; /* the common case on the relay: nothing new */
    if (kw__paths_add(&r->pt, NULL, KW_PSRC_CONN, now, &idx, NULL) != KW_OK)
      return;
  } else {
    const kw_sockaddr *cur = kw__rp_direct(r);
    if (cur && kw__sockaddr_equal(cur, from)) {
      heard_direct(r, now);
      r->direct_by_conn = true;
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
    if (kw__paths_add(&r->pt, from, KW_PSRC_CONN, now, &idx, &created) != KW_OK)
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

void kw__rp_packet_on(kw__rp *r, const kw_sockaddr *from, unsigned sock,
                      uint64_t now) {
  if (sock && from) {
    const kw__path *p = kw__paths_get(&r->pt, kw__paths_find(&r->pt, from));
    if (!p || p->sock != sock)
      return; /* its Pong (or the remote's next Ping there) makes the path */
  }
  kw__rp_packet(r, from, now);
}

void kw__rp_sent(kw__rp *r, uint64_t now) {
  r->direct_tx_ns = now;
  if (!r->unanswered_ns)
    r->unanswered_ns = now ? now : 1;
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

void kw__rp_ping_received_on(kw__rp *r, const kw_sockaddr *from, unsigned sock,
                             uint64_t now) {
  if (!sock) {
    kw__rp_ping_received(r, from, now);
    return;
  }
  /* a spray Ping of the remote found one of our extra sockets (the caller
   * answered it from there): ping back from it, once per socket */
  if (!r->keyed || !r->bday.active || r->bday.spray || sock > r->bday.sent ||
      !kw__sockaddr_equal(from, &r->bday.target))
    return;
  uint8_t tx[KW_DISCO_TXID_LEN];
  bday_tx(r, sock, 0, tx);
  (void)r->cbs->bday_send(r->user, sock, from, tx);
}

void kw__rp_ping_received(kw__rp *r, const kw_sockaddr *from, uint64_t now) {
  if (!r->keyed)
    return;
  /* an address the remote pings us from is worth pinging back (it may be
   * a mapping its NAT made for us: peer-reflexive); one we know but have
   * not validated too, as the remote's mapping may just have opened */
  const kw_sockaddr *cur = kw__rp_direct(r);
  if (cur && kw__sockaddr_equal(cur, from))
    heard_direct(r, now); /* the remote hears us and reaches us by it */
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
  return kw__rp_pong_received_on(r, tx_id, from, 0, now, rtt_ns);
}

bool kw__rp_pong_received_on(kw__rp *r, const uint8_t tx_id[KW_DISCO_TXID_LEN],
                             const kw_sockaddr *from, unsigned sock,
                             uint64_t now, uint64_t *rtt_ns) {
  if (bday_pong(r, tx_id, from, sock, now))
    return true;
  for (size_t i = 0; i < KW_RP_PINGS; i++) {
    kw__rp_ping *t = &r->pings[i];
    if (!t->used || memcmp(t->tx_id, tx_id, sizeof t->tx_id) != 0 ||
        t->sock != sock || !kw__sockaddr_equal(&t->to, from))
      continue;
    t->used = false;
    uint64_t rtt = now - t->sent_ns;
    if (rtt_ns)
      *rtt_ns = rtt;
    const kw_sockaddr *cur = kw__rp_direct(r);
    if (cur && kw__sockaddr_equal(cur, from))
      heard_direct(r, now);
    int idx;
    if (kw__paths_add(&r->pt, from, KW_PSRC_DISCO, now, &idx, NULL) != KW_OK)
      return true;
    if (cur && r->suspect_ns && idx != kw__paths_selected(&r->pt)) {
      /* another path answers while the selected one is suspect: move to
       * it now (the remote's address changed; remote.h) */
      int old = kw__paths_selected(&r->pt);
      note(r, KW_RP_NOTE_REBIND, from, (uint64_t)(int64_t)old, 1);
      (void)kw__paths_set_state(&r->pt, old, KW_PST_INACTIVE, now);
    }
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

void kw__rp_local_nat(kw__rp *r, kw__rp_nat nat, uint64_t now) {
  if (r->nat_local == (uint8_t)nat)
    return;
  r->nat_local = (uint8_t)nat;
  /* the remote hears of it with the next CallMeMaybe: ask for a round */
  kw__holepunch_local_candidates(&r->hp, now);
  service(r, now);
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

static uint64_t min64(uint64_t a, uint64_t b) {
  return a < b ? a : b;
}
static uint64_t max64(uint64_t a, uint64_t b) {
  return a > b ? a : b;
}

/* The selected direct path's RTT x k, or 0 when it has none. */
static uint64_t rtts(const kw__rp *r, uint64_t k) {
  uint64_t rtt = kw__paths_rtt(&r->pt, kw__paths_selected(&r->pt));
  if (rtt == KW_PATHS_RTT_UNKNOWN || rtt > KW_RP_DIRECT_DEAD_NS)
    return 0;
  return rtt * k;
}

/* Liveness under load (remote.h): unanswered sending before suspicion,
 * and the grace its Pings get. */
static uint64_t busy_quiet(const kw__rp *r) {
  return min64(max64(KW_RP_BUSY_QUIET_NS, rtts(r, KW_RP_BUSY_QUIET_RTTS)),
               KW_RP_DIRECT_QUIET_NS);
}

static uint64_t busy_grace(const kw__rp *r) {
  return min64(max64(KW_RP_BUSY_GRACE_NS, rtts(r, KW_RP_BUSY_GRACE_RTTS)),
               KW_RP_DIRECT_DEAD_NS - KW_RP_DIRECT_QUIET_NS);
}

static void recheck(kw__rp *r) {
  if (r->cbs->recheck)
    r->cbs->recheck(r->user);
}

/* The selected direct path is given up (remote.h, liveness). */
static void lose_direct(kw__rp *r, uint64_t now, unsigned why) {
  const kw_sockaddr *d = kw__rp_direct(r);
  note(r, KW_RP_NOTE_DIRECT_LOST, d, now - r->direct_rx_ns, why);
  r->lost = *d;
  r->lost_ns = now ? now : 1;
  r->lost_ping_ns = now;
  (void)kw__paths_set_state(&r->pt, kw__paths_selected(&r->pt), KW_PST_INACTIVE,
                            now);
  (void)reselect(r, now);
  kw__holepunch_path_lost(&r->hp, now);
  if (why != KW_RP_LOST_LOAD)
    recheck(r); /* (a suspect path asked already) */
  service(r, now);
}

/* The selected direct path: liveness Pings when quiet, fall back when
 * silent too long (sooner when our sends go unanswered). */
static bool lost_pinging(const kw__rp *r) {
  return r->lost_ns && r->nconns && r->keyed && !kw__rp_direct(r);
}

static void watch_direct(kw__rp *r, uint64_t now) {
  const kw_sockaddr *d = kw__rp_direct(r);
  if (lost_pinging(r)) {
    if (now - r->lost_ns >= KW_RP_LOST_PING_FOR_NS) {
      r->lost_ns = 0; /* the recovery rounds go on */
    } else if (now - r->lost_ping_ns >= KW_RP_LOST_PING_EVERY_NS) {
      r->lost_ping_ns = now;
      (void)send_ping(r, &r->lost, now);
    }
  }
  if (!d || !r->nconns || !r->keyed)
    return;
  r->watched_ns = now;
  uint64_t quiet = now - r->direct_rx_ns;
  bool busy_dead = r->suspect_ns && now - r->suspect_ns >= busy_grace(r);
  if (quiet > KW_RP_DIRECT_DEAD_NS || busy_dead) {
    lose_direct(r, now, busy_dead ? KW_RP_LOST_LOAD : KW_RP_LOST_IDLE);
    return;
  }
  if (r->suspect_ns) {
    if (now - r->suspect_ping_ns >= KW_RP_BUSY_PING_EVERY_NS) {
      r->suspect_ping_ns = now;
      (void)send_ping(r, d, now);
    }
    return;
  }
  if (r->unanswered_ns && r->direct_by_conn &&
      now - r->unanswered_ns >= busy_quiet(r)) {
    if (r->direct_tx_ns - r->unanswered_ns >= KW_RP_BUSY_SPAN_NS) {
      r->suspect_ns = now; /* sending and not heard: probe at once */
      r->suspect_ping_ns = now;
      (void)send_ping(r, d, now);
      (void)r->cbs->send_call_me_maybe(r->user); /* ask to be pinged */
      recheck(r);
      return;
    }
    r->unanswered_ns = 0; /* what we sent needed no answer: idle */
  }
  if (quiet > KW_RP_DIRECT_QUIET_NS &&
      now - r->direct_ping_ns > KW_RP_DIRECT_PING_EVERY_NS) {
    r->direct_ping_ns = now;
    (void)send_ping(r, d, now);
  }
}

uint64_t kw__rp_next_deadline(const kw__rp *r) {
  if (!r->nconns)
    return r->idle_since ? r->idle_since + KW_RP_IDLE_NS : KW_RP_NEVER;
  if (!r->keyed)
    return KW_RP_NEVER;
  uint64_t d = kw__holepunch_next_deadline(&r->hp);
  bool spray;
  if (r->bday.active)
    d = min64(d, r->bday.next_ns);
  else if (r->bday.have_last && bday_wanted(r, &spray))
    d = min64(d, r->bday.start_ns + KW_RP_BDAY_EVERY_NS);
  if (r->punch_tries_left > 0 || r->punch_settle)
    d = min64(d, r->punch_next_ns);
  if (lost_pinging(r))
    d = min64(d, min64(r->lost_ns + KW_RP_LOST_PING_FOR_NS,
                       r->lost_ping_ns + KW_RP_LOST_PING_EVERY_NS));
  if (kw__rp_direct(r)) {
    /* strictly past the quiet and dead times, as watch_direct counts */
    d = min64(d, r->direct_rx_ns + KW_RP_DIRECT_DEAD_NS + 1);
    if (r->suspect_ns) { /* its Pings replace the idle rule's */
      d = min64(d, r->suspect_ns + busy_grace(r));
      d = min64(d, r->suspect_ping_ns + KW_RP_BUSY_PING_EVERY_NS);
    } else {
      d = min64(d, max64(r->direct_rx_ns + KW_RP_DIRECT_QUIET_NS + 1,
                         r->direct_ping_ns + KW_RP_DIRECT_PING_EVERY_NS + 1));
      /* liveness under load (only on a path the remote used) */
      uint64_t b = r->unanswered_ns ? r->unanswered_ns : r->direct_rx_ns;
      /* with nothing sent yet, a send since (kw__rp_sent arms nothing)
       * is checked busy_quiet after the path was last heard, once */
      if (r->direct_by_conn &&
          (r->unanswered_ns || b + busy_quiet(r) > r->watched_ns))
        d = min64(d, b + busy_quiet(r));
    }
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
