/* SPDX-License-Identifier: MIT */
/*
 * PUT/GET /lookup/<id> over the relay's HTTPS port, backed by the bounded
 * signed-record store of core/lookup_store.
 *
 *   PUT  body = the binary record (core/record.h). 204 stored; 400 bad
 *        record (malformed, expired, dated more than 30 s ahead of the
 *        relay's clock, or another id than the path's); 400 bad signature;
 *        409 not newer than the stored record; 429 too many PUTs (per
 *        connection and per source address, see server.c); 507 store full
 *        (every stored record belongs to a connected client).
 *        Records of connected clients are never evicted for others';
 *        otherwise the record stored longest ago goes first.
 *   GET  200 with the record bytes (application/octet-stream); 404 when
 *        absent or expired. On the DHT (--dht-listen) a miss is asked of
 *        the DHT (dht.c) and answered when that ends.
 * Signatures are verified on write (by the store) and again on read, so
 * a record is never served unless it verifies. Expired records are swept
 * every 10 s.
 */
#include <stdlib.h>
#include <string.h>

#include "core/lookup_store.h"
#include "core/record.h"
#include "relay/relay.h"

#define SWEEP_MS 10000

struct kw__rs_lookup {
  kw__rs *rs;
  kw__lookup_store *store;
  uv_timer_t sweep;
};

static uint64_t now_us(void) {
  return kw__rs_unix_ms() * 1000u;
}

static void sweep_cb(uv_timer_t *t) {
  kw__rs_lookup *lk = t->data;
  size_t n = kw__lookup_store_expire(lk->store, now_us());
  lk->rs->m.lookup_records = kw__lookup_store_count(lk->store);
  if (n)
    kw__rs_log(lk->rs, KW_RS_DEBUG, "lookup.expired", "records=%zu", n);
  if (lk->rs->stopping)
    uv_timer_stop(t);
}

kw_err kw__rs_lookup_init(kw__rs *rs) {
  kw__rs_lookup *lk = calloc(1, sizeof *lk);
  if (!lk)
    return KW_ERR_NOMEM;
  kw_err e = kw__lookup_store_new(rs->cfg.max_records, &lk->store);
  if (e != KW_OK) {
    free(lk);
    return e;
  }
  lk->rs = rs;
  uv_timer_init(rs->loop, &lk->sweep);
  lk->sweep.data = lk;
  uv_timer_start(&lk->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
  uv_unref((uv_handle_t *)&lk->sweep); /* never keeps the relay alive */
  rs->lookup = lk;
  return KW_OK;
}

static void lk_closed(uv_handle_t *h) {
  kw__rs_lookup *lk = h->data;
  kw__lookup_store_free(lk->store);
  free(lk);
}

void kw__rs_lookup_stop(kw__rs *rs) {
  if (!rs->lookup)
    return;
  uv_close((uv_handle_t *)&rs->lookup->sweep, lk_closed);
  rs->lookup = NULL;
}

void kw__rs_lookup_free(kw__rs *rs) {
  /* normally stopped (and freed) on the loop; this is the fallback */
  kw__rs_lookup *lk = rs->lookup;
  if (!lk)
    return;
  kw__lookup_store_free(lk->store);
  free(lk);
  rs->lookup = NULL;
}

static void answer(int *status, uint8_t **resp, size_t *resp_len,
                   const char **ctype, int st, const char *text) {
  *status = st;
  *ctype = "text/plain";
  size_t n = strlen(text);
  *resp = malloc(n + 1);
  if (!*resp) {
    *resp_len = 0;
    return;
  }
  memcpy(*resp, text, n);
  (*resp)[n] = '\n';
  *resp_len = n + 1;
}

void kw__rs_lookup_connected(kw__rs *rs, const uint8_t id[KW_ID_LEN],
                             bool connected) {
  if (rs->lookup)
    kw__lookup_store_pin(rs->lookup->store, id, connected);
}

void kw__rs_lookup_handle(kw__rs *rs, bool put, bool connected,
                          const uint8_t id[KW_ID_LEN], const uint8_t *body,
                          size_t body_len, void *conn, int *status,
                          uint8_t **resp, size_t *resp_len,
                          const char **content_type) {
  kw__rs_lookup *lk = rs->lookup;
  kw__rs_metrics *m = &rs->m;
  char ids[KW_ID_SHORTLEN + 1];
  kw_id_to_short(id, ids, sizeof ids);
  *resp = NULL;
  *resp_len = 0;
  *content_type = NULL;
  if (!lk) {
    *status = 503;
    return;
  }
  uint64_t now = now_us();
  if (put) {
    kw__record r;
    kw_err e = kw__record_decode(body, body_len, &r);
    if (e == KW_ERR_KEY_MISMATCH) {
      m->lookup_put[KW_RS_LK_BAD_SIGNATURE]++;
      kw__rs_log(rs, KW_RS_WARN, "lookup.bad_signature", "id=%s", ids);
      answer(status, resp, resp_len, content_type, 400, "bad signature");
      return;
    }
    if (e != KW_OK || memcmp(r.addr.id, id, KW_ID_LEN) != 0) {
      m->lookup_put[KW_RS_LK_BAD_REQUEST]++;
      answer(status, resp, resp_len, content_type, 400,
             e != KW_OK ? "malformed record" : "record of another id");
      return;
    }
    e = kw__lookup_store_put_pinned(lk->store, body, body_len, now, connected,
                                    NULL);
    m->lookup_records = kw__lookup_store_count(lk->store);
    switch (e) {
    case KW_OK:
      m->lookup_put[KW_RS_LK_OK]++;
      kw__rs_log(rs, KW_RS_DEBUG, "lookup.put", "id=%s ttl=%u", ids,
                 (unsigned)r.ttl_s);
      *status = 204;
      return;
    case KW_ERR_STATE:
      m->lookup_put[KW_RS_LK_STALE]++;
      answer(status, resp, resp_len, content_type, 409,
             "not newer than the stored record");
      return;
    case KW_ERR_FULL:
      m->lookup_put[KW_RS_LK_FULL]++;
      answer(status, resp, resp_len, content_type, 507, "store full");
      return;
    case KW_ERR_KEY_MISMATCH:
      m->lookup_put[KW_RS_LK_BAD_SIGNATURE]++;
      answer(status, resp, resp_len, content_type, 400, "bad signature");
      return;
    case KW_ERR_NOMEM:
      *status = 500;
      return;
    default: /* expired, dated in the future, malformed */
      m->lookup_put[KW_RS_LK_BAD_REQUEST]++;
      answer(status, resp, resp_len, content_type, 400,
             "record expired or dated ahead of the relay's clock");
      return;
    }
  }
  uint8_t *buf = malloc(KW_RECORD_MAX_LEN);
  if (!buf) {
    *status = 500;
    return;
  }
  size_t n = 0;
  kw_err e =
      kw__lookup_store_get(lk->store, id, now, buf, KW_RECORD_MAX_LEN, &n);
  m->lookup_records = kw__lookup_store_count(lk->store);
  kw__record r;
  if (e == KW_OK && (kw__record_decode(buf, n, &r) != KW_OK ||
                     memcmp(r.addr.id, id, KW_ID_LEN) != 0)) {
    /* cannot happen unless memory was corrupted: never serve it */
    m->lookup_get[KW_RS_LK_BAD_SIGNATURE]++;
    free(buf);
    answer(status, resp, resp_len, content_type, 404, "not found");
    return;
  }
  if (e == KW_ERR_NOT_FOUND && rs->dht) {
    int st = kw__rs_dht_lookup(rs, id, conn, buf, KW_RECORD_MAX_LEN, &n);
    if (st == 0) { /* asking the DHT: answered later */
      free(buf);
      *status = 0;
      return;
    }
    if (st == 200)
      e = KW_OK;
  }
  if (e != KW_OK) {
    free(buf);
    m->lookup_get[KW_RS_LK_NOT_FOUND]++;
    answer(status, resp, resp_len, content_type, 404, "not found");
    return;
  }
  m->lookup_get[KW_RS_LK_OK]++;
  *status = 200;
  *resp = buf;
  *resp_len = n;
  *content_type = "application/octet-stream";
}
