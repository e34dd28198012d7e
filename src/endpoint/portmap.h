/* SPDX-License-Identifier: MIT */
/*
 * Port mapping (portmap.c). Its state, struct kw__portmap, is defined in
 * portmap.c; the endpoint holds the pointer (kw__ep_portmap, NULL when
 * port mapping is off).
 */
#ifndef KW_IO_PORTMAP_H
#define KW_IO_PORTMAP_H

#include <stdbool.h>

#include "keyway.h"

struct kw__portmap;
/* kw_endpoint_new: starts asking the default gateway for a mapping of our
 * UDP port (UPnP IGD, then NAT-PMP; PCP beside them), renewing it before
 * its lease ends. *out is NULL unless cfg.port_mapping (and we have an
 * IPv4 socket). A new or changed external address is a change of our
 * local candidates (changes.h). */
kw_err kw__portmap_new(kw_endpoint *ep, struct kw__portmap **out);
/* Releases the mappings (best effort) and stops; kw__portmap_free after
 * the loop's handles are closed (NULL: does nothing). */
void kw__portmap_stop(kw_endpoint *ep);
void kw__portmap_free(struct kw__portmap *pm);
/* The external address of the current mapping, if there is one (any
 * thread). */
bool kw__portmap_external(kw_endpoint *ep, kw_sockaddr *out);
/* Whether port mapping runs. */
bool kw__portmap_on(const kw_endpoint *ep);
/* The network changed (new gateway or addresses): map again. */
void kw__portmap_network_changed(kw_endpoint *ep);

/* Which port-mapping services answered the first probe (UPnP IGD found,
 * NAT-PMP public-address reply). Returns false while that probe is still
 * running; true with both false when port mapping is off (nothing is
 * probed then). Loop thread. */
bool kw__portmap_probe_state(kw_endpoint *ep, bool *upnp, bool *natpmp);

/* What PCP's first request found: false while it is out (at most its
 * first retransmission time, ~3 s); then *answered says whether a PCP
 * server answered, *result its last result code (-1: none) and *external
 * the PCP mapping that is our candidate (family 0: none). True with
 * nothing when port mapping is off. Loop thread. */
bool kw__portmap_pcp_state(kw_endpoint *ep, bool *answered, int *result,
                           kw_sockaddr *external);

#endif
