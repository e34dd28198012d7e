/* SPDX-License-Identifier: MIT */
/* RFC 4648 base32, lowercase, no padding. */
#include "core/base32.h"

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

size_t kw__base32_encode(char *out, size_t outlen, const uint8_t *in,
                         size_t inlen) {
  if (!out || outlen == 0)
    return 0;
  out[0] = '\0';
  if (inlen && !in)
    return 0;
  if (inlen > (SIZE_MAX - 4) / 8)
    return 0;
  size_t need = KW__BASE32_LEN(inlen);
  if (need >= outlen)
    return 0;
  size_t o = 0;
  uint32_t acc = 0;
  unsigned bits = 0;
  for (size_t i = 0; i < inlen; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out[o++] = alphabet[(acc >> bits) & 31];
    }
  }
  if (bits > 0)
    out[o++] = alphabet[(acc << (5 - bits)) & 31];
  out[o] = '\0';
  return o;
}

/* Value of one base32 character, or -1. */
static int char_value(char c) {
  if (c >= 'a' && c <= 'z')
    return c - 'a';
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= '2' && c <= '7')
    return c - '2' + 26;
  return -1;
}

kw_err kw__base32_decode(uint8_t *out, size_t outcap, size_t *outlen,
                         const char *in, size_t inlen) {
  if (!outlen || (inlen && !in) || (outcap && !out))
    return KW_ERR_INVALID_ARG;
  *outlen = 0;
  /* Valid unpadded lengths leave 0, 2, 4, 5 or 7 characters in the last
   * group of 8; 1, 3 and 6 cannot come from whole bytes. */
  size_t rem = inlen % 8;
  if (rem == 1 || rem == 3 || rem == 6)
    return KW_ERR_PARSE;
  uint32_t acc = 0;
  unsigned bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < inlen; i++) {
    int v = char_value(in[i]);
    if (v < 0)
      return KW_ERR_PARSE;
    acc = ((acc << 5) | (uint32_t)v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      if (o < outcap)
        out[o] = (uint8_t)(acc >> bits);
      o++;
    }
  }
  /* The leftover bits must be zero, or the text is not canonical. */
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
    return KW_ERR_PARSE;
  if (o > outcap)
    return KW_ERR_BUFFER;
  *outlen = o;
  return KW_OK;
}
