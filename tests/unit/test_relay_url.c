/* SPDX-License-Identifier: MIT */
/* Unit tests of relay URL parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/relay_url.h"

static void accepts(void **state) {
  (void)state;
  kw__relay_url u;
  assert_int_equal(kw__relay_url_parse("https://relay.example:8443", &u), KW_OK);
  assert_string_equal(u.host, "relay.example");
  assert_int_equal(u.port, 8443);
  assert_int_equal(u.stun_port, 3478);
  assert_false(u.host_is_ip);
  assert_int_equal(kw__relay_url_parse("https://127.0.0.1:1/", &u), KW_OK);
  assert_true(u.host_is_ip);
  assert_int_equal(u.port, 1);
  assert_int_equal(kw__relay_url_parse("https://[::1]:65535/?stun=9", &u),
                   KW_OK);
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.port, 65535);
  assert_int_equal(u.stun_port, 9);
  assert_true(u.host_is_ip);
}

static void rejects(void **state) {
  (void)state;
  kw__relay_url u;
  const char *bad[] = {
      "http://a:1",        "https://a",          "https://a:",
      "https://:1",        "https://a:0",        "https://a:65536",
      "https://a:01",      "https://a:1x",       "https://a:1/path",
      "https://a:1/?stun=0", "https://a:1/?x=1", "https://[::1:1",
      "https://[::1]1",    "https://[zz]:1",     "https://a b:1",
      "https://a_b:1",     "HTTPS://a:1",        "",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(kw__relay_url_parse(bad[i], &u), KW_ERR_PARSE);
  assert_int_equal(kw__relay_url_parse(NULL, &u), KW_ERR_INVALID_ARG);
  char longu[400] = "https://";
  memset(longu + 8, 'a', 300);
  strcpy(longu + 308, ":1");
  assert_int_equal(kw__relay_url_parse(longu, &u), KW_ERR_PARSE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepts),
      cmocka_unit_test(rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
