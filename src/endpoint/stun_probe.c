/* SPDX-License-Identifier: MIT */
/*
 * STUN probing from the endpoint's own UDP sockets: the server-reflexive
 * address (what a NAT maps us to), kept fresh every 25 s against the home
 * relay's STUN server, the one-shot probes of a netcheck, and the NAT-kind
 * check (kw__stun_nat_check): with two or more relays whose STUN servers
 * differ, one Binding to each (at most KW_NATCHK_SERVERS, resent twice
 * KW_NATCHK_EVERY_MS apart) when the home relay is chosen, on a network
 * change and at each refresh while the kind is unknown; two mapped
 * addresses that differ mean endpoint-dependent mapping, all the same
 * endpoint-independent (kw__disco_local_nat: the NatHint and birthday
 * probing).
 *
 * Anti-leak rule (docs/ARCHITECTURE.md section 4, "STUN"): STUN goes only to
 * the IP address a relay's TLS connection reached, never through a separate DNS
 * lookup.
 */
#include "endpoint/changes.h"
#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/magicsock.h"
#include "endpoint/disco_io.h"
#include "endpoint/relay_client.h"
#include "core/sockaddr.h"
#include "core/remote.h"
#include "endpoint/stun_probe.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/stun.h"

/* The reflexive address is asked for every KW_STUN_REFRESH_MS; a request
 * without an answer is sent again KW_STUN_RETRY_MS later, the wait doubling
 * up to KW_STUN_REFRESH_MS (at most 6 extra requests a refresh). Without
 * it one lost request left the endpoint without its public address (no
 * ticket or CallMeMaybe named it) for a whole refresh period. */
#define KW_STUN_REFRESH_MS 25000
#define KW_STUN_RETRY_MS 500

/* An outstanding Binding request. */
typedef struct stun_tx {
  bool used;
  uint8_t txid[12];
  kw_sockaddr to;
  int relay;
  void (*cb)(kw_endpoint *ep, int relay, const kw_sockaddr *to,
             const kw_sockaddr *mapped, void *arg);
  void *arg;
  uint64_t sent_ns;
} stun_tx;

typedef struct kw__natchk kw__natchk;

/* The endpoint's STUN state (kw__ep_stun), loop thread unless said. */
struct kw__stun {
  kw_endpoint *ep;
  stun_tx tx[KW_STUN_MAX_TX];
  uv_timer_t timer; /* the reflexive address's refresh */
  bool timer_init;
  uint64_t retry_ms; /* wait before resending an unanswered refresh */
  /* under the endpoint's lock (kw__ep_lock): read from any thread */
  kw_sockaddr reflexive4, reflexive6;
  /* the NAT-kind check against 2..KW_NATCHK_SERVERS relays' STUN servers
   * (kw__stun_start to kw__stun_stop; frees itself in its timer's close) */
  kw__natchk *natchk;
  uint64_t drops_unknown; /* STUN datagrams that answer no probe */
};

kw_err kw__stun_new(kw_endpoint *ep, struct kw__stun **out) {
  struct kw__stun *s = calloc(1, sizeof *s);
  if (!s)
    return KW_ERR_NOMEM;
  s->ep = ep;
  *out = s;
  return KW_OK;
}

void kw__stun_free(struct kw__stun *s) {
  free(s);
}

void kw__stun_stats(const kw_endpoint *ep, kw_endpoint_stats *out) {
  const struct kw__stun *s = kw__ep_stun(ep);
  if (s)
    out->drops_unknown += s->drops_unknown;
}

static kw_err send_request(kw_endpoint *ep, stun_tx *t) {
  uint8_t buf[KW_STUN_MAX_BUILD];
  size_t n;
  kw_err e =
      kw__stun_build_request(buf, sizeof buf, &n, t->txid, "keyway", true);
  if (e != KW_OK)
    return e;
  t->sent_ns = kw__now(ep);
  return kw__magicsock_send_raw(ep, &t->to, buf, n);
}

kw_err kw__stun_probe(kw_endpoint *ep, int relay, const kw_sockaddr *to,
                      void (*cb)(kw_endpoint *, int, const kw_sockaddr *,
                                 const kw_sockaddr *, void *),
                      void *arg) {
  struct kw__stun *s = kw__ep_stun(ep);
  stun_tx *t = NULL;
  for (size_t i = 0; i < KW_STUN_MAX_TX; i++) {
    if (!s->tx[i].used) {
      t = &s->tx[i];
      break;
    }
  }
  if (!t)
    return KW_ERR_FULL; /* bounded: a full table refuses new probes */
  memset(t, 0, sizeof *t);
  t->used = true;
  randombytes_buf(t->txid, sizeof t->txid);
  t->to = *to;
  t->relay = relay;
  t->cb = cb;
  t->arg = arg;
  kw_err e = send_request(ep, t);
  if (e != KW_OK && e != KW_ERR_AGAIN)
    t->used = false;
  return e == KW_ERR_AGAIN ? KW_OK : e;
}

void kw__stun_probe_cancel(kw_endpoint *ep, void *arg) {
  struct kw__stun *s = kw__ep_stun(ep);
  for (size_t i = 0; i < KW_STUN_MAX_TX; i++) {
    stun_tx *t = &s->tx[i];
    if (t->used && t->arg == arg)
      t->used = false;
  }
}

void kw__stun_input(kw_endpoint *ep, const kw_sockaddr *from,
                    const uint8_t *data, size_t len) {
  struct kw__stun *s = kw__ep_stun(ep);
  kw__stun_msg m;
  for (size_t i = 0; i < KW_STUN_MAX_TX; i++) {
    stun_tx *t = &s->tx[i];
    if (!t->used || !kw__sockaddr_equal(&t->to, from))
      continue;
    if (kw__stun_parse_response(data, len, t->txid, &m) != KW_OK)
      continue;
    t->used = false;
    if (t->cb)
      t->cb(ep, t->relay, &t->to, &m.mapped, t->arg);
    return;
  }
  s->drops_unknown++;
}

/* ---- the reflexive address, kept fresh ------------------------------------
 */

static void refresh(uv_timer_t *t);

/* The next refresh in `ms`. */
static void refresh_in(kw_endpoint *ep, uint64_t ms) {
  struct kw__stun *s = kw__ep_stun(ep);
  if (s->timer_init && !kw__ep_closing(ep))
    uv_timer_start(&s->timer, refresh, ms, 0);
}

static void reflexive_cb(kw_endpoint *ep, int relay, const kw_sockaddr *to,
                         const kw_sockaddr *mapped, void *arg) {
  (void)relay;
  (void)to;
  (void)arg;
  struct kw__stun *s = kw__ep_stun(ep);
  s->retry_ms = 0; /* answered: the next one a period from now */
  refresh_in(ep, KW_STUN_REFRESH_MS);
  kw_sockaddr *slot = mapped->family == 4 ? &s->reflexive4 : &s->reflexive6;
  if (kw__sockaddr_equal(slot, mapped))
    return;
  char a[KW_SOCKADDR_STRLEN];
  kw_sockaddr_format(mapped, a, sizeof a);
  kw__ep_lock(ep);
  *slot = *mapped;
  kw__ep_unlock(ep);
  kw__log(ep, KW_LOG_INFO, "stun", "stun.reflexive addr=%s", a);
  kw__endpoint_changed(ep, KW__CHANGE_LOCAL_CANDIDATES, "reflexive");
}

void kw__stun_reflexive(kw_endpoint *ep, kw_sockaddr *v4, kw_sockaddr *v6) {
  struct kw__stun *s = kw__ep_stun(ep);
  kw__ep_lock(ep);
  if (v4)
    *v4 = s->reflexive4;
  if (v6)
    *v6 = s->reflexive6;
  kw__ep_unlock(ep);
}

static void refresh(uv_timer_t *t) {
  struct kw__stun *s = t->data;
  kw_endpoint *ep = s->ep;
  int home = kw__relay_home(ep);
  if (kw__ep_closing(ep))
    return;
  kw_sockaddr to;
  if (home < 0 || !kw__relay_stun_target(ep, home, &to)) {
    s->retry_ms = 0;
    refresh_in(ep, KW_STUN_REFRESH_MS);
    return;
  }
  /* a retry (the request before had no answer) is not a new refresh */
  if (!s->retry_ms && kw__disco_nat_kind(ep) == KW_RP_NAT_UNKNOWN)
    kw__stun_nat_check(ep); /* a second relay may have come up since */
  kw__stun_probe_cancel(ep, &s->timer); /* the unanswered one */
  (void)kw__stun_probe(ep, home, &to, reflexive_cb, &s->timer);
  s->retry_ms = s->retry_ms ? s->retry_ms * 2 : KW_STUN_RETRY_MS;
  if (s->retry_ms > KW_STUN_REFRESH_MS)
    s->retry_ms = KW_STUN_REFRESH_MS;
  refresh_in(ep, s->retry_ms);
}

void kw__stun_refresh(kw_endpoint *ep) {
  struct kw__stun *s = kw__ep_stun(ep);
  if (s->timer_init) {
    kw__stun_nat_check(ep); /* the network changed: maybe the NAT too */
    s->retry_ms = 0;
    refresh(&s->timer);
  }
}

/* ---- our NAT's mapping behaviour, without a netcheck ----------------------
 */

int kw__stun_mapping_varies(const kw_sockaddr *mapped, size_t n) {
  const kw_sockaddr *first = NULL;
  int servers = 0, distinct = 0;
  for (size_t i = 0; i < n; i++) {
    if (mapped[i].family != 4)
      continue;
    servers++;
    if (!first)
      first = &mapped[i];
    else if (!kw__sockaddr_equal(first, &mapped[i]))
      distinct = 1;
  }
  return servers >= 2 ? distinct : -1;
}

struct kw__natchk {
  kw_endpoint *ep;
  uv_timer_t timer;
  bool running;
  unsigned ticks; /* of this check */
  size_t n;
  struct {
    kw_sockaddr server, mapped;
    unsigned sends, first_tick;
    bool answered;
  } s[KW_NATCHK_SERVERS];
};

static void natchk_answered(kw_endpoint *ep, int relay, const kw_sockaddr *to,
                            const kw_sockaddr *mapped, void *arg) {
  (void)ep;
  (void)relay;
  kw__natchk *c = arg;
  for (size_t i = 0; i < c->n; i++) {
    if (kw__sockaddr_equal(&c->s[i].server, to) && !c->s[i].answered) {
      c->s[i].answered = true;
      c->s[i].mapped = *mapped;
    }
  }
}

static void natchk_finish(kw__natchk *c, int varies, size_t answered) {
  kw_endpoint *ep = c->ep;
  c->running = false;
  uv_timer_stop(&c->timer);
  kw__stun_probe_cancel(ep, c);
  if (varies < 0)
    return; /* fewer than two servers answered: the kind stays as it was */
  kw__log(ep, KW_LOG_INFO, "stun", "stun.nat_kind kind=%s servers=%zu",
          varies ? "edm" : "eim", answered);
  kw__disco_local_nat(ep, varies); /* NatHint, birthday probing */
}

static void natchk_tick(uv_timer_t *t) {
  kw__natchk *c = t->data;
  kw_endpoint *ep = c->ep;
  if (kw__ep_closing(ep)) {
    natchk_finish(c, -1, 0);
    return;
  }
  /* the relays' STUN servers as their connections come up (IPv4: the
   * mapping behaviour birthday probing needs is the NAT's) */
  for (size_t i = 0; i < kw__relay_count(ep) && c->n < KW_NATCHK_SERVERS; i++) {
    kw_sockaddr a;
    if (!kw__relay_stun_target(ep, (int)i, &a) || a.family != 4)
      continue;
    bool known = false;
    for (size_t j = 0; j < c->n; j++)
      known = known || kw__sockaddr_equal(&c->s[j].server, &a);
    if (known)
      continue;
    memset(&c->s[c->n], 0, sizeof c->s[0]);
    c->s[c->n].server = a;
    c->s[c->n].first_tick = c->ticks;
    c->n++;
  }
  kw_sockaddr mapped[KW_NATCHK_SERVERS];
  size_t answered = 0;
  for (size_t i = 0; i < c->n; i++) {
    if (c->s[i].answered) {
      mapped[answered++] = c->s[i].mapped;
      continue;
    }
    /* sent when found, then again every tick, KW_NATCHK_SENDS in all */
    if (c->n >= 2 && c->s[i].sends < KW_NATCHK_SENDS &&
        kw__stun_probe(ep, -1, &c->s[i].server, natchk_answered, c) == KW_OK)
      c->s[i].sends++;
  }
  int varies = kw__stun_mapping_varies(mapped, answered);
  if (varies == 1 || (varies == 0 && answered == c->n) ||
      ++c->ticks > KW_NATCHK_TICKS) {
    natchk_finish(c, varies, answered);
    return;
  }
  uv_timer_start(&c->timer, natchk_tick, KW_NATCHK_EVERY_MS, 0);
}

void kw__stun_nat_check(kw_endpoint *ep) {
  kw__natchk *c = kw__ep_stun(ep)->natchk;
  if (!c || kw__ep_closing(ep) || c->running)
    return;
  c->running = true;
  c->ticks = 0;
  c->n = 0;
  uv_timer_start(&c->timer, natchk_tick, 0, 0);
}

static void natchk_freed(uv_handle_t *h) {
  free(h->data);
}

void kw__stun_start(kw_endpoint *ep) {
  struct kw__stun *s = kw__ep_stun(ep);
  if (!s->natchk) {
    kw__natchk *c = calloc(1, sizeof *c);
    if (c) { /* without it the kind is learned by netcheck only */
      c->ep = ep;
      uv_timer_init(kw__ep_loop(ep), &c->timer);
      c->timer.data = c;
      s->natchk = c;
    }
  }
  if (s->timer_init)
    return;
  uv_timer_init(kw__ep_loop(ep), &s->timer);
  s->timer.data = s;
  s->timer_init = true;
  s->retry_ms = 0;
  uv_timer_start(&s->timer, refresh, 0, 0);
}

void kw__stun_stop(kw_endpoint *ep) {
  struct kw__stun *s = kw__ep_stun(ep);
  if (!s)
    return;
  if (s->natchk) {
    kw__stun_probe_cancel(ep, s->natchk);
    uv_timer_stop(&s->natchk->timer);
    uv_close((uv_handle_t *)&s->natchk->timer, natchk_freed);
    s->natchk = NULL;
  }
  if (!s->timer_init)
    return;
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, NULL);
  s->timer_init = false;
}
