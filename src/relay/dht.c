/* SPDX-License-Identifier: MIT */
/*
 * keyway-relay on the Mainline DHT (docs/protocol/dht.md): a core/dht
 * node on a libuv UDP socket, started only with --dht-listen.
 *
 *  - PUT /pkarr/<id> from a connected client: its pkarr item (BEP 44,
 *    signed by the client) is verified, put into the DHT and re-put every
 *    KW_RS_DHT_REPUBLISH_MS while the client stays connected and its
 *    record has not expired. At most KW_RS_DHT_MAX_PUBLISHED items (507
 *    beyond); an item is forgotten when its client disconnects.
 *  - GET /lookup/<id> that misses the store: the DHT cache, else a DHT
 *    get (at most KW_RS_DHT_MAX_RESOLVES at once, 404 beyond), whose item
 *    is verified (BEP 44 signature, then the keyway record rebuilt from it
 *    and its own signature, then its time) and cached until the record
 *    expires or --dht-cache-ttl, whichever is first (KW_RS_DHT_CACHE
 *    entries; when full the entry expiring first is replaced).
 * SHA-1 (tokens, targets) is GnuTLS's. Datagrams that do not fit the
 * socket's send buffer are dropped (dht_send_dropped), as UDP would.
 */
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sodium.h>

#include "core/bencode.h"
#include "core/dht.h"
#include "core/lookup_store.h"
#include "core/pkarr.h"
#include "core/record.h"
#include "net/osaddr.h"
#include "relay/relay.h"

typedef struct published {
  bool used;
  uint8_t id[KW_ID_LEN];
  kw__dht_item it;
  uint64_t expiry_us;  /* the record's */
  uint64_t put_ms;     /* last put into the DHT (monotonic) */
} published;

typedef struct cached {
  bool used;
  uint8_t id[KW_ID_LEN];
  uint8_t rec[KW_RECORD_MAX_LEN];
  size_t len;
  uint64_t until_us;
} cached;

typedef struct resolve {
  bool used;
  uint32_t op;
  uint8_t id[KW_ID_LEN];
  void *waiter; /* the server's connection */
} resolve;

struct kw__rs_dht {
  kw__rs *rs;
  kw__dht *node;
  uv_udp_t udp;
  uv_timer_t timer, republish;
  uint8_t rxbuf[2048];
  published *pub; /* KW_RS_DHT_MAX_PUBLISHED */
  cached *cache;  /* KW_RS_DHT_CACHE */
  resolve res[KW_RS_DHT_MAX_RESOLVES];
  resolve sync; /* a get that ended before kw__dht_get returned */
  uint8_t sync_id[KW_ID_LEN];
  uint8_t sync_rec[KW_RECORD_MAX_LEN];
  size_t sync_len;
  bool sync_done;
  uint64_t boot_ms; /* next bootstrap retry while the table is empty */
};

static uint64_t mono_ms(void) { return kw__rs_now_ns() / 1000000u; }
static uint64_t unix_us(void) { return kw__rs_unix_ms() * 1000u; }

static void sha1(void *ctx, const void *p, size_t n, uint8_t out[20]) {
  (void)ctx;
  if (gnutls_hash_fast(GNUTLS_DIG_SHA1, p, n, out) != 0)
    memset(out, 0, 20); /* cannot happen with a working GnuTLS */
}

static void send_cb(void *ctx, const kw_sockaddr *to, const uint8_t *p,
                    size_t n) {
  kw__rs_dht *d = ctx;
  struct sockaddr_storage ss;
  socklen_t sl;
  kw__sockaddr_to_os(to, &ss, &sl);
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  if (uv_udp_try_send(&d->udp, &b, 1, (const struct sockaddr *)&ss) < 0)
    d->rs->m.dht_send_dropped++;
  else
    d->rs->m.dht_sent++;
}

static void rearm(kw__rs_dht *d);

/* ---- resolving ------------------------------------------------------ */

static const cached *cache_get(kw__rs_dht *d, const uint8_t id[KW_ID_LEN]) {
  uint64_t now = unix_us();
  for (size_t i = 0; i < KW_RS_DHT_CACHE; i++) {
    cached *c = &d->cache[i];
    if (!c->used || memcmp(c->id, id, KW_ID_LEN) != 0)
      continue;
    if (now >= c->until_us) {
      c->used = false;
      return NULL;
    }
    return c;
  }
  return NULL;
}

static void cache_put(kw__rs_dht *d, const kw__record *r, const uint8_t *rec,
                      size_t len) {
  uint64_t now = unix_us();
  uint64_t until = kw__record_expiry(r);
  if (d->rs->cfg.dht_cache_s &&
      now + (uint64_t)d->rs->cfg.dht_cache_s * 1000000u < until)
    until = now + (uint64_t)d->rs->cfg.dht_cache_s * 1000000u;
  cached *slot = NULL;
  for (size_t i = 0; i < KW_RS_DHT_CACHE && !slot; i++)
    if (d->cache[i].used && memcmp(d->cache[i].id, r->addr.id, KW_ID_LEN) == 0)
      slot = &d->cache[i];
  for (size_t i = 0; i < KW_RS_DHT_CACHE && !slot; i++)
    if (!d->cache[i].used)
      slot = &d->cache[i];
  if (!slot) { /* full: the entry expiring first makes room */
    slot = &d->cache[0];
    for (size_t i = 1; i < KW_RS_DHT_CACHE; i++)
      if (d->cache[i].until_us < slot->until_us)
        slot = &d->cache[i];
  }
  slot->used = true;
  memcpy(slot->id, r->addr.id, KW_ID_LEN);
  memcpy(slot->rec, rec, len);
  slot->len = len;
  slot->until_us = until;
}

/* The keyway record inside a DHT item of `id`, checked; 0 if none. */
static size_t item_record(kw__rs_dht *d, const uint8_t id[KW_ID_LEN],
                          const kw__dht_item *it, uint8_t *rec, size_t cap,
                          kw__record *r) {
  kw__be_tok t[2];
  size_t n, len;
  if (kw__be_parse(it->v, it->v_len, t, 2, &n) != KW_OK ||
      t[0].type != KW_BE_STR)
    return 0;
  kw_err e = kw__pkarr_record(t[0].s, t[0].slen, id, it->seq, rec, cap, &len,
                              r);
  if (e != KW_OK) {
    d->rs->m.dht_get[KW_RS_DHT_BAD]++;
    kw__rs_log(d->rs, KW_RS_WARN, "dht.bad_item", "error=%s", kw_errname(e));
    return 0;
  }
  if (kw__record_check_time(r, unix_us()) != KW_OK) {
    d->rs->m.dht_get[KW_RS_DHT_STALE]++;
    kw__rs_log(d->rs, KW_RS_INFO, "dht.stale_item", "seq=%lld",
               (long long)it->seq);
    return 0;
  }
  return len;
}

static void get_done(void *ctx, uint32_t op, const kw__dht_item *it) {
  kw__rs_dht *d = ctx;
  resolve *q = NULL;
  for (size_t i = 0; i < KW_RS_DHT_MAX_RESOLVES && !q; i++)
    if (d->res[i].used && d->res[i].op == op)
      q = &d->res[i];
  if (!q) {
    /* ended inside kw__dht_get (nothing to ask): kw__rs_dht_lookup
     * answers at once */
    q = &d->sync;
    q->op = op;
    memcpy(q->id, d->sync_id, KW_ID_LEN);
    q->waiter = NULL;
  }
  q->used = false;
  char ids[KW_ID_SHORTLEN + 1];
  kw_id_to_short(q->id, ids, sizeof ids);
  uint8_t rec[KW_RECORD_MAX_LEN];
  kw__record r;
  size_t len = it ? item_record(d, q->id, it, rec, sizeof rec, &r) : 0;
  if (len) {
    d->rs->m.dht_get[KW_RS_DHT_FOUND]++;
    cache_put(d, &r, rec, len);
    kw__rs_log(d->rs, KW_RS_INFO, "dht.resolved",
               "id=%s seq=%lld relay=%s addrs=%zu", ids, (long long)it->seq,
               r.addr.relay_url[0] ? r.addr.relay_url : "-", r.addr.n_addrs);
  } else {
    if (!it)
      d->rs->m.dht_get[KW_RS_DHT_NOT_FOUND]++;
    kw__rs_log(d->rs, KW_RS_INFO, "dht.not_found", "id=%s", ids);
  }
  if (q == &d->sync) {
    memcpy(d->sync_rec, rec, len);
    d->sync_len = len;
    d->sync_done = true;
  } else if (q->waiter) {
    kw__rs_server_deferred(d->rs, q->waiter, len ? 200 : 404, rec, len);
  }
}

int kw__rs_dht_lookup(kw__rs *rs, const uint8_t id[KW_ID_LEN], void *waiter,
                      uint8_t *out, size_t cap, size_t *len) {
  kw__rs_dht *d = rs->dht;
  if (!d)
    return 404;
  const cached *c = cache_get(d, id);
  if (c && c->len <= cap) {
    memcpy(out, c->rec, c->len);
    *len = c->len;
    rs->m.dht_get[KW_RS_DHT_CACHED]++;
    return 200;
  }
  resolve *q = NULL;
  for (size_t i = 0; i < KW_RS_DHT_MAX_RESOLVES && !q; i++)
    if (!d->res[i].used)
      q = &d->res[i];
  if (!q) {
    rs->m.dht_get[KW_RS_DHT_BUSY]++;
    return 404;
  }
  uint32_t op;
  d->sync_done = false;
  memcpy(d->sync_id, id, KW_ID_LEN);
  if (kw__dht_get(d->node, id, NULL, 0, mono_ms(), &op) != KW_OK) {
    rs->m.dht_get[KW_RS_DHT_BUSY]++;
    return 404;
  }
  if (d->sync_done) { /* no node to ask: what we hold ourselves, if any */
    d->sync_done = false;
    if (!d->sync_len || d->sync_len > cap)
      return 404;
    memcpy(out, d->sync_rec, d->sync_len);
    *len = d->sync_len;
    return 200;
  }
  q->used = true;
  q->op = op;
  memcpy(q->id, id, KW_ID_LEN);
  q->waiter = waiter;
  rearm(d);
  return 0;
}

void kw__rs_dht_cancel(kw__rs *rs, void *waiter) {
  if (!rs->dht)
    return;
  for (size_t i = 0; i < KW_RS_DHT_MAX_RESOLVES; i++)
    if (rs->dht->res[i].used && rs->dht->res[i].waiter == waiter)
      rs->dht->res[i].waiter = NULL; /* the lookup runs on, unanswered */
}

/* ---- publishing -------------------------------------------------------- */

static void put_done(void *ctx, uint32_t op, unsigned stored) {
  kw__rs_dht *d = ctx;
  (void)op;
  kw__rs_log(d->rs, KW_RS_DEBUG, "dht.put_done", "nodes=%u", stored);
}

static void put_item(kw__rs_dht *d, published *p) {
  p->put_ms = mono_ms();
  if (kw__dht_put(d->node, &p->it, p->put_ms, NULL) == KW_OK)
    d->rs->m.dht_puts++;
  rearm(d);
}

int kw__rs_dht_publish(kw__rs *rs, const uint8_t id[KW_ID_LEN],
                       const uint8_t *body, size_t len, const char **why) {
  kw__rs_dht *d = rs->dht;
  *why = "";
  if (!d) {
    *why = "this relay is not on the DHT";
    return 404;
  }
  kw__pkarr_item it;
  kw_err e = kw__pkarr_body_open(body, len, id, &it);
  if (e != KW_OK) {
    rs->m.dht_publish[KW_RS_LK_BAD_SIGNATURE]++;
    *why = e == KW_ERR_KEY_MISMATCH ? "bad signature" : "malformed item";
    return 400;
  }
  uint8_t rec[KW_RECORD_MAX_LEN];
  size_t rl;
  kw__record r;
  e = kw__pkarr_record(it.packet, it.packet_len, id, it.seq, rec, sizeof rec,
                       &rl, &r);
  uint64_t now = unix_us();
  if (e != KW_OK || kw__record_expired(&r, now) ||
      (r.timestamp_us > now &&
       r.timestamp_us - now > KW_LOOKUP_MAX_SKEW_US)) {
    rs->m.dht_publish[KW_RS_LK_BAD_REQUEST]++;
    *why = e == KW_ERR_KEY_MISMATCH ? "bad record signature"
           : e != KW_OK             ? "not a keyway record"
                                    : "record expired or dated ahead";
    return 400;
  }
  published *slot = NULL, *freeslot = NULL;
  for (size_t i = 0; i < KW_RS_DHT_MAX_PUBLISHED; i++) {
    published *p = &d->pub[i];
    if (p->used && memcmp(p->id, id, KW_ID_LEN) == 0)
      slot = p;
    else if (!p->used && !freeslot)
      freeslot = p;
  }
  if (slot && it.seq < slot->it.seq) {
    rs->m.dht_publish[KW_RS_LK_STALE]++;
    *why = "older than the item published";
    return 409;
  }
  if (slot && it.seq == slot->it.seq)
    return 204; /* the same item again */
  if (!slot)
    slot = freeslot;
  if (!slot) {
    rs->m.dht_publish[KW_RS_LK_FULL]++;
    *why = "too many items";
    return 507;
  }
  memset(slot, 0, sizeof *slot);
  slot->used = true;
  memcpy(slot->id, id, KW_ID_LEN);
  memcpy(slot->it.k, id, KW_ID_LEN);
  memcpy(slot->it.sig, it.sig, 64);
  slot->it.seq = it.seq;
  memcpy(slot->it.v, it.v, it.v_len);
  slot->it.v_len = it.v_len;
  slot->expiry_us = kw__record_expiry(&r);
  rs->m.dht_publish[KW_RS_LK_OK]++;
  char ids[KW_ID_SHORTLEN + 1];
  kw_id_to_short(id, ids, sizeof ids);
  kw__rs_log(rs, KW_RS_INFO, "dht.publish", "id=%s seq=%lld addrs=%zu", ids,
             (long long)it.seq, r.addr.n_addrs);
  put_item(d, slot);
  return 204;
}

void kw__rs_dht_client_gone(kw__rs *rs, const uint8_t id[KW_ID_LEN]) {
  if (!rs->dht)
    return;
  for (size_t i = 0; i < KW_RS_DHT_MAX_PUBLISHED; i++)
    if (rs->dht->pub[i].used &&
        memcmp(rs->dht->pub[i].id, id, KW_ID_LEN) == 0)
      rs->dht->pub[i].used = false; /* left on the DHT until it expires */
}

static void republish_cb(uv_timer_t *t) {
  kw__rs_dht *d = t->data;
  uint64_t now = mono_ms(), unow = unix_us();
  for (size_t i = 0; i < KW_RS_DHT_MAX_PUBLISHED; i++) {
    published *p = &d->pub[i];
    if (!p->used)
      continue;
    if (unow >= p->expiry_us) {
      p->used = false;
      continue;
    }
    if (now - p->put_ms >= KW_RS_DHT_REPUBLISH_MS)
      put_item(d, p);
  }
}

/* ---- the node on the loop ---------------------------------------------------- */

static void boot(kw__rs_dht *d) {
  uint64_t now = mono_ms();
  for (size_t i = 0; i < d->rs->cfg.n_dht_boot; i++)
    kw__dht_bootstrap(d->node, &d->rs->cfg.dht_boot[i], now);
  d->boot_ms = now + KW_RS_DHT_REBOOT_MS;
}

static void timer_cb(uv_timer_t *t) {
  kw__rs_dht *d = t->data;
  uint64_t now = mono_ms();
  kw__dht_tick(d->node, now);
  if (kw__dht_node_count(d->node) == 0 && d->rs->cfg.n_dht_boot &&
      now >= d->boot_ms)
    boot(d);
  rearm(d);
}

static void rearm(kw__rs_dht *d) {
  if (d->rs->stopping)
    return;
  d->rs->m.dht_nodes = kw__dht_node_count(d->node);
  d->rs->m.dht_items = kw__dht_item_count(d->node);
  uint64_t now = mono_ms();
  uint64_t next = kw__dht_next_ms(d->node);
  if (kw__dht_node_count(d->node) == 0 && d->rs->cfg.n_dht_boot &&
      d->boot_ms < next)
    next = d->boot_ms;
  uint64_t delay = next > now ? next - now : 0;
  if (delay > 60000)
    delay = 60000;
  uv_timer_start(&d->timer, timer_cb, delay, 0);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  kw__rs_dht *d = h->data;
  (void)hint;
  *b = uv_buf_init((char *)d->rxbuf, sizeof d->rxbuf);
}

static void recv_cb(uv_udp_t *u, ssize_t n, const uv_buf_t *b,
                    const struct sockaddr *sa, unsigned flags) {
  kw__rs_dht *d = u->data;
  (void)flags;
  if (n <= 0 || !sa)
    return;
  kw_sockaddr from;
  kw__sockaddr_from_os(sa, &from);
  d->rs->m.dht_received++;
  kw__dht_input(d->node, &from, (const uint8_t *)b->base, (size_t)n,
                mono_ms());
  rearm(d);
}

kw_err kw__rs_dht_start(kw__rs *rs) {
  if (rs->cfg.dht_listen.family == 0)
    return KW_OK; /* not asked: no DHT node, no datagram to anyone */
  kw__rs_dht *d = calloc(1, sizeof *d);
  if (!d)
    return KW_ERR_NOMEM;
  d->pub = calloc(KW_RS_DHT_MAX_PUBLISHED, sizeof *d->pub);
  d->cache = calloc(KW_RS_DHT_CACHE, sizeof *d->cache);
  d->rs = rs;
  uint8_t nid[20];
  randombytes_buf(nid, sizeof nid);
  kw__dht_cbs cbs = {sha1, send_cb, get_done, put_done, d};
  if (!d->pub || !d->cache ||
      kw__dht_new(&cbs, nid, mono_ms(), &d->node) != KW_OK) {
    free(d->pub);
    free(d->cache);
    free(d);
    return KW_ERR_NOMEM;
  }
  uv_udp_init(rs->loop, &d->udp);
  d->udp.data = d;
  struct sockaddr_storage ss;
  socklen_t sl;
  kw__sockaddr_to_os(&rs->cfg.dht_listen, &ss, &sl);
  int rc = uv_udp_bind(&d->udp, (const struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_udp_recv_start(&d->udp, alloc_cb, recv_cb);
  uv_timer_init(rs->loop, &d->timer);
  uv_timer_init(rs->loop, &d->republish);
  d->timer.data = d->republish.data = d;
  rs->dht = d;
  if (rc != 0)
    return KW_ERR_ADDR;
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  kw_sockaddr ba;
  uv_udp_getsockname(&d->udp, (struct sockaddr *)&bound, &blen);
  kw__sockaddr_from_os((struct sockaddr *)&bound, &ba);
  char as[KW_SOCKADDR_STRLEN];
  kw_sockaddr_format(&ba, as, sizeof as);
  char hex[41];
  sodium_bin2hex(hex, sizeof hex, nid, sizeof nid);
  kw__rs_log(rs, KW_RS_INFO, "dht.listening", "addr=%s node=%s bootstrap=%zu",
             as, hex, rs->cfg.n_dht_boot);
  uv_timer_start(&d->republish, republish_cb, KW_RS_DHT_REPUBLISH_CHECK_MS,
                 KW_RS_DHT_REPUBLISH_CHECK_MS);
  boot(d);
  rearm(d);
  return KW_OK;
}

static void closed(uv_handle_t *h) {
  kw__rs_dht *d = h->data;
  if (++d->boot_ms < 3) /* boot_ms counts closed handles after stop */
    return;
  kw__dht_free(d->node);
  free(d->pub);
  free(d->cache);
  free(d);
}

void kw__rs_dht_stop(kw__rs *rs) {
  kw__rs_dht *d = rs->dht;
  if (!d)
    return;
  rs->dht = NULL;
  d->boot_ms = 0;
  uv_close((uv_handle_t *)&d->udp, closed);
  uv_close((uv_handle_t *)&d->timer, closed);
  uv_close((uv_handle_t *)&d->republish, closed);
}
