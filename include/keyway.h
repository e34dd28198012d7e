/* SPDX-License-Identifier: MIT */
/*
 * keyway — authenticated, encrypted QUIC connections to any device by its
 * public key.
 *
 * This is the whole public API. Conventions:
 *
 *  - Every function that can fail returns a kw_err (KW_OK == 0);
 *    kw_strerror() explains any code. Numbers are never reused.
 *  - Handles are opaque. Whoever creates a handle frees it: kw_config_new /
 *    kw_config_free, kw_endpoint_new / kw_endpoint_free. Connections and
 *    streams belong to their endpoint; the application borrows them and must
 *    stop using them once their "closed" callback has returned.
 *  - Settings are copied on the way in: a kw_config may be freed right after
 *    kw_endpoint_new().
 *  - Threads: an endpoint runs on one libuv loop, either on a thread of the
 *    caller's (kw_endpoint_run) or on a thread the library starts
 *    (kw_endpoint_start). Every callback runs on that loop thread. Functions
 *    taking a kw_conn or kw_stream, and kw_endpoint_connect, must be called
 *    on the loop thread (from a callback, or from work handed over with
 *    kw_endpoint_post). kw_endpoint_post, kw_endpoint_close and the
 *    kw_endpoint_* getters marked "any thread" are thread-safe.
 *  - The library never writes to stderr; it logs through the log callback.
 *  - No global mutable state: any number of endpoints may live in one
 *    process.
 */
#ifndef KEYWAY_H
#define KEYWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define KW_EXTERN __attribute__((visibility("default")))
#else
#define KW_EXTERN
#endif

#define KW_VERSION "0.1.0"

/* The version of the library actually linked (KW_VERSION is the header's),
 * "MAJOR.MINOR.PATCH"; static storage. */
KW_EXTERN const char *kw_version_string(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

typedef enum kw_err {
  KW_OK = 0,
  KW_ERR_INVALID_ARG = 1,   /* a NULL or out-of-range argument */
  KW_ERR_NOMEM = 2,         /* an allocation failed */
  KW_ERR_PARSE = 3,         /* malformed input bytes or text */
  KW_ERR_BAD_ID = 4,        /* not a valid endpoint id */
  KW_ERR_BAD_TICKET = 5,    /* not a valid kw1 ticket */
  KW_ERR_KEYFILE = 6,       /* key file missing, unreadable or malformed */
  KW_ERR_KEYFILE_PERM = 7,  /* key file readable by group or others */
  KW_ERR_IO = 8,            /* an operating-system call failed */
  KW_ERR_ADDR = 9,          /* a bad socket address, or bind failed */
  KW_ERR_TLS = 10,          /* TLS set-up or handshake failure */
  KW_ERR_QUIC = 11,         /* QUIC protocol failure */
  KW_ERR_TIMEOUT = 12,      /* no answer in time (connect timeout) */
  KW_ERR_KEY_MISMATCH = 13, /* the remote presented another key than dialed */
  KW_ERR_ALPN = 14,         /* the remote accepts none of our ALPNs */
  KW_ERR_CLOSED = 15,       /* the handle is closing or closed */
  KW_ERR_AGAIN = 16,        /* would block: wait for the writable callback */
  KW_ERR_STREAM_LIMIT = 17, /* the remote allows no more streams right now */
  KW_ERR_DGRAM_UNSUPPORTED = 18, /* the remote did not enable datagrams */
  KW_ERR_DGRAM_TOO_LARGE = 19,   /* larger than kw_conn_max_datagram() */
  KW_ERR_STATE = 20,             /* not allowed in the current state */
  KW_ERR_BUFFER = 21,            /* the output buffer is too small */
  KW_ERR_FULL = 22,              /* a bounded queue or table is full */
  KW_ERR_NO_PATH = 23,           /* no address to reach the remote */
  KW_ERR_APP_CLOSED = 24,  /* the remote closed with an application code */
  KW_ERR_IDLE = 25,        /* the connection timed out idle */
  KW_ERR_UNSUPPORTED = 26, /* not supported on this platform or build */
  KW_ERR_NOT_FOUND = 27,   /* no such entry */
  KW_ERR_RESET = 28,       /* the remote reset the stream */
  KW_ERR_PEER = 29,        /* the remote closed with a transport error */
  KW_ERR_CERT = 30,        /* the remote presented no usable certificate */
  KW_ERR_LOOP = 31,        /* the event loop failed or is not running */
  KW_ERR_UNREACHABLE = 32, /* the remote stopped answering (dead peer) */
} kw_err;

/* A one-line English explanation of `err`; never NULL, static storage. */
KW_EXTERN const char *kw_strerror(kw_err err);
/* The enum name of `err` without prefix, e.g. "KEY_MISMATCH" (for --json). */
KW_EXTERN const char *kw_errname(kw_err err);

/* ------------------------------------------------------------------------ */
/* Keys and endpoint ids                                                     */

#define KW_ID_LEN 32         /* an endpoint id is an Ed25519 public key */
#define KW_SECRET_KEY_LEN 64 /* libsodium layout: 32-byte seed || public key   \
                              */
#define KW_ID_STRLEN 52      /* base32 text form, lowercase, no padding */
#define KW_ID_SHORTLEN 10    /* short form used in logs */

/* Generates a fresh Ed25519 key pair. `sk` receives the secret key. */
KW_EXTERN kw_err kw_key_generate(uint8_t sk[KW_SECRET_KEY_LEN]);
/* Writes the endpoint id (public key) of secret key `sk` to `id`. */
KW_EXTERN kw_err kw_key_id(const uint8_t sk[KW_SECRET_KEY_LEN],
                           uint8_t id[KW_ID_LEN]);

/* Writes the 52-character text form plus NUL; `out` needs 53 bytes. */
KW_EXTERN kw_err kw_id_to_string(const uint8_t id[KW_ID_LEN], char *out,
                                 size_t outlen);
/* Writes the 10-character short form plus NUL; `out` needs 11 bytes. */
KW_EXTERN kw_err kw_id_to_short(const uint8_t id[KW_ID_LEN], char *out,
                                size_t outlen);
/* Parses the text form (exactly 52 base32 characters, case-insensitive).
 * Returns KW_ERR_BAD_ID for anything else, including a string that does not
 * name a valid Ed25519 point. */
KW_EXTERN kw_err kw_id_from_string(const char *s, uint8_t id[KW_ID_LEN]);

/* Reads a key file written by kw_keyfile_write. Errors: KW_ERR_KEYFILE
 * (missing, unreadable or malformed; errno is left as the failing system
 * call set it, 0 for malformed content),
 * KW_ERR_KEYFILE_PERM (the file is readable or writable by group/others). */
KW_EXTERN kw_err kw_keyfile_read(const char *path,
                                 uint8_t sk[KW_SECRET_KEY_LEN]);
/* Writes `sk` to `path` atomically with mode 0600, creating parent
 * directories (mode 0700) as needed. */
KW_EXTERN kw_err kw_keyfile_write(const char *path,
                                  const uint8_t sk[KW_SECRET_KEY_LEN]);

/* ------------------------------------------------------------------------ */
/* Socket addresses and endpoint addresses                                   */

/* A UDP socket address, independent of the platform's sockaddr. */
typedef struct kw_sockaddr {
  uint8_t family; /* 4 or 6; 0 means "none" */
  uint8_t ip[16]; /* IPv4 uses the first 4 bytes */
  uint16_t port;  /* host byte order */
} kw_sockaddr;

#define KW_SOCKADDR_STRLEN 56 /* "[v6%scope]:port" fits, with NUL */

/* Parses "1.2.3.4:5", "[::1]:5". Returns KW_ERR_ADDR on anything else. */
KW_EXTERN kw_err kw_sockaddr_parse(const char *s, kw_sockaddr *out);
/* Formats as above; `out` needs KW_SOCKADDR_STRLEN bytes. */
KW_EXTERN kw_err kw_sockaddr_format(const kw_sockaddr *a, char *out,
                                    size_t outlen);

#define KW_MAX_DIRECT_ADDRS 16
#define KW_MAX_RELAY_URL 255

/* Everything needed to dial an endpoint: its id, optionally its home relay
 * and direct addresses. A plain struct: fill it or decode a ticket. */
typedef struct kw_endpoint_addr {
  uint8_t id[KW_ID_LEN];
  char relay_url[KW_MAX_RELAY_URL + 1]; /* "" when none */
  size_t n_addrs;
  kw_sockaddr addrs[KW_MAX_DIRECT_ADDRS];
} kw_endpoint_addr;

#define KW_TICKET_MAX 1024 /* longest ticket text, with NUL */

/* Encodes `a` as a "kw1..." ticket into `out` (KW_TICKET_MAX is always
 * enough). Errors: KW_ERR_INVALID_ARG (bad address family, port 0, URL not
 * https:// or too long, more than KW_MAX_DIRECT_ADDRS), KW_ERR_BAD_ID (the id
 * is not an Ed25519 point), KW_ERR_BUFFER (`out` too small). */
KW_EXTERN kw_err kw_ticket_encode(const kw_endpoint_addr *a, char *out,
                                  size_t outlen);
/* Decodes a ticket. Whitespace around it is ignored. Returns
 * KW_ERR_BAD_TICKET for anything malformed; `*why`, when not NULL, is set to
 * a static string naming the defect ("bad prefix", "checksum mismatch"...). */
KW_EXTERN kw_err kw_ticket_decode(const char *s, kw_endpoint_addr *a,
                                  const char **why);

/* A ticket may also carry an application token: 1..KW_TICKET_TOKEN_MAX
 * opaque bytes that the dialer hands to the application it dials (e.g. the
 * secret capability of one `keyway send` share). The library never
 * interprets or sends it by itself; kw_ticket_decode skips it. */
#define KW_TICKET_TOKEN_MAX 16
/* As kw_ticket_encode, plus `token` (token_len 0: none, as
 * kw_ticket_encode). KW_ERR_INVALID_ARG for token_len above the maximum. */
KW_EXTERN kw_err kw_ticket_encode_token(const kw_endpoint_addr *a,
                                        const uint8_t *token, size_t token_len,
                                        char *out, size_t outlen);
/* As kw_ticket_decode, plus the token into `token` with its length in
 * `*token_len` (0 when the ticket has none; both may be NULL). */
KW_EXTERN kw_err kw_ticket_decode_token(const char *s, kw_endpoint_addr *a,
                                        uint8_t token[KW_TICKET_TOKEN_MAX],
                                        size_t *token_len, const char **why);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */

typedef enum kw_log_level {
  KW_LOG_ERROR = 0,
  KW_LOG_WARN = 1,
  KW_LOG_INFO = 2,
  KW_LOG_DEBUG = 3,
  KW_LOG_TRACE = 4,
} kw_log_level;

/* `msg` is an event name followed by key=value fields, e.g.
 * "conn.opened remote=abcdefghij alpn=echo". Runs on the loop thread. */
typedef void (*kw_log_fn)(void *user, kw_log_level level, const char *module,
                          const char *msg);

/* ------------------------------------------------------------------------ */
/* Handles and callbacks                                                     */

typedef struct kw_config kw_config;
typedef struct kw_endpoint kw_endpoint;
typedef struct kw_conn kw_conn;
typedef struct kw_stream kw_stream;

typedef enum kw_path_kind {
  KW_PATH_NONE = 0,
  KW_PATH_DIRECT = 1,
  KW_PATH_RELAY = 2,
  KW_PATH_MIXED = 3, /* still racing: packets go to several paths */
} kw_path_kind;

/* "none", "direct", "relay", "mixed". */
KW_EXTERN const char *kw_path_kind_name(kw_path_kind k);

typedef struct kw_path_info {
  kw_path_kind kind;
  kw_sockaddr addr; /* the remote's UDP address, family 0 for a relay */
  double rtt_ms;    /* smoothed RTT of the connection, 0 if unknown */
} kw_path_info;

typedef struct kw_conn_stats {
  uint64_t bytes_sent; /* UDP payload bytes */
  uint64_t bytes_recv;
  uint64_t pkts_sent;
  uint64_t pkts_recv;
  uint64_t pkts_lost;
  double rtt_ms; /* smoothed */
  double min_rtt_ms;
  uint64_t cwnd;          /* congestion window, bytes */
  uint64_t max_datagram;  /* largest datagram payload now, 0 if unsupported */
  uint64_t send_buffered; /* stream bytes held for sending, all streams */
} kw_conn_stats;

/* All optional (NULL = not interested). `user` is the pointer given to
 * kw_config_set_callbacks. */
typedef struct kw_callbacks {
  /* An incoming connection passed authentication and ALPN checks. The
   * remote's id and ALPN are available through kw_conn_remote_id and
   * kw_conn_alpn. */
  void (*conn_accepted)(kw_conn *conn, void *user);
  /* The connection is gone. `err` is KW_OK for a local close,
   * KW_ERR_APP_CLOSED (then `app_code` is the remote's code), KW_ERR_IDLE,
   * KW_ERR_UNREACHABLE (nothing acknowledged for 10 s),
   * KW_ERR_TIMEOUT, KW_ERR_KEY_MISMATCH... The handle (and its streams) are
   * freed when this returns. */
  void (*conn_closed)(kw_conn *conn, kw_err err, uint64_t app_code, void *user);
  /* The remote opened a stream. */
  void (*stream_opened)(kw_stream *stream, void *user);
  /* Data arrived in order. `fin` marks the end of the remote's direction
   * (len may be 0 then). Flow-control credit is returned when this returns,
   * unless the stream is in manual-consume mode. */
  void (*stream_data)(kw_stream *stream, const uint8_t *data, size_t len,
                      bool fin, void *user);
  /* The send buffer of a stream has room again after KW_ERR_AGAIN or a
   * short write. */
  void (*stream_writable)(kw_stream *stream, void *user);
  /* Both directions are finished or the stream was reset; `err` is KW_OK
   * or KW_ERR_RESET (then `app_code` is the remote's code). Freed on
   * return. */
  void (*stream_closed)(kw_stream *stream, kw_err err, uint64_t app_code,
                        void *user);
  /* A QUIC DATAGRAM frame arrived. */
  void (*datagram)(kw_conn *conn, const uint8_t *data, size_t len, void *user);
  /* The path of a connection changed: its kind or its remote address.
   * (RTT alone does not fire it; read it with kw_conn_path.) */
  void (*path_changed)(kw_conn *conn, const kw_path_info *path, void *user);
} kw_callbacks;

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */

KW_EXTERN kw_err kw_config_new(kw_config **out);
KW_EXTERN void kw_config_free(kw_config *cfg);

/* The endpoint's identity. Without it, the endpoint generates an ephemeral
 * key. */
KW_EXTERN kw_err kw_config_set_secret_key(kw_config *cfg,
                                          const uint8_t sk[KW_SECRET_KEY_LEN]);
/* Accept incoming connections for this ALPN (up to 16, each 1-255 bytes).
 * Without any ALPN the endpoint accepts no incoming connections. */
KW_EXTERN kw_err kw_config_add_alpn(kw_config *cfg, const char *alpn);
/* Bind the socket of this address's family to it (default: 0.0.0.0:0 and
 * [::]:0). One per family; a second one of a family replaces the first. */
KW_EXTERN kw_err kw_config_add_bind(kw_config *cfg, const kw_sockaddr *addr);
/* Which address families get a socket (default: both; a family the machine
 * lacks is skipped unless it was bound explicitly). An endpoint bound to
 * 127.0.0.1 only, say, turns IPv6 off so that its tickets name no IPv6
 * address. Errors: KW_ERR_INVALID_ARG (both off). */
KW_EXTERN kw_err kw_config_set_families(kw_config *cfg, bool ipv4, bool ipv6);
/* Which local addresses are advertised as candidates (tickets, lookup
 * records, CallMeMaybe). Interface-name patterns are exact or end in '*'
 * ("docker*"); prefixes are "10.0.0.0/8", "fd00::/8" or a bare address.
 * Deny wins over allow; once any allow entry exists, a candidate must match
 * one. Addresses not on a local interface (learned by STUN, a port mapping
 * or a remote's Pong) are filtered by the deny prefixes only. Up to 16
 * entries per list. Without lists every address is
 * advertised except loopback-only ones; addresses on virtual interfaces
 * (docker, bridges, veth, VPN tunnels, ...) are listed after the real LAN.
 * Errors: KW_ERR_INVALID_ARG (bad pattern), KW_ERR_PARSE (bad prefix),
 * KW_ERR_FULL (list full), KW_ERR_NOMEM. */
KW_EXTERN kw_err kw_config_allow_interface(kw_config *cfg, const char *pattern);
KW_EXTERN kw_err kw_config_deny_interface(kw_config *cfg, const char *pattern);
KW_EXTERN kw_err kw_config_allow_prefix(kw_config *cfg, const char *prefix);
KW_EXTERN kw_err kw_config_deny_prefix(kw_config *cfg, const char *prefix);
/* Idle timeout (default 30000 ms) and keep-alive interval (default 0: off;
 * the CLI uses 5000). Independently of both, a connection with data in
 * flight that hears nothing from the remote for 10 s closes with
 * KW_ERR_UNREACHABLE (a receiver with keep-alive on counts its PING). */
KW_EXTERN kw_err kw_config_set_idle_timeout(kw_config *cfg, uint32_t ms);
KW_EXTERN kw_err kw_config_set_keepalive(kw_config *cfg, uint32_t ms);
/* How long a dial may take before it fails with KW_ERR_TIMEOUT
 * (default 10000 ms). */
KW_EXTERN kw_err kw_config_set_connect_timeout(kw_config *cfg, uint32_t ms);
/* Stream limits the remote may open at once (default 1024 bidi, 1024 uni),
 * and the connection limit of the endpoint (default 4096; further
 * incoming connections are refused). */
KW_EXTERN kw_err kw_config_set_max_streams(kw_config *cfg, uint64_t bidi,
                                           uint64_t uni);
KW_EXTERN kw_err kw_config_set_max_conns(kw_config *cfg, uint32_t n);
/* Address validation of incoming connections (docs/PROTOCOL.md, "Handshakes
 * in progress"): once `n` incoming handshakes are in progress (default 16),
 * an Initial without a valid Retry token is answered with a Retry, which
 * costs a real client one round trip and a spoofed or replayed flood its
 * hold on the listener. 0: always validate. Handshakes in progress are
 * counted apart from the connection limit: at most 128 at once, each for
 * at most 5 s. Errors: KW_ERR_INVALID_ARG (n > 128). */
KW_EXTERN kw_err kw_config_set_retry_threshold(kw_config *cfg, uint32_t n);
/* Bytes a stream may buffer for sending before writes return short
 * (default 16 MiB). Sent bytes stay buffered until acknowledged in order:
 * on a lossy path one lost packet holds everything sent after it for a
 * round trip or two, so this must cover several bandwidth-delay products
 * (measured: 1% loss at 80 ms RTT, 4 MiB gave 12 MB/s, 16 MiB 27 MB/s). */
KW_EXTERN kw_err kw_config_set_stream_send_buffer(kw_config *cfg, size_t n);
/* Send budgets: stream bytes written but not yet acknowledged by the
 * remote, summed over all streams of one connection (default 16 MiB) and
 * over the whole endpoint (default 256 MiB). Once a budget is used,
 * kw_stream_write takes less or nothing (KW_ERR_AGAIN) on every stream it
 * covers, and stream_writable fires for those streams once an eighth of
 * the budget is free again. So a remote that opens many streams and never
 * reads holds at most `per_conn` bytes of the sender's memory (plus up to
 * 64 KiB of chunk slack per stream), whatever the stream count; the
 * streams of one connection share its budget. Errors: KW_ERR_INVALID_ARG
 * (per_conn < 1024 or per_endpoint < per_conn). */
KW_EXTERN kw_err kw_config_set_send_budget(kw_config *cfg, size_t per_conn,
                                           size_t per_endpoint);

/* Congestion controllers (the ones ngtcp2 implements). */
typedef enum kw_cc {
  KW_CC_CUBIC = 0, /* RFC 9438 with HyStart++ */
  KW_CC_BBR = 1,   /* BBR (model-based: rate from bandwidth and RTT); the
                      default */
  KW_CC_RENO = 2,  /* NewReno (RFC 9002) */
} kw_cc;
/* The congestion controller of every connection of the endpoint (default
 * KW_CC_BBR). Why BBR: measured in the NAT lab (bench/natlab_paths.sh,
 * 80 ms RTT, 64 MiB), 1% random loss per link direction held CUBIC to
 * 0.2 MB/s (TCP CUBIC too: loss-based controllers read random loss as
 * congestion) while BBR moved 27 MB/s (TCP BBR: 14 MB/s); without loss both
 * reached TCP's 38-39 MB/s. Wi-Fi and mobile links have random loss. Past
 * about 2% loss per round trip ngtcp2's BBR (v3) backs off as well: at 5%
 * per link direction it falls to under 1 MB/s. CUBIC keeps queues shorter
 * where keyway shares a bottleneck with loss-free TCP flows. Both ends
 * choose on their own: each controls what it sends. Errors:
 * KW_ERR_INVALID_ARG (cfg NULL or an unknown value). */
KW_EXTERN kw_err kw_config_set_congestion_control(kw_config *cfg, kw_cc cc);
/* Adds a relay to the relay map (up to 8): "https://HOST:PORT", optionally
 * "https://HOST:PORT/?stun=PORT" (STUN defaults to UDP 3478 on the IP the
 * relay's TLS connection reached). The endpoint measures each relay's
 * latency, keeps an always-on connection to the lowest (its home relay),
 * publishes its signed endpoint record there, and dials through relays
 * when no direct path works. Errors: KW_ERR_PARSE (bad URL), KW_ERR_FULL.
 * No relay is built in: without this call the endpoint uses none. */
KW_EXTERN kw_err kw_config_add_relay(kw_config *cfg, const char *url);
/* PEM file of certificates trusted for relays' TLS (default: the system
 * trust store). The file is read when the endpoint is created. */
KW_EXTERN kw_err kw_config_set_relay_ca(kw_config *cfg, const char *path);
/* Port mapping (default: off). When enabled, the endpoint asks the default
 * gateway to forward a port of its external IPv4 address to the endpoint's
 * IPv4 UDP socket: PCP (RFC 6887, a UDP request to the gateway's port
 * 5351) at the same time as UPnP IGD (SSDP multicast on the LAN, then HTTP
 * to the gateway), else NAT-PMP; the first to grant holds the mapping
 * (PCP, when the gateway speaks it); leases of 2 h renewed at half time,
 * retried with back-off (15 s doubling to 10 min) on failure, deleted when the
 * endpoint closes (kw_endpoint_close waits at most 1.5 s for that). The
 * mapped address becomes a candidate in tickets, lookup records and hole
 * punching, so peers behind NATs that change ports per destination can
 * still reach this endpoint directly. Off by default because it sends
 * packets to devices on the user's network and opens a port on the
 * gateway. Errors: KW_ERR_INVALID_ARG (cfg NULL). */
KW_EXTERN kw_err kw_config_set_port_mapping(kw_config *cfg, bool enable);

/* What goes into the Mainline DHT (docs/protocol/dht.md). Besides its
 * record in the home relay's lookup store, the endpoint signs a BEP 44
 * item (pkarr format) and hands it to the home relay; a relay started
 * with --dht-listen puts it into the DHT, so any DHT relay can resolve
 * this id. Relays without a DHT ignore it.
 *  KW_DHT_PUBLISH_RELAY  the default: the item names only the home relay
 *                        (the DHT is public: anyone can read it)
 *  KW_DHT_PUBLISH_ADDRS  the home relay and the direct addresses
 *  KW_DHT_PUBLISH_NONE   no item at all
 * Errors: KW_ERR_INVALID_ARG (cfg NULL, unknown mode). */
typedef enum kw_dht_publish {
  KW_DHT_PUBLISH_RELAY = 0,
  KW_DHT_PUBLISH_ADDRS = 1,
  KW_DHT_PUBLISH_NONE = 2,
} kw_dht_publish;
KW_EXTERN kw_err kw_config_set_dht_publish(kw_config *cfg, kw_dht_publish mode);
/* Birthday probing (default on; docs/protocol/disco.md "Birthday
 * probing"): when this endpoint's NAT maps a new public port per
 * destination (netcheck's mapping_varies_by_dest) and the remote's does
 * not, or the other way round, a bounded burst of disco Pings looks for a
 * direct path that plain hole punching cannot find: at most 256 extra UDP
 * sockets on the endpoint-dependent side (at most 256 per endpoint in
 * all), at most 2048 Pings to random ports (about 270 KB in about a
 * second) on the other, at most 2 attempts a minute per remote; the relay
 * carries the connection meanwhile, and a hit moves it onto the socket
 * that found the path (the others close at once). Turn it off on networks
 * where such bursts are unwelcome. The endpoint learns its own mapping
 * behaviour by itself when it has two or more relays whose STUN servers
 * differ (and from kw_endpoint_netcheck), and tells remotes (a NatHint);
 * without that knowledge on both sides nothing runs. Off, the endpoint
 * still answers a remote's probing Pings like any Ping. Errors:
 * KW_ERR_INVALID_ARG (cfg NULL). */
KW_EXTERN kw_err kw_config_set_birthday_probing(kw_config *cfg, bool enable);
/* Which paths connections may take (default KW_PATH_POLICY_ANY: direct UDP
 * when it works, the relay otherwise).
 *  - KW_PATH_POLICY_RELAY_ONLY: packets to and from remotes go only
 *    through relays. The endpoint sends nothing to remotes' direct
 *    addresses (no QUIC, no disco Pings), drops UDP from them, and
 *    advertises no direct address (kw_endpoint_get_addr, lookup records,
 *    CallMeMaybe name the relay only). STUN still runs (netcheck).
 *  - KW_PATH_POLICY_DIRECT_ONLY: QUIC packets never go through a relay
 *    (a dial uses the remote's direct addresses only; QUIC arriving by a
 *    relay is dropped). Relays still resolve bare ids, carry disco
 *    (hole-punch coordination) and measure latency.
 * Errors: KW_ERR_INVALID_ARG. */
typedef enum kw_path_policy {
  KW_PATH_POLICY_ANY = 0,
  KW_PATH_POLICY_RELAY_ONLY = 1,
  KW_PATH_POLICY_DIRECT_ONLY = 2,
} kw_path_policy;
KW_EXTERN kw_err kw_config_set_path_policy(kw_config *cfg,
                                           kw_path_policy policy);
/* Lookup sources. A dial by bare id (kw_endpoint_connect with no address
 * and no relay URL) asks every source at once: the lookup store of every
 * relay of the relay map (the home relay among them), the LAN when LAN
 * discovery is on, and each resolver added here. The first valid answer
 * is dialed; answers from relays and the LAN are valid only when they are
 * records signed by the id (a relay or a host on the LAN cannot forge
 * one); an application's resolver is trusted with the address it gives
 * (the handshake still proves the id, so a wrong address only fails). The
 * dial fails once every source has failed (KW_ERR_NOT_FOUND when one said
 * it does not know the id) or after the connect timeout.
 *
 * A resolver is called on the loop thread, inside kw_endpoint_connect,
 * with the id and a request handle, and must not block the loop: it
 * answers with kw_resolve_answer, either inside the call or later, always
 * on the loop thread (from another of the endpoint's callbacks, or from
 * any thread of the application through kw_endpoint_post). Exactly one
 * answer per request: the handle is freed by it. The dial's callback
 * never runs inside kw_endpoint_connect, even when a resolver answered
 * inside its call. Answering after the lookup is over
 * (another source won, timeout, the endpoint closing) is allowed and
 * ignored; requests still unanswered when the endpoint is freed are freed
 * with it (answering them after kw_endpoint_free is not allowed). */
#define KW_MAX_RESOLVERS 4
typedef struct kw_resolve_req kw_resolve_req;
typedef void (*kw_resolver_fn)(kw_endpoint *ep, const uint8_t id[KW_ID_LEN],
                               kw_resolve_req *req, void *user);
/* Adds a resolver (up to KW_MAX_RESOLVERS). Errors: KW_ERR_INVALID_ARG,
 * KW_ERR_FULL. */
KW_EXTERN kw_err kw_config_add_resolver(kw_config *cfg, kw_resolver_fn fn,
                                        void *user);
/* Loop thread. Answers `req`: err KW_OK with `addr` (its id must be the id
 * asked, else the answer counts as KW_ERR_KEY_MISMATCH; it needs a direct
 * address or a relay URL), or an error (KW_ERR_NOT_FOUND: this resolver
 * does not know the id) with addr NULL. Frees `req`. Errors:
 * KW_ERR_INVALID_ARG (req NULL, or KW_OK without addr; `req` is answered
 * with that error and freed all the same). */
KW_EXTERN kw_err kw_resolve_answer(kw_resolve_req *req, kw_err err,
                                   const kw_endpoint_addr *addr);
/* LAN discovery (default: off). When on, the endpoint announces itself on
 * the local link by multicast DNS (DNS-SD service _keyway._udp.local, the
 * id as instance name, its port, relay URL and signed record in TXT; UDP
 * 5353 to 224.0.0.251 and ff02::fb on every interface the candidate rules
 * allow), answers queries for its id, and resolves bare ids on the link
 * (docs/protocol/lan.md). Off by default because it multicasts to every
 * host of the network and tells them this endpoint's id and addresses.
 * Errors: KW_ERR_INVALID_ARG (cfg NULL). */
KW_EXTERN kw_err kw_config_set_lan_discovery(kw_config *cfg, bool enable);
/* Log sink and its minimum level (default: no logging). */
KW_EXTERN kw_err kw_config_set_log(kw_config *cfg, kw_log_fn fn, void *user,
                                   kw_log_level level);
/* Callbacks (copied) and their user pointer. */
KW_EXTERN kw_err kw_config_set_callbacks(kw_config *cfg,
                                         const kw_callbacks *cbs, void *user);

/* ------------------------------------------------------------------------ */
/* Endpoint                                                                  */

/* Creates an endpoint: binds its UDP sockets, loads TLS credentials. It does
 * not run until kw_endpoint_run or kw_endpoint_start. Errors: KW_ERR_ADDR
 * (bind failed), KW_ERR_TLS, KW_ERR_NOMEM, KW_ERR_IO. */
KW_EXTERN kw_err kw_endpoint_new(const kw_config *cfg, kw_endpoint **out);

/* Runs the loop on the calling thread until kw_endpoint_close completes. */
KW_EXTERN kw_err kw_endpoint_run(kw_endpoint *ep);
/* Starts a library thread running the loop. */
KW_EXTERN kw_err kw_endpoint_start(kw_endpoint *ep);

/* Any thread. Runs fn(ep, arg) on the loop thread soon. The queue is
 * unbounded in count but each entry is small; returns KW_ERR_CLOSED once the
 * endpoint is closing (fn is then not called). */
KW_EXTERN kw_err kw_endpoint_post(kw_endpoint *ep,
                                  void (*fn)(kw_endpoint *ep, void *arg),
                                  void *arg);

/* Any thread, idempotent. Graceful close: stops accepting, sends
 * CONNECTION_CLOSE on every connection (their conn_closed callbacks run),
 * closes sockets. Completes within 500 ms. If the library thread runs the
 * loop, this waits for the thread to end (unless called on it). */
KW_EXTERN kw_err kw_endpoint_close(kw_endpoint *ep);
/* Frees a closed endpoint (or one that never ran). Not on the loop thread. */
KW_EXTERN void kw_endpoint_free(kw_endpoint *ep);

/* Any thread. This endpoint's id. */
KW_EXTERN void kw_endpoint_id(const kw_endpoint *ep, uint8_t id[KW_ID_LEN]);
/* Any thread. The address to put in a ticket: id, the bound sockets' ports
 * with every non-loopback interface address when bound to the unspecified
 * address (loopback last), the home relay when there is one. */
KW_EXTERN kw_err kw_endpoint_get_addr(kw_endpoint *ep, kw_endpoint_addr *out);
/* Any thread. The bound socket addresses (up to 2: IPv4, IPv6). */
KW_EXTERN kw_err kw_endpoint_bound(const kw_endpoint *ep, kw_sockaddr *out,
                                   size_t cap, size_t *n);

/* Any thread. Writes the home relay's URL (or "" while there is none) into
 * `out`. */
KW_EXTERN kw_err kw_endpoint_home_relay(kw_endpoint *ep, char *out,
                                        size_t outlen);

typedef void (*kw_connect_cb)(kw_conn *conn, kw_err err, void *arg);

/* Loop thread. Dials `to` with ALPN `alpn`. The handshake races every
 * path at once: each direct address of `to`, and its relay (to->relay_url,
 * else our home relay); the first to answer carries it. With no direct
 * address and no relay URL (a bare id), the id is first resolved by the
 * lookup sources (kw_config_add_resolver): every relay, the LAN, the
 * application's resolvers, all at once. `cb` runs exactly once, never
 * inside this call: with err == KW_OK and the connection once the
 * handshake completes on our side (the remote proved the key we dialed and
 * we can send; it may still refuse our certificate, and then closes the
 * connection: conn_closed), or with an error and conn == NULL
 * (KW_ERR_TIMEOUT, KW_ERR_KEY_MISMATCH, KW_ERR_ALPN, KW_ERR_NOT_FOUND...).
 * Returns an error (and does not call cb) when `to` gives no way at all to
 * reach the remote (a bare id and no lookup source: no relay, LAN
 * discovery off, no resolver): KW_ERR_NO_PATH. */
KW_EXTERN kw_err kw_endpoint_connect(kw_endpoint *ep,
                                     const kw_endpoint_addr *to,
                                     const char *alpn, kw_connect_cb cb,
                                     void *arg);

/* A reachability report (kw_endpoint_netcheck). */
typedef struct kw_netcheck_report {
  bool udp;         /* some STUN server answered over UDP */
  kw_sockaddr ipv4; /* server-reflexive IPv4 address, family 0 if none */
  kw_sockaddr ipv6; /* server-reflexive IPv6 address, family 0 if none */
  /* 1: the NAT maps us to different ports for different destinations
   * (endpoint-dependent, "symmetric": hole punching will not work);
   * 0: the same mapping (endpoint-independent); -1: unknown (fewer than two
   * STUN servers answered). */
  int mapping_varies_by_dest;
  bool upnp, natpmp, pcp; /* a port-mapping service answered */
  size_t n_relays;
  struct {
    char url[KW_MAX_RELAY_URL + 1];
    double latency_ms; /* < 0: no answer */
  } relays[8];
  char home_relay[KW_MAX_RELAY_URL + 1]; /* "" if none */
  /* PCP (RFC 6887), asked only with port mapping on (pcp_probed): `pcp`
   * above is true when a PCP server answered our MAP request (any result),
   * pcp_result is its result code (0 SUCCESS, 2 NOT_AUTHORIZED, 8
   * NO_RESOURCES, ...; -1: no answer), pcp_external the mapping it granted
   * when that is our candidate (family 0: none). */
  bool pcp_probed;
  int pcp_result;
  kw_sockaddr pcp_external;
} kw_netcheck_report;

/* Any thread. RFC 6887's name of a PCP result code ("SUCCESS",
 * "NO_RESOURCES"...), "UNKNOWN" for a code it does not define (and -1). */
KW_EXTERN const char *kw_pcp_result_name(int code);

typedef void (*kw_netcheck_cb)(kw_endpoint *ep, const kw_netcheck_report *r,
                               void *arg);

/* Loop thread. Probes every relay's STUN server (two STUN servers are
 * enough to tell whether the NAT's mapping depends on the destination; a
 * relay URL with "?stun=PORT" can name a second server on the same host)
 * and reports after at most `timeout_ms` (0: 3000). `cb` runs once. */
KW_EXTERN kw_err kw_endpoint_netcheck(kw_endpoint *ep, uint32_t timeout_ms,
                                      kw_netcheck_cb cb, void *arg);

/* Loop thread. Endpoint-wide counters. */
typedef struct kw_endpoint_stats {
  uint64_t conns_opened;
  uint64_t conns_closed;
  uint64_t conns_direct;
  uint64_t udp_pkts_sent;
  uint64_t udp_pkts_recv;
  uint64_t udp_bytes_sent;
  uint64_t udp_bytes_recv;
  uint64_t drops_unknown; /* undecodable or unknown-connection packets */
  uint64_t drops_refused; /* incoming connections refused (limit, ALPN) */
  uint64_t holepunch_attempts;
  uint64_t retries_sent;           /* Retry packets (address validation) sent */
  uint64_t handshakes_in_progress; /* incoming, not yet completed (now) */
  uint64_t send_buffered;          /* stream bytes held for sending (now) */
  /* connections moved to a new path: as a client, a QUIC migration begun
   * when the magicsock switched the remote's path (direct, relay, a NAT
   * rebinding); as a server, a peer's migration followed. Each resets the
   * connection's congestion control and RTT (RFC 9000 section 9.4). */
  uint64_t path_migrations;
} kw_endpoint_stats;
KW_EXTERN void kw_endpoint_stats_get(kw_endpoint *ep, kw_endpoint_stats *out);

/* ------------------------------------------------------------------------ */
/* Connections (loop thread only)                                            */

KW_EXTERN void kw_conn_remote_id(const kw_conn *conn, uint8_t id[KW_ID_LEN]);
/* The negotiated ALPN, NUL-terminated. */
KW_EXTERN const char *kw_conn_alpn(const kw_conn *conn);
KW_EXTERN bool kw_conn_is_client(const kw_conn *conn);
KW_EXTERN void kw_conn_set_user(kw_conn *conn, void *user);
KW_EXTERN void *kw_conn_get_user(const kw_conn *conn);
KW_EXTERN void kw_conn_stats_get(kw_conn *conn, kw_conn_stats *out);
KW_EXTERN void kw_conn_path(kw_conn *conn, kw_path_info *out);

/* Opens a stream. Errors: KW_ERR_STREAM_LIMIT (wait for the remote to allow
 * more; retried automatically never), KW_ERR_CLOSED. */
KW_EXTERN kw_err kw_conn_open_stream(kw_conn *conn, bool bidi, kw_stream **out);
/* Largest datagram payload kw_conn_send_datagram takes now (0: none). */
KW_EXTERN size_t kw_conn_max_datagram(kw_conn *conn);
/* Sends an unreliable datagram. Datagrams wait in a queue until the
 * congestion window lets them out: up to 256 per connection, and up to
 * 1024 over all connections that share a remote endpoint's paths (those
 * this endpoint opened to one id, and those that id opened to it through
 * a relay; one accepted over plain UDP counts on its own). Past either
 * bound the oldest queued datagram is dropped: the connection's own, or
 * the oldest of any connection of the remote (datagrams are unreliable by
 * contract).
 * Errors: KW_ERR_DGRAM_UNSUPPORTED, KW_ERR_DGRAM_TOO_LARGE, KW_ERR_CLOSED. */
KW_EXTERN kw_err kw_conn_send_datagram(kw_conn *conn, const uint8_t *data,
                                       size_t len);
/* Closes the connection with an application error code (0 = no error) and
 * an optional reason. conn_closed runs later. Idempotent. */
KW_EXTERN kw_err kw_conn_close(kw_conn *conn, uint64_t app_code,
                               const char *reason);

/* ------------------------------------------------------------------------ */
/* Streams (loop thread only)                                                */

KW_EXTERN int64_t kw_stream_id(const kw_stream *s);
KW_EXTERN kw_conn *kw_stream_conn(const kw_stream *s);
KW_EXTERN void kw_stream_set_user(kw_stream *s, void *user);
KW_EXTERN void *kw_stream_get_user(const kw_stream *s);

/* Copies up to `len` bytes into the stream's send buffer; `*written` gets
 * how many were taken (may be less than len: back-pressure from the
 * stream's buffer or the connection's or endpoint's send budget; then
 * stream_writable fires when there is room). `fin` ends our direction once
 * all bytes are taken. Returns KW_ERR_AGAIN if nothing could be taken,
 * KW_ERR_STATE after fin, KW_ERR_CLOSED. */
KW_EXTERN kw_err kw_stream_write(kw_stream *s, const uint8_t *data, size_t len,
                                 bool fin, size_t *written);
/* Releases a buffer given to kw_stream_write_owned: `data` is the pointer
 * that was passed, `user` the pointer given with it. Runs on the loop
 * thread, exactly once per accepted write; it must not call keyway. */
typedef void (*kw_release_fn)(void *user, uint8_t *data);
/* Queues `len` bytes at `data` without copying them: on KW_OK the stream
 * owns the buffer until `release(user, data)` runs, once the bytes are
 * acknowledged or the stream or connection is gone (the caller must not
 * touch the bytes meanwhile). All or nothing, under the same limits as
 * kw_stream_write: KW_ERR_AGAIN when the stream's buffer or a send budget
 * has less room than `len` now (stream_writable fires when there is
 * more); then, as on every error, the buffer stays the caller's and
 * `release` is not called. `fin` ends our direction after these bytes.
 * Errors: KW_ERR_INVALID_ARG (no release function, len 0, or len larger
 * than the stream's send buffer or a budget, so it could never fit),
 * KW_ERR_STATE after fin, KW_ERR_CLOSED. */
KW_EXTERN kw_err kw_stream_write_owned(kw_stream *s, uint8_t *data, size_t len,
                                       bool fin, kw_release_fn release,
                                       void *user);
/* Bytes queued but not yet acknowledged by the remote (they count against
 * the send budgets, see kw_config_set_send_budget). */
KW_EXTERN size_t kw_stream_buffered(const kw_stream *s);
/* Ends our direction (same as a zero-length write with fin). */
KW_EXTERN kw_err kw_stream_finish(kw_stream *s);
/* Manual consume: flow-control credit is only returned by
 * kw_stream_consume, so a slow consumer slows the sender. What was never
 * consumed when the stream closes (kw_stream_consume is refused then) is
 * credited back to the connection at that point. */
KW_EXTERN void kw_stream_set_manual_consume(kw_stream *s, bool on);
KW_EXTERN kw_err kw_stream_consume(kw_stream *s, size_t n);
/* Aborts both directions with an application error code. */
KW_EXTERN kw_err kw_stream_reset(kw_stream *s, uint64_t app_code);

#ifdef __cplusplus
}
#endif

#endif /* KEYWAY_H */
