/* SPDX-License-Identifier: MIT */
/*
 * keyway netcheck: a reachability report from the relays given with
 * --relay: UDP works or not, the IPv4/IPv6 addresses the NAT maps us to,
 * whether the mapping depends on the destination (two STUN servers), port
 * mapping services, each relay's latency and the home relay. Port mapping
 * services are probed only with --portmap (UPnP IGD, NAT-PMP and PCP on
 * the default gateway); without it they read false, unprobed, and the
 * "pcp" object (whether a PCP server answered, its result, the mapping
 * it granted) is null.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common.h"

static cli *C;

static json_t *addr_json(const kw_sockaddr *a) {
  if (!a->family)
    return json_null();
  char s[KW_SOCKADDR_STRLEN];
  kw_sockaddr_format(a, s, sizeof s);
  return json_string(s);
}

static void report(kw_endpoint *ep, const kw_netcheck_report *r, void *arg) {
  (void)ep;
  (void)arg;
  if (C->json) {
    json_t *o = json_object();
    json_object_set_new(o, "udp", json_boolean(r->udp));
    json_object_set_new(o, "ipv4", addr_json(&r->ipv4));
    json_object_set_new(o, "ipv6", addr_json(&r->ipv6));
    json_object_set_new(o, "mapping_varies_by_dest",
                        r->mapping_varies_by_dest < 0
                            ? json_null()
                            : json_boolean(r->mapping_varies_by_dest));
    /* the contract's portmap values are booleans: "probed" says which
     * of them were actually asked (false: not probed, not "no") */
    json_object_set_new(o, "portmap",
                        json_pack("{s:b, s:b, s:b}", "upnp", r->upnp, "natpmp",
                                  r->natpmp, "pcp", r->pcp));
    bool relays = C->n_relays && !C->no_relay;
    json_object_set_new(
        o, "probed",
        json_pack("{s:b, s:b, s:b, s:b}", "udp", relays, "mapping",
                  r->mapping_varies_by_dest >= 0, "portmap", C->portmap,
                  "pcp", r->pcp_probed));
    if (r->pcp_probed) {
      json_t *pcp = json_object();
      json_object_set_new(pcp, "answered", json_boolean(r->pcp));
      json_object_set_new(pcp, "result",
                          r->pcp_result < 0
                              ? json_null()
                              : json_string(kw_pcp_result_name(r->pcp_result)));
      json_object_set_new(pcp, "external", addr_json(&r->pcp_external));
      json_object_set_new(o, "pcp", pcp);
    } else {
      json_object_set_new(o, "pcp", json_null());
    }
    json_t *rel = json_array();
    for (size_t i = 0; i < r->n_relays; i++) {
      json_t *x = json_object();
      json_object_set_new(x, "url", json_string(r->relays[i].url));
      json_object_set_new(x, "latency_ms",
                          r->relays[i].latency_ms < 0
                              ? json_null()
                              : json_real(r->relays[i].latency_ms));
      const char *kind = NULL, *why = NULL;
      if (r->relays[i].latency_ms < 0)
        why = cli_relay_why(C, r->relays[i].url, &kind);
      json_object_set_new(x, "error", kind ? json_string(kind) : json_null());
      if (kind)
        json_object_set_new(x, "message",
                            json_string(why ? why : "no answer in time"));
      json_array_append_new(rel, x);
    }
    json_object_set_new(o, "relays", rel);
    json_object_set_new(o, "home_relay", r->home_relay[0]
                                             ? json_string(r->home_relay)
                                             : json_null());
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (s) {
      printf("%s\n", s);
      free(s);
    }
    json_decref(o);
  } else {
    char a4[KW_SOCKADDR_STRLEN] = "none", a6[KW_SOCKADDR_STRLEN] = "none";
    if (r->ipv4.family)
      kw_sockaddr_format(&r->ipv4, a4, sizeof a4);
    if (r->ipv6.family)
      kw_sockaddr_format(&r->ipv6, a6, sizeof a6);
    printf("UDP:                 %s\n",
           r->udp ? "yes"
                  : r->n_relays ? "no (no STUN server answered)"
                                : "unknown (no relay given: pass --relay URL)");
    printf("IPv4 (reflexive):    %s\n", a4);
    printf("IPv6 (reflexive):    %s\n", a6);
    printf("mapping varies:      %s\n",
           r->mapping_varies_by_dest < 0
               ? "unknown (needs two STUN servers)"
               : r->mapping_varies_by_dest
                     ? "yes (endpoint-dependent NAT: hole punching fails)"
                     : "no (endpoint-independent)");
    if (C->portmap) {
      char pe[KW_SOCKADDR_STRLEN] = "";
      if (r->pcp_external.family)
        kw_sockaddr_format(&r->pcp_external, pe, sizeof pe);
      char pcp[KW_SOCKADDR_STRLEN + 64];
      if (!r->pcp_probed)
        snprintf(pcp, sizeof pcp, "not probed");
      else if (!r->pcp)
        snprintf(pcp, sizeof pcp, "no (no answer)");
      else if (pe[0])
        snprintf(pcp, sizeof pcp, "yes (mapped %s)", pe);
      else
        snprintf(pcp, sizeof pcp, "yes (%s, no mapping)",
                 kw_pcp_result_name(r->pcp_result));
      printf("port mapping:        UPnP %s, NAT-PMP %s, PCP %s\n",
             r->upnp ? "yes" : "no", r->natpmp ? "yes" : "no", pcp);
    } else
      printf("port mapping:        not probed (pass --portmap)\n");
    for (size_t i = 0; i < r->n_relays; i++) {
      const char *kind;
      const char *why = r->relays[i].latency_ms < 0
                            ? cli_relay_why(C, r->relays[i].url, &kind)
                            : NULL;
      if (r->relays[i].latency_ms < 0 && why)
        printf("relay %s: no answer: %s\n", r->relays[i].url, why);
      else if (r->relays[i].latency_ms < 0)
        printf("relay %s: no answer within %g s (timeout)\n",
               r->relays[i].url, C->timeout_s > 0 ? C->timeout_s : 3.0);
      else
        printf("relay %s: %.2f ms\n", r->relays[i].url,
               r->relays[i].latency_ms);
    }
    printf("home relay:          %s\n",
           r->home_relay[0] ? r->home_relay : "none");
  }
  fflush(stdout);
  cli_done(C, 0);
}

static void start(kw_endpoint *ep, void *arg) {
  (void)arg;
  uint32_t ms = C->timeout_s > 0 ? (uint32_t)(C->timeout_s * 1000) : 3000;
  if (C->n_relays == 0 || C->no_relay)
    ms = 1; /* nothing to wait for */
  if (C->portmap && ms < 6000)
    ms = 6000; /* the probe: ~1 s SSDP, NAT-PMP retries, a mapping try */
  kw_err e = kw_endpoint_netcheck(ep, ms, report, NULL);
  if (e != KW_OK) {
    cli_fail(C, e, "netcheck: %s", kw_strerror(e));
    cli_done(C, 1);
  }
}

int cmd_netcheck(cli *c) {
  if (c->npos)
    return cli_usage_error(c, "netcheck takes no arguments");
  C = c;
  c->ephemeral = c->key_file ? c->ephemeral : true; /* no key file needed */
  kw_callbacks cbs = {0};
  int rc = cli_start_endpoint(c, NULL, &cbs, NULL);
  if (rc)
    return rc;
  if (c->n_relays == 0 || c->no_relay)
    cli_info(c, "netcheck: no --relay given: nothing to measure against");
  cli_post(c, start, NULL);
  return cli_wait(c);
}
