/* SPDX-License-Identifier: MIT */
/*
 * LAN discovery (lan.c). Its state, struct kw__lan, is defined in lan.c;
 * the endpoint holds the pointer (kw__ep_lan, NULL when LAN discovery is
 * off).
 */
#ifndef KW_ENDPOINT_LAN_H
#define KW_ENDPOINT_LAN_H

#include <stdbool.h>
#include <stdint.h>

#include "keyway.h"
#include "endpoint/resolve.h"

struct kw__lan;
/* kw_endpoint_new: opens the mDNS sockets and starts announcing. *out is
 * NULL unless cfg.lan (and NULL too when no socket could be opened: the
 * other sources still work). */
kw_err kw__lan_new(kw_endpoint *ep, struct kw__lan **out);
/* Whether LAN discovery runs. */
bool kw__lan_on(const kw_endpoint *ep);
/* Says goodbye (TTL 0) and closes the sockets; pending lookups end with
 * KW_ERR_CLOSED. kw__lan_free after the loop's handles are closed (NULL:
 * does nothing). */
void kw__lan_stop(kw_endpoint *ep);
void kw__lan_free(struct kw__lan *l);
/* Our addresses or interfaces changed: rejoin the groups, announce again. */
void kw__lan_network_changed(kw_endpoint *ep);
/* Our record changed (new home relay): announce again. */
void kw__lan_record_changed(kw_endpoint *ep);
/* Resolves `id` on the link until `deadline_ns`; cb runs exactly once.
 * KW_ERR_FULL when too many lookups are out (cb not called). */
kw_err kw__lan_lookup(kw_endpoint *ep, const uint8_t id[KW_ID_LEN],
                      uint64_t deadline_ns, kw__resolve_cb cb, void *arg);

#endif
