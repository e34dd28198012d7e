/* SPDX-License-Identifier: MIT */
/* Unit tests of core/base32: RFC 4648 vectors, strictness, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/base32.h"

static const struct {
  const char *plain;
  const char *text;
} vectors[] = {
    {"", ""},
    {"f", "my"},
    {"fo", "mzxq"},
    {"foo", "mzxw6"},
    {"foob", "mzxw6yq"},
    {"fooba", "mzxw6ytb"},
    {"foobar", "mzxw6ytboi"},
};

static void test_encode_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
    char out[32];
    size_t n =
        kw__base32_encode(out, sizeof(out), (const uint8_t *)vectors[i].plain,
                          strlen(vectors[i].plain));
    assert_int_equal(n, strlen(vectors[i].text));
    assert_string_equal(out, vectors[i].text);
    assert_int_equal(KW__BASE32_LEN(strlen(vectors[i].plain)), n);
  }
}

static void test_decode_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
    uint8_t out[16];
    size_t n = 99;
    const char *t = vectors[i].text;
    assert_int_equal(kw__base32_decode(out, sizeof(out), &n, t, strlen(t)),
                     KW_OK);
    assert_int_equal(n, strlen(vectors[i].plain));
    assert_memory_equal(out, vectors[i].plain, n);
  }
}

static void test_decode_uppercase(void **state) {
  (void)state;
  uint8_t out[16];
  size_t n = 0;
  assert_int_equal(kw__base32_decode(out, sizeof(out), &n, "MZXW6YTBOI", 10),
                   KW_OK);
  assert_int_equal(n, 6);
  assert_memory_equal(out, "foobar", 6);
  assert_int_equal(kw__base32_decode(out, sizeof(out), &n, "MzXw6YtBoI", 10),
                   KW_OK);
  assert_memory_equal(out, "foobar", 6);
}

static void test_decode_rejects(void **state) {
  (void)state;
  static const char *bad[] = {
      "my======",                /* padding */
      "my=",         "mzxw6yt1", /* '1' is not in the alphabet */
      "mzxw6yt8",    "mzxw6yt0", "mzxw 6yq", "mzxw-6yq",
      "m\xc3\xa9",   "m", /* 1 char: impossible length */
      "mzx",              /* 3 */
      "mzxw6y",           /* 6 */
      "mzxw6ytboim",      /* 8+3 */
      "mz",               /* non-zero trailing bits */
      "mzxr",        "mzxw7",    "mzxw6yr",  "mzxw6ytboj",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint8_t out[32];
    size_t n = 77;
    assert_int_equal(
        kw__base32_decode(out, sizeof(out), &n, bad[i], strlen(bad[i])),
        KW_ERR_PARSE);
    assert_int_equal(n, 0);
  }
  /* An embedded NUL inside the given length is a bad character. */
  uint8_t out[8];
  size_t n;
  assert_int_equal(kw__base32_decode(out, sizeof(out), &n, "my\0a", 4),
                   KW_ERR_PARSE);
}

static void test_decode_buffer(void **state) {
  (void)state;
  uint8_t out[6];
  size_t n = 5;
  assert_int_equal(kw__base32_decode(out, 5, &n, "mzxw6ytboi", 10),
                   KW_ERR_BUFFER);
  assert_int_equal(n, 0);
  assert_int_equal(kw__base32_decode(out, 6, &n, "mzxw6ytboi", 10), KW_OK);
  assert_int_equal(n, 6);
  assert_int_equal(kw__base32_decode(NULL, 0, &n, "", 0), KW_OK);
  assert_int_equal(n, 0);
  assert_int_equal(kw__base32_decode(NULL, 0, &n, "my", 2), KW_ERR_BUFFER);
  assert_int_equal(kw__base32_decode(out, 6, NULL, "my", 2),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__base32_decode(out, 6, &n, NULL, 2), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__base32_decode(NULL, 6, &n, "my", 2), KW_ERR_INVALID_ARG);
}

static void test_encode_buffer(void **state) {
  (void)state;
  char out[11];
  memset(out, 'x', sizeof(out));
  /* "foobar" needs 10 chars + NUL. */
  assert_int_equal(kw__base32_encode(out, 10, (const uint8_t *)"foobar", 6), 0);
  assert_string_equal(out, "");
  assert_int_equal(kw__base32_encode(out, 11, (const uint8_t *)"foobar", 6),
                   10);
  assert_string_equal(out, "mzxw6ytboi");
  assert_int_equal(kw__base32_encode(NULL, 11, (const uint8_t *)"f", 1), 0);
  assert_int_equal(kw__base32_encode(out, 0, (const uint8_t *)"f", 1), 0);
  assert_int_equal(kw__base32_encode(out, 11, NULL, 1), 0);
  assert_int_equal(kw__base32_encode(out, 1, NULL, 0), 0);
  assert_string_equal(out, "");
}

static void test_round_trip(void **state) {
  (void)state;
  uint8_t in[100], back[100];
  char text[200];
  randombytes_buf(in, sizeof(in));
  for (size_t len = 0; len <= sizeof(in); len++) {
    size_t n = kw__base32_encode(text, sizeof(text), in, len);
    assert_int_equal(n, KW__BASE32_LEN(len));
    assert_int_equal(strlen(text), n);
    for (size_t i = 0; i < n; i++)
      assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", text[i]));
    size_t m = 0;
    assert_int_equal(kw__base32_decode(back, sizeof(back), &m, text, n), KW_OK);
    assert_int_equal(m, len);
    assert_memory_equal(back, in, len);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encode_vectors),
      cmocka_unit_test(test_decode_vectors),
      cmocka_unit_test(test_decode_uppercase),
      cmocka_unit_test(test_decode_rejects),
      cmocka_unit_test(test_decode_buffer),
      cmocka_unit_test(test_encode_buffer),
      cmocka_unit_test(test_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
