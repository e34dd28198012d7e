/* SPDX-License-Identifier: MIT */
/* Fuzz disco (core/disco): open arbitrary bytes as a message from a fixed
 * sender to a fixed receiver; whatever opens must seal again and open to
 * the same message. Then build a message from the fuzz bytes, seal it and
 * check it opens back unchanged (and never as a third party). The replay
 * set and the pong limiter see every accepted message. */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "core/disco.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct keys {
  uint8_t a_sk[64], a_id[32], b_sk[64], b_id[32], c_sk[64], c_id[32];
  kw__disco_key ab, ba, cb;
  kw__disco_replay replay;
  kw__disco_pong_limiter lim;
} keys;

static keys *get_keys(void) {
  static keys k;
  static int ready;
  if (!ready) {
    if (sodium_init() < 0)
      __builtin_trap();
    uint8_t seed[32];
    memset(seed, 1, 32);
    crypto_sign_seed_keypair(k.a_id, k.a_sk, seed);
    memset(seed, 2, 32);
    crypto_sign_seed_keypair(k.b_id, k.b_sk, seed);
    memset(seed, 3, 32);
    crypto_sign_seed_keypair(k.c_id, k.c_sk, seed);
    if (kw__disco_key_derive(k.a_sk, k.b_id, &k.ab) ||
        kw__disco_key_derive(k.b_sk, k.a_id, &k.ba) ||
        kw__disco_key_derive(k.c_sk, k.b_id, &k.cb) ||
        kw__disco_replay_init(&k.replay, 256) ||
        kw__disco_pong_limiter_init(&k.lim))
      __builtin_trap();
    ready = 1;
  }
  return &k;
}

static int addr_eq(const kw_sockaddr *x, const kw_sockaddr *y) {
  return x->family == y->family && x->port == y->port &&
         memcmp(x->ip, y->ip, x->family == 4 ? 4 : 16) == 0;
}

static void same_msg(const kw__disco_msg *x, const kw__disco_msg *y) {
  if (x->type != y->type || x->ts_ms != y->ts_ms)
    __builtin_trap();
  switch (x->type) {
  case KW_DISCO_PING:
    if (memcmp(x->tx_id, y->tx_id, KW_DISCO_TXID_LEN) ||
        memcmp(x->sender, y->sender, KW_ID_LEN) || x->pad != y->pad)
      __builtin_trap();
    break;
  case KW_DISCO_PONG:
    if (memcmp(x->tx_id, y->tx_id, KW_DISCO_TXID_LEN) ||
        !addr_eq(&x->addr, &y->addr))
      __builtin_trap();
    break;
  case KW_DISCO_CALL_ME_MAYBE:
    if (x->n_addrs != y->n_addrs)
      __builtin_trap();
    for (size_t i = 0; i < x->n_addrs; i++)
      if (!addr_eq(&x->addrs[i], &y->addrs[i]))
        __builtin_trap();
    break;
  case KW_DISCO_NAT_HINT:
    if (x->nat != y->nat || x->has_addr != y->has_addr ||
        (x->has_addr && !addr_eq(&x->addr, &y->addr)))
      __builtin_trap();
    break;
  default:
    __builtin_trap();
  }
}

static void reseal(keys *k, const kw__disco_msg *m, size_t orig_len) {
  uint8_t out[KW_DISCO_MAX_LEN];
  size_t n;
  if (kw__disco_seal(&k->ab, k->a_id, m, out, sizeof(out), &n) != KW_OK)
    __builtin_trap();
  /* the encoding is canonical; a NatHint's later fields and unknown flag
   * bits are ignored, so it reseals no longer */
  if (m->type == KW_DISCO_NAT_HINT ? n > orig_len : n != orig_len)
    __builtin_trap();
  kw__disco_msg o;
  if (kw__disco_open(&k->ba, out, n, &o) != KW_OK)
    __builtin_trap();
  same_msg(m, &o);
  if (kw__disco_open(&k->cb, out, n, &o) != KW_ERR_PARSE)
    __builtin_trap();
  if (m->type == KW_DISCO_PING) {
    size_t pn;
    uint8_t pong[KW_DISCO_MAX_LEN];
    kw_err e = kw__disco_seal_pong(&k->ba, k->b_id, n, m->tx_id,
                                   &(kw_sockaddr){.family = 6, .port = 1}, 1,
                                   pong, sizeof(pong), &pn);
    if (e != KW_OK || pn > n)
      __builtin_trap();
  }
}

static void build_from_bytes(keys *k, const uint8_t *data, size_t size) {
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  size_t off = 0;
#define NEXT() (off < size ? data[off++] : 0)
  m.type = (uint8_t)(NEXT() % 4 + 1);
  for (int i = 0; i < 8; i++)
    m.ts_ms = (m.ts_ms << 8) | NEXT();
  for (int i = 0; i < KW_DISCO_TXID_LEN; i++)
    m.tx_id[i] = NEXT();
  m.pad = ((size_t)NEXT() * 5) % (KW_DISCO_MAX_PAD + 1);
  if (m.type == KW_DISCO_NAT_HINT) {
    uint8_t f = NEXT();
    m.nat = (uint8_t)(f % 3);
    m.has_addr = (f & 4) != 0;
  }
  bool one = m.type == KW_DISCO_PONG || m.type == KW_DISCO_NAT_HINT;
  size_t want = m.type == KW_DISCO_NAT_HINT ? (m.has_addr ? 1 : 0)
                : one                       ? 1
                      : NEXT() % (KW_MAX_DIRECT_ADDRS + 1);
  for (size_t j = 0; j < want; j++) {
    kw_sockaddr *a = one ? &m.addr : &m.addrs[j];
    a->family = (NEXT() & 1) ? 6 : 4;
    for (int i = 0; i < 16; i++)
      a->ip[i] = NEXT();
    if (a->family == 4)
      memset(a->ip + 4, 0, 12);
    uint16_t hi = NEXT();
    a->port = (uint16_t)(hi << 8 | NEXT());
    if (a->port == 0)
      a->port = 1;
  }
  if (m.type == KW_DISCO_CALL_ME_MAYBE)
    m.n_addrs = want;
#undef NEXT
  uint8_t out[KW_DISCO_MAX_LEN];
  size_t n;
  if (kw__disco_seal(&k->ab, k->a_id, &m, out, sizeof(out), &n) != KW_OK)
    __builtin_trap();
  kw__disco_msg o;
  if (kw__disco_open(&k->ba, out, n, &o) != KW_OK)
    __builtin_trap();
  memcpy(m.sender, k->a_id, KW_ID_LEN);
  if (m.type != KW_DISCO_PING)
    m.pad = 0;
  same_msg(&m, &o);
  /* Every truncation fails. */
  if (n > 0 && kw__disco_open(&k->ba, out, n - 1 - (size % n), &o) == KW_OK)
    __builtin_trap();
}

/* Seals the fuzz bytes as a plaintext (bypassing the builder) so the
 * plaintext parser sees arbitrary input behind a valid box. */
static void open_plaintext(keys *k, const uint8_t *data, size_t size) {
  static const uint8_t magic[8] = {'K', 'W', 'd', 'i', 's', 'c', 'o', 1};
  uint8_t out[KW_DISCO_MAX_LEN + 64];
  if (size > KW_DISCO_MAX_LEN - KW_DISCO_HEADER_LEN - KW_DISCO_MAC_LEN)
    size = KW_DISCO_MAX_LEN - KW_DISCO_HEADER_LEN - KW_DISCO_MAC_LEN;
  memcpy(out, magic, 8);
  memcpy(out + 8, k->a_id, KW_ID_LEN);
  memset(out + 40, 7, 24);
  crypto_box_easy_afternm(out + 64, data, size, out + 40, k->ab.k);
  size_t n = 64 + 16 + size;
  kw__disco_msg m;
  kw_err err = kw__disco_open(&k->ba, out, n, &m);
  if (err == KW_OK)
    reseal(k, &m, n);
  else if (err != KW_ERR_PARSE)
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  keys *k = get_keys();
  open_plaintext(k, data, size);
  kw__disco_msg m;
  uint8_t who[KW_ID_LEN];
  kw_err err = kw__disco_open(&k->ba, data, size, &m);
  if (err == KW_OK) {
    if (size > KW_DISCO_MAX_LEN || !kw__disco_is(data, size) ||
        m.n_addrs > KW_MAX_DIRECT_ADDRS)
      __builtin_trap();
    reseal(k, &m, size);
    (void)kw__disco_replay_check(&k->replay, k->a_id, &m, m.ts_ms);
    if (kw__disco_replay_check(&k->replay, k->a_id, &m, m.ts_ms) ==
        KW_DISCO_FRESH)
      __builtin_trap(); /* a second sight is never fresh */
    if (m.type == KW_DISCO_PONG)
      (void)kw__disco_pong_allow(&k->lim, &m.addr, m.ts_ms);
  } else if (err != KW_ERR_PARSE) {
    __builtin_trap();
  }
  err = kw__disco_open_sk(k->b_sk, data, size, who, &m);
  if (err != KW_OK && err != KW_ERR_PARSE && err != KW_ERR_BAD_ID)
    __builtin_trap();
  if (err == KW_OK && memcmp(who, k->a_id, KW_ID_LEN) != 0) {
    /* Opened as from someone else: only possible for a sender whose key
     * we derive; check it re-derives consistently. */
    kw__disco_key kk;
    kw__disco_msg m2;
    if (kw__disco_key_derive(k->b_sk, who, &kk) != KW_OK ||
        kw__disco_open(&kk, data, size, &m2) != KW_OK)
      __builtin_trap();
  }
  build_from_bytes(k, data, size);
  return 0;
}
