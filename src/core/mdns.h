/* SPDX-License-Identifier: MIT */
/*
 * LAN discovery by multicast DNS (RFC 6762) and DNS-SD (RFC 6763),
 * sans-IO: the messages an endpoint sends, the checks on what it receives,
 * the cache of ids heard on the link and the timing rules. The sockets are
 * src/endpoint/lan.c; what is sent where and when is docs/protocol/lan.md.
 *
 * An endpoint is the DNS-SD instance "<id>._keyway._udp.local" (<id> the
 * 52-character id), host "kw-<id>.local". Its TXT record holds
 * "v=1", "port=<UDP port>", "relay=<home relay URL>" (when it has one) and
 * its signed endpoint record (core/record.h) in "rec0=", "rec1=", ...
 * (binary, up to KW_MDNS_REC_CHUNK bytes each). A received answer counts
 * only when that record verifies, is valid now, and is signed by the id
 * its instance name carries: SRV, A and AAAA records (and the "port" and
 * "relay" keys) are for DNS-SD browsers, never trusted.
 */
#ifndef KW_CORE_MDNS_H
#define KW_CORE_MDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dns.h"
#include "core/record.h"
#include "keyway.h"

#define KW_MDNS_PORT 5353
#define KW_MDNS_TTL_S 120       /* every record we send (RFC 6762 10) */
#define KW_MDNS_LEGACY_TTL_S 10 /* answers to legacy unicast queries */
#define KW_MDNS_MAX_RX 9000     /* longest message read (RFC 6762 17) */
#define KW_MDNS_MAX_TX 1440     /* longest message sent */
#define KW_MDNS_REC_CHUNK 250   /* signed record bytes per TXT string */
#define KW_MDNS_REC_CHUNKS 3    /* 3 x 250 >= KW_RECORD_MAX_LEN */
#define KW_MDNS_MAX_ADDRS 8     /* A/AAAA records per response */
#define KW_MDNS_CACHE 64        /* ids remembered from the link */
/* Signature checks of received records: a burst, then a rate. */
#define KW_MDNS_VERIFY_BURST 32
#define KW_MDNS_VERIFY_PER_S 16
/* Announcements (RFC 6762 8.3): this many, this far apart. */
#define KW_MDNS_ANNOUNCES 2
#define KW_MDNS_ANNOUNCE_GAP_MS 1000
/* Queries for one id: at once, then 1 s later, doubling (RFC 6762 5.2),
 * up to this interval. */
#define KW_MDNS_QUERY_FIRST_MS 1000
#define KW_MDNS_QUERY_MAX_MS 60000
/* A response is multicast on an interface at most once per second
 * (RFC 6762 6). */
#define KW_MDNS_RESPONSE_GAP_MS 1000
/* A QU question that this gap would hold back is answered by unicast to
 * the querier instead, at most once per this many ms per interface: the
 * querier is on the link (TTL 255), and 10 answers a second bound what a
 * spoofing neighbour can make us send. */
#define KW_MDNS_UNICAST_GAP_MS 100

/* _keyway._udp.local */
void kw__mdns_service(kw__dns_name *out);
/* <id>._keyway._udp.local */
void kw__mdns_instance(const uint8_t id[KW_ID_LEN], kw__dns_name *out);
/* kw-<id>.local */
void kw__mdns_host(const uint8_t id[KW_ID_LEN], kw__dns_name *out);
/* True, with the id, if `n` is an instance name of the keyway service. */
bool kw__mdns_instance_id(const kw__dns_name *n, uint8_t id[KW_ID_LEN]);

/* What we announce. */
typedef struct kw__mdns_self {
  uint8_t id[KW_ID_LEN];
  uint16_t port;         /* SRV and "port=" */
  const char *relay_url; /* "" or NULL: none */
  const uint8_t *record; /* signed record (kw__record_encode) */
  size_t record_len;
  kw_sockaddr addrs[KW_MDNS_MAX_ADDRS]; /* A/AAAA of the interface */
  size_t n_addrs;
} kw__mdns_self;

/* The answer to a legacy unicast query (source port not 5353): its id and
 * question are echoed, TTLs are KW_MDNS_LEGACY_TTL_S, no cache-flush bit. */
typedef struct kw__mdns_legacy {
  uint16_t id;
  kw__dns_question q;
} kw__mdns_legacy;

/* A response naming us: PTR (service -> instance), SRV, TXT; A/AAAA as
 * additional records. `ttl` KW_MDNS_TTL_S, or 0 for a goodbye. `legacy`
 * NULL for a multicast response. Errors: KW_ERR_INVALID_ARG (record too
 * long, URL too long), KW_ERR_BUFFER. */
kw_err kw__mdns_encode_response(const kw__mdns_self *s, uint32_t ttl,
                                const kw__mdns_legacy *legacy, uint8_t *out,
                                size_t cap, size_t *outlen);
/* A query (id 0) for the TXT record of `id`'s instance; `qu` sets the
 * question's unicast-response bit (RFC 6762 5.4), as the first query of a
 * lookup does: a responder that multicast its records less than a second
 * ago may still answer it at once, by unicast. */
kw_err kw__mdns_encode_query(const uint8_t id[KW_ID_LEN], bool qu,
                             uint8_t *out, size_t cap, size_t *outlen);

/* Does a received query ask for us? */
typedef struct kw__mdns_ask {
  bool respond;
  bool legacy;        /* from a port other than 5353: answer by unicast */
  bool unicast;       /* from 5353 with the QU bit: unicast is welcome */
  kw__mdns_legacy lq; /* for kw__mdns_encode_response, when legacy */
} kw__mdns_ask;
/* Decodes a query from port `src_port` and decides: respond when a
 * question names the service (PTR or ANY), our instance (TXT, SRV, ANY) or
 * our host (A, AAAA, ANY), unless it only asks for the service and lists
 * our PTR in its known answers with at least half our TTL (RFC 6762 7.1).
 * KW_ERR_PARSE if not a well-formed standard query; `out` is zeroed. */
kw_err kw__mdns_parse_query(const uint8_t *p, size_t len, uint16_t src_port,
                            const uint8_t self_id[KW_ID_LEN],
                            kw__mdns_ask *out);

/* Token bucket limiting signature checks (time is a parameter). */
typedef struct kw__mdns_limiter {
  uint64_t last_ns;
  double tokens;
  bool init;
} kw__mdns_limiter;
/* Takes a token at `now_ns`; false when none is left. */
bool kw__mdns_limiter_take(kw__mdns_limiter *l, uint64_t now_ns);

/* One keyway instance found in a response. */
typedef struct kw__mdns_found {
  kw__record rec; /* verified, signed by the instance's id */
  uint32_t ttl_s; /* the TXT record's mDNS TTL; 0 is a goodbye */
} kw__mdns_found;

/* Reasons records of a response were not taken. */
typedef struct kw__mdns_rejects {
  unsigned unsigned_; /* keyway TXT without a record */
  unsigned bad_sig;   /* malformed, badly signed, expired, or another id */
  unsigned limited;   /* no verification token left */
  unsigned overflow;  /* more than `max` found */
} kw__mdns_rejects;

/* Decodes a response (QR set, opcode 0, rcode 0) and returns in out[0..n)
 * the keyway instances whose TXT records carry a record that verifies at
 * `now_us`, is valid then and is signed by the instance's id. Each check
 * takes a token of `lim` at `now_ns` (none: the record is skipped). Records
 * of `skip_id` (our own, looped back) are ignored. KW_ERR_PARSE if not a
 * well-formed response; `rej` (may be NULL) counts what was dropped. */
kw_err kw__mdns_parse_response(const uint8_t *p, size_t len, uint64_t now_us,
                               uint64_t now_ns, kw__mdns_limiter *lim,
                               const uint8_t skip_id[KW_ID_LEN],
                               kw__mdns_found *out, size_t max, size_t *n,
                               kw__mdns_rejects *rej);

/* Ids heard on the link. Bounded: when full the entry expiring soonest
 * goes. */
typedef struct kw__mdns_cache {
  struct {
    bool used;
    kw_endpoint_addr addr;
    uint64_t ts_us;      /* the record's timestamp */
    uint64_t expires_us; /* min(mDNS TTL, record expiry) */
  } e[KW_MDNS_CACHE];
} kw__mdns_cache;
/* Takes in a found instance: newer records replace older ones of the same
 * id (an older one is ignored), a goodbye (TTL 0) not older than the entry
 * removes it. */
void kw__mdns_cache_put(kw__mdns_cache *c, const kw__mdns_found *f,
                        uint64_t now_us);
/* The address of `id`, if known and not expired at `now_us`. */
bool kw__mdns_cache_get(const kw__mdns_cache *c, const uint8_t id[KW_ID_LEN],
                        uint64_t now_us, kw_endpoint_addr *out);

/* Delay before the next query for an id after `sent` queries (sent >= 1):
 * KW_MDNS_QUERY_FIRST_MS doubling up to KW_MDNS_QUERY_MAX_MS. */
uint32_t kw__mdns_query_gap_ms(unsigned sent);

#endif /* KW_CORE_MDNS_H */
