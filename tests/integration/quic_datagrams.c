/* SPDX-License-Identifier: MIT */
/*
 * QUIC DATAGRAM frames between two endpoints on loopback:
 *  - both sides see kw_conn_max_datagram() > 1000 once connected;
 *  - 500 datagrams each way, every one with its own length and bytes, all
 *    delivered intact and exactly once (sent with at most WINDOW in flight:
 *    the client sends the next one when an answer comes back);
 *  - a datagram of exactly the maximum size is delivered both ways;
 *  - one byte more, or far more, is refused with KW_ERR_DGRAM_TOO_LARGE;
 *  - the per-remote bound (include/keyway.h): BURST_CONNS connections to
 *    the same server queue BURST_PER_CONN datagrams each in one loop turn,
 *    more than KW_DGRAM_QUEUE_REMOTE_MAX together though each connection
 *    stays within its own bound; the oldest go: none of the first
 *    connection's arrives, and at most REMOTE_MAX do.
 * (A remote without datagram support cannot be built with the public API:
 * every keyway endpoint enables them, so KW_ERR_DGRAM_UNSUPPORTED is not
 * exercised here.)
 */
#include "quic_test.h"

#define COUNT 500
#define WINDOW 32
#define ALPN "kw-test-dgram"
/* KW_DGRAM_QUEUE_REMOTE_MAX (src/endpoint/quic_conn.h) */
#define REMOTE_MAX 1024
#define BURST_CONNS 5
#define BURST_PER_CONN 256 /* KW_DGRAM_QUEUE_MAX: each connection's bound */
#define BURST (BURST_CONNS * BURST_PER_CONN)

typedef struct side {
  kw_conn *conn;          /* touched on this side's loop thread only */
  bool seen[COUNT];
  atomic_int received;    /* distinct numbered datagrams received */
  atomic_int max_seen;    /* length of the maximum-size datagram received */
  atomic_size_t max_dgram;
} side;

static side srv, cli;
static int next_to_send; /* client loop thread only */

static size_t dgram_len(int i) { return 8 + (size_t)(i * 37) % 993; }

/* Numbered datagram: 'C' or 'S', the index (2 bytes), then payload bytes. */
static void send_numbered(kw_conn *c, char dir, int i) {
  uint8_t buf[1024];
  size_t n = dgram_len(i);
  buf[0] = (uint8_t)dir;
  buf[1] = (uint8_t)(i >> 8);
  buf[2] = (uint8_t)i;
  qt_fill(buf + 3, n - 3, (uint64_t)dir * COUNT + (uint64_t)i, 0);
  kw_err e = kw_conn_send_datagram(c, buf, n);
  EXPECT(e == KW_OK, "send %c%d: %s", dir, i, kw_strerror(e));
}

/* A datagram of exactly `n` bytes: 'M', then filler. */
static kw_err send_max(kw_conn *c, size_t n) {
  uint8_t *buf = malloc(n);
  buf[0] = 'M';
  qt_fill(buf + 1, n - 1, 777, 0);
  kw_err e = kw_conn_send_datagram(c, buf, n);
  free(buf);
  return e;
}

/* Checks one received datagram; returns its index, or -1. */
static int take(side *me, char want_dir, const uint8_t *d, size_t n) {
  if (n > 0 && d[0] == 'M') {
    EXPECT(qt_verify(d + 1, n - 1, 777, 0) == n - 1, "max datagram bytes");
    atomic_store(&me->max_seen, (int)n);
    return -1;
  }
  if (n < 3 || d[0] != (uint8_t)want_dir) {
    EXPECT(0, "unexpected datagram of %zu bytes", n);
    return -1;
  }
  int i = d[1] << 8 | d[2];
  if (i >= COUNT || n != dgram_len(i) ||
      qt_verify(d + 3, n - 3, (uint64_t)want_dir * COUNT + (uint64_t)i, 0) !=
          n - 3) {
    EXPECT(0, "datagram %c%d corrupted (%zu bytes)", want_dir, i, n);
    return -1;
  }
  EXPECT(!me->seen[i], "datagram %c%d delivered twice", want_dir, i);
  if (!me->seen[i]) {
    me->seen[i] = true;
    atomic_fetch_add(&me->received, 1);
  }
  return i;
}

/* ---- the burst of the per-remote bound ---- */

/* 'B', the burst's sequence number (2 bytes), filler; 'E': a connection's
 * end-of-burst marker, queued after its burst (one loop turn later). */
static bool burst_seen[BURST]; /* server loop thread only */
static atomic_int burst_received, burst_first = BURST, burst_ends;

static void srv_burst(const uint8_t *d, size_t n) {
  if (d[0] == 'E') {
    atomic_fetch_add(&burst_ends, 1);
    return;
  }
  int g = n == 8 ? d[1] << 8 | d[2] : BURST;
  if (g >= BURST || qt_verify(d + 3, n - 3, 900000 + (uint64_t)g, 0) != n - 3) {
    EXPECT(0, "burst datagram of %zu bytes corrupted", n);
    return;
  }
  EXPECT(!burst_seen[g], "burst datagram %d delivered twice", g);
  if (burst_seen[g])
    return;
  burst_seen[g] = true;
  atomic_fetch_add(&burst_received, 1);
  if (g < atomic_load(&burst_first))
    atomic_store(&burst_first, g);
}

static kw_conn *burst_conn[BURST_CONNS]; /* client; [0] is cli.conn */
static kw_err burst_err[BURST_CONNS * 2];

static void burst_send(kw_endpoint *ep, void *arg) {
  for (int k = 0; k < BURST_CONNS; k++)
    for (int i = 0; i < BURST_PER_CONN; i++) {
      int g = k * BURST_PER_CONN + i;
      uint8_t buf[8] = {'B', (uint8_t)(g >> 8), (uint8_t)g};
      qt_fill(buf + 3, sizeof buf - 3, 900000 + (uint64_t)g, 0);
      kw_err e = kw_conn_send_datagram(burst_conn[k], buf, sizeof buf);
      if (e != KW_OK)
        burst_err[k] = e;
    }
}

static void burst_end(kw_endpoint *ep, void *arg) {
  for (int k = 0; k < BURST_CONNS; k++)
    burst_err[BURST_CONNS + k] =
        kw_conn_send_datagram(burst_conn[k], (const uint8_t *)"E", 1);
}

/* ---- server: answers each numbered datagram with its own ---- */

static void srv_accepted(kw_conn *c, void *u) {
  srv.conn = c;
  atomic_store(&srv.max_dgram, kw_conn_max_datagram(c));
}

static void srv_datagram(kw_conn *c, const uint8_t *d, size_t n, void *u) {
  if (n > 0 && (d[0] == 'B' || d[0] == 'E')) {
    srv_burst(d, n);
    return;
  }
  int i = take(&srv, 'C', d, n);
  if (i >= 0)
    send_numbered(c, 'S', i);
}

static void srv_closed(kw_conn *c, kw_err e, uint64_t code, void *u) {
  srv.conn = NULL;
}

/* ---- client: keeps WINDOW numbered datagrams in flight ---- */

static atomic_int connect_err = -1;

static void cli_datagram(kw_conn *c, const uint8_t *d, size_t n, void *u) {
  if (take(&cli, 'S', d, n) >= 0 && next_to_send < COUNT)
    send_numbered(c, 'C', next_to_send++);
}

static void cli_closed(kw_conn *c, kw_err e, uint64_t code, void *u) {
  cli.conn = NULL;
}

static void connected(kw_conn *c, kw_err e, void *arg) {
  atomic_store(&connect_err, (int)e);
  if (e)
    return;
  cli.conn = c;
  atomic_store(&cli.max_dgram, kw_conn_max_datagram(c));
}

static kw_endpoint_addr target;
static void dial(kw_endpoint *ep, void *arg) {
  kw_err e = kw_endpoint_connect(ep, &target, ALPN, connected, NULL);
  if (e)
    atomic_store(&connect_err, (int)e);
}

/* Loop-thread checks of the size limit on one side's connection. */
typedef struct limit_result {
  size_t max;
  kw_err at_max_plus_one, at_64k, at_max;
  uint64_t stats_max;
} limit_result;

static void probe_limits(kw_conn *c, limit_result *r) {
  r->max = kw_conn_max_datagram(c);
  uint8_t *big = calloc(1, 65536);
  r->at_max_plus_one = kw_conn_send_datagram(c, big, r->max + 1);
  r->at_64k = kw_conn_send_datagram(c, big, 65536);
  free(big);
  r->at_max = send_max(c, r->max);
  kw_conn_stats st;
  kw_conn_stats_get(c, &st);
  r->stats_max = st.max_datagram;
}

static limit_result cli_limits, srv_limits;
static void cli_probe(kw_endpoint *ep, void *arg) { probe_limits(cli.conn, &cli_limits); }
static void srv_probe(kw_endpoint *ep, void *arg) { probe_limits(srv.conn, &srv_limits); }

static void start_numbered(kw_endpoint *ep, void *arg) {
  for (next_to_send = 0; next_to_send < WINDOW; next_to_send++)
    send_numbered(cli.conn, 'C', next_to_send);
}

static void close_conn(kw_endpoint *ep, void *arg) {
  if (cli.conn)
    kw_conn_close(cli.conn, 0, "done");
}

int main(void) {
  qt_begin(120);
  kw_callbacks scb = {.conn_accepted = srv_accepted,
                      .conn_closed = srv_closed,
                      .datagram = srv_datagram};
  kw_callbacks ccb = {.conn_closed = cli_closed, .datagram = cli_datagram};
  kw_endpoint *server = qt_endpoint(ALPN, &scb, NULL);
  kw_endpoint *client = qt_endpoint(NULL, &ccb, NULL);

  target = qt_addr(server, 4);
  CHECK(kw_endpoint_post(client, dial, NULL) == KW_OK, "post");
  QT_WAIT(atomic_load(&connect_err) != -1 && atomic_load(&srv.max_dgram), 10000);
  CHECK(atomic_load(&connect_err) == KW_OK, "connect: %d", atomic_load(&connect_err));
  if (atomic_load(&connect_err) != KW_OK)
    return qt_report();
  CHECK(atomic_load(&cli.max_dgram) > 1000, "client max %zu", atomic_load(&cli.max_dgram));
  CHECK(atomic_load(&srv.max_dgram) > 1000, "server max %zu", atomic_load(&srv.max_dgram));
  printf("max datagram: client %zu, server %zu bytes\n", atomic_load(&cli.max_dgram),
         atomic_load(&srv.max_dgram));

  /* 500 each way */
  double t0 = qt_now_ms();
  qt_call(client, start_numbered, NULL);
  QT_WAIT(atomic_load(&srv.received) == COUNT && atomic_load(&cli.received) == COUNT,
          30000);
  CHECK(atomic_load(&srv.received) == COUNT, "client->server delivered %d of %d",
        atomic_load(&srv.received), COUNT);
  CHECK(atomic_load(&cli.received) == COUNT, "server->client delivered %d of %d",
        atomic_load(&cli.received), COUNT);
  printf("datagrams: %d + %d delivered in %.0f ms\n", atomic_load(&srv.received),
         atomic_load(&cli.received), qt_now_ms() - t0);

  /* the size limit, from both sides */
  qt_call(client, cli_probe, NULL);
  qt_call(server, srv_probe, NULL);
  limit_result *lr[2] = {&cli_limits, &srv_limits};
  side *peer[2] = {&srv, &cli};
  for (int k = 0; k < 2; k++) {
    const char *who = k == 0 ? "client" : "server";
    CHECK(lr[k]->at_max_plus_one == KW_ERR_DGRAM_TOO_LARGE, "%s max+1: %s", who,
          kw_errname(lr[k]->at_max_plus_one));
    CHECK(lr[k]->at_64k == KW_ERR_DGRAM_TOO_LARGE, "%s 64 KiB: %s", who,
          kw_errname(lr[k]->at_64k));
    CHECK(lr[k]->at_max == KW_OK, "%s exactly max: %s", who, kw_errname(lr[k]->at_max));
    CHECK(lr[k]->stats_max == lr[k]->max, "%s stats max_datagram %llu vs %zu", who,
          (unsigned long long)lr[k]->stats_max, lr[k]->max);
    QT_WAIT(atomic_load(&peer[k]->max_seen) != 0, 5000);
    CHECK((size_t)atomic_load(&peer[k]->max_seen) == lr[k]->max,
          "%s's %zu-byte datagram arrived as %d bytes", who, lr[k]->max,
          atomic_load(&peer[k]->max_seen));
  }

  /* the per-remote bound: BURST_CONNS connections of one remote */
  burst_conn[0] = cli.conn;
  for (int k = 1; k < BURST_CONNS; k++) {
    kw_err e = qt_dial(client, &target, ALPN, &burst_conn[k], 10000);
    CHECK(e == KW_OK, "burst connection %d: %s", k, kw_errname(e));
    if (e != KW_OK)
      return qt_report();
  }
  qt_call(client, burst_send, NULL);
  qt_call(client, burst_end, NULL); /* a later loop turn: after the flush */
  for (int k = 0; k < BURST_CONNS * 2; k++)
    CHECK(burst_err[k] == KW_OK, "burst send on connection %d: %s",
          k % BURST_CONNS, kw_errname(burst_err[k]));
  QT_WAIT(atomic_load(&burst_ends) == BURST_CONNS, 10000);
  CHECK(atomic_load(&burst_ends) == BURST_CONNS, "%d of %d end markers arrived",
        atomic_load(&burst_ends), BURST_CONNS);
  int got = atomic_load(&burst_received), first = atomic_load(&burst_first);
  printf("burst: %d of %d datagrams queued on %d connections of one remote "
         "arrived, the oldest #%d\n",
         got, BURST, BURST_CONNS, first);
  CHECK(got <= REMOTE_MAX, "%d datagrams of one remote arrived, bound %d", got,
        REMOTE_MAX);
  CHECK(first >= BURST - REMOTE_MAX,
        "datagram #%d arrived: the oldest %d should have been dropped", first,
        BURST - REMOTE_MAX);
  /* every datagram the bound kept arrives; an end marker queued while the
   * burst still waited for the congestion window pushes out one more */
  CHECK(got >= REMOTE_MAX - BURST_CONNS, "only %d of the newest %d arrived",
        got, REMOTE_MAX);

  qt_call(client, close_conn, NULL);
  CHECK(kw_endpoint_close(client) == KW_OK, "close client");
  CHECK(kw_endpoint_close(server) == KW_OK, "close server");
  kw_endpoint_free(client);
  kw_endpoint_free(server);
  return qt_report();
}
