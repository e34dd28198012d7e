/* SPDX-License-Identifier: MIT */
/*
 * QUIC connections and streams on the ngtcp2 1.x API: with quic_path.c
 * the only file that knows ngtcp2 (magicsock.c only decodes connection
 * ids).
 *
 * QUIC never sees real addresses: every connection's path is a fake
 * local address and the remote's mapped address, with a path generation
 * in one of them (quic_path.c); the magicsock carries its packets over
 * whatever real path the remote has now.
 *
 * Nothing that can free a connection runs inside an ngtcp2 call: errors
 * found in callbacks mark the connection, and kw__conn_flush (called from
 * the loop's prepare step) acts on them; kw__conn_reap frees.
 */
#include "endpoint/internal.h"
#include "endpoint/quic_path.h"

#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sodium.h>

#define KW_CHUNK_MIN 65536

/* ------------------------------------------------------------------------ */

static kw_conn *conn_of(ngtcp2_conn *qc, void *user_data) {
  (void)qc;
  return user_data;
}

static ngtcp2_conn *get_conn_ref(ngtcp2_crypto_conn_ref *ref) {
  kw_conn *c = ref->user_data;
  return c->qc;
}

static void cid_register(kw_conn *c, const uint8_t *cid, size_t len) {
  if (c->ncids >= sizeof c->cids / sizeof c->cids[0])
    return;
  if (kw__cidmap_put(&c->ep->cids, cid, len, c) != KW_OK)
    return;
  memcpy(c->cids[c->ncids].cid, cid, len);
  c->cids[c->ncids].len = len;
  c->cids[c->ncids].gen = 0;
  c->cids[c->ncids].used = false;
  c->ncids++;
}

static void cid_unregister(kw_conn *c, const uint8_t *cid, size_t len) {
  for (size_t i = 0; i < c->ncids; i++) {
    if (c->cids[i].len == len && memcmp(c->cids[i].cid, cid, len) == 0) {
      kw__cidmap_del(&c->ep->cids, cid, len);
      c->ep->rx_last_conn = NULL;
      if (c->rx_cid == i) /* the last packet's (quic_path.c) */
        c->rx_fresh = false;
      else if (c->rx_cid == c->ncids - 1)
        c->rx_cid = (uint8_t)i; /* it moves into the hole */
      c->cids[i] = c->cids[--c->ncids];
      return;
    }
  }
}

/* Marks the connection to close; kw__conn_flush sends CONNECTION_CLOSE
 * (when `send` and the connection is not draining) and reaps it. */
static void conn_fail(kw_conn *c, kw_err err, uint64_t app_code) {
  if (c->state == KW_CONN_CLOSING || c->close_local)
    return;
  if (c->close_err == KW_OK)
    c->close_err = err;
  c->close_app_code = app_code;
  c->state = KW_CONN_CLOSING;
  kw__conn_mark_dirty(c);
}

/* ---- streams ------------------------------------------------------------ */

static kw_stream *stream_new(kw_conn *c, int64_t id) {
  kw_stream *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->conn = c;
  s->id = id;
  s->next_all = c->streams;
  c->streams = s;
  return s;
}

static void tx_push(kw_conn *c, kw_stream *s) {
  if (s->in_tx || s->blocked)
    return;
  s->in_tx = true;
  s->next_tx = NULL;
  if (c->tx_tail)
    c->tx_tail->next_tx = s;
  else
    c->tx_head = s;
  c->tx_tail = s;
}

static void tx_pop_head(kw_conn *c) {
  kw_stream *s = c->tx_head;
  c->tx_head = s->next_tx;
  if (!c->tx_head)
    c->tx_tail = NULL;
  s->in_tx = false;
  s->next_tx = NULL;
}

static void tx_remove(kw_conn *c, kw_stream *s) {
  if (!s->in_tx)
    return;
  kw_stream **pp = &c->tx_head, *prev = NULL;
  while (*pp && *pp != s) {
    prev = *pp;
    pp = &(*pp)->next_tx;
  }
  if (*pp) {
    *pp = s->next_tx;
    if (c->tx_tail == s)
      c->tx_tail = prev;
  }
  s->in_tx = false;
  s->next_tx = NULL;
}

/* A stream the remote opened as unidirectional is receive-only here. */
static bool stream_can_send(const kw_stream *s) {
  bool uni = (s->id & 0x2) != 0;
  bool local = ngtcp2_conn_is_local_stream(s->conn->qc, s->id) != 0;
  return !uni || local;
}

static bool stream_has_tx(const kw_stream *s) {
  return s->sent_off < s->write_off || (s->fin_queued && !s->fin_sent);
}

/* ---- send budgets (kw_config_set_send_budget) ---------------------------- */

/* A connection cut short by a budget may write again once an eighth of
 * its budget and of the endpoint's is free. While only the endpoint's is
 * short, the endpoint remembers to wake it: its own releases may be over. */
static void budget_wake(kw_conn *c) {
  kw_endpoint *ep = c->ep;
  size_t b = ep->cfg.conn_send_budget, e = ep->cfg.endpoint_send_budget;
  if (!c->budget_blocked || c->state == KW_CONN_CLOSING ||
      c->buffered + b / 8 > b)
    return;
  if (ep->buffered + e / 8 > e) {
    ep->budget_blocked = true;
    return;
  }
  c->budget_blocked = false;
  c->budget_notify = true;
  kw__conn_mark_dirty(c);
}

/* `n` bytes of `c` were acknowledged or dropped. */
static void budget_release(kw_conn *c, size_t n) {
  kw_endpoint *ep = c->ep;
  if (n == 0)
    return;
  c->buffered -= n;
  ep->buffered -= n;
  budget_wake(c);
  size_t e = ep->cfg.endpoint_send_budget;
  if (ep->budget_blocked && ep->buffered + e / 8 <= e) {
    ep->budget_blocked = false;
    for (kw_conn *o = ep->conns; o; o = o->next)
      budget_wake(o);
  }
}

/* Outside ngtcp2 calls: streams that met a budget hear they may write,
 * round robin from the one after the stream served last, until the budget
 * is used up again (so no stream starves under steady pressure). */
static void budget_notify(kw_conn *c) {
  c->budget_notify = false;
  kw_endpoint *ep = c->ep;
  size_t n = 0;
  kw_stream *start = NULL;
  for (kw_stream *s = c->streams; s; s = s->next_all) {
    n++;
    if (c->budget_last_ok && s->id == c->budget_last)
      start = s->next_all;
  }
  if (!start)
    start = c->streams;
  kw_stream *s = start;
  for (size_t i = 0; i < n && s; i++) {
    kw_stream *next = s->next_all ? s->next_all : c->streams;
    if (s->want_writable && !s->closed &&
        kw_stream_buffered(s) < ep->cfg.stream_send_buffer) {
      s->want_writable = false;
      c->budget_last = s->id;
      c->budget_last_ok = true;
      if (ep->cfg.cbs.stream_writable)
        ep->cfg.cbs.stream_writable(s, ep->cfg.cb_user);
      if (c->budget_blocked)
        break; /* the budget is used up again */
    }
    s = next;
  }
}

static uint8_t *chunk_bytes(kw__chunk *ch) {
  return ch->ext ? ch->ext : ch->data;
}

static void chunk_free(kw__chunk *ch) {
  if (ch->ext)
    ch->release(ch->release_user, ch->ext);
  free(ch);
}

static void stream_free(kw_conn *c, kw_stream *s) {
  /* what the application never consumed still counts against the
   * connection's window: give it back, or every such stream shrinks the
   * window for good (and once the remote's increment is below a quarter of
   * its window, ngtcp2 sends no MAX_DATA at all: the sender stalls) */
  if (s->unconsumed && c->qc)
    ngtcp2_conn_extend_max_offset(c->qc, s->unconsumed);
  s->unconsumed = 0;
  budget_release(c, (size_t)(s->write_off - s->acked_off));
  s->acked_off = s->write_off;
  tx_remove(c, s);
  for (kw_stream **pp = &c->streams; *pp; pp = &(*pp)->next_all) {
    if (*pp == s) {
      *pp = s->next_all;
      break;
    }
  }
  kw__chunk *ch = s->head;
  while (ch) {
    kw__chunk *n = ch->next;
    chunk_free(ch);
    ch = n;
  }
  free(s);
}

static void stream_closed_notify(kw_conn *c, kw_stream *s, kw_err err,
                                 uint64_t code) {
  kw_endpoint *ep = c->ep;
  if (ep->cfg.cbs.stream_closed)
    ep->cfg.cbs.stream_closed(s, err, code, ep->cfg.cb_user);
  stream_free(c, s);
}

/* ---- ngtcp2 callbacks --------------------------------------------------- */

static void rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *ctx) {
  (void)ctx;
  randombytes_buf(dest, destlen);
}

static int get_new_cid_cb(ngtcp2_conn *qc, ngtcp2_cid *cid, uint8_t *token,
                          size_t cidlen, void *user_data) {
  kw_conn *c = conn_of(qc, user_data);
  randombytes_buf(cid->data, cidlen);
  cid->datalen = cidlen;
  randombytes_buf(token, NGTCP2_STATELESS_RESET_TOKENLEN);
  cid_register(c, cid->data, cid->datalen);
  return 0;
}

static int remove_cid_cb(ngtcp2_conn *qc, const ngtcp2_cid *cid,
                         void *user_data) {
  cid_unregister(conn_of(qc, user_data), cid->data, cid->datalen);
  return 0;
}

/* The incoming handshake of `c` completed or ended. */
static void halfopen_end(kw_conn *c) {
  if (!c->halfopen)
    return;
  c->halfopen = false;
  c->ep->nhalfopen--;
}

static int handshake_completed_cb(ngtcp2_conn *qc, void *user_data) {
  kw_conn *c = conn_of(qc, user_data);
  if (!c->is_client) {
    kw_endpoint *ep = c->ep;
    halfopen_end(c);
    if (ep->nconns - ep->nhalfopen > ep->cfg.max_conns) {
      /* established connections are at their limit: refuse this one
       * (it is no longer counted as a handshake in progress) */
      ep->stats.drops_refused++;
      c->close_err = KW_ERR_FULL;
      c->close_local = true;
      kw__conn_mark_dirty(c);
      return 0;
    }
  }
  c->handshake_done = true;
  kw__tls_sess_alpn(c->tls, c->alpn, sizeof c->alpn);
  if (!c->is_client) {
    /* The server verified the client's certificate before completing. */
    if (!c->remote_id_known)
      return NGTCP2_ERR_CALLBACK_FAILURE;
    c->state = KW_CONN_ESTABLISHED;
    c->notify_ready = true;
  } else if (c->state == KW_CONN_HANDSHAKE) {
    /* The client has verified the server's key and holds 1-RTT keys: it
     * may send now (its Finished and the first data leave together), so
     * "connected" does not wait another round trip for HANDSHAKE_DONE.
     * The server could still refuse our certificate; it then closes the
     * connection and the application hears conn_closed. */
    c->state = KW_CONN_ESTABLISHED;
    c->notify_ready = true;
  }
  return 0;
}

static int handshake_confirmed_cb(ngtcp2_conn *qc, void *user_data) {
  kw_conn *c = conn_of(qc, user_data);
  c->confirmed = true;
  if (c->is_client && c->state == KW_CONN_HANDSHAKE) {
    c->state = KW_CONN_ESTABLISHED;
    c->notify_ready = true;
  }
  return 0;
}

static void notify_ready(kw_conn *c);

/* Data from the remote proves it accepted us: the application hears
 * "connected" (or "accepted") before any stream of the connection. */
static void ready_before_streams(kw_conn *c) {
  if (c->is_client && c->state == KW_CONN_HANDSHAKE && c->handshake_done) {
    c->state = KW_CONN_ESTABLISHED;
    c->notify_ready = true;
  }
  if (c->notify_ready)
    notify_ready(c);
}

static int stream_open_cb(ngtcp2_conn *qc, int64_t sid, void *user_data) {
  kw_conn *c = conn_of(qc, user_data);
  ready_before_streams(c);
  kw_stream *s = stream_new(c, sid);
  if (!s)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  ngtcp2_conn_set_stream_user_data(qc, sid, s);
  if (c->ep->cfg.cbs.stream_opened)
    c->ep->cfg.cbs.stream_opened(s, c->ep->cfg.cb_user);
  return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *qc, uint32_t flags, int64_t sid,
                               uint64_t offset, const uint8_t *data,
                               size_t datalen, void *user_data,
                               void *stream_user_data) {
  (void)offset;
  kw_conn *c = conn_of(qc, user_data);
  kw_stream *s = stream_user_data;
  if (!s)
    return 0;
  bool fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
  static const uint8_t empty[1];
  if (c->ep->cfg.cbs.stream_data) /* never a NULL pointer, even for 0 bytes */
    c->ep->cfg.cbs.stream_data(s, data ? data : empty, datalen, fin,
                               c->ep->cfg.cb_user);
  if (!s->manual_consume && datalen) {
    ngtcp2_conn_extend_max_stream_offset(qc, sid, datalen);
    ngtcp2_conn_extend_max_offset(qc, datalen);
  } else {
    s->unconsumed += datalen;
  }
  kw__conn_mark_dirty(c);
  return 0;
}

static int acked_offset_cb(ngtcp2_conn *qc, int64_t sid, uint64_t offset,
                           uint64_t datalen, void *user_data,
                           void *stream_user_data) {
  (void)sid;
  kw_conn *c = conn_of(qc, user_data);
  kw_stream *s = stream_user_data;
  if (!s)
    return 0;
  uint64_t end = offset + datalen;
  if (end > s->acked_off) {
    budget_release(c, (size_t)(end - s->acked_off));
    s->acked_off = end;
  }
  while (s->head && s->head->off + s->head->len <= s->acked_off &&
         s->head != s->tail) {
    kw__chunk *n = s->head->next;
    chunk_free(s->head);
    s->head = n;
  }
  if (s->head && s->head == s->tail &&
      s->head->off + s->head->len <= s->acked_off &&
      s->acked_off == s->write_off) {
    chunk_free(s->head);
    s->head = s->tail = NULL;
  }
  if (s->want_writable &&
      s->write_off - s->acked_off < c->ep->cfg.stream_send_buffer) {
    s->want_writable = false;
    if (c->ep->cfg.cbs.stream_writable)
      c->ep->cfg.cbs.stream_writable(s, c->ep->cfg.cb_user);
  }
  return 0;
}

static int stream_close_cb(ngtcp2_conn *qc, uint32_t flags, int64_t sid,
                           uint64_t app_error_code, void *user_data,
                           void *stream_user_data) {
  kw_conn *c = conn_of(qc, user_data);
  kw_stream *s = stream_user_data;
  bool remote_init = ngtcp2_conn_is_local_stream(qc, sid) == 0;
  if (remote_init) {
    if (sid & 0x2)
      ngtcp2_conn_extend_max_streams_uni(qc, 1);
    else
      ngtcp2_conn_extend_max_streams_bidi(qc, 1);
  }
  if (!s)
    return 0;
  bool err = (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) &&
             app_error_code != 0;
  s->closed = true;
  stream_closed_notify(c, s, err ? KW_ERR_RESET : KW_OK,
                       err ? app_error_code : 0);
  kw__conn_mark_dirty(c);
  return 0;
}

static int extend_max_stream_data_cb(ngtcp2_conn *qc, int64_t sid,
                                     uint64_t max_data, void *user_data,
                                     void *stream_user_data) {
  (void)sid;
  (void)max_data;
  kw_conn *c = conn_of(qc, user_data);
  kw_stream *s = stream_user_data;
  if (!s)
    return 0;
  s->blocked = false;
  if (stream_has_tx(s))
    tx_push(c, s);
  kw__conn_mark_dirty(c);
  return 0;
}

static int recv_datagram_cb(ngtcp2_conn *qc, uint32_t flags,
                            const uint8_t *data, size_t datalen,
                            void *user_data) {
  (void)flags;
  kw_conn *c = conn_of(qc, user_data);
  if (c->ep->cfg.cbs.datagram && c->state == KW_CONN_ESTABLISHED)
    c->ep->cfg.cbs.datagram(c, data, datalen, c->ep->cfg.cb_user);
  return 0;
}

static int path_challenge_cb(ngtcp2_conn *qc, uint8_t *data, void *ud) {
  (void)qc;
  (void)ud;
  randombytes_buf(data, NGTCP2_PATH_CHALLENGE_DATALEN);
  return 0;
}

static void fill_callbacks(ngtcp2_callbacks *cb, bool client) {
  memset(cb, 0, sizeof *cb);
  if (client) {
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
    cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  } else {
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  }
  cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb->encrypt = ngtcp2_crypto_encrypt_cb;
  cb->decrypt = ngtcp2_crypto_decrypt_cb;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb->get_path_challenge_data = path_challenge_cb;
  cb->rand = rand_cb;
  cb->get_new_connection_id = get_new_cid_cb;
  cb->remove_connection_id = remove_cid_cb;
  cb->handshake_completed = handshake_completed_cb;
  cb->handshake_confirmed = handshake_confirmed_cb;
  cb->stream_open = stream_open_cb;
  cb->recv_stream_data = recv_stream_data_cb;
  cb->acked_stream_data_offset = acked_offset_cb;
  cb->stream_close = stream_close_cb;
  cb->extend_max_stream_data = extend_max_stream_data_cb;
  cb->recv_datagram = recv_datagram_cb;
}

/* The largest UDP payload keyway sends when PMTUD finds a path that
 * carries it (loopback, some virtual links): a quarter of a GSO send. */
#define KW_MAX_UDP_PAYLOAD 16384

static void fill_settings(kw_endpoint *ep, ngtcp2_settings *st,
                          ngtcp2_transport_params *tp, bool client) {
  const kw_config *cfg = &ep->cfg;
  ngtcp2_settings_default(st);
  st->initial_ts = kw__now(ep);
  switch (cfg->cc) {
  case KW_CC_BBR:
    st->cc_algo = NGTCP2_CC_ALGO_BBR;
    break;
  case KW_CC_RENO:
    st->cc_algo = NGTCP2_CC_ALGO_RENO;
    break;
  default:
    st->cc_algo = NGTCP2_CC_ALGO_CUBIC;
    break;
  }
  /* PMTUD probes: ngtcp2's own sizes for Internet paths first (1406,
   * 1342, 1232, 1444), then jumbo frames (9000-byte MTU) and loopback-
   * class links. A probe larger than the interface's MTU fails at the
   * socket (udp.c sets IP_PMTUDISC_PROBE) and one lost beyond it stops
   * the climb, so Internet paths pay at most three small lost probes. */
  static const uint16_t probes[] = {1454 - 48, 1390 - 48, 1280 - 48,
                                    1492 - 48, 9000 - 48, KW_MAX_UDP_PAYLOAD};
  st->pmtud_probes = probes;
  st->pmtud_probeslen = sizeof probes / sizeof probes[0];
  st->max_tx_udp_payload_size = KW_MAX_UDP_PAYLOAD;
  st->max_window = 64u << 20;
  st->max_stream_window = 16u << 20;
  if (client)
    st->handshake_timeout =
        (ngtcp2_duration)cfg->connect_timeout_ms * NGTCP2_MILLISECONDS;
  ngtcp2_transport_params_default(tp);
  tp->initial_max_stream_data_bidi_local = 4u << 20;
  tp->initial_max_stream_data_bidi_remote = 4u << 20;
  tp->initial_max_stream_data_uni = 4u << 20;
  tp->initial_max_data = 16u << 20;
  tp->initial_max_streams_bidi = cfg->max_streams_bidi;
  tp->initial_max_streams_uni = cfg->max_streams_uni;
  tp->max_idle_timeout =
      (ngtcp2_duration)cfg->idle_timeout_ms * NGTCP2_MILLISECONDS;
  tp->max_datagram_frame_size = 65535;
  tp->active_connection_id_limit = 7;
}

/* ---- life cycle --------------------------------------------------------- */

static void timer_cb(uv_timer_t *t);
static void connect_timer_cb(uv_timer_t *t);

static kw_conn *conn_alloc(kw_endpoint *ep, kw__remote *r, bool client) {
  kw_conn *c = calloc(1, sizeof *c);
  ngtcp2_crypto_conn_ref *ref = calloc(1, sizeof *ref);
  if (!c || !ref) {
    free(c);
    free(ref);
    return NULL;
  }
  ref->get_conn = get_conn_ref;
  ref->user_data = c;
  c->conn_ref = ref;
  c->ep = ep;
  c->remote = r;
  r->nconns++;
  c->rtt_slot = -1;
  for (int i = 0; i < KW_RTT_SLOT_DISCO; i++) {
    if (!(r->rtt_slots & (1u << i))) {
      r->rtt_slots |= 1u << i;
      c->rtt_slot = i;
      break;
    }
  }
  c->is_client = client;
  c->last_rx_ns = kw__now(ep);
  uv_timer_init(&ep->loop, &c->timer);
  uv_timer_init(&ep->loop, &c->connect_timer);
  c->timer.data = c;
  c->connect_timer.data = c;
  c->next = ep->conns;
  ep->conns = c;
  ep->nconns++;
  return c;
}

static void handle_closed(uv_handle_t *h) {
  kw_conn *c = h->data;
  /* both timers point here; free after the second */
  if (h == (uv_handle_t *)&c->timer) {
    c->timer.data = NULL;
  } else {
    c->connect_timer.data = NULL;
  }
  if (!c->timer.data && !c->connect_timer.data)
    free(c);
}

static void conn_destroy(kw_conn *c) {
  kw_endpoint *ep = c->ep;
  halfopen_end(c);
  while (c->streams)
    stream_closed_notify(c, c->streams, KW_ERR_CLOSED, 0);
  while (c->dg_head) {
    kw__dgram *d = c->dg_head;
    c->dg_head = d->next;
    free(d);
  }
  for (size_t i = 0; i < c->ncids; i++)
    kw__cidmap_del(&ep->cids, c->cids[i].cid, c->cids[i].len);
  ep->rx_last_conn = NULL;
  c->ncids = 0;
  for (kw_conn **pp = &ep->conns; *pp; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  }
  ep->nconns--;
  for (size_t i = 0; i < ep->nblocked; i++) {
    if (ep->blocked[i] == c) {
      ep->blocked[i] = ep->blocked[--ep->nblocked];
      break;
    }
  }
  if (c->qc)
    ngtcp2_conn_del(c->qc);
  kw__tls_sess_free(c->tls);
  free(c->conn_ref);
  free(c->pend);
  if (c->remote) {
    kw__disco_conn_down(ep, c);
    c->remote->nconns--;
    kw__remote_unref(c->remote);
  }
  uv_close((uv_handle_t *)&c->timer, handle_closed);
  uv_close((uv_handle_t *)&c->connect_timer, handle_closed);
}

kw_err kw__conn_client_new(kw_endpoint *ep, kw__remote *r, const char *alpn,
                           kw_connect_cb cb, void *arg, kw_conn **out) {
  kw_conn *c = conn_alloc(ep, r, true);
  if (!c) {
    kw__remote_unref(r);
    return KW_ERR_NOMEM;
  }
  c->connect_cb = cb;
  c->connect_arg = arg;
  memcpy(c->remote_id, r->id, KW_ID_LEN);
  kw_err err = kw__tls_sess_new(ep->tls, c, true, r->id, alpn, NULL, 0,
                                &c->tls);
  if (err != KW_OK)
    goto fail;
  ngtcp2_cid dcid, scid;
  dcid.datalen = KW_CIDLEN;
  scid.datalen = KW_CIDLEN;
  randombytes_buf(dcid.data, KW_CIDLEN);
  randombytes_buf(scid.data, KW_CIDLEN);
  ngtcp2_callbacks cbs;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  fill_callbacks(&cbs, true);
  fill_settings(ep, &st, &tp, true);
  kw__qpath qp;
  kw__qpath_build(c, 0, &qp);
  if (ngtcp2_conn_client_new(&c->qc, &dcid, &scid, &qp.path,
                             NGTCP2_PROTO_VER_V1, &cbs, &st, &tp, NULL,
                             c) != 0) {
    err = KW_ERR_QUIC;
    goto fail;
  }
  ngtcp2_conn_set_tls_native_handle(c->qc, kw__tls_sess_native(c->tls));
  if (ep->cfg.keepalive_ms)
    ngtcp2_conn_set_keep_alive_timeout(
        c->qc, (ngtcp2_duration)ep->cfg.keepalive_ms * NGTCP2_MILLISECONDS);
  cid_register(c, scid.data, scid.datalen);
  uv_timer_start(&c->connect_timer, connect_timer_cb, ep->cfg.connect_timeout_ms,
                 0);
  ep->stats.conns_opened++;
  kw__conn_mark_dirty(c);
  if (out)
    *out = c;
  return KW_OK;
fail:
  c->connect_cb = NULL;
  conn_destroy(c);
  return err;
}

/* A stable 16-byte key for where a datagram came from: its UDP address, or
 * the relay and the id that relay vouches for. Retry tokens are bound to
 * it, and handshakes in progress are counted per key. */
static void src_key(const kw__src *from, const uint8_t *from_id,
                    uint8_t key[16]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, 16);
  if (from->relay < 0 || !from_id) {
    uint8_t a[19] = {from->addr.family, (uint8_t)(from->addr.port >> 8),
                     (uint8_t)from->addr.port};
    memcpy(a + 3, from->addr.ip, 16);
    crypto_generichash_update(&st, a, sizeof a);
  } else {
    uint8_t r[2] = {0xff, (uint8_t)from->relay};
    crypto_generichash_update(&st, r, sizeof r);
    crypto_generichash_update(&st, from_id, KW_ID_LEN);
  }
  crypto_generichash_final(&st, key, 16);
}

/* The key as the socket address ngtcp2's token functions bind to. */
static void src_sockaddr(const uint8_t key[16], struct sockaddr_in6 *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sin6_family = AF_INET6;
  memcpy(&sa->sin6_addr, key, 16);
}

/* Sends a packet outside any connection back where `from` came from. */
static void send_raw(kw_endpoint *ep, const kw__src *from,
                     const uint8_t *from_id, const uint8_t *p, size_t n) {
  size_t sent = 0;
  if (from->relay >= 0) {
    if (from_id)
      (void)kw__relay_send_batch(ep, from->relay, from_id, p, n, 0, &sent);
    return;
  }
  kw__udp *u = from->addr.family == 4 ? &ep->udp4 : &ep->udp6;
  if (u->fd >= 0)
    (void)kw__udp_send(u, &from->addr, p, n, 0, &sent);
}

/* Answers an Initial with a Retry carrying a token bound to its source. */
static void send_retry(kw_endpoint *ep, const kw__src *from,
                       const uint8_t *from_id, const ngtcp2_pkt_hd *hd,
                       const uint8_t key[16]) {
  ngtcp2_cid scid;
  scid.datalen = KW_CIDLEN;
  randombytes_buf(scid.data, KW_CIDLEN);
  struct sockaddr_in6 sa;
  src_sockaddr(key, &sa);
  uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
  ngtcp2_ssize tl = ngtcp2_crypto_generate_retry_token(
      token, ep->retry_secret, sizeof ep->retry_secret, hd->version,
      (const ngtcp2_sockaddr *)&sa, sizeof sa, &scid, &hd->dcid, kw__now(ep));
  if (tl < 0)
    return;
  uint8_t buf[256];
  ngtcp2_ssize n = ngtcp2_crypto_write_retry(buf, sizeof buf, hd->version,
                                             &hd->scid, &scid, &hd->dcid,
                                             token, (size_t)tl);
  if (n <= 0)
    return;
  send_raw(ep, from, from_id, buf, (size_t)n);
  ep->stats.retries_sent++;
}

static unsigned halfopen_from(kw_endpoint *ep, const uint8_t key[16]) {
  unsigned n = 0;
  for (kw_conn *c = ep->conns; c; c = c->next)
    if (c->halfopen && memcmp(c->src_key, key, 16) == 0)
      n++;
  return n;
}

void kw__conn_accept(kw_endpoint *ep, const kw__src *from,
                     const uint8_t *from_id, const uint8_t *data, size_t len) {
  ngtcp2_pkt_hd hd;
  if (ngtcp2_accept(&hd, data, len) != 0 || hd.type != NGTCP2_PKT_INITIAL) {
    ep->stats.drops_unknown++;
    return;
  }
  if (ep->cfg.n_alpns == 0 || ep->closing ||
      ep->nconns - ep->nhalfopen >= ep->cfg.max_conns ||
      ep->nhalfopen >= KW_HALFOPEN_MAX) {
    ep->stats.drops_refused++;
    return;
  }
  uint8_t key[16];
  src_key(from, from_id, key);
  /* address validation: a token from our Retry proves the source can
   * receive what we send it */
  ngtcp2_cid odcid;
  bool validated = false;
  if (hd.tokenlen && hd.token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
    struct sockaddr_in6 sa;
    src_sockaddr(key, &sa);
    if (ngtcp2_crypto_verify_retry_token(
            &odcid, hd.token, hd.tokenlen, ep->retry_secret,
            sizeof ep->retry_secret, hd.version,
            (const ngtcp2_sockaddr *)&sa, sizeof sa, &hd.dcid,
            (ngtcp2_duration)KW_RETRY_TOKEN_TIMEOUT_MS * NGTCP2_MILLISECONDS,
            kw__now(ep)) != 0) {
      ep->stats.drops_unknown++; /* forged, stale, or from elsewhere */
      return;
    }
    validated = true;
  }
  if (!validated && ep->nhalfopen >= ep->cfg.retry_threshold) {
    send_retry(ep, from, from_id, &hd, key);
    return;
  }
  if (ep->nhalfopen >= KW_HALFOPEN_MAX / 2 &&
      halfopen_from(ep, key) >= KW_HALFOPEN_PER_SRC) {
    ep->stats.drops_refused++;
    return;
  }
  /* a relay vouches for the sender's id; TLS checks it again */
  kw__remote *r = kw__remote_new(ep, from_id);
  if (!r)
    return;
  kw__remote_confirm_path(r, from, kw__now(ep));
  kw_conn *c = conn_alloc(ep, r, false);
  if (!c) {
    kw__remote_unref(r);
    return;
  }
  c->halfopen = true;
  ep->nhalfopen++;
  memcpy(c->src_key, key, 16);
  if (kw__tls_sess_new(ep->tls, c, false, NULL, NULL, ep->cfg.alpns,
                       ep->cfg.n_alpns, &c->tls) != KW_OK)
    goto fail;
  ngtcp2_cid scid;
  scid.datalen = KW_CIDLEN;
  randombytes_buf(scid.data, KW_CIDLEN);
  ngtcp2_callbacks cbs;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  fill_callbacks(&cbs, false);
  fill_settings(ep, &st, &tp, false);
  if (validated) {
    st.token = hd.token;
    st.tokenlen = hd.tokenlen;
    st.token_type = NGTCP2_TOKEN_TYPE_RETRY;
    tp.original_dcid = odcid;
    tp.retry_scid = hd.dcid;
    tp.retry_scid_present = 1;
  } else {
    tp.original_dcid = hd.dcid;
  }
  tp.original_dcid_present = 1;
  kw__qpath qp;
  kw__qpath_build(c, 0, &qp);
  if (ngtcp2_conn_server_new(&c->qc, &hd.scid, &scid, &qp.path, hd.version,
                             &cbs, &st, &tp, NULL, c) != 0)
    goto fail;
  ngtcp2_conn_set_tls_native_handle(c->qc, kw__tls_sess_native(c->tls));
  if (ep->cfg.keepalive_ms)
    ngtcp2_conn_set_keep_alive_timeout(
        c->qc, (ngtcp2_duration)ep->cfg.keepalive_ms * NGTCP2_MILLISECONDS);
  cid_register(c, scid.data, scid.datalen);
  cid_register(c, hd.dcid.data, hd.dcid.datalen);
  /* an unauthenticated handshake gets little time (and never more than a
   * dial) */
  uint32_t hs_ms = ep->cfg.connect_timeout_ms < KW_HALFOPEN_TIMEOUT_MS
                       ? ep->cfg.connect_timeout_ms
                       : KW_HALFOPEN_TIMEOUT_MS;
  uv_timer_start(&c->connect_timer, connect_timer_cb, hs_ms, 0);
  kw__conn_recv(c, from, data, len);
  return;
fail:
  conn_destroy(c);
}

static kw_err map_close_error(kw_conn *c, uint64_t *app_code) {
  const ngtcp2_ccerr *ce = ngtcp2_conn_get_ccerr(c->qc);
  *app_code = 0;
  switch (ce->type) {
  case NGTCP2_CCERR_TYPE_APPLICATION:
    *app_code = ce->error_code;
    return KW_ERR_APP_CLOSED;
  case NGTCP2_CCERR_TYPE_IDLE_CLOSE:
    return KW_ERR_IDLE;
  default:
    break;
  }
  if (ce->error_code == NGTCP2_NO_ERROR)
    return KW_ERR_APP_CLOSED;
  if ((ce->error_code & 0xff00) == NGTCP2_CRYPTO_ERROR) {
    uint8_t alert = (uint8_t)(ce->error_code & 0xff);
    if (alert == 120) /* no_application_protocol */
      return KW_ERR_ALPN;
    if (alert == 116 || alert == 42 || alert == 43 || alert == 46)
      return KW_ERR_CERT;
    return KW_ERR_TLS;
  }
  return KW_ERR_PEER;
}

void kw__conn_recv(kw_conn *c, const kw__src *from, const uint8_t *data,
                   size_t len) {
  if (c->state == KW_CONN_CLOSING)
    return;
  kw__qpath qp;
  kw__qpath_build(c, kw__qpath_rx_gen(c, data, len), &qp);
  ngtcp2_pkt_info pi = {0};
  uint64_t now = kw__now(c->ep);
  int rv = ngtcp2_conn_read_pkt(c->qc, &qp.path, &pi, data, len, now);
  c->pkts_recv++;
  c->bytes_recv += len;
  if (rv == 0) {
    c->last_rx_ns = now;
    kw__qpath_after_read(c);
    if (kw__remote_confirm_path(c->remote, from, now))
      kw__remote_path_changed(c->remote);
    kw__conn_mark_dirty(c);
    return;
  }
  uint64_t code = 0;
  switch (rv) {
  case NGTCP2_ERR_DRAINING: {
    kw_err why = map_close_error(c, &code); /* sets code: call it first */
    conn_fail(c, why, code);
    /* the remote closed: nothing to send back */
    c->close_local = false;
    break;
  }
  case NGTCP2_ERR_DROP_CONN:
    conn_fail(c, KW_ERR_QUIC, 0);
    break;
  case NGTCP2_ERR_DISCARD_PKT:
  case NGTCP2_ERR_RETRY:
    break;
  case NGTCP2_ERR_CRYPTO: {
    kw_err e = c->close_err != KW_OK ? c->close_err : KW_ERR_TLS;
    uint8_t alert = ngtcp2_conn_get_tls_alert(c->qc);
    if (e == KW_ERR_TLS && alert == 120)
      e = KW_ERR_ALPN;
    if (e == KW_ERR_TLS && alert == 116)
      e = KW_ERR_CERT;
    c->close_err = e;
    c->local_app_code = 0;
    c->close_local = true; /* send the alert in a CONNECTION_CLOSE */
    kw__conn_mark_dirty(c);
    break;
  }
  default:
    kw__log(c->ep, KW_LOG_WARN, "quic", "quic.read_error err=%s",
            ngtcp2_strerror(rv));
    c->close_err = c->close_err != KW_OK ? c->close_err : KW_ERR_QUIC;
    c->close_local = true;
    kw__conn_mark_dirty(c);
    break;
  }
}

void kw__conn_mark_dirty(kw_conn *c) {
  if (c->dirty)
    return;
  c->dirty = true;
  c->next_dirty = c->ep->dirty_head;
  c->ep->dirty_head = c;
}

/* ---- writing -------------------------------------------------------------- */

/* Builds an iovec of unsent stream data starting at sent_off. */
static size_t stream_vec(kw_stream *s, ngtcp2_vec *v, size_t max) {
  size_t n = 0;
  uint64_t pos = s->sent_off;
  for (kw__chunk *ch = s->head; ch && n < max; ch = ch->next) {
    if (ch->off + ch->len <= pos)
      continue;
    size_t skip = (size_t)(pos - ch->off);
    v[n].base = chunk_bytes(ch) + skip;
    v[n].len = ch->len - skip;
    pos += v[n].len;
    n++;
  }
  return n;
}

/* Writes one packet into dest; returns its length, 0 when nothing more can
 * be sent now, or a negative ngtcp2 error. */
static ngtcp2_ssize write_pkt(kw_conn *c, uint8_t *dest, size_t destlen,
                              ngtcp2_tstamp ts) {
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi;
  for (;;) {
    if (c->dg_head && c->state == KW_CONN_ESTABLISHED) {
      kw__dgram *d = c->dg_head;
      ngtcp2_vec v = {d->data, d->len};
      int accepted = 0;
      ngtcp2_ssize n = ngtcp2_conn_writev_datagram(
          c->qc, &ps.path, &pi, dest, destlen, &accepted,
          NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, &v, 1, ts);
      if (accepted || (n < 0 && n != NGTCP2_ERR_WRITE_MORE)) {
        /* accepted, or refused for good (too large, unsupported): drop */
        c->dg_head = d->next;
        if (!c->dg_head)
          c->dg_tail = NULL;
        c->dg_count--;
        free(d);
      }
      if (n == NGTCP2_ERR_WRITE_MORE)
        continue;
      if (n < 0) {
        if (n == NGTCP2_ERR_INVALID_STATE || n == NGTCP2_ERR_INVALID_ARGUMENT)
          continue;
        return n;
      }
      if (n > 0 || !accepted)
        return n;
      continue;
    }
    kw_stream *s = c->tx_head;
    ngtcp2_vec vec[16];
    size_t nv = 0;
    int64_t sid = -1;
    uint32_t flags = 0;
    if (s) {
      sid = s->id;
      nv = stream_vec(s, vec, 16);
      flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
      uint64_t total = 0;
      for (size_t i = 0; i < nv; i++)
        total += vec[i].len;
      if (s->fin_queued && !s->fin_sent && s->sent_off + total == s->write_off)
        flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    }
    ngtcp2_ssize ndatalen = -1;
    ngtcp2_ssize n =
        ngtcp2_conn_writev_stream(c->qc, &ps.path, &pi, dest, destlen,
                                  &ndatalen, flags, sid, vec, nv, ts);
    if (s && ndatalen >= 0) {
      s->sent_off += (uint64_t)ndatalen;
      if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) &&
          s->sent_off == s->write_off)
        s->fin_sent = true;
      /* round robin: move to the back, or off the list when done */
      tx_pop_head(c);
      if (stream_has_tx(s))
        tx_push(c, s);
    }
    if (n < 0) {
      switch (n) {
      case NGTCP2_ERR_WRITE_MORE:
        continue;
      case NGTCP2_ERR_STREAM_DATA_BLOCKED:
        if (s) {
          tx_remove(c, s);
          s->blocked = true;
        }
        continue;
      case NGTCP2_ERR_STREAM_SHUT_WR:
      case NGTCP2_ERR_STREAM_NOT_FOUND:
        if (s) {
          tx_remove(c, s);
          s->fin_sent = true;
          s->sent_off = s->write_off;
        }
        continue;
      default:
        return n;
      }
    }
    return n;
  }
}

static void send_close(kw_conn *c) {
  if (!c->qc || ngtcp2_conn_in_closing_period(c->qc) ||
      ngtcp2_conn_in_draining_period(c->qc))
    return;
  ngtcp2_ccerr ce;
  ngtcp2_ccerr_default(&ce);
  if (c->close_err == KW_ERR_TLS || c->close_err == KW_ERR_KEY_MISMATCH ||
      c->close_err == KW_ERR_CERT || c->close_err == KW_ERR_ALPN) {
    uint8_t alert = ngtcp2_conn_get_tls_alert(c->qc);
    ngtcp2_ccerr_set_tls_alert(&ce, alert ? alert : 42, NULL, 0);
  } else if (c->close_err == KW_ERR_QUIC) {
    ngtcp2_ccerr_set_transport_error(&ce, NGTCP2_INTERNAL_ERROR, NULL, 0);
  } else if (c->close_err == KW_ERR_FULL) {
    ngtcp2_ccerr_set_transport_error(&ce, NGTCP2_CONNECTION_REFUSED, NULL, 0);
  } else {
    ngtcp2_ccerr_set_application_error(
        &ce, c->local_app_code, (const uint8_t *)c->local_reason,
        strlen(c->local_reason));
  }
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi;
  uint8_t buf[1500];
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
      c->qc, &ps.path, &pi, buf, sizeof buf, &ce, kw__now(c->ep));
  if (n > 0) {
    size_t sent = 0;
    (void)kw__magicsock_send(c, buf, (size_t)n, 0, &sent);
  }
}

static void notify_path(kw_conn *c) {
  kw_path_info pi;
  kw_conn_path(c, &pi);
  if (pi.kind == c->last_path.kind &&
      kw__sockaddr_equal(&pi.addr, &c->last_path.addr))
    return;
  c->last_path = pi;
  if (pi.kind == KW_PATH_DIRECT)
    c->ep->stats.conns_direct++;
  char a[KW_SOCKADDR_STRLEN] = "-";
  if (pi.addr.family)
    kw_sockaddr_format(&pi.addr, a, sizeof a);
  kw__log(c->ep, KW_LOG_INFO, "path", "path.selected kind=%s addr=%s",
          kw_path_kind_name(pi.kind), a);
  kw__qpath_changed(c, &pi); /* a new path: the client migrates */
  if (c->ep->cfg.cbs.path_changed)
    c->ep->cfg.cbs.path_changed(c, &pi, c->ep->cfg.cb_user);
}

static void notify_ready(kw_conn *c) {
  kw_endpoint *ep = c->ep;
  c->notify_ready = false;
  uv_timer_stop(&c->connect_timer);
  char idb[KW_ID_SHORTLEN + 1];
  kw_id_to_short(c->remote_id, idb, sizeof idb);
  kw__log(ep, KW_LOG_INFO, "conn",
          "conn.opened remote=%s alpn=%s dir=%s cipher=%s", idb, c->alpn,
          c->is_client ? "out" : "in", kw__tls_sess_cipher(c->tls));
  if (c->remote && !c->remote->id_known) {
    memcpy(c->remote->id, c->remote_id, KW_ID_LEN);
    c->remote->id_known = true;
  }
  if (c->remote)
    kw__disco_conn_up(ep, c); /* the hole-punch schedule counts it */
  if (c->is_client) {
    kw_connect_cb cb = c->connect_cb;
    c->connect_cb = NULL;
    if (cb)
      cb(c, KW_OK, c->connect_arg);
  } else {
    ep->stats.conns_opened++;
    if (ep->cfg.cbs.conn_accepted)
      ep->cfg.cbs.conn_accepted(c, ep->cfg.cb_user);
  }
}

/* When the remote counts as gone (see KW_DEAD_PEER_MS), UINT64_MAX while
 * nothing ack-eliciting is in flight. Keeps inflight_since_ns current. */
static uint64_t dead_deadline(kw_conn *c, uint64_t now) {
  if (c->state != KW_CONN_ESTABLISHED || !c->handshake_done) {
    c->inflight_since_ns = 0;
    return UINT64_MAX;
  }
  ngtcp2_conn_info ci;
  ngtcp2_conn_get_conn_info(c->qc, &ci);
  if (ci.bytes_in_flight == 0) {
    c->inflight_since_ns = 0;
    return UINT64_MAX;
  }
  if (c->inflight_since_ns == 0)
    c->inflight_since_ns = now;
  uint64_t span = (uint64_t)KW_DEAD_PEER_MS * 1000000ull;
  uint64_t ptos = KW_DEAD_PEER_PTOS * (uint64_t)ngtcp2_conn_get_pto(c->qc);
  if (ptos > span)
    span = ptos;
  /* silence counts from the last packet heard; data that only now went
   * in flight (after an idle spell) gets at least half the span */
  uint64_t a = c->last_rx_ns + span, b = c->inflight_since_ns + span / 2;
  return a > b ? a : b;
}

static void arm_timer(kw_conn *c) {
  ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(c->qc);
  uint64_t now = kw__now(c->ep);
  uint64_t dead = dead_deadline(c, now);
  if (dead < exp)
    exp = dead;
  uint64_t ms = 0;
  if (exp == UINT64_MAX) {
    uv_timer_stop(&c->timer);
    return;
  }
  if (exp > now)
    ms = (exp - now + 999999) / 1000000;
  uv_timer_start(&c->timer, timer_cb, ms, 0);
}

static bool send_batch(kw_conn *c, const uint8_t *buf, size_t len,
                       size_t seg) {
  size_t sent = 0;
  kw_err e = kw__magicsock_send(c, buf, len, seg, &sent);
  c->pkts_sent += seg ? (len + seg - 1) / seg : 1;
  c->bytes_sent += len;
  if (e != KW_ERR_AGAIN)
    return true;
  /* keep what did not go out; resume when the socket drains */
  size_t off = sent * seg;
  size_t rest = len - off;
  uint8_t *p = realloc(c->pend, rest);
  if (!p)
    return true; /* dropped: QUIC's loss recovery resends */
  memcpy(p, buf + off, rest);
  c->pend = p;
  c->pend_len = rest;
  c->pend_seg = seg;
  kw__magicsock_watch_writable(c->ep, c);
  return false;
}

void kw__conn_retry_pending(kw_conn *c) {
  if (!c->pend)
    return;
  size_t sent = 0;
  kw_err e = kw__magicsock_send(c, c->pend, c->pend_len, c->pend_seg, &sent);
  if (e == KW_ERR_AGAIN) {
    size_t off = sent * c->pend_seg;
    memmove(c->pend, c->pend + off, c->pend_len - off);
    c->pend_len -= off;
    kw__magicsock_watch_writable(c->ep, c);
    return;
  }
  free(c->pend);
  c->pend = NULL;
  c->pend_len = 0;
  kw__conn_mark_dirty(c);
}

void kw__conn_flush(kw_conn *c) {
  kw_endpoint *ep = c->ep;
  if (c->state == KW_CONN_CLOSING)
    return;
  if (c->close_local) {
    send_close(c);
    c->state = KW_CONN_CLOSING;
    return;
  }
  if (c->notify_ready)
    notify_ready(c);
  if (c->state == KW_CONN_CLOSING || c->close_local) {
    if (c->close_local) {
      send_close(c);
      c->state = KW_CONN_CLOSING;
    }
    return;
  }
  if (c->state == KW_CONN_ESTABLISHED)
    notify_path(c);
  if (c->budget_notify && c->state == KW_CONN_ESTABLISHED && !c->close_local)
    budget_notify(c);
  if (c->state == KW_CONN_CLOSING)
    return;
  if (c->pend)
    return; /* still blocked on the socket */
  kw__qpath_retry(c);
  /* GSO batching is ours: ngtcp2_conn_write_aggregate_pkt only exists
   * from ngtcp2 1.15 on, and Debian ships 1.11. The buffer is sized for
   * the largest packet ngtcp2 may write (PMTU probes), not the current
   * path maximum, or probing never runs. */
  size_t maxpkt = ngtcp2_conn_get_max_tx_udp_payload_size(c->qc);
  size_t need = maxpkt * KW_GSO_MAX_SEGS;
  if (ep->txbuf_cap < need) {
    uint8_t *b = realloc(ep->txbuf, need);
    if (!b)
      return;
    ep->txbuf = b;
    ep->txbuf_cap = need;
  }
  ngtcp2_tstamp ts = kw__now(ep);
  size_t max_pkts = KW_GSO_MAX_SEGS;
  if (c->handshake_done) {
    size_t q = ngtcp2_conn_get_send_quantum(c->qc) / maxpkt;
    if (q < max_pkts)
      max_pkts = q < 2 ? 2 : q;
  }
  uint8_t *buf = ep->txbuf;
  size_t off = 0, seg = 0, npkts = 0;
  bool ok = true;
  while (npkts < max_pkts) {
    ngtcp2_ssize n = write_pkt(c, buf + off, maxpkt, ts);
    if (n < 0) {
      kw__log(ep, KW_LOG_WARN, "quic", "quic.write_error err=%s",
              ngtcp2_strerror((int)n));
      c->close_err = KW_ERR_QUIC;
      c->close_local = true;
      break;
    }
    if (n == 0)
      break;
    npkts++;
    if (off == 0) {
      seg = (size_t)n;
      off = (size_t)n;
    } else if ((size_t)n == seg) {
      off += (size_t)n;
    } else if ((size_t)n < seg) {
      off += (size_t)n; /* a shorter packet ends a GSO batch */
      ok = send_batch(c, buf, off, seg);
      off = 0;
      if (!ok)
        break;
      continue;
    } else {
      /* larger (a PMTU probe): send the batch before it, then restart */
      ok = send_batch(c, buf, off, seg);
      if (!ok)
        break;
      memmove(buf, buf + off, (size_t)n);
      seg = off = (size_t)n;
    }
    /* a GSO send carries at most 64 KiB of UDP payload */
    if (off + seg > KW_GSO_MAX_BYTES) {
      ok = send_batch(c, buf, off, seg);
      off = 0;
      if (!ok)
        break;
    }
  }
  if (ok && off)
    send_batch(c, buf, off, seg);
  if (c->handshake_done)
    ngtcp2_conn_update_pkt_tx_time(c->qc, ts);
  if (c->close_local) {
    send_close(c);
    c->state = KW_CONN_CLOSING;
    return;
  }
  arm_timer(c);
  if (npkts >= max_pkts && !c->pend)
    kw__conn_mark_dirty(c); /* more to write on the next turn */
}

static void timer_cb(uv_timer_t *t) {
  kw_conn *c = t->data;
  if (!c || c->state == KW_CONN_CLOSING)
    return;
  uint64_t now = kw__now(c->ep);
  if (dead_deadline(c, now) <= now) {
    char idb[KW_ID_SHORTLEN + 1];
    kw_id_to_short(c->remote_id, idb, sizeof idb);
    kw__log(c->ep, KW_LOG_INFO, "conn",
            "conn.unreachable remote=%s silent_ms=%llu", idb,
            (unsigned long long)((now - c->last_rx_ns) / 1000000ull));
    conn_fail(c, KW_ERR_UNREACHABLE, 0);
    kw__conn_reap(c->ep);
    return;
  }
  int rv = ngtcp2_conn_handle_expiry(c->qc, now);
  if (rv != 0) {
    kw_err e = KW_ERR_QUIC;
    if (rv == NGTCP2_ERR_IDLE_CLOSE)
      e = c->state == KW_CONN_HANDSHAKE ? KW_ERR_TIMEOUT : KW_ERR_IDLE;
    else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT)
      e = KW_ERR_TIMEOUT;
    conn_fail(c, e, 0);
    kw__conn_reap(c->ep);
    return;
  }
  kw__conn_flush(c);
  kw__conn_reap(c->ep);
}

static void connect_timer_cb(uv_timer_t *t) {
  kw_conn *c = t->data;
  if (!c || c->state != KW_CONN_HANDSHAKE)
    return;
  kw__log(c->ep, KW_LOG_INFO, "conn", "conn.timeout phase=handshake");
  conn_fail(c, KW_ERR_TIMEOUT, 0);
  kw__conn_reap(c->ep);
}

void kw__conn_reap(kw_endpoint *ep) {
  /* a callback below may close the endpoint or other connections: the
   * outermost reap finishes the job, nested calls return at once */
  if (ep->reaping)
    return;
  ep->reaping = true;
  kw_conn **pp = &ep->conns;
  while (*pp) {
    kw_conn *c = *pp;
    if (c->state != KW_CONN_CLOSING) {
      pp = &c->next;
      continue;
    }
    /* take it off the dirty list if it is there */
    if (c->dirty) {
      for (kw_conn **d = &ep->dirty_head; *d; d = &(*d)->next_dirty) {
        if (*d == c) {
          *d = c->next_dirty;
          break;
        }
      }
      c->dirty = false;
    }
    char idb[KW_ID_SHORTLEN + 1];
    kw_id_to_short(c->remote_id, idb, sizeof idb);
    kw__log(ep, KW_LOG_INFO, "conn", "conn.closed remote=%s reason=%s code=%llu",
            idb, kw_errname(c->close_err),
            (unsigned long long)c->close_app_code);
    if (c->is_client && c->connect_cb) {
      kw_connect_cb cb = c->connect_cb;
      c->connect_cb = NULL;
      cb(NULL, c->close_err != KW_OK ? c->close_err : KW_ERR_CLOSED,
         c->connect_arg);
    } else if (c->state == KW_CONN_CLOSING && (c->handshake_done || c->is_client)) {
      ep->stats.conns_closed++;
      if (ep->cfg.cbs.conn_closed &&
          (c->is_client || c->remote_id_known) && !c->notify_ready)
        ep->cfg.cbs.conn_closed(c, c->close_err, c->close_app_code,
                                ep->cfg.cb_user);
    }
    conn_destroy(c); /* unlinks c from ep->conns */
    pp = &ep->conns;
  }
  ep->reaping = false;
}

void kw__conn_shutdown_all(kw_endpoint *ep) {
  for (kw_conn *c = ep->conns; c; c = c->next) {
    if (c->state == KW_CONN_CLOSING)
      continue;
    if (c->close_err == KW_OK && c->state == KW_CONN_HANDSHAKE)
      c->close_err = KW_ERR_CLOSED;
    c->close_local = true;
    send_close(c);
    c->state = KW_CONN_CLOSING;
  }
  kw__conn_reap(ep);
}

/* ---- public: connections --------------------------------------------------- */

void kw_conn_remote_id(const kw_conn *c, uint8_t id[KW_ID_LEN]) {
  memcpy(id, c->remote_id, KW_ID_LEN);
}

const char *kw_conn_alpn(const kw_conn *c) { return c->alpn; }
bool kw_conn_is_client(const kw_conn *c) { return c->is_client; }
void kw_conn_set_user(kw_conn *c, void *user) { c->user = user; }
void *kw_conn_get_user(const kw_conn *c) { return c->user; }

void kw_conn_stats_get(kw_conn *c, kw_conn_stats *out) {
  memset(out, 0, sizeof *out);
  out->bytes_sent = c->bytes_sent;
  out->bytes_recv = c->bytes_recv;
  out->pkts_sent = c->pkts_sent;
  out->pkts_recv = c->pkts_recv;
  if (!c->qc)
    return;
  ngtcp2_conn_info st;
  ngtcp2_conn_get_conn_info(c->qc, &st);
  out->rtt_ms = (double)st.smoothed_rtt / 1e6;
  out->min_rtt_ms = st.min_rtt == UINT64_MAX ? 0 : (double)st.min_rtt / 1e6;
  out->cwnd = st.cwnd;
  out->max_datagram = kw_conn_max_datagram(c);
  out->send_buffered = c->buffered;
}

void kw_conn_path(kw_conn *c, kw_path_info *out) {
  memset(out, 0, sizeof *out);
  kw__remote *r = c->remote;
  const kw_sockaddr *d = r ? kw__remote_direct(r) : NULL;
  if (d) {
    out->kind = KW_PATH_DIRECT;
    out->addr = *d;
  } else if (r && kw__remote_on_relay(r)) {
    out->kind = KW_PATH_RELAY;
  } else if (r && kw__paths_count_ip(&r->pt) + (r->relay >= 0) > 1) {
    out->kind = KW_PATH_MIXED; /* racing: packets go on every path */
  }
  if (c->qc && c->handshake_done) {
    ngtcp2_conn_info st;
    ngtcp2_conn_get_conn_info(c->qc, &st);
    out->rtt_ms = (double)st.smoothed_rtt / 1e6;
  }
}

kw_err kw_conn_open_stream(kw_conn *c, bool bidi, kw_stream **out) {
  if (!c || !out)
    return KW_ERR_INVALID_ARG;
  if (c->state != KW_CONN_ESTABLISHED || c->close_local)
    return KW_ERR_CLOSED;
  int64_t sid;
  int rv = bidi ? ngtcp2_conn_open_bidi_stream(c->qc, &sid, NULL)
                : ngtcp2_conn_open_uni_stream(c->qc, &sid, NULL);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
    return KW_ERR_STREAM_LIMIT;
  if (rv != 0)
    return KW_ERR_QUIC;
  kw_stream *s = stream_new(c, sid);
  if (!s) {
    ngtcp2_conn_shutdown_stream(c->qc, 0, sid, 0);
    return KW_ERR_NOMEM;
  }
  ngtcp2_conn_set_stream_user_data(c->qc, sid, s);
  *out = s;
  return KW_OK;
}

size_t kw_conn_max_datagram(kw_conn *c) {
  if (!c || !c->qc || c->state != KW_CONN_ESTABLISHED)
    return 0;
  const ngtcp2_transport_params *tp =
      ngtcp2_conn_get_remote_transport_params(c->qc);
  if (!tp || tp->max_datagram_frame_size == 0)
    return 0;
  size_t path = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->qc);
  /* short header + AEAD tag + frame header, with room to spare */
  size_t cap = path > 48 ? path - 48 : 0;
  if (tp->max_datagram_frame_size - 8 < cap)
    cap = (size_t)tp->max_datagram_frame_size - 8;
  return cap;
}

kw_err kw_conn_send_datagram(kw_conn *c, const uint8_t *data, size_t len) {
  if (!c || (!data && len))
    return KW_ERR_INVALID_ARG;
  if (c->state != KW_CONN_ESTABLISHED || c->close_local)
    return KW_ERR_CLOSED;
  size_t max = kw_conn_max_datagram(c);
  const ngtcp2_transport_params *tp =
      ngtcp2_conn_get_remote_transport_params(c->qc);
  if (!tp || tp->max_datagram_frame_size == 0)
    return KW_ERR_DGRAM_UNSUPPORTED;
  if (len > max)
    return KW_ERR_DGRAM_TOO_LARGE;
  kw__dgram *d = malloc(sizeof *d + len);
  if (!d)
    return KW_ERR_NOMEM;
  d->next = NULL;
  d->len = len;
  if (len)
    memcpy(d->data, data, len);
  if (c->dg_count >= KW_DGRAM_QUEUE_MAX) {
    /* overflow policy: drop the oldest */
    kw__dgram *o = c->dg_head;
    c->dg_head = o->next;
    if (!c->dg_head)
      c->dg_tail = NULL;
    c->dg_count--;
    free(o);
  }
  if (c->dg_tail)
    c->dg_tail->next = d;
  else
    c->dg_head = d;
  c->dg_tail = d;
  c->dg_count++;
  kw__conn_mark_dirty(c);
  return KW_OK;
}

kw_err kw_conn_close(kw_conn *c, uint64_t app_code, const char *reason) {
  if (!c)
    return KW_ERR_INVALID_ARG;
  if (c->state == KW_CONN_CLOSING || c->close_local)
    return KW_OK;
  c->close_local = true;
  c->close_err = KW_OK;
  c->close_app_code = app_code;
  c->local_app_code = app_code;
  if (reason) {
    size_t l = strlen(reason);
    if (l >= sizeof c->local_reason)
      l = sizeof c->local_reason - 1;
    memcpy(c->local_reason, reason, l);
    c->local_reason[l] = 0;
  }
  kw__conn_mark_dirty(c);
  return KW_OK;
}

/* ---- public: streams ------------------------------------------------------- */

int64_t kw_stream_id(const kw_stream *s) { return s->id; }
kw_conn *kw_stream_conn(const kw_stream *s) { return s->conn; }
void kw_stream_set_user(kw_stream *s, void *user) { s->user = user; }
void *kw_stream_get_user(const kw_stream *s) { return s->user; }

size_t kw_stream_buffered(const kw_stream *s) {
  return (size_t)(s->write_off - s->acked_off);
}

/* How many of `len` bytes the stream may take now: the least room of its
 * own buffer, the connection's and the endpoint's send budget. Marks what
 * cut it short, so that the right wake-up follows. */
static size_t write_room(kw_stream *s, size_t len) {
  kw_conn *c = s->conn;
  kw_endpoint *ep = c->ep;
  size_t limit = ep->cfg.stream_send_buffer;
  size_t buffered = kw_stream_buffered(s);
  size_t room = buffered >= limit ? 0 : limit - buffered;
  size_t b = ep->cfg.conn_send_budget, eb = ep->cfg.endpoint_send_budget;
  size_t croom = c->buffered >= b ? 0 : b - c->buffered;
  size_t eroom = ep->buffered >= eb ? 0 : eb - ep->buffered;
  size_t take = len < room ? len : room;
  if (take > croom)
    take = croom;
  if (take > eroom)
    take = eroom;
  if (take < len) {
    /* a budget (not the stream's own buffer) cut this write short */
    if (take == croom)
      c->budget_blocked = true;
    if (take == eroom) {
      c->budget_blocked = true;
      ep->budget_blocked = true;
    }
  }
  return take;
}

static kw_err write_check(kw_stream *s) {
  kw_conn *c = s->conn;
  if (c->state != KW_CONN_ESTABLISHED || c->close_local || s->closed)
    return KW_ERR_CLOSED;
  if (s->fin_queued || !stream_can_send(s))
    return KW_ERR_STATE;
  return KW_OK;
}

/* `done` more bytes are queued: account them, mark fin, schedule sending */
static void write_queued(kw_stream *s, size_t done, bool fin) {
  kw_conn *c = s->conn;
  c->buffered += done;
  c->ep->buffered += done;
  if (fin)
    s->fin_queued = true;
  if (stream_has_tx(s))
    tx_push(c, s);
  kw__conn_mark_dirty(c);
}

kw_err kw_stream_write_owned(kw_stream *s, uint8_t *data, size_t len,
                             bool fin, kw_release_fn release, void *user) {
  if (!s || !data || !len || !release)
    return KW_ERR_INVALID_ARG;
  kw_err e = write_check(s);
  if (e != KW_OK)
    return e;
  kw_endpoint *ep = s->conn->ep;
  if (len > ep->cfg.stream_send_buffer || len > ep->cfg.conn_send_budget ||
      len > ep->cfg.endpoint_send_budget)
    return KW_ERR_INVALID_ARG;
  if (write_room(s, len) < len) {
    s->want_writable = true;
    return KW_ERR_AGAIN;
  }
  kw__chunk *t = malloc(sizeof *t);
  if (!t)
    return KW_ERR_NOMEM;
  t->next = NULL;
  t->off = s->write_off;
  t->len = t->cap = len;
  t->ext = data;
  t->release = release;
  t->release_user = user;
  if (s->tail)
    s->tail->next = t;
  else
    s->head = t;
  s->tail = t;
  s->write_off += len;
  write_queued(s, len, fin);
  return KW_OK;
}

kw_err kw_stream_write(kw_stream *s, const uint8_t *data, size_t len,
                       bool fin, size_t *written) {
  if (written)
    *written = 0;
  if (!s || (!data && len))
    return KW_ERR_INVALID_ARG;
  kw_err e = write_check(s);
  if (e != KW_OK)
    return e;
  size_t take = write_room(s, len);
  if (take == 0 && len > 0) {
    s->want_writable = true;
    return KW_ERR_AGAIN;
  }
  size_t done = 0;
  while (done < take) {
    kw__chunk *t = s->tail;
    if (!t || t->len == t->cap) {
      size_t cap = take - done;
      if (cap < KW_CHUNK_MIN)
        cap = KW_CHUNK_MIN;
      if (cap > (1u << 20))
        cap = 1u << 20;
      t = malloc(sizeof *t + cap);
      if (!t)
        break;
      t->next = NULL;
      t->off = s->write_off;
      t->len = 0;
      t->cap = cap;
      t->ext = NULL;
      if (s->tail)
        s->tail->next = t;
      else
        s->head = t;
      s->tail = t;
    }
    size_t n = t->cap - t->len;
    if (n > take - done)
      n = take - done;
    memcpy(t->data + t->len, data + done, n);
    t->len += n;
    done += n;
    s->write_off += n;
  }
  if (written)
    *written = done;
  if (done < len)
    s->want_writable = true;
  write_queued(s, done, fin && done == len);
  if (done == 0 && len > 0)
    return KW_ERR_NOMEM;
  return KW_OK;
}

kw_err kw_stream_finish(kw_stream *s) {
  if (!s)
    return KW_ERR_INVALID_ARG;
  if (s->fin_queued)
    return KW_OK;
  return kw_stream_write(s, NULL, 0, true, NULL);
}

void kw_stream_set_manual_consume(kw_stream *s, bool on) {
  s->manual_consume = on;
}

kw_err kw_stream_consume(kw_stream *s, size_t n) {
  if (!s)
    return KW_ERR_INVALID_ARG;
  kw_conn *c = s->conn;
  if (c->state == KW_CONN_CLOSING || s->closed)
    return KW_ERR_CLOSED;
  ngtcp2_conn_extend_max_stream_offset(c->qc, s->id, n);
  ngtcp2_conn_extend_max_offset(c->qc, n);
  s->unconsumed -= n < s->unconsumed ? n : s->unconsumed;
  kw__conn_mark_dirty(c);
  return KW_OK;
}

kw_err kw_stream_reset(kw_stream *s, uint64_t app_code) {
  if (!s)
    return KW_ERR_INVALID_ARG;
  kw_conn *c = s->conn;
  if (c->state == KW_CONN_CLOSING || s->closed)
    return KW_ERR_CLOSED;
  tx_remove(c, s);
  ngtcp2_conn_shutdown_stream(c->qc, 0, s->id, app_code);
  kw__conn_mark_dirty(c);
  return KW_OK;
}
