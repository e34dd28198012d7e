/* SPDX-License-Identifier: MIT */
/* Fuzz kw__keyfile_parse: an accepted key file formats and parses back to
 * the same secret key, whose public half matches its seed. */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "keyway.h"
#include "core/keyfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t sk[KW_SECRET_KEY_LEN], back[KW_SECRET_KEY_LEN];
  kw_err err = kw__keyfile_parse((const char *)data, size, sk);
  if (err != KW_OK) {
    if (err != KW_ERR_KEYFILE)
      __builtin_trap();
    return 0;
  }
  char text[KW__KEYFILE_TEXTLEN + 1];
  if (kw__keyfile_format(sk, text, sizeof(text)) != KW_OK)
    __builtin_trap();
  if (kw__keyfile_parse(text, strlen(text), back) != KW_OK ||
      memcmp(sk, back, sizeof(sk)) != 0)
    __builtin_trap();
  uint8_t pk[32], sk2[64];
  crypto_sign_seed_keypair(pk, sk2, sk);
  if (memcmp(pk, sk + 32, 32) != 0)
    __builtin_trap();
  return 0;
}
