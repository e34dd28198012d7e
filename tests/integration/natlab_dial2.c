/* SPDX-License-Identifier: MIT */
/*
 * natlab_dial2: one endpoint that dials two remotes in turn, for NAT-lab
 * tests of what an endpoint learns from one remote and uses with another.
 *   natlab_dial2 RELAY_URL RELAY_CA TICKET_FIRST TICKET_SECOND
 * Dials the first (ALPN keyway/ping/1) and waits up to 10 s for a direct
 * path; then dials the second and waits up to 10 s for a direct path.
 * Prints "first KIND ADDR" and "second KIND ADDR" (the final path of each)
 * and exits 0 when the second ended direct, 1 otherwise, 2 on bad use.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keyway.h"

static kw_endpoint_addr targets[2];
static atomic_int kinds[2];
static kw_sockaddr addrs[2]; /* written on the loop thread before kinds */
static kw_conn *conns[2];     /* loop thread */

static void on_path(kw_conn *c, const kw_path_info *p, void *user) {
  (void)user;
  for (int i = 0; i < 2; i++) {
    if (conns[i] == c) {
      addrs[i] = p->addr;
      atomic_store(&kinds[i], (int)p->kind);
    }
  }
}

static void connected(kw_conn *c, kw_err err, void *arg) {
  int i = (int)(intptr_t)arg;
  if (err != KW_OK) {
    fprintf(stderr, "natlab_dial2: dial %d: %s\n", i, kw_strerror(err));
    return;
  }
  conns[i] = c;
  kw_path_info p;
  kw_conn_path(c, &p);
  on_path(c, &p, NULL);
}

static void dial(kw_endpoint *ep, void *arg) {
  int i = (int)(intptr_t)arg;
  kw_err e = kw_endpoint_connect(ep, &targets[i], "keyway/ping/1", connected,
                                 arg);
  if (e != KW_OK)
    fprintf(stderr, "natlab_dial2: connect %d: %s\n", i, kw_strerror(e));
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Waits up to 10 s for remote i's path to be direct. */
static void wait_direct(int i) {
  for (int t = 0; t < 1000 && atomic_load(&kinds[i]) != KW_PATH_DIRECT; t++)
    sleep_ms(10);
}

static void report(const char *name, int i) {
  char a[KW_SOCKADDR_STRLEN] = "-";
  int k = atomic_load(&kinds[i]);
  if (k == KW_PATH_DIRECT)
    kw_sockaddr_format(&addrs[i], a, sizeof a);
  printf("%s %s %s\n", name, kw_path_kind_name((kw_path_kind)k), a);
}

int main(int argc, char **argv) {
  const char *why = NULL;
  if (argc != 5 || kw_ticket_decode(argv[3], &targets[0], &why) != KW_OK ||
      kw_ticket_decode(argv[4], &targets[1], &why) != KW_OK) {
    fprintf(stderr, "usage: natlab_dial2 RELAY_URL RELAY_CA TICKET TICKET%s%s\n",
            why ? ": " : "", why ? why : "");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  kw_config *cfg;
  kw_endpoint *ep;
  kw_callbacks cbs;
  memset(&cbs, 0, sizeof cbs);
  cbs.path_changed = on_path;
  if (kw_config_new(&cfg) != KW_OK || kw_config_add_relay(cfg, argv[1]) ||
      kw_config_set_relay_ca(cfg, argv[2]) ||
      kw_config_set_callbacks(cfg, &cbs, NULL) ||
      kw_endpoint_new(cfg, &ep) != KW_OK) {
    fprintf(stderr, "natlab_dial2: cannot create the endpoint\n");
    return 1;
  }
  kw_config_free(cfg);
  kw_endpoint_start(ep);
  kw_endpoint_post(ep, dial, (void *)(intptr_t)0);
  wait_direct(0);
  kw_endpoint_post(ep, dial, (void *)(intptr_t)1);
  wait_direct(1);
  report("first", 0);
  report("second", 1);
  int rc = atomic_load(&kinds[1]) == KW_PATH_DIRECT ? 0 : 1;
  kw_endpoint_close(ep);
  kw_endpoint_free(ep);
  return rc;
}
