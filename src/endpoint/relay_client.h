/* SPDX-License-Identifier: MIT */
/*
 * The relay client (relay_client.c): the endpoint's connections to
 * keyway-relay servers. Its state, the relay map (every kw__relay, the
 * home relay's index), is defined in relay_client.c; the endpoint holds
 * the pointer (kw__ep_relays).
 */
#ifndef KW_ENDPOINT_RELAY_CLIENT_H
#define KW_ENDPOINT_RELAY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

typedef struct kw__relay kw__relay;
struct kw__relay_map;

/* kw_endpoint_new: an empty map (no home relay); kw_endpoint_free, after
 * the loop's handles are closed: frees every relay and the map (NULL: does
 * nothing). */
kw_err kw__relays_new(kw_endpoint *ep, struct kw__relay_map **out);
void kw__relays_free(struct kw__relay_map *m);

/* Sends a batch of QUIC packets (segments of `seg` bytes) to `dst_id`
 * through relay `relay`, one frame each. Opens the relay connection on
 * demand. KW_ERR_AGAIN when its queue is full (the rest is dropped: QUIC
 * resends). */
kw_err kw__relay_send_batch(kw_endpoint *ep, int relay, const uint8_t *dst_id,
                            const uint8_t *data, size_t len, size_t seg,
                            size_t *sent_segs);
/* Index of the relay with this URL (added to the map when `add`), or -1. */
int kw__relay_index(kw_endpoint *ep, const char *url, bool add);
/* The home relay's index, -1 while none. */
int kw__relay_home(kw_endpoint *ep);
/* Adds the configured relays to the map and dials each (to pick the home);
 * kw__relays_stop closes every relay connection and timer. */
kw_err kw__relays_start(kw_endpoint *ep);
void kw__relays_stop(kw_endpoint *ep);
const char *kw__relay_url_of(kw_endpoint *ep, int relay);
/* How many relays the map holds. */
size_t kw__relay_count(const kw_endpoint *ep);
/* The relay's STUN server: the IP its TLS connection reached, STUN port. */
bool kw__relay_stun_target(kw_endpoint *ep, int relay, kw_sockaddr *out);
double kw__relay_latency(kw_endpoint *ep, int relay);
bool kw__relay_ready(kw_endpoint *ep, int relay);
/* Where to open an HTTPS connection to relay `relay`: its resolved address
 * and the host name its certificate must match. False before resolution. */
bool kw__relay_tls_target(kw_endpoint *ep, int relay, kw_sockaddr *to,
                          const char **host);

#endif
