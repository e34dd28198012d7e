/* SPDX-License-Identifier: MIT */
/* BEP 44 signatures and targets. See bep44.h. */
#include "core/bep44.h"

#include <string.h>

#include <sodium.h>

#include "core/bencode.h"

size_t kw__bep44_signable(const uint8_t *salt, size_t salt_len, int64_t seq,
                          const uint8_t *v, size_t v_len, uint8_t *out,
                          size_t cap) {
  if (seq < 0 || !v || v_len == 0 || v_len > KW_KRPC_MAX_V ||
      salt_len > KW_KRPC_MAX_SALT || (salt_len && !salt))
    return 0;
  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  if (salt_len) {
    kw__be_cstr(&w, "salt");
    kw__be_str(&w, salt, salt_len);
  }
  kw__be_cstr(&w, "seq");
  kw__be_int(&w, seq);
  kw__be_cstr(&w, "v");
  kw__wbuf_bytes(&w, v, v_len);
  return w.err ? 0 : w.off;
}

kw_err kw__bep44_sign(const uint8_t sk[64], const uint8_t *salt,
                      size_t salt_len, int64_t seq, const uint8_t *v,
                      size_t v_len, uint8_t sig[KW_BEP44_SIG_LEN]) {
  uint8_t buf[KW_BEP44_SIGNABLE_MAX];
  size_t n = kw__bep44_signable(salt, salt_len, seq, v, v_len, buf, sizeof buf);
  if (!sk || !sig || n == 0)
    return KW_ERR_INVALID_ARG;
  crypto_sign_detached(sig, NULL, buf, n, sk);
  return KW_OK;
}

bool kw__bep44_verify(const uint8_t k[32], const uint8_t *salt,
                      size_t salt_len, int64_t seq, const uint8_t *v,
                      size_t v_len, const uint8_t sig[KW_BEP44_SIG_LEN]) {
  uint8_t buf[KW_BEP44_SIGNABLE_MAX];
  size_t n = kw__bep44_signable(salt, salt_len, seq, v, v_len, buf, sizeof buf);
  if (!k || !sig || n == 0)
    return false;
  return crypto_sign_verify_detached(sig, buf, n, k) == 0;
}

void kw__bep44_target(kw__sha1_fn sha1, void *ctx, const uint8_t k[32],
                      const uint8_t *salt, size_t salt_len,
                      uint8_t target[20]) {
  uint8_t buf[32 + KW_KRPC_MAX_SALT];
  if (salt_len > KW_KRPC_MAX_SALT)
    salt_len = KW_KRPC_MAX_SALT;
  memcpy(buf, k, 32);
  if (salt_len)
    memcpy(buf + 32, salt, salt_len);
  sha1(ctx, buf, 32 + salt_len, target);
}
