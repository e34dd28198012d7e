/* SPDX-License-Identifier: MIT */
/*
 * The magicsock: the endpoint's UDP sockets and the per-remote path state
 * that lets QUIC run over whichever real path works.
 *
 * Every datagram received is demultiplexed by its first bytes: STUN (magic
 * cookie at offset 4, top two bits zero), disco (a fixed 8-byte magic), and
 * everything else is QUIC, routed by destination connection id. QUIC sees
 * only mapped addresses: a remote's packets go out on its selected path,
 * or to every known path while none is selected (the handshake races them
 * and the first to answer wins).
 */
#include "endpoint/internal.h"

#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2.h>
#include <sodium.h>

#include "core/addr_filter.h"
#include "core/disco.h"
#include "core/stun.h"

#define KW_RX_BATCHES_PER_WAKE 8 /* fairness between sockets */
/* A selected direct path this quiet loses to the address the remote's
 * authenticated packets now come from (NAT rebinding). */
#define KW_REBIND_QUIET_MS 1000

uint64_t kw__now(kw_endpoint *ep) {
  /* inside a receive batch every packet gets the batch's arrival time: one
   * clock read per recvmmsg, not one per packet */
  if (ep && ep->rx_batch_now)
    return ep->rx_batch_now;
  return uv_hrtime();
}

/* ---- remotes ------------------------------------------------------------ */

static void path_known(kw_endpoint *ep, const kw_sockaddr *a);

/* An idle remote's paths may have gone stale: the next connection races
 * them all (and the relay) again instead of trusting the old selection. */
static void remote_rerace(kw__remote *r) {
  uint64_t now = kw__now(r->ep);
  for (int i = 0; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = kw__paths_get(&r->pt, i);
    if (!p || p->state != KW_PST_VALIDATED)
      continue;
    (void)kw__paths_set_state(&r->pt, i,
                              p->relay ? KW_PST_UNKNOWN : KW_PST_INACTIVE, now);
  }
  (void)kw__paths_select(&r->pt, now, NULL);
}

kw__remote *kw__remote_new(kw_endpoint *ep, const uint8_t *id) {
  if (id) {
    for (kw__remote *e = ep->remotes; e; e = e->next) {
      if (!e->id_known || memcmp(e->id, id, KW_ID_LEN) != 0)
        continue;
      if (e->nconns == 0) {
        e->idle_since = 0;
        remote_rerace(e);
      }
      return e;
    }
  }
  kw__remote *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->ep = ep;
  if (id) {
    memcpy(r->id, id, KW_ID_LEN);
    r->id_known = true;
  }
  kw__paths_init(&r->pt);
  kw__holepunch_init(&r->hp);
  kw__probe_budget_init_remote(&r->probes);
  r->relay = -1;
  r->mapped_idx = ++ep->next_mapped;
  r->mapped.sin6_family = AF_INET6;
  r->mapped.sin6_port = htons(1);
  /* fd7a:6b77:7900::/48 with the index in the low 64 bits: never routed */
  uint8_t *a = (uint8_t *)&r->mapped.sin6_addr;
  a[0] = 0xfd;
  a[1] = 0x7a;
  a[2] = 0x6b;
  a[3] = 0x77;
  a[4] = 0x79;
  for (int i = 0; i < 8; i++)
    a[8 + i] = (uint8_t)(r->mapped_idx >> (56 - 8 * i));
  r->next = ep->remotes;
  ep->remotes = r;
  return r;
}

static void remote_free(kw__remote *r) {
  kw_endpoint *ep = r->ep;
  for (kw__remote **pp = &ep->remotes; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  }
  kw__paths_free(&r->pt);
  sodium_memzero(r->disco_key, sizeof r->disco_key);
  free(r);
}

void kw__remote_unref(kw__remote *r) {
  if (r->nconns > 0)
    return;
  if (!r->id_known || r->ep->closing) {
    remote_free(r);
    return;
  }
  r->idle_since = kw__now(r->ep);
  if (r->idle_since == 0)
    r->idle_since = 1;
  kw__disco_arm(r->ep); /* to free it when its time is up */
}

void kw__remotes_sweep(kw_endpoint *ep, uint64_t now) {
  const uint64_t keep = (uint64_t)KW_REMOTE_IDLE_MS * 1000000u;
  kw__remote *r = ep->remotes;
  while (r) {
    kw__remote *n = r->next;
    if (r->nconns == 0 && r->idle_since && now - r->idle_since >= keep)
      remote_free(r);
    r = n;
  }
}

bool kw__remote_add_path_src(kw__remote *r, const kw_sockaddr *a,
                             uint8_t source) {
  bool created = false;
  /* over the limits the table prunes (oldest inactive first, then the
   * lowest priority; never the selected path); a refused add is dropped */
  if (kw__paths_add(&r->pt, a, source, kw__now(r->ep), NULL, &created) !=
      KW_OK)
    return false;
  if (created)
    path_known(r->ep, a);
  return created;
}

void kw__remote_add_path(kw__remote *r, const kw_sockaddr *a) {
  (void)kw__remote_add_path_src(r, a, KW_PSRC_APP);
}

const kw_sockaddr *kw__remote_direct(const kw__remote *r) {
  int s = kw__paths_selected(&r->pt);
  if (s <= KW_PATHS_RELAY)
    return NULL;
  return &kw__paths_get(&r->pt, s)->addr;
}

bool kw__remote_on_relay(const kw__remote *r) {
  return kw__paths_selected(&r->pt) == KW_PATHS_RELAY;
}

void kw__remote_path_changed(kw__remote *r) {
  for (kw_conn *c = r->ep->conns; c; c = c->next)
    if (c->remote == r)
      kw__conn_mark_dirty(c); /* its flush sends on the new path, tells the app */
}

bool kw__remote_reselect(kw__remote *r) {
  kw_endpoint *ep = r->ep;
  uint64_t now = kw__now(ep);
  bool changed = false;
  int s = kw__paths_select(&r->pt, now, &changed);
  /* one direct path carries the traffic; the others stop being used (a
   * later round pings them again) — never the last direct one or the relay */
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
  if (kw__log_enabled(ep, KW_LOG_INFO)) {
    char idb[KW_ID_SHORTLEN + 1], a[KW_SOCKADDR_STRLEN] = "-";
    kw_id_to_short(r->id, idb, sizeof idb);
    const char *kind = "none";
    uint64_t rtt = KW_PATHS_RTT_UNKNOWN;
    if (s > KW_PATHS_RELAY) {
      kind = "direct";
      kw_sockaddr_format(&kw__paths_get(&r->pt, s)->addr, a, sizeof a);
      rtt = kw__paths_rtt(&r->pt, s);
    } else if (s == KW_PATHS_RELAY) {
      kind = "relay";
    }
    kw__log(ep, KW_LOG_INFO, "paths",
            "path.selected remote=%s kind=%s addr=%s rtt_ms=%.2f "
            "redundant_closed=%zu",
            idb, kind, a,
            rtt == KW_PATHS_RTT_UNKNOWN ? -1.0 : (double)rtt / 1e6, n);
  }
  return true;
}

/* A path a connection's packets already validated. */
static bool known_by_conn(const kw__path *p) {
  return p && p->state == KW_PST_VALIDATED && (p->sources & KW_PSRC_CONN);
}

bool kw__remote_confirm_path(kw__remote *r, const kw__src *from,
                             uint64_t now) {
  int idx;
  if (from->relay >= 0) {
    r->relay = from->relay; /* observed route */
    if (known_by_conn(kw__paths_get(&r->pt, KW_PATHS_RELAY)))
      return false; /* the common case on the relay: nothing new */
    if (kw__paths_add(&r->pt, NULL, KW_PSRC_CONN, now, &idx, NULL) != KW_OK)
      return false;
  } else {
    const kw_sockaddr *cur = kw__remote_direct(r);
    if (cur && kw__sockaddr_equal(cur, &from->addr)) {
      r->direct_rx_ns = now;
      return false; /* the common case: a packet on the selected path */
    }
    /* the remote's packets come from another address while the selected
     * one has gone quiet: its NAT rebound (or it moved). Follow it now
     * rather than after the liveness timeout. */
    bool rebind =
        cur && now - r->direct_rx_ns >= KW_REBIND_QUIET_MS * 1000000ull;
    if (!rebind &&
        known_by_conn(kw__paths_get(&r->pt, kw__paths_find(&r->pt, &from->addr))))
      return false; /* a validated other path: selection already knows it */
    bool created = false;
    if (kw__paths_add(&r->pt, &from->addr, KW_PSRC_CONN, now, &idx,
                      &created) != KW_OK)
      return false;
    if (created)
      path_known(r->ep, &from->addr);
    if (rebind) {
      char a[KW_SOCKADDR_STRLEN], b[KW_SOCKADDR_STRLEN];
      kw_sockaddr_format(cur, a, sizeof a);
      kw_sockaddr_format(&from->addr, b, sizeof b);
      kw__log(r->ep, KW_LOG_INFO, "paths", "path.rebind from=%s to=%s", a, b);
      (void)kw__paths_set_state(&r->pt, kw__paths_selected(&r->pt),
                                KW_PST_INACTIVE, now);
    }
  }
  const kw__path *p = kw__paths_get(&r->pt, idx);
  if (p->state != KW_PST_VALIDATED)
    (void)kw__paths_set_state(&r->pt, idx, KW_PST_VALIDATED, now);
  return kw__remote_reselect(r);
}

/* ---- sending -------------------------------------------------------------- */

static kw__udp *sock_for(kw_endpoint *ep, const kw_sockaddr *to) {
  kw__udp *u = to->family == 4 ? &ep->udp4 : &ep->udp6;
  return u->fd >= 0 ? u : NULL;
}

kw_err kw__magicsock_send(kw_conn *c, const uint8_t *data, size_t len,
                          size_t seg, size_t *sent_segs) {
  kw_endpoint *ep = c->ep;
  kw__remote *r = c->remote;
  *sent_segs = 0;
  size_t nseg = seg ? (len + seg - 1) / seg : 1;
  int policy = ep->cfg.path_policy; /* kw_config_set_path_policy */
  const kw_sockaddr *to =
      policy == KW_PATH_POLICY_RELAY_ONLY ? NULL : kw__remote_direct(r);
  if (to) {
    kw__udp *u = sock_for(ep, to);
    if (!u)
      return KW_ERR_NO_PATH;
    kw_err e = kw__udp_send(u, to, data, len, seg, sent_segs);
    ep->stats.udp_pkts_sent += *sent_segs;
    ep->stats.udp_bytes_sent += e == KW_OK ? len : *sent_segs * seg;
    return e;
  }
  if (kw__remote_on_relay(r) && r->relay >= 0 &&
      policy != KW_PATH_POLICY_DIRECT_ONLY)
    return kw__relay_send_batch(ep, r->relay, r->id, data, len, seg,
                                sent_segs);
  /* racing: every path gets every packet; a full socket buffer on one path
   * is not worth holding the others for (QUIC resends) */
  bool any = false;
  size_t ndirect = 0;
  if (r->relay >= 0 && r->id_known && policy != KW_PATH_POLICY_DIRECT_ONLY) {
    size_t s = 0;
    if (kw__relay_send_batch(ep, r->relay, r->id, data, len, seg, &s) ==
        KW_OK)
      any = true;
  }
  for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = kw__paths_get(&r->pt, i);
    if (!p || p->state == KW_PST_UNUSABLE || policy == KW_PATH_POLICY_RELAY_ONLY)
      continue;
    /* a candidate only disco named (a CallMeMaybe, a Ping's source) gets
     * QUIC once a Pong validated it (then also while it is inactive: it
     * may carry the connection again): until then it gets budgeted Pings,
     * never a race of full-size packets toward whoever it may be */
    if (!p->ever_validated &&
        (p->sources & (KW_PSRC_APP | KW_PSRC_LOOKUP | KW_PSRC_CONN)) == 0)
      continue;
    ndirect++;
    kw__udp *u = sock_for(ep, &p->addr);
    if (!u)
      continue;
    size_t s = 0;
    if (kw__udp_send(u, &p->addr, data, len, seg, &s) == KW_OK)
      any = true;
    ep->stats.udp_pkts_sent += s;
  }
  *sent_segs = nseg;
  return any || (ndirect == 0 && r->relay < 0) ? KW_OK : KW_ERR_IO;
}

static void poll_cb(uv_poll_t *h, int status, int events);

static void update_poll(kw_endpoint *ep, kw__udp *u) {
  if (!u->poll_init || ep->closing)
    return;
  int ev = UV_READABLE;
  if (ep->nblocked)
    ev |= UV_WRITABLE;
  if (ev != u->poll_events) {
    u->poll_events = ev;
    uv_poll_start(&u->poll, ev, poll_cb);
  }
}

void kw__magicsock_watch_writable(kw_endpoint *ep, kw_conn *c) {
  for (size_t i = 0; i < ep->nblocked; i++)
    if (ep->blocked[i] == c)
      return;
  if (ep->nblocked < sizeof ep->blocked / sizeof ep->blocked[0]) {
    ep->blocked[ep->nblocked++] = c;
  } else {
    /* table full: drop the pending batch, loss recovery resends it */
    free(c->pend);
    c->pend = NULL;
    c->pend_len = 0;
    kw__conn_mark_dirty(c);
    return;
  }
  update_poll(ep, &ep->udp4);
  update_poll(ep, &ep->udp6);
}

/* ---- receiving ------------------------------------------------------------ */

static void on_datagram(void *arg, kw__udp *u, const kw_sockaddr *from,
                        const uint8_t *data, size_t len) {
  (void)u;
  kw_endpoint *ep = arg;
  ep->stats.udp_pkts_recv++;
  ep->stats.udp_bytes_recv += len;
  kw__src src = {*from, -1};
  kw__magicsock_input(ep, &src, NULL, data, len);
}

void kw__magicsock_input(kw_endpoint *ep, const kw__src *from,
                         const uint8_t *from_id, const uint8_t *data,
                         size_t len) {
  if (len == 0)
    return;
  if (kw__stun_is(data, len)) {
    if (from->relay < 0)
      kw__stun_input(ep, &from->addr, data, len);
    else
      ep->stats.drops_unknown++;
    return;
  }
  ngtcp2_version_cid vc;
  bool disco = kw__disco_is(data, len);
  /* kw_config_set_path_policy: relay-only takes nothing but STUN by UDP;
   * direct-only takes nothing but disco by a relay */
  if ((from->relay < 0 && ep->cfg.path_policy == KW_PATH_POLICY_RELAY_ONLY) ||
      (from->relay >= 0 && !disco &&
       ep->cfg.path_policy == KW_PATH_POLICY_DIRECT_ONLY)) {
    ep->stats.drops_unknown++;
    return;
  }
  int rv = disco ? -1 : ngtcp2_pkt_decode_version_cid(&vc, data, len, 16);
  kw_conn *c = NULL;
  if (rv == 0) {
    /* a batch is mostly one connection's packets: one hash lookup */
    if (ep->rx_last_conn && vc.dcidlen == ep->rx_last_cidlen &&
        !memcmp(vc.dcid, ep->rx_last_cid, vc.dcidlen)) {
      c = ep->rx_last_conn;
    } else {
      c = kw__cidmap_get(&ep->cids, vc.dcid, vc.dcidlen);
      if (c && vc.dcidlen <= sizeof ep->rx_last_cid) {
        ep->rx_last_conn = c;
        memcpy(ep->rx_last_cid, vc.dcid, vc.dcidlen);
        ep->rx_last_cidlen = vc.dcidlen;
      }
    }
  }
  if (c) { /* a known connection's packets bypass the punishment table */
    kw__conn_recv(c, from, data, len);
    return;
  }
  if (rv == 0 && (data[0] & 0x80)) { /* long header: maybe an Initial */
    /* a ban never stops a handshake: the source of the garbage that
     * earned it may have been spoofed, and whoever completes a handshake
     * from the address lifts it (kw__disco_conn_up) */
    kw__conn_accept(ep, from, from_id, data, len);
    return;
  }
  if (from->relay < 0 && ep->banned &&
      kw__addr_filter_ignored(ep->banned, &from->addr, kw__now(ep))) {
    ep->stats.drops_unknown++;
    return;
  }
  if (disco) {
    kw__disco_input(ep, from, data, len);
    return;
  }
  ep->stats.drops_unknown++;
  /* QUIC for a connection we no longer know is a straggler, not abuse;
   * only what is neither STUN, disco nor QUIC (a short header without the
   * fixed bit: keyway never negotiates greasing it) counts against the
   * sender */
  if (rv != 0 || !(data[0] & 0x40))
    kw__magicsock_strike(ep, from);
}

/* A known path of some remote is never banned: garbage "from" it may be
 * spoofed, and the ban would cut the remote's disco off. Asked only when a
 * ban is due (at most once per strike window and address). */
static bool known_path(void *arg, const kw_sockaddr *a) {
  kw_endpoint *ep = arg;
  for (kw__remote *r = ep->remotes; r; r = r->next)
    if (kw__paths_find(&r->pt, a) != KW_PATHS_NONE)
      return true;
  return false;
}

void kw__magicsock_strike(kw_endpoint *ep, const kw__src *from) {
  if (from->relay >= 0 || !ep->banned)
    return; /* a relay vouches for its senders; it rate-limits them */
  bool spared = false;
  bool banned = kw__addr_filter_strike(ep->banned, &from->addr, kw__now(ep),
                                       known_path, ep, &spared);
  if ((banned || spared) && kw__log_enabled(ep, KW_LOG_INFO)) {
    char a[KW_SOCKADDR_STRLEN];
    kw_sockaddr_format(&from->addr, a, sizeof a);
    if (banned)
      kw__log(ep, KW_LOG_INFO, "magicsock", "addr.banned addr=%s seconds=%llu",
              a, (unsigned long long)(KW_ADDR_FILTER_BAN_NS / 1000000000ull));
    else
      kw__log(ep, KW_LOG_INFO, "magicsock",
              "addr.spared addr=%s reason=known_path", a);
  }
}

static void log_unbanned(kw_endpoint *ep, const kw_sockaddr *a,
                         const char *why) {
  if (!kw__log_enabled(ep, KW_LOG_INFO))
    return;
  char s[KW_SOCKADDR_STRLEN];
  kw_sockaddr_format(a, s, sizeof s);
  kw__log(ep, KW_LOG_INFO, "magicsock", "addr.unbanned addr=%s reason=%s", s,
          why);
}

void kw__magicsock_good(kw_endpoint *ep, const kw__src *from) {
  if (from->relay < 0 && ep->banned &&
      kw__addr_filter_trust(ep->banned, &from->addr, kw__now(ep)))
    log_unbanned(ep, &from->addr, "authenticated");
}

void kw__magicsock_trust_addr(kw_endpoint *ep, const kw_sockaddr *a,
                              const char *why) {
  if (ep->banned && kw__addr_filter_trust(ep->banned, a, kw__now(ep)))
    log_unbanned(ep, a, why);
}

/* `a` became a path of a remote: a ban on it (earned before, perhaps by
 * spoofed garbage) goes. */
static void path_known(kw_endpoint *ep, const kw_sockaddr *a) {
  if (ep->banned && a && a->family &&
      kw__addr_filter_lift(ep->banned, a, kw__now(ep)))
    log_unbanned(ep, a, "known_path");
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  kw__udp *u = h->data;
  kw_endpoint *owner = (kw_endpoint *)h->loop->data;
  if (status < 0)
    return;
  if (events & UV_WRITABLE) {
    size_t n = owner->nblocked;
    kw_conn *list[64];
    memcpy(list, owner->blocked, n * sizeof list[0]);
    owner->nblocked = 0;
    for (size_t i = 0; i < n; i++)
      kw__conn_retry_pending(list[i]);
    update_poll(owner, &owner->udp4);
    update_poll(owner, &owner->udp6);
  }
  if (events & UV_READABLE) {
    for (int i = 0; i < KW_RX_BATCHES_PER_WAKE; i++) {
      owner->rx_batch_now = uv_hrtime();
      int r = kw__udp_recv_batch(u, on_datagram, owner);
      owner->rx_batch_now = 0;
      if (r <= 0)
        break;
    }
  }
}

void kw__magicsock_start(kw_endpoint *ep) {
  kw__udp *socks[2] = {&ep->udp4, &ep->udp6};
  for (int i = 0; i < 2; i++) {
    kw__udp *u = socks[i];
    if (u->fd < 0 || u->poll_init)
      continue;
    if (uv_poll_init_socket(&ep->loop, &u->poll, u->fd) != 0)
      continue;
    u->poll.data = u;
    u->poll_init = true;
    u->poll_events = UV_READABLE;
    uv_poll_start(&u->poll, UV_READABLE, poll_cb);
  }
}
