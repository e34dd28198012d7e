/* SPDX-License-Identifier: MIT */
/* Ed25519 key pairs and endpoint ids in their text forms. */
#include <sodium.h>
#include <string.h>

#include "keyway.h"
#include "core/base32.h"

kw_err kw_key_generate(uint8_t sk[KW_SECRET_KEY_LEN]) {
  if (!sk)
    return KW_ERR_INVALID_ARG;
  if (sodium_init() < 0)
    return KW_ERR_UNSUPPORTED;
  uint8_t pk[crypto_sign_PUBLICKEYBYTES];
  if (crypto_sign_keypair(pk, sk) != 0)
    return KW_ERR_UNSUPPORTED;
  return KW_OK;
}

kw_err kw_key_id(const uint8_t sk[KW_SECRET_KEY_LEN], uint8_t id[KW_ID_LEN]) {
  if (!sk || !id)
    return KW_ERR_INVALID_ARG;
  /* libsodium's secret key is seed || public key. */
  if (crypto_sign_ed25519_sk_to_pk(id, sk) != 0)
    return KW_ERR_INVALID_ARG;
  return KW_OK;
}

kw_err kw_id_to_string(const uint8_t id[KW_ID_LEN], char *out, size_t outlen) {
  if (!id || !out)
    return KW_ERR_INVALID_ARG;
  if (outlen < KW_ID_STRLEN + 1) {
    if (outlen)
      out[0] = '\0';
    return KW_ERR_BUFFER;
  }
  if (kw__base32_encode(out, outlen, id, KW_ID_LEN) != KW_ID_STRLEN)
    return KW_ERR_BUFFER;
  return KW_OK;
}

kw_err kw_id_to_short(const uint8_t id[KW_ID_LEN], char *out, size_t outlen) {
  if (!id || !out)
    return KW_ERR_INVALID_ARG;
  if (outlen < KW_ID_SHORTLEN + 1) {
    if (outlen)
      out[0] = '\0';
    return KW_ERR_BUFFER;
  }
  char full[KW_ID_STRLEN + 1];
  kw_err err = kw_id_to_string(id, full, sizeof(full));
  if (err)
    return err;
  memcpy(out, full, KW_ID_SHORTLEN);
  out[KW_ID_SHORTLEN] = '\0';
  return KW_OK;
}

kw_err kw_id_from_string(const char *s, uint8_t id[KW_ID_LEN]) {
  if (!s || !id)
    return KW_ERR_INVALID_ARG;
  /* strnlen: never read further than one character past a valid id. */
  if (strnlen(s, KW_ID_STRLEN + 1) != KW_ID_STRLEN)
    return KW_ERR_BAD_ID;
  uint8_t tmp[KW_ID_LEN];
  size_t n = 0;
  if (kw__base32_decode(tmp, sizeof(tmp), &n, s, KW_ID_STRLEN) != KW_OK ||
      n != KW_ID_LEN)
    return KW_ERR_BAD_ID;
  if (sodium_init() < 0)
    return KW_ERR_UNSUPPORTED;
  if (!crypto_core_ed25519_is_valid_point(tmp))
    return KW_ERR_BAD_ID;
  memcpy(id, tmp, KW_ID_LEN);
  return KW_OK;
}
