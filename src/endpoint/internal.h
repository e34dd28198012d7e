/* SPDX-License-Identifier: MIT */
/*
 * Internal structures of the endpoint: the endpoint, its magicsock (UDP
 * sockets and the per-remote path state), and the kw__ functions its files
 * call in each other. QUIC connections and streams are only named here
 * (their module defines them in quic_conn.h). ngtcp2 and GnuTLS appear
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
const uint8_t *kw__ep_id(const kw_endpoint *ep);
bool kw__ep_closing(const kw_endpoint *ep);
struct kw__tls_ctx *kw__ep_tls(const kw_endpoint *ep);
void kw__ep_lock(kw_endpoint *ep);
void kw__ep_unlock(kw_endpoint *ep);
/* The state of disco (disco_io.c) and of the STUN probes (stun_probe.c):
 * only their own files know what is in it. */
struct kw__disco *kw__ep_disco(const kw_endpoint *ep);
struct kw__stun *kw__ep_stun(const kw_endpoint *ep);

/* ---- configuration ---------------------------------------------------- */

#define KW_MAX_ALPNS 16
#define KW_MAX_RELAYS 8

struct kw_config {
  uint8_t sk[KW_SECRET_KEY_LEN];
  bool has_key;
  char alpns[KW_MAX_ALPNS][256];
  size_t n_alpns;
  kw_sockaddr bind4, bind6;
  uint32_t idle_timeout_ms;
  uint32_t keepalive_ms;
  uint32_t connect_timeout_ms;
  uint64_t max_streams_bidi, max_streams_uni;
  uint32_t max_conns;
  uint32_t retry_threshold; /* kw_config_set_retry_threshold */
  size_t stream_send_buffer;
  size_t conn_send_budget, endpoint_send_budget;
  kw_cc cc;
  kw_log_fn log_fn;
  void *log_user;
  kw_log_level log_level;
  kw_callbacks cbs;
  void *cb_user;
  char relays[KW_MAX_RELAYS][KW_MAX_RELAY_URL + 1];
  size_t n_relays;
  char relay_ca[1024];
  kw_dht_publish dht_publish;   /* kw_config_set_dht_publish */
  bool port_mapping;            /* UPnP IGD / NAT-PMP on the default gateway */
  bool no_birthday;             /* kw_config_set_birthday_probing(cfg, false) */
  bool no4, no6;                /* kw_config_set_families */
  int path_policy;              /* kw_path_policy */
  struct kw__cand_filter *cand; /* allow/deny lists, NULL: none */
  struct {
    kw_resolver_fn fn;
    void *user;
  } resolvers[KW_MAX_RESOLVERS]; /* kw_config_add_resolver */
  size_t n_resolvers;
  bool lan; /* kw_config_set_lan_discovery */
};

/* ---- remotes: per remote endpoint path state (magicsock.c) ------------ */

/* Where a packet came from: a UDP address, or a relay (addr.family 0). */
typedef struct kw__src {
  kw_sockaddr addr;
  int relay; /* index into ep->relays, -1 for UDP */
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

/* ---- streams and connections (quic.c) ---------------------------------- */

/* Incoming handshakes (docs/PROTOCOL.md, "Handshakes in progress"): past
 * KW_RETRY_THRESHOLD of them, an Initial without a valid Retry token is
 * answered with a Retry; at most KW_HALFOPEN_MAX exist at once (further
 * Initials are dropped; kw_config_set_retry_threshold sets the first
 * bound); once half of them are taken, a source address (or
 * relayed id) that holds KW_HALFOPEN_PER_SRC gets no more; each must
 * complete within
 * KW_HALFOPEN_TIMEOUT_MS. Established connections are counted apart,
 * against kw_config_set_max_conns. */
#define KW_RETRY_THRESHOLD 16
#define KW_HALFOPEN_MAX 128
#define KW_HALFOPEN_PER_SRC 8
#define KW_HALFOPEN_TIMEOUT_MS 5000
#define KW_RETRY_TOKEN_TIMEOUT_MS 5000

/* Dead peer: an established connection with ack-eliciting data in flight
 * that hears nothing from the remote for KW_DEAD_PEER_MS (or 6 PTOs, if
 * longer; and at least half that since the data went in flight) closes
 * with KW_ERR_UNREACHABLE. A receiver has something in flight once its
 * keep-alive PING is out. Longer than a path switch: a
 * direct path is declared dead after 5 s of silence and the relay takes
 * over (core/remote.h), which answers again well within the rest. */
#define KW_DEAD_PEER_MS 10000
#define KW_DEAD_PEER_PTOS 6

/* Connections, streams, their chunks and queued datagrams are the QUIC
 * module's own (quic*.c): defined in quic_conn.h, which no other file
 * includes (tests/layers checks it). The rest of the endpoint reaches a
 * connection through the kw__conn_* functions below. */
typedef struct kw__chunk kw__chunk;
typedef struct kw__dgram kw__dgram;

/* What the magicsock, disco and TLS need of a connection (quic.c). */
kw_endpoint *kw__conn_ep(const kw_conn *c);
kw__remote *kw__conn_remote(const kw_conn *c);
/* The handshake completed and no close is decided yet. */
bool kw__conn_established(const kw_conn *c);
/* The remote's paths-table RTT slot of the connection, -1 for none. */
int kw__conn_rtt_slot(const kw_conn *c);
/* Every connection of `r` is flushed on this loop turn (its selected path
 * changed: the flush sends on the new one and reports it). */
void kw__conn_mark_dirty_remote(kw__remote *r);
/* Forgets the batch that hit EAGAIN (loss recovery resends it). */
void kw__conn_drop_pending(kw_conn *c);
/* Flushes every connection marked dirty this loop turn (a few rounds:
 * a flush may dirty another); kw__conn_reap frees those that closed. */
void kw__conn_flush_dirty(kw_endpoint *ep);
/* The connection's TLS session, and what its certificate check found
 * (tls.c, during the handshake): `err` KW_OK with the peer's key, or the
 * failure (KW_ERR_CERT without a key, KW_ERR_KEY_MISMATCH with the key
 * presented) the connection closes with. */
struct kw__tls_sess *kw__conn_tls(const kw_conn *c);
void kw__conn_peer_key(kw_conn *c, kw_err err, const uint8_t *id);

kw_err kw__conn_client_new(kw_endpoint *ep, kw__remote *r, const char *alpn,
                           kw_connect_cb cb, void *arg, kw_conn **out);
/* Handles a datagram whose connection id is unknown: maybe a new incoming
 * connection. */
/* A QUIC packet's destination connection id (pointing into data): false
 * when the bytes are not a QUIC packet of a version keyway speaks (quic.c,
 * so that only the QUIC module knows ngtcp2). */
bool kw__quic_dcid(const uint8_t *data, size_t len, const uint8_t **dcid,
                   size_t *dcidlen);
/* The connection a packet with this destination connection id belongs
 * to, or NULL. */
kw_conn *kw__quic_conn_by_dcid(kw_endpoint *ep, const uint8_t *dcid,
                               size_t dcidlen);
void kw__conn_accept(kw_endpoint *ep, const kw__src *from,
                     const uint8_t *from_id, const uint8_t *data, size_t len);
void kw__conn_recv(kw_conn *c, const kw__src *from, const uint8_t *data,
                   size_t len);
void kw__conn_mark_dirty(kw_conn *c);
/* Writes everything QUIC wants to send now and re-arms the timer. */
void kw__conn_flush(kw_conn *c);
/* Blocked socket became writable. */
void kw__conn_retry_pending(kw_conn *c);
/* Closes every connection now (endpoint shutdown): sends CONNECTION_CLOSE. */
void kw__conn_shutdown_all(kw_endpoint *ep);
/* Frees connections marked closing. */
void kw__conn_reap(kw_endpoint *ep);

/* ---- TLS (tls.c) ------------------------------------------------------- */

kw_err kw__tls_ctx_new(const uint8_t sk[KW_SECRET_KEY_LEN],
                       struct kw__tls_ctx **out);
void kw__tls_ctx_free(struct kw__tls_ctx *t);
/* Creates a session for a connection (`conn_ref`: its
 * ngtcp2_crypto_conn_ref, whose user_data is the kw_conn); a client pins
 * `expect_id`, offers `alpn`. The certificate check reports to the
 * connection through kw__conn_peer_key. */
kw_err kw__tls_sess_new(struct kw__tls_ctx *t, void *conn_ref, bool client,
                        const uint8_t *expect_id, const char *alpn,
                        const char alpns[][256], size_t n_alpns,
                        struct kw__tls_sess **out);
void kw__tls_sess_free(struct kw__tls_sess *s);
void *kw__tls_sess_native(struct kw__tls_sess *s);
/* After the handshake: copies the negotiated ALPN. */
void kw__tls_sess_alpn(struct kw__tls_sess *s, char *out, size_t outlen);
/* The negotiated cipher's name, for logs. */
const char *kw__tls_sess_cipher(struct kw__tls_sess *s);

/* ---- relay client (relay_client.c) ------------------------------------- */

typedef struct kw__relay kw__relay;

/* Sends a batch of QUIC packets (segments of `seg` bytes) to `dst_id`
 * through relay `relay`, one frame each. Opens the relay connection on
 * demand. KW_ERR_AGAIN when its queue is full (the rest is dropped: QUIC
 * resends). */
kw_err kw__relay_send_batch(kw_endpoint *ep, int relay, const uint8_t *dst_id,
                            const uint8_t *data, size_t len, size_t seg,
                            size_t *sent_segs);
/* Index of the relay with this URL (added to the map when `add`), or -1. */
int kw__relay_index(kw_endpoint *ep, const char *url, bool add);
/* The home relay's index, -1 while none. */
int kw__relay_home(kw_endpoint *ep);
kw_err kw__relays_start(kw_endpoint *ep);
void kw__relays_stop(kw_endpoint *ep);
void kw__relays_free(kw_endpoint *ep);
const char *kw__relay_url_of(kw_endpoint *ep, int relay);
/* How many relays the map holds. */
size_t kw__relay_count(const kw_endpoint *ep);
/* The relay's STUN server: the IP its TLS connection reached, STUN port. */
bool kw__relay_stun_target(kw_endpoint *ep, int relay, kw_sockaddr *out);
double kw__relay_latency(kw_endpoint *ep, int relay);
bool kw__relay_ready(kw_endpoint *ep, int relay);
/* Where to open an HTTPS connection to relay `relay`: its resolved address
 * and the host name its certificate must match. False before resolution. */
bool kw__relay_tls_target(kw_endpoint *ep, int relay, kw_sockaddr *to,
                          const char **host);
void kw__lookup_stop(kw_endpoint *ep);
/* Asks relay `relay`'s lookup store for `id` (waiting for the relay's
 * address until `deadline_ns`); cb runs once, on the loop, with a verified
 * record's address or an error. */
kw_err kw__relay_lookup(kw_endpoint *ep, int relay, const uint8_t id[KW_ID_LEN],
                        uint64_t deadline_ns,
                        void (*cb)(kw_endpoint *ep, kw_err err,
                                   const kw_endpoint_addr *addr, void *arg),
                        void *arg);

/* ---- lookup sources (resolve.c) ------------------------------------------ */

typedef void (*kw__resolve_cb)(kw_endpoint *ep, kw_err err,
                               const kw_endpoint_addr *addr, void *arg);
/* Resolves a bare id: asks every relay of the map, the LAN (when on) and
 * the application's resolvers at once; cb runs once on the loop with the
 * first valid answer, or an error once every source failed or the connect
 * timeout passed. KW_ERR_NO_PATH (cb not called) when there is no source. */
kw_err kw__resolve(kw_endpoint *ep, const uint8_t id[KW_ID_LEN],
                   kw__resolve_cb cb, void *arg);
/* Endpoint closing: every lookup still running ends with KW_ERR_CLOSED. */
void kw__resolve_stop(kw_endpoint *ep);
/* kw_endpoint_free: frees what applications' resolvers never answered. */
void kw__resolve_free(kw_endpoint *ep);

/* ---- LAN discovery (lan.c) -------------------------------------------------
 */

struct kw__lan;
/* Opens the mDNS sockets and starts announcing; does nothing unless
 * cfg.lan. Sets ep->lan. */
kw_err kw__lan_start(kw_endpoint *ep);
/* Whether LAN discovery runs. */
bool kw__lan_on(const kw_endpoint *ep);
/* Says goodbye (TTL 0) and closes the sockets; pending lookups end with
 * KW_ERR_CLOSED. kw__lan_free after the loop's handles are closed. */
void kw__lan_stop(kw_endpoint *ep);
void kw__lan_free(kw_endpoint *ep);
/* Our addresses or interfaces changed: rejoin the groups, announce again. */
void kw__lan_network_changed(kw_endpoint *ep);
/* Our record changed (new home relay): announce again. */
void kw__lan_record_changed(kw_endpoint *ep);
/* Resolves `id` on the link until `deadline_ns`; cb runs exactly once.
 * KW_ERR_FULL when too many lookups are out (cb not called). */
kw_err kw__lan_lookup(kw_endpoint *ep, const uint8_t id[KW_ID_LEN],
                      uint64_t deadline_ns, kw__resolve_cb cb, void *arg);

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

/* ---- port mapping (portmap.c) ------------------------------------------- */

struct kw__portmap;
/* Starts asking the default gateway for a mapping of our UDP port (UPnP
 * IGD, then NAT-PMP), renewing it before its lease ends; does nothing
 * unless cfg.port_mapping. A new or changed external address calls
 * kw__disco_local_candidates. */
kw_err kw__portmap_start(kw_endpoint *ep);
/* Releases the mappings (best effort) and stops; kw__portmap_free after
 * the loop's handles are closed. */
void kw__portmap_stop(kw_endpoint *ep);
void kw__portmap_free(kw_endpoint *ep);
/* The external address of the current mapping, if there is one. */
bool kw__portmap_external(kw_endpoint *ep, kw_sockaddr *out);
/* Whether port mapping runs. */
bool kw__portmap_on(const kw_endpoint *ep);
/* The network changed (new gateway or addresses): map again. */
void kw__portmap_network_changed(kw_endpoint *ep);

/* ---- network change monitor (netmon.c) ------------------------------------
 */

struct kw__netmon;
/* Watches the kernel's address and route changes (netlink on Linux); a
 * change re-gathers candidates, re-pings paths and punches again. */
kw_err kw__netmon_start(kw_endpoint *ep);
void kw__netmon_stop(kw_endpoint *ep);

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
  kw__cidmap cids;
  /* the receive fast path: the clock read once per recvmmsg batch (0 when
   * no batch is being handled, see kw__now) and the connection of the last
   * short-header packet's CID (cleared whenever a CID leaves cids) */
  uint64_t rx_batch_now;
  kw_conn *rx_last_conn;
  uint8_t rx_last_cid[20];
  size_t rx_last_cidlen;
  kw_conn *conns;
  unsigned nconns;
  unsigned nhalfopen;  /* incoming handshakes not yet completed */
  size_t buffered;     /* sum of every connection's `buffered` */
  bool budget_blocked; /* a write was cut short by endpoint_send_budget */
  uint64_t dg_seq;     /* quic_stream.c: the next queued datagram's number */
  uint8_t retry_secret[32]; /* Retry token key, random per endpoint */
  kw_conn *dirty_head;
  bool reaping; /* kw__conn_reap is running */
  kw_conn *blocked[64];
  size_t nblocked;
  kw__remote *remotes;
  uint64_t next_mapped;
  uint8_t *txbuf; /* KW_GSO_MAX_SEGS * max packet */
  size_t txbuf_cap;
  kw_endpoint_stats stats;
  kw__relay *relays[KW_MAX_RELAYS];
  size_t n_relays;
  int home_relay;
  char home_url[KW_MAX_RELAY_URL + 1]; /* under mu: read from any thread */
  struct kw__lookup *lookups; /* resolve.c: bare-id lookups in flight */
  struct kw_resolve_req *resolve_reqs; /* resolve.c: asked, not answered */
  struct kw__lan *lan;       /* lan.c, NULL when LAN discovery is off */
  uv_timer_t publish_timer;  /* republishes our record */
  unsigned publish_failures; /* in a row: the retry backs off */
  kw__probe_budget probes; /* all remotes' Pings toward unvalidated addresses */
  bool publish_timer_init;
  struct kw__portmap *portmap;    /* portmap.c */
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
/* The home relay changed: republish our record there. */
void kw__endpoint_home_changed(kw_endpoint *ep);
/* The connection to the home relay came back (after a drop or a relay
 * restart, whose store may have lost our record): republish now. */
void kw__lookup_home_reconnected(kw_endpoint *ep);

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
