/* SPDX-License-Identifier: MIT */
/* Unit tests of core/id: key generation, id text forms and their parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "keyway.h"

/* Seed 0x00 0x01 ... 0x1f gives this id (pinned: changing it breaks every
 * stored id and ticket; checked against an independent Ed25519 and base32
 * implementation). */
#define VECTOR_ID "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4a"

static void seed_key(uint8_t sk[KW_SECRET_KEY_LEN]) {
  uint8_t seed[32], pk[32];
  for (int i = 0; i < 32; i++)
    seed[i] = (uint8_t)i;
  assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

static void test_known_vector(void **state) {
  (void)state;
  uint8_t sk[64], id[32], back[32];
  char text[KW_ID_STRLEN + 1], shrt[KW_ID_SHORTLEN + 1];
  seed_key(sk);
  assert_int_equal(kw_key_id(sk, id), KW_OK);
  assert_int_equal(kw_id_to_string(id, text, sizeof(text)), KW_OK);
  assert_string_equal(text, VECTOR_ID);
  assert_int_equal(kw_id_to_short(id, shrt, sizeof(shrt)), KW_OK);
  assert_int_equal(strlen(shrt), KW_ID_SHORTLEN);
  assert_memory_equal(shrt, VECTOR_ID, KW_ID_SHORTLEN);
  assert_int_equal(kw_id_from_string(VECTOR_ID, back), KW_OK);
  assert_memory_equal(back, id, 32);
}

static void test_generate(void **state) {
  (void)state;
  uint8_t sk1[64], sk2[64], id1[32], id2[32];
  assert_int_equal(kw_key_generate(sk1), KW_OK);
  assert_int_equal(kw_key_generate(sk2), KW_OK);
  assert_memory_not_equal(sk1, sk2, 64);
  assert_int_equal(kw_key_id(sk1, id1), KW_OK);
  assert_int_equal(kw_key_id(sk2, id2), KW_OK);
  /* libsodium layout: seed || public key. */
  assert_memory_equal(id1, sk1 + 32, 32);
  assert_memory_equal(id2, sk2 + 32, 32);
  /* A signature by the key verifies under the id. */
  uint8_t sig[64];
  crypto_sign_detached(sig, NULL, (const uint8_t *)"hi", 2, sk1);
  assert_int_equal(
      crypto_sign_verify_detached(sig, (const uint8_t *)"hi", 2, id1), 0);
  assert_int_not_equal(
      crypto_sign_verify_detached(sig, (const uint8_t *)"hi", 2, id2), 0);
  assert_int_equal(kw_key_generate(NULL), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_key_id(NULL, id1), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_key_id(sk1, NULL), KW_ERR_INVALID_ARG);
}

static void test_round_trip(void **state) {
  (void)state;
  for (int i = 0; i < 200; i++) {
    uint8_t sk[64], id[32], back[32];
    char text[KW_ID_STRLEN + 1];
    assert_int_equal(kw_key_generate(sk), KW_OK);
    assert_int_equal(kw_key_id(sk, id), KW_OK);
    assert_int_equal(kw_id_to_string(id, text, sizeof(text)), KW_OK);
    assert_int_equal(strlen(text), KW_ID_STRLEN);
    for (size_t j = 0; j < KW_ID_STRLEN; j++)
      assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", text[j]));
    /* 256 bits in 52 characters: the last one carries 1 bit + 4 zeros. */
    assert_true(text[51] == 'a' || text[51] == 'q');
    memset(back, 0, sizeof(back));
    assert_int_equal(kw_id_from_string(text, back), KW_OK);
    assert_memory_equal(back, id, 32);
    /* Case-insensitive. */
    for (size_t j = 0; j < KW_ID_STRLEN; j++)
      if (text[j] >= 'a' && text[j] <= 'z')
        text[j] = (char)(text[j] - 'a' + 'A');
    memset(back, 0, sizeof(back));
    assert_int_equal(kw_id_from_string(text, back), KW_OK);
    assert_memory_equal(back, id, 32);
  }
}

static void test_to_string_buffers(void **state) {
  (void)state;
  uint8_t sk[64], id[32];
  char buf[KW_ID_STRLEN + 1];
  seed_key(sk);
  kw_key_id(sk, id);
  memset(buf, 'x', sizeof(buf));
  assert_int_equal(kw_id_to_string(id, buf, KW_ID_STRLEN), KW_ERR_BUFFER);
  assert_string_equal(buf, "");
  assert_int_equal(kw_id_to_string(id, buf, 0), KW_ERR_BUFFER);
  assert_int_equal(kw_id_to_string(NULL, buf, sizeof(buf)), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_id_to_string(id, NULL, sizeof(buf)), KW_ERR_INVALID_ARG);
  memset(buf, 'x', sizeof(buf));
  assert_int_equal(kw_id_to_short(id, buf, KW_ID_SHORTLEN), KW_ERR_BUFFER);
  assert_string_equal(buf, "");
  assert_int_equal(kw_id_to_short(id, buf, KW_ID_SHORTLEN + 1), KW_OK);
  assert_int_equal(strlen(buf), KW_ID_SHORTLEN);
  assert_int_equal(kw_id_to_short(NULL, buf, sizeof(buf)), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_id_to_short(id, NULL, sizeof(buf)), KW_ERR_INVALID_ARG);
}

static void test_from_string_rejects(void **state) {
  (void)state;
  uint8_t id[32], out[32];
  char good[KW_ID_STRLEN + 1], bad[KW_ID_STRLEN + 8];
  uint8_t sk[64];
  seed_key(sk);
  kw_key_id(sk, id);
  kw_id_to_string(id, good, sizeof(good));

  memset(out, 0xee, sizeof(out));
  assert_int_equal(kw_id_from_string("", out), KW_ERR_BAD_ID);
  /* One character short, one too many. */
  memcpy(bad, good, KW_ID_STRLEN - 1);
  bad[KW_ID_STRLEN - 1] = '\0';
  assert_int_equal(kw_id_from_string(bad, out), KW_ERR_BAD_ID);
  snprintf(bad, sizeof(bad), "%sa", good);
  assert_int_equal(kw_id_from_string(bad, out), KW_ERR_BAD_ID);
  snprintf(bad, sizeof(bad), "%s ", good);
  assert_int_equal(kw_id_from_string(bad, out), KW_ERR_BAD_ID);
  snprintf(bad, sizeof(bad), " %s", good);
  assert_int_equal(kw_id_from_string(bad, out), KW_ERR_BAD_ID);
  /* Characters outside the alphabet. */
  static const char badc[] = {'0', '1', '8', '9', '=', '-', ' ', '~'};
  for (size_t i = 0; i < sizeof(badc); i++) {
    memcpy(bad, good, sizeof(good));
    bad[7] = badc[i];
    assert_int_equal(kw_id_from_string(bad, out), KW_ERR_BAD_ID);
  }
  /* Non-canonical: any of the 4 trailing bits set. */
  memcpy(bad, good, sizeof(good));
  for (char c = 'b'; c <= 'p'; c++) {
    bad[51] = c;
    assert_int_equal(kw_id_from_string(bad, out), KW_ERR_BAD_ID);
  }
  /* Valid base32 of 32 bytes that is no valid Ed25519 point: all zeros
   * (small order) and 0xff..ff (non-canonical y). */
  uint8_t raw[32];
  char text[KW_ID_STRLEN + 1];
  memset(raw, 0, sizeof(raw));
  kw_id_to_string(raw, text, sizeof(text));
  assert_int_equal(kw_id_from_string(text, out), KW_ERR_BAD_ID);
  memset(raw, 0xff, sizeof(raw));
  kw_id_to_string(raw, text, sizeof(text));
  assert_int_equal(kw_id_from_string(text, out), KW_ERR_BAD_ID);
  /* y = 2 is not on the curve. */
  memset(raw, 0, sizeof(raw));
  raw[0] = 2;
  kw_id_to_string(raw, text, sizeof(text));
  assert_int_equal(kw_id_from_string(text, out), KW_ERR_BAD_ID);
  /* Nothing was written on failure. */
  for (size_t i = 0; i < sizeof(out); i++)
    assert_int_equal(out[i], 0xee);
  assert_int_equal(kw_id_from_string(NULL, out), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_id_from_string(good, NULL), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_id_from_string(good, out), KW_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_vector),
      cmocka_unit_test(test_generate),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_to_string_buffers),
      cmocka_unit_test(test_from_string_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
