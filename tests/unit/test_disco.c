/* SPDX-License-Identifier: MIT */
/* Unit tests of core/disco: sealing and opening, every rejection path, and
 * the docs/protocol/disco.md rules (replay, no amplification, pong rate limit, relay
 * rule), each by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/buf.h"
#include "core/disco.h"

typedef struct peer {
  uint8_t sk[KW_SECRET_KEY_LEN];
  uint8_t id[KW_ID_LEN];
} peer;

static void make_peer(peer *p, uint8_t seed_byte) {
  uint8_t seed[crypto_sign_SEEDBYTES];
  memset(seed, seed_byte, sizeof(seed));
  assert_int_equal(crypto_sign_seed_keypair(p->id, p->sk, seed), 0);
}

typedef struct fixture {
  peer a, b, c;
  kw__disco_key ab, ba, cb;
} fixture;

static int setup(void **state) {
  assert_true(sodium_init() >= 0);
  static fixture f;
  make_peer(&f.a, 1);
  make_peer(&f.b, 2);
  make_peer(&f.c, 3);
  assert_int_equal(kw__disco_key_derive(f.a.sk, f.b.id, &f.ab), KW_OK);
  assert_int_equal(kw__disco_key_derive(f.b.sk, f.a.id, &f.ba), KW_OK);
  assert_int_equal(kw__disco_key_derive(f.c.sk, f.b.id, &f.cb), KW_OK);
  *state = &f;
  return 0;
}

static kw_sockaddr addr(const char *s) {
  kw_sockaddr a;
  assert_int_equal(kw_sockaddr_parse(s, &a), KW_OK);
  return a;
}

static kw__disco_msg ping_msg(uint8_t tx, size_t pad) {
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_PING;
  m.ts_ms = 1700000000000ull;
  memset(m.tx_id, tx, sizeof(m.tx_id));
  m.pad = pad;
  return m;
}

/* Seals an arbitrary plaintext from a to b, bypassing kw__disco_seal's
 * checks, to exercise the parser's rejections. */
static size_t raw_seal(const fixture *f, const uint8_t *plain, size_t plen,
                       uint8_t *out) {
  static const uint8_t magic[8] = {'K', 'W', 'd', 'i', 's', 'c', 'o', 1};
  memcpy(out, magic, 8);
  memcpy(out + 8, f->a.id, KW_ID_LEN);
  randombytes_buf(out + 40, 24);
  assert_int_equal(
      crypto_box_easy_afternm(out + 64, plain, plen, out + 40, f->ab.k), 0);
  return 64 + 16 + plen;
}

/* Plaintext header: type + timestamp. */
static size_t plain_hdr(uint8_t *p, uint8_t type) {
  kw__wbuf w;
  kw__wbuf_init(&w, p, 9);
  kw__wbuf_u8(&w, type);
  kw__wbuf_u64(&w, 1700000000000ull);
  return w.off;
}

static size_t plain_addr(uint8_t *p, uint8_t fam, uint8_t fill, uint16_t port) {
  p[0] = fam;
  memset(p + 1, 0, 16);
  memset(p + 1, fill, fam == 4 ? 4 : 16);
  p[17] = (uint8_t)(port >> 8);
  p[18] = (uint8_t)port;
  return 19;
}

/* ---- magic / keys -------------------------------------------------------- */

static void test_magic_detects_disco_only(void **state) {
  (void)state;
  const uint8_t good[] = {'K', 'W', 'd', 'i', 's', 'c', 'o', 1, 0};
  assert_true(kw__disco_is(good, 8));
  assert_true(kw__disco_is(good, sizeof(good)));
  assert_false(kw__disco_is(good, 7));
  const uint8_t v2[] = {'K', 'W', 'd', 'i', 's', 'c', 'o', 2};
  assert_false(kw__disco_is(v2, 8));
  const uint8_t stun[8] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42};
  assert_false(kw__disco_is(stun, 8));
  const uint8_t quic[8] = {0xc0, 0, 0, 0, 1, 8, 1, 2};
  assert_false(kw__disco_is(quic, 8));
  assert_false(kw__disco_is(NULL, 8));
}

static void test_key_derive_is_symmetric(void **state) {
  fixture *f = *state;
  assert_memory_equal(f->ab.k, f->ba.k, 32);
  assert_memory_not_equal(f->ab.k, f->cb.k, 32);
}

static void test_key_derive_rejects_bad_ids(void **state) {
  fixture *f = *state;
  kw__disco_key k;
  uint8_t id[KW_ID_LEN] = {0};
  assert_int_equal(kw__disco_key_derive(f->a.sk, id, &k), KW_ERR_BAD_ID);
  id[0] = 1; /* the identity point: small order */
  assert_int_equal(kw__disco_key_derive(f->a.sk, id, &k), KW_ERR_BAD_ID);
  memset(id, 0xff, sizeof(id)); /* not a canonical point */
  assert_int_equal(kw__disco_key_derive(f->a.sk, id, &k), KW_ERR_BAD_ID);
  assert_int_equal(kw__disco_key_derive(NULL, f->b.id, &k), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__disco_key_derive(f->a.sk, f->b.id, NULL),
                   KW_ERR_INVALID_ARG);
}

static void test_key_wipe(void **state) {
  fixture *f = *state;
  kw__disco_key k = f->ab;
  kw__disco_key_wipe(&k);
  uint8_t zero[32] = {0};
  assert_memory_equal(k.k, zero, 32);
}

/* ---- round trips ------------------------------------------------------- */

static void test_ping_round_trip(void **state) {
  fixture *f = *state;
  kw__disco_msg m = ping_msg(7, 0), o;
  memset(m.sender, 0xee, sizeof(m.sender)); /* ignored: our id is used */
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_OK);
  assert_int_equal(n, KW_DISCO_PING_MIN_LEN);
  assert_int_equal(n, 133);
  assert_true(kw__disco_is(buf, n));
  uint8_t who[KW_ID_LEN];
  assert_int_equal(kw__disco_peek_sender(buf, n, who), KW_OK);
  assert_memory_equal(who, f->a.id, KW_ID_LEN);
  assert_int_equal(kw__disco_open(&f->ba, buf, n, &o), KW_OK);
  assert_int_equal(o.type, KW_DISCO_PING);
  assert_int_equal(o.ts_ms, m.ts_ms);
  assert_memory_equal(o.tx_id, m.tx_id, KW_DISCO_TXID_LEN);
  assert_memory_equal(o.sender, f->a.id, KW_ID_LEN);
  assert_int_equal(o.pad, 0);
  assert_memory_equal(o.nonce, buf + 40, KW_DISCO_NONCE_LEN);
}

static void test_ping_padding_round_trip(void **state) {
  fixture *f = *state;
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  kw__disco_msg m = ping_msg(1, 100), o;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_OK);
  assert_int_equal(n, KW_DISCO_PING_MIN_LEN + 100);
  assert_int_equal(kw__disco_open(&f->ba, buf, n, &o), KW_OK);
  assert_int_equal(o.pad, 100);
  /* The largest padding makes exactly KW_DISCO_MAX_LEN. */
  m.pad = KW_DISCO_MAX_PAD;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_OK);
  assert_int_equal(n, KW_DISCO_MAX_LEN);
  assert_int_equal(kw__disco_open(&f->ba, buf, n, &o), KW_OK);
  assert_int_equal(o.pad, KW_DISCO_MAX_PAD);
  m.pad = KW_DISCO_MAX_PAD + 1;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(n, 0);
}

static void test_pong_round_trip_v4_v6(void **state) {
  fixture *f = *state;
  const char *addrs[] = {"198.18.0.1:4242", "[2001:db8::1]:65535"};
  for (int i = 0; i < 2; i++) {
    kw__disco_msg m, o;
    memset(&m, 0, sizeof(m));
    m.type = KW_DISCO_PONG;
    m.ts_ms = 42;
    memset(m.tx_id, 9, sizeof(m.tx_id));
    m.addr = addr(addrs[i]);
    uint8_t buf[KW_DISCO_MAX_LEN];
    size_t n;
    assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                     KW_OK);
    assert_int_equal(n, KW_DISCO_PONG_LEN);
    assert_int_equal(n, 120);
    assert_int_equal(kw__disco_open(&f->ba, buf, n, &o), KW_OK);
    assert_int_equal(o.type, KW_DISCO_PONG);
    assert_int_equal(o.ts_ms, 42);
    assert_memory_equal(o.tx_id, m.tx_id, KW_DISCO_TXID_LEN);
    assert_true(o.addr.family == m.addr.family);
    assert_int_equal(o.addr.port, m.addr.port);
    assert_memory_equal(o.addr.ip, m.addr.ip, m.addr.family == 4 ? 4 : 16);
  }
}

static void test_pong_v4_ignores_junk_past_four_bytes(void **state) {
  fixture *f = *state;
  kw__disco_msg m, o;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_PONG;
  m.addr = addr("198.18.0.9:9");
  memset(m.addr.ip + 4, 0xaa, 12); /* not part of an IPv4 address */
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_OK);
  assert_int_equal(kw__disco_open(&f->ba, buf, n, &o), KW_OK);
  uint8_t zero[12] = {0};
  assert_memory_equal(o.addr.ip + 4, zero, 12);
}

static void test_call_me_maybe_round_trip(void **state) {
  fixture *f = *state;
  for (size_t count = 0; count <= KW_MAX_DIRECT_ADDRS; count++) {
    kw__disco_msg m, o;
    memset(&m, 0, sizeof(m));
    m.type = KW_DISCO_CALL_ME_MAYBE;
    m.ts_ms = 5;
    m.n_addrs = count;
    for (size_t i = 0; i < count; i++) {
      m.addrs[i].family = (i & 1) ? 6 : 4;
      m.addrs[i].ip[0] = 198;
      m.addrs[i].ip[3] = (uint8_t)i;
      m.addrs[i].port = (uint16_t)(1000 + i);
    }
    uint8_t buf[KW_DISCO_MAX_LEN];
    size_t n;
    assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                     KW_OK);
    assert_int_equal(n, KW_DISCO_OVERHEAD + 1 + count * KW_DISCO_ADDR_LEN);
    assert_int_equal(kw__disco_open(&f->ba, buf, n, &o), KW_OK);
    assert_int_equal(o.type, KW_DISCO_CALL_ME_MAYBE);
    assert_int_equal(o.n_addrs, count);
    for (size_t i = 0; i < count; i++) {
      assert_int_equal(o.addrs[i].family, m.addrs[i].family);
      assert_int_equal(o.addrs[i].port, m.addrs[i].port);
      assert_memory_equal(o.addrs[i].ip, m.addrs[i].ip, 4);
    }
    if (count == KW_MAX_DIRECT_ADDRS)
      assert_int_equal(n, KW_DISCO_CMM_MAX_LEN);
  }
}

static void test_nat_hint_round_trip_and_later_fields(void **state) {
  fixture *f = *state;
  for (int nat = 0; nat <= KW_DISCO_NAT_EDM; nat++)
    for (int with = 0; with < 2; with++) {
      kw__disco_msg m, o;
      memset(&m, 0, sizeof(m));
      m.type = KW_DISCO_NAT_HINT;
      m.ts_ms = 7;
      m.nat = (uint8_t)nat;
      m.has_addr = with;
      m.addr.family = 4;
      m.addr.ip[0] = 198;
      m.addr.ip[1] = 19;
      m.addr.ip[3] = 9;
      m.addr.port = 5000;
      uint8_t buf[KW_DISCO_MAX_LEN];
      size_t n;
      assert_int_equal(
          kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n), KW_OK);
      assert_int_equal(n,
                       KW_DISCO_OVERHEAD + 1 + (with ? KW_DISCO_ADDR_LEN : 0));
      assert_int_equal(kw__disco_open(&f->ba, buf, n, &o), KW_OK);
      assert_int_equal(o.type, KW_DISCO_NAT_HINT);
      assert_int_equal(o.nat, nat);
      assert_int_equal(o.has_addr, with);
      if (with) {
        assert_int_equal(o.addr.port, 5000);
        assert_memory_equal(o.addr.ip, m.addr.ip, 4);
      }
    }
  /* acted on via the relay, like CallMeMaybe */
  assert_true(kw__disco_act_via(KW_DISCO_NAT_HINT, true));
  assert_true(kw__disco_act_via(KW_DISCO_NAT_HINT, false));
  assert_string_equal(kw__disco_type_name(KW_DISCO_NAT_HINT), "disco.nat_hint");
  /* a later version's fields and flag bits are ignored; mapping 3 reads
   * as unknown; a truncated address is refused */
  uint8_t p[64], out[KW_DISCO_MAX_LEN];
  size_t k = plain_hdr(p, KW_DISCO_NAT_HINT);
  p[k++] = 0x80 | KW_DISCO_NAT_EDM;
  p[k++] = 0xaa;
  p[k++] = 0xbb;
  kw__disco_msg o;
  assert_int_equal(kw__disco_open(&f->ba, out, raw_seal(f, p, k, out), &o),
                   KW_OK);
  assert_int_equal(o.nat, KW_DISCO_NAT_EDM);
  assert_false(o.has_addr);
  k = plain_hdr(p, KW_DISCO_NAT_HINT);
  p[k++] = 3;
  assert_int_equal(kw__disco_open(&f->ba, out, raw_seal(f, p, k, out), &o),
                   KW_OK);
  assert_int_equal(o.nat, KW_DISCO_NAT_UNKNOWN);
  k = plain_hdr(p, KW_DISCO_NAT_HINT);
  p[k++] = KW_DISCO_NAT_HAS_ADDR | KW_DISCO_NAT_EIM;
  p[k++] = 4;
  p[k++] = 198;
  assert_int_equal(kw__disco_open(&f->ba, out, raw_seal(f, p, k, out), &o),
                   KW_ERR_PARSE);
  k = plain_hdr(p, KW_DISCO_NAT_HINT); /* no flags byte */
  assert_int_equal(kw__disco_open(&f->ba, out, raw_seal(f, p, k, out), &o),
                   KW_ERR_PARSE);
  /* sealing refuses a mapping it does not know */
  kw__disco_msg bad;
  memset(&bad, 0, sizeof(bad));
  bad.type = KW_DISCO_NAT_HINT;
  bad.nat = 3;
  size_t n;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &bad, out, sizeof(out), &n),
                   KW_ERR_INVALID_ARG);
}

static void test_open_sk_derives_key(void **state) {
  fixture *f = *state;
  kw__disco_msg m = ping_msg(3, 0), o;
  uint8_t buf[KW_DISCO_MAX_LEN], who[KW_ID_LEN];
  size_t n;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_OK);
  assert_int_equal(kw__disco_open_sk(f->b.sk, buf, n, who, &o), KW_OK);
  assert_memory_equal(who, f->a.id, KW_ID_LEN);
  assert_int_equal(o.type, KW_DISCO_PING);
  /* Not addressed to c: c cannot open it. */
  assert_int_equal(kw__disco_open_sk(f->c.sk, buf, n, who, &o), KW_ERR_PARSE);
  /* A header naming a bad id. */
  memset(buf + 8, 0, KW_ID_LEN);
  assert_int_equal(kw__disco_open_sk(f->b.sk, buf, n, who, &o), KW_ERR_BAD_ID);
}

/* ---- seal rejections ---------------------------------------------------- */

static void test_seal_rejects_bad_messages(void **state) {
  fixture *f = *state;
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n = 99;
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = 0;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(n, 0);
  m.type = 5; /* 4 is NatHint */
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  m.type = KW_DISCO_PONG; /* family 0 */
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  m.addr = addr("198.18.0.1:0"); /* port 0 */
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  m.addr.family = 5;
  m.addr.port = 1;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  m.type = KW_DISCO_CALL_ME_MAYBE;
  m.n_addrs = KW_MAX_DIRECT_ADDRS + 1;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  m.n_addrs = 2;
  m.addrs[0] = addr("198.18.0.1:1");
  m.addrs[1].family = 0; /* second one bad */
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__disco_seal(NULL, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), NULL),
                   KW_ERR_INVALID_ARG);
}

static void test_seal_buffer_too_small(void **state) {
  fixture *f = *state;
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  kw__disco_msg m = ping_msg(1, 0);
  assert_int_equal(
      kw__disco_seal(&f->ab, f->a.id, &m, buf, KW_DISCO_PING_MIN_LEN - 1, &n),
      KW_ERR_BUFFER);
  assert_int_equal(n, 0);
  assert_int_equal(
      kw__disco_seal(&f->ab, f->a.id, &m, buf, KW_DISCO_PING_MIN_LEN, &n),
      KW_OK);
}

/* ---- open rejections ------------------------------------------------------
 */

static void test_open_rejects_wrong_key(void **state) {
  fixture *f = *state;
  kw__disco_msg m = ping_msg(1, 0), o;
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_OK);
  assert_int_equal(kw__disco_open(&f->cb, buf, n, &o), KW_ERR_PARSE);
  assert_int_equal(o.type, 0); /* zeroed on error */
}

static void test_open_rejects_every_flipped_bit_region(void **state) {
  fixture *f = *state;
  kw__disco_msg m = ping_msg(1, 0), o;
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_OK);
  for (size_t i = 0; i < n; i++) {
    buf[i] ^= 0x01;
    assert_int_not_equal(kw__disco_open(&f->ba, buf, n, &o), KW_OK);
    buf[i] ^= 0x01;
  }
  assert_int_equal(kw__disco_open(&f->ba, buf, n, &o), KW_OK);
}

static void test_open_rejects_truncation_and_oversize(void **state) {
  fixture *f = *state;
  kw__disco_msg m = ping_msg(1, 0), o;
  uint8_t buf[KW_DISCO_MAX_LEN + 8];
  size_t n;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, buf, sizeof(buf), &n),
                   KW_OK);
  for (size_t len = 0; len < n; len++)
    assert_int_equal(kw__disco_open(&f->ba, buf, len, &o), KW_ERR_PARSE);
  uint8_t who[KW_ID_LEN];
  assert_int_equal(kw__disco_peek_sender(buf, KW_DISCO_OVERHEAD - 1, who),
                   KW_ERR_PARSE);
  assert_int_equal(kw__disco_peek_sender(buf, KW_DISCO_MAX_LEN + 1, who),
                   KW_ERR_PARSE);
  assert_int_equal(kw__disco_open(&f->ba, buf, KW_DISCO_MAX_LEN + 1, &o),
                   KW_ERR_PARSE);
  assert_int_equal(kw__disco_open(&f->ba, NULL, n, &o), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__disco_open(&f->ba, buf, n, NULL), KW_ERR_INVALID_ARG);
}

static void open_raw_expect(fixture *f, const uint8_t *plain, size_t plen,
                            kw_err want) {
  uint8_t buf[KW_DISCO_MAX_LEN + 64];
  size_t n = raw_seal(f, plain, plen, buf);
  kw__disco_msg o;
  assert_int_equal(kw__disco_open(&f->ba, buf, n, &o), want);
}

static void test_open_rejects_malformed_plaintext(void **state) {
  fixture *f = *state;
  uint8_t p[600];
  size_t n;

  /* Unknown types. */
  n = plain_hdr(p, 0);
  open_raw_expect(f, p, n, KW_ERR_PARSE);
  n = plain_hdr(p, 5);
  memset(p + n, 0, 44);
  open_raw_expect(f, p, n + 44, KW_ERR_PARSE);

  /* Ping: well formed first, then each defect. */
  n = plain_hdr(p, KW_DISCO_PING);
  memset(p + n, 1, 12);
  memcpy(p + n + 12, f->a.id, 32);
  open_raw_expect(f, p, n + 44, KW_OK);
  open_raw_expect(f, p, n + 43, KW_ERR_PARSE); /* short sender */
  p[n + 44] = 0;
  open_raw_expect(f, p, n + 45, KW_OK); /* one zero pad byte */
  p[n + 44] = 1;
  open_raw_expect(f, p, n + 45, KW_ERR_PARSE); /* non-zero pad */
  memcpy(p + n + 12, f->c.id, 32);
  open_raw_expect(f, p, n + 44, KW_ERR_PARSE); /* boxed sender differs */

  /* Pong. */
  n = plain_hdr(p, KW_DISCO_PONG);
  memset(p + n, 1, 12);
  plain_addr(p + n + 12, 4, 198, 5);
  open_raw_expect(f, p, n + 31, KW_OK);
  open_raw_expect(f, p, n + 30, KW_ERR_PARSE); /* truncated */
  p[n + 31] = 0;
  open_raw_expect(f, p, n + 32, KW_ERR_PARSE); /* trailing byte */
  plain_addr(p + n + 12, 4, 198, 0);
  open_raw_expect(f, p, n + 31, KW_ERR_PARSE); /* port 0 */
  plain_addr(p + n + 12, 5, 198, 5);
  open_raw_expect(f, p, n + 31, KW_ERR_PARSE); /* family 5 */
  plain_addr(p + n + 12, 0, 0, 5);
  open_raw_expect(f, p, n + 31, KW_ERR_PARSE); /* family 0 */
  plain_addr(p + n + 12, 4, 198, 5);
  p[n + 12 + 1 + 4] = 1;
  open_raw_expect(f, p, n + 31, KW_ERR_PARSE); /* v4 with non-zero tail */
  plain_addr(p + n + 12, 6, 0x20, 5);
  open_raw_expect(f, p, n + 31, KW_OK);

  /* CallMeMaybe. */
  n = plain_hdr(p, KW_DISCO_CALL_ME_MAYBE);
  p[n] = 0;
  open_raw_expect(f, p, n + 1, KW_OK);
  open_raw_expect(f, p, n, KW_ERR_PARSE); /* no count */
  p[n] = 2;
  plain_addr(p + n + 1, 4, 198, 1);
  open_raw_expect(f, p, n + 1 + 19, KW_ERR_PARSE); /* one addr short */
  plain_addr(p + n + 1 + 19, 6, 0x20, 2);
  open_raw_expect(f, p, n + 1 + 38, KW_OK);
  p[n + 39] = 0;
  open_raw_expect(f, p, n + 1 + 39, KW_ERR_PARSE); /* trailing */
  p[n] = KW_MAX_DIRECT_ADDRS + 1;
  for (int i = 0; i <= KW_MAX_DIRECT_ADDRS; i++)
    plain_addr(p + n + 1 + 19 * i, 4, 198, 1);
  open_raw_expect(f, p, n + 1 + 19 * (KW_MAX_DIRECT_ADDRS + 1),
                  KW_ERR_PARSE); /* too many */

  /* Shorter than type + timestamp. */
  open_raw_expect(f, p, 8, KW_ERR_PARSE);
}

/* ---- rule: no amplification --------------------------------------------- */

static void test_rule_pong_never_larger_than_ping(void **state) {
  fixture *f = *state;
  /* The smallest Ping is larger than every Pong. */
  assert_true(KW_DISCO_PONG_LEN <= KW_DISCO_PING_MIN_LEN);
  uint8_t ping[KW_DISCO_MAX_LEN], pong[KW_DISCO_MAX_LEN];
  size_t pn, n;
  kw__disco_msg m = ping_msg(4, 0), o;
  assert_int_equal(kw__disco_seal(&f->ab, f->a.id, &m, ping, sizeof(ping), &pn),
                   KW_OK);
  assert_int_equal(kw__disco_open(&f->ba, ping, pn, &o), KW_OK);
  kw_sockaddr obs = addr("[2001:db8::7]:7");
  assert_int_equal(kw__disco_seal_pong(&f->ba, f->b.id, pn, o.tx_id, &obs, 9,
                                       pong, sizeof(pong), &n),
                   KW_OK);
  assert_true(n <= pn);
  kw__disco_msg r;
  assert_int_equal(kw__disco_open(&f->ab, pong, n, &r), KW_OK);
  assert_memory_equal(r.tx_id, m.tx_id, KW_DISCO_TXID_LEN);
  assert_int_equal(r.addr.port, 7);
}

static void test_rule_pong_builder_refuses_amplification(void **state) {
  fixture *f = *state;
  uint8_t tx[KW_DISCO_TXID_LEN] = {0}, pong[KW_DISCO_MAX_LEN];
  size_t n = 5;
  kw_sockaddr obs = addr("198.18.0.1:1");
  assert_int_equal(kw__disco_seal_pong(&f->ba, f->b.id, KW_DISCO_PONG_LEN - 1,
                                       tx, &obs, 0, pong, sizeof(pong), &n),
                   KW_ERR_STATE);
  assert_int_equal(n, 0);
  /* Exactly as large is allowed. */
  assert_int_equal(kw__disco_seal_pong(&f->ba, f->b.id, KW_DISCO_PONG_LEN, tx,
                                       &obs, 0, pong, sizeof(pong), &n),
                   KW_OK);
  assert_int_equal(n, KW_DISCO_PONG_LEN);
  assert_int_equal(kw__disco_seal_pong(&f->ba, f->b.id, 500, NULL, &obs, 0,
                                       pong, sizeof(pong), &n),
                   KW_ERR_INVALID_ARG);
}

/* ---- rule: via the relay only CallMeMaybe -------------------------------- */

static void test_rule_relayed_ping_pong_dropped(void **state) {
  (void)state;
  assert_false(kw__disco_act_via(KW_DISCO_PING, true));
  assert_false(kw__disco_act_via(KW_DISCO_PONG, true));
  assert_true(kw__disco_act_via(KW_DISCO_CALL_ME_MAYBE, true));
  assert_true(kw__disco_act_via(KW_DISCO_PING, false));
  assert_true(kw__disco_act_via(KW_DISCO_PONG, false));
  assert_true(kw__disco_act_via(KW_DISCO_CALL_ME_MAYBE, false));
  assert_false(kw__disco_act_via(0, false));
  assert_false(kw__disco_act_via(9, true));
  assert_string_equal(kw__disco_type_name(KW_DISCO_PING), "disco.ping");
  assert_string_equal(kw__disco_type_name(KW_DISCO_CALL_ME_MAYBE),
                      "disco.call_me_maybe");
  assert_string_equal(kw__disco_type_name(77), "disco.unknown");
}

/* ---- rule: replay -------------------------------------------------------- */

static void test_rule_replay_duplicate_dropped(void **state) {
  fixture *f = *state;
  kw__disco_replay r;
  assert_int_equal(kw__disco_replay_init(&r, 0), KW_OK);
  assert_int_equal(r.cap, KW_DISCO_REPLAY_CAP);
  kw__disco_msg m = ping_msg(1, 0);
  uint64_t now = m.ts_ms;
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m, now),
                   KW_DISCO_FRESH);
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m, now + 10),
                   KW_DISCO_DUP);
  /* Same tx id from another sender, or as another type: distinct. */
  assert_int_equal(kw__disco_replay_check(&r, f->c.id, &m, now),
                   KW_DISCO_FRESH);
  m.type = KW_DISCO_PONG;
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m, now),
                   KW_DISCO_FRESH);
  /* CallMeMaybe is keyed by its nonce. */
  kw__disco_msg c;
  memset(&c, 0, sizeof(c));
  c.type = KW_DISCO_CALL_ME_MAYBE;
  c.ts_ms = now;
  memset(c.nonce, 1, sizeof(c.nonce));
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &c, now),
                   KW_DISCO_FRESH);
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &c, now), KW_DISCO_DUP);
  c.nonce[0] = 2;
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &c, now),
                   KW_DISCO_FRESH);
  kw__disco_replay_free(&r);
}

static void test_rule_replay_window_boundaries(void **state) {
  fixture *f = *state;
  kw__disco_replay r;
  assert_int_equal(kw__disco_replay_init(&r, 64), KW_OK);
  uint64_t now = 1700000000000ull;
  kw__disco_msg m = ping_msg(1, 0);
  m.ts_ms = now - KW_DISCO_REPLAY_WINDOW_MS - 1;
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m, now),
                   KW_DISCO_STALE);
  m.ts_ms = now - KW_DISCO_REPLAY_WINDOW_MS;
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m, now),
                   KW_DISCO_FRESH);
  m.tx_id[0] = 2;
  m.ts_ms = now + KW_DISCO_REPLAY_WINDOW_MS + 1;
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m, now),
                   KW_DISCO_STALE);
  m.ts_ms = now + KW_DISCO_REPLAY_WINDOW_MS;
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m, now),
                   KW_DISCO_FRESH);
  m.tx_id[0] = 3;
  m.ts_ms = UINT64_MAX;
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m, now),
                   KW_DISCO_STALE);
  m.ts_ms = 0;
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m, now),
                   KW_DISCO_STALE);
  kw__disco_replay_free(&r);
}

static void test_rule_replay_bounded_drop_oldest(void **state) {
  fixture *f = *state;
  kw__disco_replay r;
  assert_int_equal(kw__disco_replay_init(&r, 4), KW_OK);
  uint64_t now = 1700000000000ull;
  kw__disco_msg m[6];
  for (int i = 0; i < 6; i++) {
    m[i] = ping_msg((uint8_t)(i + 1), 0);
    m[i].ts_ms = now + (uint64_t)i;
  }
  for (int i = 0; i < 4; i++)
    assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m[i], now + 10),
                     KW_DISCO_FRESH);
  assert_int_equal(r.n, 4);
  assert_false(r.has_floor);
  /* The fifth evicts the oldest (ts now+0): its timestamp becomes the
   * floor, so replaying it is refused although it is no longer stored. */
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m[4], now + 10),
                   KW_DISCO_FRESH);
  assert_int_equal(r.n, 4);
  assert_true(r.has_floor);
  assert_int_equal(r.floor_ms, now);
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m[0], now + 10),
                   KW_DISCO_STALE);
  /* Still-stored ones remain duplicates. */
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m[1], now + 10),
                   KW_DISCO_DUP);
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m[4], now + 10),
                   KW_DISCO_DUP);
  /* A new message dated after the floor is fresh. */
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m[5], now + 10),
                   KW_DISCO_FRESH);
  assert_int_equal(r.floor_ms, now + 1);
  assert_int_equal(kw__disco_replay_check(&r, f->a.id, &m[1], now + 10),
                   KW_DISCO_STALE);
  /* Many more: the set never grows past its bound. */
  for (int i = 0; i < 1000; i++) {
    kw__disco_msg x = ping_msg(0, 0);
    memcpy(x.tx_id, &i, sizeof(i));
    x.ts_ms = now + 100 + (uint64_t)i;
    assert_int_equal(kw__disco_replay_check(&r, f->a.id, &x, now + 1000),
                     KW_DISCO_FRESH);
    assert_true(r.n <= 4);
  }
  kw__disco_replay_free(&r);
}

static void test_replay_init_args(void **state) {
  (void)state;
  kw__disco_replay r;
  assert_int_equal(kw__disco_replay_init(NULL, 4), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__disco_replay_init(&r, (1u << 20) + 1),
                   KW_ERR_INVALID_ARG);
  kw__disco_msg m = ping_msg(1, 0);
  uint8_t id[KW_ID_LEN] = {0};
  /* An uninitialised (zeroed) set refuses everything. */
  assert_int_equal(kw__disco_replay_check(&r, id, &m, m.ts_ms), KW_DISCO_STALE);
  kw__disco_replay_free(&r);
  kw__disco_replay_free(NULL);
}

/* ---- rule: pong rate limit --------------------------------------------- */

#define MS 1000000ull

static void test_rule_pong_rate_limited_per_source(void **state) {
  (void)state;
  kw__disco_pong_limiter l;
  assert_int_equal(kw__disco_pong_limiter_init(&l), KW_OK);
  kw_sockaddr a = addr("198.18.0.1:1"), b = addr("198.18.0.1:2");
  uint64_t t = 1000 * MS;
  for (int i = 0; i < KW_DISCO_PONG_BURST; i++)
    assert_true(kw__disco_pong_allow(&l, &a, t));
  assert_false(kw__disco_pong_allow(&l, &a, t));
  /* Another source has its own bucket. */
  assert_true(kw__disco_pong_allow(&l, &b, t));
  /* One token per 1/KW_DISCO_PONG_RATE s: not a moment earlier. */
  uint64_t tok = 1000 * MS / KW_DISCO_PONG_RATE;
  assert_false(kw__disco_pong_allow(&l, &a, t + tok - 1));
  assert_true(kw__disco_pong_allow(&l, &a, t + tok));
  assert_false(kw__disco_pong_allow(&l, &a, t + tok));
  /* A long pause refills to the burst, not beyond. */
  uint64_t later = t + 3600 * 1000 * MS;
  for (int i = 0; i < KW_DISCO_PONG_BURST; i++)
    assert_true(kw__disco_pong_allow(&l, &a, later));
  assert_false(kw__disco_pong_allow(&l, &a, later));
  /* Time going backwards gives nothing. */
  assert_false(kw__disco_pong_allow(&l, &a, t));
  kw__disco_pong_limiter_free(&l);
}

static void test_rule_pong_table_bounded_lru(void **state) {
  (void)state;
  kw__disco_pong_limiter l;
  assert_int_equal(kw__disco_pong_limiter_init(&l), KW_OK);
  kw_sockaddr a = addr("198.18.1.1:1"), b = addr("198.18.1.2:1");
  uint64_t t = 1;
  for (int i = 0; i < KW_DISCO_PONG_BURST; i++) {
    assert_true(kw__disco_pong_allow(&l, &a, t));
    assert_true(kw__disco_pong_allow(&l, &b, t));
  }
  /* Touch a (denied, but now the most recent); b is least recent. */
  assert_false(kw__disco_pong_allow(&l, &a, t + 1));
  for (uint32_t i = 0; i < KW_DISCO_PONG_TABLE - 1; i++) {
    kw_sockaddr x;
    memset(&x, 0, sizeof(x));
    x.family = 6;
    memcpy(x.ip, &i, sizeof(i));
    x.port = 9;
    assert_true(kw__disco_pong_allow(&l, &x, t + 2));
    assert_true(kw__addrlru_count(&l.tab) <= KW_DISCO_PONG_TABLE);
  }
  assert_int_equal(kw__addrlru_count(&l.tab), KW_DISCO_PONG_TABLE);
  /* b was evicted: it starts over with a full bucket; a was kept. */
  assert_false(kw__disco_pong_allow(&l, &a, t + 2));
  assert_true(kw__disco_pong_allow(&l, &b, t + 2));
  kw__disco_pong_limiter_free(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_magic_detects_disco_only),
      cmocka_unit_test(test_key_derive_is_symmetric),
      cmocka_unit_test(test_key_derive_rejects_bad_ids),
      cmocka_unit_test(test_key_wipe),
      cmocka_unit_test(test_ping_round_trip),
      cmocka_unit_test(test_ping_padding_round_trip),
      cmocka_unit_test(test_pong_round_trip_v4_v6),
      cmocka_unit_test(test_pong_v4_ignores_junk_past_four_bytes),
      cmocka_unit_test(test_call_me_maybe_round_trip),
      cmocka_unit_test(test_nat_hint_round_trip_and_later_fields),
      cmocka_unit_test(test_open_sk_derives_key),
      cmocka_unit_test(test_seal_rejects_bad_messages),
      cmocka_unit_test(test_seal_buffer_too_small),
      cmocka_unit_test(test_open_rejects_wrong_key),
      cmocka_unit_test(test_open_rejects_every_flipped_bit_region),
      cmocka_unit_test(test_open_rejects_truncation_and_oversize),
      cmocka_unit_test(test_open_rejects_malformed_plaintext),
      cmocka_unit_test(test_rule_pong_never_larger_than_ping),
      cmocka_unit_test(test_rule_pong_builder_refuses_amplification),
      cmocka_unit_test(test_rule_relayed_ping_pong_dropped),
      cmocka_unit_test(test_rule_replay_duplicate_dropped),
      cmocka_unit_test(test_rule_replay_window_boundaries),
      cmocka_unit_test(test_rule_replay_bounded_drop_oldest),
      cmocka_unit_test(test_replay_init_args),
      cmocka_unit_test(test_rule_pong_rate_limited_per_source),
      cmocka_unit_test(test_rule_pong_table_bounded_lru),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
