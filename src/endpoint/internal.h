/* SPDX-License-Identifier: MIT */
/*
 * Internal structures of the endpoint: the endpoint, its magicsock (UDP
 * sockets and the per-remote path state), and the kw__ functions its files
 * call in each other. QUIC connections and streams are only named
 * (their module's interface is quic.h, its structs are in quic_conn.h;
 * TLS's interface is tls.h). ngtcp2 and GnuTLS appear
 * here only as opaque pointers; the transports
 * (UDP socket, TLS stream, clock, OS addresses) are src/net's.
 */
#ifndef KW_IO_INTERNAL_H
#define KW_IO_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <uv.h>

#include "keyway.h"
#include "core/cidmap.h"
#include "core/holepunch.h"
#include "core/paths.h"
#include "core/remote.h"
#include "core/sockaddr.h"
#include "net/clock.h"
#include "net/osaddr.h"
#include "net/udp.h"
#include "endpoint/config.h"

/* One header per module; included here until every file includes what it
 * uses. */
#include "endpoint/lan.h"
#include "endpoint/lookup_client.h"
#include "endpoint/netmon.h"
#include "endpoint/portmap.h"
#include "endpoint/relay_client.h"
#include "endpoint/resolve.h"

struct ngtcp2_conn;
struct kw__tls_ctx;
struct kw__tls_sess;

/* ---- logging ---------------------------------------------------------- */

void kw__log(kw_endpoint *ep, kw_log_level lvl, const char *module,
             const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
bool kw__log_enabled(const kw_endpoint *ep, kw_log_level lvl);

/* ---- what every module reads of the endpoint (endpoint.c) ------------- */

/* The endpoint's loop, its configuration (a copy made by kw_endpoint_new,
 * read-only), its id, whether it is closing (every handle is being
 * closed: nothing new starts), its TLS credentials. The lock guards what
 * other threads read: the home relay's URL, the reflexive and observed
 * addresses, the port mapping's external address. */
uv_loop_t *kw__ep_loop(kw_endpoint *ep);
const kw_config *kw__ep_cfg(const kw_endpoint *ep);
/* The QUIC module's state (kw__quic_new; quic*.c only know its fields). */
struct kw__quic *kw__ep_quic(const kw_endpoint *ep);
const uint8_t *kw__ep_id(const kw_endpoint *ep);
bool kw__ep_closing(const kw_endpoint *ep);
struct kw__tls_ctx *kw__ep_tls(const kw_endpoint *ep);
void kw__ep_lock(kw_endpoint *ep);
void kw__ep_unlock(kw_endpoint *ep);
/* The state of the modules kw_endpoint_new creates (kw__X_new), each
 * defined in its module's file: the relay map (relay_client.c), the
 * record publisher (lookup_client.c), the bare-id lookups (resolve.c), LAN
 * discovery (lan.c; NULL when off), port mapping (portmap.c; NULL when
 * off), the network monitor (netmon.c). */
struct kw__relay_map *kw__ep_relays(const kw_endpoint *ep);
struct kw__publisher *kw__ep_publisher(const kw_endpoint *ep);
struct kw__resolve *kw__ep_resolve(const kw_endpoint *ep);
struct kw__lan *kw__ep_lan(const kw_endpoint *ep);
struct kw__portmap *kw__ep_portmap(const kw_endpoint *ep);
struct kw__netmon *kw__ep_netmon(const kw_endpoint *ep);
/* The state of disco (disco_io.c) and of the STUN probes (stun_probe.c):
 * only their own files know what is in it. */
struct kw__disco *kw__ep_disco(const kw_endpoint *ep);
struct kw__stun *kw__ep_stun(const kw_endpoint *ep);

/* ---- remotes: per remote endpoint path state (magicsock.c) ------------ */

/* Where a packet came from: a UDP address, or a relay (addr.family 0). */
typedef struct kw__src {
  kw_sockaddr addr;
  int relay; /* index into the relay map (relay_client.c), -1 for UDP */
  /* UDP: the socket it came on, 0 our own, 1..KW_RP_BDAY_SOCKETS an extra
   * socket of remote `xr` (birthday probing) */
  unsigned sock;
  struct kw__remote *xr;
} kw__src;

/* Birthday probing's extra UDP sockets (core/remote.h, "Birthday
 * probing"). The table belongs to the magicsock: a remote's extra socket k
 * lives in its `xs[k]`, opened by cbs.bday_send, closed by cbs.bday_close,
 * by the remote's free and by the endpoint's close; nothing else opens or
 * closes one.
 * KW_XSOCK_MAX_PER_EP: every extra socket is a file descriptor; one
 * attempt needs KW_RP_BDAY_SOCKETS (256), so at most one remote's attempt
 * runs at full size at a time, and with the main sockets, relays, DNS and
 * the application's own the endpoint stays far under the usual soft
 * limit of 1024 descriptors. Beyond it bday_send refuses (the attempt
 * runs with the sockets it got). */
#define KW_XSOCK_MAX_PER_EP 256
#define KW_XSOCK_RX_PER_WAKE 16 /* datagrams read per readiness: fairness */
typedef struct kw__xsock {
  kw__udp u; /* its poll watches u.fd */
  struct kw__remote *r;
  unsigned idx; /* 1..KW_RP_BDAY_SOCKETS */
  bool closing; /* uv_close ran: frees itself in the close callback */
} kw__xsock;

/* One remote endpoint: its connections share its paths (docs/ARCHITECTURE.md
 * section 4). Its path policy is core's kw__rp (core/remote.h, sans-IO):
 * this layer feeds it events and carries out its actions. Owned by
 * magicsock.c: other files read its fields and change them only through
 * the kw__remote_* functions below. */
typedef struct kw__remote kw__remote;
struct kw__remote {
  kw__remote *next; /* endpoint's list */
  kw_endpoint *ep;
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
   * until the first is opened); the magicsock's */
  kw__xsock **xs;
  unsigned nxs;
};

/* The remote state of endpoint `id` (NULL: not known yet, for a direct
 * incoming connection before its handshake): the existing one if there is
 * one (its connections share it), else a new one. */
kw__remote *kw__remote_new(kw_endpoint *ep, const uint8_t *id);
/* After its last connection went: a remote with a known id is kept
 * KW_RP_IDLE_NS (its paths are a head start for the next connection),
 * then freed with all of its memory (at its deadline, kw__remotes_timeout);
 * others are freed now. */
void kw__remote_unref(kw__remote *r);
/* A connection of `r` was created (returns its RTT slot, -1 for none) /
 * is freed (then the remote may be unreferenced: kw__remote_unref). */
int kw__remote_conn_attach(kw__remote *r);
void kw__remote_conn_detach(kw__remote *r, int rtt_slot);
/* The handshake told us the remote's id (an inbound remote learns it). */
void kw__remote_set_id(kw__remote *r, const uint8_t id[KW_ID_LEN]);
/* The relay that reaches it; kw__remotes_set_home: the new home relay for
 * every remote without one. */
void kw__remote_set_relay(kw__remote *r, int relay);
void kw__remotes_set_home(kw_endpoint *ep, int relay);
/* A connection's RTT on the remote's selected path (from kw__conn_recv). */
void kw__remote_conn_rtt(kw_conn *c, uint64_t now);
/* Frees every remote (kw_endpoint_free), wiping their disco keys. */
void kw__remotes_free(kw_endpoint *ep);
/* The earliest deadline of every remote (KW_RP_NEVER: none), and running
 * those that are due (may free idle remotes: no caller may hold one). */
uint64_t kw__remotes_next_deadline(kw_endpoint *ep);
void kw__remotes_timeout(kw_endpoint *ep, uint64_t now);
/* Adds a direct candidate of the remote learned from `source` (KW_PSRC_*);
 * true if it is new. kw__remote_add_path: from the application/ticket. */
bool kw__remote_add_path_src(kw__remote *r, const kw_sockaddr *a,
                             uint8_t source);
void kw__remote_add_path(kw__remote *r, const kw_sockaddr *a);
/* The selected direct address, or NULL (relay, or nothing selected). */
const kw_sockaddr *kw__remote_direct(const kw__remote *r);
/* True if the relay is the selected path. */
bool kw__remote_on_relay(const kw__remote *r);
/* A packet from `from` authenticated at `now` for a connection of `r`: the
 * path it came by is validated. Returns true if the selection changed
 * (already reported: kw__remote_path_changed has run). */
bool kw__remote_confirm_path(kw__remote *r, const kw__src *from, uint64_t now);
/* The remote's selected path changed: every connection of it is flushed
 * (on the new path) and reports the change. */
void kw__remote_path_changed(kw__remote *r);
/* Events for the remote's policy (core/remote), from disco and the
 * endpoint's change fan-out: the magicsock owns `r->rp`, the others call
 * these (each is the kw__rp_* call of the same name at `now`). */
bool kw__remote_probe_allow(kw__remote *r, size_t bytes, uint64_t now);
void kw__remote_conn_up(kw__remote *r, uint64_t now);
void kw__remote_conn_down(kw__remote *r, uint64_t now);
/* ... and for every remote of the endpoint at once. */
void kw__remotes_local_candidates(kw_endpoint *ep, uint64_t now);
void kw__remotes_local_nat(kw_endpoint *ep, kw__rp_nat nat, uint64_t now);
void kw__remotes_network_change(kw_endpoint *ep, uint64_t now);
/* The remote of endpoint `id` (one with connections first), or NULL. */
kw__remote *kw__remote_find(kw_endpoint *ep, const uint8_t id[KW_ID_LEN]);
void kw__remote_ping_received(kw__remote *r, const kw__src *from, uint64_t now);
bool kw__remote_pong_received(kw__remote *r,
                              const uint8_t tx_id[KW_DISCO_TXID_LEN],
                              const kw__src *from, uint64_t now,
                              uint64_t *rtt_ns);
void kw__remote_call_me_maybe(kw__remote *r, const kw_sockaddr *addrs, size_t n,
                              uint64_t now);
void kw__remote_remote_nat(kw__remote *r, kw__rp_nat nat,
                           const kw_sockaddr *refl, uint64_t now);

/* ---- streams and connections (quic.c): endpoint/quic.h ---------------- */

#include "endpoint/quic.h"

/* ---- TLS (tls.c): endpoint/tls.h ----------------------------------------- */

#include "endpoint/tls.h"

/* ---- disco and hole punching (disco_io.c) ------------------------------ */

#include "endpoint/disco_io.h"

/* ---- bans on UDP sources (magicsock.c) ---------------------------------- */

/* A UDP source sent something undecodable / authenticated (the bounded
 * punishment table of core/addr_filter). */
void kw__magicsock_strike(kw_endpoint *ep, const kw__src *from);
void kw__magicsock_good(kw_endpoint *ep, const kw__src *from);
/* `a` proved itself (a handshake completed from it): trusted as
 * kw__magicsock_good, `why` logged if that lifted a ban. */
void kw__magicsock_trust_addr(kw_endpoint *ep, const kw_sockaddr *a,
                              const char *why);

/* ---- STUN probes (stun_probe.c) ----------------------------------------- */

#include "endpoint/stun_probe.h"

/* ---- the endpoint (endpoint.c) ----------------------------------------- */

typedef struct kw__post kw__post;
struct kw__post {
  kw__post *next;
  void (*fn)(kw_endpoint *ep, void *arg);
  void *arg;
};

struct kw_endpoint {
  kw_config cfg;
  uint8_t id[KW_ID_LEN];
  char id_short[KW_ID_SHORTLEN + 1];
  uv_loop_t loop;
  bool loop_init;
  uv_async_t async;
  uv_prepare_t prepare;
  uv_thread_t thread;
  bool thread_started;
  uv_thread_t loop_thread_id; /* set while running */
  bool running;
  uv_mutex_t mu; /* guards posts, closing_requested */
  kw__post *post_head, *post_tail;
  bool close_requested; /* under mu */
  bool closing;         /* loop thread */
  bool closed;          /* all handles closed */
  kw__udp udp4, udp6;
  struct kw__tls_ctx *tls;
  struct kw__quic *quic; /* quic.c: connections, connection ids, Retry */
  /* the receive fast path: the clock read once per recvmmsg batch (0 when
   * no batch is being handled, see kw__now) */
  uint64_t rx_batch_now;
  kw_conn *blocked[64];
  size_t nblocked;
  kw__remote *remotes;
  uint64_t next_mapped;
  kw_endpoint_stats stats;
  /* the modules' state (kw__ep_relays...): created by their kw__X_new,
   * freed by their kw__X_free */
  struct kw__relay_map *relays;    /* relay_client.c */
  struct kw__publisher *publisher; /* lookup_client.c */
  struct kw__resolve *resolve;     /* resolve.c */
  struct kw__lan *lan;             /* lan.c, NULL when LAN discovery is off */
  char home_url[KW_MAX_RELAY_URL + 1]; /* under mu: read from any thread */
  kw__probe_budget probes; /* all remotes' Pings toward unvalidated addresses */
  struct kw__portmap *portmap;    /* portmap.c, NULL when off */
  struct kw__netmon *netmon;      /* netmon.c */
  struct kw__disco *disco;        /* disco_io.c */
  struct kw__stun *stun;          /* stun_probe.c */
  struct kw__addr_filter *banned; /* sources of undecodable packets */
  /* birthday probing's extra sockets (magicsock.c): how many are open,
   * the one receive buffer they share (KW_RX_BUFSZ, on first read), and
   * counters for the logs */
  unsigned nxsock;
  uint8_t *xsock_rxbuf;
  uint64_t xsock_opened, xsock_refused, xsock_drops;
};

void kw__endpoint_set_home_url(kw_endpoint *ep, const char *url);

/* Sends a finished batch of packets of `c` on its selected path (or every
 * path while racing). KW_ERR_AGAIN: the caller keeps the batch. */
kw_err kw__magicsock_send(kw_conn *c, const uint8_t *data, size_t len,
                          size_t seg, size_t *sent_segs);
void kw__magicsock_watch_writable(kw_endpoint *ep, kw_conn *c);
/* A connection is freed: it no longer waits for a writable socket. */
void kw__magicsock_forget_conn(kw_endpoint *ep, kw_conn *c);
/* Sends one datagram outside any connection (disco, STUN, a QUIC Retry)
 * from our socket of `to`'s family: KW_ERR_NO_PATH when there is none. */
kw_err kw__magicsock_send_raw(kw_endpoint *ep, const kw_sockaddr *to,
                              const uint8_t *p, size_t n);
/* Whether our socket of `family` (4, 6) is open, and its bound address. */
bool kw__magicsock_bound(const kw_endpoint *ep, int family, kw_sockaddr *out);
void kw__magicsock_start(kw_endpoint *ep);
/* Birthday probing's extra sockets (kw__xsock): sends one datagram from
 * the remote's extra socket `sock` (false if it is not open or the send
 * failed; a full socket buffer drops it, counted in ep->xsock_drops) /
 * closes every extra socket of every remote (the endpoint's close). */
bool kw__magicsock_xsend(kw__remote *r, unsigned sock, const kw_sockaddr *to,
                         const uint8_t *p, size_t n);
void kw__magicsock_xclose_all(kw_endpoint *ep);
/* A datagram arrived (UDP or relay): demultiplex it. `from_id` is the
 * sender's id when a relay vouches for it, else NULL. */
void kw__magicsock_input(kw_endpoint *ep, const kw__src *from,
                         const uint8_t *from_id, const uint8_t *data,
                         size_t len);
uint64_t kw__now(kw_endpoint *ep);

#endif /* KW_IO_INTERNAL_H */
