/* SPDX-License-Identifier: MIT */
/*
 * BEP 44 mutable items (docs/protocol/dht.md section 2): the Ed25519
 * signature over the bencoded "4:salt<len>:<salt>" (only with a salt)
 * "3:seqi<seq>e1:v" <bencoded v>, and the item's target, SHA-1(k || salt).
 *
 * Core has no SHA-1: the caller passes one (kw__sha1_fn); keyway-relay
 * gives GnuTLS's.
 */
#ifndef KW_CORE_BEP44_H
#define KW_CORE_BEP44_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/krpc.h"
#include "keyway.h"

#define KW_BEP44_SIG_LEN 64
/* the signed buffer: salt (8 + 64), seq (6 + 20 + 1), "1:v", v */
#define KW_BEP44_SIGNABLE_MAX (8 + KW_KRPC_MAX_SALT + 27 + 3 + KW_KRPC_MAX_V)

/* SHA-1 of p[0..n) into out. */
typedef void (*kw__sha1_fn)(void *ctx, const void *p, size_t n,
                            uint8_t out[20]);

/* Writes the signed buffer; returns its length, or 0 if out is too small
 * or the arguments are out of range (seq < 0, v empty or above
 * KW_KRPC_MAX_V, salt above KW_KRPC_MAX_SALT). */
size_t kw__bep44_signable(const uint8_t *salt, size_t salt_len, int64_t seq,
                          const uint8_t *v, size_t v_len, uint8_t *out,
                          size_t cap);
/* Signs with sk (libsodium layout: seed || public key). Errors:
 * KW_ERR_INVALID_ARG. */
kw_err kw__bep44_sign(const uint8_t sk[64], const uint8_t *salt,
                      size_t salt_len, int64_t seq, const uint8_t *v,
                      size_t v_len, uint8_t sig[KW_BEP44_SIG_LEN]);
bool kw__bep44_verify(const uint8_t k[32], const uint8_t *salt,
                      size_t salt_len, int64_t seq, const uint8_t *v,
                      size_t v_len, const uint8_t sig[KW_BEP44_SIG_LEN]);
/* target = SHA-1(k || salt) */
void kw__bep44_target(kw__sha1_fn sha1, void *ctx, const uint8_t k[32],
                      const uint8_t *salt, size_t salt_len,
                      uint8_t target[20]);

#endif /* KW_CORE_BEP44_H */
