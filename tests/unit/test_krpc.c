/* SPDX-License-Identifier: MIT */
/* Unit tests of core/krpc and core/bep44: message round trips, strict
 * fields, the BEP 44 signed buffer (its test vector) and signatures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/bep44.h"
#include "core/krpc.h"

static void round_trip(void **state) {
  (void)state;
  kw__krpc_msg m, d;
  memset(&m, 0, sizeof m);
  memcpy(m.t, "aa", 2);
  m.tlen = 2;
  m.y = 'q';
  m.q = KW_KRPC_PUT;
  m.has_id = m.has_k = m.has_sig = m.has_seq = m.has_cas = true;
  memset(m.id, 1, 20);
  memset(m.k, 2, 32);
  memset(m.sig, 3, 64);
  m.seq = 1700000000000000;
  m.cas = 5;
  m.token = (const uint8_t *)"tok";
  m.token_len = 3;
  m.salt = (const uint8_t *)"s";
  m.salt_len = 1;
  m.v = (const uint8_t *)"5:hello";
  m.v_len = 7;
  uint8_t buf[KW_KRPC_MAX_MSG];
  size_t n;
  assert_int_equal(kw__krpc_encode(&m, buf, sizeof buf, &n), KW_OK);
  assert_int_equal(kw__krpc_decode(buf, n, &d), KW_OK);
  assert_int_equal(d.y, 'q');
  assert_int_equal(d.q, KW_KRPC_PUT);
  assert_true(d.has_k && d.has_sig && d.has_seq && d.has_cas);
  assert_true(d.seq == m.seq);
  assert_int_equal(d.cas, 5);
  assert_int_equal(d.v_len, 7);
  assert_memory_equal(d.v, "5:hello", 7);
  assert_memory_equal(d.token, "tok", 3);
  assert_memory_equal(d.salt, "s", 1);
  /* an error */
  memset(&m, 0, sizeof m);
  memcpy(m.t, "x", 1);
  m.tlen = 1;
  m.y = 'e';
  m.err_code = 302;
  m.err_msg = (const uint8_t *)"old";
  m.err_len = 3;
  assert_int_equal(kw__krpc_encode(&m, buf, sizeof buf, &n), KW_OK);
  assert_memory_equal(buf, "d1:eli302e3:olde1:t1:x1:y1:ee", n);
  assert_int_equal(kw__krpc_decode(buf, n, &d), KW_OK);
  assert_int_equal(d.err_code, 302);
}

static kw_err dec(const char *s, kw__krpc_msg *m) {
  return kw__krpc_decode((const uint8_t *)s, strlen(s), m);
}

static void strict(void **state) {
  (void)state;
  kw__krpc_msg m;
  /* BEP 5's ping example */
  assert_int_equal(
      dec("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", &m),
      KW_OK);
  assert_int_equal(m.q, KW_KRPC_PING);
  /* unknown keys ignored, unknown method kept as OTHER */
  assert_int_equal(dec("d1:ad2:id20:abcdefghij01234567891:zi1ee1:q3:foo"
                       "1:t2:aa1:v4:LT011:y1:qe",
                       &m),
                   KW_OK);
  assert_int_equal(m.q, KW_KRPC_OTHER);
  /* short id, no id, bad nodes length, no t, negative seq */
  assert_int_equal(
      dec("d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe", &m),
      KW_ERR_PARSE);
  assert_int_equal(dec("d1:ade1:q4:ping1:t2:aa1:y1:qe", &m), KW_ERR_PARSE);
  assert_int_equal(
      dec("d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re", &m),
      KW_ERR_PARSE);
  assert_int_equal(
      dec("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe", &m),
      KW_ERR_PARSE);
  assert_int_equal(
      dec("d1:rd2:id20:abcdefghij01234567893:seqi-1ee1:t2:aa1:y1:re", &m),
      KW_ERR_PARSE);
  /* keys out of order */
  assert_int_equal(
      dec("d1:q4:ping1:ad2:id20:abcdefghij0123456789e1:t2:aa1:y1:qe", &m),
      KW_ERR_PARSE);
}

static void bep44_vector(void **state) {
  (void)state;
  /* BEP 44's test vector 1: seq 1, v "12:Hello World!", no salt */
  uint8_t buf[KW_BEP44_SIGNABLE_MAX];
  size_t n = kw__bep44_signable(NULL, 0, 1, (const uint8_t *)"12:Hello World!",
                                15, buf, sizeof buf);
  assert_int_equal(n, 26);
  assert_memory_equal(buf, "3:seqi1e1:v12:Hello World!", n);
  n = kw__bep44_signable((const uint8_t *)"foobar", 6, 1,
                         (const uint8_t *)"12:Hello World!", 15, buf,
                         sizeof buf);
  assert_memory_equal(buf, "4:salt6:foobar3:seqi1e1:v12:Hello World!", n);
  uint8_t pk[32], sk[64], sig[64];
  assert_int_equal(sodium_init() >= 0, 1);
  crypto_sign_keypair(pk, sk);
  assert_int_equal(kw__bep44_sign(sk, NULL, 0, 1,
                                  (const uint8_t *)"12:Hello World!", 15, sig),
                   KW_OK);
  assert_true(kw__bep44_verify(pk, NULL, 0, 1,
                               (const uint8_t *)"12:Hello World!", 15, sig));
  assert_false(kw__bep44_verify(pk, NULL, 0, 2,
                                (const uint8_t *)"12:Hello World!", 15, sig));
  assert_false(kw__bep44_verify(pk, (const uint8_t *)"x", 1, 1,
                                (const uint8_t *)"12:Hello World!", 15, sig));
  sig[5] ^= 1;
  assert_false(kw__bep44_verify(pk, NULL, 0, 1,
                                (const uint8_t *)"12:Hello World!", 15, sig));
  assert_int_equal(kw__bep44_sign(sk, NULL, 0, -1, (const uint8_t *)"1:a", 3,
                                  sig),
                   KW_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),
      cmocka_unit_test(strict),
      cmocka_unit_test(bep44_vector),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
