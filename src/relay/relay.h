/* SPDX-License-Identifier: MIT */
/*
 * keyway-relay internals: the state shared by its modules.
 *
 *   main.c         flags, signals, start and stop
 *   log.c          human or JSON log lines on stderr
 *   server.c       TLS listener, HTTP routing, relay clients: auth, frames,
 *                  forwarding, keep-alive, rate limits
 *   stun_server.c  STUN Binding over UDP
 *   lookup_http.c  PUT/GET /lookup/<id> on the signed record store
 *   metrics.c      counters and the Prometheus text endpoint
 *   dht.c          the Mainline DHT node (--dht-listen): PUT /pkarr/<id>,
 *                  lookups that miss the store
 */
#ifndef KW_RELAY_RELAY_H
#define KW_RELAY_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/cidmap.h"
#include "keyway.h"

/* Defaults (stated in --help). */
#define KW_RS_DEFAULT_LISTEN "0.0.0.0:443"
#define KW_RS_DEFAULT_STUN "0.0.0.0:3478"
#define KW_RS_DEFAULT_MAX_CLIENTS 10000u /* authenticated clients */
#define KW_RS_DEFAULT_MAX_PENDING 1000u  /* connections not authenticated */
/* bytes/s per client: 100 MiB/s. Measured (bench/relay_flood.sh, loopback):
 * a relayed pair keeps 88-103 MB/s while another client floods at this
 * rate, 37-57 MB/s with no limit; a lone pair is capped near 100 MB/s
 * (135-150 MB/s without a limit). */
#define KW_RS_DEFAULT_RATE (100ull << 20)
#define KW_RS_BURST_SECONDS 0.25        /* bucket depth, at least 256 KiB */
#define KW_RS_MIN_BURST (256ull << 10)
#define KW_RS_SEND_QUEUE (2u << 20) /* bytes queued toward one client */
/* From accept: TLS handshake, upgrade request and CLIENT_AUTH must all be
 * done within this absolute deadline (bytes arriving do not extend it). */
#define KW_RS_AUTH_MS 10000
/* A plain HTTP request must be complete this long after the connection
 * was accepted or the previous answer was sent (absolute, too). */
#define KW_RS_HTTP_MS 10000
/* However many requests it completes, a connection that has not
 * authenticated is closed this long after accept (it may reconnect). */
#define KW_RS_PENDING_MAX_MS 30000
/* Fairness in a destination's queue: once it holds more than half of
 * KW_RS_SEND_QUEUE, a packet is dropped (fair_share) unless its sender
 * offered less than an equal share of the recent bytes toward that
 * destination (exponential decay, half-life KW_RS_FAIR_HALFLIFE_MS; a lone
 * sender has an equal share, so it gets the lower half only). */
#define KW_RS_FAIR_SLOTS 8
#define KW_RS_FAIR_HALFLIFE_MS 100
/* PEER_GONE(not here) answers per client: at most this many per second
 * (and one per id per second); further unknown destinations are dropped
 * and counted only. */
#define KW_RS_GONE_PER_S 10
/* Lookup PUTs: per connection a bucket of KW_RS_PUT_CONN_BURST refilled
 * at KW_RS_PUT_CONN_RATE per second; per source address (IPv4 /32, IPv6
 * /64; a fixed table of KW_RS_PUT_ADDR_SLOTS hashed slots) --lookup-rate
 * per second with a burst of 5 s worth. Beyond: 429. */
#define KW_RS_PUT_CONN_RATE 1.0
#define KW_RS_PUT_CONN_BURST 10.0
#define KW_RS_DEFAULT_PUT_RATE 20u
#define KW_RS_PUT_ADDR_BURST_S 5.0
#define KW_RS_PUT_ADDR_SLOTS 4096
#define KW_RS_KEEPALIVE_MS 15000
#define KW_RS_SILENT_MS 45000
#define KW_RS_STOP_MS 800 /* graceful stop budget */
#define KW_RS_HTTP_MAX 8192
#define KW_RS_LOOKUP_MAX_RECORDS 100000u
/* DHT (dht.c, docs/protocol/dht.md). BEP 44 items live about 2 hours on
 * Mainline nodes: a connected client's item is put again every 30 min
 * (checked every minute), so it outlives a few lost puts. */
#define KW_RS_DHT_MAX_BOOT 8
#define KW_RS_DHT_REPUBLISH_MS (30ull * 60 * 1000)
#define KW_RS_DHT_REPUBLISH_CHECK_MS 60000
#define KW_RS_DHT_REBOOT_MS 10000 /* bootstrap again while no node known */
#define KW_RS_DHT_MAX_PUBLISHED 4096u
#define KW_RS_DHT_CACHE 1024u
#define KW_RS_DHT_MAX_RESOLVES 16 /* = KW_DHT_OPS_MAX of core/dht.h */

typedef enum kw__rs_level {
  KW_RS_ERROR,
  KW_RS_WARN,
  KW_RS_INFO,
  KW_RS_DEBUG,
} kw__rs_level;

typedef struct kw__rs_cfg {
  kw_sockaddr listen;
  kw_sockaddr stun_listen;    /* family 0: STUN off */
  kw_sockaddr metrics_listen; /* family 0: no metrics endpoint */
  const char *tls_cert, *tls_key, *cert_out, *allow_file;
  bool json;
  int verbosity; /* 0 = info, 1 = debug, -1 = warnings only */
  unsigned max_clients; /* authenticated clients */
  unsigned max_pending; /* connections before authentication */
  uint64_t rate;        /* bytes/s per client; 0 = unlimited */
  size_t max_records;
  unsigned lookup_rate; /* PUTs/s per source address; 0 = unlimited */
  bool allow_v1_auth;   /* accept protocol version 1 authentication */
  kw_sockaddr dht_listen; /* family 0: not on the DHT */
  kw_sockaddr dht_boot[KW_RS_DHT_MAX_BOOT];
  size_t n_dht_boot;
  unsigned dht_cache_s; /* 0: a DHT record is cached for its own TTL */
} kw__rs_cfg;

/* Drop and failure reasons: one counter each, named in the metrics. */
typedef enum kw__rs_drop {
  KW_RS_DROP_QUEUE_FULL,   /* destination's send queue full */
  KW_RS_DROP_UNKNOWN_DEST, /* no client with that id */
  KW_RS_DROP_SELF,         /* sent to its own id */
  KW_RS_DROP_FAIR_SHARE,   /* congested destination, sender above its share */
  KW_RS_DROP_N
} kw__rs_drop;

typedef enum kw__rs_authfail {
  KW_RS_AUTH_NO_AUTH,       /* a frame other than auth before auth */
  KW_RS_AUTH_BAD_SIGNATURE, /* signature does not verify */
  KW_RS_AUTH_NOT_ALLOWED,   /* id not in the allowlist */
  KW_RS_AUTH_TIMEOUT,       /* no auth within the deadline */
  KW_RS_AUTH_MALFORMED,     /* undecodable auth frame */
  KW_RS_AUTH_V1_REFUSED,    /* version 1 upgrade without --allow-v1-auth */
  KW_RS_AUTH_N
} kw__rs_authfail;

typedef enum kw__rs_proto {
  KW_RS_PROTO_BAD_HTTP,    /* garbage before the upgrade */
  KW_RS_PROTO_BAD_FRAME,   /* garbage after the upgrade */
  KW_RS_PROTO_OVERSIZE,    /* a frame above the maximum */
  KW_RS_PROTO_TLS,         /* TLS handshake failure */
  KW_RS_PROTO_SILENT,      /* no bytes for 45 s */
  KW_RS_PROTO_MAX_CLIENTS, /* refused: authenticated client limit */
  KW_RS_PROTO_MAX_PENDING, /* refused: unauthenticated connection limit */
  KW_RS_PROTO_DEADLINE,    /* upgrade or HTTP request not done in time */
  KW_RS_PROTO_N
} kw__rs_proto;

typedef enum kw__rs_lookup_res {
  KW_RS_LK_OK,
  KW_RS_LK_NOT_FOUND,
  KW_RS_LK_STALE,
  KW_RS_LK_BAD_SIGNATURE,
  KW_RS_LK_BAD_REQUEST,
  KW_RS_LK_FULL,
  KW_RS_LK_RATE_LIMITED,
  KW_RS_LK_N
} kw__rs_lookup_res;

typedef enum kw__rs_dht_res {
  KW_RS_DHT_FOUND,     /* a lookup miss answered from the DHT */
  KW_RS_DHT_CACHED,    /* ... from the DHT cache */
  KW_RS_DHT_NOT_FOUND, /* no item on the DHT */
  KW_RS_DHT_BAD,       /* an item that did not verify as a keyway record */
  KW_RS_DHT_STALE,     /* an item whose record expired or is from the future */
  KW_RS_DHT_BUSY,      /* too many lookups at once: 404 */
  KW_RS_DHT_N
} kw__rs_dht_res;

typedef struct kw__rs_metrics {
  uint64_t conns_accepted;
  uint64_t conns_open; /* TCP connections now */
  uint64_t pending;    /* of which not authenticated (HTTP, upgrading) */
  uint64_t clients;    /* authenticated now */
  uint64_t auth_ok;
  uint64_t frames_in, bytes_in;   /* frames read from clients */
  uint64_t frames_fwd, bytes_fwd; /* packets delivered to a destination */
  uint64_t drops[KW_RS_DROP_N];
  uint64_t auth_fail[KW_RS_AUTH_N];
  uint64_t proto_err[KW_RS_PROTO_N];
  uint64_t peer_gone_sent;
  uint64_t peer_gone_suppressed; /* not sent: over KW_RS_GONE_PER_S */
  uint64_t keepalives_sent;
  uint64_t rate_limited; /* times a client was throttled */
  uint64_t replaced;     /* a newer connection of the same id took over */
  uint64_t http_pings;
  uint64_t http_other[2]; /* [0] 404s, [1] 400s on plain HTTP */
  uint64_t stun_requests, stun_errors, stun_dropped;
  uint64_t lookup_put[KW_RS_LK_N];
  uint64_t lookup_get[KW_RS_LK_N];
  uint64_t lookup_records;
  uint64_t metrics_scrapes;
  uint64_t dht_publish[KW_RS_LK_N]; /* PUT /pkarr by result */
  uint64_t dht_get[KW_RS_DHT_N];
  uint64_t dht_puts; /* items put into the DHT (first and again) */
  uint64_t dht_sent, dht_received, dht_send_dropped;
  uint64_t dht_nodes, dht_items;
} kw__rs_metrics;

typedef struct kw__rs_conn kw__rs_conn;
typedef struct kw__rs_metrics_srv kw__rs_metrics_srv;
typedef struct kw__rs_stun kw__rs_stun;
typedef struct kw__rs_lookup kw__rs_lookup;
typedef struct kw__rs_dht kw__rs_dht;

typedef struct kw__rs {
  uv_loop_t *loop;
  kw__rs_cfg cfg;
  void *cred; /* gnutls_certificate_credentials_t */
  kw__rs_metrics m;
  uint8_t (*allow)[KW_ID_LEN]; /* sorted; NULL: everyone may connect */
  size_t n_allow;
  bool stopping;
  /* server.c */
  uv_tcp_t listener;
  bool listener_open;
  kw__rs_conn *conns; /* every TCP connection */
  kw__cidmap by_id;   /* authenticated clients by id (first 20 bytes) */
  uv_timer_t tick;    /* keep-alive and silence checks */
  bool tick_open;
  uint64_t started_ns;
  struct kw__rs_bucket *put_addr; /* KW_RS_PUT_ADDR_SLOTS */
  uint8_t put_key[16];            /* keyed hash of source addresses */
  /* other modules */
  kw__rs_stun *stun;
  kw__rs_metrics_srv *metrics;
  kw__rs_lookup *lookup;
  kw__rs_dht *dht; /* NULL without --dht-listen */
} kw__rs;

/* log.c: `fields` is "key=value key=value" (values without spaces, or
 * quoted with "..."); JSON mode emits one object per line. */
void kw__rs_log(kw__rs *rs, kw__rs_level lvl, const char *event,
                const char *fields_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* server.c */
kw_err kw__rs_server_start(kw__rs *rs);
/* Stops accepting and sends every client a close frame; connections end
 * within KW_RS_STOP_MS. */
void kw__rs_server_stop(kw__rs *rs);
/* Closes authenticated clients the allowlist no longer admits; returns
 * how many. */
size_t kw__rs_server_recheck_allow(kw__rs *rs);
/* Aborts every connection still open (end of the stop budget). */
void kw__rs_server_kill(kw__rs *rs);
void kw__rs_server_free(kw__rs *rs);
/* True when the id may connect (allowlist). */
bool kw__rs_allowed(const kw__rs *rs, const uint8_t id[KW_ID_LEN]);

/* stun_server.c */
kw_err kw__rs_stun_start(kw__rs *rs);
void kw__rs_stun_stop(kw__rs *rs);

/* metrics.c */
kw_err kw__rs_metrics_start(kw__rs *rs);
void kw__rs_metrics_stop(kw__rs *rs);
/* Renders the Prometheus text exposition; returns a malloc'ed string. */
char *kw__rs_metrics_render(const kw__rs *rs, size_t *len);

/* lookup_http.c: the record store behind /lookup/<id>. */
kw_err kw__rs_lookup_init(kw__rs *rs);
/* Stops the expiry sweep and frees the store (on the loop). */
void kw__rs_lookup_stop(kw__rs *rs);
void kw__rs_lookup_free(kw__rs *rs);
/* Marks whether `id` is connected as an authenticated client: its record
 * is then never evicted for another's. */
void kw__rs_lookup_connected(kw__rs *rs, const uint8_t id[KW_ID_LEN],
                             bool connected);
/* Handles one request; fills *status and a malloc'ed body (may be NULL).
 * `connected` tells whether a PUT's id is connected (see above). */
/* A GET that misses the store asks the DHT (if on it): then *status is
 * 0 and kw__rs_server_deferred answers `conn` later. */
void kw__rs_lookup_handle(kw__rs *rs, bool put, bool connected,
                          const uint8_t id[KW_ID_LEN], const uint8_t *body,
                          size_t body_len, void *conn, int *status,
                          uint8_t **resp, size_t *resp_len,
                          const char **content_type);

/* server.c: the answer to a GET /lookup/ that waited for the DHT
 * (`conn` as given to kw__rs_lookup_handle). */
void kw__rs_server_deferred(kw__rs *rs, void *conn, int status,
                            const uint8_t *body, size_t len);

/* dht.c */
kw_err kw__rs_dht_start(kw__rs *rs); /* nothing without --dht-listen */
void kw__rs_dht_stop(kw__rs *rs);
/* PUT /pkarr/<id> of a connected client: returns the HTTP status, *why a
 * short reason for errors. */
int kw__rs_dht_publish(kw__rs *rs, const uint8_t id[KW_ID_LEN],
                       const uint8_t *body, size_t len, const char **why);
/* A lookup that missed the store: 200 (out filled from the cache), 0 (a
 * DHT get runs; kw__rs_server_deferred answers `waiter` later) or 404. */
int kw__rs_dht_lookup(kw__rs *rs, const uint8_t id[KW_ID_LEN], void *waiter,
                      uint8_t *out, size_t cap, size_t *len);
/* `waiter` is gone: its lookups end unanswered. */
void kw__rs_dht_cancel(kw__rs *rs, void *waiter);
/* The client of `id` left: its item is no longer put again. */
void kw__rs_dht_client_gone(kw__rs *rs, const uint8_t id[KW_ID_LEN]);

/* Wall clock / monotonic helpers. */
uint64_t kw__rs_now_ns(void);  /* monotonic */
uint64_t kw__rs_unix_ms(void); /* wall clock, for records */

#endif /* KW_RELAY_RELAY_H */
