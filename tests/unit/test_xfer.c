/* SPDX-License-Identifier: MIT */
/* Unit tests of the keyway/send/1 manifest (tools/keyway/xfer.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../tools/keyway/xfer.c"

static void paths(void **state) {
  (void)state;
  const char *good[] = {"a", "a/b", "a/b.c/d", "a..", "caf\xc3\xa9",
                        "\xe2\x82\xac/\xf0\x9f\x98\x80", "a b", "a.b"};
  const char *bad[] = {"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b",
                       "../a", "a/..", ".hidden", "a/.ssh", "..a",
                       "a\x1b[2Jb", "a\nb", "a\x7f", "a\xc2\x9b" "b",
                       "a\xe2\x80\xae" "b", "a\xff", "a\xc0\xaf",
                       "a\xed\xa0\x80", "a\xe2\x82", "\xc3"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    assert_true(xfer_path_ok(good[i], strlen(good[i])));
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_false(xfer_path_ok(bad[i], strlen(bad[i])));
  assert_false(xfer_path_ok("a\0b", 3));
  /* a 255-byte name is fine, 256 is not; 64 levels are, 65 not */
  char name[300];
  memset(name, 'n', sizeof name);
  assert_true(xfer_path_ok(name, 255));
  assert_false(xfer_path_ok(name, 256));
  char deep[200];
  size_t dl = 0;
  for (int i = 0; i < 65; i++) {
    deep[dl++] = 'd';
    deep[dl++] = '/';
  }
  assert_true(xfer_path_ok(deep, 64 * 2 - 1));
  assert_false(xfer_path_ok(deep, 65 * 2 - 1));
  assert_string_equal(xfer_name_ok(".x", 2), "a hidden name (leading dot)");
  assert_null(xfer_name_ok("x", 1));
}

static uint8_t *build(const char *const *p, const uint8_t *types, size_t n,
                      size_t *len) {
  xfer_manifest m;
  memset(&m, 0, sizeof m);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(add(&m, types[i], 0644, types[i] ? 0 : 5, p[i], NULL), 0);
  uint8_t *b = xfer_encode(&m, len);
  xfer_free(&m);
  return b;
}

static void round_trip(void **state) {
  (void)state;
  const char *p[] = {"top", "top/a", "top/a/f", "top/g"};
  const uint8_t t[] = {1, 1, 0, 0};
  size_t len;
  uint8_t *b = build(p, t, 4, &len);
  xfer_manifest m;
  const char *why;
  assert_int_equal(xfer_decode(b, len, &m, &why), 0);
  assert_int_equal(m.n, 4);
  assert_string_equal(m.e[2].path, "top/a/f");
  assert_int_equal(m.e[2].size, 5);
  assert_int_equal(m.total, 10);
  xfer_free(&m);
  /* every truncation is refused */
  for (size_t cut = 0; cut < len; cut++)
    assert_int_equal(xfer_decode(b, cut, &m, &why), -1);
  /* trailing bytes too */
  uint8_t *b2 = malloc(len + 1);
  memcpy(b2, b, len);
  b2[len] = 0;
  assert_int_equal(xfer_decode(b2, len + 1, &m, &why), -1);
  assert_string_equal(why, "trailing bytes after the manifest");
  free(b2);
  free(b);
}

static void outside_tree(void **state) {
  (void)state;
  xfer_manifest m;
  const char *why;
  size_t len;
  /* a file in a directory that was never listed */
  const char *p1[] = {"top", "other/f"};
  const uint8_t t1[] = {1, 0};
  uint8_t *b = build(p1, t1, 2, &len);
  assert_int_equal(xfer_decode(b, len, &m, &why), -1);
  assert_string_equal(why, "entry outside the transferred tree");
  free(b);
  /* a second root */
  const char *p2[] = {"top", "second"};
  const uint8_t t2[] = {1, 0};
  b = build(p2, t2, 2, &len);
  assert_int_equal(xfer_decode(b, len, &m, &why), -1);
  free(b);
  /* a directory listed twice */
  const char *p3[] = {"top", "top/a", "top/a"};
  const uint8_t t3[] = {1, 1, 1};
  b = build(p3, t3, 3, &len);
  assert_int_equal(xfer_decode(b, len, &m, &why), -1);
  assert_string_equal(why, "duplicate entry");
  free(b);
  /* a file listed twice */
  const char *p5[] = {"top", "top/f", "top/f"};
  const uint8_t t5[] = {1, 0, 0};
  b = build(p5, t5, 3, &len);
  assert_int_equal(xfer_decode(b, len, &m, &why), -1);
  assert_string_equal(why, "duplicate entry");
  free(b);
  /* a file and a directory of the same name */
  const char *p6[] = {"top", "top/f", "top/f"};
  const uint8_t t6[] = {1, 0, 1};
  b = build(p6, t6, 3, &len);
  assert_int_equal(xfer_decode(b, len, &m, &why), -1);
  assert_string_equal(why, "duplicate entry");
  free(b);
  /* a file used as a directory */
  const char *p4[] = {"top", "top/f", "top/f/x"};
  const uint8_t t4[] = {1, 0, 0};
  b = build(p4, t4, 3, &len);
  assert_int_equal(xfer_decode(b, len, &m, &why), -1);
  free(b);
}

static void bad_fields(void **state) {
  (void)state;
  xfer_manifest m;
  const char *why;
  /* count above the limit */
  uint8_t big[4] = {0xff, 0xff, 0xff, 0xff};
  assert_int_equal(xfer_decode(big, 4, &m, &why), -1);
  assert_string_equal(why, "too many entries (more than 200,000)");
  uint8_t over[4] = {0, 0x03, 0x0d, 0x41}; /* 200,001 */
  assert_int_equal(xfer_decode(over, 4, &m, &why), -1);
  assert_string_equal(why, "too many entries (more than 200,000)");
  /* type 2, mode with file-type bits, a directory with a size */
  uint8_t e[4 + 15 + 1] = {0, 0, 0, 1, 2, 0, 0, 1, 0xa4, 0, 0, 0, 0, 0, 0,
                           0, 0, 0, 1, 'x'};
  assert_int_equal(xfer_decode(e, sizeof e, &m, &why), -1);
  e[4] = 0;
  e[6] = 0x80; /* mode 0x8001a4: S_IFREG bits */
  assert_int_equal(xfer_decode(e, sizeof e, &m, &why), -1);
  e[6] = 0;
  e[4] = 1;
  e[16] = 9; /* a directory of size 9 */
  assert_int_equal(xfer_decode(e, sizeof e, &m, &why), -1);
  e[16] = 0;
  assert_int_equal(xfer_decode(e, sizeof e, &m, &why), 0);
  xfer_free(&m);
}

/* The total of path bytes is bounded apart from the entry count: a root
 * "r" and files "r/<250-byte name>" reach 16 MiB of paths at ~66,600
 * entries, a third of the entry bound. */
static void name_bytes_bound(void **state) {
  (void)state;
  size_t n = XFER_MAX_NAME_BYTES / 252 + 2;
  size_t len = 4 + n * (15 + 252);
  uint8_t *b = calloc(1, len), *q = b + 4;
  assert_non_null(b);
  b[0] = (uint8_t)(n >> 24), b[1] = (uint8_t)(n >> 16);
  b[2] = (uint8_t)(n >> 8), b[3] = (uint8_t)n;
  for (size_t i = 0; i < n; i++) {
    char path[300];
    size_t pl = 1;
    path[0] = 'r';
    if (i) {
      path[pl++] = '/';
      memset(path + pl, 'a', 240);
      pl += 240;
      pl += (size_t)snprintf(path + pl, sizeof path - pl, "%010zu", i);
    }
    q[0] = i == 0 ? 1 : 0;
    q[13] = (uint8_t)(pl >> 8), q[14] = (uint8_t)pl;
    memcpy(q + 15, path, pl);
    q += 15 + pl;
  }
  xfer_manifest m;
  const char *why;
  assert_int_equal(xfer_decode(b, (size_t)(q - b), &m, &why), -1);
  assert_string_equal(why, "too many path bytes (more than 16 MiB)");
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(paths),
      cmocka_unit_test(round_trip),
      cmocka_unit_test(outside_tree),
      cmocka_unit_test(bad_fields),
      cmocka_unit_test(name_bytes_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
