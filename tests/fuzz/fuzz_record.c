/* SPDX-License-Identifier: MIT */
/* Fuzz signed endpoint records. The input is tried twice: as a whole
 * record, and as a record body that the harness signs with a fixed test
 * key (with that key's id written in), so the parser behind the signature
 * check is reached too. Whatever decodes must re-encode to the same bytes,
 * and must go through a lookup store unchanged. */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "core/lookup_store.h"
#include "core/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t sk[KW_SECRET_KEY_LEN], pk[KW_ID_LEN];
static int ready;

static void check(const uint8_t *p, size_t n) {
  kw__record r;
  kw_err e = kw__record_decode(p, n, &r);
  if (e != KW_OK) {
    if (e != KW_ERR_PARSE && e != KW_ERR_KEY_MISMATCH)
      __builtin_trap();
    return;
  }
  if (r.addr.n_addrs > KW_MAX_DIRECT_ADDRS || r.ttl_s == 0 ||
      r.ttl_s > KW_RECORD_MAX_TTL)
    __builtin_trap();
  /* the reader's time check agrees with the decoder at both edges */
  kw__record t;
  if (kw__record_expiry(&r) > r.timestamp_us &&
      (kw__record_decode_at(p, n, r.timestamp_us, &t) != KW_OK ||
      kw__record_decode_at(p, n, kw__record_expiry(&r), &t) != KW_ERR_STATE))
    __builtin_trap();
  if (memcmp(r.addr.id, pk, KW_ID_LEN) == 0) {
    uint8_t out[KW_RECORD_MAX_LEN];
    size_t len;
    if (kw__record_encode(&r, sk, out, sizeof(out), &len) != KW_OK ||
        len != n || memcmp(out, p, n) != 0)
      __builtin_trap();
  }
  kw__lookup_store *s;
  if (kw__lookup_store_new(2, &s) != KW_OK)
    return;
  uint64_t now = r.timestamp_us;
  if (kw__lookup_store_put(s, p, n, now, NULL) == KW_OK) {
    uint8_t out[KW_RECORD_MAX_LEN];
    size_t len;
    if (kw__lookup_store_get(s, r.addr.id, now, out, sizeof(out), &len) !=
            KW_OK ||
        len != n || memcmp(out, p, n) != 0)
      __builtin_trap();
    if (kw__lookup_store_put(s, p, n, now, NULL) != KW_ERR_STATE)
      __builtin_trap();
  }
  kw__lookup_store_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ready) {
    if (sodium_init() < 0)
      return 0;
    uint8_t seed[32];
    memset(seed, 0x42, sizeof(seed));
    crypto_sign_seed_keypair(pk, sk, seed);
    ready = 1;
  }
  check(data, size);
  if (size > KW_RECORD_MAX_LEN - KW_RECORD_SIG_LEN)
    return 0;
  uint8_t rec[KW_RECORD_MAX_LEN];
  memcpy(rec, data, size);
  if (size >= 1 + KW_ID_LEN)
    memcpy(rec + 1, pk, KW_ID_LEN);
  uint8_t msg[16 + KW_RECORD_MAX_LEN];
  memcpy(msg, KW_RECORD_CONTEXT, 16);
  memcpy(msg + 16, rec, size);
  crypto_sign_detached(rec + size, NULL, msg, 16 + size, sk);
  check(rec, size + KW_RECORD_SIG_LEN);
  return 0;
}
