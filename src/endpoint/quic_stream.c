/* SPDX-License-Identifier: MIT */
/*
 * QUIC streams, send budgets and datagrams (the other half of the QUIC
 * module, quic_conn.h): the send list of each connection, the chunks a
 * stream holds until they are acknowledged, ngtcp2's stream and datagram
 * callbacks, writing stream data into packets (kw__qs_write_pkt, called
 * by the write loop in quic.c) and the kw_stream_* API.
 */
#include "endpoint/quic_conn.h"

#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2.h>

#define KW_CHUNK_MIN 65536

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
  struct kw__quic *q = c->q;
  size_t b = q->cfg->conn_send_budget, e = q->cfg->endpoint_send_budget;
  if (!c->budget_blocked || c->state == KW_CONN_CLOSING ||
      c->buffered + b / 8 > b)
    return;
  if (q->buffered + e / 8 > e) {
    q->budget_blocked = true;
    return;
  }
  c->budget_blocked = false;
  c->budget_notify = true;
  kw__conn_mark_dirty(c);
}

/* `n` bytes of `c` were acknowledged or dropped. */
static void budget_release(kw_conn *c, size_t n) {
  struct kw__quic *q = c->q;
  if (n == 0)
    return;
  c->buffered -= n;
  q->buffered -= n;
  budget_wake(c);
  size_t e = q->cfg->endpoint_send_budget;
  if (q->budget_blocked && q->buffered + e / 8 <= e) {
    q->budget_blocked = false;
    for (kw_conn *o = q->conns; o; o = o->next)
      budget_wake(o);
  }
}

/* Outside ngtcp2 calls: streams that met a budget hear they may write,
 * round robin from the one after the stream served last, until the budget
 * is used up again (so no stream starves under steady pressure). */
void kw__qs_budget_notify(kw_conn *c) {
  c->budget_notify = false;
  struct kw__quic *q = c->q;
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
        kw_stream_buffered(s) < q->cfg->stream_send_buffer) {
      s->want_writable = false;
      c->budget_last = s->id;
      c->budget_last_ok = true;
      app_stream_writable(q, s);
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

void kw__qs_stream_closed_notify(kw_conn *c, kw_stream *s, kw_err err,
                                 uint64_t code) {
  app_stream_closed(c->q, s, err, code);
  stream_free(c, s);
}

/* ---- ngtcp2 stream and datagram callbacks ---------------------------------
 */

static int stream_open_cb(ngtcp2_conn *qc, int64_t sid, void *user_data) {
  kw_conn *c = kw__qc_conn_of(qc, user_data);
  kw__qc_ready_before_streams(c);
  kw_stream *s = stream_new(c, sid);
  if (!s)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  ngtcp2_conn_set_stream_user_data(qc, sid, s);
  app_stream_opened(c->q, s);
  return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *qc, uint32_t flags, int64_t sid,
                               uint64_t offset, const uint8_t *data,
                               size_t datalen, void *user_data,
                               void *stream_user_data) {
  (void)offset;
  kw_conn *c = kw__qc_conn_of(qc, user_data);
  kw_stream *s = stream_user_data;
  if (!s)
    return 0;
  bool fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
  app_stream_data(c->q, s, data, datalen, fin);
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
  kw_conn *c = kw__qc_conn_of(qc, user_data);
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
      s->write_off - s->acked_off < c->q->cfg->stream_send_buffer) {
    s->want_writable = false;
    app_stream_writable(c->q, s);
  }
  return 0;
}

static int stream_close_cb(ngtcp2_conn *qc, uint32_t flags, int64_t sid,
                           uint64_t app_error_code, void *user_data,
                           void *stream_user_data) {
  kw_conn *c = kw__qc_conn_of(qc, user_data);
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
  kw__qs_stream_closed_notify(c, s, err ? KW_ERR_RESET : KW_OK,
                              err ? app_error_code : 0);
  kw__conn_mark_dirty(c);
  return 0;
}

static int extend_max_stream_data_cb(ngtcp2_conn *qc, int64_t sid,
                                     uint64_t max_data, void *user_data,
                                     void *stream_user_data) {
  (void)sid;
  (void)max_data;
  kw_conn *c = kw__qc_conn_of(qc, user_data);
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
  kw_conn *c = kw__qc_conn_of(qc, user_data);
  if (c->state == KW_CONN_ESTABLISHED)
    app_datagram(c->q, c, data, datalen);
  return 0;
}

/* ---- writing --------------------------------------------------------------
 */

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

/* Frees the oldest datagram queued on `c` (there is one). */
static void dgram_pop(kw_conn *c) {
  kw__dgram *d = c->dg_head;
  c->dg_head = d->next;
  if (!c->dg_head)
    c->dg_tail = NULL;
  c->dg_count--;
  free(d);
}

/* The connection of c's remote whose queue holds the remote's oldest
 * datagram, if the remote's connections hold KW_DGRAM_QUEUE_REMOTE_MAX
 * datagrams together; else NULL. */
static kw_conn *dgram_remote_full(kw_conn *c) {
  size_t n = 0;
  kw_conn *oldest = NULL;
  kw_conn *o = c;
  do {
    n += o->dg_count;
    if (o->dg_head && (!oldest || o->dg_head->seq < oldest->dg_head->seq))
      oldest = o;
    o = o->rnext;
  } while (o != c);
  return n >= KW_DGRAM_QUEUE_REMOTE_MAX ? oldest : NULL;
}

ngtcp2_ssize kw__qs_write_pkt(kw_conn *c, uint8_t *dest, size_t destlen,
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
      if (accepted || (n < 0 && n != NGTCP2_ERR_WRITE_MORE))
        /* accepted, or refused for good (too large, unsupported): drop */
        dgram_pop(c);
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
      if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && s->sent_off == s->write_off)
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

/* ---- public: streams and datagrams of a connection ------------------------
 */

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
  d->seq = c->q->dg_seq++;
  d->len = len;
  if (len)
    memcpy(d->data, data, len);
  /* overflow policy: drop the oldest, of the connection or of the remote */
  kw_conn *full = c->dg_count >= KW_DGRAM_QUEUE_MAX ? c : dgram_remote_full(c);
  if (full)
    dgram_pop(full);
  if (c->dg_tail)
    c->dg_tail->next = d;
  else
    c->dg_head = d;
  c->dg_tail = d;
  c->dg_count++;
  kw__conn_mark_dirty(c);
  return KW_OK;
}

/* ---- public: streams -------------------------------------------------------
 */

int64_t kw_stream_id(const kw_stream *s) {
  return s->id;
}
kw_conn *kw_stream_conn(const kw_stream *s) {
  return s->conn;
}
void kw_stream_set_user(kw_stream *s, void *user) {
  s->user = user;
}
void *kw_stream_get_user(const kw_stream *s) {
  return s->user;
}

size_t kw_stream_buffered(const kw_stream *s) {
  return (size_t)(s->write_off - s->acked_off);
}

/* How many of `len` bytes the stream may take now: the least room of its
 * own buffer, the connection's and the endpoint's send budget. Marks what
 * cut it short, so that the right wake-up follows. */
static size_t write_room(kw_stream *s, size_t len) {
  kw_conn *c = s->conn;
  struct kw__quic *q = c->q;
  size_t limit = q->cfg->stream_send_buffer;
  size_t buffered = kw_stream_buffered(s);
  size_t room = buffered >= limit ? 0 : limit - buffered;
  size_t b = q->cfg->conn_send_budget, eb = q->cfg->endpoint_send_budget;
  size_t croom = c->buffered >= b ? 0 : b - c->buffered;
  size_t eroom = q->buffered >= eb ? 0 : eb - q->buffered;
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
      q->budget_blocked = true;
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
  c->q->buffered += done;
  if (fin)
    s->fin_queued = true;
  if (stream_has_tx(s))
    tx_push(c, s);
  kw__conn_mark_dirty(c);
}

kw_err kw_stream_write_owned(kw_stream *s, uint8_t *data, size_t len, bool fin,
                             kw_release_fn release, void *user) {
  if (!s || !data || !len || !release)
    return KW_ERR_INVALID_ARG;
  kw_err e = write_check(s);
  if (e != KW_OK)
    return e;
  const kw_config *cfg = s->conn->q->cfg;
  if (len > cfg->stream_send_buffer || len > cfg->conn_send_budget ||
      len > cfg->endpoint_send_budget)
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

kw_err kw_stream_write(kw_stream *s, const uint8_t *data, size_t len, bool fin,
                       size_t *written) {
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

void kw__qs_fill_callbacks(ngtcp2_callbacks *cb) {
  cb->stream_open = stream_open_cb;
  cb->recv_stream_data = recv_stream_data_cb;
  cb->acked_stream_data_offset = acked_offset_cb;
  cb->stream_close = stream_close_cb;
  cb->extend_max_stream_data = extend_max_stream_data_cb;
  cb->recv_datagram = recv_datagram_cb;
}
