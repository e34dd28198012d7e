/* SPDX-License-Identifier: MIT */
/* Unit tests of core/pkarr: records to pkarr DNS packets and back, the
 * PUT /pkarr body and its BEP 44 signature, refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/bep44.h"
#include "core/pkarr.h"

static uint8_t sk[64], id[32];

static int setup(void **state) {
  (void)state;
  if (sodium_init() < 0)
    return -1;
  uint8_t seed[32];
  memset(seed, 7, sizeof seed);
  crypto_sign_seed_keypair(id, sk, seed);
  return 0;
}

static size_t make(uint8_t *rec, size_t n_addrs, const char *url) {
  kw__record r;
  memset(&r, 0, sizeof r);
  memcpy(r.addr.id, id, 32);
  snprintf(r.addr.relay_url, sizeof r.addr.relay_url, "%s", url);
  r.timestamp_us = 1764000000000000ull;
  r.ttl_s = 3600;
  for (size_t i = 0; i < n_addrs; i++) {
    kw_sockaddr *a = &r.addr.addrs[i];
    a->family = i % 2 ? 6 : 4;
    a->ip[0] = 198;
    a->ip[1] = 18;
    a->ip[15] = a->ip[3] = (uint8_t)i;
    a->port = (uint16_t)(1000 + i);
  }
  r.addr.n_addrs = n_addrs;
  size_t n;
  assert_int_equal(kw__record_encode(&r, sk, rec, KW_RECORD_MAX_LEN, &n), KW_OK);
  return n;
}

static void z32(void **state) {
  (void)state;
  uint8_t zero[32] = {0};
  char z[KW_PKARR_Z32_LEN + 1];
  kw__pkarr_z32(zero, z);
  assert_int_equal(strlen(z), 52);
  assert_string_equal(z, "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
  uint8_t ff[32];
  memset(ff, 0xFF, 32);
  kw__pkarr_z32(ff, z);
  assert_int_equal(z[0], '9');
  assert_int_equal(z[51], 'o'); /* one bit set, four padding bits: 10000 */
}

static void round_trip(void **state) {
  (void)state;
  for (size_t na = 0; na <= 4; na++) {
    uint8_t rec[KW_RECORD_MAX_LEN], pkt[KW_PKARR_MAX_PACKET], back[KW_RECORD_MAX_LEN];
    size_t rl = make(rec, na, na == 2 ? "" : "https://relay.example:443"), pl, bl;
    assert_int_equal(kw__pkarr_packet(rec, rl, pkt, sizeof pkt, &pl), KW_OK);
    kw__record r;
    assert_int_equal(kw__pkarr_record(pkt, pl, id, 1764000000000000ll, back,
                                      sizeof back, &bl, &r),
                     KW_OK);
    assert_int_equal(bl, rl);
    assert_memory_equal(back, rec, rl);
    assert_int_equal(r.addr.n_addrs, na);
    /* another seq than the record's timestamp: signature fails */
    assert_int_equal(kw__pkarr_record(pkt, pl, id, 1764000000000001ll, back,
                                      sizeof back, &bl, NULL),
                     KW_ERR_KEY_MISMATCH);
    /* another id: the names do not match, no sig found */
    uint8_t other[32];
    memset(other, 1, 32);
    assert_int_equal(kw__pkarr_record(pkt, pl, other, 1764000000000000ll, back,
                                      sizeof back, &bl, NULL),
                     KW_ERR_PARSE);
    /* every truncation is refused */
    for (size_t cut = 0; cut < pl; cut++)
      assert_int_not_equal(kw__pkarr_record(pkt, cut, id, 1764000000000000ll,
                                            back, sizeof back, &bl, NULL),
                           KW_OK);
  }
  /* the packet holds readable TXT strings under _keyway.<z32> */
  uint8_t rec[KW_RECORD_MAX_LEN], pkt[KW_PKARR_MAX_PACKET];
  size_t rl = make(rec, 1, "https://r.example:443"), pl;
  assert_int_equal(kw__pkarr_packet(rec, rl, pkt, sizeof pkt, &pl), KW_OK);
  assert_memory_equal(pkt + 12, "\x07_keyway\x34", 9);
  assert_non_null(memmem(pkt, pl, "relay=https://r.example:443", 27));
  assert_non_null(memmem(pkt, pl, "addr=198.18.0.0:1000", 20));
}

static void too_big(void **state) {
  (void)state;
  char url[KW_MAX_RELAY_URL + 1];
  memset(url, 'a', KW_MAX_RELAY_URL - 8);
  memcpy(url, "https://", 8);
  url[KW_MAX_RELAY_URL - 8] = '\0';
  uint8_t rec[KW_RECORD_MAX_LEN], pkt[KW_PKARR_MAX_PACKET];
  kw__record r;
  memset(&r, 0, sizeof r);
  memcpy(r.addr.id, id, 32);
  snprintf(r.addr.relay_url, sizeof r.addr.relay_url, "%s", url);
  r.timestamp_us = 1;
  r.ttl_s = 60;
  r.addr.n_addrs = KW_MAX_DIRECT_ADDRS;
  for (size_t i = 0; i < KW_MAX_DIRECT_ADDRS; i++) {
    r.addr.addrs[i].family = 6;
    memset(r.addr.addrs[i].ip, 0x11 + (int)i, 16);
    r.addr.addrs[i].port = 65000;
  }
  size_t rl, pl;
  assert_int_equal(kw__record_encode(&r, sk, rec, sizeof rec, &rl), KW_OK);
  assert_int_equal(kw__pkarr_packet(rec, rl, pkt, sizeof pkt, &pl),
                   KW_ERR_BUFFER);
}

static void body(void **state) {
  (void)state;
  uint8_t rec[KW_RECORD_MAX_LEN], b[KW_PKARR_MAX_BODY];
  size_t rl = make(rec, 2, "https://relay.example:443"), bl;
  assert_int_equal(kw__pkarr_body(rec, rl, sk, b, sizeof b, &bl), KW_OK);
  kw__pkarr_item it;
  assert_int_equal(kw__pkarr_body_open(b, bl, id, &it), KW_OK);
  assert_true(it.seq == 1764000000000000ll);
  assert_true(kw__bep44_verify(id, NULL, 0, it.seq, it.v, it.v_len, it.sig));
  uint8_t back[KW_RECORD_MAX_LEN];
  size_t back_len;
  assert_int_equal(kw__pkarr_record(it.packet, it.packet_len, id, it.seq, back,
                                    sizeof back, &back_len, NULL),
                   KW_OK);
  assert_memory_equal(back, rec, rl);
  b[bl - 1] ^= 1; /* forged */
  assert_int_equal(kw__pkarr_body_open(b, bl, id, &it), KW_ERR_KEY_MISMATCH);
  assert_int_equal(kw__pkarr_body_open(b, 40, id, &it), KW_ERR_PARSE);
  /* a key that is not the record's */
  uint8_t sk2[64], id2[32];
  crypto_sign_keypair(id2, sk2);
  assert_int_equal(kw__pkarr_body(rec, rl, sk2, b, sizeof b, &bl),
                   KW_ERR_INVALID_ARG);
}

static void compression_loops(void **state) {
  (void)state;
  /* a header with one answer whose name points at itself */
  uint8_t p[] = {0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xC0, 12,
                 0, 16, 0, 1, 0, 0, 0, 1, 0, 0};
  uint8_t back[KW_RECORD_MAX_LEN];
  size_t bl;
  assert_int_equal(kw__pkarr_record(p, sizeof p, id, 1, back, sizeof back, &bl,
                                    NULL),
                   KW_ERR_PARSE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(z32),
      cmocka_unit_test(round_trip),
      cmocka_unit_test(too_big),
      cmocka_unit_test(body),
      cmocka_unit_test(compression_loops),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
