/* SPDX-License-Identifier: MIT */
/*
 * Disco on the endpoint (DESIGN sections 6 and 7): sealed Ping, Pong and
 * CallMeMaybe on the magicsock's UDP sockets and through relays, and the
 * hole-punching rounds that turn a relayed connection into a direct one.
 *
 * Each remote's path table (core/paths) and hole-punch schedule
 * (core/holepunch) decide; this file feeds them events and carries out
 * what they decide:
 *  - When a round runs (a connection came up, new local or remote
 *    candidates, a network change, a lost direct path; at most every 5 s
 *    otherwise; an upgrade check every 60 s while no direct path has an
 *    RTT <= 10 ms; 100 ms after a round that could not reach the relay):
 *    CallMeMaybe with our candidates through the relay and a Ping to every
 *    candidate of the remote at the same time. Candidates still without a
 *    Pong are pinged again KW_PUNCH_RETRY_MS later, KW_PUNCH_TRIES in all.
 *  - The remote answers a CallMeMaybe by pinging our candidates at once, so
 *    both NATs see outbound packets and open their mappings (a CallMeMaybe
 *    that runs no round is answered at most once per 2 s).
 *  - Every Ping toward an address that is not a validated path comes out
 *    of the remote's and the endpoint's probe budgets (core/holepunch.h):
 *    a CallMeMaybe can name anyone's address, and the endpoint must not
 *    become a reflector toward third parties.
 *  - A Pong validates the address it came from with an RTT sample; the
 *    table selects (a validated direct path always beats the relay; lowest
 *    RTT within a kind, IPv6 3 ms ahead, 5 ms hysteresis) and QUIC moves
 *    onto the selection. Redundant direct paths stop being used.
 *  - Every connection feeds its QUIC RTT on the selected path into its own
 *    RTT slot; a path's RTT is the minimum over connections and Pongs.
 *  - A selected direct path is watched: when nothing arrived on it for
 *    KW_DIRECT_QUIET_MS it is pinged every second, and after
 *    KW_DIRECT_DEAD_MS of silence it is marked inactive, the remote falls
 *    back to its next best path (the QUIC connection is untouched) and a
 *    round runs at once.
 */
#include "endpoint/internal.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/addr_filter.h"
#include "core/disco.h"

#define KW_PUNCH_RETRY_MS 1000
#define KW_PUNCH_TRIES 3
/* A selected direct path silent this long gets liveness Pings... */
#define KW_DIRECT_QUIET_MS 2000
#define KW_DIRECT_PING_EVERY_MS 1000
/* ...and is given up this long after its last packet, when a relay can
 * carry the connection instead (then hole punching starts again). */
#define KW_DIRECT_DEAD_MS 5000
/* How often the timer looks at remotes with connections, at most. */
#define KW_DISCO_TICK_MS 250
/* A connection's QUIC RTT is credited to the selected path only once the
 * path has carried it this long (QUIC sees one path and averages). */
#define KW_RTT_SETTLE_MS 1000

#define MS 1000000ull

static uint64_t unix_ms(void) { return kw__unix_us() / 1000u; }

static bool remote_key(kw_endpoint *ep, kw__remote *r) {
  if (r->disco_key_ok)
    return true;
  if (!r->id_known)
    return false;
  kw__disco_key k;
  if (kw__disco_key_derive(ep->cfg.sk, r->id, &k) != KW_OK)
    return false;
  memcpy(r->disco_key, k.k, sizeof r->disco_key);
  kw__disco_key_wipe(&k);
  r->disco_key_ok = true;
  return true;
}

static kw__remote *remote_by_id(kw_endpoint *ep, const uint8_t id[KW_ID_LEN]) {
  /* prefer a remote that has connections */
  kw__remote *any = NULL;
  for (kw__remote *r = ep->remotes; r; r = r->next) {
    if (!r->id_known || memcmp(r->id, id, KW_ID_LEN) != 0)
      continue;
    if (r->nconns)
      return r;
    any = r;
  }
  return any;
}

static void send_udp(kw_endpoint *ep, const kw_sockaddr *to,
                     const uint8_t *p, size_t n) {
  kw__udp *u = to->family == 4 ? &ep->udp4 : &ep->udp6;
  size_t sent;
  if (u->fd >= 0 && ep->cfg.path_policy != KW_PATH_POLICY_RELAY_ONLY)
    (void)kw__udp_send(u, to, p, n, 0, &sent);
}

/* A Ping toward an address that is not a validated path of the remote
 * may be aimed at a third party (a CallMeMaybe names any address): it
 * comes out of the remote's and the endpoint's probe budgets. */
static bool probe_ok(kw_endpoint *ep, kw__remote *r, const kw_sockaddr *to,
                     size_t len) {
  const kw__path *p = kw__paths_get(&r->pt, kw__paths_find(&r->pt, to));
  if (p && p->state == KW_PST_VALIDATED)
    return true;
  return kw__probe_allow(&r->probes, &ep->probes, kw__now(ep), len);
}

/* False if nothing was sent (the probe budget is spent, or sealing
 * failed). */
static bool send_ping(kw_endpoint *ep, kw__remote *r, const kw_sockaddr *to) {
  kw__disco_msg m;
  memset(&m, 0, sizeof m);
  m.type = KW_DISCO_PING;
  m.ts_ms = unix_ms();
  randombytes_buf(m.tx_id, sizeof m.tx_id);
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  kw__disco_key k;
  memcpy(k.k, r->disco_key, sizeof k.k);
  kw_err e = kw__disco_seal(&k, ep->id, &m, buf, sizeof buf, &n);
  kw__disco_key_wipe(&k);
  if (e != KW_OK || !probe_ok(ep, r, to, n))
    return false;
  /* remember it: a Pong must answer a Ping we sent, to that address */
  kw__ping_tx *t = &r->pings[r->next_ping++ % KW_REMOTE_PINGS];
  memcpy(t->tx_id, m.tx_id, sizeof t->tx_id);
  t->to = *to;
  t->sent_ns = kw__now(ep);
  t->used = true;
  send_udp(ep, to, buf, n);
  return true;
}

/* False if the relay could not take it (a transient failure). */
static bool send_call_me_maybe(kw_endpoint *ep, kw__remote *r) {
  if (r->relay < 0)
    return true; /* no relay to reach it by: the Pings are all there is */
  kw_endpoint_addr me;
  if (kw_endpoint_get_addr(ep, &me) != KW_OK)
    return false;
  kw__disco_msg m;
  memset(&m, 0, sizeof m);
  m.type = KW_DISCO_CALL_ME_MAYBE;
  m.ts_ms = unix_ms();
  for (size_t i = 0; i < me.n_addrs && m.n_addrs < KW_MAX_DIRECT_ADDRS; i++)
    if (!kw__sockaddr_is_loopback(&me.addrs[i]))
      m.addrs[m.n_addrs++] = me.addrs[i];
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n, sent;
  kw__disco_key k;
  memcpy(k.k, r->disco_key, sizeof k.k);
  kw_err e = kw__disco_seal(&k, ep->id, &m, buf, sizeof buf, &n);
  kw__disco_key_wipe(&k);
  if (e != KW_OK)
    return false;
  return kw__relay_send_batch(ep, r->relay, r->id, buf, n, 0, &sent) ==
         KW_OK;
}

/* Pings every direct candidate that is not unusable; `unvalidated_only`
 * skips the validated ones (the retries of a round). */
static size_t ping_candidates(kw_endpoint *ep, kw__remote *r,
                              bool unvalidated_only) {
  size_t n = 0, refused = 0;
  uint64_t now = kw__now(ep);
  for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = kw__paths_get(&r->pt, i);
    if (!p || p->state == KW_PST_UNUSABLE)
      continue;
    if (unvalidated_only && p->state == KW_PST_VALIDATED)
      continue;
    if (!send_ping(ep, r, &p->addr)) {
      refused++; /* left as it was: a later round pings it */
      continue;
    }
    if (p->state == KW_PST_UNKNOWN)
      (void)kw__paths_set_state(&r->pt, i, KW_PST_VALIDATING, now);
    n++;
  }
  if (refused && kw__log_enabled(ep, KW_LOG_DEBUG)) {
    char idb[KW_ID_SHORTLEN + 1];
    kw_id_to_short(r->id, idb, sizeof idb);
    kw__log(ep, KW_LOG_DEBUG, "disco",
            "disco.probe_limited remote=%s refused=%zu total=%llu", idb,
            refused, (unsigned long long)r->probes.refused);
  }
  return n;
}

/* Our address as the remote saw it (a Pong's observed source): a
 * candidate of ours, peer-reflexive, that STUN may not know (no STUN
 * server, or a NAT mapping made for this remote). Listed with the
 * reflexive addresses in tickets, records and CallMeMaybe; it triggers no
 * round by itself (behind an endpoint-dependent NAT every remote sees
 * another port, and rounds for all on each would be churn). */
static void note_observed(kw_endpoint *ep, const kw_sockaddr *a) {
  int rank = kw__cand_rank(NULL, a);
  if (rank == KW_CAND_RANK_NEVER || rank == KW_CAND_RANK_LOOPBACK ||
      a->port == 0)
    return;
  uv_mutex_lock(&ep->mu);
  bool known = kw__sockaddr_equal(a, &ep->reflexive4) ||
               kw__sockaddr_equal(a, &ep->reflexive6);
  size_t i = 0;
  for (; !known && i < ep->n_observed; i++)
    known = kw__sockaddr_equal(a, &ep->observed[i]);
  if (!known) {
    size_t n = ep->n_observed < KW_OBSERVED_MAX ? ep->n_observed + 1
                                                 : KW_OBSERVED_MAX;
    memmove(&ep->observed[1], &ep->observed[0],
            (n - 1) * sizeof ep->observed[0]); /* the oldest falls off */
    ep->observed[0] = *a;
    ep->n_observed = n;
  }
  uv_mutex_unlock(&ep->mu);
  if (!known && kw__log_enabled(ep, KW_LOG_DEBUG)) {
    char s[KW_SOCKADDR_STRLEN];
    kw_sockaddr_format(a, s, sizeof s);
    kw__log(ep, KW_LOG_DEBUG, "disco", "disco.observed addr=%s", s);
  }
}

/* Candidates just pinged get KW_PUNCH_TRIES - 1 more Pings a second apart
 * (service() sends them), then the silent ones are retired. */
static void schedule_repings(kw__remote *r, uint64_t now) {
  r->punch_tries_left = KW_PUNCH_TRIES - 1;
  r->punch_next_ns = now + KW_PUNCH_RETRY_MS * MS;
  r->punch_settle = false;
}

static void punch_round(kw_endpoint *ep, kw__remote *r, uint64_t now) {
  if (!remote_key(ep, r))
    return;
  ep->stats.holepunch_attempts++;
  bool cmm = send_call_me_maybe(ep, r);
  size_t n = ping_candidates(ep, r, false);
  schedule_repings(r, now);
  if (!cmm)
    kw__holepunch_round_failed(&r->hp, now);
  char idb[KW_ID_SHORTLEN + 1];
  kw_id_to_short(r->id, idb, sizeof idb);
  kw__log(ep, KW_LOG_DEBUG, "disco",
          "holepunch.round remote=%s pinged=%zu relay=%d call_me_maybe=%s "
          "round=%llu",
          idb, n, r->relay, cmm ? "sent" : "failed",
          (unsigned long long)r->hp.rounds);
}

/* Carries out what the remote's schedule says is due now. */
static void service(kw_endpoint *ep, kw__remote *r, uint64_t now) {
  if (!r->id_known)
    return;
  if (kw__holepunch_poll(&r->hp, now)) {
    punch_round(ep, r, now);
    return;
  }
  if (r->punch_tries_left > 0 && now >= r->punch_next_ns) {
    r->punch_tries_left--;
    r->punch_next_ns = now + KW_PUNCH_RETRY_MS * MS;
    if (kw__paths_selected(&r->pt) <= KW_PATHS_RELAY)
      (void)ping_candidates(ep, r, true);
    if (r->punch_tries_left == 0)
      r->punch_settle = true;
  } else if (r->punch_settle && now >= r->punch_next_ns) {
    /* the round is over: candidates that never answered become inactive,
     * so the table's limits prune them (oldest first) and a table full of
     * dead candidates cannot refuse a live one; a later round pings them
     * again */
    r->punch_settle = false;
    for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
      const kw__path *p = kw__paths_get(&r->pt, i);
      if (p && p->state == KW_PST_VALIDATING)
        (void)kw__paths_set_state(&r->pt, i, KW_PST_INACTIVE, now);
    }
  }
}

void kw__disco_conn_up(kw_endpoint *ep, kw_conn *c) {
  kw__remote *r = c->remote;
  if (c->hp_counted || !r->id_known)
    return;
  c->hp_counted = true;
  /* the handshake completed: the direct addresses its packets came from
   * answered for the remote's key, so they are never banned on
   * (spoofable) garbage */
  for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = kw__paths_get(&r->pt, i);
    if (p && p->state == KW_PST_VALIDATED && (p->sources & KW_PSRC_CONN))
      kw__magicsock_trust_addr(ep, &p->addr, "handshake");
  }
  uint64_t now = kw__now(ep);
  kw__holepunch_conn_added(&r->hp, now);
  service(ep, r, now);
  kw__disco_arm(ep);
}

void kw__disco_conn_down(kw_endpoint *ep, kw_conn *c) {
  kw__remote *r = c->remote;
  if (c->hp_counted) {
    c->hp_counted = false;
    kw__holepunch_conn_removed(&r->hp, kw__now(ep));
  }
  if (c->rtt_slot >= 0) {
    kw__paths_conn_gone(&r->pt, (size_t)c->rtt_slot);
    r->rtt_slots &= ~(1u << c->rtt_slot);
    c->rtt_slot = -1;
  }
}

void kw__disco_local_candidates(kw_endpoint *ep) {
  if (ep->closing)
    return;
  uint64_t now = kw__now(ep);
  for (kw__remote *r = ep->remotes; r; r = r->next) {
    kw__holepunch_local_candidates(&r->hp, now);
    service(ep, r, now);
  }
  kw__disco_arm(ep);
}

void kw__disco_network_change(kw_endpoint *ep) {
  if (ep->closing)
    return;
  uint64_t now = kw__now(ep);
  for (kw__remote *r = ep->remotes; r; r = r->next) {
    /* the round this asks for pings every path, the selected one too:
     * whether it survived is known within a round trip, not in 2 s */
    kw__holepunch_network_change(&r->hp, now);
    service(ep, r, now);
  }
  kw__disco_arm(ep);
}

/* Each connection's smoothed RTT on the selected path, in its slot. */
static void sample_conn_rtts(kw_endpoint *ep, uint64_t now) {
  for (kw_conn *c = ep->conns; c; c = c->next) {
    kw__remote *r = c->remote;
    if (!r || c->rtt_slot < 0 || !c->handshake_done ||
        c->state != KW_CONN_ESTABLISHED)
      continue;
    int s = kw__paths_selected(&r->pt);
    if (s == KW_PATHS_NONE || now - r->selected_ns < KW_RTT_SETTLE_MS * MS)
      continue;
    kw_path_info pi;
    kw_conn_path(c, &pi);
    if (pi.rtt_ms > 0)
      (void)kw__paths_rtt_sample(&r->pt, s, (size_t)c->rtt_slot,
                                 (uint64_t)(pi.rtt_ms * 1e6));
  }
}

/* The selected direct path: liveness Pings when quiet, fall back when
 * silent too long. */
static void watch_direct(kw_endpoint *ep, kw__remote *r, uint64_t now) {
  const kw_sockaddr *d = kw__remote_direct(r);
  if (!d || !r->nconns || !r->disco_key_ok)
    return;
  uint64_t quiet = now - r->direct_rx_ns;
  if (quiet > KW_DIRECT_DEAD_MS * MS) {
    char idb[KW_ID_SHORTLEN + 1], a[KW_SOCKADDR_STRLEN];
    kw_id_to_short(r->id, idb, sizeof idb);
    kw_sockaddr_format(d, a, sizeof a);
    kw__log(ep, KW_LOG_INFO, "disco",
            "path.direct_lost remote=%s addr=%s silent_ms=%llu", idb, a,
            (unsigned long long)(quiet / MS));
    (void)kw__paths_set_state(&r->pt, kw__paths_selected(&r->pt),
                              KW_PST_INACTIVE, now);
    if (kw__remote_reselect(r))
      kw__remote_path_changed(r);
    kw__holepunch_path_lost(&r->hp, now);
    service(ep, r, now);
  } else if (quiet > KW_DIRECT_QUIET_MS * MS &&
             now - r->direct_ping_ns > KW_DIRECT_PING_EVERY_MS * MS) {
    r->direct_ping_ns = now;
    send_ping(ep, r, d);
  }
}

static void tick(uv_timer_t *t) {
  kw_endpoint *ep = t->data;
  if (ep->closing)
    return;
  uint64_t now = kw__now(ep);
  kw__remotes_sweep(ep, now);
  sample_conn_rtts(ep, now);
  for (kw__remote *r = ep->remotes; r; r = r->next) {
    if (!r->nconns)
      continue;
    watch_direct(ep, r, now);
    service(ep, r, now);
    if (kw__remote_reselect(r)) /* RTT samples may move the selection */
      kw__remote_path_changed(r);
  }
  kw__disco_arm(ep);
}

/* The timer runs only while some remote has connections (at the earliest
 * deadline of their schedules, and every KW_DISCO_TICK_MS at most) or an
 * idle remote is waiting to be freed. */
void kw__disco_arm(kw_endpoint *ep) {
  if (!ep->disco_timer_init || ep->closing)
    return;
  uint64_t now = kw__now(ep);
  uint64_t next = KW_HP_NEVER;
  for (kw__remote *r = ep->remotes; r; r = r->next) {
    if (!r->nconns) {
      /* an idle one: when it is to be freed (tick does it) */
      uint64_t gone = r->idle_since + (uint64_t)KW_REMOTE_IDLE_MS * MS;
      if (r->idle_since && gone < next)
        next = gone;
      continue;
    }
    uint64_t d = kw__holepunch_next_deadline(&r->hp);
    uint64_t tick_at = now + KW_DISCO_TICK_MS * MS;
    if (tick_at < d)
      d = tick_at;
    if (d < next)
      next = d;
  }
  if (next == KW_HP_NEVER) {
    uv_timer_stop(&ep->disco_timer);
    return;
  }
  uint64_t ms = next > now ? (next - now + MS - 1) / MS : 0;
  uv_timer_start(&ep->disco_timer, tick, ms, 0);
}

kw_err kw__disco_start(kw_endpoint *ep) {
  kw__disco_replay *rp = calloc(1, sizeof *rp);
  kw__disco_pong_limiter *pl = calloc(1, sizeof *pl);
  if (!rp || !pl || kw__disco_replay_init(rp, 0) != KW_OK) {
    free(rp);
    free(pl);
    return KW_ERR_NOMEM;
  }
  if (kw__disco_pong_limiter_init(pl) != KW_OK) {
    kw__disco_replay_free(rp);
    free(rp);
    free(pl);
    return KW_ERR_NOMEM;
  }
  kw__addr_filter *af = calloc(1, sizeof *af);
  if (!af || kw__addr_filter_init(af) != KW_OK) {
    free(af);
    kw__disco_pong_limiter_free(pl);
    kw__disco_replay_free(rp);
    free(rp);
    free(pl);
    return KW_ERR_NOMEM;
  }
  ep->banned = af;
  kw__probe_budget_init_endpoint(&ep->probes);
  ep->disco_replay = rp;
  ep->disco_pongs = pl;
  uv_timer_init(&ep->loop, &ep->disco_timer);
  ep->disco_timer.data = ep;
  ep->disco_timer_init = true;
  return kw__netmon_start(ep);
}

void kw__disco_stop(kw_endpoint *ep) {
  kw__netmon_stop(ep);
  if (ep->disco_timer_init) {
    uv_timer_stop(&ep->disco_timer);
    uv_close((uv_handle_t *)&ep->disco_timer, NULL);
    ep->disco_timer_init = false;
  }
}

void kw__disco_free(kw_endpoint *ep) {
  if (ep->banned) {
    kw__addr_filter_free(ep->banned);
    free(ep->banned);
    ep->banned = NULL;
  }
  if (ep->disco_replay) {
    kw__disco_replay_free(ep->disco_replay);
    free(ep->disco_replay);
    ep->disco_replay = NULL;
  }
  if (ep->disco_pongs) {
    kw__disco_pong_limiter_free(ep->disco_pongs);
    free(ep->disco_pongs);
    ep->disco_pongs = NULL;
  }
}

void kw__disco_input(kw_endpoint *ep, const kw__src *from,
                     const uint8_t *data, size_t len) {
  uint8_t sender[KW_ID_LEN];
  if (kw__disco_peek_sender(data, len, sender) != KW_OK) {
    ep->stats.drops_unknown++;
    kw__magicsock_strike(ep, from);
    return;
  }
  kw__remote *r = remote_by_id(ep, sender);
  if (!r || !remote_key(ep, r)) {
    /* disco only serves remotes we have a connection with */
    ep->stats.drops_unknown++;
    kw__magicsock_strike(ep, from);
    return;
  }
  kw__disco_key k;
  memcpy(k.k, r->disco_key, sizeof k.k);
  kw__disco_msg m;
  kw_err e = kw__disco_open(&k, data, len, &m);
  if (e != KW_OK) {
    kw__disco_key_wipe(&k);
    ep->stats.drops_unknown++;
    kw__magicsock_strike(ep, from);
    return;
  }
  kw__magicsock_good(ep, from); /* it opened: the sender holds the key */
  if (!kw__disco_act_via(m.type, from->relay >= 0) ||
      kw__disco_replay_check(ep->disco_replay, sender, &m, unix_ms()) !=
          KW_DISCO_FRESH) {
    kw__disco_key_wipe(&k);
    ep->stats.drops_unknown++;
    return;
  }
  char idb[KW_ID_SHORTLEN + 1];
  kw_id_to_short(sender, idb, sizeof idb);
  switch (m.type) {
  case KW_DISCO_PING: {
    if (!kw__disco_pong_allow(ep->disco_pongs, &from->addr, kw__now(ep)))
      break;
    uint8_t buf[KW_DISCO_MAX_LEN];
    size_t n;
    if (kw__disco_seal_pong(&k, ep->id, len, m.tx_id, &from->addr, unix_ms(),
                            buf, sizeof buf, &n) == KW_OK)
      send_udp(ep, &from->addr, buf, n);
    /* an address the remote pings us from is worth pinging back (it may
     * be a mapping its NAT made for us: peer-reflexive); one we know but
     * have not validated too, as the remote's mapping may just have opened */
    int idx = kw__paths_find(&r->pt, &from->addr);
    const kw__path *p = kw__paths_get(&r->pt, idx);
    if (!p || p->state != KW_PST_VALIDATED) {
      if (kw__remote_add_path_src(r, &from->addr, KW_PSRC_DISCO))
        kw__holepunch_remote_candidates(&r->hp, kw__now(ep));
      send_ping(ep, r, &from->addr);
    }
    break;
  }
  case KW_DISCO_PONG: {
    for (size_t i = 0; i < KW_REMOTE_PINGS; i++) {
      kw__ping_tx *t = &r->pings[i];
      if (!t->used || memcmp(t->tx_id, m.tx_id, sizeof t->tx_id) != 0 ||
          !kw__sockaddr_equal(&t->to, &from->addr))
        continue;
      t->used = false;
      uint64_t now = kw__now(ep);
      uint64_t rtt = now - t->sent_ns;
      char a[KW_SOCKADDR_STRLEN];
      kw_sockaddr_format(&from->addr, a, sizeof a);
      kw__log(ep, KW_LOG_INFO, "disco",
              "disco.pong remote=%s addr=%s rtt_ms=%.2f", idb, a,
              (double)rtt / 1e6);
      const kw_sockaddr *cur = kw__remote_direct(r);
      if (cur && kw__sockaddr_equal(cur, &from->addr))
        r->direct_rx_ns = now;
      note_observed(ep, &m.addr);
      int idx;
      if (kw__paths_add(&r->pt, &from->addr, KW_PSRC_DISCO, now, &idx,
                        NULL) != KW_OK)
        break;
      /* a Pong revives a path given up as inactive */
      (void)kw__paths_set_state(&r->pt, idx, KW_PST_VALIDATED, now);
      (void)kw__paths_rtt_sample(&r->pt, idx, KW_RTT_SLOT_DISCO, rtt);
      bool was_direct = kw__remote_direct(r) != NULL;
      if (kw__remote_reselect(r)) {
        if (!was_direct)
          kw__log(ep, KW_LOG_INFO, "disco",
                  "holepunch.direct remote=%s addr=%s", idb, a);
        kw__remote_path_changed(r);
      }
      break;
    }
    break;
  }
  case KW_DISCO_CALL_ME_MAYBE: {
    kw__log(ep, KW_LOG_DEBUG, "disco", "disco.call_me_maybe remote=%s addrs=%zu",
            idb, m.n_addrs);
    if (from->relay >= 0)
      r->relay = from->relay; /* the route it reached us by */
    uint64_t now = kw__now(ep);
    bool fresh = false;
    for (size_t i = 0; i < m.n_addrs; i++)
      fresh = kw__remote_add_path_src(r, &m.addrs[i], KW_PSRC_DISCO) || fresh;
    bool ran = false;
    if (fresh) {
      kw__holepunch_remote_candidates(&r->hp, now);
      ran = kw__holepunch_poll(&r->hp, now);
      if (ran)
        punch_round(ep, r, now); /* ours, with every candidate, now */
    }
    if (!ran && kw__holepunch_answer(&r->hp, now)) {
      /* the simultaneous open: the remote is pinging our candidates now,
       * so ping every one of its candidates now too. Nothing new within
       * 2 s of our last answer: its re-pings cover that time, and a
       * CallMeMaybe flood buys nothing */
      ep->stats.holepunch_attempts++;
      (void)ping_candidates(ep, r, false);
      schedule_repings(r, now);
    }
    kw__disco_arm(ep);
    break;
  }
  default:
    break;
  }
  kw__disco_key_wipe(&k);
}
