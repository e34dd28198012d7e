/* SPDX-License-Identifier: MIT */
/*
 * Disco on the endpoint (docs/protocol/disco.md; docs/ARCHITECTURE.md
 * section 4): sealed Ping, Pong and CallMeMaybe on the magicsock's UDP
 * sockets and through relays, and the hole-punching rounds that turn a
 * relayed connection into a direct one.
 *
 * Each remote's path policy (core/remote: its path table, hole-punch
 * schedule, re-pings, liveness) decides; this file feeds it disco events,
 * seals and sends what it asks for, and runs the one timer at the earliest
 * deadline of all remotes:
 *  - When a round runs (a connection came up, new local or remote
 *    candidates, a network change, a lost direct path; at most every 5 s
 *    otherwise; an upgrade check every 60 s while no direct path has an
 *    RTT <= 10 ms; 100 ms after a round that could not reach the relay):
 *    CallMeMaybe with our candidates through the relay and a Ping to every
 *    candidate of the remote at the same time. Candidates still without a
 *    Pong are pinged again KW_RP_PUNCH_RETRY_NS later, KW_RP_PUNCH_TRIES in
 *    all.
 *  - The remote answers a CallMeMaybe by pinging our candidates at once
 *    (but the validated paths that answered its Pings already), so both NATs
 * see outbound packets and open their mappings (a CallMeMaybe that runs no
 * round is answered at most once per 2 s).
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
 *    KW_RP_DIRECT_QUIET_NS it is pinged every second, and after
 *    KW_RP_DIRECT_DEAD_NS of silence it is marked inactive, the remote falls
 *    back to its next best path (the QUIC connection is untouched) and a
 *    round runs at once.
 */
#include "endpoint/disco_io.h"
#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/magicsock.h"
#include "endpoint/stun_probe.h"
#include "endpoint/relay_client.h"
#include "endpoint/netmon.h"
#include "net/clock.h"
#include "core/sockaddr.h"
#include "core/remote.h"
#include "core/paths.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/addr_filter.h"
#include "core/disco.h"

#define MS 1000000ull

/* The endpoint's disco state (kw__ep_disco), loop thread unless said. */
struct kw__disco {
  kw_endpoint *ep;
  kw__disco_replay *replay;      /* kw__disco_start */
  kw__disco_pong_limiter *pongs; /* kw__disco_start */
  uv_timer_t timer;              /* at the earliest deadline of all remotes */
  bool timer_init;
  /* our addresses as remotes saw them (Pongs), newest first; under the
   * endpoint's lock (kw__ep_lock) */
  kw_sockaddr observed[KW_OBSERVED_MAX];
  size_t n_observed;
  /* our NAT's mapping behaviour (KW_RP_NAT_*) as the last netcheck saw
   * it; 0 unknown. Sent to remotes as a NatHint. */
  uint8_t nat_kind;
  uint64_t drops_unknown; /* undecodable, unknown sender, replayed */
};

kw_err kw__disco_new(kw_endpoint *ep, struct kw__disco **out) {
  struct kw__disco *d = calloc(1, sizeof *d);
  if (!d)
    return KW_ERR_NOMEM;
  d->ep = ep;
  *out = d;
  return KW_OK;
}

void kw__disco_stats(const kw_endpoint *ep, kw_endpoint_stats *out) {
  const struct kw__disco *d = kw__ep_disco(ep);
  if (d)
    out->drops_unknown += d->drops_unknown;
}

static uint64_t unix_ms(void) {
  return kw__unix_us() / 1000u;
}

static void send_udp(kw_endpoint *ep, const kw_sockaddr *to, const uint8_t *p,
                     size_t n) {
  if (kw__ep_cfg(ep)->path_policy != KW_PATH_POLICY_RELAY_ONLY)
    (void)kw__magicsock_send_raw(ep, to, p, n);
}

bool kw__disco_send_ping(kw__remote *r, const kw_sockaddr *to,
                         const uint8_t tx_id[KW_DISCO_TXID_LEN], bool probe) {
  return kw__disco_send_ping_from(r, 0, to, tx_id, probe);
}

bool kw__disco_send_ping_from(kw__remote *r, unsigned sock,
                              const kw_sockaddr *to,
                              const uint8_t tx_id[KW_DISCO_TXID_LEN],
                              bool probe) {
  kw_endpoint *ep = kw__remote_ep(r);
  if (!kw__remote_disco_key(r))
    return false;
  kw__disco_msg m;
  memset(&m, 0, sizeof m);
  m.type = KW_DISCO_PING;
  m.ts_ms = unix_ms();
  memcpy(m.tx_id, tx_id, sizeof m.tx_id);
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  kw__disco_key k;
  memcpy(k.k, kw__remote_disco_key(r), sizeof k.k);
  kw_err e = kw__disco_seal(&k, kw__ep_id(ep), &m, buf, sizeof buf, &n);
  kw__disco_key_wipe(&k);
  if (e != KW_OK)
    return false;
  /* a Ping toward an address that is not a validated path may be aimed at
   * a third party (a CallMeMaybe names any address): it comes out of the
   * remote's and the endpoint's probe budgets */
  if (probe && !kw__remote_probe_allow(r, n, kw__now(ep)))
    return false;
  if (sock)
    return kw__magicsock_xsend(r, sock, to, buf, n);
  send_udp(ep, to, buf, n);
  return true;
}

bool kw__disco_send_call_me_maybe(kw__remote *r) {
  kw_endpoint *ep = kw__remote_ep(r);
  if (kw__remote_relay(r) < 0)
    return true; /* no relay to reach it by: the Pings are all there is */
  if (!kw__remote_disco_key(r))
    return false;
  kw_endpoint_addr me;
  if (kw_endpoint_get_addr(ep, &me) != KW_OK)
    return false;
  kw__disco_msg m;
  if (kw__disco_nat_kind(ep) != KW_RP_NAT_UNKNOWN) {
    /* the NatHint first (birthday probing; older remotes drop it) */
    memset(&m, 0, sizeof m);
    m.type = KW_DISCO_NAT_HINT;
    m.ts_ms = unix_ms();
    m.nat = kw__disco_nat_kind(ep) == KW_RP_NAT_EDM ? KW_DISCO_NAT_EDM
                                                    : KW_DISCO_NAT_EIM;
    kw__stun_reflexive(ep, &m.addr, NULL);
    m.has_addr = m.addr.family == 4 && m.addr.port != 0;
    uint8_t hb[KW_DISCO_MAX_LEN];
    size_t hn, hs;
    kw__disco_key hk;
    memcpy(hk.k, kw__remote_disco_key(r), sizeof hk.k);
    if (kw__disco_seal(&hk, kw__ep_id(ep), &m, hb, sizeof hb, &hn) == KW_OK)
      (void)kw__relay_send_batch(ep, kw__remote_relay(r), kw__remote_id(r), hb,
                                 hn, 0, &hs);
    kw__disco_key_wipe(&hk);
  }
  memset(&m, 0, sizeof m);
  m.type = KW_DISCO_CALL_ME_MAYBE;
  m.ts_ms = unix_ms();
  for (size_t i = 0; i < me.n_addrs && m.n_addrs < KW_MAX_DIRECT_ADDRS; i++)
    if (!kw__sockaddr_is_loopback(&me.addrs[i]))
      m.addrs[m.n_addrs++] = me.addrs[i];
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n, sent;
  kw__disco_key k;
  memcpy(k.k, kw__remote_disco_key(r), sizeof k.k);
  kw_err e = kw__disco_seal(&k, kw__ep_id(ep), &m, buf, sizeof buf, &n);
  kw__disco_key_wipe(&k);
  if (e != KW_OK)
    return false;
  return kw__relay_send_batch(ep, kw__remote_relay(r), kw__remote_id(r), buf, n,
                              0, &sent) == KW_OK;
}

/* Our address as the remote saw it (a Pong's observed source): a
 * candidate of ours, peer-reflexive, that STUN may not know (no STUN
 * server, or a NAT mapping made for this remote). Listed with the
 * reflexive addresses in tickets, records and CallMeMaybe; it triggers no
 * round by itself (behind an endpoint-dependent NAT every remote sees
 * another port, and rounds for all on each would be churn). */
uint8_t kw__disco_nat_kind(const kw_endpoint *ep) {
  return kw__ep_disco(ep)->nat_kind;
}

size_t kw__disco_observed(kw_endpoint *ep, kw_sockaddr *out, size_t cap) {
  struct kw__disco *d = kw__ep_disco(ep);
  kw__ep_lock(ep);
  size_t n = d->n_observed < cap ? d->n_observed : cap;
  memcpy(out, d->observed, n * sizeof *out);
  kw__ep_unlock(ep);
  return n;
}

static void note_observed(kw_endpoint *ep, const kw_sockaddr *a) {
  int rank = kw__cand_rank(NULL, a);
  if (rank == KW_CAND_RANK_NEVER || rank == KW_CAND_RANK_LOOPBACK ||
      a->port == 0)
    return;
  kw_sockaddr r4, r6;
  kw__stun_reflexive(ep, &r4, &r6);
  struct kw__disco *d = kw__ep_disco(ep);
  kw__ep_lock(ep);
  bool known = kw__sockaddr_equal(a, &r4) || kw__sockaddr_equal(a, &r6);
  size_t i = 0;
  for (; !known && i < d->n_observed; i++)
    known = kw__sockaddr_equal(a, &d->observed[i]);
  if (!known) {
    size_t n =
        d->n_observed < KW_OBSERVED_MAX ? d->n_observed + 1 : KW_OBSERVED_MAX;
    memmove(&d->observed[1], &d->observed[0],
            (n - 1) * sizeof d->observed[0]); /* the oldest falls off */
    d->observed[0] = *a;
    d->n_observed = n;
  }
  kw__ep_unlock(ep);
  if (!known && kw__log_enabled(ep, KW_LOG_DEBUG)) {
    char s[KW_SOCKADDR_STRLEN];
    kw_sockaddr_format(a, s, sizeof s);
    kw__log(ep, KW_LOG_DEBUG, "disco", "disco.observed addr=%s", s);
  }
}

bool kw__disco_conn_up(kw_endpoint *ep, kw__remote *r) {
  if (!kw__remote_id(r))
    return false;
  /* the handshake completed: the direct addresses its packets came from
   * answered for the remote's key, so they are never banned on
   * (spoofable) garbage */
  for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = kw__paths_get(&kw__remote_policy(r)->pt, i);
    if (p && p->state == KW_PST_VALIDATED && (p->sources & KW_PSRC_CONN))
      kw__magicsock_trust_addr(ep, &p->addr, "handshake");
  }
  kw__remote_conn_up(r, kw__now(ep));
  kw__disco_arm(ep);
  return true;
}

void kw__disco_conn_down(kw_endpoint *ep, kw__remote *r) {
  kw__remote_conn_down(r, kw__now(ep));
}

void kw__disco_local_candidates(kw_endpoint *ep) {
  if (kw__ep_closing(ep))
    return;
  uint64_t now = kw__now(ep);
  kw__remotes_local_candidates(ep, now);
  kw__disco_arm(ep);
}

void kw__disco_local_nat(kw_endpoint *ep, int varies) {
  if (kw__ep_closing(ep) || varies < 0)
    return;
  uint8_t k = varies ? KW_RP_NAT_EDM : KW_RP_NAT_EIM;
  struct kw__disco *d = kw__ep_disco(ep);
  if (d->nat_kind == k)
    return;
  d->nat_kind = k;
  uint64_t now = kw__now(ep);
  kw__remotes_local_nat(ep, (kw__rp_nat)k, now);
  kw__disco_arm(ep);
}

void kw__disco_network_change(kw_endpoint *ep) {
  if (kw__ep_closing(ep))
    return;
  uint64_t now = kw__now(ep);
  kw__remotes_network_change(ep, now);
  kw__disco_arm(ep);
}

static void timer_cb(uv_timer_t *t) {
  kw_endpoint *ep = ((struct kw__disco *)t->data)->ep;
  if (kw__ep_closing(ep))
    return;
  kw__remotes_timeout(ep, kw__now(ep));
  kw__disco_arm(ep);
}

/* One timer at the earliest deadline of all remotes (core/remote composes
 * each remote's: its rounds, re-pings, liveness, idle expiry); none while
 * nothing is due. */
void kw__disco_arm(kw_endpoint *ep) {
  struct kw__disco *d = kw__ep_disco(ep);
  if (!d || !d->timer_init || kw__ep_closing(ep))
    return;
  uint64_t next = kw__remotes_next_deadline(ep);
  if (next == KW_RP_NEVER) {
    uv_timer_stop(&d->timer);
    return;
  }
  uint64_t now = kw__now(ep);
  uint64_t ms = next > now ? (next - now + MS - 1) / MS : 0;
  uv_timer_start(&d->timer, timer_cb, ms, 0);
}

kw_err kw__disco_start(kw_endpoint *ep) {
  struct kw__disco *d = kw__ep_disco(ep);
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
  d->replay = rp;
  d->pongs = pl;
  uv_timer_init(kw__ep_loop(ep), &d->timer);
  d->timer.data = d;
  d->timer_init = true;
  return kw__netmon_start(ep);
}

void kw__disco_stop(kw_endpoint *ep) {
  kw__netmon_stop(ep);
  struct kw__disco *d = kw__ep_disco(ep);
  if (d && d->timer_init) {
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, NULL);
    d->timer_init = false;
  }
}

void kw__disco_free(struct kw__disco *d) {
  if (!d)
    return;
  if (d->replay) {
    kw__disco_replay_free(d->replay);
    free(d->replay);
  }
  if (d->pongs) {
    kw__disco_pong_limiter_free(d->pongs);
    free(d->pongs);
  }
  free(d);
}

void kw__disco_input(kw_endpoint *ep, const kw__src *from, const uint8_t *data,
                     size_t len) {
  struct kw__disco *d = kw__ep_disco(ep);
  uint8_t sender[KW_ID_LEN];
  if (kw__disco_peek_sender(data, len, sender) != KW_OK) {
    d->drops_unknown++;
    kw__magicsock_strike(ep, from);
    return;
  }
  kw__remote *r = kw__remote_find(ep, sender);
  if (r && from->sock && from->xr != r)
    r = NULL; /* a remote's extra socket serves that remote only */
  if (!r || !kw__remote_disco_key(r)) {
    /* disco only serves remotes we have a connection with */
    d->drops_unknown++;
    kw__magicsock_strike(ep, from);
    return;
  }
  kw__disco_key k;
  memcpy(k.k, kw__remote_disco_key(r), sizeof k.k);
  kw__disco_msg m;
  kw_err e = kw__disco_open(&k, data, len, &m);
  if (e != KW_OK) {
    kw__disco_key_wipe(&k);
    d->drops_unknown++;
    kw__magicsock_strike(ep, from);
    return;
  }
  kw__magicsock_good(ep, from); /* it opened: the sender holds the key */
  if (!kw__disco_act_via(m.type, from->relay >= 0) ||
      kw__disco_replay_check(d->replay, sender, &m, unix_ms()) !=
          KW_DISCO_FRESH) {
    kw__disco_key_wipe(&k);
    d->drops_unknown++;
    return;
  }
  char idb[KW_ID_SHORTLEN + 1];
  kw_id_to_short(sender, idb, sizeof idb);
  switch (m.type) {
  case KW_DISCO_PING: {
    if (!kw__disco_pong_allow(d->pongs, &from->addr, kw__now(ep)))
      break;
    uint8_t buf[KW_DISCO_MAX_LEN];
    size_t n;
    if (kw__disco_seal_pong(&k, kw__ep_id(ep), len, m.tx_id, &from->addr,
                            unix_ms(), buf, sizeof buf, &n) == KW_OK) {
      if (from->sock) /* answered from the socket it found */
        (void)kw__magicsock_xsend(r, from->sock, &from->addr, buf, n);
      else
        send_udp(ep, &from->addr, buf, n);
    }
    kw__remote_ping_received(r, from, kw__now(ep));
    kw__disco_arm(ep);
    break;
  }
  case KW_DISCO_PONG: {
    uint64_t now = kw__now(ep), rtt = 0;
    bool was_direct = kw__remote_direct(r) != NULL;
    if (!kw__remote_pong_received(r, m.tx_id, from, now, &rtt))
      break;
    char a[KW_SOCKADDR_STRLEN];
    kw_sockaddr_format(&from->addr, a, sizeof a);
    kw__log(ep, KW_LOG_INFO, "disco",
            "disco.pong remote=%s addr=%s sock=%u rtt_ms=%.2f", idb, a,
            from->sock, (double)rtt / 1e6);
    note_observed(ep, &m.addr);
    if (!was_direct && kw__remote_direct(r))
      kw__log(ep, KW_LOG_INFO, "disco", "holepunch.direct remote=%s addr=%s",
              idb, a);
    kw__disco_arm(ep);
    break;
  }
  case KW_DISCO_CALL_ME_MAYBE: {
    kw__log(ep, KW_LOG_DEBUG, "disco",
            "disco.call_me_maybe remote=%s addrs=%zu", idb, m.n_addrs);
    if (from->relay >= 0)
      kw__remote_set_relay(r, from->relay); /* the route it reached us by */
    kw__remote_call_me_maybe(r, m.addrs, m.n_addrs, kw__now(ep));
    kw__disco_arm(ep);
    break;
  }
  case KW_DISCO_NAT_HINT:
    /* the remote's mapping behaviour and reflexive address, for birthday
     * probing (core/remote; the magicsock's extra sockets) */
    kw__log(ep, KW_LOG_DEBUG, "disco", "disco.nat_hint remote=%s nat=%u", idb,
            (unsigned)m.nat);
    kw__remote_remote_nat(r,
                          m.nat == KW_DISCO_NAT_EDM   ? KW_RP_NAT_EDM
                          : m.nat == KW_DISCO_NAT_EIM ? KW_RP_NAT_EIM
                                                      : KW_RP_NAT_UNKNOWN,
                          m.has_addr ? &m.addr : NULL, kw__now(ep));
    kw__disco_arm(ep);
    break;
  default:
    break;
  }
  kw__disco_key_wipe(&k);
}
