/* SPDX-License-Identifier: MIT */
/* Signed endpoint records. See record.h. */
#include "core/record.h"

#include <string.h>

#include <sodium.h>

#include "core/buf.h"

#define CTX_LEN (sizeof(KW_RECORD_CONTEXT) - 1)

static bool url_char_ok(uint8_t c) {
  return c > 0x20 && c < 0x7F;
}

/* Ed25519 over context || body, without copying the body twice. */
static void sign_body(const uint8_t *body, size_t len,
                      const uint8_t sk[KW_SECRET_KEY_LEN],
                      uint8_t sig[KW_RECORD_SIG_LEN]) {
  uint8_t msg[CTX_LEN + KW_RECORD_MAX_LEN];
  memcpy(msg, KW_RECORD_CONTEXT, CTX_LEN);
  memcpy(msg + CTX_LEN, body, len);
  crypto_sign_detached(sig, NULL, msg, CTX_LEN + len, sk);
}

static bool verify_body(const uint8_t *body, size_t len,
                        const uint8_t id[KW_ID_LEN],
                        const uint8_t sig[KW_RECORD_SIG_LEN]) {
  uint8_t msg[CTX_LEN + KW_RECORD_MAX_LEN];
  memcpy(msg, KW_RECORD_CONTEXT, CTX_LEN);
  memcpy(msg + CTX_LEN, body, len);
  return crypto_sign_verify_detached(sig, msg, CTX_LEN + len, id) == 0;
}

/* Writes the record, signed with sk, or else ending in given_sig. */
static kw_err write_record(const kw__record *r, const uint8_t *sk,
                           const uint8_t *given_sig, uint8_t *out, size_t cap,
                           size_t *outlen) {
  if (!r || !outlen || (!out && cap))
    return KW_ERR_INVALID_ARG;
  /* libsodium's secret key ends with the public key. */
  if (sk && sodium_memcmp(sk + 32, r->addr.id, KW_ID_LEN) != 0)
    return KW_ERR_INVALID_ARG;
  if (r->ttl_s == 0 || r->ttl_s > KW_RECORD_MAX_TTL ||
      r->addr.n_addrs > KW_MAX_DIRECT_ADDRS)
    return KW_ERR_INVALID_ARG;
  size_t ulen = strnlen(r->addr.relay_url, sizeof(r->addr.relay_url));
  if (ulen > KW_MAX_RELAY_URL)
    return KW_ERR_INVALID_ARG;
  for (size_t i = 0; i < ulen; i++)
    if (!url_char_ok((uint8_t)r->addr.relay_url[i]))
      return KW_ERR_INVALID_ARG;
  for (size_t i = 0; i < r->addr.n_addrs; i++) {
    const kw_sockaddr *a = &r->addr.addrs[i];
    if ((a->family != 4 && a->family != 6) || a->port == 0)
      return KW_ERR_INVALID_ARG;
  }

  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  kw__wbuf_u8(&w, KW_RECORD_VERSION);
  kw__wbuf_bytes(&w, r->addr.id, KW_ID_LEN);
  kw__wbuf_u64(&w, r->timestamp_us);
  kw__wbuf_u32(&w, r->ttl_s);
  kw__wbuf_u8(&w, (uint8_t)ulen);
  kw__wbuf_bytes(&w, r->addr.relay_url, ulen);
  kw__wbuf_u8(&w, (uint8_t)r->addr.n_addrs);
  for (size_t i = 0; i < r->addr.n_addrs; i++) {
    const kw_sockaddr *a = &r->addr.addrs[i];
    kw__wbuf_u8(&w, a->family);
    kw__wbuf_bytes(&w, a->ip, a->family == 4 ? 4 : 16);
    kw__wbuf_u16(&w, a->port);
  }
  uint8_t *sig = kw__wbuf_reserve(&w, KW_RECORD_SIG_LEN);
  if (w.err)
    return KW_ERR_BUFFER;
  if (sk)
    sign_body(out, w.off - KW_RECORD_SIG_LEN, sk, sig);
  else
    memcpy(sig, given_sig, KW_RECORD_SIG_LEN);
  *outlen = w.off;
  return KW_OK;
}

kw_err kw__record_encode(const kw__record *r,
                         const uint8_t sk[KW_SECRET_KEY_LEN], uint8_t *out,
                         size_t cap, size_t *outlen) {
  if (!sk)
    return KW_ERR_INVALID_ARG;
  return write_record(r, sk, NULL, out, cap, outlen);
}

kw_err kw__record_assemble(const kw__record *r,
                           const uint8_t sig[KW_RECORD_SIG_LEN], uint8_t *out,
                           size_t cap, size_t *outlen) {
  if (!sig)
    return KW_ERR_INVALID_ARG;
  return write_record(r, NULL, sig, out, cap, outlen);
}

kw_err kw__record_decode(const uint8_t *p, size_t len, kw__record *r) {
  if (!r || (!p && len))
    return KW_ERR_INVALID_ARG;
  memset(r, 0, sizeof(*r));
  if (len > KW_RECORD_MAX_LEN)
    return KW_ERR_PARSE;
  kw__rbuf b;
  kw__rbuf_init(&b, p, len);
  if (kw__rbuf_u8(&b) != KW_RECORD_VERSION)
    return KW_ERR_PARSE;
  kw__rbuf_copy(&b, r->addr.id, KW_ID_LEN);
  r->timestamp_us = kw__rbuf_u64(&b);
  r->ttl_s = kw__rbuf_u32(&b);
  if (b.err || r->ttl_s == 0 || r->ttl_s > KW_RECORD_MAX_TTL)
    return KW_ERR_PARSE;
  uint8_t ulen = kw__rbuf_u8(&b);
  const uint8_t *url = kw__rbuf_take(&b, ulen);
  if (!url && ulen)
    return KW_ERR_PARSE;
  for (size_t i = 0; i < ulen; i++)
    if (!url_char_ok(url[i]))
      return KW_ERR_PARSE;
  if (ulen)
    memcpy(r->addr.relay_url, url, ulen);
  r->addr.relay_url[ulen] = '\0';
  uint8_t n = kw__rbuf_u8(&b);
  if (b.err || n > KW_MAX_DIRECT_ADDRS)
    return KW_ERR_PARSE;
  for (size_t i = 0; i < n; i++) {
    kw_sockaddr *a = &r->addr.addrs[i];
    a->family = kw__rbuf_u8(&b);
    if (a->family != 4 && a->family != 6)
      return KW_ERR_PARSE;
    kw__rbuf_copy(&b, a->ip, a->family == 4 ? 4 : 16);
    a->port = kw__rbuf_u16(&b);
    if (b.err || a->port == 0)
      return KW_ERR_PARSE;
  }
  r->addr.n_addrs = n;
  size_t body = b.off;
  const uint8_t *sig = kw__rbuf_take(&b, KW_RECORD_SIG_LEN);
  if (!sig || kw__rbuf_left(&b) != 0)
    return KW_ERR_PARSE;
  if (!verify_body(p, body, r->addr.id, sig))
    return KW_ERR_KEY_MISMATCH;
  return KW_OK;
}

uint64_t kw__record_expiry(const kw__record *r) {
  uint64_t life = (uint64_t)r->ttl_s * 1000000u;
  return r->timestamp_us > UINT64_MAX - life ? UINT64_MAX
                                             : r->timestamp_us + life;
}

bool kw__record_newer(const kw__record *a, const kw__record *b) {
  return a->timestamp_us > b->timestamp_us;
}

bool kw__record_expired(const kw__record *r, uint64_t now_unix_us) {
  return now_unix_us >= kw__record_expiry(r);
}

bool kw__record_from_future(const kw__record *r, uint64_t now_unix_us) {
  return r->timestamp_us > now_unix_us &&
         r->timestamp_us - now_unix_us > KW_RECORD_MAX_SKEW_US;
}

kw_err kw__record_check_time(const kw__record *r, uint64_t now_unix_us) {
  if (!r)
    return KW_ERR_INVALID_ARG;
  if (kw__record_expired(r, now_unix_us) ||
      kw__record_from_future(r, now_unix_us))
    return KW_ERR_STATE;
  return KW_OK;
}

kw_err kw__record_decode_at(const uint8_t *p, size_t len,
                            uint64_t now_unix_us, kw__record *r) {
  kw_err e = kw__record_decode(p, len, r);
  if (e != KW_OK)
    return e;
  e = kw__record_check_time(r, now_unix_us);
  if (e != KW_OK)
    memset(r, 0, sizeof(*r));
  return e;
}
