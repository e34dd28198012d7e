/* SPDX-License-Identifier: MIT */
/*
 * lookup_sources: dials a bare id through the lookup sources, using the
 * public API only (test_lookup_sources.sh). Loopback only.
 *
 *   lookup_sources resolvers TICKET
 *     no relay; three resolvers: the first answers KW_ERR_NOT_FOUND at
 *     once, the second an address under another id at once (must count
 *     as KW_ERR_KEY_MISMATCH), the third the ticket's address 200 ms
 *     later from another thread (kw_endpoint_post). The dial by the
 *     ticket's bare id must connect. Prints "connected".
 *   lookup_sources inline TICKET
 *     no relay; one resolver answering the ticket's address inside its
 *     call: the dial connects (its callback still runs after
 *     kw_endpoint_connect returned). Prints "connected".
 *   lookup_sources notfound ID
 *     one resolver answering KW_ERR_NOT_FOUND: the dial must fail with
 *     it. Prints "failed NOT_FOUND".
 *   lookup_sources relays URL1 URL2 CA
 *     both relays in the map; prints "home=URL" once a home relay is
 *     chosen, then reads "dial ID" from stdin and dials it. Prints
 *     "connected" or "failed ERR".
 *
 * The endpoint logs to stderr (INFO). Exit 0 when the outcome is the one
 * the mode expects.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyway.h"

static kw_endpoint *ep;
static kw_endpoint_addr target;
static uint8_t target_id[KW_ID_LEN];
static atomic_int outcome = -1; /* kw_err once the dial is done */
static atomic_int in_connect;   /* kw_endpoint_connect is running */

static void logfn(void *user, kw_log_level lvl, const char *mod,
                  const char *msg) {
  (void)user;
  (void)lvl;
  fprintf(stderr, "[%s] %s\n", mod, msg);
}

static void connected(kw_conn *c, kw_err err, void *arg) {
  (void)arg;
  if (atomic_load(&in_connect)) {
    fprintf(stderr, "the connect callback ran inside kw_endpoint_connect\n");
    err = KW_ERR_STATE;
  }
  if (c)
    kw_conn_close(c, 0, "done");
  atomic_store(&outcome, (int)err);
}

static void dial(kw_endpoint *e, void *arg) {
  (void)arg;
  kw_endpoint_addr bare;
  memset(&bare, 0, sizeof bare);
  memcpy(bare.id, target_id, KW_ID_LEN);
  atomic_store(&in_connect, 1);
  kw_err err = kw_endpoint_connect(e, &bare, "keyway/pipe/1", connected, NULL);
  atomic_store(&in_connect, 0);
  if (err != KW_OK)
    atomic_store(&outcome, (int)err);
}

/* ---- resolvers ---- */

static void r_notfound(kw_endpoint *e, const uint8_t id[KW_ID_LEN],
                       kw_resolve_req *req, void *user) {
  (void)e;
  (void)id;
  (void)user;
  kw_resolve_answer(req, KW_ERR_NOT_FOUND, NULL);
}

static void r_wrongid(kw_endpoint *e, const uint8_t id[KW_ID_LEN],
                      kw_resolve_req *req, void *user) {
  (void)e;
  (void)user;
  kw_endpoint_addr a = target;
  memcpy(a.id, id, KW_ID_LEN);
  a.id[0] ^= 1; /* another id, the right addresses */
  kw_resolve_answer(req, KW_OK, &a);
}

static void r_inline(kw_endpoint *e, const uint8_t id[KW_ID_LEN],
                     kw_resolve_req *req, void *user) {
  (void)e;
  (void)id;
  (void)user;
  kw_resolve_answer(req, KW_OK, &target);
}

static void answer_now(kw_endpoint *e, void *arg) {
  (void)e;
  kw_resolve_answer(arg, KW_OK, &target);
}

static void *later(void *arg) {
  usleep(200000);
  if (kw_endpoint_post(ep, answer_now, arg) != KW_OK)
    fprintf(stderr, "post failed\n");
  return NULL;
}

static void r_later(kw_endpoint *e, const uint8_t id[KW_ID_LEN],
                    kw_resolve_req *req, void *user) {
  (void)e;
  (void)user;
  if (memcmp(id, target.id, KW_ID_LEN) != 0) {
    kw_resolve_answer(req, KW_ERR_NOT_FOUND, NULL);
    return;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, later, req) == 0)
    pthread_detach(t);
  else
    kw_resolve_answer(req, KW_ERR_NOMEM, NULL);
}

static int wait_outcome(int secs) {
  for (int i = 0; i < secs * 100 && atomic_load(&outcome) < 0; i++)
    usleep(10000);
  return atomic_load(&outcome);
}

static kw_config *base_config(void) {
  kw_config *cfg;
  if (kw_config_new(&cfg) != KW_OK)
    exit(2);
  kw_sockaddr b;
  kw_sockaddr_parse("127.0.0.1:0", &b);
  kw_config_add_bind(cfg, &b);
  kw_config_set_families(cfg, true, false);
  kw_config_set_connect_timeout(cfg, 8000);
  kw_config_set_log(cfg, logfn, NULL, KW_LOG_INFO);
  return cfg;
}

static int run(kw_config *cfg) {
  kw_err e = kw_endpoint_new(cfg, &ep);
  kw_config_free(cfg);
  if (e != KW_OK || kw_endpoint_start(ep) != KW_OK) {
    fprintf(stderr, "endpoint: %s\n", kw_strerror(e));
    return 2;
  }
  return 0;
}

static int report(int want_ok, kw_err want_err) {
  int o = wait_outcome(15);
  if (o == KW_OK)
    printf("connected\n");
  else
    printf("failed %s\n", o < 0 ? "TIMEOUT_HERE" : kw_errname((kw_err)o));
  fflush(stdout);
  kw_endpoint_close(ep);
  kw_endpoint_free(ep);
  if (want_ok)
    return o == KW_OK ? 0 : 1;
  return o == (int)want_err ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "resolvers") == 0) {
    if (kw_ticket_decode(argv[2], &target, NULL) != KW_OK)
      return 2;
    memcpy(target_id, target.id, KW_ID_LEN);
    kw_config *cfg = base_config();
    kw_config_add_resolver(cfg, r_notfound, NULL);
    kw_config_add_resolver(cfg, r_wrongid, NULL);
    kw_config_add_resolver(cfg, r_later, NULL);
    if (run(cfg))
      return 2;
    kw_endpoint_post(ep, dial, NULL);
    return report(1, KW_OK);
  }
  if (argc == 3 && strcmp(argv[1], "inline") == 0) {
    if (kw_ticket_decode(argv[2], &target, NULL) != KW_OK)
      return 2;
    memcpy(target_id, target.id, KW_ID_LEN);
    kw_config *cfg = base_config();
    kw_config_add_resolver(cfg, r_inline, NULL);
    if (run(cfg))
      return 2;
    kw_endpoint_post(ep, dial, NULL);
    return report(1, KW_OK);
  }
  if (argc == 3 && strcmp(argv[1], "notfound") == 0) {
    if (kw_id_from_string(argv[2], target_id) != KW_OK)
      return 2;
    kw_config *cfg = base_config();
    kw_config_add_resolver(cfg, r_notfound, NULL);
    if (run(cfg))
      return 2;
    kw_endpoint_post(ep, dial, NULL);
    return report(0, KW_ERR_NOT_FOUND);
  }
  if (argc == 5 && strcmp(argv[1], "relays") == 0) {
    kw_config *cfg = base_config();
    if (kw_config_add_relay(cfg, argv[2]) != KW_OK ||
        kw_config_add_relay(cfg, argv[3]) != KW_OK ||
        kw_config_set_relay_ca(cfg, argv[4]) != KW_OK)
      return 2;
    if (run(cfg))
      return 2;
    char url[KW_MAX_RELAY_URL + 1] = "";
    for (int i = 0; i < 1000 && !url[0]; i++) {
      kw_endpoint_home_relay(ep, url, sizeof url);
      if (!url[0])
        usleep(10000);
    }
    printf("home=%s\n", url);
    fflush(stdout);
    char line[256];
    if (!fgets(line, sizeof line, stdin) || strncmp(line, "dial ", 5) != 0)
      return 2;
    line[strcspn(line, "\r\n")] = 0;
    if (kw_id_from_string(line + 5, target_id) != KW_OK)
      return 2;
    kw_endpoint_post(ep, dial, NULL);
    return report(1, KW_OK);
  }
  fprintf(stderr, "usage: lookup_sources resolvers TICKET | inline TICKET | "
                  "notfound ID | relays URL1 URL2 CA\n");
  return 2;
}
