/* SPDX-License-Identifier: MIT */
/*
 * RFC 4648 base32 (alphabet A-Z 2-7), written lowercase without padding.
 * Used for endpoint ids, tickets and key files.
 */
#ifndef KW_CORE_BASE32_H
#define KW_CORE_BASE32_H

#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

/* Characters needed to encode n bytes (without NUL). */
#define KW__BASE32_LEN(n) (((n)*8 + 4) / 5)

/* Encodes `in` into `out` lowercase without padding and NUL-terminates.
 * Returns the characters written (without NUL), or 0 if `out` is too small
 * (then `out` is left as the empty string when outlen > 0). */
size_t kw__base32_encode(char *out, size_t outlen, const uint8_t *in,
                         size_t inlen);

/* Decodes `inlen` characters of `in` (either case) into `out`. Rejects
 * padding, characters outside the alphabet, impossible lengths and non-zero
 * trailing bits with KW_ERR_PARSE; KW_ERR_BUFFER if `outcap` is too small.
 * `*outlen` receives the decoded length on success. */
kw_err kw__base32_decode(uint8_t *out, size_t outcap, size_t *outlen,
                         const char *in, size_t inlen);

#endif /* KW_CORE_BASE32_H */
