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
  const char *good[] = {"a", "a/b", "a/b.c/d", "..a", "a..", ".hidden"};
  const char *bad[] = {"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b",
                       "../a", "a/.."};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    assert_true(xfer_path_ok(good[i], strlen(good[i])));
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_false(xfer_path_ok(bad[i], strlen(bad[i])));
  assert_false(xfer_path_ok("a\0b", 3));
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
  assert_string_equal(why, "too many entries");
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(paths),
      cmocka_unit_test(round_trip),
      cmocka_unit_test(outside_tree),
      cmocka_unit_test(bad_fields),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
