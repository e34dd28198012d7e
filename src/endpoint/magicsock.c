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
#include "endpoint/magicsock.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/addr_filter.h"
#include "core/disco.h"
#include "core/stun.h"
#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/quic.h"
#include "endpoint/disco_io.h"
#include "endpoint/stun_probe.h"
#include "endpoint/relay_client.h"
#include "core/sockaddr.h"
#include "core/remote.h"
#include "core/paths.h"
#include "core/holepunch.h"
#include "net/udp.h"

#define KW_RX_BATCHES_PER_WAKE 8 /* fairness between sockets */
#define KW_MS_BLOCKED_MAX 64     /* connections waiting for a writable socket */

/* One of our own sockets (one per family) and its poll handle. */
typedef struct ms_sock {
  kw__udp *u; /* NULL: not open */
  uv_poll_t poll;
  bool poll_init;
  int poll_events;
  struct kw__magicsock *ms;
} ms_sock;

/* Birthday probing's extra UDP sockets (magicsock.h, KW_XSOCK_*). */
typedef struct kw__xsock {
  kw__udp *u;
  uv_poll_t poll; /* watches u's descriptor */
  bool poll_init;
  struct kw__remote *r;
  unsigned idx; /* 1..KW_RP_BDAY_SOCKETS */
  bool closing; /* uv_close ran: frees itself in the close callback */
} kw__xsock;

struct kw__magicsock {
  kw_endpoint *ep;
  ms_sock s4, s6;
  /* the receive fast path: the clock read once per recvmmsg batch (0 when
   * no batch is being handled, see kw__now) */
  uint64_t rx_batch_now;
  kw_conn *blocked[KW_MS_BLOCKED_MAX]; /* waiting for a writable socket */
  size_t nblocked;
  kw__remote *remotes;
  uint64_t next_mapped;
  struct kw__addr_filter *banned; /* sources of undecodable packets */
  kw__probe_budget probes; /* all remotes' Pings toward unvalidated addresses */
  /* birthday probing's extra sockets: how many are open, the one receive
   * buffer they share (KW_RX_BUFSZ, on first read), and counters for the
   * logs */
  unsigned nxsock;
  uint8_t *xsock_rxbuf;
  uint64_t xsock_opened, xsock_refused, xsock_drops;
  /* our share of kw_endpoint_stats (kw__magicsock_stats) */
  uint64_t udp_pkts_sent, udp_pkts_recv, udp_bytes_sent, udp_bytes_recv;
  uint64_t holepunch_attempts, drops_unknown;
};

/* One remote endpoint (magicsock.h). */
struct kw__remote {
  kw__remote *next; /* the magicsock's list */
  kw_endpoint *ep;
  struct kw__magicsock *ms;
  uint8_t id[KW_ID_LEN];
  bool id_known;
  uint64_t mapped_idx;        /* the fake IPv6 address QUIC sees */
  struct sockaddr_in6 mapped; /* fd7a:6b77:7900::/48 + mapped_idx */
  kw__rp rp;                  /* paths, hole punching, Pings, liveness, RTT */
  int relay; /* relay index that reaches it (home or observed), -1 */
  unsigned nconns;
  uint8_t disco_key[32]; /* wiped when the remote is freed */
  bool disco_key_ok;
  /* birthday probing's extra sockets, index 1..KW_RP_BDAY_SOCKETS (NULL
   * until the first is opened) */
  kw__xsock **xs;
  unsigned nxs;
};

static inline uint64_t ms_now(const struct kw__magicsock *ms) {
  /* inside a receive batch every packet gets the batch's arrival time: one
   * clock read per recvmmsg, not one per packet */
  return ms->rx_batch_now ? ms->rx_batch_now : uv_hrtime();
}

uint64_t kw__now(kw_endpoint *ep) {
  struct kw__magicsock *ms = ep ? kw__ep_msock(ep) : NULL;
  return ms ? ms_now(ms) : uv_hrtime();
}

/* ---- what others read of a remote -------------------------------------- */

kw_endpoint *kw__remote_ep(const kw__remote *r) {
  return r->ep;
}

const uint8_t *kw__remote_id(const kw__remote *r) {
  return r->id_known ? r->id : NULL;
}

int kw__remote_relay(const kw__remote *r) {
  return r->relay;
}

unsigned kw__remote_nconns(const kw__remote *r) {
  return r->nconns;
}

const struct sockaddr_in6 *kw__remote_mapped(const kw__remote *r) {
  return &r->mapped;
}

const uint8_t *kw__remote_disco_key(const kw__remote *r) {
  return r->disco_key_ok ? r->disco_key : NULL;
}

const kw__rp *kw__remote_policy(const kw__remote *r) {
  return &r->rp;
}

/* ---- remotes ------------------------------------------------------------ */

static void path_known(kw_endpoint *ep, const kw_sockaddr *a);
static kw__udp *sock_for(struct kw__magicsock *ms, const kw_sockaddr *to);
static void ms_input(struct kw__magicsock *ms, const kw__src *from,
                     const uint8_t *from_id, const uint8_t *data, size_t len);

static void rp_path_changed(void *user) {
  kw__remote_path_changed(user);
}

static void rp_path_known(void *user, const kw_sockaddr *a) {
  kw__remote *r = user;
  path_known(r->ep, a);
}

static void remote_free(kw__remote *r);

static void rp_idle_expired(void *user) {
  remote_free(user);
}

static void rp_random(void *user, uint8_t *buf, size_t n) {
  (void)user;
  randombytes_buf(buf, n);
}

static bool rp_send_ping(void *user, const kw_sockaddr *to,
                         const uint8_t tx_id[KW_DISCO_TXID_LEN], bool probe) {
  return kw__disco_send_ping(user, to, tx_id, probe);
}

static bool rp_send_call_me_maybe(void *user) {
  return kw__disco_send_call_me_maybe(user);
}

static void rp_note(void *user, kw__rp_note what, const kw_sockaddr *addr,
                    uint64_t a, uint64_t b) {
  kw__remote *r = user;
  kw_endpoint *ep = r->ep;
  char idb[KW_ID_SHORTLEN + 1], s[KW_SOCKADDR_STRLEN] = "-";
  kw_id_to_short(r->id, idb, sizeof idb);
  if (addr)
    kw_sockaddr_format(addr, s, sizeof s);
  switch (what) {
  case KW_RP_NOTE_ROUND:
    r->ms->holepunch_attempts++;
    kw__log(ep, KW_LOG_DEBUG, "disco",
            "holepunch.round remote=%s pinged=%llu relay=%d call_me_maybe=%s "
            "round=%llu",
            idb, (unsigned long long)a, r->relay, b ? "sent" : "failed",
            (unsigned long long)r->rp.hp.rounds);
    break;
  case KW_RP_NOTE_ANSWER:
    r->ms->holepunch_attempts++;
    break;
  case KW_RP_NOTE_PROBE_LIMITED:
    kw__log(ep, KW_LOG_DEBUG, "disco",
            "disco.probe_limited remote=%s refused=%llu total=%llu", idb,
            (unsigned long long)a, (unsigned long long)b);
    break;
  case KW_RP_NOTE_REBIND: {
    char o[KW_SOCKADDR_STRLEN] = "-";
    const kw__path *p = kw__paths_get(&r->rp.pt, (int)(int64_t)a);
    if (p)
      kw_sockaddr_format(&p->addr, o, sizeof o);
    kw__log(ep, KW_LOG_INFO, "paths", "path.rebind from=%s to=%s", o, s);
    break;
  }
  case KW_RP_NOTE_DIRECT_LOST:
    kw__log(ep, KW_LOG_INFO, "disco",
            "path.direct_lost remote=%s addr=%s silent_ms=%llu rule=%s", idb, s,
            (unsigned long long)(a / 1000000u),
            b == KW_RP_LOST_LOAD           ? "load"
            : b == KW_RP_LOST_REMOTE_RELAY ? "remote_relay"
                                           : "idle");
    break;
  case KW_RP_NOTE_BDAY_START:
    kw__log(ep, KW_LOG_INFO, "disco",
            "holepunch.birthday_start remote=%s target=%s mode=%s", idb, s,
            a ? "sockets" : "spray");
    break;
  case KW_RP_NOTE_BDAY_HIT:
    kw__log(ep, KW_LOG_INFO, "disco",
            "holepunch.birthday_hit remote=%s addr=%s sock=%llu sent=%llu "
            "xsock_opened=%llu xsock_refused=%llu xsock_drops=%llu",
            idb, s, (unsigned long long)a, (unsigned long long)b,
            (unsigned long long)r->ms->xsock_opened,
            (unsigned long long)r->ms->xsock_refused,
            (unsigned long long)r->ms->xsock_drops);
    break;
  case KW_RP_NOTE_BDAY_MISS:
    kw__log(ep, KW_LOG_INFO, "disco",
            "holepunch.birthday_miss remote=%s target=%s sent=%llu "
            "xsock_opened=%llu xsock_refused=%llu xsock_drops=%llu",
            idb, s, (unsigned long long)a,
            (unsigned long long)r->ms->xsock_opened,
            (unsigned long long)r->ms->xsock_refused,
            (unsigned long long)r->ms->xsock_drops);
    break;
  case KW_RP_NOTE_SELECTED: {
    if (!kw__log_enabled(ep, KW_LOG_INFO))
      break;
    int sel = (int)(int64_t)a;
    const char *kind = "none";
    uint64_t rtt = KW_PATHS_RTT_UNKNOWN;
    if (sel > KW_PATHS_RELAY) {
      kind = "direct";
      kw_sockaddr_format(&kw__paths_get(&r->rp.pt, sel)->addr, s, sizeof s);
      rtt = kw__paths_rtt(&r->rp.pt, sel);
    } else if (sel == KW_PATHS_RELAY) {
      kind = "relay";
    }
    kw__log(ep, KW_LOG_INFO, "paths",
            "path.selected remote=%s kind=%s addr=%s rtt_ms=%.2f "
            "redundant_closed=%llu",
            idb, kind, s,
            rtt == KW_PATHS_RTT_UNKNOWN ? -1.0 : (double)rtt / 1e6,
            (unsigned long long)b);
    break;
  }
  }
}

/* ---- birthday probing's extra sockets (kw__xsock) ------------------- */

static void xsock_poll_cb(uv_poll_t *h, int status, int events);

static void xsock_freed(uv_handle_t *h) {
  kw__xsock *x = h->data;
  kw__udp_close(x->u);
  free(x);
}

static void xsock_close(kw__xsock *x) {
  kw__remote *r = x->r;
  r->xs[x->idx] = NULL;
  r->nxs--;
  r->ms->nxsock--;
  x->closing = true;
  x->r = NULL;
  if (x->poll_init) {
    uv_poll_stop(&x->poll);
    uv_close((uv_handle_t *)&x->poll, xsock_freed);
    return;
  }
  kw__udp_close(x->u);
  free(x);
}

/* Every extra socket of `r` but `keep` (0: all). */
static void xsock_close_but(kw__remote *r, unsigned keep) {
  if (!r->xs)
    return;
  for (unsigned i = 1; i <= KW_RP_BDAY_SOCKETS && r->nxs; i++)
    if (i != keep && r->xs[i])
      xsock_close(r->xs[i]);
  if (keep && r->xs[keep])
    kw__udp_grow_bufs(r->xs[keep]->u); /* it carries the connection now */
}

/* Extra socket `sock` of `r` toward `to`'s family, opened on first use:
 * bound to our own socket's address with an ephemeral port. */
static kw__xsock *xsock_get(kw__remote *r, unsigned sock, const kw_sockaddr *to,
                            bool open) {
  kw_endpoint *ep = r->ep;
  struct kw__magicsock *ms = r->ms;
  if (sock == 0 || sock > KW_RP_BDAY_SOCKETS)
    return NULL;
  kw__xsock *x = r->xs ? r->xs[sock] : NULL;
  if (x || !open)
    return x && kw__udp_bound(x->u)->family == to->family ? x : NULL;
  kw__udp *main = sock_for(ms, to);
  if (!main || kw__ep_closing(ep))
    return NULL;
  if (ms->nxsock >= KW_XSOCK_MAX_PER_EP) {
    ms->xsock_refused++;
    return NULL;
  }
  if (!r->xs) {
    r->xs = calloc(KW_RP_BDAY_SOCKETS + 1, sizeof *r->xs);
    if (!r->xs)
      return NULL;
  }
  x = calloc(1, sizeof *x);
  if (!x)
    return NULL;
  kw_sockaddr b = *kw__udp_bound(main);
  b.port = 0;
  if (kw__udp_open_small(&b, &x->u) != KW_OK) {
    free(x);
    ms->xsock_refused++;
    return NULL;
  }
  if (uv_poll_init_socket(kw__ep_loop(ep), &x->poll, kw__udp_fd(x->u)) != 0) {
    kw__udp_close(x->u);
    free(x);
    ms->xsock_refused++;
    return NULL;
  }
  x->poll.data = x;
  x->poll_init = true;
  uv_poll_start(&x->poll, UV_READABLE, xsock_poll_cb);
  x->r = r;
  x->idx = sock;
  r->xs[sock] = x;
  r->nxs++;
  ms->nxsock++;
  ms->xsock_opened++;
  return x;
}

bool kw__magicsock_xsend(kw__remote *r, unsigned sock, const kw_sockaddr *to,
                         const uint8_t *p, size_t n) {
  kw__xsock *x = xsock_get(r, sock, to, false);
  if (!x)
    return false;
  size_t sent = 0;
  kw_err e = kw__udp_send(x->u, to, p, n, 0, &sent);
  if (e == KW_ERR_AGAIN)
    r->ms->xsock_drops++; /* a probe: dropped, never queued */
  if (e != KW_OK)
    return false;
  r->ms->udp_pkts_sent++;
  r->ms->udp_bytes_sent += n;
  return true;
}

static void xsock_poll_cb(uv_poll_t *h, int status, int events) {
  kw__xsock *x = h->data;
  if (status < 0 || !(events & UV_READABLE) || x->closing)
    return;
  struct kw__magicsock *ms = x->r->ms;
  if (!ms->xsock_rxbuf) {
    ms->xsock_rxbuf = malloc(KW_RX_BUFSZ); /* one for all extra sockets */
    if (!ms->xsock_rxbuf)
      return;
  }
  for (int i = 0; i < KW_XSOCK_RX_PER_WAKE && !x->closing; i++) {
    kw_sockaddr from;
    size_t len = 0;
    if (kw__udp_recv_one(x->u, ms->xsock_rxbuf, KW_RX_BUFSZ, &from, &len) <= 0)
      break;
    ms->udp_pkts_recv++;
    ms->udp_bytes_recv += len;
    kw__src src = {from, -1, x->idx, x->r};
    ms->rx_batch_now = uv_hrtime();
    /* may close x (a hit closes the others, a freed remote all): then
     * x->closing stops the loop; x itself lives until its close callback */
    ms_input(ms, &src, NULL, ms->xsock_rxbuf, len);
    ms->rx_batch_now = 0;
  }
}

static bool rp_bday_send(void *user, unsigned sock, const kw_sockaddr *to,
                         const uint8_t tx_id[KW_DISCO_TXID_LEN]) {
  kw__remote *r = user;
  if (kw__ep_cfg(r->ep)->path_policy == KW_PATH_POLICY_RELAY_ONLY)
    return false;
  if (sock == 0) /* the spray: our own socket, outside the probe budget */
    return kw__disco_send_ping_from(r, 0, to, tx_id, false);
  if (!xsock_get(r, sock, to, true))
    return false;
  return kw__disco_send_ping_from(r, sock, to, tx_id, false);
}

static void rp_bday_close(void *user, unsigned keep) {
  kw__remote *r = user;
  unsigned had = r->nxs;
  xsock_close_but(r, keep);
  if (kw__log_enabled(r->ep, KW_LOG_INFO)) {
    /* an attempt's end (a hit, a direct path by other means, its time
     * up) or its chosen socket given up: what it used */
    char idb[KW_ID_SHORTLEN + 1];
    kw_id_to_short(r->id, idb, sizeof idb);
    kw__log(r->ep, KW_LOG_INFO, "disco",
            "holepunch.birthday_end remote=%s mode=%s sent=%u kept=%u "
            "closed=%u xsock_open=%u",
            idb, r->rp.bday.spray ? "spray" : "sockets", r->rp.bday.sent, keep,
            had - r->nxs, r->ms->nxsock);
  }
}

/* The direct path fell silent under load: our NAT may have rebound. */
static void rp_recheck(void *user) {
  kw__remote *r = user;
  kw__stun_refresh(r->ep);
}

static const kw__rp_cbs rp_cbs = {
    .bday_send = rp_bday_send,
    .bday_close = rp_bday_close,
    .send_ping = rp_send_ping,
    .send_call_me_maybe = rp_send_call_me_maybe,
    .path_changed = rp_path_changed,
    .path_known = rp_path_known,
    .idle_expired = rp_idle_expired,
    .random = rp_random,
    .note = rp_note,
    .recheck = rp_recheck,
};

/* The remote's disco key, once its id is known. */
static void remote_key(kw__remote *r) {
  if (r->disco_key_ok || !r->id_known)
    return;
  kw__disco_key k;
  if (kw__disco_key_derive(kw__ep_cfg(r->ep)->sk, r->id, &k) != KW_OK)
    return;
  memcpy(r->disco_key, k.k, sizeof r->disco_key);
  kw__disco_key_wipe(&k);
  r->disco_key_ok = true;
  kw__rp_set_keyed(&r->rp, kw__now(r->ep));
}

kw__remote *kw__remote_new(kw_endpoint *ep, const uint8_t *id) {
  struct kw__magicsock *ms = kw__ep_msock(ep);
  if (id) {
    for (kw__remote *e = ms->remotes; e; e = e->next) {
      if (!e->id_known || memcmp(e->id, id, KW_ID_LEN) != 0)
        continue;
      /* an idle remote's paths may have gone stale: the next connection
       * races them all (and the relay) again */
      if (e->nconns == 0)
        kw__rp_rerace(&e->rp, kw__now(ep));
      return e;
    }
  }
  kw__remote *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->ep = ep;
  r->ms = ms;
  kw__rp_init(&r->rp, &rp_cbs, r);
  kw__rp_set_birthday(&r->rp, !kw__ep_cfg(ep)->no_birthday);
  uint8_t nat = kw__disco_nat_kind(ep);
  if (nat)
    kw__rp_local_nat(&r->rp, (kw__rp_nat)nat, kw__now(ep));
  if (id) {
    memcpy(r->id, id, KW_ID_LEN);
    r->id_known = true;
    remote_key(r);
  }
  r->relay = -1;
  r->mapped_idx = ++ms->next_mapped;
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
  r->next = ms->remotes;
  ms->remotes = r;
  return r;
}

static void remote_free(kw__remote *r) {
  for (kw__remote **pp = &r->ms->remotes; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  }
  xsock_close_but(r, 0);
  free(r->xs);
  kw__rp_free(&r->rp);
  sodium_memzero(r->disco_key, sizeof r->disco_key);
  free(r);
}

void kw__remotes_free(kw_endpoint *ep) {
  struct kw__magicsock *ms = kw__ep_msock(ep);
  while (ms && ms->remotes)
    remote_free(ms->remotes);
}

void kw__remote_unref(kw__remote *r) {
  if (r->nconns > 0)
    return;
  if (!r->id_known || kw__ep_closing(r->ep)) {
    remote_free(r);
    return;
  }
  kw__rp_idle(&r->rp, kw__now(r->ep));
  kw__disco_arm(r->ep); /* to free it when its time is up */
}

int kw__remote_conn_attach(kw__remote *r) {
  r->nconns++;
  return kw__rp_conn_open(&r->rp);
}

void kw__remote_conn_detach(kw__remote *r, int rtt_slot) {
  if (r->nconns > 0)
    r->nconns--;
  kw__rp_conn_close(&r->rp, rtt_slot, kw__now(r->ep));
}

void kw__remote_set_id(kw__remote *r, const uint8_t id[KW_ID_LEN]) {
  if (r->id_known)
    return;
  kw__remote *e = kw__remote_find(r->ep, id); /* never r: id-less */
  if (e) {
    /* one remote per id: its connections share its paths */
    uint64_t now = ms_now(r->ms);
    if (e->nconns == 0)
      kw__rp_rerace(&e->rp, now); /* idle: as kw__remote_new does */
    for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
      const kw__path *p = kw__paths_get(&r->rp.pt, i);
      if (p && p->state == KW_PST_VALIDATED)
        kw__rp_packet_on(&e->rp, &p->addr, p->sock, now);
    }
    if (e->relay < 0)
      e->relay = r->relay;
    kw__conn_move_remote(r, e);
    if (kw__log_enabled(r->ep, KW_LOG_INFO)) {
      char idb[KW_ID_SHORTLEN + 1];
      kw_id_to_short(id, idb, sizeof idb);
      kw__log(r->ep, KW_LOG_INFO, "paths", "remote.merged remote=%s conns=%u",
              idb, e->nconns);
    }
    remote_free(r); /* no connection left */
    return;
  }
  memcpy(r->id, id, KW_ID_LEN);
  r->id_known = true;
  remote_key(r);
}

void kw__remote_set_relay(kw__remote *r, int relay) {
  r->relay = relay;
}

void kw__remotes_set_home(kw_endpoint *ep, int relay) {
  for (kw__remote *r = kw__ep_msock(ep)->remotes; r; r = r->next)
    if (r->relay < 0)
      r->relay = relay;
}

void kw__remote_conn_rtt(kw_conn *c, uint64_t now) {
  kw__remote *r = kw__conn_remote(c);
  if (!r || !kw__conn_established(c) ||
      !kw__rp_rtt_due(&r->rp, kw__conn_rtt_slot(c), now))
    return; /* most packets: no sample due */
  kw_path_info pi;
  kw_conn_path(c, &pi);
  if (pi.rtt_ms > 0)
    kw__rp_rtt_sample(&r->rp, kw__conn_rtt_slot(c), (uint64_t)(pi.rtt_ms * 1e6),
                      now);
}

uint64_t kw__remotes_next_deadline(kw_endpoint *ep) {
  uint64_t next = KW_RP_NEVER;
  for (kw__remote *r = kw__ep_msock(ep)->remotes; r; r = r->next) {
    uint64_t d = kw__rp_next_deadline(&r->rp);
    if (d < next)
      next = d;
  }
  return next;
}

void kw__remotes_timeout(kw_endpoint *ep, uint64_t now) {
  kw__remote *r = kw__ep_msock(ep)->remotes;
  while (r) {
    kw__remote *n = r->next; /* r may be freed (idle) */
    if (kw__rp_next_deadline(&r->rp) <= now)
      kw__rp_handle_timeout(&r->rp, now);
    r = n;
  }
}

bool kw__remote_add_path_src(kw__remote *r, const kw_sockaddr *a,
                             uint8_t source) {
  return kw__rp_candidate(&r->rp, a, source, kw__now(r->ep));
}

void kw__remote_add_path(kw__remote *r, const kw_sockaddr *a) {
  (void)kw__remote_add_path_src(r, a, KW_PSRC_APP);
}

const kw_sockaddr *kw__remote_direct(const kw__remote *r) {
  return kw__rp_direct(&r->rp);
}

bool kw__remote_on_relay(const kw__remote *r) {
  return kw__rp_on_relay(&r->rp);
}

bool kw__remote_probe_allow(kw__remote *r, size_t bytes, uint64_t now) {
  return kw__probe_allow(&r->rp.probes, &r->ms->probes, now, bytes);
}

void kw__remote_conn_up(kw__remote *r, uint64_t now) {
  kw__rp_conn_up(&r->rp, now);
}

void kw__remote_conn_down(kw__remote *r, uint64_t now) {
  kw__rp_conn_down(&r->rp, now);
}

void kw__remotes_local_candidates(kw_endpoint *ep, uint64_t now) {
  for (kw__remote *r = kw__ep_msock(ep)->remotes; r; r = r->next)
    kw__rp_local_candidates(&r->rp, now);
}

void kw__remotes_local_nat(kw_endpoint *ep, kw__rp_nat nat, uint64_t now) {
  for (kw__remote *r = kw__ep_msock(ep)->remotes; r; r = r->next)
    kw__rp_local_nat(&r->rp, nat, now);
}

void kw__remotes_network_change(kw_endpoint *ep, uint64_t now) {
  for (kw__remote *r = kw__ep_msock(ep)->remotes; r; r = r->next)
    kw__rp_network_change(&r->rp, now);
}

kw__remote *kw__remote_find(kw_endpoint *ep, const uint8_t id[KW_ID_LEN]) {
  /* prefer a remote that has connections */
  kw__remote *any = NULL;
  for (kw__remote *r = kw__ep_msock(ep)->remotes; r; r = r->next) {
    if (!r->id_known || memcmp(r->id, id, KW_ID_LEN) != 0)
      continue;
    if (r->nconns)
      return r;
    any = r;
  }
  return any;
}

kw_err kw__magicsock_send_raw(kw_endpoint *ep, const kw_sockaddr *to,
                              const uint8_t *p, size_t n) {
  kw__udp *u = sock_for(kw__ep_msock(ep), to);
  if (!u)
    return KW_ERR_NO_PATH;
  size_t sent;
  return kw__udp_send(u, to, p, n, 0, &sent);
}

bool kw__magicsock_bound(const kw_endpoint *ep, int family, kw_sockaddr *out) {
  const struct kw__magicsock *ms = kw__ep_msock(ep);
  const kw__udp *u = !ms ? NULL : family == 4 ? ms->s4.u : ms->s6.u;
  if (!u)
    return false;
  if (out)
    *out = *kw__udp_bound(u);
  return true;
}

void kw__magicsock_offload(const kw_endpoint *ep, bool *gso, bool *gro) {
  const struct kw__magicsock *ms = kw__ep_msock(ep);
  const kw__udp *u = ms ? ms->s4.u : NULL;
  *gso = u && kw__udp_gso(u);
  *gro = u && kw__udp_gro(u);
}

void kw__magicsock_forget_conn(kw_endpoint *ep, kw_conn *c) {
  struct kw__magicsock *ms = kw__ep_msock(ep);
  for (size_t i = 0; i < ms->nblocked; i++) {
    if (ms->blocked[i] == c) {
      ms->blocked[i] = ms->blocked[--ms->nblocked];
      break;
    }
  }
}

void kw__remote_ping_received(kw__remote *r, const kw__src *from,
                              uint64_t now) {
  kw__rp_ping_received_on(&r->rp, &from->addr, from->sock, now);
}

bool kw__remote_pong_received(kw__remote *r,
                              const uint8_t tx_id[KW_DISCO_TXID_LEN],
                              const kw__src *from, uint64_t now,
                              uint64_t *rtt_ns) {
  return kw__rp_pong_received_on(&r->rp, tx_id, &from->addr, from->sock, now,
                                 rtt_ns);
}

void kw__remote_call_me_maybe(kw__remote *r, const kw_sockaddr *addrs, size_t n,
                              uint64_t now) {
  kw__rp_call_me_maybe(&r->rp, addrs, n, now);
}

void kw__remote_remote_nat(kw__remote *r, kw__rp_nat nat,
                           const kw_sockaddr *refl, uint64_t now) {
  kw__rp_remote_nat(&r->rp, nat, refl, now);
}

void kw__remote_path_changed(kw__remote *r) {
  /* each connection's flush sends on the new path, tells the app */
  kw__conn_mark_dirty_remote(r);
}

bool kw__remote_confirm_path(kw__remote *r, const kw__src *from, uint64_t now) {
  if (from->relay >= 0)
    r->relay = from->relay; /* observed route */
  int before = kw__paths_selected(&r->rp.pt);
  uint64_t at = r->rp.selected_ns;
  if (from->relay >= 0)
    kw__rp_packet(&r->rp, NULL, now);
  else
    kw__rp_packet_on(&r->rp, &from->addr, from->sock, now);
  return kw__paths_selected(&r->rp.pt) != before || r->rp.selected_ns != at;
}

/* ---- sending --------------------------------------------------------------
 */

static kw__udp *sock_for(struct kw__magicsock *ms, const kw_sockaddr *to) {
  return to->family == 4 ? ms->s4.u : to->family == 6 ? ms->s6.u : NULL;
}

kw_err kw__magicsock_send(kw_conn *c, const uint8_t *data, size_t len,
                          size_t seg, size_t *sent_segs) {
  kw_endpoint *ep = kw__conn_ep(c);
  kw__remote *r = kw__conn_remote(c);
  struct kw__magicsock *ms = r->ms;
  *sent_segs = 0;
  size_t nseg = seg ? (len + seg - 1) / seg : 1;
  int policy = kw__ep_cfg(ep)->path_policy; /* kw_config_set_path_policy */
  const kw_sockaddr *to =
      policy == KW_PATH_POLICY_RELAY_ONLY ? NULL : kw__remote_direct(r);
  if (to) {
    /* a birthday path is the mapping of its own extra socket */
    kw__xsock *x = xsock_get(r, kw__rp_direct_sock(&r->rp), to, false);
    kw__udp *u = x ? x->u : sock_for(ms, to);
    if (!u)
      return KW_ERR_NO_PATH;
    kw_err e = kw__udp_send(u, to, data, len, seg, sent_segs);
    kw__rp_sent(&r->rp, ms_now(ms)); /* liveness under load */
    if (x && e == KW_ERR_AGAIN) {
      /* the writable wait watches the main sockets only: a full extra
       * socket drops the rest of the batch (counted; QUIC resends) */
      ms->xsock_drops += nseg - *sent_segs;
      *sent_segs = nseg;
      e = KW_OK;
    }
    ms->udp_pkts_sent += *sent_segs;
    ms->udp_bytes_sent += e == KW_OK ? len : *sent_segs * seg;
    return e;
  }
  if (kw__remote_on_relay(r) && r->relay >= 0 &&
      policy != KW_PATH_POLICY_DIRECT_ONLY)
    return kw__relay_send_batch(ep, r->relay, r->id, data, len, seg, sent_segs);
  /* racing: every path gets every packet; a full socket buffer on one path
   * is not worth holding the others for (QUIC resends) */
  bool any = false;
  size_t ndirect = 0;
  if (r->relay >= 0 && r->id_known && policy != KW_PATH_POLICY_DIRECT_ONLY) {
    size_t s = 0;
    if (kw__relay_send_batch(ep, r->relay, r->id, data, len, seg, &s) == KW_OK)
      any = true;
  }
  for (int i = KW_PATHS_RELAY + 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = kw__paths_get(&r->rp.pt, i);
    if (!p || p->state == KW_PST_UNUSABLE ||
        policy == KW_PATH_POLICY_RELAY_ONLY)
      continue;
    /* a candidate only disco named (a CallMeMaybe, a Ping's source) gets
     * QUIC once a Pong validated it (then also while it is inactive: it
     * may carry the connection again): until then it gets budgeted Pings,
     * never a race of full-size packets toward whoever it may be */
    if (!p->ever_validated &&
        (p->sources & (KW_PSRC_APP | KW_PSRC_LOOKUP | KW_PSRC_CONN)) == 0)
      continue;
    ndirect++;
    kw__xsock *x = xsock_get(r, p->sock, &p->addr, false);
    kw__udp *u = x ? x->u : sock_for(ms, &p->addr);
    if (!u)
      continue;
    size_t s = 0;
    if (kw__udp_send(u, &p->addr, data, len, seg, &s) == KW_OK)
      any = true;
    ms->udp_pkts_sent += s;
  }
  *sent_segs = nseg;
  return any || (ndirect == 0 && r->relay < 0) ? KW_OK : KW_ERR_IO;
}

static void poll_cb(uv_poll_t *h, int status, int events);

static void update_poll(struct kw__magicsock *ms, ms_sock *s) {
  if (!s->poll_init || kw__ep_closing(ms->ep))
    return;
  int ev = UV_READABLE;
  if (ms->nblocked)
    ev |= UV_WRITABLE;
  if (ev != s->poll_events) {
    s->poll_events = ev;
    uv_poll_start(&s->poll, ev, poll_cb);
  }
}

void kw__magicsock_watch_writable(kw_endpoint *ep, kw_conn *c) {
  struct kw__magicsock *ms = kw__ep_msock(ep);
  for (size_t i = 0; i < ms->nblocked; i++)
    if (ms->blocked[i] == c)
      return;
  if (ms->nblocked < KW_MS_BLOCKED_MAX) {
    ms->blocked[ms->nblocked++] = c;
  } else {
    /* table full: drop the pending batch, loss recovery resends it */
    kw__conn_drop_pending(c);
    kw__conn_mark_dirty(c);
    return;
  }
  update_poll(ms, &ms->s4);
  update_poll(ms, &ms->s6);
}

/* ---- receiving ------------------------------------------------------------
 */

static void on_datagram(void *arg, kw__udp *u, const kw_sockaddr *from,
                        const uint8_t *data, size_t len) {
  (void)u;
  struct kw__magicsock *ms = arg;
  ms->udp_pkts_recv++;
  ms->udp_bytes_recv += len;
  kw__src src = {*from, -1, 0, NULL};
  ms_input(ms, &src, NULL, data, len);
}

void kw__magicsock_input(kw_endpoint *ep, const kw__src *from,
                         const uint8_t *from_id, const uint8_t *data,
                         size_t len) {
  ms_input(kw__ep_msock(ep), from, from_id, data, len);
}

static void ms_input(struct kw__magicsock *ms, const kw__src *from,
                     const uint8_t *from_id, const uint8_t *data, size_t len) {
  kw_endpoint *ep = ms->ep;
  if (len == 0)
    return;
  if (kw__stun_is(data, len)) {
    if (from->relay < 0 && !from->sock)
      kw__stun_input(ep, &from->addr, data, len);
    else
      ms->drops_unknown++;
    return;
  }
  const uint8_t *dcid = NULL;
  size_t dcidlen = 0;
  bool disco = kw__disco_is(data, len);
  /* kw_config_set_path_policy: relay-only takes nothing but STUN by UDP;
   * direct-only takes nothing but disco by a relay */
  if ((from->relay < 0 &&
       kw__ep_cfg(ep)->path_policy == KW_PATH_POLICY_RELAY_ONLY) ||
      (from->relay >= 0 && !disco &&
       kw__ep_cfg(ep)->path_policy == KW_PATH_POLICY_DIRECT_ONLY)) {
    ms->drops_unknown++;
    return;
  }
  bool quic = !disco && kw__quic_dcid(data, len, &dcid, &dcidlen);
  kw_conn *c = NULL;
  if (quic) {
    c = kw__quic_conn_by_dcid(ep, dcid, dcidlen);
  }
  if (c) { /* a known connection's packets bypass the punishment table */
    kw__conn_recv(c, from, data, len);
    return;
  }
  if (quic && (data[0] & 0x80) && !from->sock) { /* maybe an Initial */
    /* a ban never stops a handshake: the source of the garbage that
     * earned it may have been spoofed, and whoever completes a handshake
     * from the address lifts it (kw__disco_conn_up) */
    kw__conn_accept(ep, from, from_id, data, len);
    return;
  }
  if (from->relay < 0 && ms->banned &&
      kw__addr_filter_ignored(ms->banned, &from->addr, ms_now(ms))) {
    ms->drops_unknown++;
    return;
  }
  if (disco) {
    kw__disco_input(ep, from, data, len);
    return;
  }
  ms->drops_unknown++;
  /* QUIC for a connection we no longer know is a straggler, not abuse;
   * only what is neither STUN, disco nor QUIC (a short header without the
   * fixed bit: keyway never negotiates greasing it) counts against the
   * sender */
  if (!quic || !(data[0] & 0x40))
    kw__magicsock_strike(ep, from);
}

/* A known path of some remote is never banned: garbage "from" it may be
 * spoofed, and the ban would cut the remote's disco off. Asked only when a
 * ban is due (at most once per strike window and address). */
static bool known_path(void *arg, const kw_sockaddr *a) {
  struct kw__magicsock *ms = arg;
  for (kw__remote *r = ms->remotes; r; r = r->next)
    if (kw__paths_find(&r->rp.pt, a) != KW_PATHS_NONE)
      return true;
  return false;
}

void kw__magicsock_strike(kw_endpoint *ep, const kw__src *from) {
  struct kw__magicsock *ms = kw__ep_msock(ep);
  if (from->relay >= 0 || !ms->banned)
    return; /* a relay vouches for its senders; it rate-limits them */
  bool spared = false;
  bool banned = kw__addr_filter_strike(ms->banned, &from->addr, ms_now(ms),
                                       known_path, ms, &spared);
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
  struct kw__magicsock *ms = kw__ep_msock(ep);
  if (from->relay < 0 && ms->banned &&
      kw__addr_filter_trust(ms->banned, &from->addr, ms_now(ms)))
    log_unbanned(ep, &from->addr, "authenticated");
}

void kw__magicsock_trust_addr(kw_endpoint *ep, const kw_sockaddr *a,
                              const char *why) {
  struct kw__magicsock *ms = kw__ep_msock(ep);
  if (ms->banned && kw__addr_filter_trust(ms->banned, a, ms_now(ms)))
    log_unbanned(ep, a, why);
}

/* `a` became a path of a remote: a ban on it (earned before, perhaps by
 * spoofed garbage) goes. */
static void path_known(kw_endpoint *ep, const kw_sockaddr *a) {
  struct kw__magicsock *ms = kw__ep_msock(ep);
  if (ms->banned && a && a->family &&
      kw__addr_filter_lift(ms->banned, a, ms_now(ms)))
    log_unbanned(ep, a, "known_path");
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  ms_sock *sk = h->data;
  struct kw__magicsock *ms = sk->ms;
  if (status < 0)
    return;
  if (events & UV_WRITABLE) {
    size_t n = ms->nblocked;
    kw_conn *list[KW_MS_BLOCKED_MAX];
    memcpy(list, ms->blocked, n * sizeof list[0]);
    ms->nblocked = 0;
    for (size_t i = 0; i < n; i++)
      kw__conn_retry_pending(list[i]);
    update_poll(ms, &ms->s4);
    update_poll(ms, &ms->s6);
  }
  if (events & UV_READABLE) {
    for (int i = 0; i < KW_RX_BATCHES_PER_WAKE; i++) {
      ms->rx_batch_now = uv_hrtime();
      int r = kw__udp_recv_batch(sk->u, on_datagram, ms);
      ms->rx_batch_now = 0;
      if (r <= 0)
        break;
    }
  }
}

/* ---- life cycle -----------------------------------------------------------
 */

static void sock_poll_start(kw_endpoint *ep, ms_sock *s) {
  if (!s->u || s->poll_init)
    return;
  if (uv_poll_init_socket(kw__ep_loop(ep), &s->poll, kw__udp_fd(s->u)) != 0)
    return;
  s->poll.data = s;
  s->poll_init = true;
  s->poll_events = UV_READABLE;
  uv_poll_start(&s->poll, UV_READABLE, poll_cb);
}

kw_err kw__magicsock_new(kw_endpoint *ep, struct kw__magicsock **out) {
  *out = NULL;
  const kw_config *cfg = kw__ep_cfg(ep);
  struct kw__magicsock *ms = calloc(1, sizeof *ms);
  if (!ms)
    return KW_ERR_NOMEM;
  ms->ep = ep;
  ms->s4.ms = ms->s6.ms = ms;
  kw__probe_budget_init_endpoint(&ms->probes);
  ms->banned = calloc(1, sizeof *ms->banned);
  if (!ms->banned || kw__addr_filter_init(ms->banned) != KW_OK) {
    free(ms->banned);
    ms->banned = NULL;
    kw__magicsock_free(ms);
    return KW_ERR_NOMEM;
  }
  /* a family turned off gets no socket (e4/e6 = OK, none opened) */
  kw_err e4 = cfg->no4 ? KW_OK : kw__udp_open(&cfg->bind4, &ms->s4.u);
  kw_err e6 = cfg->no6 ? KW_OK : kw__udp_open(&cfg->bind6, &ms->s6.u);
  /* a family the machine lacks is fine, unless the caller bound it */
  bool need4 = !cfg->no4 &&
               (cfg->bind4.port != 0 ||
                !kw__sockaddr_equal(&cfg->bind4, &(kw_sockaddr){.family = 4}));
  bool need6 = !cfg->no6 &&
               (cfg->bind6.port != 0 ||
                !kw__sockaddr_equal(&cfg->bind6, &(kw_sockaddr){.family = 6}));
  if (cfg->no4 && e6 != KW_OK)
    need6 = true; /* the only family asked for must work */
  if (cfg->no6 && e4 != KW_OK)
    need4 = true;
  if ((e4 != KW_OK && (need4 || e6 != KW_OK)) || (e6 != KW_OK && need6)) {
    kw__magicsock_free(ms);
    return e4 != KW_OK ? e4 : e6;
  }
  sock_poll_start(ep, &ms->s4);
  sock_poll_start(ep, &ms->s6);
  *out = ms;
  return KW_OK;
}

void kw__magicsock_close_handles(kw_endpoint *ep) {
  struct kw__magicsock *ms = kw__ep_msock(ep);
  if (!ms)
    return;
  /* birthday probing's extra sockets */
  for (kw__remote *r = ms->remotes; r; r = r->next)
    xsock_close_but(r, 0);
  ms_sock *socks[2] = {&ms->s4, &ms->s6};
  for (int i = 0; i < 2; i++) {
    if (socks[i]->poll_init) {
      uv_close((uv_handle_t *)&socks[i]->poll, NULL);
      socks[i]->poll_init = false;
    }
  }
}

void kw__magicsock_free(struct kw__magicsock *ms) {
  if (!ms)
    return;
  kw__udp_close(ms->s4.u);
  kw__udp_close(ms->s6.u);
  free(ms->xsock_rxbuf);
  if (ms->banned) {
    kw__addr_filter_free(ms->banned);
    free(ms->banned);
  }
  free(ms);
}

void kw__magicsock_stats(const kw_endpoint *ep, kw_endpoint_stats *out) {
  const struct kw__magicsock *ms = kw__ep_msock(ep);
  if (!ms)
    return;
  out->udp_pkts_sent += ms->udp_pkts_sent;
  out->udp_pkts_recv += ms->udp_pkts_recv;
  out->udp_bytes_sent += ms->udp_bytes_sent;
  out->udp_bytes_recv += ms->udp_bytes_recv;
  out->holepunch_attempts += ms->holepunch_attempts;
  out->drops_unknown += ms->drops_unknown;
}
