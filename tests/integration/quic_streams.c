/* SPDX-License-Identifier: MIT */
/*
 * Many streams on one connection, on loopback:
 *  - 1,000 bidirectional streams opened at once by the client, each carrying
 *    its own 4-32 KiB payload that the server echoes back; every echoed byte
 *    is checked and every stream must close cleanly;
 *  - the stream limit: the client may open 1024 bidirectional streams at
 *    once (the default), the next open fails with KW_ERR_STREAM_LIMIT, and
 *    a stream can be opened again once earlier ones are closed;
 *  - a unidirectional stream each way (256 KiB), checked byte by byte;
 *  - stream ids carry the initiator and direction bits of RFC 9000;
 *  - a write after fin fails with KW_ERR_STATE; a write on a receive-only
 *    stream is refused.
 */
#include "quic_test.h"

#define ALPN "kw-test-streams"
#define NSTREAMS 1000
#define LIMIT 1024 /* the default bidirectional stream limit */
#define UNI_LEN (256u << 10)
#define TAG_UNI_C 100000u
#define TAG_UNI_S 100001u
#define TAG_LATE 100002u

typedef struct cstream {
  qt_tx t;
  qt_rx r;
} cstream;

static size_t payload_len(int i) { return 4096 + (size_t)(i * 7919) % (28 * 1024 + 1); }

/* ---- server: echoes bidirectional streams, checks the uni stream ---- */

static atomic_int srv_uni_done, srv_uni_closed, srv_bidi_seen, srv_bidi_closed;
static atomic_int bad_ids;
static qt_rx srv_uni_rx = {TAG_UNI_C, UNI_LEN, 0, false, false};
static qt_tx srv_uni_tx = {TAG_UNI_S, UNI_LEN, 0};
static kw_stream *srv_uni_out;

static void srv_accepted(kw_conn *c, void *u) {
  kw_err e = kw_conn_open_stream(c, false, &srv_uni_out);
  CHECK(e == KW_OK, "server opens a uni stream: %s", kw_errname(e));
  if (e)
    return;
  CHECK((kw_stream_id(srv_uni_out) & 3) == 3, "server uni id %lld",
        (long long)kw_stream_id(srv_uni_out));
  CHECK(kw_stream_conn(srv_uni_out) == c, "stream's connection");
  qt_tx_pump(srv_uni_out, &srv_uni_tx);
}

static void srv_opened(kw_stream *s, void *u) {
  int64_t id = kw_stream_id(s);
  if ((id & 3) == 2)
    return; /* the client's uni stream: checked in srv_data */
  if ((id & 3) != 0)
    atomic_fetch_add(&bad_ids, 1);
  atomic_fetch_add(&srv_bidi_seen, 1);
  qt_echo_new(s);
}

static void srv_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {
  if ((kw_stream_id(s) & 3) == 2) {
    qt_rx_take(&srv_uni_rx, d, n, fin);
    if (fin && qt_rx_complete(&srv_uni_rx)) {
      /* the remote's receive-only half: we may not write on it */
      size_t w = 0;
      kw_err e = kw_stream_write(s, (const uint8_t *)"x", 1, false, &w);
      EXPECT(e != KW_OK && w == 0, "write on a receive-only stream: %s, %zu taken",
             kw_errname(e), w);
      atomic_store(&srv_uni_done, 1);
    }
    return;
  }
  qt_echo_data(s, d, n, fin);
}

static void srv_writable(kw_stream *s, void *u) {
  if (s == srv_uni_out)
    qt_tx_pump(s, &srv_uni_tx);
  else if (kw_stream_get_user(s))
    qt_echo_flush(s, kw_stream_get_user(s));
}

static void srv_stream_closed(kw_stream *s, kw_err err, uint64_t code, void *u) {
  EXPECT(err == KW_OK, "server stream %lld closed: %s", (long long)kw_stream_id(s),
         kw_errname(err));
  if ((kw_stream_id(s) & 3) == 2 && err == KW_OK)
    atomic_store(&srv_uni_closed, 1);
  if ((kw_stream_id(s) & 3) == 0 && err == KW_OK)
    atomic_fetch_add(&srv_bidi_closed, 1);
  if (s == srv_uni_out)
    srv_uni_out = NULL;
  else
    qt_echo_free(s);
}

/* ---- client ---- */

static kw_conn *cconn;
static atomic_int bidi_done, uni_in_done, uni_in_fin, limit_opened, late_done;
static atomic_int limit_err = -1, after_fin_err = -1, late_err = -1;
static qt_rx cli_uni_rx = {TAG_UNI_S, UNI_LEN, 0, false, false};
static qt_tx cli_uni_tx = {TAG_UNI_C, UNI_LEN, 0};
static kw_stream *cli_uni_out;

static void cli_opened(kw_stream *s, void *u) {
  CHECK((kw_stream_id(s) & 3) == 3, "the server's stream is uni: id %lld",
        (long long)kw_stream_id(s));
  kw_stream_set_user(s, &cli_uni_rx);
}

static void cli_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {
  if (kw_stream_get_user(s) == &cli_uni_rx) {
    qt_rx_take(&cli_uni_rx, d, n, fin);
    if (qt_rx_complete(&cli_uni_rx))
      atomic_store(&uni_in_fin, 1);
    return;
  }
  cstream *cs = kw_stream_get_user(s);
  if (cs)
    qt_rx_take(&cs->r, d, n, fin);
}

static void cli_writable(kw_stream *s, void *u) {
  if (s == cli_uni_out) {
    qt_tx_pump(s, &cli_uni_tx);
    return;
  }
  cstream *cs = kw_stream_get_user(s);
  if (cs && (void *)cs != &cli_uni_rx)
    qt_tx_pump(s, &cs->t);
}

static void cli_stream_closed(kw_stream *s, kw_err err, uint64_t code, void *u) {
  EXPECT(err == KW_OK, "client stream %lld closed: %s", (long long)kw_stream_id(s),
         kw_errname(err));
  void *user = kw_stream_get_user(s);
  if (s == cli_uni_out) {
    cli_uni_out = NULL;
  } else if (user == &cli_uni_rx) {
    EXPECT(qt_rx_complete(&cli_uni_rx), "server's uni stream incomplete");
    atomic_store(&uni_in_done, 1);
  } else if (user) {
    cstream *cs = user;
    EXPECT(qt_rx_complete(&cs->r), "echo of tag %llu incomplete (%zu/%zu)",
           (unsigned long long)cs->r.tag, cs->r.got, cs->r.len);
    if (qt_rx_complete(&cs->r))
      atomic_fetch_add(cs->t.tag == TAG_LATE ? &late_done : &bidi_done, 1);
    free(cs);
  }
}

static kw_err open_echo(kw_conn *c, uint64_t tag, size_t len) {
  kw_stream *s;
  kw_err e = kw_conn_open_stream(c, true, &s);
  if (e)
    return e;
  if ((kw_stream_id(s) & 3) != 0)
    atomic_fetch_add(&bad_ids, 1);
  cstream *cs = calloc(1, sizeof *cs);
  cs->t = (qt_tx){tag, len, 0};
  cs->r = (qt_rx){tag, len, 0, false, false};
  kw_stream_set_user(s, cs);
  qt_tx_pump(s, &cs->t);
  if (tag == 0) {
    /* everything is buffered with fin: one more byte is refused */
    size_t w = 1;
    atomic_store(&after_fin_err, (int)kw_stream_write(s, (const uint8_t *)"x", 1,
                                                      false, &w));
    EXPECT(w == 0, "write after fin took %zu bytes", w);
  }
  return KW_OK;
}

static void start_streams(kw_endpoint *ep, void *arg) {
  for (int i = 0; i < NSTREAMS; i++) {
    kw_err e = open_echo(cconn, (uint64_t)i, payload_len(i));
    EXPECT(e == KW_OK, "open stream %d: %s", i, kw_errname(e));
  }
  /* fill up to the limit with empty streams, then one too many */
  kw_err e = KW_OK;
  int extra = 0;
  while (extra < 2 * LIMIT && (e = open_echo(cconn, 200000u + (uint64_t)extra, 0)) == KW_OK)
    extra++;
  atomic_store(&limit_opened, NSTREAMS + extra);
  atomic_store(&limit_err, (int)e);

  e = kw_conn_open_stream(cconn, false, &cli_uni_out);
  CHECK(e == KW_OK, "client opens a uni stream: %s", kw_errname(e));
  if (e)
    return;
  CHECK((kw_stream_id(cli_uni_out) & 3) == 2, "client uni id %lld",
        (long long)kw_stream_id(cli_uni_out));
  qt_tx_pump(cli_uni_out, &cli_uni_tx);
}

static void open_late(kw_endpoint *ep, void *arg) {
  atomic_store(&late_err, (int)open_echo(cconn, TAG_LATE, 8192));
}

static void close_conn(kw_endpoint *ep, void *arg) { kw_conn_close(cconn, 0, NULL); }

int main(void) {
  qt_begin(120);
  kw_callbacks scb = {.conn_accepted = srv_accepted,
                      .stream_opened = srv_opened,
                      .stream_data = srv_data,
                      .stream_writable = srv_writable,
                      .stream_closed = srv_stream_closed};
  kw_callbacks ccb = {.stream_opened = cli_opened,
                      .stream_data = cli_data,
                      .stream_writable = cli_writable,
                      .stream_closed = cli_stream_closed};
  kw_endpoint *server = qt_endpoint(ALPN, &scb, NULL);
  kw_endpoint *client = qt_endpoint(NULL, &ccb, NULL);

  kw_endpoint_addr target = qt_addr(server, 6);
  kw_err ce = qt_dial(client, &target, ALPN, &cconn, 10000);
  CHECK(ce == KW_OK, "connect over [::1]: %s", kw_errname(ce));
  if (ce != KW_OK)
    return qt_report();

  double t0 = qt_now_ms();
  qt_call(client, start_streams, NULL);
  CHECK(atomic_load(&limit_opened) == LIMIT, "opened %d bidi streams before the limit",
        atomic_load(&limit_opened));
  CHECK(atomic_load(&limit_err) == KW_ERR_STREAM_LIMIT, "one too many: %s",
        kw_errname((kw_err)atomic_load(&limit_err)));
  CHECK(atomic_load(&after_fin_err) == KW_ERR_STATE, "write after fin: %s",
        kw_errname((kw_err)atomic_load(&after_fin_err)));

  int opened = atomic_load(&limit_opened);
  QT_WAIT(atomic_load(&bidi_done) == opened && atomic_load(&uni_in_fin) &&
              atomic_load(&srv_uni_done),
          20000);
  CHECK(atomic_load(&bidi_done) == opened, "%d of %d echo streams complete",
        atomic_load(&bidi_done), opened);
  CHECK(atomic_load(&srv_bidi_seen) == opened, "server saw %d of %d streams",
        atomic_load(&srv_bidi_seen), opened);
  CHECK(atomic_load(&bad_ids) == 0, "%d bidi stream ids without client-bidi bits",
        atomic_load(&bad_ids));
  CHECK(atomic_load(&uni_in_fin) == 1, "server->client uni stream: all bytes and fin");
  CHECK(atomic_load(&srv_uni_done) == 1, "client->server uni stream: all bytes and fin");
  printf("streams: %d echoed in %.0f ms\n", atomic_load(&bidi_done), qt_now_ms() - t0);

  /* the limit moves on as streams close */
  for (int tries = 0; tries < 200; tries++) {
    qt_call(client, open_late, NULL);
    if (atomic_load(&late_err) != KW_ERR_STREAM_LIMIT)
      break;
    qt_sleep_ms(10);
  }
  CHECK(atomic_load(&late_err) == KW_OK, "stream after the others closed: %s",
        kw_errname((kw_err)atomic_load(&late_err)));
  QT_WAIT(atomic_load(&late_done) == 1, 10000);
  CHECK(atomic_load(&late_done) == 1, "late stream echoed");

  /* a unidirectional stream is closed on the receiving side once its fin
   * arrived (stream_closed with KW_OK, as for a bidirectional one) */
  QT_WAIT(atomic_load(&uni_in_done) && atomic_load(&srv_uni_closed), 3000);
  CHECK(atomic_load(&uni_in_done) == 1,
        "client: stream_closed for the server's uni stream after its fin");
  CHECK(atomic_load(&srv_uni_closed) == 1,
        "server: stream_closed for the client's uni stream after its fin");

  /* the server's half of the late stream ends when the client's ACK of its
   * fin arrives, which may be after the client saw the stream end: close
   * the connection only then, or that stream ends with KW_ERR_CLOSED */
  QT_WAIT(atomic_load(&srv_bidi_closed) == opened + 1, 3000);
  qt_call(client, close_conn, NULL);
  kw_endpoint_close(client);
  kw_endpoint_close(server);
  kw_endpoint_free(client);
  kw_endpoint_free(server);
  return qt_report();
}
