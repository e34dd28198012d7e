/* SPDX-License-Identifier: MIT */
/* Unit tests of core/dht: a few nodes on an in-memory network. Core has
 * no SHA-1, so the nodes get a stand-in (BLAKE2b cut to 20 bytes): these
 * tests check the node's logic; real SHA-1 runs in the relay test
 * (tests/integration/test_dht.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/dht.h"
#include "core/krpc.h"

#define NODES 24 /* more than KW_DHT_OP_CANDS: lookups must choose */
#define QMAX 4096

typedef struct pkt {
  int to;
  kw_sockaddr from;
  uint8_t p[KW_KRPC_MAX_MSG];
  size_t n;
} pkt;

typedef struct net {
  kw__dht *d[NODES];
  int self[NODES];
  pkt q[QMAX];
  size_t head, tail;
  bool down[NODES];
  uint64_t now;
  /* results */
  int got;
  int64_t got_seq;
  bool got_item;
  int put_done;
  unsigned stored;
  /* raw replies to the test's own port (node index NODES) */
  kw__krpc_msg last;
  uint8_t last_buf[KW_KRPC_MAX_MSG];
} net;

static net N;

static void fake_sha1(void *ctx, const void *p, size_t n, uint8_t out[20]) {
  (void)ctx;
  crypto_generichash(out, 20, p, n, NULL, 0);
}

static kw_sockaddr addr_of(int i) {
  kw_sockaddr a;
  memset(&a, 0, sizeof a);
  a.family = 4;
  a.ip[0] = 198;
  a.ip[1] = 18;
  a.ip[3] = (uint8_t)(i + 1);
  a.port = 6881;
  return a;
}

static void send_cb(void *ctx, const kw_sockaddr *to, const uint8_t *p,
                    size_t n) {
  int from = *(int *)ctx;
  int dst = to->ip[3] - 1;
  if (dst < 0 || dst > NODES)
    return;
  size_t next = (N.tail + 1) % QMAX;
  if (next == N.head)
    return; /* full: dropped, as UDP would */
  pkt *k = &N.q[N.tail];
  k->to = dst;
  k->from = addr_of(from);
  memcpy(k->p, p, n);
  k->n = n;
  N.tail = next;
}

static void get_done(void *ctx, uint32_t op, const kw__dht_item *it) {
  (void)ctx;
  (void)op;
  N.got++;
  N.got_item = it != NULL;
  N.got_seq = it ? it->seq : -1;
}

static void put_done(void *ctx, uint32_t op, unsigned stored) {
  (void)ctx;
  (void)op;
  N.put_done++;
  N.stored = stored;
}

static void run(void) {
  for (int rounds = 0; rounds < 20000; rounds++) {
    while (N.head != N.tail) {
      pkt *k = &N.q[N.head];
      N.head = (N.head + 1) % QMAX;
      if (k->to == NODES) {
        memcpy(N.last_buf, k->p, k->n);
        kw__krpc_decode(N.last_buf, k->n, &N.last);
        continue;
      }
      if (!N.down[k->to])
        kw__dht_input(N.d[k->to], &k->from, k->p, k->n, N.now);
    }
    bool busy = false;
    for (int i = 0; i < NODES; i++) {
      kw__dht_tick(N.d[i], N.now);
      if (kw__dht_next_ms(N.d[i]) < N.now + 60000)
        busy = true;
    }
    if (!busy && N.head == N.tail)
      return;
    N.now += 100;
  }
}

static int setup(void **state) {
  (void)state;
  if (sodium_init() < 0)
    return -1;
  const char *sv = getenv("KW_DHT_TEST_SALT");
  uint32_t salt = sv ? (uint32_t)strtoul(sv, NULL, 10) : 1;
  memset(&N, 0, sizeof N);
  N.now = 1000;
  for (int i = 0; i < NODES; i++) {
    N.self[i] = i;
    kw__dht_cbs cbs = {fake_sha1, send_cb, get_done, put_done, &N.self[i]};
    uint8_t id[20]; /* fixed ids, so a failure reproduces */
    uint32_t seed[2] = {(uint32_t)i, salt};
    crypto_generichash(id, sizeof id, (const uint8_t *)seed, sizeof seed, NULL,
                       0);
    if (kw__dht_new(&cbs, id, N.now, &N.d[i]) != KW_OK)
      return -1;
  }
  kw_sockaddr boot = addr_of(0);
  for (int i = 1; i < NODES; i++)
    if (kw__dht_bootstrap(N.d[i], &boot, N.now) != KW_OK)
      return -1;
  run();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < NODES; i++)
    kw__dht_free(N.d[i]);
  return 0;
}

static void make_item(kw__dht_item *it, const uint8_t sk[64], int64_t seq,
                      const char *v) {
  memset(it, 0, sizeof *it);
  memcpy(it->k, sk + 32, 32);
  it->seq = seq;
  it->v_len = strlen(v);
  memcpy(it->v, v, it->v_len);
  assert_int_equal(kw__bep44_sign(sk, NULL, 0, seq, it->v, it->v_len, it->sig),
                   KW_OK);
}

static void bootstrap_fills_tables(void **state) {
  (void)state;
  for (int i = 0; i < NODES; i++)
    assert_true(kw__dht_node_count(N.d[i]) >= KW_DHT_K);
}

static void put_then_get(void **state) {
  (void)state;
  uint8_t pk[32], sk[64];
  crypto_sign_keypair(pk, sk);
  kw__dht_item it;
  make_item(&it, sk, 7, "5:hello");
  N.put_done = 0;
  assert_int_equal(kw__dht_put(N.d[3], &it, N.now, NULL), KW_OK);
  run();
  assert_int_equal(N.put_done, 1);
  assert_int_equal(N.stored, KW_DHT_K);
  for (int i = 0; i < NODES; i++) { /* every node finds it */
    N.got = 0;
    assert_int_equal(kw__dht_get(N.d[i], pk, NULL, 0, N.now, NULL), KW_OK);
    run();
    assert_int_equal(N.got, 1);
    assert_true(N.got_item);
    assert_int_equal(N.got_seq, 7);
  }

  /* a newer one replaces it; an older one is refused by every node that
   * holds the newer (others, not among the closest the first put found,
   * may take it: a get still returns the highest seq) */
  make_item(&it, sk, 9, "3:new");
  assert_int_equal(kw__dht_put(N.d[2], &it, N.now, NULL), KW_OK);
  run();
  assert_int_equal(N.stored, KW_DHT_K);
  uint8_t target[20];
  kw__bep44_target(fake_sha1, NULL, pk, NULL, 0, target);
  int64_t before[NODES];
  int holders = 0;
  for (int i = 0; i < NODES; i++) {
    const kw__dht_item *x = kw__dht_lookup_local(N.d[i], target);
    before[i] = x ? x->seq : -1;
    holders += before[i] == 9;
  }
  assert_true(holders >= KW_DHT_K);
  make_item(&it, sk, 8, "3:old");
  assert_int_equal(kw__dht_put(N.d[4], &it, N.now, NULL), KW_OK);
  run();
  assert_true(N.stored < KW_DHT_K);
  for (int i = 0; i < NODES; i++)
    if (before[i] == 9 && i != 4)
      assert_int_equal(kw__dht_lookup_local(N.d[i], target)->seq, 9);
  N.got = 0;
  assert_int_equal(kw__dht_get(N.d[0], pk, NULL, 0, N.now, NULL), KW_OK);
  run();
  assert_int_equal(N.got, 1);
  assert_int_equal(N.got_seq, 9);

  /* a forged item is refused by the API */
  it.sig[0] ^= 1;
  assert_int_equal(kw__dht_put(N.d[1], &it, N.now, NULL), KW_ERR_KEY_MISMATCH);

  /* a get for an unknown key ends without an item */
  uint8_t pk2[32], sk2[64];
  crypto_sign_keypair(pk2, sk2);
  N.got = 0;
  assert_int_equal(kw__dht_get(N.d[1], pk2, NULL, 0, N.now, NULL), KW_OK);
  run();
  assert_int_equal(N.got, 1);
  assert_false(N.got_item);
}

/* The test's own port speaks raw KRPC to node 0. */
static void raw(kw__krpc_msg *m) {
  uint8_t buf[KW_KRPC_MAX_MSG];
  size_t n;
  memcpy(m->t, "zz", 2);
  m->tlen = 2;
  m->has_id = true;
  memset(m->id, 0xEE, 20);
  assert_int_equal(kw__krpc_encode(m, buf, sizeof buf, &n), KW_OK);
  memset(&N.last, 0, sizeof N.last);
  kw_sockaddr me = addr_of(NODES);
  kw__dht_input(N.d[0], &me, buf, n, N.now);
  run();
}

static void forged_puts_refused(void **state) {
  (void)state;
  uint8_t pk[32], sk[64];
  crypto_sign_keypair(pk, sk);
  kw__dht_item it;
  make_item(&it, sk, 3, "4:real");
  uint8_t target[20];
  kw__bep44_target(fake_sha1, NULL, pk, NULL, 0, target);

  kw__krpc_msg m;
  memset(&m, 0, sizeof m);
  m.y = 'q';
  m.q = KW_KRPC_GET;
  m.has_target = true;
  memcpy(m.target, target, 20);
  raw(&m);
  assert_int_equal(N.last.y, 'r');
  assert_non_null(N.last.token);
  uint8_t token[KW_KRPC_MAX_TOKEN];
  size_t tlen = N.last.token_len;
  memcpy(token, N.last.token, tlen);

  memset(&m, 0, sizeof m);
  m.y = 'q';
  m.q = KW_KRPC_PUT;
  m.has_k = m.has_sig = m.has_seq = true;
  memcpy(m.k, it.k, 32);
  memcpy(m.sig, it.sig, 64);
  m.sig[10] ^= 0x40; /* forged */
  m.seq = it.seq;
  m.v = it.v;
  m.v_len = it.v_len;
  m.token = token;
  m.token_len = tlen;
  raw(&m);
  assert_int_equal(N.last.y, 'e');
  assert_int_equal(N.last.err_code, 206);
  assert_null(kw__dht_lookup_local(N.d[0], target));

  m.sig[10] ^= 0x40;
  uint8_t badtok[8] = {0};
  m.token = badtok;
  m.token_len = sizeof badtok;
  raw(&m);
  assert_int_equal(N.last.y, 'e');
  assert_int_equal(N.last.err_code, 203);

  m.token = token;
  m.token_len = tlen;
  raw(&m);
  assert_int_equal(N.last.y, 'r');
  assert_non_null(kw__dht_lookup_local(N.d[0], target));

  /* cas that does not match the stored seq */
  make_item(&it, sk, 4, "4:next");
  memcpy(m.sig, it.sig, 64);
  m.seq = 4;
  m.v = it.v;
  m.v_len = it.v_len;
  m.has_cas = true;
  m.cas = 2;
  raw(&m);
  assert_int_equal(N.last.err_code, 301);
  /* lower seq */
  make_item(&it, sk, 1, "3:old");
  memcpy(m.sig, it.sig, 64);
  m.seq = 1;
  m.v = it.v;
  m.v_len = it.v_len;
  m.has_cas = false;
  raw(&m);
  assert_int_equal(N.last.err_code, 302);
  assert_int_equal(kw__dht_lookup_local(N.d[0], target)->seq, 3);

  /* an unknown method */
  memset(&m, 0, sizeof m);
  m.y = 'q';
  m.q = KW_KRPC_PING;
  raw(&m);
  assert_int_equal(N.last.y, 'r');
}

static void dead_nodes_time_out(void **state) {
  (void)state;
  uint8_t pk[32], sk[64];
  crypto_sign_keypair(pk, sk);
  kw__dht_item it;
  make_item(&it, sk, 1, "1:x");
  for (int i = 2; i < 6; i++)
    N.down[i] = true;
  uint64_t t0 = N.now;
  assert_int_equal(kw__dht_put(N.d[1], &it, N.now, NULL), KW_OK);
  run();
  assert_true(N.now - t0 <= KW_DHT_OP_MS + 200);
  /* dead nodes time out; the live ones among the closest still store it
   * (farther ones take a dead one's place only if some node names them) */
  assert_true(N.stored >= KW_DHT_K - 4 && N.stored <= KW_DHT_K);
  N.got = 0;
  assert_int_equal(kw__dht_get(N.d[7], pk, NULL, 0, N.now, NULL), KW_OK);
  run();
  assert_int_equal(N.got_seq, 1);
  for (int i = 2; i < 6; i++)
    N.down[i] = false;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bootstrap_fills_tables),
      cmocka_unit_test(put_then_get),
      cmocka_unit_test(forged_puts_refused),
      cmocka_unit_test(dead_nodes_time_out),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
