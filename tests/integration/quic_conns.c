/* SPDX-License-Identifier: MIT */
/*
 * Many connections to one listener on loopback:
 *  phase 1: 100 client endpoints (each on its own loop thread) dial at once;
 *  phase 2: one client endpoint opens 100 connections at once.
 * Every connection echoes its own 64 KiB payload on one stream (checked byte
 * by byte), then the client closes it with code 0. The listener must see
 * each client's endpoint id (phase 1: exactly the 100 ids of the clients),
 * and every connection must end with conn_closed on both sides.
 */
#include "quic_test.h"

#define ALPN "kw-test-conns"
#define N 100
#define PAYLOAD (64u << 10)

/* ---- listener: echoes every stream, remembers who connected ---- */

static uint8_t seen_ids[2 * N][KW_ID_LEN]; /* listener loop thread */
static atomic_int accepted, srv_closed, srv_closed_bad;

static void srv_accepted(kw_conn *c, void *u) {
  int i = atomic_load(&accepted);
  if (i < 2 * N)
    kw_conn_remote_id(c, seen_ids[i]);
  atomic_fetch_add(&accepted, 1);
}

static void srv_conn_closed(kw_conn *c, kw_err e, uint64_t code, void *u) {
  /* the clients close with code 0 */
  if (e != KW_ERR_APP_CLOSED || code != 0)
    atomic_fetch_add(&srv_closed_bad, 1);
  atomic_fetch_add(&srv_closed, 1);
}

static void srv_opened(kw_stream *s, void *u) { qt_echo_new(s); }
static void srv_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {
  qt_echo_data(s, d, n, fin);
}
static void srv_writable(kw_stream *s, void *u) { qt_echo_flush(s, kw_stream_get_user(s)); }
static void srv_stream_closed(kw_stream *s, kw_err e, uint64_t code, void *u) {
  /* KW_ERR_CLOSED is fine: the client may close the connection before the
   * ACK of our fin reached us; but the whole echo must have been queued */
  qt_echo *x = kw_stream_get_user(s);
  EXPECT((e == KW_OK || e == KW_ERR_CLOSED) && x->fin_out,
         "listener stream closed: %s, echo %s", kw_errname(e),
         x->fin_out ? "complete" : "incomplete");
  qt_echo_free(s);
}

/* ---- clients: one exchange per connection ---- */

typedef struct exchange {
  int tag;
  qt_tx t;
  qt_rx r;
} exchange;

static exchange ex[2 * N];
static kw_endpoint_addr target;
static atomic_int connected, connect_failed, echoed, cli_closed, cli_closed_bad;

static void on_connected(kw_conn *c, kw_err e, void *arg) {
  exchange *x = arg;
  if (e) {
    fprintf(stderr, "FAIL connection %d: %s\n", x->tag, kw_errname(e));
    atomic_fetch_add(&connect_failed, 1);
    return;
  }
  atomic_fetch_add(&connected, 1);
  kw_stream *s;
  e = kw_conn_open_stream(c, true, &s);
  EXPECT(e == KW_OK, "open stream on connection %d: %s", x->tag, kw_errname(e));
  if (e)
    return;
  kw_stream_set_user(s, x);
  qt_tx_pump(s, &x->t);
}

static void cli_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {
  exchange *x = kw_stream_get_user(s);
  qt_rx_take(&x->r, d, n, fin);
}

static void cli_writable(kw_stream *s, void *u) {
  exchange *x = kw_stream_get_user(s);
  qt_tx_pump(s, &x->t);
}

static void cli_stream_closed(kw_stream *s, kw_err e, uint64_t code, void *u) {
  exchange *x = kw_stream_get_user(s);
  EXPECT(e == KW_OK && qt_rx_complete(&x->r), "exchange %d: %s, %zu of %zu bytes",
         x->tag, kw_errname(e), x->r.got, x->r.len);
  if (e == KW_OK && qt_rx_complete(&x->r))
    atomic_fetch_add(&echoed, 1);
  kw_conn_close(kw_stream_conn(s), 0, "done");
}

static void cli_conn_closed(kw_conn *c, kw_err e, uint64_t code, void *u) {
  if (e != KW_OK) /* we closed it ourselves */
    atomic_fetch_add(&cli_closed_bad, 1);
  atomic_fetch_add(&cli_closed, 1);
}

static void dial(kw_endpoint *ep, void *arg) {
  exchange *x = arg;
  kw_err e = kw_endpoint_connect(ep, &target, ALPN, on_connected, x);
  if (e) {
    fprintf(stderr, "FAIL dial %d: %s\n", x->tag, kw_errname(e));
    atomic_fetch_add(&connect_failed, 1);
  }
}

/* Waits until `want` exchanges in all (`before` of them from earlier phases)
 * have ended; checks them. */
static void finish_phase(const char *name, int before, int want, double t0) {
  QT_WAIT(atomic_load(&cli_closed) + atomic_load(&connect_failed) >= want &&
              atomic_load(&srv_closed) >= want,
          60000);
  CHECK(atomic_load(&connect_failed) == 0, "%s: %d connections failed", name,
        atomic_load(&connect_failed));
  CHECK(atomic_load(&connected) == want, "%s: %d of %d connected", name,
        atomic_load(&connected), want);
  CHECK(atomic_load(&echoed) == want, "%s: %d of %d exchanges complete", name,
        atomic_load(&echoed), want);
  CHECK(atomic_load(&accepted) == want, "%s: listener accepted %d of %d", name,
        atomic_load(&accepted), want);
  CHECK(atomic_load(&cli_closed) == want && atomic_load(&cli_closed_bad) == 0,
        "%s: client conn_closed %d (%d not KW_OK)", name, atomic_load(&cli_closed),
        atomic_load(&cli_closed_bad));
  CHECK(atomic_load(&srv_closed) == want && atomic_load(&srv_closed_bad) == 0,
        "%s: listener conn_closed %d (%d not APP_CLOSED/0)", name,
        atomic_load(&srv_closed), atomic_load(&srv_closed_bad));
  printf("%s: %d connections in %.0f ms\n", name, want - before, qt_now_ms() - t0);
}

static void init_exchange(int i) {
  ex[i].tag = i;
  ex[i].t = (qt_tx){(uint64_t)i, PAYLOAD, 0};
  ex[i].r = (qt_rx){(uint64_t)i, PAYLOAD, 0, false, false};
}

int main(void) {
  qt_begin(120);
  kw_callbacks scb = {.conn_accepted = srv_accepted,
                      .conn_closed = srv_conn_closed,
                      .stream_opened = srv_opened,
                      .stream_data = srv_data,
                      .stream_writable = srv_writable,
                      .stream_closed = srv_stream_closed};
  kw_callbacks ccb = {.conn_closed = cli_conn_closed,
                      .stream_data = cli_data,
                      .stream_writable = cli_writable,
                      .stream_closed = cli_stream_closed};
  kw_endpoint *server = qt_endpoint(ALPN, &scb, NULL);
  target = qt_addr(server, 4);

  /* phase 1: 100 endpoints, one connection each */
  kw_endpoint *clients[N];
  uint8_t client_ids[N][KW_ID_LEN];
  for (int i = 0; i < N; i++) {
    clients[i] = qt_endpoint(NULL, &ccb, NULL);
    kw_endpoint_id(clients[i], client_ids[i]);
    init_exchange(i);
  }
  double t0 = qt_now_ms();
  for (int i = 0; i < N; i++)
    EXPECT(kw_endpoint_post(clients[i], dial, &ex[i]) == KW_OK, "post %d", i);
  finish_phase("100 endpoints", 0, N, t0);

  int matched = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      if (memcmp(client_ids[i], seen_ids[j], KW_ID_LEN) == 0) {
        matched++;
        break;
      }
  CHECK(matched == N, "the listener saw %d of the %d client ids", matched, N);

  for (int i = 1; i < N; i++) {
    kw_endpoint_close(clients[i]);
    kw_endpoint_free(clients[i]);
  }

  /* phase 2: the first client endpoint opens 100 connections at once */
  for (int i = N; i < 2 * N; i++)
    init_exchange(i);
  t0 = qt_now_ms();
  for (int i = N; i < 2 * N; i++)
    EXPECT(kw_endpoint_post(clients[0], dial, &ex[i]) == KW_OK, "post %d", i);
  finish_phase("1 endpoint", N, 2 * N, t0);
  int same = 0;
  for (int i = N; i < 2 * N; i++)
    same += memcmp(seen_ids[i], client_ids[0], KW_ID_LEN) == 0;
  CHECK(same == N, "%d of %d connections carried the dialer's id", same, N);

  kw_endpoint_close(clients[0]);
  kw_endpoint_free(clients[0]);
  kw_endpoint_close(server);
  kw_endpoint_stats st; /* a loop-thread getter: read once the loop is gone */
  kw_endpoint_stats_get(server, &st);
  CHECK(st.conns_opened == 2 * N, "listener conns_opened %llu",
        (unsigned long long)st.conns_opened);
  kw_endpoint_free(server);
  return qt_report();
}
