/* SPDX-License-Identifier: MIT */
/*
 * The network change monitor (netmon.c). Its state, struct kw__netmon, is
 * defined in netmon.c; the endpoint holds the pointer (kw__ep_netmon).
 */
#ifndef KW_ENDPOINT_NETMON_H
#define KW_ENDPOINT_NETMON_H

#include "keyway.h"

struct kw__netmon;
/* kw_endpoint_new: the monitor, not watching yet. kw__netmon_free after
 * the loop's handles are closed (NULL: does nothing). */
kw_err kw__netmon_new(kw_endpoint *ep, struct kw__netmon **out);
void kw__netmon_free(struct kw__netmon *nm);
/* Watches the kernel's address and route changes (netlink on Linux); a
 * change re-gathers candidates, re-pings paths and punches again. Without
 * netlink it does nothing (KW_OK). */
kw_err kw__netmon_start(kw_endpoint *ep);
void kw__netmon_stop(kw_endpoint *ep);

#endif
