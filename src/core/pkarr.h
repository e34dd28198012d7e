/* SPDX-License-Identifier: MIT */
/*
 * Endpoint records on the Mainline DHT, encoded as pkarr does
 * (docs/protocol/dht.md section 1): the BEP 44 value is a bencoded string
 * holding a DNS packet (RFC 1035) of TXT records named
 * `_keyway.<z-base32 id>`, one character-string each:
 *
 *   sig=<base64url, no padding, of the keyway record's signature>
 *   relay=<home relay URL>          (if any)
 *   addr=<ip:port>                  (0..KW_MAX_DIRECT_ADDRS, in order)
 *
 * all with the record's TTL; seq = the record's timestamp (unix
 * microseconds, as pkarr's). The keyway record (record.h) is rebuilt from
 * these fields and its signature, so a relay serves the same verifiable
 * bytes for an id whether the endpoint PUT them or they came off the DHT.
 *
 * The DNS message codec is core/dns.h (strict, bounded, backward-only
 * name compression). Records of other names or types are ignored; of
 * ours, strings without '=' and unknown keys are ignored.
 *
 * The body of `PUT /pkarr/<id>` is pkarr's relay format: sig 64 (BEP 44)
 * | seq u64 big-endian | the DNS packet.
 */
#ifndef KW_CORE_PKARR_H
#define KW_CORE_PKARR_H

#include <stddef.h>
#include <stdint.h>

#include "core/record.h"
#include "keyway.h"

#define KW_PKARR_LABEL "_keyway"
#define KW_PKARR_MAX_PACKET 995 /* "995:" + 995 bytes = 999 bencoded */
#define KW_PKARR_MAX_BODY (64 + 8 + KW_PKARR_MAX_PACKET)
#define KW_PKARR_Z32_LEN 52

/* z-base32 of an id (52 characters and a NUL). */
void kw__pkarr_z32(const uint8_t id[KW_ID_LEN], char out[KW_PKARR_Z32_LEN + 1]);

/* The DNS packet of record `rec` (its encoded, signed bytes). Errors:
 * KW_ERR_PARSE (rec does not decode), KW_ERR_BUFFER (above cap or
 * KW_PKARR_MAX_PACKET: drop addresses). */
kw_err kw__pkarr_packet(const uint8_t *rec, size_t rec_len, uint8_t *out,
                        size_t cap, size_t *outlen);
/* Rebuilds and verifies the keyway record of `id` from a DNS packet and
 * the item's seq. Errors: KW_ERR_PARSE (malformed packet, no sig, fields
 * a record cannot hold), KW_ERR_KEY_MISMATCH (the record signature does
 * not verify), KW_ERR_BUFFER. `r` (optional) gets the record. */
kw_err kw__pkarr_record(const uint8_t *packet, size_t len,
                        const uint8_t id[KW_ID_LEN], int64_t seq,
                        uint8_t *rec, size_t cap, size_t *rec_len,
                        kw__record *r);

/* The BEP 44 value of a packet: its bencoded string. Returns the length
 * written, 0 if it does not fit. */
size_t kw__pkarr_value(const uint8_t *packet, size_t len, uint8_t *out,
                       size_t cap);

/* The PUT /pkarr/<id> body for record `rec`, signed (BEP 44) with sk, the
 * record's own key. Errors: those of kw__pkarr_packet, KW_ERR_INVALID_ARG. */
kw_err kw__pkarr_body(const uint8_t *rec, size_t rec_len,
                      const uint8_t sk[KW_SECRET_KEY_LEN], uint8_t *out,
                      size_t cap, size_t *outlen);

typedef struct kw__pkarr_item {
  uint8_t sig[64];
  int64_t seq;
  uint8_t v[KW_PKARR_MAX_PACKET + 8]; /* the bencoded value */
  size_t v_len;
  const uint8_t *packet; /* into the body */
  size_t packet_len;
} kw__pkarr_item;

/* Splits a PUT /pkarr/<id> body and verifies its BEP 44 signature by
 * `id`. Errors: KW_ERR_PARSE (too short or long, seq above INT64_MAX),
 * KW_ERR_KEY_MISMATCH (signature). */
kw_err kw__pkarr_body_open(const uint8_t *body, size_t len,
                           const uint8_t id[KW_ID_LEN], kw__pkarr_item *it);

#endif /* KW_CORE_PKARR_H */
