/* SPDX-License-Identifier: MIT */
/* Unit tests of core/stun_classic: RFC 3489 Binding answers and every
 * rejection path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/stun.h"
#include "core/stun_classic.h"

/* A classic request as the `stun` tool sends it: Binding, length 8,
 * 16-byte transaction id, CHANGE-REQUEST with no flags. */
static size_t classic_req(uint8_t *p, uint8_t change_flags) {
  static const uint8_t req[] = {
      0x00, 0x01, 0x00, 0x08,                         /* Binding, len 8 */
      0x01, 0xf0, 0x2d, 0x15, 0x14, 0x6b, 0x48, 0x30, /* txid */
      0x49, 0x79, 0x59, 0x0b, 0xb8, 0x1c, 0xf7, 0x17, /* txid */
      0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, /* CHANGE-REQUEST */
  };
  memcpy(p, req, sizeof req);
  p[27] = change_flags;
  return sizeof req;
}

static void test_answer_v4(void **state) {
  (void)state;
  uint8_t req[64], out[KW_STUN_CLASSIC_MAX_ANSWER];
  size_t n = classic_req(req, 0), outlen = 0;
  kw_sockaddr from;
  assert_int_equal(kw_sockaddr_parse("127.0.0.1:40001", &from), KW_OK);
  assert_int_equal(
      kw__stun_classic_serve(req, n, &from, out, sizeof out, &outlen), KW_OK);
  static const uint8_t want[] = {
      0x01, 0x01, 0x00, 0x0c, 0x01, 0xf0, 0x2d, 0x15, 0x14, 0x6b, 0x48,
      0x30, 0x49, 0x79, 0x59, 0x0b, 0xb8, 0x1c, 0xf7, 0x17, 0x00, 0x01,
      0x00, 0x08, 0x00, 0x01, 0x9c, 0x41, 0x7f, 0x00, 0x00, 0x01};
  assert_int_equal(outlen, sizeof want);
  assert_memory_equal(out, want, sizeof want);
}

static void test_answer_v6(void **state) {
  (void)state;
  uint8_t req[64], out[KW_STUN_CLASSIC_MAX_ANSWER];
  size_t n = classic_req(req, 0), outlen = 0;
  kw_sockaddr from;
  assert_int_equal(kw_sockaddr_parse("[::1]:5", &from), KW_OK);
  assert_int_equal(
      kw__stun_classic_serve(req, n, &from, out, sizeof out, &outlen), KW_OK);
  assert_int_equal(outlen, KW_STUN_CLASSIC_MAX_ANSWER);
  assert_int_equal(out[3], 24);         /* length */
  assert_int_equal(out[20 + 5], 2);     /* family IPv6 */
  assert_int_equal(out[20 + 7], 5);     /* port */
  assert_int_equal(out[outlen - 1], 1); /* ::1 */
}

static void test_no_attributes(void **state) {
  (void)state;
  uint8_t req[64], out[KW_STUN_CLASSIC_MAX_ANSWER];
  size_t outlen;
  classic_req(req, 0);
  req[3] = 0; /* length 0, no CHANGE-REQUEST */
  kw_sockaddr from;
  kw_sockaddr_parse("127.0.0.1:1", &from);
  assert_int_equal(
      kw__stun_classic_serve(req, 20, &from, out, sizeof out, &outlen), KW_OK);
}

static void test_change_request_refused(void **state) {
  (void)state;
  uint8_t req[64], out[KW_STUN_CLASSIC_MAX_ANSWER];
  size_t outlen = 99;
  kw_sockaddr from;
  kw_sockaddr_parse("127.0.0.1:1", &from);
  for (uint8_t f = 2; f <= 6; f += 2) {
    size_t n = classic_req(req, f);
    assert_int_equal(
        kw__stun_classic_serve(req, n, &from, out, sizeof out, &outlen),
        KW_ERR_UNSUPPORTED);
    assert_int_equal(outlen, 0);
  }
}

static void test_rejects(void **state) {
  (void)state;
  uint8_t req[64], out[KW_STUN_CLASSIC_MAX_ANSWER];
  size_t n, outlen;
  kw_sockaddr from;
  kw_sockaddr_parse("127.0.0.1:1", &from);
  /* too short */
  n = classic_req(req, 0);
  assert_int_equal(
      kw__stun_classic_serve(req, 19, &from, out, sizeof out, &outlen),
      KW_ERR_PARSE);
  /* top bits set (QUIC, say) */
  n = classic_req(req, 0);
  req[0] = 0xC0;
  assert_int_equal(
      kw__stun_classic_serve(req, n, &from, out, sizeof out, &outlen),
      KW_ERR_PARSE);
  /* not a request */
  n = classic_req(req, 0);
  req[1] = 0x11;
  assert_int_equal(
      kw__stun_classic_serve(req, n, &from, out, sizeof out, &outlen),
      KW_ERR_PARSE);
  /* length field disagrees */
  n = classic_req(req, 0);
  assert_int_equal(
      kw__stun_classic_serve(req, n - 4, &from, out, sizeof out, &outlen),
      KW_ERR_PARSE);
  /* RFC 8489 magic cookie: not ours */
  n = classic_req(req, 0);
  req[4] = 0x21, req[5] = 0x12, req[6] = 0xa4, req[7] = 0x42;
  assert_int_equal(
      kw__stun_classic_serve(req, n, &from, out, sizeof out, &outlen),
      KW_ERR_PARSE);
  /* attribute longer than the message */
  n = classic_req(req, 0);
  req[23] = 8;
  assert_int_equal(
      kw__stun_classic_serve(req, n, &from, out, sizeof out, &outlen),
      KW_ERR_PARSE);
  /* CHANGE-REQUEST of the wrong size */
  n = classic_req(req, 0);
  req[3] = 12;
  req[23] = 8;
  memset(req + 28, 0, 4);
  assert_int_equal(
      kw__stun_classic_serve(req, 32, &from, out, sizeof out, &outlen),
      KW_ERR_PARSE);
  /* output too small */
  n = classic_req(req, 0);
  assert_int_equal(kw__stun_classic_serve(req, n, &from, out, 20, &outlen),
                   KW_ERR_BUFFER);
  /* bad source family */
  kw_sockaddr none;
  memset(&none, 0, sizeof none);
  assert_int_equal(
      kw__stun_classic_serve(req, n, &none, out, sizeof out, &outlen),
      KW_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_answer_v4),
      cmocka_unit_test(test_answer_v6),
      cmocka_unit_test(test_no_attributes),
      cmocka_unit_test(test_change_request_refused),
      cmocka_unit_test(test_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
