/* SPDX-License-Identifier: MIT */
/*
 * STUN probing from the endpoint's own UDP sockets: the server-reflexive
 * address (what a NAT maps us to), kept fresh every 25 s against the home
 * relay's STUN server, and the one-shot probes of a netcheck.
 *
 * Anti-leak rule (docs/ARCHITECTURE.md section 4, "STUN"): STUN goes only to the IP address a
 * relay's TLS connection reached, never through a separate DNS lookup.
 */
#include "endpoint/changes.h"
#include "endpoint/internal.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/stun.h"

#define KW_STUN_REFRESH_MS 25000

typedef kw__stun_tx stun_tx;

static kw_err send_request(kw_endpoint *ep, stun_tx *t) {
  uint8_t buf[KW_STUN_MAX_BUILD];
  size_t n;
  kw_err e = kw__stun_build_request(buf, sizeof buf, &n, t->txid, "keyway",
                                    true);
  if (e != KW_OK)
    return e;
  kw__udp *u = t->to.family == 4 ? &ep->udp4 : &ep->udp6;
  if (u->fd < 0)
    return KW_ERR_NO_PATH;
  size_t sent;
  t->sent_ns = kw__now(ep);
  return kw__udp_send(u, &t->to, buf, n, 0, &sent);
}

kw_err kw__stun_probe(kw_endpoint *ep, int relay, const kw_sockaddr *to,
                      void (*cb)(kw_endpoint *, int, const kw_sockaddr *,
                                 const kw_sockaddr *, void *),
                      void *arg) {
  stun_tx *t = NULL;
  for (size_t i = 0; i < KW_STUN_MAX_TX; i++) {
    if (!ep->stun_tx[i].used) {
      t = &ep->stun_tx[i];
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
  for (size_t i = 0; i < KW_STUN_MAX_TX; i++) {
    stun_tx *t = &ep->stun_tx[i];
    if (t->used && t->arg == arg)
      t->used = false;
  }
}

void kw__stun_input(kw_endpoint *ep, const kw_sockaddr *from,
                    const uint8_t *data, size_t len) {
  kw__stun_msg m;
  for (size_t i = 0; i < KW_STUN_MAX_TX; i++) {
    stun_tx *t = &ep->stun_tx[i];
    if (!t->used || !kw__sockaddr_equal(&t->to, from))
      continue;
    if (kw__stun_parse_response(data, len, t->txid, &m) != KW_OK)
      continue;
    t->used = false;
    if (t->cb)
      t->cb(ep, t->relay, &t->to, &m.mapped, t->arg);
    return;
  }
  ep->stats.drops_unknown++;
}

/* ---- the reflexive address, kept fresh ------------------------------------ */

static void reflexive_cb(kw_endpoint *ep, int relay, const kw_sockaddr *to,
                         const kw_sockaddr *mapped, void *arg) {
  (void)relay;
  (void)to;
  (void)arg;
  kw_sockaddr *slot = mapped->family == 4 ? &ep->reflexive4 : &ep->reflexive6;
  if (kw__sockaddr_equal(slot, mapped))
    return;
  char a[KW_SOCKADDR_STRLEN];
  kw_sockaddr_format(mapped, a, sizeof a);
  uv_mutex_lock(&ep->mu);
  *slot = *mapped;
  uv_mutex_unlock(&ep->mu);
  kw__log(ep, KW_LOG_INFO, "stun", "stun.reflexive addr=%s", a);
  kw__endpoint_changed(ep, KW__CHANGE_LOCAL_CANDIDATES, "reflexive");
}

static void refresh(uv_timer_t *t) {
  kw_endpoint *ep = t->data;
  int home = kw__relay_home(ep);
  if (home < 0 || ep->closing)
    return;
  kw_sockaddr to;
  if (!kw__relay_stun_target(ep, home, &to))
    return;
  kw__stun_probe(ep, home, &to, reflexive_cb, NULL);
}

void kw__stun_refresh(kw_endpoint *ep) {
  if (ep->stun_timer_init)
    refresh(&ep->stun_timer);
}

void kw__stun_start(kw_endpoint *ep) {
  if (ep->stun_timer_init)
    return;
  uv_timer_init(&ep->loop, &ep->stun_timer);
  ep->stun_timer.data = ep;
  ep->stun_timer_init = true;
  uv_timer_start(&ep->stun_timer, refresh, 0, KW_STUN_REFRESH_MS);
}

void kw__stun_stop(kw_endpoint *ep) {
  if (!ep->stun_timer_init)
    return;
  uv_timer_stop(&ep->stun_timer);
  uv_close((uv_handle_t *)&ep->stun_timer, NULL);
  ep->stun_timer_init = false;
}
