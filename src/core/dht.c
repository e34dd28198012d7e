/* SPDX-License-Identifier: MIT */
/* A sans-IO Mainline DHT node. See dht.h and docs/protocol/dht.md. */
#include "core/dht.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/sockaddr.h"

#define TID_LEN 4
#define NO_OP 0xFF
#define TOKEN_LEN 8

typedef struct node {
  bool used;
  uint8_t id[20];
  kw_sockaddr addr;
  uint64_t seen_ms;
  unsigned fails;
} node;

typedef struct stored {
  bool used;
  uint8_t target[20];
  uint64_t stored_ms;
  kw__dht_item it;
} stored;

enum { C_NEW, C_SENT, C_REPLIED, C_FAILED, C_PUT_SENT, C_PUT_DONE };

typedef struct cand {
  bool has_id;
  uint8_t id[20];
  kw_sockaddr addr;
  uint8_t state;
  uint16_t nonce;
  uint64_t sent_ms;
  uint8_t token[KW_KRPC_MAX_TOKEN];
  size_t token_len;
} cand;

typedef struct op {
  bool used;
  kw__dht_op_kind kind;
  bool putting;
  uint32_t serial;
  uint8_t target[20];
  uint8_t k[32];
  uint8_t salt[KW_KRPC_MAX_SALT];
  size_t salt_len;
  uint64_t deadline_ms;
  cand c[KW_DHT_OP_CANDS];
  size_t nc;
  bool have;
  kw__dht_item item; /* put: what to put; get: the best found */
  unsigned acks;
} op;

struct kw__dht {
  kw__dht_cbs cbs;
  uint8_t id[20];
  node table[KW_DHT_TABLE_MAX];
  stored *store; /* KW_DHT_STORE_MAX */
  op ops[KW_DHT_OPS_MAX];
  kw_sockaddr boot[KW_DHT_BOOT_MAX];
  size_t nboot;
  uint8_t secret[2][16]; /* [0] current */
  uint64_t rotate_ms, refresh_ms;
  uint32_t serial;
  uint16_t nonce;
};

/* ---- helpers ---------------------------------------------------------- */

/* <0 if a is closer to t than b */
static int closer(const uint8_t t[20], const uint8_t a[20],
                  const uint8_t b[20]) {
  for (int i = 0; i < 20; i++) {
    uint8_t x = a[i] ^ t[i], y = b[i] ^ t[i];
    if (x != y)
      return x < y ? -1 : 1;
  }
  return 0;
}

static void send_msg(kw__dht *d, const kw_sockaddr *to, const kw__krpc_msg *m) {
  uint8_t buf[KW_KRPC_MAX_MSG];
  size_t n;
  if (kw__krpc_encode(m, buf, sizeof buf, &n) == KW_OK)
    d->cbs.send(d->cbs.ctx, to, buf, n);
}

static void make_token(const kw__dht *d, int which, const kw_sockaddr *a,
                       uint8_t out[TOKEN_LEN]) {
  uint8_t buf[16 + 1 + 16], h[20];
  memcpy(buf, d->secret[which], 16);
  buf[16] = a->family;
  memcpy(buf + 17, a->ip, 16);
  d->cbs.sha1(d->cbs.ctx, buf, sizeof buf, h);
  memcpy(out, h, TOKEN_LEN);
}

static bool token_ok(const kw__dht *d, const kw_sockaddr *a, const uint8_t *t,
                     size_t n) {
  if (n != TOKEN_LEN)
    return false;
  for (int i = 0; i < 2; i++) {
    uint8_t x[TOKEN_LEN];
    make_token(d, i, a, x);
    if (sodium_memcmp(x, t, TOKEN_LEN) == 0)
      return true;
  }
  return false;
}

static bool addr_usable(const kw_sockaddr *a) {
  return a->family == 4 && a->port != 0;
}

/* ---- routing table ------------------------------------------------------ */

static void table_seen(kw__dht *d, const uint8_t id[20], const kw_sockaddr *a,
                       uint64_t now) {
  if (!addr_usable(a) || memcmp(id, d->id, 20) == 0)
    return;
  node *freeslot = NULL, *bad = NULL, *far = NULL;
  for (size_t i = 0; i < KW_DHT_TABLE_MAX; i++) {
    node *n = &d->table[i];
    if (!n->used) {
      if (!freeslot)
        freeslot = n;
      continue;
    }
    if (memcmp(n->id, id, 20) == 0 || kw__sockaddr_equal(&n->addr, a)) {
      memcpy(n->id, id, 20);
      n->addr = *a;
      n->seen_ms = now;
      n->fails = 0;
      return;
    }
    if (n->fails >= KW_DHT_BAD_FAILS && !bad)
      bad = n;
    if (!far || closer(d->id, n->id, far->id) > 0)
      far = n;
  }
  node *slot = freeslot ? freeslot : bad;
  if (!slot && far && closer(d->id, id, far->id) < 0)
    slot = far;
  if (!slot)
    return; /* full of good nodes closer than this one: dropped */
  slot->used = true;
  memcpy(slot->id, id, 20);
  slot->addr = *a;
  slot->seen_ms = now;
  slot->fails = 0;
}

static void table_failed(kw__dht *d, const kw_sockaddr *a) {
  for (size_t i = 0; i < KW_DHT_TABLE_MAX; i++)
    if (d->table[i].used && kw__sockaddr_equal(&d->table[i].addr, a))
      d->table[i].fails++;
}

/* The up to `max` good nodes closest to t, closest first. */
static size_t table_closest(const kw__dht *d, const uint8_t t[20],
                            const node **out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < KW_DHT_TABLE_MAX; i++) {
    const node *x = &d->table[i];
    if (!x->used || x->fails >= KW_DHT_BAD_FAILS)
      continue;
    size_t j = n < max ? n++ : max;
    if (j == max && closer(t, x->id, out[max - 1]->id) >= 0)
      continue;
    if (j == max)
      j = max - 1;
    while (j > 0 && closer(t, x->id, out[j - 1]->id) < 0) {
      out[j] = out[j - 1];
      j--;
    }
    out[j] = x;
  }
  return n;
}

static void put_nodes(const kw__dht *d, const uint8_t t[20], uint8_t *buf,
                      size_t *len) {
  const node *cl[KW_DHT_K];
  size_t n = table_closest(d, t, cl, KW_DHT_K);
  for (size_t i = 0; i < n; i++) {
    uint8_t *p = buf + i * KW_KRPC_NODE_LEN;
    memcpy(p, cl[i]->id, 20);
    memcpy(p + 20, cl[i]->addr.ip, 4);
    p[24] = (uint8_t)(cl[i]->addr.port >> 8);
    p[25] = (uint8_t)cl[i]->addr.port;
  }
  *len = n * KW_KRPC_NODE_LEN;
}

/* ---- store --------------------------------------------------------------- */

static stored *store_find(const kw__dht *d, const uint8_t target[20]) {
  for (size_t i = 0; i < KW_DHT_STORE_MAX; i++)
    if (d->store[i].used && memcmp(d->store[i].target, target, 20) == 0)
      return &d->store[i];
  return NULL;
}

/* 0 stored, else a BEP 44 error code (301 cas, 302 seq too low). */
static int store_put(kw__dht *d, const uint8_t target[20],
                     const kw__dht_item *it, bool has_cas, int64_t cas,
                     uint64_t now) {
  stored *s = store_find(d, target);
  if (s) {
    if (has_cas && s->it.seq != cas)
      return 301;
    if (it->seq < s->it.seq)
      return 302;
  } else {
    stored *oldest = NULL;
    for (size_t i = 0; i < KW_DHT_STORE_MAX && !s; i++) {
      if (!d->store[i].used)
        s = &d->store[i];
      else if (!oldest || d->store[i].stored_ms < oldest->stored_ms)
        oldest = &d->store[i];
    }
    if (!s)
      s = oldest; /* full: the item stored longest ago goes */
  }
  s->used = true;
  memcpy(s->target, target, 20);
  s->stored_ms = now;
  s->it = *it;
  return 0;
}

/* ---- answering queries ------------------------------------------------------ */

static void answer_error(kw__dht *d, const kw_sockaddr *to,
                         const kw__krpc_msg *q, int code, const char *msg) {
  kw__krpc_msg r;
  memset(&r, 0, sizeof r);
  memcpy(r.t, q->t, q->tlen);
  r.tlen = q->tlen;
  r.y = 'e';
  r.err_code = code;
  r.err_msg = (const uint8_t *)msg;
  r.err_len = strlen(msg);
  send_msg(d, to, &r);
}

static void answer_query(kw__dht *d, const kw_sockaddr *from,
                         const kw__krpc_msg *q, uint64_t now) {
  kw__krpc_msg r;
  memset(&r, 0, sizeof r);
  memcpy(r.t, q->t, q->tlen);
  r.tlen = q->tlen;
  r.y = 'r';
  r.has_id = true;
  memcpy(r.id, d->id, 20);
  uint8_t nodes[KW_DHT_K * KW_KRPC_NODE_LEN];
  uint8_t tok[TOKEN_LEN];
  switch (q->q) {
  case KW_KRPC_PING:
    break;
  case KW_KRPC_FIND_NODE:
  case KW_KRPC_GET: {
    if (!q->has_target) {
      answer_error(d, from, q, 203, "no target");
      return;
    }
    put_nodes(d, q->target, nodes, &r.nodes_len);
    r.nodes = nodes;
    if (q->q == KW_KRPC_FIND_NODE)
      break;
    make_token(d, 0, from, tok);
    r.token = tok;
    r.token_len = TOKEN_LEN;
    const stored *s = store_find(d, q->target);
    if (s && (!q->has_seq || s->it.seq > q->seq)) {
      r.has_k = r.has_sig = r.has_seq = true;
      memcpy(r.k, s->it.k, 32);
      memcpy(r.sig, s->it.sig, 64);
      r.seq = s->it.seq;
      r.v = s->it.v;
      r.v_len = s->it.v_len;
    } else if (s) {
      r.has_seq = true;
      r.seq = s->it.seq;
    }
    break;
  }
  case KW_KRPC_PUT: {
    if (!q->token || !token_ok(d, from, q->token, q->token_len)) {
      answer_error(d, from, q, 203, "bad token");
      return;
    }
    if (!q->v) {
      answer_error(d, from, q, 203, "no v");
      return;
    }
    if (!q->has_k || !q->has_sig || !q->has_seq) {
      answer_error(d, from, q, 203, "immutable items are not stored");
      return;
    }
    if (!kw__bep44_verify(q->k, q->salt, q->salt_len, q->seq, q->v, q->v_len,
                          q->sig)) {
      answer_error(d, from, q, 206, "invalid signature");
      return;
    }
    kw__dht_item it;
    memset(&it, 0, sizeof it);
    memcpy(it.k, q->k, 32);
    memcpy(it.sig, q->sig, 64);
    it.seq = q->seq;
    it.salt_len = q->salt_len;
    if (q->salt_len)
      memcpy(it.salt, q->salt, q->salt_len);
    memcpy(it.v, q->v, q->v_len);
    it.v_len = q->v_len;
    uint8_t target[20];
    kw__bep44_target(d->cbs.sha1, d->cbs.ctx, it.k, it.salt, it.salt_len,
                     target);
    int code = store_put(d, target, &it, q->has_cas, q->cas, now);
    if (code == 301) {
      answer_error(d, from, q, 301, "cas mismatch");
      return;
    }
    if (code == 302) {
      answer_error(d, from, q, 302, "sequence number less than current");
      return;
    }
    break;
  }
  default:
    answer_error(d, from, q, 204, "method unknown");
    return;
  }
  send_msg(d, from, &r);
}

/* ---- lookups -------------------------------------------------------------------- */

static void op_add_cand(op *o, const uint8_t *id, const kw_sockaddr *a) {
  if (!addr_usable(a))
    return;
  for (size_t i = 0; i < o->nc; i++) {
    if ((id && o->c[i].has_id && memcmp(o->c[i].id, id, 20) == 0) ||
        kw__sockaddr_equal(&o->c[i].addr, a)) {
      if (id && !o->c[i].has_id) {
        o->c[i].has_id = true;
        memcpy(o->c[i].id, id, 20);
      }
      return;
    }
  }
  /* sorted: candidates with ids by distance, then id-less (bootstrap) */
  if (o->nc == KW_DHT_OP_CANDS) {
    /* full: the farthest candidate not being asked right now makes room,
     * if the newcomer is closer than it */
    if (!id)
      return;
    size_t v = o->nc;
    while (v > 0) {
      cand *c = &o->c[v - 1];
      if (c->has_id && closer(o->target, id, c->id) >= 0)
        return; /* farther than every candidate that could go */
      if (c->state != C_SENT && c->state != C_PUT_SENT)
        break;
      v--;
    }
    if (v == 0)
      return;
    memmove(&o->c[v - 1], &o->c[v], (o->nc - v) * sizeof o->c[0]);
    o->nc--;
  }
  size_t j = o->nc++;
  while (j > 0 && id &&
         (!o->c[j - 1].has_id || closer(o->target, id, o->c[j - 1].id) < 0)) {
    o->c[j] = o->c[j - 1];
    j--;
  }
  memset(&o->c[j], 0, sizeof o->c[j]);
  o->c[j].has_id = id != NULL;
  if (id)
    memcpy(o->c[j].id, id, 20);
  o->c[j].addr = *a;
  o->c[j].state = C_NEW;
}

static void op_send(kw__dht *d, op *o, size_t ci, uint64_t now) {
  cand *c = &o->c[ci];
  kw__krpc_msg q;
  memset(&q, 0, sizeof q);
  c->nonce = ++d->nonce;
  q.t[0] = (uint8_t)(o - d->ops);
  q.t[1] = 0;
  q.t[2] = (uint8_t)(c->nonce >> 8);
  q.t[3] = (uint8_t)c->nonce;
  q.tlen = TID_LEN;
  q.y = 'q';
  q.has_id = true;
  memcpy(q.id, d->id, 20);
  if (!o->putting) {
    q.q = o->kind == KW_DHT_OP_FIND ? KW_KRPC_FIND_NODE : KW_KRPC_GET;
    q.has_target = true;
    memcpy(q.target, o->target, 20);
    c->state = C_SENT;
  } else {
    q.q = KW_KRPC_PUT;
    q.token = c->token;
    q.token_len = c->token_len;
    q.has_k = q.has_sig = q.has_seq = true;
    memcpy(q.k, o->item.k, 32);
    memcpy(q.sig, o->item.sig, 64);
    q.seq = o->item.seq;
    q.salt = o->item.salt_len ? o->item.salt : NULL;
    q.salt_len = o->item.salt_len;
    q.v = o->item.v;
    q.v_len = o->item.v_len;
    c->state = C_PUT_SENT;
  }
  c->sent_ms = now;
  send_msg(d, &c->addr, &q);
}

static void op_finish(kw__dht *d, op *o) {
  o->used = false;
  if (o->kind == KW_DHT_OP_GET && d->cbs.get_done)
    d->cbs.get_done(d->cbs.ctx, o->serial, o->have ? &o->item : NULL);
  else if (o->kind == KW_DHT_OP_PUT && d->cbs.put_done)
    d->cbs.put_done(d->cbs.ctx, o->serial, o->acks);
}

/* Advances a lookup: queries the closest new candidates, then (put) the
 * put phase, and ends it when nothing is left to wait for. */
static void op_step(kw__dht *d, op *o, uint64_t now) {
  if (!o->used)
    return;
  if (!o->putting) {
    size_t inflight = 0, considered = 0;
    bool pending = false;
    for (size_t i = 0; i < o->nc && considered < KW_DHT_K; i++) {
      cand *c = &o->c[i];
      if (c->state == C_FAILED)
        continue;
      considered++;
      if (c->state == C_SENT)
        inflight++;
    }
    considered = 0;
    for (size_t i = 0; i < o->nc && considered < KW_DHT_K; i++) {
      cand *c = &o->c[i];
      if (c->state == C_FAILED)
        continue;
      considered++;
      if (c->state == C_NEW) {
        if (inflight < KW_DHT_ALPHA) {
          op_send(d, o, i, now);
          inflight++;
        }
        pending = true;
      }
    }
    if (pending || inflight)
      return;
    if (o->kind != KW_DHT_OP_PUT) {
      op_finish(d, o);
      return;
    }
    o->putting = true;
    size_t sent = 0;
    for (size_t i = 0; i < o->nc && sent < KW_DHT_K; i++)
      if (o->c[i].state == C_REPLIED && o->c[i].token_len) {
        op_send(d, o, i, now);
        sent++;
      }
  }
  for (size_t i = 0; i < o->nc; i++)
    if (o->c[i].state == C_PUT_SENT)
      return;
  op_finish(d, o);
}

static op *op_new(kw__dht *d, kw__dht_op_kind kind, const uint8_t t[20],
                  uint64_t now) {
  op *o = NULL;
  for (size_t i = 0; i < KW_DHT_OPS_MAX && !o; i++)
    if (!d->ops[i].used)
      o = &d->ops[i];
  if (!o)
    return NULL;
  memset(o, 0, sizeof *o);
  o->used = true;
  o->kind = kind;
  o->serial = ++d->serial;
  memcpy(o->target, t, 20);
  o->deadline_ms = now + KW_DHT_OP_MS;
  const node *cl[KW_DHT_K];
  size_t n = table_closest(d, t, cl, KW_DHT_K);
  for (size_t i = 0; i < n; i++)
    op_add_cand(o, cl[i]->id, &cl[i]->addr);
  if (n < KW_DHT_K)
    for (size_t i = 0; i < d->nboot; i++)
      op_add_cand(o, NULL, &d->boot[i]);
  return o;
}

static void consider_item(kw__dht *d, op *o, const kw__krpc_msg *r) {
  if (o->kind != KW_DHT_OP_GET || !r->v || !r->has_k || !r->has_sig ||
      !r->has_seq || memcmp(r->k, o->k, 32) != 0)
    return;
  if (o->have && r->seq <= o->item.seq)
    return;
  if (!kw__bep44_verify(r->k, o->salt, o->salt_len, r->seq, r->v, r->v_len,
                        r->sig))
    return; /* forged or damaged: ignored */
  memcpy(o->item.k, r->k, 32);
  memcpy(o->item.sig, r->sig, 64);
  o->item.seq = r->seq;
  o->item.salt_len = o->salt_len;
  memcpy(o->item.salt, o->salt, o->salt_len);
  memcpy(o->item.v, r->v, r->v_len);
  o->item.v_len = r->v_len;
  o->have = true;
  (void)d;
}

static void handle_reply(kw__dht *d, const kw_sockaddr *from,
                         const kw__krpc_msg *m, uint64_t now) {
  if (m->tlen != TID_LEN || m->t[0] >= KW_DHT_OPS_MAX)
    return;
  op *o = &d->ops[m->t[0]];
  if (!o->used)
    return;
  /* candidates move as closer ones arrive: match by nonce and address */
  uint16_t nonce = (uint16_t)((m->t[2] << 8) | m->t[3]);
  cand *c = NULL;
  for (size_t i = 0; i < o->nc && !c; i++)
    if (o->c[i].nonce == nonce && kw__sockaddr_equal(&o->c[i].addr, from) &&
        (o->c[i].state == C_SENT || o->c[i].state == C_PUT_SENT))
      c = &o->c[i];
  if (!c)
    return;
  if (m->y == 'e') {
    c->state = c->state == C_PUT_SENT ? C_PUT_DONE : C_FAILED;
    op_step(d, o, now);
    return;
  }
  if (c->state == C_PUT_SENT) {
    c->state = C_PUT_DONE;
    o->acks++;
    op_step(d, o, now);
    return;
  }
  c->state = C_REPLIED;
  if (!c->has_id) {
    c->has_id = true;
    memcpy(c->id, m->id, 20);
  }
  if (m->token && m->token_len) {
    memcpy(c->token, m->token, m->token_len);
    c->token_len = m->token_len;
  }
  consider_item(d, o, m);
  /* a reply may re-sort this op's candidates: copy what we need first */
  size_t nn = m->nodes_len / KW_KRPC_NODE_LEN;
  for (size_t i = 0; i < nn; i++) {
    uint8_t id[20];
    kw_sockaddr a;
    kw__krpc_node(m, i, id, &a);
    if (memcmp(id, d->id, 20) != 0)
      op_add_cand(o, id, &a);
  }
  op_step(d, o, now);
}

/* ---- entry points ------------------------------------------------------------------ */

kw_err kw__dht_new(const kw__dht_cbs *cbs, const uint8_t node_id[20],
                   uint64_t now_ms, kw__dht **out) {
  if (!cbs || !cbs->sha1 || !cbs->send || !node_id || !out)
    return KW_ERR_INVALID_ARG;
  kw__dht *d = calloc(1, sizeof *d);
  if (!d)
    return KW_ERR_NOMEM;
  d->store = calloc(KW_DHT_STORE_MAX, sizeof *d->store);
  if (!d->store) {
    free(d);
    return KW_ERR_NOMEM;
  }
  d->cbs = *cbs;
  memcpy(d->id, node_id, 20);
  randombytes_buf(d->secret, sizeof d->secret);
  d->rotate_ms = now_ms + KW_DHT_TOKEN_ROTATE_MS;
  d->refresh_ms = now_ms + KW_DHT_REFRESH_MS;
  *out = d;
  return KW_OK;
}

void kw__dht_free(kw__dht *d) {
  if (!d)
    return;
  free(d->store);
  free(d);
}

const uint8_t *kw__dht_id(const kw__dht *d) { return d->id; }

kw_err kw__dht_bootstrap(kw__dht *d, const kw_sockaddr *addr,
                         uint64_t now_ms) {
  if (!d || !addr || !addr_usable(addr))
    return KW_ERR_INVALID_ARG;
  bool known = false;
  for (size_t i = 0; i < d->nboot; i++)
    known |= kw__sockaddr_equal(&d->boot[i], addr);
  if (!known) {
    if (d->nboot == KW_DHT_BOOT_MAX)
      return KW_ERR_FULL;
    d->boot[d->nboot++] = *addr;
  }
  op *o = op_new(d, KW_DHT_OP_FIND, d->id, now_ms);
  if (!o)
    return KW_ERR_FULL;
  op_step(d, o, now_ms);
  return KW_OK;
}

void kw__dht_input(kw__dht *d, const kw_sockaddr *from, const uint8_t *p,
                   size_t n, uint64_t now_ms) {
  kw__krpc_msg m;
  if (!d || !from || kw__krpc_decode(p, n, &m) != KW_OK)
    return;
  if (m.y == 'q') {
    if (!m.ro)
      table_seen(d, m.id, from, now_ms);
    answer_query(d, from, &m, now_ms);
    return;
  }
  if (m.y == 'r')
    table_seen(d, m.id, from, now_ms);
  handle_reply(d, from, &m, now_ms);
}

void kw__dht_tick(kw__dht *d, uint64_t now_ms) {
  if (now_ms >= d->rotate_ms) {
    memcpy(d->secret[1], d->secret[0], 16);
    randombytes_buf(d->secret[0], 16);
    d->rotate_ms = now_ms + KW_DHT_TOKEN_ROTATE_MS;
  }
  for (size_t i = 0; i < KW_DHT_STORE_MAX; i++)
    if (d->store[i].used &&
        now_ms - d->store[i].stored_ms >= KW_DHT_ITEM_LIFE_MS)
      d->store[i].used = false;
  for (size_t i = 0; i < KW_DHT_OPS_MAX; i++) {
    op *o = &d->ops[i];
    if (!o->used)
      continue;
    for (size_t j = 0; j < o->nc; j++) {
      cand *c = &o->c[j];
      if ((c->state == C_SENT || c->state == C_PUT_SENT) &&
          now_ms - c->sent_ms >= KW_DHT_QUERY_MS) {
        table_failed(d, &c->addr);
        c->state = c->state == C_SENT ? C_FAILED : C_PUT_DONE;
      }
    }
    if (now_ms >= o->deadline_ms) {
      op_finish(d, o);
      continue;
    }
    op_step(d, o, now_ms);
  }
  if (now_ms >= d->refresh_ms) {
    d->refresh_ms = now_ms + KW_DHT_REFRESH_MS;
    op *o = op_new(d, KW_DHT_OP_FIND, d->id, now_ms);
    if (o)
      op_step(d, o, now_ms);
  }
}

uint64_t kw__dht_next_ms(const kw__dht *d) {
  uint64_t t = d->rotate_ms < d->refresh_ms ? d->rotate_ms : d->refresh_ms;
  for (size_t i = 0; i < KW_DHT_OPS_MAX; i++) {
    const op *o = &d->ops[i];
    if (!o->used)
      continue;
    if (o->deadline_ms < t)
      t = o->deadline_ms;
    for (size_t j = 0; j < o->nc; j++)
      if ((o->c[j].state == C_SENT || o->c[j].state == C_PUT_SENT) &&
          o->c[j].sent_ms + KW_DHT_QUERY_MS < t)
        t = o->c[j].sent_ms + KW_DHT_QUERY_MS;
  }
  return t;
}

kw_err kw__dht_get(kw__dht *d, const uint8_t k[32], const uint8_t *salt,
                   size_t salt_len, uint64_t now_ms, uint32_t *opid) {
  if (!d || !k || salt_len > KW_KRPC_MAX_SALT || (salt_len && !salt))
    return KW_ERR_INVALID_ARG;
  uint8_t t[20];
  kw__bep44_target(d->cbs.sha1, d->cbs.ctx, k, salt, salt_len, t);
  op *o = op_new(d, KW_DHT_OP_GET, t, now_ms);
  if (!o)
    return KW_ERR_FULL;
  memcpy(o->k, k, 32);
  o->salt_len = salt_len;
  if (salt_len)
    memcpy(o->salt, salt, salt_len);
  const stored *s = store_find(d, t);
  if (s && memcmp(s->it.k, k, 32) == 0) {
    o->item = s->it;
    o->have = true;
  }
  if (opid)
    *opid = o->serial;
  op_step(d, o, now_ms);
  return KW_OK;
}

kw_err kw__dht_put(kw__dht *d, const kw__dht_item *it, uint64_t now_ms,
                   uint32_t *opid) {
  if (!d || !it || it->salt_len > KW_KRPC_MAX_SALT || it->v_len == 0 ||
      it->v_len > KW_KRPC_MAX_V || it->seq < 0)
    return KW_ERR_INVALID_ARG;
  if (!kw__bep44_verify(it->k, it->salt, it->salt_len, it->seq, it->v,
                        it->v_len, it->sig))
    return KW_ERR_KEY_MISMATCH;
  uint8_t t[20];
  kw__bep44_target(d->cbs.sha1, d->cbs.ctx, it->k, it->salt, it->salt_len, t);
  op *o = op_new(d, KW_DHT_OP_PUT, t, now_ms);
  if (!o)
    return KW_ERR_FULL;
  store_put(d, t, it, false, 0, now_ms);
  o->item = *it;
  memcpy(o->k, it->k, 32);
  if (opid)
    *opid = o->serial;
  op_step(d, o, now_ms);
  return KW_OK;
}

const kw__dht_item *kw__dht_lookup_local(const kw__dht *d,
                                         const uint8_t target[20]) {
  const stored *s = store_find(d, target);
  return s ? &s->it : NULL;
}

size_t kw__dht_node_count(const kw__dht *d) {
  size_t n = 0;
  for (size_t i = 0; i < KW_DHT_TABLE_MAX; i++)
    n += d->table[i].used;
  return n;
}

size_t kw__dht_item_count(const kw__dht *d) {
  size_t n = 0;
  for (size_t i = 0; i < KW_DHT_STORE_MAX; i++)
    n += d->store[i].used;
  return n;
}
