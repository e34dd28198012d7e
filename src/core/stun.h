/* SPDX-License-Identifier: MIT */
/*
 * STUN Binding (RFC 8489) codec, sans-IO: build and parse Binding requests
 * and responses, and answer requests as a server does. Interoperable with
 * standard STUN clients and servers; no authentication (no
 * MESSAGE-INTEGRITY is produced or checked; received ones are skipped).
 *
 * Every parser takes untrusted bytes, walks attributes through kw__rbuf and
 * never reads past `len`. A present FINGERPRINT is always verified.
 */
#ifndef KW_CORE_STUN_H
#define KW_CORE_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define KW_STUN_HEADER_LEN 20
#define KW_STUN_TXID_LEN 12
#define KW_STUN_MAGIC 0x2112A442u
#define KW_STUN_FINGERPRINT_XOR 0x5354554eu

/* Message types (method Binding with its four classes). */
#define KW_STUN_BINDING_REQUEST 0x0001
#define KW_STUN_BINDING_INDICATION 0x0011
#define KW_STUN_BINDING_SUCCESS 0x0101
#define KW_STUN_BINDING_ERROR 0x0111

/* Classes as returned in kw__stun_msg.cls. */
#define KW_STUN_CLASS_REQUEST 0
#define KW_STUN_CLASS_INDICATION 1
#define KW_STUN_CLASS_SUCCESS 2
#define KW_STUN_CLASS_ERROR 3

/* Attribute types keyway knows. */
#define KW_STUN_ATTR_MAPPED_ADDRESS 0x0001
#define KW_STUN_ATTR_USERNAME 0x0006
#define KW_STUN_ATTR_MESSAGE_INTEGRITY 0x0008
#define KW_STUN_ATTR_ERROR_CODE 0x0009
#define KW_STUN_ATTR_UNKNOWN_ATTRIBUTES 0x000A
#define KW_STUN_ATTR_REALM 0x0014
#define KW_STUN_ATTR_NONCE 0x0015
#define KW_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 0x001C
#define KW_STUN_ATTR_PASSWORD_ALGORITHM 0x001D
#define KW_STUN_ATTR_USERHASH 0x001E
#define KW_STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020
#define KW_STUN_ATTR_PRIORITY 0x0024      /* ICE (RFC 8445) */
#define KW_STUN_ATTR_USE_CANDIDATE 0x0025 /* ICE */
#define KW_STUN_ATTR_SOFTWARE 0x8022
#define KW_STUN_ATTR_FINGERPRINT 0x8028

/* At most this many distinct unknown comprehension-required attributes are
 * remembered (and listed in a 420 answer); further ones are still refused. */
#define KW_STUN_MAX_UNKNOWN 8
/* Longest SOFTWARE value keyway writes (RFC 8489 allows up to 763 bytes). */
#define KW_STUN_MAX_SOFTWARE 128
/* Largest message the builders here produce: header, error code with
 * reason, unknown-attributes list, software, fingerprint. Buffers of this
 * size always suffice. */
#define KW_STUN_MAX_BUILD 512

/* A parsed STUN message. Pointers point into the parsed input. */
typedef struct kw__stun_msg {
  uint16_t type;   /* raw message type */
  uint16_t method; /* 12-bit method, 1 = Binding */
  uint8_t cls;     /* KW_STUN_CLASS_* */
  uint8_t txid[KW_STUN_TXID_LEN];
  bool has_fingerprint;    /* present (and verified) */
  bool has_integrity;      /* MESSAGE-INTEGRITY(-SHA256) present, unchecked */
  kw_sockaddr mapped;      /* XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS; family 0
                              if neither */
  bool mapped_xor;         /* mapped came from XOR-MAPPED-ADDRESS */
  uint16_t error_code;     /* ERROR-CODE (300..699), 0 if absent */
  const uint8_t *software; /* SOFTWARE value, NULL if absent */
  size_t software_len;
  size_t n_unknown; /* unknown comprehension-required attributes */
  uint16_t unknown[KW_STUN_MAX_UNKNOWN];
} kw__stun_msg;

/* Cheap demultiplexing check: len >= 20, top two bits of byte 0 clear,
 * magic cookie at offset 4, length field a multiple of 4 equal to len-20. */
bool kw__stun_is(const uint8_t *p, size_t len);

/* CRC-32 (ISO-HDLC, as used by FINGERPRINT before the XOR). */
uint32_t kw__stun_crc32(const uint8_t *p, size_t len);

/* Parses any STUN message strictly. Errors: KW_ERR_PARSE (not STUN per
 * kw__stun_is, truncated attribute or padding, FINGERPRINT not last, of the
 * wrong length or wrong value, an address attribute with an unknown family
 * or a length that does not fit its family, a malformed ERROR-CODE or
 * UNKNOWN-ATTRIBUTES). Unknown comprehension-required attributes are not an
 * error here: they are listed in m->unknown. On KW_ERR_PARSE, if the header
 * was valid, m->type and m->txid are still filled (a server may answer 400)
 * and m->has_fingerprint tells whether a fingerprint mismatch was the cause
 * (then the message must be dropped silently). */
kw_err kw__stun_parse(const uint8_t *p, size_t len, kw__stun_msg *m);

/* Writes a Binding request with transaction id `txid`, optionally a SOFTWARE
 * attribute (NULL for none; at most KW_STUN_MAX_SOFTWARE bytes) and a
 * FINGERPRINT. Errors: KW_ERR_INVALID_ARG, KW_ERR_BUFFER. */
kw_err kw__stun_build_request(uint8_t *out, size_t cap, size_t *outlen,
                              const uint8_t txid[KW_STUN_TXID_LEN],
                              const char *software, bool fingerprint);

/* Parses a Binding success response to our request `txid` (NULL: any) and
 * returns the reflexive address in m->mapped. Errors: KW_ERR_PARSE
 * (malformed, not a Binding response, no usable address, or an unknown
 * comprehension-required attribute, which RFC 8489 makes a failed
 * transaction), KW_ERR_NOT_FOUND (another transaction id), KW_ERR_PEER (a
 * Binding error response; m->error_code holds the code). */
kw_err kw__stun_parse_response(const uint8_t *p, size_t len,
                               const uint8_t *txid, kw__stun_msg *m);

/* Parses a Binding request. KW_OK means a well-formed Binding request;
 * m->n_unknown > 0 then means it must be answered with 420. Errors:
 * KW_ERR_PARSE (malformed or not a Binding request). */
kw_err kw__stun_parse_request(const uint8_t *p, size_t len, kw__stun_msg *m);

/* Writes a Binding success response carrying XOR-MAPPED-ADDRESS `mapped`,
 * SOFTWARE (NULL: none) and FINGERPRINT. Errors: KW_ERR_INVALID_ARG (bad
 * family), KW_ERR_BUFFER. */
kw_err kw__stun_build_success(uint8_t *out, size_t cap, size_t *outlen,
                              const uint8_t txid[KW_STUN_TXID_LEN],
                              const kw_sockaddr *mapped, const char *software);

/* Writes a Binding error response with ERROR-CODE `code` (300..699) and
 * `reason` (NULL: the standard phrase; at most 128 bytes), UNKNOWN-ATTRIBUTES
 * listing `unknown` when n_unknown > 0, SOFTWARE and FINGERPRINT.
 * Errors: KW_ERR_INVALID_ARG, KW_ERR_BUFFER. */
kw_err kw__stun_build_error(uint8_t *out, size_t cap, size_t *outlen,
                            const uint8_t txid[KW_STUN_TXID_LEN], uint16_t code,
                            const char *reason, const uint16_t *unknown,
                            size_t n_unknown, const char *software);

/* Server side in one call: answers the datagram `req` received from `from`.
 * KW_OK with *outlen > 0: send out[0..*outlen) back; *code (if not NULL) is
 * 0 for a success answer, 400 (malformed request) or 420 (unknown
 * comprehension-required attributes) for an error answer. KW_ERR_PARSE:
 * drop silently (not STUN, bad fingerprint, not a request), *outlen = 0.
 * Other errors: KW_ERR_INVALID_ARG, KW_ERR_BUFFER (give KW_STUN_MAX_BUILD
 * bytes). */
kw_err kw__stun_serve(const uint8_t *req, size_t len, const kw_sockaddr *from,
                      const char *software, uint8_t *out, size_t cap,
                      size_t *outlen, uint16_t *code);

#endif /* KW_CORE_STUN_H */
