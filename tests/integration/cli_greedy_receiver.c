/* SPDX-License-Identifier: MIT */
/*
 * cli_greedy_receiver: a keyway/send/1 receiver that asks too much on
 * purpose, to test that `keyway send` bounds what one peer costs it
 * (docs/protocol/send.md, "Bounds").
 *
 *   cli_greedy_receiver TICKET STREAMS HOLD_SECONDS [CONNECTIONS]
 *
 * Binds 127.0.0.1 only, dials the ticket CONNECTIONS times (default 1: one
 * key, so one peer), opens STREAMS request streams at once on each, each with a valid request (the ticket's capability), and never
 * reads a byte of the answers (manual consume, no credit returned). After
 * HOLD_SECONDS it prints "opened=N refused=R" (R: streams the sender reset
 * with code 4, "too many at once") and exits 0.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyway.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int opened, refused, nstreams;
static bool conn_failed;
static uint8_t tok[KW_TICKET_TOKEN_MAX];
static size_t toklen;

static void on_closed(kw_stream *s, kw_err err, uint64_t code, void *u) {
  (void)s;
  (void)u;
  pthread_mutex_lock(&mu);
  if (err == KW_ERR_RESET && code == 4)
    refused++;
  pthread_mutex_unlock(&mu);
}

static void on_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  (void)s, (void)d, (void)n, (void)fin, (void)u; /* never consumed */
}

static void connected(kw_conn *conn, kw_err err, void *arg) {
  (void)arg;
  if (err != KW_OK) {
    fprintf(stderr, "cli_greedy_receiver: connect: %s\n", kw_strerror(err));
    pthread_mutex_lock(&mu);
    conn_failed = true;
    pthread_mutex_unlock(&mu);
    return;
  }
  uint8_t req[6 + KW_TICKET_TOKEN_MAX] = {'K', 'W', 'S', '1', 2,
                                          (uint8_t)toklen};
  memcpy(req + 6, tok, toklen);
  for (int i = 0; i < nstreams; i++) {
    kw_stream *s;
    if (kw_conn_open_stream(conn, true, &s) != KW_OK)
      break;
    kw_stream_set_manual_consume(s, true);
    kw_stream_write(s, req, 6 + toklen, false, NULL);
    pthread_mutex_lock(&mu);
    opened++;
    pthread_mutex_unlock(&mu);
  }
}

static kw_endpoint_addr target;

static void dial(kw_endpoint *ep, void *arg) {
  (void)arg;
  if (kw_endpoint_connect(ep, &target, "keyway/send/1", connected, NULL) !=
      KW_OK) {
    pthread_mutex_lock(&mu);
    conn_failed = true;
    pthread_mutex_unlock(&mu);
  }
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: cli_greedy_receiver TICKET STREAMS HOLD_SECONDS "
                    "[CONNECTIONS]\n");
    return 2;
  }
  const char *why = NULL;
  if (kw_ticket_decode_token(argv[1], &target, tok, &toklen, &why) != KW_OK) {
    fprintf(stderr, "cli_greedy_receiver: bad ticket: %s\n", why);
    return 2;
  }
  nstreams = atoi(argv[2]);
  int hold = atoi(argv[3]);
  kw_config *cfg;
  kw_endpoint *ep;
  kw_sockaddr lo;
  kw_callbacks cbs = {0};
  cbs.stream_closed = on_closed;
  cbs.stream_data = on_data;
  if (kw_config_new(&cfg) != KW_OK || kw_sockaddr_parse("127.0.0.1:0", &lo) ||
      kw_config_add_bind(cfg, &lo) || kw_config_set_callbacks(cfg, &cbs, NULL) ||
      kw_endpoint_new(cfg, &ep) != KW_OK || kw_endpoint_start(ep) != KW_OK) {
    fprintf(stderr, "cli_greedy_receiver: cannot make an endpoint\n");
    return 1;
  }
  kw_config_free(cfg);
  int conns = argc == 5 ? atoi(argv[4]) : 1;
  for (int i = 0; i < conns; i++)
    kw_endpoint_post(ep, dial, NULL);
  for (int i = 0; i < hold * 10; i++) {
    usleep(100000);
    pthread_mutex_lock(&mu);
    bool f = conn_failed;
    pthread_mutex_unlock(&mu);
    if (f)
      break;
  }
  pthread_mutex_lock(&mu);
  printf("opened=%d refused=%d\n", opened, refused);
  bool f = conn_failed;
  pthread_mutex_unlock(&mu);
  fflush(stdout);
  kw_endpoint_close(ep);
  kw_endpoint_free(ep);
  return f ? 1 : 0;
}
