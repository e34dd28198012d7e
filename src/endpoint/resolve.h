/* SPDX-License-Identifier: MIT */
/*
 * Lookup sources of a bare-id dial (resolve.c). Its state (the lookups in
 * flight, the application resolvers' requests not answered yet) is
 * defined in resolve.c; the endpoint holds the pointer (kw__ep_resolve).
 */
#ifndef KW_ENDPOINT_RESOLVE_H
#define KW_ENDPOINT_RESOLVE_H

#include <stdint.h>

#include "keyway.h"

struct kw__resolve;

typedef void (*kw__resolve_cb)(kw_endpoint *ep, kw_err err,
                               const kw_endpoint_addr *addr, void *arg);

/* kw_endpoint_new: no lookup yet. */
kw_err kw__resolve_new(kw_endpoint *ep, struct kw__resolve **out);
/* Resolves a bare id: asks every relay of the map, the LAN (when on) and
 * the application's resolvers at once; cb runs once on the loop with the
 * first valid answer, or an error once every source failed or the connect
 * timeout passed. KW_ERR_NO_PATH (cb not called) when there is no source. */
kw_err kw__resolve(kw_endpoint *ep, const uint8_t id[KW_ID_LEN],
                   kw__resolve_cb cb, void *arg);
/* Endpoint closing: every lookup still running ends with KW_ERR_CLOSED. */
void kw__resolve_stop(kw_endpoint *ep);
/* kw_endpoint_free: frees what applications' resolvers never answered,
 * and the state (NULL: does nothing). */
void kw__resolve_free(struct kw__resolve *rs);

#endif
