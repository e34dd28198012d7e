/* SPDX-License-Identifier: MIT */
/* Unit tests of core/bencode: strictness, tokens, dictionary lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/bencode.h"

static kw_err parse(const char *s, kw__be_tok *t, size_t cap, size_t *n) {
  return kw__be_parse((const uint8_t *)s, strlen(s), t, cap, n);
}

static void accepts(void **state) {
  (void)state;
  kw__be_tok t[32];
  size_t n;
  assert_int_equal(parse("i42e", t, 32, &n), KW_OK);
  assert_int_equal(t[0].type, KW_BE_INT);
  assert_int_equal(t[0].i, 42);
  assert_int_equal(parse("i-9223372036854775808e", t, 32, &n), KW_OK);
  assert_true(t[0].i == INT64_MIN);
  assert_int_equal(parse("i0e", t, 32, &n), KW_OK);
  assert_int_equal(parse("0:", t, 32, &n), KW_OK);
  assert_int_equal(t[0].slen, 0);
  assert_int_equal(parse("d1:ai1e1:bl3:xyzi-3eee", t, 32, &n), KW_OK);
  assert_int_equal(n, 7);
  assert_int_equal(t[0].n, 4);
  assert_int_equal(t[0].next, 7);
  size_t b = kw__be_dict_get(t, 0, "b");
  assert_int_equal(t[b].type, KW_BE_LIST);
  assert_int_equal(t[b].n, 2);
  assert_memory_equal(t[b + 1].s, "xyz", 3);
  assert_int_equal(t[t[b + 1].next].i, -3);
  assert_int_equal(kw__be_dict_get(t, 0, "c"), 0);
  assert_int_equal(t[b].off, 10);
  assert_int_equal(t[b].len, 11);
}

static void refuses(void **state) {
  (void)state;
  static const char *bad[] = {
      "",        "i",       "ie",      "i01e",   "i-0e",  "i+1e",
      "i-e",     "01:a",    "2:a",     "-1:a",   "l",     "d1:a",
      "d1:bi1e1:ai2ee",     "d1:ai1e1:ai2ee",    "di1ei2ee",
      "i1ei2e",  "x",       "i9223372036854775808e", "lllllllllleeeeeeeeee",
      "d1:a",    "i12345678901234567890e",
  };
  kw__be_tok t[32];
  size_t n;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(parse(bad[i], t, 32, &n), KW_ERR_PARSE);
  assert_int_equal(parse("li1ei2ei3ee", t, 3, &n), KW_ERR_FULL);
}

static void encodes(void **state) {
  (void)state;
  uint8_t buf[64];
  kw__wbuf w;
  kw__wbuf_init(&w, buf, sizeof buf);
  kw__be_open_dict(&w);
  kw__be_cstr(&w, "a");
  kw__be_int(&w, -7);
  kw__be_cstr(&w, "b");
  kw__be_str(&w, "\0x", 2);
  kw__be_close(&w);
  assert_false(w.err);
  assert_int_equal(w.off, 16);
  assert_memory_equal(buf, "d1:ai-7e1:b2:\0xe", 16);
  kw__be_tok t[8];
  size_t n;
  assert_int_equal(kw__be_parse(buf, w.off, t, 8, &n), KW_OK);
  assert_int_equal(t[kw__be_dict_get(t, 0, "a")].i, -7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepts),
      cmocka_unit_test(refuses),
      cmocka_unit_test(encodes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
