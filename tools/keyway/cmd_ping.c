/*
 * keyway ping TARGET [-c N]: QUIC round trips on datagrams (ALPN
 * keyway/ping/1, answered by every `keyway listen` and `keyway send`),
 * one a second, printing the path kind, address and RTT of each on stdout.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static cli *C;
static kw_endpoint_addr target;
static kw_conn *conn;
static atomic_int state; /* 0 dialing, 1 connected, 2 failed */
static atomic_long got;
static double sum_ms, min_ms = 1e9, max_ms; /* loop thread */
static long sent_count;                     /* loop thread */

/* Loop thread, at exit: the summary line and the stats event. */
static void exit_stats(cli *c) {
  long n = atomic_load(&got);
  if (sent_count && !c->json) { /* data, like the lines above */
    printf("%ld sent, %ld received, rtt min/avg/max %.3f/%.3f/%.3f ms\n",
           sent_count, n, n ? min_ms : 0, n ? sum_ms / (double)n : 0, max_ms);
    fflush(stdout);
  }
  cli_emit_stats(c, (uint64_t)sent_count * 16, (uint64_t)n * 16);
}

static bool finished(cli *c) {
  pthread_mutex_lock(&c->mu);
  bool f = c->finished;
  pthread_mutex_unlock(&c->mu);
  return f;
}

static void on_dgram(kw_conn *c, const uint8_t *d, size_t n, void *u) {
  (void)u;
  if (c != conn || n != 16)
    return;
  long s;
  double sent;
  memcpy(&s, d, sizeof s);
  memcpy(&sent, d + 8, sizeof sent);
  double ms = (cli_now() - sent) * 1000;
  atomic_fetch_add(&got, 1);
  sum_ms += ms;
  min_ms = ms < min_ms ? ms : min_ms;
  max_ms = ms > max_ms ? ms : max_ms;
  kw_path_info pi;
  kw_conn_path(c, &pi);
  char a[KW_SOCKADDR_STRLEN] = "-";
  if (pi.addr.family)
    kw_sockaddr_format(&pi.addr, a, sizeof a);
  printf("seq=%ld path=%s addr=%s rtt=%.3f ms\n", s,
         kw_path_kind_name(pi.kind), a, ms);
  fflush(stdout);
}

static void send_one(kw_endpoint *ep, void *arg) {
  (void)ep;
  long s = (long)(intptr_t)arg;
  if (!conn)
    return;
  uint8_t b[16];
  double now = cli_now();
  memcpy(b, &s, sizeof s);
  memcpy(b + 8, &now, sizeof now);
  if (kw_conn_send_datagram(conn, b, sizeof b) == KW_OK)
    sent_count++;
}

static void on_path(kw_conn *c, const kw_path_info *p, void *u) {
  (void)u;
  cli_emit_path(C, c, p);
}

static void on_closed(kw_conn *c, kw_err err, uint64_t code, void *u) {
  (void)code;
  (void)u;
  if (c == conn) {
    conn = NULL;
    if (state == 1 && err != KW_OK) {
      cli_fail(C, err, "ping: connection lost: %s", kw_strerror(err));
      state = 2;
    }
  }
}

static void connected(kw_conn *c, kw_err err, void *arg) {
  (void)arg;
  if (err != KW_OK) {
    cli_fail_connect(C, target.id, CLI_ALPN_PING, err);
    state = 2;
    return;
  }
  conn = c;
  cli_emit_connected(C, c);
  kw_path_info pi;
  kw_conn_path(c, &pi);
  cli_emit_path(C, c, &pi);
  state = 1;
}

static void dial(kw_endpoint *ep, void *arg) {
  (void)arg;
  kw_err e = kw_endpoint_connect(ep, &target, CLI_ALPN_PING, connected, NULL);
  if (e != KW_OK) {
    cli_fail(C, e, "ping: %s",
             e == KW_ERR_NO_PATH ? "the target has no address and no relay "
                                   "to resolve it (pass --relay)"
                                 : kw_strerror(e));
    state = 2;
  }
}

static void finish(kw_endpoint *ep, void *arg) {
  (void)ep;
  (void)arg;
  if (conn)
    kw_conn_close(conn, 0, "done");
}

int cmd_ping(cli *c) {
  if (c->npos != 1)
    return cli_usage_error(c, "ping takes one TARGET (a ticket or an id)");
  C = c;
  c->exit_hook = exit_stats;
  long count = c->count_set ? c->count : 4;
  int rc = cli_parse_target(c, c->pos[0], &target);
  if (rc)
    return rc;
  kw_callbacks cbs = {0};
  cbs.datagram = on_dgram;
  cbs.path_changed = on_path;
  cbs.conn_closed = on_closed;
  rc = cli_start_endpoint(c, NULL, &cbs, NULL);
  if (rc)
    return rc;
  kw_endpoint_post(c->ep, dial, NULL);
  /* the dial ends within --timeout; SIGINT ends the run at any time */
  while (atomic_load(&state) == 0 && !finished(c))
    usleep(5000);
  for (long i = 1; i <= count && atomic_load(&state) == 1 && !finished(c);
       i++) {
    kw_endpoint_post(c->ep, send_one, (void *)(intptr_t)i);
    /* one a second; after the last, a second for the answer */
    for (int t = 0; t < 100 && atomic_load(&state) == 1 && !finished(c) &&
                    !(i == count && atomic_load(&got) == count);
         t++)
      usleep(10000);
  }
  if (atomic_load(&state) == 1)
    kw_endpoint_post(c->ep, finish, NULL);
  int code = atomic_load(&state) == 1 && atomic_load(&got) > 0 ? 0 : 1;
  if (atomic_load(&state) == 1 && atomic_load(&got) == 0 && !finished(c))
    cli_fail(c, KW_ERR_TIMEOUT, "ping: no answer");
  cli_done(c, code);
  return cli_wait(c);
}
