/* SPDX-License-Identifier: MIT */
/*
 * Port mapping (portmap.c): what netcheck may ask beyond internal.h.
 */
#ifndef KW_IO_PORTMAP_H
#define KW_IO_PORTMAP_H

#include <stdbool.h>

#include "keyway.h"

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
