/* SPDX-License-Identifier: MIT */
/* Unit tests of core/lookup_store: ordering, expiry, eviction policy, and a
 * randomized comparison against a reference model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/lookup_store.h"

#define NKEYS 40
#define SEC 1000000ull
#define T0 (1700000000ull * SEC)

static uint8_t sks[NKEYS][64], ids[NKEYS][32];

static int setup(void **state) {
  (void)state;
  if (sodium_init() < 0)
    return -1;
  for (int i = 0; i < NKEYS; i++) {
    uint8_t seed[32];
    memset(seed, i + 1, sizeof(seed));
    crypto_sign_seed_keypair(ids[i], sks[i], seed);
  }
  return 0;
}

/* Encodes a record of key k. */
static size_t mk(uint8_t *out, int k, uint64_t ts, uint32_t ttl) {
  kw__record r;
  memset(&r, 0, sizeof(r));
  memcpy(r.addr.id, ids[k], 32);
  r.timestamp_us = ts;
  r.ttl_s = ttl;
  r.addr.n_addrs = 1;
  r.addr.addrs[0].family = 4;
  r.addr.addrs[0].ip[0] = 127;
  r.addr.addrs[0].ip[3] = 1;
  r.addr.addrs[0].port = (uint16_t)(1000 + k);
  size_t n = 0;
  assert_int_equal(kw__record_encode(&r, sks[k], out, KW_RECORD_MAX_LEN, &n),
                   KW_OK);
  return n;
}

static void test_put_get(void **state) {
  (void)state;
  kw__lookup_store *s;
  assert_int_equal(kw__lookup_store_new(4, &s), KW_OK);
  uint8_t rec[KW_RECORD_MAX_LEN], out[KW_RECORD_MAX_LEN];
  size_t n = mk(rec, 0, T0, 60), got;
  kw__record parsed;
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, &parsed), KW_OK);
  assert_memory_equal(parsed.addr.id, ids[0], 32);
  assert_int_equal(kw__lookup_store_count(s), 1);
  assert_int_equal(kw__lookup_store_get(s, ids[0], T0, out, sizeof(out), &got),
                   KW_OK);
  assert_int_equal(got, n);
  assert_memory_equal(out, rec, n);
  /* small buffer: size reported */
  got = 0;
  assert_int_equal(kw__lookup_store_get(s, ids[0], T0, out, n - 1, &got),
                   KW_ERR_BUFFER);
  assert_int_equal(got, n);
  assert_int_equal(kw__lookup_store_get(s, ids[0], T0, NULL, 0, &got),
                   KW_ERR_BUFFER);
  /* unknown id */
  assert_int_equal(kw__lookup_store_get(s, ids[1], T0, out, sizeof(out), &got),
                   KW_ERR_NOT_FOUND);
  kw__lookup_store_free(s);
  kw__lookup_store_free(NULL);
}

static void test_ordering(void **state) {
  (void)state;
  kw__lookup_store *s;
  assert_int_equal(kw__lookup_store_new(4, &s), KW_OK);
  uint8_t r1[KW_RECORD_MAX_LEN], r2[KW_RECORD_MAX_LEN], r3[KW_RECORD_MAX_LEN],
      out[KW_RECORD_MAX_LEN];
  size_t n1 = mk(r1, 0, T0 + 10, 60), n2 = mk(r2, 0, T0 + 10, 120),
         n3 = mk(r3, 0, T0 + 9, 600), got;
  assert_int_equal(kw__lookup_store_put(s, r1, n1, T0, NULL), KW_OK);
  /* equal timestamp, older timestamp: refused, old record kept */
  assert_int_equal(kw__lookup_store_put(s, r2, n2, T0, NULL), KW_ERR_STATE);
  assert_int_equal(kw__lookup_store_put(s, r3, n3, T0, NULL), KW_ERR_STATE);
  assert_int_equal(kw__lookup_store_put(s, r1, n1, T0, NULL), KW_ERR_STATE);
  assert_int_equal(kw__lookup_store_get(s, ids[0], T0, out, sizeof(out), &got),
                   KW_OK);
  assert_memory_equal(out, r1, n1);
  /* newer replaces, and its longer ttl counts */
  uint8_t r4[KW_RECORD_MAX_LEN];
  size_t n4 = mk(r4, 0, T0 + 11, 600);
  assert_int_equal(kw__lookup_store_put(s, r4, n4, T0, NULL), KW_OK);
  assert_int_equal(kw__lookup_store_count(s), 1);
  assert_int_equal(
      kw__lookup_store_get(s, ids[0], T0 + 100 * SEC, out, sizeof(out), &got),
      KW_OK);
  assert_memory_equal(out, r4, n4);
  kw__lookup_store_free(s);
}

static void test_expiry(void **state) {
  (void)state;
  kw__lookup_store *s;
  assert_int_equal(kw__lookup_store_new(8, &s), KW_OK);
  uint8_t rec[KW_RECORD_MAX_LEN], out[KW_RECORD_MAX_LEN];
  size_t got;
  /* already expired when put */
  size_t n = mk(rec, 0, T0, 60);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0 + 60 * SEC, NULL),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0 + 60 * SEC - 1, NULL),
                   KW_OK);
  /* expired when read: dropped */
  assert_int_equal(kw__lookup_store_get(s, ids[0], T0 + 60 * SEC - 1, out,
                                        sizeof(out), &got),
                   KW_OK);
  assert_int_equal(
      kw__lookup_store_get(s, ids[0], T0 + 60 * SEC, out, sizeof(out), &got),
      KW_ERR_NOT_FOUND);
  assert_int_equal(kw__lookup_store_count(s), 0);
  /* from the future: within the skew allowance or not */
  n = mk(rec, 1, T0 + KW_LOOKUP_MAX_SKEW_US, 60);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL), KW_OK);
  n = mk(rec, 2, T0 + KW_LOOKUP_MAX_SKEW_US + 1, 60);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__lookup_store_get(s, ids[2], T0, out, sizeof(out), &got),
                   KW_ERR_NOT_FOUND);
  /* expire() drops exactly the expired ones */
  for (int k = 3; k < 8; k++) {
    n = mk(rec, k, T0, (uint32_t)(10 * k));
    assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL), KW_OK);
  }
  assert_int_equal(kw__lookup_store_count(s), 6);
  assert_int_equal(kw__lookup_store_expire(s, T0 + 50 * SEC), 3); /* 3,4,5 */
  assert_int_equal(kw__lookup_store_count(s), 3);
  assert_int_equal(kw__lookup_store_get(s, ids[6], T0, out, sizeof(out), &got),
                   KW_OK);
  assert_int_equal(kw__lookup_store_get(s, ids[5], T0, out, sizeof(out), &got),
                   KW_ERR_NOT_FOUND);
  assert_int_equal(kw__lookup_store_expire(s, UINT64_MAX), 3);
  assert_int_equal(kw__lookup_store_count(s), 0);
  kw__lookup_store_free(s);
}

static void test_eviction_policy(void **state) {
  (void)state;
  kw__lookup_store *s;
  assert_int_equal(kw__lookup_store_new(3, &s), KW_OK);
  uint8_t rec[KW_RECORD_MAX_LEN], out[KW_RECORD_MAX_LEN];
  size_t n, got;
  /* put order k0, k1, k2; the TTLs do not matter for eviction */
  const uint32_t ttl[3] = {300, 100, 200};
  for (int k = 0; k < 3; k++) {
    n = mk(rec, k, T0, ttl[k]);
    assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL), KW_OK);
  }
  /* full: the oldest stored (k0) goes, even for a record expiring sooner */
  n = mk(rec, 3, T0, 50);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL), KW_OK);
  assert_int_equal(kw__lookup_store_count(s), 3);
  assert_int_equal(kw__lookup_store_get(s, ids[0], T0, out, sizeof(out), &got),
                   KW_ERR_NOT_FOUND);
  /* an update makes a record the youngest: k1 refreshed, so k2 goes next */
  n = mk(rec, 1, T0 + 1, 100);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL), KW_OK);
  assert_int_equal(kw__lookup_store_count(s), 3);
  n = mk(rec, 4, T0, 150);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL), KW_OK);
  assert_int_equal(kw__lookup_store_get(s, ids[2], T0, out, sizeof(out), &got),
                   KW_ERR_NOT_FOUND);
  assert_int_equal(kw__lookup_store_get(s, ids[1], T0, out, sizeof(out), &got),
                   KW_OK);
  /* expired ones make room first (k3, TTL 50, is expired at +60 s) */
  n = mk(rec, 6, T0 + 60 * SEC, 60);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0 + 60 * SEC, NULL), KW_OK);
  assert_int_equal(
      kw__lookup_store_get(s, ids[1], T0 + 60 * SEC, out, sizeof(out), &got),
      KW_OK);
  assert_int_equal(
      kw__lookup_store_get(s, ids[4], T0 + 60 * SEC, out, sizeof(out), &got),
      KW_OK);
  kw__lookup_store_free(s);
}

/* The attack: a stranger fills the store with long-lived records of fresh
 * ids dated as far ahead as allowed; the record of a connected endpoint
 * stays and its re-PUT is stored; when every record is pinned, new ones are
 * refused; unpinned records go oldest first. */
static void test_pinned_survive_flood(void **state) {
  (void)state;
  kw__lookup_store *s;
  assert_int_equal(kw__lookup_store_new(4, &s), KW_OK);
  uint8_t rec[KW_RECORD_MAX_LEN], out[KW_RECORD_MAX_LEN];
  size_t n, got;
  n = mk(rec, 0, T0, 60); /* the connected endpoint, short TTL */
  assert_int_equal(kw__lookup_store_put_pinned(s, rec, n, T0, true, NULL),
                   KW_OK);
  n = mk(rec, 1, T0, 60); /* a disconnected one, pinned later */
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL), KW_OK);
  kw__lookup_store_pin(s, ids[1], true);
  /* dated ahead by more than the skew allowance: refused */
  n = mk(rec, 2, T0 + 290 * SEC, 86400);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL),
                   KW_ERR_INVALID_ARG);
  for (int k = 2; k < 30; k++) {
    n = mk(rec, k, T0 + KW_LOOKUP_MAX_SKEW_US, 86400);
    assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL), KW_OK);
    assert_int_equal(kw__lookup_store_count(s), k < 4 ? k + 1 : 4);
  }
  assert_int_equal(kw__lookup_store_get(s, ids[0], T0, out, sizeof(out), &got),
                   KW_OK);
  assert_int_equal(kw__lookup_store_get(s, ids[1], T0, out, sizeof(out), &got),
                   KW_OK);
  /* the last two attacker records are the ones left */
  assert_int_equal(kw__lookup_store_get(s, ids[29], T0, out, sizeof(out), &got),
                   KW_OK);
  assert_int_equal(kw__lookup_store_get(s, ids[28], T0, out, sizeof(out), &got),
                   KW_OK);
  assert_int_equal(kw__lookup_store_get(s, ids[27], T0, out, sizeof(out), &got),
                   KW_ERR_NOT_FOUND);
  /* the connected endpoint republishes: stored */
  n = mk(rec, 0, T0 + 1, 60);
  assert_int_equal(kw__lookup_store_put_pinned(s, rec, n, T0, true, NULL),
                   KW_OK);
  /* all pinned: a stranger's record is refused, nothing is evicted */
  kw__lookup_store_pin(s, ids[28], true);
  kw__lookup_store_pin(s, ids[29], true);
  n = mk(rec, 30, T0, 60);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL), KW_ERR_FULL);
  assert_int_equal(kw__lookup_store_count(s), 4);
  /* k1 disconnects: its record becomes evictable (the only one) */
  kw__lookup_store_pin(s, ids[1], false);
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL), KW_OK);
  assert_int_equal(kw__lookup_store_get(s, ids[1], T0, out, sizeof(out), &got),
                   KW_ERR_NOT_FOUND);
  /* pinning an id without a record is harmless */
  kw__lookup_store_pin(s, ids[39], true);
  kw__lookup_store_pin(s, ids[39], false);
  kw__lookup_store_free(s);
}

static void test_rejects(void **state) {
  (void)state;
  kw__lookup_store *s;
  assert_int_equal(kw__lookup_store_new(0, &s), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__lookup_store_new(2, NULL), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__lookup_store_new(2, &s), KW_OK);
  uint8_t rec[KW_RECORD_MAX_LEN];
  size_t n = mk(rec, 0, T0, 60);
  rec[n - 1] ^= 1;
  assert_int_equal(kw__lookup_store_put(s, rec, n, T0, NULL),
                   KW_ERR_KEY_MISMATCH);
  assert_int_equal(kw__lookup_store_put(s, rec, n - 1, T0, NULL), KW_ERR_PARSE);
  assert_int_equal(kw__lookup_store_put(s, NULL, 0, T0, NULL), KW_ERR_PARSE);
  assert_int_equal(kw__lookup_store_put(s, NULL, 5, T0, NULL),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__lookup_store_count(s), 0);
  kw__lookup_store_free(s);
}

/* Reference model of the documented policy. */
typedef struct model {
  bool present[NKEYS];
  bool pinned[NKEYS];
  uint64_t seq[NKEYS], next_seq; /* put (or unpin) order */
  uint64_t ts[NKEYS], exp[NKEYS];
  uint8_t bytes[NKEYS][KW_RECORD_MAX_LEN];
  size_t len[NKEYS];
  size_t count, cap;
} model;

static kw_err model_put(model *m, int k, uint64_t ts, uint64_t exp,
                        const uint8_t *rec, size_t n, uint64_t now,
                        bool pinned) {
  if (exp <= now)
    return KW_ERR_INVALID_ARG;
  if (ts > now && ts - now > KW_LOOKUP_MAX_SKEW_US)
    return KW_ERR_INVALID_ARG;
  for (int i = 0; i < NKEYS; i++)
    if (m->present[i] && m->exp[i] <= now) {
      m->present[i] = false;
      m->count--;
    }
  if (m->present[k]) {
    if (ts <= m->ts[k])
      return KW_ERR_STATE;
  } else if (m->count == m->cap) {
    int old = -1;
    for (int i = 0; i < NKEYS; i++)
      if (m->present[i] && !m->pinned[i] &&
          (old < 0 || m->seq[i] < m->seq[old]))
        old = i;
    if (old < 0)
      return KW_ERR_FULL;
    m->present[old] = false;
    m->count--;
  }
  m->pinned[k] = pinned;
  m->seq[k] = ++m->next_seq;
  if (!m->present[k])
    m->count++;
  m->present[k] = true;
  m->ts[k] = ts;
  m->exp[k] = exp;
  memcpy(m->bytes[k], rec, n);
  m->len[k] = n;
  return KW_OK;
}

static void test_against_model(void **state) {
  (void)state;
  static model m;
  memset(&m, 0, sizeof(m));
  m.cap = 8;
  kw__lookup_store *s;
  assert_int_equal(kw__lookup_store_new(m.cap, &s), KW_OK);
  uint32_t x = 2024;
  uint64_t now = T0;
  uint64_t uniq = 1;
  for (int step = 0; step < 3000; step++) {
    x = x * 1103515245u + 12345u;
    int k = (int)((x >> 8) % NKEYS);
    unsigned op = (x >> 20) % 12;
    if (op >= 10) { /* connect or disconnect */
      bool pin = op == 10;
      kw__lookup_store_pin(s, ids[k], pin);
      if (m.present[k] && m.pinned[k] != pin) {
        m.pinned[k] = pin;
        if (!pin)
          m.seq[k] = ++m.next_seq;
      }
    } else if (op < 6) {
      /* timestamps near now, unique below the second so expiries differ */
      uint64_t ts = now - 30 * SEC + ((x >> 4) % 40) * SEC + uniq++;
      uint32_t ttl = 1 + (x >> 12) % 90;
      uint8_t rec[KW_RECORD_MAX_LEN];
      size_t n = mk(rec, k, ts, ttl);
      bool pin = (x >> 28) & 1;
      kw_err want = model_put(&m, k, ts, ts + ttl * SEC, rec, n, now, pin);
      assert_int_equal(kw__lookup_store_put_pinned(s, rec, n, now, pin, NULL),
                       want);
    } else if (op < 9) {
      uint8_t out[KW_RECORD_MAX_LEN];
      size_t got;
      kw_err e = kw__lookup_store_get(s, ids[k], now, out, sizeof(out), &got);
      if (m.present[k] && m.exp[k] <= now) {
        m.present[k] = false;
        m.count--;
      }
      if (m.present[k]) {
        assert_int_equal(e, KW_OK);
        assert_int_equal(got, m.len[k]);
        assert_memory_equal(out, m.bytes[k], got);
      } else {
        assert_int_equal(e, KW_ERR_NOT_FOUND);
      }
    } else {
      now += ((x >> 6) % 20) * SEC;
    }
    assert_int_equal(kw__lookup_store_count(s), m.count);
    assert_true(m.count <= m.cap);
  }
  kw__lookup_store_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_get),
      cmocka_unit_test(test_ordering),
      cmocka_unit_test(test_expiry),
      cmocka_unit_test(test_eviction_policy),
      cmocka_unit_test(test_rejects),
      cmocka_unit_test(test_against_model),
      cmocka_unit_test(test_pinned_survive_flood),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
