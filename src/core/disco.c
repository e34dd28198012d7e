/* SPDX-License-Identifier: MIT */
/* Disco messages: sealing, opening, replay set, pong limiter (disco.h). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/disco.h"

static const uint8_t magic[KW_DISCO_MAGIC_LEN] = {'K', 'W', 'd', 'i',
                                                  's', 'c', 'o', 0x01};

_Static_assert(KW_DISCO_PONG_LEN <= KW_DISCO_PING_MIN_LEN,
               "a Pong must never be larger than the smallest Ping");
_Static_assert(crypto_box_MACBYTES == KW_DISCO_MAC_LEN, "box MAC size");
_Static_assert(crypto_box_NONCEBYTES == KW_DISCO_NONCE_LEN, "box nonce size");
_Static_assert(crypto_box_BEFORENMBYTES == 32, "box key size");
_Static_assert(KW_DISCO_CMM_MAX_LEN <= KW_DISCO_MAX_LEN, "CMM fits");

bool kw__disco_is(const uint8_t *data, size_t len) {
  return data && len >= KW_DISCO_MAGIC_LEN &&
         memcmp(data, magic, KW_DISCO_MAGIC_LEN) == 0;
}

kw_err kw__disco_key_derive(const uint8_t our_sk[KW_SECRET_KEY_LEN],
                            const uint8_t their_id[KW_ID_LEN],
                            kw__disco_key *out) {
  if (!our_sk || !their_id || !out)
    return KW_ERR_INVALID_ARG;
  if (sodium_init() < 0)
    return KW_ERR_UNSUPPORTED;
  uint8_t xsk[crypto_scalarmult_curve25519_BYTES];
  uint8_t xpk[crypto_scalarmult_curve25519_BYTES];
  memset(out, 0, sizeof(*out));
  if (crypto_sign_ed25519_pk_to_curve25519(xpk, their_id) != 0)
    return KW_ERR_BAD_ID;
  if (crypto_sign_ed25519_sk_to_curve25519(xsk, our_sk) != 0)
    return KW_ERR_INVALID_ARG;
  int rv = crypto_box_beforenm(out->k, xpk, xsk);
  sodium_memzero(xsk, sizeof(xsk));
  if (rv != 0) {
    sodium_memzero(out, sizeof(*out));
    return KW_ERR_BAD_ID;
  }
  return KW_OK;
}

void kw__disco_key_wipe(kw__disco_key *k) {
  if (k)
    sodium_memzero(k, sizeof(*k));
}

/* ---- addresses ----------------------------------------------------------- */

static bool addr_ok(const kw_sockaddr *a) {
  return (a->family == 4 || a->family == 6) && a->port != 0;
}

static void put_addr(kw__wbuf *w, const kw_sockaddr *a) {
  uint8_t ip[16] = {0};
  memcpy(ip, a->ip, a->family == 4 ? 4 : 16);
  kw__wbuf_u8(w, a->family);
  kw__wbuf_bytes(w, ip, 16);
  kw__wbuf_u16(w, a->port);
}

static bool get_addr(kw__rbuf *r, kw_sockaddr *a) {
  memset(a, 0, sizeof(*a));
  uint8_t fam = kw__rbuf_u8(r);
  const uint8_t *ip = kw__rbuf_take(r, 16);
  uint16_t port = kw__rbuf_u16(r);
  if (r->err || (fam != 4 && fam != 6) || port == 0)
    return false;
  if (fam == 4)
    for (int i = 4; i < 16; i++)
      if (ip[i])
        return false;
  a->family = fam;
  memcpy(a->ip, ip, fam == 4 ? 4 : 16);
  a->port = port;
  return true;
}

/* ---- seal / open ------------------------------------------------------- */

kw_err kw__disco_seal(const kw__disco_key *k, const uint8_t our_id[KW_ID_LEN],
                      const kw__disco_msg *m, uint8_t *out, size_t cap,
                      size_t *outlen) {
  if (outlen)
    *outlen = 0;
  if (!k || !our_id || !m || !out || !outlen)
    return KW_ERR_INVALID_ARG;
  uint8_t plain[KW_DISCO_MAX_LEN];
  kw__wbuf w;
  kw__wbuf_init(&w, plain,
                KW_DISCO_MAX_LEN - KW_DISCO_HEADER_LEN - KW_DISCO_MAC_LEN);
  kw__wbuf_u8(&w, m->type);
  kw__wbuf_u64(&w, m->ts_ms);
  switch (m->type) {
  case KW_DISCO_PING: {
    if (m->pad > KW_DISCO_MAX_PAD)
      return KW_ERR_INVALID_ARG;
    kw__wbuf_bytes(&w, m->tx_id, KW_DISCO_TXID_LEN);
    kw__wbuf_bytes(&w, our_id, KW_ID_LEN);
    uint8_t *p = kw__wbuf_reserve(&w, m->pad);
    if (p && m->pad)
      memset(p, 0, m->pad);
    break;
  }
  case KW_DISCO_PONG:
    if (!addr_ok(&m->addr))
      return KW_ERR_INVALID_ARG;
    kw__wbuf_bytes(&w, m->tx_id, KW_DISCO_TXID_LEN);
    put_addr(&w, &m->addr);
    break;
  case KW_DISCO_CALL_ME_MAYBE:
    if (m->n_addrs > KW_MAX_DIRECT_ADDRS)
      return KW_ERR_INVALID_ARG;
    kw__wbuf_u8(&w, (uint8_t)m->n_addrs);
    for (size_t i = 0; i < m->n_addrs; i++) {
      if (!addr_ok(&m->addrs[i]))
        return KW_ERR_INVALID_ARG;
      put_addr(&w, &m->addrs[i]);
    }
    break;
  case KW_DISCO_NAT_HINT:
    if (m->nat > KW_DISCO_NAT_EDM || (m->has_addr && !addr_ok(&m->addr)))
      return KW_ERR_INVALID_ARG;
    kw__wbuf_u8(&w,
                (uint8_t)(m->nat | (m->has_addr ? KW_DISCO_NAT_HAS_ADDR : 0)));
    if (m->has_addr)
      put_addr(&w, &m->addr);
    break;
  default:
    return KW_ERR_INVALID_ARG;
  }
  if (w.err) /* cannot happen within KW_DISCO_MAX_PAD; kept as a guard */
    return KW_ERR_INVALID_ARG;
  size_t total = KW_DISCO_HEADER_LEN + KW_DISCO_MAC_LEN + w.off;
  if (cap < total)
    return KW_ERR_BUFFER;
  kw__wbuf o;
  kw__wbuf_init(&o, out, cap);
  kw__wbuf_bytes(&o, magic, KW_DISCO_MAGIC_LEN);
  kw__wbuf_bytes(&o, our_id, KW_ID_LEN);
  uint8_t *nonce = kw__wbuf_reserve(&o, KW_DISCO_NONCE_LEN);
  uint8_t *box = kw__wbuf_reserve(&o, KW_DISCO_MAC_LEN + w.off);
  if (o.err || !nonce || !box)
    return KW_ERR_BUFFER;
  randombytes_buf(nonce, KW_DISCO_NONCE_LEN);
  if (crypto_box_easy_afternm(box, plain, w.off, nonce, k->k) != 0)
    return KW_ERR_INVALID_ARG;
  sodium_memzero(plain, w.off);
  *outlen = o.off;
  return KW_OK;
}

kw_err kw__disco_seal_pong(const kw__disco_key *k,
                           const uint8_t our_id[KW_ID_LEN], size_t ping_len,
                           const uint8_t tx_id[KW_DISCO_TXID_LEN],
                           const kw_sockaddr *observed, uint64_t ts_ms,
                           uint8_t *out, size_t cap, size_t *outlen) {
  if (outlen)
    *outlen = 0;
  if (!tx_id || !observed)
    return KW_ERR_INVALID_ARG;
  if (KW_DISCO_PONG_LEN > ping_len)
    return KW_ERR_STATE;
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_PONG;
  m.ts_ms = ts_ms;
  memcpy(m.tx_id, tx_id, KW_DISCO_TXID_LEN);
  m.addr = *observed;
  kw_err err = kw__disco_seal(k, our_id, &m, out, cap, outlen);
  if (err == KW_OK && *outlen > ping_len) { /* guard: fixed size today */
    *outlen = 0;
    return KW_ERR_STATE;
  }
  return err;
}

kw_err kw__disco_peek_sender(const uint8_t *data, size_t len,
                             uint8_t sender[KW_ID_LEN]) {
  if (!data || !sender)
    return KW_ERR_INVALID_ARG;
  if (len > KW_DISCO_MAX_LEN || !kw__disco_is(data, len))
    return KW_ERR_PARSE;
  kw__rbuf r;
  kw__rbuf_init(&r, data, len);
  (void)kw__rbuf_take(&r, KW_DISCO_MAGIC_LEN);
  const uint8_t *id = kw__rbuf_take(&r, KW_ID_LEN);
  (void)kw__rbuf_take(&r, KW_DISCO_NONCE_LEN + KW_DISCO_MAC_LEN +
                              KW_DISCO_PLAIN_HEADER_LEN);
  if (r.err)
    return KW_ERR_PARSE;
  memcpy(sender, id, KW_ID_LEN);
  return KW_OK;
}

static kw_err parse_plain(const uint8_t *plain, size_t plen,
                          const uint8_t hdr_sender[KW_ID_LEN],
                          kw__disco_msg *m) {
  kw__rbuf r;
  kw__rbuf_init(&r, plain, plen);
  m->type = kw__rbuf_u8(&r);
  m->ts_ms = kw__rbuf_u64(&r);
  switch (m->type) {
  case KW_DISCO_PING: {
    kw__rbuf_copy(&r, m->tx_id, KW_DISCO_TXID_LEN);
    kw__rbuf_copy(&r, m->sender, KW_ID_LEN);
    if (r.err || sodium_memcmp(m->sender, hdr_sender, KW_ID_LEN) != 0)
      return KW_ERR_PARSE;
    m->pad = kw__rbuf_left(&r);
    const uint8_t *pad = kw__rbuf_take(&r, m->pad);
    if (!pad && m->pad)
      return KW_ERR_PARSE;
    for (size_t i = 0; i < m->pad; i++)
      if (pad[i])
        return KW_ERR_PARSE;
    break;
  }
  case KW_DISCO_PONG:
    kw__rbuf_copy(&r, m->tx_id, KW_DISCO_TXID_LEN);
    if (!get_addr(&r, &m->addr))
      return KW_ERR_PARSE;
    break;
  case KW_DISCO_CALL_ME_MAYBE: {
    uint8_t n = kw__rbuf_u8(&r);
    if (r.err || n > KW_MAX_DIRECT_ADDRS)
      return KW_ERR_PARSE;
    for (uint8_t i = 0; i < n; i++)
      if (!get_addr(&r, &m->addrs[i]))
        return KW_ERR_PARSE;
    m->n_addrs = n;
    break;
  }
  case KW_DISCO_NAT_HINT: {
    uint8_t f = kw__rbuf_u8(&r);
    if (r.err)
      return KW_ERR_PARSE;
    m->nat = (f & KW_DISCO_NAT_MASK) <= KW_DISCO_NAT_EDM
                 ? (uint8_t)(f & KW_DISCO_NAT_MASK)
                 : KW_DISCO_NAT_UNKNOWN;
    if (f & KW_DISCO_NAT_HAS_ADDR) {
      if (!get_addr(&r, &m->addr))
        return KW_ERR_PARSE;
      m->has_addr = true;
    }
    /* later fields: ignored */
    (void)kw__rbuf_take(&r, kw__rbuf_left(&r));
    break;
  }
  default:
    return KW_ERR_PARSE;
  }
  if (r.err || kw__rbuf_left(&r) != 0)
    return KW_ERR_PARSE;
  return KW_OK;
}

kw_err kw__disco_open(const kw__disco_key *k, const uint8_t *data, size_t len,
                      kw__disco_msg *m) {
  if (!m)
    return KW_ERR_INVALID_ARG;
  memset(m, 0, sizeof(*m));
  if (!k || !data)
    return KW_ERR_INVALID_ARG;
  uint8_t sender[KW_ID_LEN];
  kw_err err = kw__disco_peek_sender(data, len, sender);
  if (err)
    return err;
  kw__rbuf r;
  kw__rbuf_init(&r, data, len);
  (void)kw__rbuf_take(&r, KW_DISCO_MAGIC_LEN + KW_ID_LEN);
  kw__rbuf_copy(&r, m->nonce, KW_DISCO_NONCE_LEN);
  size_t clen = kw__rbuf_left(&r);
  const uint8_t *c = kw__rbuf_take(&r, clen);
  if (r.err || !c || clen < KW_DISCO_MAC_LEN + KW_DISCO_PLAIN_HEADER_LEN)
    return KW_ERR_PARSE;
  uint8_t plain[KW_DISCO_MAX_LEN];
  size_t plen = clen - KW_DISCO_MAC_LEN;
  if (crypto_box_open_easy_afternm(plain, c, clen, m->nonce, k->k) != 0) {
    memset(m, 0, sizeof(*m));
    return KW_ERR_PARSE;
  }
  err = parse_plain(plain, plen, sender, m);
  sodium_memzero(plain, plen);
  if (err)
    memset(m, 0, sizeof(*m));
  return err;
}

kw_err kw__disco_open_sk(const uint8_t our_sk[KW_SECRET_KEY_LEN],
                         const uint8_t *data, size_t len,
                         uint8_t sender[KW_ID_LEN], kw__disco_msg *m) {
  if (!m)
    return KW_ERR_INVALID_ARG;
  memset(m, 0, sizeof(*m));
  if (!our_sk || !data || !sender)
    return KW_ERR_INVALID_ARG;
  kw_err err = kw__disco_peek_sender(data, len, sender);
  if (err)
    return err;
  kw__disco_key k;
  err = kw__disco_key_derive(our_sk, sender, &k);
  if (err)
    return err;
  err = kw__disco_open(&k, data, len, m);
  kw__disco_key_wipe(&k);
  return err;
}

bool kw__disco_act_via(uint8_t type, bool via_relay) {
  switch (type) {
  case KW_DISCO_PING:
  case KW_DISCO_PONG:
    return !via_relay;
  case KW_DISCO_CALL_ME_MAYBE:
  case KW_DISCO_NAT_HINT:
    return true;
  default:
    return false;
  }
}

const char *kw__disco_type_name(uint8_t type) {
  switch (type) {
  case KW_DISCO_PING:
    return "disco.ping";
  case KW_DISCO_PONG:
    return "disco.pong";
  case KW_DISCO_CALL_ME_MAYBE:
    return "disco.call_me_maybe";
  case KW_DISCO_NAT_HINT:
    return "disco.nat_hint";
  default:
    return "disco.unknown";
  }
}

/* ---- replay -------------------------------------------------------------- */

#define NIL UINT32_MAX
#define REPLAY_MAX_CAP (1u << 20)

kw_err kw__disco_replay_init(kw__disco_replay *r, size_t cap) {
  if (!r)
    return KW_ERR_INVALID_ARG;
  memset(r, 0, sizeof(*r));
  if (cap == 0)
    cap = KW_DISCO_REPLAY_CAP;
  if (cap > REPLAY_MAX_CAP)
    return KW_ERR_INVALID_ARG;
  if (sodium_init() < 0)
    return KW_ERR_UNSUPPORTED;
  r->ents = calloc(cap, sizeof(*r->ents));
  r->buckets = malloc(cap * sizeof(*r->buckets));
  if (!r->ents || !r->buckets) {
    kw__disco_replay_free(r);
    return KW_ERR_NOMEM;
  }
  for (size_t i = 0; i < cap; i++)
    r->buckets[i] = NIL;
  r->cap = cap;
  return KW_OK;
}

void kw__disco_replay_free(kw__disco_replay *r) {
  if (!r)
    return;
  free(r->ents);
  free(r->buckets);
  memset(r, 0, sizeof(*r));
}

static size_t digest_bucket(const kw__disco_replay *r, const uint8_t *d) {
  uint32_t v = ((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) |
               ((uint32_t)d[2] << 8) | d[3];
  return v % r->cap;
}

static void replay_unlink(kw__disco_replay *r, uint32_t i) {
  uint32_t *pp = &r->buckets[digest_bucket(r, r->ents[i].digest)];
  while (*pp != NIL && *pp != i)
    pp = &r->ents[*pp].hnext;
  if (*pp == i)
    *pp = r->ents[i].hnext;
}

kw__disco_verdict kw__disco_replay_check(kw__disco_replay *r,
                                         const uint8_t sender[KW_ID_LEN],
                                         const kw__disco_msg *m,
                                         uint64_t now_ms) {
  if (!r || !r->ents || !sender || !m)
    return KW_DISCO_STALE;
  uint64_t ts = m->ts_ms;
  if (ts < now_ms && now_ms - ts > KW_DISCO_REPLAY_WINDOW_MS)
    return KW_DISCO_STALE;
  if (ts > now_ms && ts - now_ms > KW_DISCO_REPLAY_WINDOW_MS)
    return KW_DISCO_STALE;
  if (r->has_floor && ts <= r->floor_ms)
    return KW_DISCO_STALE;
  uint8_t in[KW_ID_LEN + 1 + KW_DISCO_TXID_LEN];
  memcpy(in, sender, KW_ID_LEN);
  in[KW_ID_LEN] = m->type;
  memcpy(in + KW_ID_LEN + 1,
         m->type == KW_DISCO_CALL_ME_MAYBE || m->type == KW_DISCO_NAT_HINT
             ? m->nonce
             : m->tx_id,
         KW_DISCO_TXID_LEN);
  uint8_t d[16];
  crypto_generichash(d, sizeof(d), in, sizeof(in), NULL, 0);
  size_t b = digest_bucket(r, d);
  for (uint32_t i = r->buckets[b]; i != NIL; i = r->ents[i].hnext)
    if (memcmp(r->ents[i].digest, d, sizeof(d)) == 0)
      return KW_DISCO_DUP;
  uint32_t slot;
  if (r->n == r->cap) {
    slot = (uint32_t)r->head;
    replay_unlink(r, slot);
    if (!r->has_floor || r->ents[slot].ts_ms > r->floor_ms)
      r->floor_ms = r->ents[slot].ts_ms;
    r->has_floor = true;
    r->head = (r->head + 1) % r->cap;
  } else {
    slot = (uint32_t)((r->head + r->n) % r->cap);
    r->n++;
  }
  kw__disco_replay_ent *e = &r->ents[slot];
  memcpy(e->digest, d, sizeof(d));
  e->ts_ms = ts;
  e->hnext = r->buckets[b];
  r->buckets[b] = slot;
  return KW_DISCO_FRESH;
}

/* ---- pong limiter -------------------------------------------------------- */

#define TOKEN_NS (1000000000ull / KW_DISCO_PONG_RATE)
#define BUCKET_NS (TOKEN_NS * KW_DISCO_PONG_BURST)

typedef struct bucket {
  uint64_t credit_ns; /* tokens, as time: one token = TOKEN_NS */
  uint64_t last;
} bucket;

kw_err kw__disco_pong_limiter_init(kw__disco_pong_limiter *l) {
  if (!l)
    return KW_ERR_INVALID_ARG;
  return kw__addrlru_init(&l->tab, KW_DISCO_PONG_TABLE, sizeof(bucket));
}

void kw__disco_pong_limiter_free(kw__disco_pong_limiter *l) {
  if (l)
    kw__addrlru_free(&l->tab);
}

bool kw__disco_pong_allow(kw__disco_pong_limiter *l, const kw_sockaddr *to,
                          uint64_t now) {
  if (!l || !to)
    return false;
  bool created;
  bucket *b = kw__addrlru_put(&l->tab, to, now, &created);
  if (!b)
    return false;
  if (created) {
    b->credit_ns = BUCKET_NS;
  } else if (now > b->last) {
    uint64_t add = now - b->last;
    b->credit_ns =
        add >= BUCKET_NS - b->credit_ns ? BUCKET_NS : b->credit_ns + add;
  }
  if (now > b->last || created)
    b->last = now;
  if (b->credit_ns < TOKEN_NS)
    return false;
  b->credit_ns -= TOKEN_NS;
  return true;
}
