/* SPDX-License-Identifier: MIT */
/*
 * netcheck: what the network lets this endpoint do. It waits (briefly) for
 * the relay connections so every relay's STUN server is known by IP, sends
 * Binding requests to each from our own sockets, and compares the mapped
 * addresses: the same mapping toward two different STUN servers means the
 * NAT's mapping is endpoint-independent (hole punching can work).
 * With port mapping enabled it also waits for the port mapper's first probe
 * (UPnP IGD search, NAT-PMP public-address request, PCP MAP request) and
 * reports it.
 */
#include "endpoint/disco_io.h"
#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/magicsock.h"
#include "endpoint/relay_client.h"
#include "core/sockaddr.h"
#include "endpoint/portmap.h"
#include "endpoint/stun_probe.h"

#include <stdlib.h>
#include <string.h>

#define KW_NETCHECK_STEP_MS 50
#define KW_NETCHECK_SENDS 3 /* each server is asked up to this many times */

typedef struct netcheck {
  kw_endpoint *ep;
  kw_netcheck_cb cb;
  void *arg;
  uv_timer_t timer;
  uint64_t start_ns, deadline_ns;
  kw_netcheck_report rep;
  struct {
    kw_sockaddr server;
    kw_sockaddr mapped;
    int sends;
    bool answered;
  } probes[KW_MAX_RELAYS * 2];
  size_t nprobes;
} netcheck;

static void nc_free(uv_handle_t *h) {
  free(h->data);
}

static void answered(kw_endpoint *ep, int relay, const kw_sockaddr *to,
                     const kw_sockaddr *mapped, void *arg) {
  (void)ep;
  (void)relay;
  netcheck *n = arg;
  for (size_t i = 0; i < n->nprobes; i++) {
    if (kw__sockaddr_equal(&n->probes[i].server, to)) {
      n->probes[i].answered = true;
      n->probes[i].mapped = *mapped;
    }
  }
}

static void finish(netcheck *n) {
  kw_endpoint *ep = n->ep;
  kw__stun_probe_cancel(ep, n);
  kw_netcheck_report *r = &n->rep;
  kw_sockaddr mapped[sizeof n->probes / sizeof n->probes[0]];
  size_t nmapped = 0;
  for (size_t i = 0; i < n->nprobes; i++) {
    if (!n->probes[i].answered)
      continue;
    const kw_sockaddr *m = &n->probes[i].mapped;
    r->udp = true;
    if (m->family == 6 && !r->ipv6.family)
      r->ipv6 = *m;
    if (m->family == 4 && !r->ipv4.family)
      r->ipv4 = *m;
    mapped[nmapped++] = *m;
  }
  r->mapping_varies_by_dest = kw__stun_mapping_varies(mapped, nmapped);
  r->n_relays = kw__relay_count(ep) < 8 ? kw__relay_count(ep) : 8;
  for (size_t i = 0; i < r->n_relays; i++) {
    snprintf(r->relays[i].url, sizeof r->relays[i].url, "%s",
             kw__relay_url_of(ep, (int)i));
    r->relays[i].latency_ms = kw__relay_latency(ep, (int)i);
  }
  kw_endpoint_home_relay(ep, r->home_relay, sizeof r->home_relay);
  /* port mapping: what the endpoint's own probe found (all false when
   * port mapping is off: nothing was asked) */
  (void)kw__portmap_probe_state(ep, &r->upnp, &r->natpmp);
  (void)kw__portmap_pcp_state(ep, &r->pcp, &r->pcp_result, &r->pcp_external);
  r->pcp_probed = kw__ep_cfg(ep)->port_mapping && kw__portmap_on(ep);
  kw__log(ep, KW_LOG_INFO, "netcheck",
          "netcheck.done udp=%d servers=%zu mapping_varies=%d", r->udp,
          n->nprobes, r->mapping_varies_by_dest);
  kw__disco_local_nat(ep, r->mapping_varies_by_dest); /* NatHint */
  n->cb(ep, r, n->arg);
  uv_close((uv_handle_t *)&n->timer, nc_free);
}

static void step(uv_timer_t *t) {
  netcheck *n = t->data;
  kw_endpoint *ep = n->ep;
  uint64_t now = kw__now(ep);
  if (kw__ep_closing(ep)) {
    finish(n);
    return;
  }
  /* learn the STUN servers of relays as their connections come up */
  for (size_t i = 0; i < kw__relay_count(ep); i++) {
    kw_sockaddr s;
    if (!kw__relay_stun_target(ep, (int)i, &s))
      continue;
    bool known = false;
    for (size_t j = 0; j < n->nprobes; j++)
      if (kw__sockaddr_equal(&n->probes[j].server, &s))
        known = true;
    if (!known && n->nprobes < sizeof n->probes / sizeof n->probes[0]) {
      memset(&n->probes[n->nprobes], 0, sizeof n->probes[0]);
      n->probes[n->nprobes++].server = s;
    }
  }
  bool all = n->nprobes > 0;
  bool relays_known = true;
  for (size_t i = 0; i < kw__relay_count(ep); i++) {
    kw_sockaddr s;
    if (!kw__relay_stun_target(ep, (int)i, &s))
      relays_known = false;
  }
  uint64_t elapsed_ms = (now - n->start_ns) / 1000000u;
  for (size_t i = 0; i < n->nprobes; i++) {
    if (n->probes[i].answered)
      continue;
    all = false;
    /* ask again every 500 ms, a few times: UDP may lose one */
    if (n->probes[i].sends < KW_NETCHECK_SENDS &&
        elapsed_ms >= (uint64_t)n->probes[i].sends * 500u) {
      if (kw__stun_probe(ep, -1, &n->probes[i].server, answered, n) == KW_OK)
        n->probes[i].sends++;
    }
  }
  /* relay latencies come from their own pings */
  bool latencies = true;
  for (size_t i = 0; i < kw__relay_count(ep); i++)
    if (kw__relay_latency(ep, (int)i) < 0)
      latencies = false;
  /* with port mapping on, its first probe (about 2 s) must have answered */
  bool pm_upnp, pm_natpmp, pm_pcp;
  int pm_pcp_result;
  kw_sockaddr pm_pcp_ext;
  bool portmap =
      kw__portmap_probe_state(ep, &pm_upnp, &pm_natpmp) &&
      kw__portmap_pcp_state(ep, &pm_pcp, &pm_pcp_result, &pm_pcp_ext);
  bool stun = (all && relays_known && latencies) || kw__relay_count(ep) == 0;
  if ((stun && portmap) || now >= n->deadline_ns) {
    finish(n);
    return;
  }
  uv_timer_start(&n->timer, step, KW_NETCHECK_STEP_MS, 0);
}

kw_err kw_endpoint_netcheck(kw_endpoint *ep, uint32_t timeout_ms,
                            kw_netcheck_cb cb, void *arg) {
  if (!ep || !cb)
    return KW_ERR_INVALID_ARG;
  if (kw__ep_closing(ep))
    return KW_ERR_CLOSED;
  netcheck *n = calloc(1, sizeof *n);
  if (!n)
    return KW_ERR_NOMEM;
  n->ep = ep;
  n->cb = cb;
  n->arg = arg;
  n->rep.mapping_varies_by_dest = -1;
  n->rep.pcp_result = -1;
  n->start_ns = kw__now(ep);
  n->deadline_ns =
      n->start_ns + (uint64_t)(timeout_ms ? timeout_ms : 3000) * 1000000u;
  uv_timer_init(kw__ep_loop(ep), &n->timer);
  n->timer.data = n;
  uv_timer_start(&n->timer, step, 0, 0);
  return KW_OK;
}
