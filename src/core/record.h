/* SPDX-License-Identifier: MIT */
/*
 * Signed endpoint records (docs/protocol/relay.md section 4): what
 * an endpoint publishes to its home relay's lookup store so others can
 * resolve its id to a relay URL and direct addresses.
 *
 *   version u8 (1) | id 32 | timestamp u64 (unix microseconds) |
 *   ttl u32 (seconds, 1..KW_RECORD_MAX_TTL) | relay URL (u8 length + bytes,
 *   visible ASCII, may be empty) | n u8 (<= KW_MAX_DIRECT_ADDRS) then n x
 *   {family u8 (4 or 6), address 4 or 16 bytes, port u16 (not 0)} |
 *   signature 64
 *
 * The signature is Ed25519 by the id's key over "keyway-record-v1" || all
 * preceding bytes. Decoding is strict: one encoding per record, nothing
 * after the signature.
 */
#ifndef KW_CORE_RECORD_H
#define KW_CORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define KW_RECORD_VERSION 1
#define KW_RECORD_CONTEXT "keyway-record-v1"
#define KW_RECORD_MAX_TTL 86400u /* one day */
#define KW_RECORD_SIG_LEN 64
/* A record dated further ahead of the reader's clock than this is refused
 * (clock skew between the publisher and the reader). */
#define KW_RECORD_MAX_SKEW_US (300ull * 1000000ull)
/* Longest encoding: full URL and KW_MAX_DIRECT_ADDRS IPv6 addresses. */
#define KW_RECORD_MAX_LEN                                                      \
  (1 + KW_ID_LEN + 8 + 4 + 1 + KW_MAX_RELAY_URL + 1 +                          \
   KW_MAX_DIRECT_ADDRS * 19 + KW_RECORD_SIG_LEN)

typedef struct kw__record {
  kw_endpoint_addr addr; /* id, relay URL ("" for none), addresses */
  uint64_t timestamp_us; /* unix microseconds at signing */
  uint32_t ttl_s;        /* valid for this long after timestamp_us */
} kw__record;

/* Encodes `r` and signs it with `sk`, whose public key must be r->addr.id.
 * Errors: KW_ERR_INVALID_ARG (sk not the id's key, ttl 0 or above
 * KW_RECORD_MAX_TTL, URL too long or not visible ASCII, more than
 * KW_MAX_DIRECT_ADDRS, family not 4/6, port 0), KW_ERR_BUFFER
 * (KW_RECORD_MAX_LEN always suffices). */
kw_err kw__record_encode(const kw__record *r,
                         const uint8_t sk[KW_SECRET_KEY_LEN], uint8_t *out,
                         size_t cap, size_t *outlen);

/* Encodes `r` as kw__record_encode does but ends it with `sig` instead of
 * signing: rebuilds a record from its fields and its signature (a record
 * read from the DHT, docs/protocol/dht.md). Nothing is verified here:
 * decode the result. Errors as kw__record_encode's. */
kw_err kw__record_assemble(const kw__record *r,
                           const uint8_t sig[KW_RECORD_SIG_LEN], uint8_t *out,
                           size_t cap, size_t *outlen);

/* Decodes and verifies a record. Errors: KW_ERR_PARSE (malformed, in any
 * way the format above forbids), KW_ERR_KEY_MISMATCH (the signature is
 * not the id's). */
kw_err kw__record_decode(const uint8_t *p, size_t len, kw__record *r);

/* Decodes and verifies a record read at unix time `now_unix_us`, as
 * kw__record_decode, then checks its time (kw__record_check_time). What a
 * reader (the lookup client) uses. Errors: those of kw__record_decode,
 * KW_ERR_STATE (expired, or dated too far ahead); `r` is zeroed then. */
kw_err kw__record_decode_at(const uint8_t *p, size_t len,
                            uint64_t now_unix_us, kw__record *r);
/* KW_OK if `r` is valid at `now_unix_us`: not expired and dated at most
 * KW_RECORD_MAX_SKEW_US ahead; else KW_ERR_STATE. */
kw_err kw__record_check_time(const kw__record *r, uint64_t now_unix_us);
/* True if `r` is dated more than KW_RECORD_MAX_SKEW_US after `now_unix_us`. */
bool kw__record_from_future(const kw__record *r, uint64_t now_unix_us);

/* The unix time (microseconds) at which `r` expires; saturates. */
uint64_t kw__record_expiry(const kw__record *r);
/* True if `a` supersedes `b`: a strictly later timestamp. */
bool kw__record_newer(const kw__record *a, const kw__record *b);
/* True if `r` has expired at `now_unix_us`. */
bool kw__record_expired(const kw__record *r, uint64_t now_unix_us);

#endif /* KW_CORE_RECORD_H */
