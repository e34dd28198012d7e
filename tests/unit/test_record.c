/* SPDX-License-Identifier: MIT */
/* Unit tests of core/record: layout, signatures, strictness, expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/record.h"

static uint8_t sk[64], id[32], sk2[64], id2[32];

static int setup(void **state) {
  (void)state;
  if (sodium_init() < 0)
    return -1;
  /* Fixed keys so failures reproduce. */
  uint8_t seed[32];
  memset(seed, 7, sizeof(seed));
  crypto_sign_seed_keypair(id, sk, seed);
  memset(seed, 9, sizeof(seed));
  crypto_sign_seed_keypair(id2, sk2, seed);
  return 0;
}

static kw_sockaddr sa4(uint8_t last, uint16_t port) {
  kw_sockaddr a;
  memset(&a, 0, sizeof(a));
  a.family = 4;
  a.ip[0] = 198;
  a.ip[1] = 18;
  a.ip[3] = last;
  a.port = port;
  return a;
}

static kw_sockaddr sa6(uint8_t last, uint16_t port) {
  kw_sockaddr a;
  memset(&a, 0, sizeof(a));
  a.family = 6;
  a.ip[0] = 0x20;
  a.ip[1] = 0x01;
  a.ip[2] = 0x0d;
  a.ip[3] = 0xb8;
  a.ip[15] = last;
  a.port = port;
  return a;
}

static void base_record(kw__record *r) {
  memset(r, 0, sizeof(*r));
  memcpy(r->addr.id, id, 32);
  strcpy(r->addr.relay_url, "https://relay.test:8443");
  r->addr.n_addrs = 3;
  r->addr.addrs[0] = sa4(1, 4242);
  r->addr.addrs[1] = sa6(2, 4243);
  r->addr.addrs[2] = sa4(3, 65535);
  r->timestamp_us = 1700000000000000ull;
  r->ttl_s = 600;
}

static void assert_record_equal(const kw__record *a, const kw__record *b) {
  assert_memory_equal(a->addr.id, b->addr.id, 32);
  assert_string_equal(a->addr.relay_url, b->addr.relay_url);
  assert_int_equal(a->addr.n_addrs, b->addr.n_addrs);
  for (size_t i = 0; i < a->addr.n_addrs; i++) {
    assert_int_equal(a->addr.addrs[i].family, b->addr.addrs[i].family);
    assert_int_equal(a->addr.addrs[i].port, b->addr.addrs[i].port);
    assert_memory_equal(a->addr.addrs[i].ip, b->addr.addrs[i].ip,
                        a->addr.addrs[i].family == 4 ? 4 : 16);
  }
  assert_true(a->timestamp_us == b->timestamp_us);
  assert_int_equal(a->ttl_s, b->ttl_s);
}

/* Signs an arbitrary body (to make validly signed but malformed records). */
static size_t sign_raw(uint8_t *out, const uint8_t *body, size_t len,
                       const uint8_t *key) {
  uint8_t msg[2048];
  memcpy(msg, "keyway-record-v1", 16);
  memcpy(msg + 16, body, len);
  memmove(out, body, len);
  crypto_sign_detached(out + len, NULL, msg, 16 + len, key);
  return len + 64;
}

static void test_roundtrip_and_layout(void **state) {
  (void)state;
  kw__record r, got;
  base_record(&r);
  uint8_t buf[KW_RECORD_MAX_LEN], again[KW_RECORD_MAX_LEN];
  size_t n, n2;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n), KW_OK);
  size_t ulen = strlen(r.addr.relay_url);
  assert_int_equal(n, 1 + 32 + 8 + 4 + 1 + ulen + 1 + 7 + 19 + 7 + 64);
  assert_int_equal(buf[0], 1);
  assert_memory_equal(buf + 1, id, 32);
  const uint8_t ts[8] = {0x00, 0x06, 0x0a, 0x24, 0x18, 0x1e, 0x40, 0x00};
  assert_memory_equal(buf + 33, ts, 8);
  const uint8_t ttl[4] = {0, 0, 0x02, 0x58};
  assert_memory_equal(buf + 41, ttl, 4);
  assert_int_equal(buf[45], ulen);
  assert_memory_equal(buf + 46, r.addr.relay_url, ulen);
  size_t o = 46 + ulen;
  assert_int_equal(buf[o], 3);
  const uint8_t a0[9] = {4, 198, 18, 0, 1, 0x10, 0x92};
  assert_memory_equal(buf + o + 1, a0, 7);
  assert_int_equal(buf[o + 8], 6);
  /* signature over context || body */
  uint8_t msg[KW_RECORD_MAX_LEN + 16];
  memcpy(msg, "keyway-record-v1", 16);
  memcpy(msg + 16, buf, n - 64);
  assert_int_equal(
      crypto_sign_verify_detached(buf + n - 64, msg, 16 + n - 64, id), 0);

  assert_int_equal(kw__record_decode(buf, n, &got), KW_OK);
  assert_record_equal(&r, &got);
  assert_int_equal(kw__record_encode(&got, sk, again, sizeof(again), &n2),
                   KW_OK);
  assert_int_equal(n, n2);
  assert_memory_equal(buf, again, n);
}

static void test_minimal_and_maximal(void **state) {
  (void)state;
  kw__record r, got;
  uint8_t buf[KW_RECORD_MAX_LEN + 8];
  size_t n;
  memset(&r, 0, sizeof(r));
  memcpy(r.addr.id, id, 32);
  r.ttl_s = 1;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n), KW_OK);
  assert_int_equal(n, 1 + 32 + 8 + 4 + 1 + 1 + 64);
  assert_int_equal(kw__record_decode(buf, n, &got), KW_OK);
  assert_record_equal(&r, &got);
  assert_string_equal(got.addr.relay_url, "");

  memset(r.addr.relay_url, 'u', KW_MAX_RELAY_URL);
  r.addr.relay_url[KW_MAX_RELAY_URL] = 0;
  r.addr.n_addrs = KW_MAX_DIRECT_ADDRS;
  for (size_t i = 0; i < KW_MAX_DIRECT_ADDRS; i++)
    r.addr.addrs[i] = sa6((uint8_t)i, (uint16_t)(1000 + i));
  r.ttl_s = KW_RECORD_MAX_TTL;
  r.timestamp_us = UINT64_MAX;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n), KW_OK);
  assert_int_equal(n, KW_RECORD_MAX_LEN);
  assert_int_equal(kw__record_decode(buf, n, &got), KW_OK);
  assert_record_equal(&r, &got);
  /* too small buffers */
  for (size_t cap = 0; cap < n; cap += 7)
    assert_int_equal(kw__record_encode(&r, sk, buf, cap, &n), KW_ERR_BUFFER);
}

static void test_every_bitflip_rejected(void **state) {
  (void)state;
  kw__record r, got;
  base_record(&r);
  uint8_t buf[KW_RECORD_MAX_LEN], m[KW_RECORD_MAX_LEN];
  size_t n;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n), KW_OK);
  for (size_t i = 0; i < n; i++)
    for (int b = 0; b < 8; b++) {
      memcpy(m, buf, n);
      m[i] ^= (uint8_t)(1u << b);
      kw_err e = kw__record_decode(m, n, &got);
      assert_true(e == KW_ERR_PARSE || e == KW_ERR_KEY_MISMATCH);
    }
}

static void test_truncation_and_trailing(void **state) {
  (void)state;
  kw__record r, got;
  base_record(&r);
  uint8_t buf[KW_RECORD_MAX_LEN + 1];
  size_t n;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n), KW_OK);
  for (size_t i = 0; i < n; i++) {
    kw_err e = kw__record_decode(buf, i, &got);
    assert_true(e == KW_ERR_PARSE || e == KW_ERR_KEY_MISMATCH);
  }
  buf[n] = 0;
  assert_int_equal(kw__record_decode(buf, n + 1, &got), KW_ERR_PARSE);
  assert_int_equal(kw__record_decode(NULL, 0, &got), KW_ERR_PARSE);
  assert_int_equal(kw__record_decode(buf, n, NULL), KW_ERR_INVALID_ARG);
  uint8_t huge[KW_RECORD_MAX_LEN + 1] = {1};
  assert_int_equal(kw__record_decode(huge, sizeof(huge), &got), KW_ERR_PARSE);
}

static void test_signed_but_malformed(void **state) {
  (void)state;
  kw__record r, got;
  base_record(&r);
  uint8_t good[KW_RECORD_MAX_LEN], body[KW_RECORD_MAX_LEN + 64],
      out[KW_RECORD_MAX_LEN + 128];
  size_t n;
  assert_int_equal(kw__record_encode(&r, sk, good, sizeof(good), &n), KW_OK);
  size_t blen = n - 64;
  size_t ulen = strlen(r.addr.relay_url);
  size_t nat = 46 + ulen; /* offset of the address count */
  struct {
    size_t off;
    uint8_t val;
  } muts[] = {
      {0, 2},       /* version */
      {0, 0},       /* version */
      {41, 0},      /* ttl high byte... */
      {nat, 4},     /* more addresses than present */
      {nat, 2},     /* fewer: trailing bytes before the signature */
      {nat, 17},    /* above the limit */
      {nat + 1, 5}, /* family */
      {nat + 1, 0}, /* family */
      {46, ' '},    /* URL byte */
      {47, 0x7f},   /* URL byte */
      {50, 0},      /* NUL inside the URL */
  };
  for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
    memcpy(body, good, blen);
    if (i == 2) {
      memset(body + 41, 0, 4); /* ttl 0 */
    } else {
      body[muts[i].off] = muts[i].val;
    }
    size_t len = sign_raw(out, body, blen, sk);
    assert_int_equal(kw__record_decode(out, len, &got), KW_ERR_PARSE);
  }
  /* ttl above the maximum */
  memcpy(body, good, blen);
  body[41] = 0;
  body[42] = 0x01;
  body[43] = 0x51;
  body[44] = 0x81; /* 86401 */
  size_t len = sign_raw(out, body, blen, sk);
  assert_int_equal(kw__record_decode(out, len, &got), KW_ERR_PARSE);
  body[44] = 0x80; /* 86400 */
  len = sign_raw(out, body, blen, sk);
  assert_int_equal(kw__record_decode(out, len, &got), KW_OK);
  /* port 0 in the first address (offset nat+1+1+4) */
  memcpy(body, good, blen);
  body[nat + 6] = 0;
  body[nat + 7] = 0;
  len = sign_raw(out, body, blen, sk);
  assert_int_equal(kw__record_decode(out, len, &got), KW_ERR_PARSE);
  /* URL length pointing past the end */
  memcpy(body, good, blen);
  body[45] = 255;
  len = sign_raw(out, body, blen, sk);
  assert_int_equal(kw__record_decode(out, len, &got), KW_ERR_PARSE);
}

static void test_wrong_signer(void **state) {
  (void)state;
  kw__record r, got;
  base_record(&r);
  uint8_t buf[KW_RECORD_MAX_LEN], out[KW_RECORD_MAX_LEN];
  size_t n;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n), KW_OK);
  /* the same body signed by another key */
  size_t len = sign_raw(out, buf, n - 64, sk2);
  assert_int_equal(kw__record_decode(out, len, &got), KW_ERR_KEY_MISMATCH);
  /* another key's id with our signature */
  memcpy(buf + 1, id2, 32);
  assert_int_equal(kw__record_decode(buf, n, &got), KW_ERR_KEY_MISMATCH);
  /* a signature without the context string */
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n), KW_OK);
  crypto_sign_detached(buf + n - 64, NULL, buf, n - 64, sk);
  assert_int_equal(kw__record_decode(buf, n, &got), KW_ERR_KEY_MISMATCH);
}

static void test_encode_rejects(void **state) {
  (void)state;
  kw__record r;
  uint8_t buf[KW_RECORD_MAX_LEN];
  size_t n;
  base_record(&r);
  assert_int_equal(kw__record_encode(&r, sk2, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  r.ttl_s = 0;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  r.ttl_s = KW_RECORD_MAX_TTL + 1;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  base_record(&r);
  r.addr.n_addrs = KW_MAX_DIRECT_ADDRS + 1;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  base_record(&r);
  r.addr.addrs[1].family = 0;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  base_record(&r);
  r.addr.addrs[2].port = 0;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  base_record(&r);
  strcpy(r.addr.relay_url, "https://a b");
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  base_record(&r);
  memset(r.addr.relay_url, 'u', sizeof(r.addr.relay_url)); /* no NUL */
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  base_record(&r);
  assert_int_equal(kw__record_encode(NULL, sk, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__record_encode(&r, NULL, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
}

static void test_expiry_and_newer(void **state) {
  (void)state;
  kw__record a, b;
  base_record(&a);
  b = a;
  uint64_t end = a.timestamp_us + 600ull * 1000000ull;
  assert_true(kw__record_expiry(&a) == end);
  assert_false(kw__record_expired(&a, a.timestamp_us));
  assert_false(kw__record_expired(&a, end - 1));
  assert_true(kw__record_expired(&a, end));
  assert_true(kw__record_expired(&a, UINT64_MAX));
  assert_false(kw__record_expired(&a, 0));
  assert_false(kw__record_newer(&a, &b));
  b.timestamp_us++;
  assert_true(kw__record_newer(&b, &a));
  assert_false(kw__record_newer(&a, &b));
  /* saturation */
  a.timestamp_us = UINT64_MAX - 5;
  assert_true(kw__record_expiry(&a) == UINT64_MAX);
  assert_true(kw__record_expired(&a, UINT64_MAX));
  assert_false(kw__record_expired(&a, UINT64_MAX - 1));
}

/* A reader checks a record's time: an expired one (an old record a relay
 * kept or replays) and one dated beyond the skew are refused whole. */
static void test_decode_at_checks_time(void **state) {
  (void)state;
  kw__record r, got;
  base_record(&r);
  uint8_t buf[KW_RECORD_MAX_LEN];
  size_t n;
  assert_int_equal(kw__record_encode(&r, sk, buf, sizeof(buf), &n), KW_OK);
  const uint64_t ts = r.timestamp_us, life = 600ull * 1000000ull;
  /* valid from (ts - skew) to ts + ttl (exclusive) */
  assert_int_equal(kw__record_decode_at(buf, n, ts, &got), KW_OK);
  assert_record_equal(&r, &got);
  assert_int_equal(kw__record_decode_at(buf, n, ts + life - 1, &got), KW_OK);
  assert_int_equal(
      kw__record_decode_at(buf, n, ts - KW_RECORD_MAX_SKEW_US, &got), KW_OK);
  /* expired */
  assert_int_equal(kw__record_decode_at(buf, n, ts + life, &got),
                   KW_ERR_STATE);
  assert_true(got.timestamp_us == 0 && got.addr.n_addrs == 0);
  assert_int_equal(kw__record_decode_at(buf, n, UINT64_MAX, &got),
                   KW_ERR_STATE);
  /* from the future: one microsecond beyond the skew */
  assert_int_equal(
      kw__record_decode_at(buf, n, ts - KW_RECORD_MAX_SKEW_US - 1, &got),
      KW_ERR_STATE);
  assert_true(got.addr.n_addrs == 0);
  assert_int_equal(kw__record_decode_at(buf, n, 0, &got), KW_ERR_STATE);
  /* a signature or format error is still reported as such */
  buf[n - 1] ^= 1;
  assert_int_equal(kw__record_decode_at(buf, n, ts, &got),
                   KW_ERR_KEY_MISMATCH);
  assert_int_equal(kw__record_decode_at(buf, n - 1, ts, &got), KW_ERR_PARSE);
  /* the checks alone */
  assert_int_equal(kw__record_check_time(&r, ts), KW_OK);
  assert_false(kw__record_from_future(&r, ts - KW_RECORD_MAX_SKEW_US));
  assert_true(kw__record_from_future(&r, ts - KW_RECORD_MAX_SKEW_US - 1));
  assert_int_equal(kw__record_check_time(NULL, ts), KW_ERR_INVALID_ARG);
  /* saturation: a record dated at the end of time never wraps */
  r.timestamp_us = UINT64_MAX;
  assert_true(kw__record_from_future(&r, 0));
  assert_false(kw__record_from_future(&r, UINT64_MAX));
  assert_int_equal(kw__record_check_time(&r, UINT64_MAX), KW_ERR_STATE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_and_layout),
      cmocka_unit_test(test_minimal_and_maximal),
      cmocka_unit_test(test_every_bitflip_rejected),
      cmocka_unit_test(test_truncation_and_trailing),
      cmocka_unit_test(test_signed_but_malformed),
      cmocka_unit_test(test_wrong_signer),
      cmocka_unit_test(test_encode_rejects),
      cmocka_unit_test(test_expiry_and_newer),
      cmocka_unit_test(test_decode_at_checks_time),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
