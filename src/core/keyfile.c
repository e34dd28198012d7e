/* SPDX-License-Identifier: MIT */
/* Key file text: format and parse (no file system access here). */
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#include "core/base32.h"
#include "core/keyfile.h"

#define SEED_LEN crypto_sign_SEEDBYTES
#define SEED_TEXTLEN KW__BASE32_LEN(SEED_LEN)
#define HEADER KW__KEYFILE_HEADER
#define TAG_LEN (sizeof(KW__KEYFILE_TAG) - 1)

kw_err kw__keyfile_format(const uint8_t sk[KW_SECRET_KEY_LEN], char *out,
                          size_t outlen) {
  if (!sk || !out)
    return KW_ERR_INVALID_ARG;
  if (outlen <= KW__KEYFILE_TEXTLEN) {
    if (outlen)
      out[0] = '\0';
    return KW_ERR_BUFFER;
  }
  size_t o = 0;
  memcpy(out + o, HEADER, sizeof(HEADER) - 1);
  o += sizeof(HEADER) - 1;
  memcpy(out + o, KW__KEYFILE_TAG " ", TAG_LEN + 1);
  o += TAG_LEN + 1;
  /* libsodium's secret key starts with the 32-byte seed. */
  size_t n = kw__base32_encode(out + o, outlen - o, sk, SEED_LEN);
  if (n != SEED_TEXTLEN) {
    sodium_memzero(out, outlen);
    return KW_ERR_BUFFER;
  }
  o += n;
  out[o++] = '\n';
  out[o] = '\0';
  return KW_OK;
}

static bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

kw_err kw__keyfile_parse(const char *text, size_t len,
                         uint8_t sk[KW_SECRET_KEY_LEN]) {
  if ((!text && len) || !sk)
    return KW_ERR_INVALID_ARG;
  if (len > KW__KEYFILE_MAX || (len && memchr(text, '\0', len)))
    return KW_ERR_KEYFILE;
  uint8_t seed[SEED_LEN];
  bool found = false;
  kw_err err = KW_OK;
  size_t pos = 0;
  while (pos < len) {
    const char *line = text + pos;
    const char *nl = memchr(line, '\n', len - pos);
    size_t ll = nl ? (size_t)(nl - line) : len - pos;
    pos += ll + (nl ? 1 : 0);
    if (nl && ll > 0 && line[ll - 1] == '\r')
      ll--; /* CRLF */
    size_t i = 0;
    while (i < ll && is_blank(line[i]))
      i++;
    if (i == ll || line[i] == '#')
      continue; /* blank or comment */
    if (found || ll != TAG_LEN + 1 + SEED_TEXTLEN ||
        memcmp(line, KW__KEYFILE_TAG " ", TAG_LEN + 1) != 0) {
      err = KW_ERR_KEYFILE;
      break;
    }
    size_t n = 0;
    if (kw__base32_decode(seed, sizeof(seed), &n, line + TAG_LEN + 1,
                          SEED_TEXTLEN) != KW_OK ||
        n != SEED_LEN) {
      err = KW_ERR_KEYFILE;
      break;
    }
    found = true;
  }
  if (!err && !found)
    err = KW_ERR_KEYFILE;
  if (!err) {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    if (sodium_init() < 0 || crypto_sign_seed_keypair(pk, sk, seed) != 0)
      err = KW_ERR_KEYFILE;
  }
  sodium_memzero(seed, sizeof(seed));
  return err;
}
