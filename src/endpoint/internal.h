/* SPDX-License-Identifier: MIT */
/*
 * Internal structures of the endpoint: the endpoint and the kw__ functions
 * its files call in each other. The magicsock (UDP sockets and the
 * per-remote path state) has its own header, magicsock.h, included here. QUIC
 * connections and streams are only named here (their module defines them in
 * quic_conn.h). ngtcp2 and GnuTLS appear here only as opaque pointers; the
 * transports (UDP socket, TLS stream, clock, OS addresses) are src/net's.
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

#include "endpoint/magicsock.h"

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
/* The endpoint's magicsock (magicsock.h; set by kw_endpoint_new). */
struct kw__magicsock *kw__ep_msock(const kw_endpoint *ep);

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
/* Every connection of `from` becomes one of `to` (kw__remote_set_id
 * merges an inbound remote into the existing one of its id); QUIC's view
 * of the peer (its mapped address) stays the same. */
void kw__conn_move_remote(kw__remote *from, kw__remote *to);
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

kw_err kw__disco_start(kw_endpoint *ep);
void kw__disco_stop(kw_endpoint *ep);
void kw__disco_free(kw_endpoint *ep);
/* The remote's path policy asks for a Ping (tx id given; `probe`: out of
 * the probe budgets) / a CallMeMaybe through its relay (core/remote.h). */
bool kw__disco_send_ping(kw__remote *r, const kw_sockaddr *to,
                         const uint8_t tx_id[KW_DISCO_TXID_LEN], bool probe);
/* The same from socket `sock` (0 our own, else the remote's extra socket,
 * which must be open: kw__magicsock_xsend). */
bool kw__disco_send_ping_from(kw__remote *r, unsigned sock,
                              const kw_sockaddr *to,
                              const uint8_t tx_id[KW_DISCO_TXID_LEN],
                              bool probe);
bool kw__disco_send_call_me_maybe(kw__remote *r);
/* A disco datagram arrived over UDP or through a relay. */
void kw__disco_input(kw_endpoint *ep, const kw__src *from, const uint8_t *data,
                     size_t len);
/* A connection of remote `r` is up / gone: the hole-punch schedule
 * follows. Up counts it only for a remote whose id is known (returns
 * whether it did); down is called once for each connection up counted. */
bool kw__disco_conn_up(kw_endpoint *ep, kw__remote *r);
void kw__disco_conn_down(kw_endpoint *ep, kw__remote *r);
/* Re-arms the disco timer at the earliest deadline of all remotes, after
 * anything that may have moved one. */
void kw__disco_arm(kw_endpoint *ep);
/* A major network change: every remote re-pings its paths and punches. */
void kw__disco_network_change(kw_endpoint *ep);
/* Our candidate set gained addresses (a port mapping, a new reflexive or
 * interface address): every remote with connections gets a round. */
void kw__disco_local_candidates(kw_endpoint *ep);
/* netcheck found our mapping behaviour (mapping_varies_by_dest: 1, 0, -1
 * unknown): every remote's policy learns it (and the remotes with the
 * next CallMeMaybe's NatHint). */
void kw__disco_local_nat(kw_endpoint *ep, int mapping_varies_by_dest);
/* Our NAT's mapping behaviour as netcheck last saw it (KW_RP_NAT_*, 0
 * unknown). */
uint8_t kw__disco_nat_kind(const kw_endpoint *ep);
/* Our addresses as remotes saw them in Pongs, newest first (at most
 * KW_OBSERVED_MAX): copies up to `cap`, returns how many (any thread). */
size_t kw__disco_observed(kw_endpoint *ep, kw_sockaddr *out, size_t cap);

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

#define KW_STUN_MAX_TX 32 /* outstanding probes; more are refused */

typedef struct kw__stun_tx {
  bool used;
  uint8_t txid[12];
  kw_sockaddr to;
  int relay;
  void (*cb)(kw_endpoint *ep, int relay, const kw_sockaddr *to,
             const kw_sockaddr *mapped, void *arg);
  void *arg;
  uint64_t sent_ns;
} kw__stun_tx;

/* Sends a Binding request to `to` from our socket of its family; cb runs
 * with the mapped address if an answer comes (never otherwise). */
kw_err kw__stun_probe(kw_endpoint *ep, int relay, const kw_sockaddr *to,
                      void (*cb)(kw_endpoint *, int, const kw_sockaddr *,
                                 const kw_sockaddr *, void *),
                      void *arg);
/* Forgets outstanding probes whose cb argument is `arg`. */
void kw__stun_probe_cancel(kw_endpoint *ep, void *arg);
/* A STUN datagram arrived on a UDP socket. */
void kw__stun_input(kw_endpoint *ep, const kw_sockaddr *from,
                    const uint8_t *data, size_t len);
/* Starts (idempotent) / stops refreshing the reflexive address against the
 * home relay's STUN server. */
void kw__stun_start(kw_endpoint *ep);
void kw__stun_stop(kw_endpoint *ep);
/* Asks the home relay's STUN server again now (after a network change). */
void kw__stun_refresh(kw_endpoint *ep);
/* Our server-reflexive addresses (family 0: none known), either pointer
 * may be NULL (any thread). */
void kw__stun_reflexive(kw_endpoint *ep, kw_sockaddr *v4, kw_sockaddr *v6);
/* Our NAT's mapping behaviour from 2..KW_NATCHK_SERVERS relays' STUN
 * servers (IPv4), fed to kw__disco_local_nat; a running check is left to
 * finish. KW_NATCHK_TICKS ticks of KW_NATCHK_EVERY_MS (the relays'
 * servers are collected as their connections come up; each is asked
 * KW_NATCHK_SENDS times at most). Bounds: 4 servers x 3 Bindings per
 * check. */
#define KW_NATCHK_SERVERS 4
#define KW_NATCHK_SENDS 3
#define KW_NATCHK_EVERY_MS 500
#define KW_NATCHK_TICKS 8
typedef struct kw__natchk kw__natchk;
void kw__stun_nat_check(kw_endpoint *ep);
/* The netcheck verdict over mapped addresses (IPv4 ones count): 1 they
 * differ (endpoint-dependent mapping), 0 all the same, -1 fewer than 2. */
int kw__stun_mapping_varies(const kw_sockaddr *mapped, size_t n);

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
  bool close_requested;        /* under mu */
  bool closing;                /* loop thread */
  bool closed;                 /* all handles closed */
  struct kw__magicsock *msock; /* magicsock.c */
  struct kw__tls_ctx *tls;
  kw__cidmap cids;
  /* the receive fast path: the connection of the last short-header
   * packet's CID (cleared whenever a CID leaves cids) */
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
  bool reaping;   /* kw__conn_reap is running */
  uint8_t *txbuf; /* KW_GSO_MAX_SEGS * max packet */
  size_t txbuf_cap;
  kw_endpoint_stats stats; /* the magicsock's counters are its own */
  kw__relay *relays[KW_MAX_RELAYS];
  size_t n_relays;
  int home_relay;
  char home_url[KW_MAX_RELAY_URL + 1]; /* under mu: read from any thread */
  struct kw__lookup *lookups; /* resolve.c: bare-id lookups in flight */
  struct kw_resolve_req *resolve_reqs; /* resolve.c: asked, not answered */
  struct kw__lan *lan;       /* lan.c, NULL when LAN discovery is off */
  uv_timer_t publish_timer;  /* republishes our record */
  unsigned publish_failures; /* in a row: the retry backs off */
  kw__stun_tx stun_tx[KW_STUN_MAX_TX];
  struct kw__disco_replay *disco_replay;
  struct kw__disco_pong_limiter *disco_pongs;
  uv_timer_t disco_timer;
  bool disco_timer_init;
  uv_timer_t stun_timer;
  bool stun_timer_init;
  uint64_t stun_retry_ms; /* wait before resending an unanswered refresh */
  kw_sockaddr reflexive4, reflexive6; /* under mu */
  /* our NAT's mapping behaviour (KW_RP_NAT_*) as the last netcheck saw
   * it; 0 unknown. Loop thread. Sent to remotes as a NatHint. */
  uint8_t nat_kind;
#define KW_OBSERVED_MAX 4
  /* our addresses as remotes saw them (Pongs), newest first; under mu */
  kw_sockaddr observed[KW_OBSERVED_MAX];
  size_t n_observed;
  bool publish_timer_init;
  struct kw__portmap *portmap; /* portmap.c */
  struct kw__netmon *netmon;   /* netmon.c */
  /* the NAT-kind check against 2..KW_NATCHK_SERVERS relays' STUN servers
   * (stun_probe.c) */
  struct kw__natchk *natchk;
};

void kw__endpoint_set_home_url(kw_endpoint *ep, const char *url);
/* The home relay changed: republish our record there. */
void kw__endpoint_home_changed(kw_endpoint *ep);
/* The connection to the home relay came back (after a drop or a relay
 * restart, whose store may have lost our record): republish now. */
void kw__lookup_home_reconnected(kw_endpoint *ep);

#endif /* KW_IO_INTERNAL_H */
