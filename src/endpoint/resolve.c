/* SPDX-License-Identifier: MIT */
/*
 * Lookup sources (docs/ARCHITECTURE.md section 4, "Lookup sources"): a
 * bare id is asked of every source at once and the first valid answer
 * wins. The sources:
 *  - every relay of the relay map, home relay first (kw__relay_lookup in
 *    lookup_client.c: a signed record, verified there);
 *  - the LAN, when LAN discovery is on (kw__lan_lookup in lan.c: mDNS,
 *    a signed record verified by core/mdns);
 *  - each resolver the application added (kw_config_add_resolver),
 *    answered through kw_resolve_answer.
 * Each source answers one lookup exactly once, through `answer`. A lookup
 * ends at the first KW_OK, when every source has failed, at the connect
 * timeout, or when the endpoint closes; sources still out then answer into
 * a finished lookup, which is freed once the last of them has (so each
 * source holds a reference). Resolver requests the application never
 * answers are freed by kw_endpoint_free (kw__resolve_free).
 */
#include "endpoint/resolve.h"

#include "endpoint/lan.h"
#include "endpoint/lookup_client.h"
#include "endpoint/relay_client.h"
#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/magicsock.h"

#include <stdlib.h>
#include <string.h>

typedef struct kw__lookup kw__lookup;
struct kw__lookup {
  kw__lookup *next, **pprev; /* kw__resolve.lookups */
  kw_endpoint *ep;
  uint8_t id[KW_ID_LEN];
  kw__resolve_cb cb;
  void *arg;
  unsigned refs; /* sources still out, + 1 for the timer until closed */
  bool done;
  kw_err err; /* the answer kept for "all failed" */
  unsigned asked;
  /* while kw__resolve asks the sources, an answer given at once (an
   * application resolver, the LAN cache) is kept here and delivered from
   * the timer: the dial's callback never runs inside kw_endpoint_connect */
  bool asking, have_ok;
  kw_endpoint_addr ok_addr;
  uv_timer_t timer;
};

struct kw_resolve_req {
  kw_resolve_req *next, **pprev; /* kw__resolve.reqs */
  kw__lookup *lk;
  int index; /* which resolver */
};

/* The endpoint's lookups (kw__ep_resolve). */
struct kw__resolve {
  kw__lookup *lookups;  /* bare-id lookups in flight */
  kw_resolve_req *reqs; /* asked of an application resolver, not answered */
};

typedef struct relay_ask {
  kw__lookup *lk;
  int relay;
} relay_ask;

static void unlink_lookup(kw__lookup *lk) {
  if (lk->pprev) {
    *lk->pprev = lk->next;
    if (lk->next)
      lk->next->pprev = lk->pprev;
    lk->pprev = NULL;
  }
}

static void unref(kw__lookup *lk) {
  if (--lk->refs == 0) {
    unlink_lookup(lk);
    free(lk);
  }
}

static void timer_closed(uv_handle_t *h) {
  unref(h->data);
}

/* Which failure to report when all failed: one source saying "not known
 * here" outweighs a forged answer, which outweighs transport errors. */
static int weight(kw_err e) {
  return e == KW_ERR_NOT_FOUND ? 3 : e == KW_ERR_KEY_MISMATCH ? 2 : 1;
}

static void finish(kw__lookup *lk, kw_err err, const kw_endpoint_addr *a) {
  if (lk->done)
    return;
  lk->done = true;
  uv_timer_stop(&lk->timer);
  uv_close((uv_handle_t *)&lk->timer, timer_closed);
  lk->cb(lk->ep, err, a, lk->arg);
}

/* One source's answer. */
static void answer(kw__lookup *lk, const char *source, kw_err err,
                   const kw_endpoint_addr *a) {
  kw_endpoint *ep = lk->ep;
  if (!lk->done) {
    char idb[KW_ID_SHORTLEN + 1];
    kw_id_to_short(lk->id, idb, sizeof idb);
    if (err == KW_OK && (!a || memcmp(a->id, lk->id, KW_ID_LEN) != 0 ||
                         (a->n_addrs == 0 && !a->relay_url[0]) ||
                         a->n_addrs > KW_MAX_DIRECT_ADDRS))
      err = (a && memcmp(a->id, lk->id, KW_ID_LEN) != 0) ? KW_ERR_KEY_MISMATCH
                                                         : KW_ERR_NOT_FOUND;
    kw__log(ep, KW_LOG_INFO, "lookup", "lookup.answer id=%s source=%s err=%s",
            idb, source, kw_errname(err));
    if (err == KW_OK && lk->asking) {
      if (!lk->have_ok) {
        lk->have_ok = true;
        lk->ok_addr = *a;
      }
    } else if (err == KW_OK) {
      finish(lk, KW_OK, a);
    } else {
      if (lk->err == KW_OK || weight(err) > weight(lk->err))
        lk->err = err;
      /* refs: this source, + 1 for the timer: was it the last? (While
       * asking, kw__resolve holds one more and decides itself.) */
      if (lk->refs == 2 && !lk->asking)
        finish(lk, lk->err, NULL);
    }
  }
  unref(lk);
}

static void deadline_cb(uv_timer_t *t) {
  kw__lookup *lk = t->data;
  if (lk->have_ok)
    finish(lk, KW_OK, &lk->ok_addr);
  else
    finish(lk, lk->err != KW_OK ? lk->err : KW_ERR_TIMEOUT, NULL);
}

/* ---- relays ------------------------------------------------------------ */

static void relay_answered(kw_endpoint *ep, kw_err err,
                           const kw_endpoint_addr *addr, void *arg) {
  relay_ask *ra = arg;
  kw__lookup *lk = ra->lk;
  char src[32];
  snprintf(src, sizeof src, "relay%d", ra->relay);
  (void)ep;
  free(ra);
  answer(lk, src, err, addr);
}

static void ask_relay(kw__lookup *lk, int relay, uint64_t deadline_ns) {
  relay_ask *ra = calloc(1, sizeof *ra);
  if (!ra)
    return;
  ra->lk = lk;
  ra->relay = relay;
  lk->refs++;
  lk->asked++;
  if (kw__relay_lookup(lk->ep, relay, lk->id, deadline_ns, relay_answered,
                       ra) != KW_OK) {
    free(ra);
    lk->refs--;
    lk->asked--;
  }
}

/* ---- LAN --------------------------------------------------------------- */

static void lan_answered(kw_endpoint *ep, kw_err err,
                         const kw_endpoint_addr *addr, void *arg) {
  (void)ep;
  answer(arg, "lan", err, addr);
}

/* ---- the application's resolvers --------------------------------------- */

kw_err kw_resolve_answer(kw_resolve_req *req, kw_err err,
                         const kw_endpoint_addr *addr) {
  if (!req)
    return KW_ERR_INVALID_ARG;
  kw_err ret = KW_OK;
  if (err == KW_OK && !addr) {
    err = KW_ERR_INVALID_ARG;
    ret = KW_ERR_INVALID_ARG;
  }
  *req->pprev = req->next;
  if (req->next)
    req->next->pprev = req->pprev;
  kw__lookup *lk = req->lk;
  char src[32];
  snprintf(src, sizeof src, "resolver%d", req->index);
  free(req);
  answer(lk, src, err, addr);
  return ret;
}

static void ask_resolver(kw__lookup *lk, int i) {
  kw_endpoint *ep = lk->ep;
  kw_resolve_req *req = calloc(1, sizeof *req);
  if (!req)
    return;
  req->lk = lk;
  req->index = i;
  struct kw__resolve *rs = kw__ep_resolve(ep);
  req->next = rs->reqs;
  if (req->next)
    req->next->pprev = &req->next;
  req->pprev = &rs->reqs;
  rs->reqs = req;
  lk->refs++;
  lk->asked++;
  uint8_t id[KW_ID_LEN];
  memcpy(id, lk->id, KW_ID_LEN);
  kw__ep_cfg(ep)->resolvers[i].fn(ep, id, req,
                                  kw__ep_cfg(ep)->resolvers[i].user);
}

/* ---- lookups ----------------------------------------------------------- */

kw_err kw__resolve(kw_endpoint *ep, const uint8_t id[KW_ID_LEN],
                   kw__resolve_cb cb, void *arg) {
  if (kw__relay_count(ep) == 0 && !kw__lan_on(ep) &&
      kw__ep_cfg(ep)->n_resolvers == 0)
    return KW_ERR_NO_PATH;
  kw__lookup *lk = calloc(1, sizeof *lk);
  if (!lk)
    return KW_ERR_NOMEM;
  lk->ep = ep;
  memcpy(lk->id, id, KW_ID_LEN);
  lk->cb = cb;
  lk->arg = arg;
  lk->refs = 2; /* the timer, and this function until the sources are out */
  struct kw__resolve *rs = kw__ep_resolve(ep);
  lk->next = rs->lookups;
  if (lk->next)
    lk->next->pprev = &lk->next;
  lk->pprev = &rs->lookups;
  rs->lookups = lk;
  uv_timer_init(kw__ep_loop(ep), &lk->timer);
  lk->timer.data = lk;
  uint64_t timeout_ms = kw__ep_cfg(ep)->connect_timeout_ms;
  uv_timer_start(&lk->timer, deadline_cb, timeout_ms, 0);
  uint64_t deadline_ns = kw__now(ep) + timeout_ms * 1000000u;
  lk->asking = true;
  /* all at once: the home relay first, then the other relays of the map */
  int home = kw__relay_home(ep);
  if (home >= 0)
    ask_relay(lk, home, deadline_ns);
  for (size_t i = 0; i < kw__relay_count(ep); i++)
    if ((int)i != home)
      ask_relay(lk, (int)i, deadline_ns);
  if (kw__lan_on(ep)) {
    lk->refs++;
    lk->asked++;
    if (kw__lan_lookup(ep, id, deadline_ns, lan_answered, lk) != KW_OK) {
      lk->refs--;
      lk->asked--;
    }
  }
  for (size_t i = 0; i < kw__ep_cfg(ep)->n_resolvers && !lk->have_ok; i++)
    ask_resolver(lk, (int)i);
  lk->asking = false;
  if (lk->asked == 0 && lk->err == KW_OK)
    lk->err = KW_ERR_NO_PATH; /* nothing could be asked */
  /* answered already (an inline answer), or every source failed at once:
   * the timer delivers it on the next loop turn */
  if (!lk->done && (lk->have_ok || lk->refs == 2))
    uv_timer_start(&lk->timer, deadline_cb, 0, 0);
  unref(lk);
  return KW_OK;
}

kw_err kw__resolve_new(kw_endpoint *ep, struct kw__resolve **out) {
  (void)ep;
  struct kw__resolve *rs = calloc(1, sizeof *rs);
  if (!rs)
    return KW_ERR_NOMEM;
  *out = rs;
  return KW_OK;
}

void kw__resolve_stop(kw_endpoint *ep) {
  /* finish() may not free (the timer's close is pending), so walk a
   * snapshot of the list by its next pointers before each call */
  struct kw__resolve *rs = kw__ep_resolve(ep);
  kw__lookup *lk = rs ? rs->lookups : NULL;
  while (lk) {
    kw__lookup *n = lk->next;
    finish(lk, KW_ERR_CLOSED, NULL);
    lk = n;
  }
}

void kw__resolve_free(struct kw__resolve *rs) {
  if (!rs)
    return;
  while (rs->reqs) {
    kw_resolve_req *req = rs->reqs;
    rs->reqs = req->next;
    kw__lookup *lk = req->lk;
    free(req);
    unref(lk);
  }
  while (rs->lookups) { /* only possible if a source never answered */
    kw__lookup *lk = rs->lookups;
    unlink_lookup(lk);
    free(lk);
  }
  free(rs);
}

kw_err kw_config_add_resolver(kw_config *cfg, kw_resolver_fn fn, void *user) {
  if (!cfg || !fn)
    return KW_ERR_INVALID_ARG;
  if (cfg->n_resolvers >= KW_MAX_RESOLVERS)
    return KW_ERR_FULL;
  cfg->resolvers[cfg->n_resolvers].fn = fn;
  cfg->resolvers[cfg->n_resolvers].user = user;
  cfg->n_resolvers++;
  return KW_OK;
}
