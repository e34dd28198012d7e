/* SPDX-License-Identifier: MIT */
/*
 * A stream that closes before the application consumed its bytes gives the
 * connection's flow-control credit back.
 *
 * Under manual consume (kw_stream_set_manual_consume) credit returns only
 * through kw_stream_consume, which is refused once the stream has closed:
 * the library itself must return what was never consumed when it frees the
 * stream. Without that, every such stream shrinks the connection's window
 * for good, and ngtcp2 sends MAX_DATA only once the new credit exceeds a
 * quarter of the window, so a window three quarters lost never moves again.
 *
 * The order is forced, so the outcome depends on no timing: the client
 * opens NFULL streams with manual consume, sends one byte and fin on each
 * and never consumes; the server answers each with 1 MiB and fin. NFULL
 * MiB is more than three quarters of the 16 MiB connection window the
 * client grants (quic.c, fill_settings). Only once all NFULL streams have
 * closed on the client does it open one more stream, with automatic
 * credit, which the server answers with LAST bytes, more than the window
 * has left: that stream must complete.
 */
#include "quic_test.h"

#define ALPN "kw-test-closed-credit"
#define NFULL 14
#define LEN (1u << 20)
#define LAST (8u << 20)

/* ---- server: answers each stream with LEN bytes (the last with LAST) ---- */

static atomic_int srv_opened_n;

static void srv_opened(kw_stream *s, void *u) {
  qt_tx *t = calloc(1, sizeof *t);
  int n = atomic_fetch_add(&srv_opened_n, 1);
  t->tag = (uint64_t)kw_stream_id(s);
  t->len = n < NFULL ? LEN : LAST;
  kw_stream_set_user(s, t);
  qt_tx_pump(s, t);
}

static void srv_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                     void *u) {}

static void srv_writable(kw_stream *s, void *u) {
  qt_tx *t = kw_stream_get_user(s);
  if (t)
    qt_tx_pump(s, t);
}

static void srv_closed(kw_stream *s, kw_err e, uint64_t c, void *u) {
  free(kw_stream_get_user(s));
  kw_stream_set_user(s, NULL);
}

static const kw_callbacks srv_cbs = {.stream_opened = srv_opened,
                                     .stream_data = srv_data,
                                     .stream_writable = srv_writable,
                                     .stream_closed = srv_closed};

/* ---- client ---- */

static kw_conn *cconn;
static atomic_int full_done, last_done, cli_bad;
static atomic_size_t last_got;
static qt_rx rx[NFULL + 1];

static void cli_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                     void *u) {
  qt_rx *r = kw_stream_get_user(s);
  if (!r)
    return;
  qt_rx_take(r, d, n, fin); /* never consumed under manual consume */
  if (r == &rx[NFULL])
    atomic_store(&last_got, r->got);
}

static void cli_closed(kw_stream *s, kw_err e, uint64_t code, void *u) {
  qt_rx *r = kw_stream_get_user(s);
  if (!r)
    return;
  if (e != KW_OK || !qt_rx_complete(r))
    atomic_fetch_add(&cli_bad, 1);
  else if (r == &rx[NFULL])
    atomic_store(&last_done, 1);
  else
    atomic_fetch_add(&full_done, 1);
}

static const kw_callbacks cli_cbs = {.stream_data = cli_data,
                                     .stream_closed = cli_closed};

static void open_one(int i, bool manual) {
  kw_stream *s;
  kw_err e = kw_conn_open_stream(cconn, true, &s);
  EXPECT(e == KW_OK, "open %d: %s", i, kw_errname(e));
  if (e)
    return;
  kw_stream_set_manual_consume(s, manual);
  rx[i] = (qt_rx){(uint64_t)kw_stream_id(s), i < NFULL ? LEN : LAST, 0,
                  false, false};
  kw_stream_set_user(s, &rx[i]);
  size_t w = 0;
  e = kw_stream_write(s, (const uint8_t *)"?", 1, true, &w);
  EXPECT(e == KW_OK && w == 1, "request %d: %s", i, kw_errname(e));
}

static void open_full(kw_endpoint *ep, void *arg) {
  for (int i = 0; i < NFULL; i++)
    open_one(i, true);
}

static void open_last(kw_endpoint *ep, void *arg) { open_one(NFULL, false); }

int main(void) {
  qt_begin(60);
  kw_endpoint *server = qt_endpoint(ALPN, &srv_cbs, NULL);
  kw_endpoint *client = qt_endpoint(NULL, &cli_cbs, NULL);
  kw_endpoint_addr to = qt_addr(server, 4);
  kw_err e = qt_dial(client, &to, ALPN, &cconn, 10000);
  CHECK(e == KW_OK, "connect: %s", kw_errname(e));
  if (e != KW_OK)
    return qt_report();

  qt_call(client, open_full, NULL);
  QT_WAIT(atomic_load(&full_done) + atomic_load(&cli_bad) == NFULL, 20000);
  CHECK(atomic_load(&full_done) == NFULL, "%d of %d streams complete and "
        "closed without being consumed (%d bad)", atomic_load(&full_done),
        NFULL, atomic_load(&cli_bad));

  qt_call(client, open_last, NULL);
  QT_WAIT(atomic_load(&last_done) || atomic_load(&cli_bad), 20000);
  CHECK(atomic_load(&last_done) == 1, "the stream after them completes: "
        "%zu of %u bytes arrived", atomic_load(&last_got), LAST);
  CHECK(atomic_load(&cli_bad) == 0, "no stream failed");

  qt_close_conn(client, cconn);
  kw_endpoint_close(client);
  kw_endpoint_close(server);
  kw_endpoint_free(client);
  kw_endpoint_free(server);
  return qt_report();
}
