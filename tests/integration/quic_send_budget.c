/* SPDX-License-Identifier: MIT */
/*
 * Send budgets bound what a remote that stops reading costs the sender.
 *
 * The client opens two connections and 100 bidirectional streams on each,
 * sends one byte on each stream, and returns no flow-control credit
 * (manual consume, nothing consumed; and no fin until it reads, so no
 * stream closes, which would give its credit back: quic_closed_credit.c).
 * The server answers every stream with 1 MiB and fin: 200 MiB it would
 * buffer at once (each stream's own buffer is 4 MiB). Its connection budget is the default
 * 16 MiB, its endpoint budget 24 MiB: kw_stream_write pushes back.
 *
 * Asserted, from the library's own counters (kw_endpoint_stats and
 * kw_conn_stats send_buffered), never from timing: while the client does
 * not read, no connection of the server holds more than 16 MiB and the
 * endpoint not more than 24 MiB (each connection's flow-control window
 * alone would let 16 MiB leave, 32 MiB in all), and its writes met
 * back-pressure; once the client consumes, all 200 streams complete byte
 * for byte (the budgets wake the streams they held up) and the counters
 * return to 0.
 */
#include "quic_test.h"

#define ALPN "kw-test-budget"
#define NSTREAMS 100
#define LEN (1u << 20)
#define NCONNS 2
#define BUDGET (16u << 20)    /* per connection: the default */
#define EP_BUDGET (24u << 20) /* per endpoint, set for the test */

/* ---- server: answers each stream with LEN bytes ---- */

static size_t srv_peak, srv_peak_conn; /* server loop thread */
static atomic_int srv_again, srv_started;
static atomic_size_t a_srv_peak, a_srv_peak_conn;

/* After every write: the connection's counter (loop thread). */
static void srv_measure(kw_stream *s) {
  kw_conn_stats cs;
  kw_conn_stats_get(kw_stream_conn(s), &cs);
  if (cs.send_buffered > srv_peak_conn)
    srv_peak_conn = cs.send_buffered;
}

static void srv_pump(kw_stream *s) {
  qt_tx *t = kw_stream_get_user(s);
  if (!t)
    return;
  size_t before = t->sent;
  qt_tx_pump(s, t);
  if (t->sent < t->len || before == t->sent)
    atomic_fetch_add(&srv_again, 1);
  srv_measure(s);
}

static void srv_opened(kw_stream *s, void *u) {
  qt_tx *t = calloc(1, sizeof *t);
  t->tag = (uint64_t)kw_stream_id(s);
  t->len = LEN;
  kw_stream_set_user(s, t);
  atomic_fetch_add(&srv_started, 1);
  srv_pump(s);
}

static void srv_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {}
static void srv_writable(kw_stream *s, void *u) { srv_pump(s); }
static void srv_closed(kw_stream *s, kw_err e, uint64_t c, void *u) {
  free(kw_stream_get_user(s));
  kw_stream_set_user(s, NULL);
}

static kw_endpoint_stats srv_stats;
static void srv_get_stats(kw_endpoint *ep, void *arg) {
  kw_endpoint_stats_get(ep, &srv_stats);
  if (srv_stats.send_buffered > srv_peak)
    srv_peak = srv_stats.send_buffered;
  atomic_store(&a_srv_peak, srv_peak);
  atomic_store(&a_srv_peak_conn, srv_peak_conn);
}

/* ---- client: opens the streams, reads nothing until told ---- */

typedef struct cstream {
  qt_rx r;
  size_t unconsumed;
  kw_stream *s;
} cstream;

static kw_conn *cconn[NCONNS];
static atomic_int connect_err = -1, nconnected, cli_done, cli_bad;
static atomic_size_t cli_got;
static cstream cs_all[NCONNS * NSTREAMS];
static bool consuming; /* client loop thread */

static void cli_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {
  cstream *c = kw_stream_get_user(s);
  if (!c)
    return;
  qt_rx_take(&c->r, d, n, fin);
  atomic_fetch_add(&cli_got, n);
  if (!consuming)
    c->unconsumed += n;
}

static void cli_closed(kw_stream *s, kw_err e, uint64_t code, void *u) {
  cstream *c = kw_stream_get_user(s);
  if (!c)
    return;
  if (e == KW_OK && qt_rx_complete(&c->r))
    atomic_fetch_add(&cli_done, 1);
  else if (atomic_fetch_add(&cli_bad, 1) == 0)
    fprintf(stderr, "first bad stream: %s, code %llu, %zu bytes\n",
            kw_errname(e), (unsigned long long)code, c->r.got);
  c->s = NULL;
}

static void open_all(kw_endpoint *ep, void *arg) {
  for (int i = 0; i < NCONNS * NSTREAMS; i++) {
    kw_stream *s;
    kw_err e = kw_conn_open_stream(cconn[i / NSTREAMS], true, &s);
    EXPECT(e == KW_OK, "open %d: %s", i, kw_errname(e));
    if (e)
      return;
    kw_stream_set_manual_consume(s, true);
    cs_all[i].r = (qt_rx){(uint64_t)kw_stream_id(s), LEN, 0, false, false};
    cs_all[i].s = s;
    kw_stream_set_user(s, &cs_all[i]);
    size_t w;
    e = kw_stream_write(s, (const uint8_t *)"?", 1, false, &w);
    EXPECT(e == KW_OK && w == 1, "request %d: %s", i, kw_errname(e));
  }
}

static void consume_all(kw_endpoint *ep, void *arg) {
  consuming = true;
  for (int i = 0; i < NCONNS * NSTREAMS; i++) {
    if (!cs_all[i].s)
      continue;
    kw_stream_set_manual_consume(cs_all[i].s, false);
    if (cs_all[i].unconsumed)
      kw_stream_consume(cs_all[i].s, cs_all[i].unconsumed);
    cs_all[i].unconsumed = 0;
    kw_stream_finish(cs_all[i].s);
  }
}

static void connected(kw_conn *c, kw_err e, void *arg) {
  if (e) {
    atomic_store(&connect_err, (int)e);
    return;
  }
  int i = atomic_fetch_add(&nconnected, 1);
  cconn[i] = c;
  if (i + 1 == NCONNS)
    atomic_store(&connect_err, (int)KW_OK);
}

static kw_endpoint_addr target;
static void dial(kw_endpoint *ep, void *arg) {
  for (int i = 0; i < NCONNS; i++) {
    kw_err e = kw_endpoint_connect(ep, &target, ALPN, connected, NULL);
    if (e)
      atomic_store(&connect_err, (int)e);
  }
}
static void close_conn(kw_endpoint *ep, void *arg) {
  for (int i = 0; i < NCONNS; i++)
    kw_conn_close(cconn[i], 0, NULL);
}

int main(void) {
  qt_begin(90);
  kw_callbacks scb = {.stream_opened = srv_opened,
                      .stream_data = srv_data,
                      .stream_writable = srv_writable,
                      .stream_closed = srv_closed};
  kw_callbacks ccb = {.stream_data = cli_data, .stream_closed = cli_closed};
  qt_opts so = {.alpn = ALPN, .send_budget_conn = BUDGET,
                .send_budget_endpoint = EP_BUDGET};
  kw_endpoint *server = qt_endpoint_ex(&so, &scb, NULL);
  kw_endpoint *client = qt_endpoint(NULL, &ccb, NULL);
  target = qt_addr(server, 4);
  CHECK(kw_endpoint_post(client, dial, NULL) == KW_OK, "post");
  QT_WAIT(atomic_load(&connect_err) != -1, 10000);
  CHECK(atomic_load(&connect_err) == KW_OK, "connect: %s",
        kw_errname((kw_err)atomic_load(&connect_err)));
  if (atomic_load(&connect_err) != KW_OK)
    return qt_report();

  qt_call(client, open_all, NULL);
  QT_WAIT(atomic_load(&srv_started) == NCONNS * NSTREAMS, 10000);
  CHECK(atomic_load(&srv_started) == NCONNS * NSTREAMS, "server saw %d of %d "
        "streams", atomic_load(&srv_started), NCONNS * NSTREAMS);
  /* let the flow-control windows fill; sample the counters meanwhile */
  size_t last = (size_t)-1;
  for (int i = 0; i < 40; i++) {
    qt_call(server, srv_get_stats, NULL);
    size_t got = atomic_load(&cli_got);
    if (i > 10 && got == last)
      break; /* the client's windows are full: nothing moves */
    last = got;
    qt_sleep_ms(100);
  }
  qt_call(server, srv_get_stats, NULL);
  size_t held = (size_t)srv_stats.send_buffered;
  size_t peak = atomic_load(&a_srv_peak);
  size_t peak_conn = atomic_load(&a_srv_peak_conn);
  printf("stalled readers: client got %zu bytes; server holds %zu bytes "
         "(peak %zu, endpoint budget %u; one connection's peak %zu, budget "
         "%u), %d short writes\n",
         atomic_load(&cli_got), held, peak, EP_BUDGET, peak_conn, BUDGET,
         atomic_load(&srv_again));
  CHECK(held > 0, "the server holds data for the stalled readers");
  CHECK(peak <= EP_BUDGET, "the endpoint never held more than its budget: "
        "peak %zu", peak);
  CHECK(peak_conn <= BUDGET, "no connection held more than its budget: peak "
        "%zu", peak_conn);
  CHECK(atomic_load(&srv_again) > 0, "server writes met back-pressure");
  CHECK(atomic_load(&cli_got) < (size_t)NCONNS * NSTREAMS * LEN,
        "the client had not got everything before reading");

  qt_call(client, consume_all, NULL);
  QT_WAIT(atomic_load(&cli_done) + atomic_load(&cli_bad) == NCONNS * NSTREAMS,
          30000);
  CHECK(atomic_load(&cli_done) == NCONNS * NSTREAMS, "%d of %d streams complete "
        "once the client reads (%d bad)", atomic_load(&cli_done), NCONNS * NSTREAMS,
        atomic_load(&cli_bad));
  QT_WAIT((qt_call(server, srv_get_stats, NULL), srv_stats.send_buffered == 0),
          5000);
  CHECK(srv_stats.send_buffered == 0, "server buffer back to 0 (%llu)",
        (unsigned long long)srv_stats.send_buffered);
  CHECK(atomic_load(&a_srv_peak) <= EP_BUDGET &&
            atomic_load(&a_srv_peak_conn) <= BUDGET,
        "peaks within the budgets throughout: %zu, %zu",
        atomic_load(&a_srv_peak), atomic_load(&a_srv_peak_conn));

  qt_call(client, close_conn, NULL);
  kw_endpoint_close(client);
  kw_endpoint_close(server);
  kw_endpoint_free(client);
  kw_endpoint_free(server);
  return qt_report();
}
