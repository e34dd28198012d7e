/* SPDX-License-Identifier: MIT */
/*
 * The lookup client (lookup_client.c): publishes our record to the home
 * relay (and its DHT copy) and asks one relay's lookup store for an id.
 * The publisher's state (its republish timer, failures in a row) is
 * defined in lookup_client.c; the endpoint holds the pointer
 * (kw__ep_publisher).
 */
#ifndef KW_ENDPOINT_LOOKUP_CLIENT_H
#define KW_ENDPOINT_LOOKUP_CLIENT_H

#include <stdint.h>

#include "keyway.h"

struct kw__publisher;

/* kw_endpoint_new / kw_endpoint_free (after the loop's handles are
 * closed; NULL: does nothing). */
kw_err kw__publisher_new(kw_endpoint *ep, struct kw__publisher **out);
void kw__publisher_free(struct kw__publisher *p);

/* The home relay changed, or our addresses did: republish our record
 * there (now, and every 10 minutes). */
void kw__endpoint_home_changed(kw_endpoint *ep);
/* The connection to the home relay came back (after a drop or a relay
 * restart, whose store may have lost our record): republish now. */
void kw__lookup_home_reconnected(kw_endpoint *ep);
/* Endpoint closing: the republish timer stops. */
void kw__lookup_stop(kw_endpoint *ep);
/* Asks relay `relay`'s lookup store for `id` (waiting for the relay's
 * address until `deadline_ns`); cb runs once, on the loop, with a verified
 * record's address or an error. */
kw_err kw__relay_lookup(kw_endpoint *ep, int relay, const uint8_t id[KW_ID_LEN],
                        uint64_t deadline_ns,
                        void (*cb)(kw_endpoint *ep, kw_err err,
                                   const kw_endpoint_addr *addr, void *arg),
                        void *arg);

#endif
