/* SPDX-License-Identifier: MIT */
/* Unit tests of the connection-id map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/cidmap.h"

static void put_get_del(void **state) {
  (void)state;
  kw__cidmap m;
  assert_int_equal(kw__cidmap_init(&m, 10000), KW_OK);
  int vals[5000];
  for (int i = 0; i < 5000; i++) {
    uint8_t cid[8] = {(uint8_t)i, (uint8_t)(i >> 8), 1, 2, 3, 4, 5, 6};
    assert_int_equal(kw__cidmap_put(&m, cid, 8, &vals[i]), KW_OK);
  }
  assert_int_equal(m.count, 5000);
  for (int i = 0; i < 5000; i++) {
    uint8_t cid[8] = {(uint8_t)i, (uint8_t)(i >> 8), 1, 2, 3, 4, 5, 6};
    assert_ptr_equal(kw__cidmap_get(&m, cid, 8), &vals[i]);
    /* same bytes, other length: another key */
    assert_null(kw__cidmap_get(&m, cid, 7));
  }
  uint8_t c0[8] = {0, 0, 1, 2, 3, 4, 5, 6};
  assert_int_equal(kw__cidmap_del(&m, c0, 8), 1);
  assert_int_equal(kw__cidmap_del(&m, c0, 8), 0);
  assert_null(kw__cidmap_get(&m, c0, 8));
  assert_int_equal(m.count, 4999);
  kw__cidmap_free(&m);
}

static void replace_and_bounds(void **state) {
  (void)state;
  kw__cidmap m;
  assert_int_equal(kw__cidmap_init(&m, 2), KW_OK);
  int a, b, c;
  uint8_t k1[1] = {1}, k2[20] = {2}, k3[2] = {3, 3};
  assert_int_equal(kw__cidmap_put(&m, k1, 1, &a), KW_OK);
  assert_int_equal(kw__cidmap_put(&m, k1, 1, &b), KW_OK); /* replace */
  assert_ptr_equal(kw__cidmap_get(&m, k1, 1), &b);
  assert_int_equal(kw__cidmap_put(&m, k2, 20, &c), KW_OK);
  assert_int_equal(kw__cidmap_put(&m, k3, 2, &c), KW_ERR_FULL);
  assert_int_equal(kw__cidmap_put(&m, k3, 0, &c), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__cidmap_put(&m, k2, 21, &c), KW_ERR_INVALID_ARG);
  assert_null(kw__cidmap_get(&m, k2, 21));
  assert_int_equal(kw__cidmap_del(&m, k2, 0), 0);
  kw__cidmap_free(&m);
  kw__cidmap_free(&m); /* idempotent */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(put_get_del),
      cmocka_unit_test(replace_and_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
