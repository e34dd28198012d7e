/* SPDX-License-Identifier: MIT */
/*
 * keyway ping TARGET [-c N] [-i SECS] [--until-direct]: QUIC round trips
 * on datagrams (ALPN keyway/ping/1, answered by every `keyway listen` and
 * `keyway send`), one a second, printing the path kind, address and RTT of
 * each reply on stdout ("seq=N path=KIND addr=A rtt=X ms"), with --json
 * also one {"event":"pong",...} per reply on stderr. At the end (the
 * count reached, --until-direct satisfied, or Ctrl-C) a summary: sent,
 * received, loss and min/avg/max RTT, on stdout and as
 * {"event":"summary",...}. Exit 0 when a reply came (with --until-direct:
 * a direct one), 1 otherwise — also after Ctrl-C, as ping(8) does.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common.h"

static cli *C;
static kw_endpoint_addr target;
static kw_conn *conn;
static atomic_int state; /* 0 dialing, 1 connected, 2 failed */
static atomic_long got;
static atomic_bool got_direct;               /* a reply came by a direct path */
static atomic_bool stop;                     /* Ctrl-C */
static double sum_ms, min_ms = 1e9, max_ms;  /* loop thread */
static long sent_count;                      /* loop thread */

static void emit(json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
  if (s) {
    fprintf(stderr, "%s\n", s);
    free(s);
  }
  json_decref(o);
}

/* Loop thread, at exit: the summary and the stats event. */
static void exit_stats(cli *c) {
  long n = atomic_load(&got);
  double loss = sent_count ? 100.0 * (double)(sent_count - n) /
                                 (double)sent_count
                           : 0.0;
  if (loss < 0)
    loss = 0;
  if (sent_count) { /* data, like the lines above */
    if (n)
      printf("%ld sent, %ld received, rtt min/avg/max %.3f/%.3f/%.3f ms, "
             "%.0f%% loss\n",
             sent_count, n, min_ms, sum_ms / (double)n, max_ms, loss);
    else
      printf("%ld sent, 0 received, 100%% loss\n", sent_count);
    fflush(stdout);
  }
  if (c->json) {
    json_t *o = json_pack("{s:s, s:I, s:I}", "event", "summary", "sent",
                          (json_int_t)sent_count, "received", (json_int_t)n);
    json_object_set_new(o, "loss_pct", json_real(loss));
    json_object_set_new(o, "min_ms", n ? json_real(min_ms) : json_null());
    json_object_set_new(o, "avg_ms",
                        n ? json_real(sum_ms / (double)n) : json_null());
    json_object_set_new(o, "max_ms", n ? json_real(max_ms) : json_null());
    json_object_set_new(o, "direct", json_boolean(atomic_load(&got_direct)));
    emit(o);
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
  if (C->json) {
    json_t *o = json_pack("{s:s, s:I, s:s}", "event", "pong", "seq",
                          (json_int_t)s, "path", kw_path_kind_name(pi.kind));
    json_object_set_new(o, "addr",
                        pi.addr.family ? json_string(a) : json_null());
    json_object_set_new(o, "rtt_ms", json_real(ms));
    emit(o);
  }
  if (pi.kind == KW_PATH_DIRECT)
    atomic_store(&got_direct, true);
  atomic_fetch_add(&got, 1); /* last: the main thread reads the rest */
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
  (void)u;
  if (c == conn) {
    conn = NULL;
    if (state == 1 && err != KW_OK) {
      char b[160];
      cli_fail(C, err, "ping: %s", cli_close_reason(err, code, b, sizeof b));
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
             e == KW_ERR_NO_PATH ? cli_no_path_reason(C) : kw_strerror(e));
    state = 2;
  }
}

static void finish(kw_endpoint *ep, void *arg) {
  (void)ep;
  (void)arg;
  if (conn)
    kw_conn_close(conn, CLI_CODE_DONE, "done");
}

/* Loop thread, on Ctrl-C: stop pinging; the summary follows at exit. */
static void on_interrupt(cli *c) {
  atomic_store(&stop, true);
  if (conn)
    kw_conn_close(conn, CLI_CODE_DONE, "done");
  bool ok = atomic_load(&got) > 0 &&
            (!c->until_direct || atomic_load(&got_direct));
  c->interrupt_exit = ok ? 0 : 1;
  if (!ok && atomic_load(&state) != 2)
    cli_fail(c, KW_ERR_CLOSED, "ping: interrupted before %s",
             c->until_direct ? "a direct reply" : "any reply");
}

static bool running(cli *c) {
  return atomic_load(&state) == 1 && !atomic_load(&stop) && !finished(c);
}

int cmd_ping(cli *c) {
  if (c->npos != 1)
    return cli_usage_error(c, "ping takes one TARGET (a ticket or an id)");
  C = c;
  c->exit_hook = exit_stats;
  c->interrupt_hook = on_interrupt;
  /* -c 0: until interrupted; --until-direct gives up after 10 by default */
  long count = c->count_set ? c->count : c->until_direct ? 10 : 4;
  double interval = c->interval_s > 0 ? c->interval_s : 1.0;
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
  cli_post(c, dial, NULL);
  /* the dial ends within --timeout; SIGINT ends the run at any time */
  while (atomic_load(&state) == 0 && !finished(c))
    usleep(5000);
  long ticks = (long)(interval * 100 + 0.5);
  if (ticks < 1)
    ticks = 1;
  for (long i = 1; (count == 0 || i <= count) && running(c); i++) {
    long before = atomic_load(&got);
    cli_post(c, send_one, (void *)(intptr_t)i);
    /* one per interval; after the last, up to a second for the answer
     * (longer when the interval is) */
    long wait = i == count && ticks < 100 ? 100 : ticks;
    for (long t = 0; t < wait && running(c); t++) {
      if (i == count && atomic_load(&got) == count)
        break;
      if (c->until_direct && atomic_load(&got_direct))
        break;
      usleep(10000);
    }
    (void)before;
    if (c->until_direct && atomic_load(&got_direct))
      break;
  }
  if (finished(c)) /* interrupted: the hook decided */
    return cli_wait(c);
  if (atomic_load(&state) == 1)
    cli_post(c, finish, NULL);
  bool ok = atomic_load(&state) == 1 && atomic_load(&got) > 0;
  if (atomic_load(&state) == 1 && atomic_load(&got) == 0)
    cli_fail(c, KW_ERR_TIMEOUT, "ping: no answer");
  else if (ok && c->until_direct && !atomic_load(&got_direct)) {
    cli_fail(c, KW_ERR_NO_PATH,
             "ping: no direct path after %ld pings (the replies came by the "
             "relay)", count);
    ok = false;
  }
  cli_done(c, ok ? 0 : 1);
  return cli_wait(c);
}
