/* SPDX-License-Identifier: MIT */
/* Unit tests of core/sockaddr: strict parsing, formatting, predicates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/sockaddr.h"

static kw_sockaddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d,
                      uint16_t port) {
  kw_sockaddr s;
  memset(&s, 0, sizeof(s));
  s.family = 4;
  s.ip[0] = a;
  s.ip[1] = b;
  s.ip[2] = c;
  s.ip[3] = d;
  s.port = port;
  return s;
}

static void test_parse_v4(void **state) {
  (void)state;
  kw_sockaddr s;
  assert_int_equal(kw_sockaddr_parse("1.2.3.4:5", &s), KW_OK);
  assert_int_equal(s.family, 4);
  assert_memory_equal(s.ip, "\x01\x02\x03\x04", 4);
  assert_int_equal(s.port, 5);
  assert_int_equal(kw_sockaddr_parse("255.255.255.255:65535", &s), KW_OK);
  assert_memory_equal(s.ip, "\xff\xff\xff\xff", 4);
  assert_int_equal(s.port, 65535);
  assert_int_equal(kw_sockaddr_parse("0.0.0.0:0", &s), KW_OK);
  assert_int_equal(s.port, 0);
  assert_int_equal(kw_sockaddr_parse("198.18.0.1:4433", &s), KW_OK);
  assert_int_equal(s.port, 4433);
}

static void test_parse_v6(void **state) {
  (void)state;
  kw_sockaddr s;
  assert_int_equal(kw_sockaddr_parse("[::1]:5", &s), KW_OK);
  assert_int_equal(s.family, 6);
  static const uint8_t one[16] = {[15] = 1};
  assert_memory_equal(s.ip, one, 16);
  assert_int_equal(s.port, 5);
  assert_int_equal(kw_sockaddr_parse("[::]:0", &s), KW_OK);
  assert_int_equal(s.family, 6);
  assert_int_equal(kw_sockaddr_parse("[FE80::A:b]:443", &s), KW_OK);
  assert_int_equal(s.ip[0], 0xfe);
  assert_int_equal(s.ip[1], 0x80);
  assert_int_equal(s.ip[13], 0x0a);
  assert_int_equal(s.ip[15], 0x0b);
  assert_int_equal(s.port, 443);
  assert_int_equal(kw_sockaddr_parse("[::ffff:1.2.3.4]:9", &s), KW_OK);
  assert_int_equal(s.family, 6);
  assert_int_equal(s.ip[10], 0xff);
  assert_int_equal(s.ip[15], 4);
  assert_int_equal(
      kw_sockaddr_parse("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
                        &s),
      KW_OK);
}

static void test_parse_rejects(void **state) {
  (void)state;
  static const char *bad[] = {
      "",
      "1.2.3.4",
      "1.2.3.4:",
      "1.2.3.4:5x",
      "1.2.3.4:x5",
      "1.2.3.4:-5",
      "1.2.3.4:+5",
      "1.2.3.4: 5",
      "1.2.3.4:5 ",
      " 1.2.3.4:5",
      "1.2.3.4:65536",
      "1.2.3.4:99999",
      "1.2.3.4:123456",
      "1.2.3.4:05",
      "1.2.3.4:00",
      "1.2.3.4:5:6",
      "1.2.3.256:5",
      "1.2.3:5",
      "1.2.3.4.5:5",
      "01.2.3.4:5",
      "1.2.3.-4:5",
      "0x1.2.3.4:5",
      "localhost:5",
      ":5",
      "::1:5",
      "[::1]",
      "[::1]:",
      "[::1]5",
      "[::1]:5]",
      "[::1:5",
      "::1]:5",
      "[]:5",
      "[1.2.3.4]:5",
      "[::1%lo]:5",
      "[::1]:65536",
      "[:::1]:5",
      "[::g]:5",
      "[[::1]]:5",
      "1.2.3.4:5\n",
      "1.2.3.4:5555555555555555555555555555555555555555555555555555555555",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    kw_sockaddr s = v4(9, 9, 9, 9, 9);
    kw_sockaddr keep = s;
    if (kw_sockaddr_parse(bad[i], &s) != KW_ERR_ADDR)
      fail_msg("accepted \"%s\"", bad[i]);
    assert_true(kw__sockaddr_equal(&s, &keep));
  }
  /* Far too long to be an address. */
  char longs[200];
  memset(longs, '1', sizeof(longs) - 1);
  longs[sizeof(longs) - 1] = '\0';
  kw_sockaddr s;
  assert_int_equal(kw_sockaddr_parse(longs, &s), KW_ERR_ADDR);
  assert_int_equal(kw_sockaddr_parse(NULL, &s), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_sockaddr_parse("1.2.3.4:5", NULL), KW_ERR_INVALID_ARG);
}

static void test_format(void **state) {
  (void)state;
  char out[KW_SOCKADDR_STRLEN];
  kw_sockaddr s = v4(127, 0, 0, 1, 4433);
  assert_int_equal(kw_sockaddr_format(&s, out, sizeof(out)), KW_OK);
  assert_string_equal(out, "127.0.0.1:4433");
  kw_sockaddr_parse("[0:0:0::1]:7", &s);
  assert_int_equal(kw_sockaddr_format(&s, out, sizeof(out)), KW_OK);
  assert_string_equal(out, "[::1]:7");
  kw_sockaddr_parse("[FE80:0::A]:0", &s);
  assert_int_equal(kw_sockaddr_format(&s, out, sizeof(out)), KW_OK);
  assert_string_equal(out, "[fe80::a]:0");
  /* The longest form fits in KW_SOCKADDR_STRLEN. */
  const char *longest = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535";
  kw_sockaddr_parse(longest, &s);
  assert_int_equal(kw_sockaddr_format(&s, out, sizeof(out)), KW_OK);
  memset(s.ip, 0xff, 16);
  assert_int_equal(kw_sockaddr_format(&s, out, sizeof(out)), KW_OK);
  assert_string_equal(out, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
  /* Too small: an empty string and KW_ERR_BUFFER. */
  s = v4(1, 2, 3, 4, 5);
  assert_int_equal(kw_sockaddr_format(&s, out, 9), KW_ERR_BUFFER);
  assert_string_equal(out, "");
  assert_int_equal(kw_sockaddr_format(&s, out, 10), KW_OK);
  assert_string_equal(out, "1.2.3.4:5");
  assert_int_equal(kw_sockaddr_format(&s, out, 0), KW_ERR_BUFFER);
  s.family = 0;
  assert_int_equal(kw_sockaddr_format(&s, out, sizeof(out)),
                   KW_ERR_INVALID_ARG);
  s.family = 5;
  assert_int_equal(kw_sockaddr_format(&s, out, sizeof(out)),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw_sockaddr_format(NULL, out, sizeof(out)),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw_sockaddr_format(&s, NULL, sizeof(out)),
                   KW_ERR_INVALID_ARG);
}

static void test_round_trip(void **state) {
  (void)state;
  static const char *good[] = {
      "1.2.3.4:5", "0.0.0.0:0",     "10.0.0.255:65535",  "[::1]:1",
      "[::]:0",    "[fe80::1]:443", "[2001:db8::1:2]:9", "[::ffff:1.2.3.4]:9",
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    kw_sockaddr s, t;
    char out[KW_SOCKADDR_STRLEN];
    assert_int_equal(kw_sockaddr_parse(good[i], &s), KW_OK);
    assert_int_equal(kw_sockaddr_format(&s, out, sizeof(out)), KW_OK);
    assert_string_equal(out, good[i]);
    assert_int_equal(kw_sockaddr_parse(out, &t), KW_OK);
    assert_true(kw__sockaddr_equal(&s, &t));
  }
}

static void test_equal(void **state) {
  (void)state;
  kw_sockaddr a = v4(1, 2, 3, 4, 5), b = v4(1, 2, 3, 4, 5);
  assert_true(kw__sockaddr_equal(&a, &b));
  b.ip[8] = 7; /* beyond an IPv4 address: ignored */
  assert_true(kw__sockaddr_equal(&a, &b));
  b = v4(1, 2, 3, 4, 6);
  assert_false(kw__sockaddr_equal(&a, &b));
  b = v4(1, 2, 3, 5, 5);
  assert_false(kw__sockaddr_equal(&a, &b));
  b = a;
  b.family = 6;
  assert_false(kw__sockaddr_equal(&a, &b));
  kw_sockaddr c, d;
  kw_sockaddr_parse("[::1]:5", &c);
  kw_sockaddr_parse("[::1]:5", &d);
  assert_true(kw__sockaddr_equal(&c, &d));
  d.ip[15] = 2;
  assert_false(kw__sockaddr_equal(&c, &d));
  d = c;
  d.ip[0] = 1;
  assert_false(kw__sockaddr_equal(&c, &d));
  kw_sockaddr z1, z2;
  memset(&z1, 0, sizeof(z1));
  memset(&z2, 0, sizeof(z2));
  z2.port = 9;
  assert_true(kw__sockaddr_equal(&z1, &z2));
  assert_false(kw__sockaddr_equal(&z1, &a));
}

static bool pred(bool (*f)(const kw_sockaddr *), const char *text) {
  kw_sockaddr s;
  assert_int_equal(kw_sockaddr_parse(text, &s), KW_OK);
  return f(&s);
}

static void test_loopback(void **state) {
  (void)state;
  assert_true(pred(kw__sockaddr_is_loopback, "127.0.0.1:1"));
  assert_true(pred(kw__sockaddr_is_loopback, "127.255.3.4:1"));
  assert_true(pred(kw__sockaddr_is_loopback, "[::1]:1"));
  assert_true(pred(kw__sockaddr_is_loopback, "[::ffff:127.0.0.2]:1"));
  assert_false(pred(kw__sockaddr_is_loopback, "128.0.0.1:1"));
  assert_false(pred(kw__sockaddr_is_loopback, "126.255.255.255:1"));
  assert_false(pred(kw__sockaddr_is_loopback, "[::2]:1"));
  assert_false(pred(kw__sockaddr_is_loopback, "[::]:1"));
  assert_false(pred(kw__sockaddr_is_loopback, "[::127.0.0.1]:1"));
  assert_false(pred(kw__sockaddr_is_loopback, "[::ffff:10.0.0.1]:1"));
  assert_false(pred(kw__sockaddr_is_loopback, "[1::1]:1"));
  kw_sockaddr none;
  memset(&none, 0, sizeof(none));
  none.ip[0] = 127;
  assert_false(kw__sockaddr_is_loopback(&none));
}

static void test_linklocal(void **state) {
  (void)state;
  assert_true(pred(kw__sockaddr_is_linklocal, "169.254.0.1:1"));
  assert_true(pred(kw__sockaddr_is_linklocal, "169.254.255.255:1"));
  assert_false(pred(kw__sockaddr_is_linklocal, "169.253.0.1:1"));
  assert_false(pred(kw__sockaddr_is_linklocal, "169.255.0.1:1"));
  assert_false(pred(kw__sockaddr_is_linklocal, "170.254.0.1:1"));
  assert_true(pred(kw__sockaddr_is_linklocal, "[fe80::1]:1"));
  assert_true(pred(kw__sockaddr_is_linklocal, "[febf::1]:1"));
  assert_false(pred(kw__sockaddr_is_linklocal, "[fec0::1]:1"));
  assert_false(pred(kw__sockaddr_is_linklocal, "[fe7f::1]:1"));
  assert_false(pred(kw__sockaddr_is_linklocal, "[::1]:1"));
  kw_sockaddr none;
  memset(&none, 0, sizeof(none));
  none.ip[0] = 169;
  none.ip[1] = 254;
  assert_false(kw__sockaddr_is_linklocal(&none));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_v4),      cmocka_unit_test(test_parse_v6),
      cmocka_unit_test(test_parse_rejects), cmocka_unit_test(test_format),
      cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_equal),
      cmocka_unit_test(test_loopback),      cmocka_unit_test(test_linklocal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
