/* SPDX-License-Identifier: MIT */
/*
 * Unidirectional streams give their credit back when they end.
 *
 * The server allows the client 4 unidirectional streams at once. The client
 * opens 64 of them over time, each carrying 16 KiB and fin; whenever the
 * limit refuses a new one it waits and tries again. All 64 must arrive
 * complete and be reported closed (stream_closed with KW_OK) on the
 * receiving side, which is what returns the remote's stream credit: a
 * receiver that never closes a stream the remote opened as unidirectional
 * leaves the client stuck at 4.
 */
#include "quic_test.h"

#define ALPN "kw-test-uni-credit"
#define CREDIT 4
#define NUNI 64
#define LEN (16u << 10)

/* ---- server: checks each stream, counts closes ---- */

static atomic_int srv_complete, srv_closed, srv_bad_close;
static atomic_int srv_open_now, srv_open_max;

static void srv_opened(kw_stream *s, void *u) {
  int64_t id = kw_stream_id(s);
  qt_rx *r = calloc(1, sizeof *r);
  r->tag = (uint64_t)(id >> 2);
  r->len = LEN;
  kw_stream_set_user(s, r);
  int now = atomic_fetch_add(&srv_open_now, 1) + 1;
  if (now > atomic_load(&srv_open_max))
    atomic_store(&srv_open_max, now);
}

static void srv_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {
  qt_rx *r = kw_stream_get_user(s);
  if (!r)
    return;
  qt_rx_take(r, d, n, fin);
  if (fin && qt_rx_complete(r))
    atomic_fetch_add(&srv_complete, 1);
}

static void srv_stream_closed(kw_stream *s, kw_err err, uint64_t code, void *u) {
  qt_rx *r = kw_stream_get_user(s);
  if (err != KW_OK || !r || !qt_rx_complete(r))
    atomic_fetch_add(&srv_bad_close, 1);
  else
    atomic_fetch_add(&srv_closed, 1);
  atomic_fetch_sub(&srv_open_now, 1);
  free(r);
  kw_stream_set_user(s, NULL);
}

/* ---- client ---- */

static kw_conn *cconn;
static int opened, refused; /* loop thread of the client */
static atomic_int a_opened;

static void cli_writable(kw_stream *s, void *u) {
  qt_tx *t = kw_stream_get_user(s);
  if (t)
    qt_tx_pump(s, t);
}

static void cli_stream_closed(kw_stream *s, kw_err err, uint64_t code, void *u) {
  EXPECT(err == KW_OK, "client stream %lld closed: %s", (long long)kw_stream_id(s),
         kw_errname(err));
  free(kw_stream_get_user(s));
}

/* Opens as many streams as the remote allows now. */
static void open_more(kw_endpoint *ep, void *arg) {
  while (opened < NUNI) {
    kw_stream *s;
    kw_err e = kw_conn_open_stream(cconn, false, &s);
    if (e == KW_ERR_STREAM_LIMIT) {
      refused++;
      break;
    }
    EXPECT(e == KW_OK, "open uni stream %d: %s", opened, kw_errname(e));
    if (e)
      break;
    qt_tx *t = calloc(1, sizeof *t);
    t->tag = (uint64_t)(kw_stream_id(s) >> 2);
    t->len = LEN;
    kw_stream_set_user(s, t);
    qt_tx_pump(s, t);
    opened++;
  }
  atomic_store(&a_opened, opened);
}

static void close_conn(kw_endpoint *ep, void *arg) { kw_conn_close(cconn, 0, NULL); }

int main(void) {
  qt_begin(60);
  kw_callbacks scb = {.stream_opened = srv_opened,
                      .stream_data = srv_data,
                      .stream_closed = srv_stream_closed};
  kw_callbacks ccb = {.stream_writable = cli_writable,
                      .stream_closed = cli_stream_closed};
  qt_opts so = {.alpn = ALPN, .max_streams_uni = CREDIT};
  kw_endpoint *server = qt_endpoint_ex(&so, &scb, NULL);
  kw_endpoint *client = qt_endpoint(NULL, &ccb, NULL);

  kw_endpoint_addr target = qt_addr(server, 4);
  kw_err ce = qt_dial(client, &target, ALPN, &cconn, 10000);
  CHECK(ce == KW_OK, "connect: %s", kw_errname(ce));
  if (ce != KW_OK)
    return qt_report();

  /* keep opening as credit comes back, for at most 15 s */
  double t0 = qt_now_ms();
  while (atomic_load(&a_opened) < NUNI && qt_now_ms() - t0 < 15000) {
    qt_call(client, open_more, NULL);
    if (atomic_load(&a_opened) < NUNI)
      qt_sleep_ms(5);
  }
  QT_WAIT(atomic_load(&srv_closed) + atomic_load(&srv_bad_close) >= NUNI, 10000);
  printf("uni streams: %d opened (limit refused %d times), %d complete, %d closed "
         "on the server in %.0f ms; at most %d open at once\n",
         atomic_load(&a_opened), refused, atomic_load(&srv_complete),
         atomic_load(&srv_closed), qt_now_ms() - t0, atomic_load(&srv_open_max));
  CHECK(atomic_load(&a_opened) == NUNI, "the client opened %d of %d streams "
        "with a credit of %d", atomic_load(&a_opened), NUNI, CREDIT);
  CHECK(refused > 0, "the limit of %d streams was reached at least once", CREDIT);
  CHECK(atomic_load(&srv_complete) == NUNI, "%d of %d streams arrived complete",
        atomic_load(&srv_complete), NUNI);
  CHECK(atomic_load(&srv_closed) == NUNI, "%d of %d streams closed on the server",
        atomic_load(&srv_closed), NUNI);
  CHECK(atomic_load(&srv_bad_close) == 0, "%d streams closed with an error or "
        "incomplete", atomic_load(&srv_bad_close));
  CHECK(atomic_load(&srv_open_max) <= CREDIT, "at most %d streams open at once "
        "on the server (saw %d)", CREDIT, atomic_load(&srv_open_max));

  qt_call(client, close_conn, NULL);
  kw_endpoint_close(client);
  kw_endpoint_close(server);
  kw_endpoint_free(client);
  kw_endpoint_free(server);
  return qt_report();
}
