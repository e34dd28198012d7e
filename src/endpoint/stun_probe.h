/* SPDX-License-Identifier: MIT */
/*
 * STUN probes (stun_probe.c): Binding requests from the endpoint's own
 * sockets, the reflexive address kept fresh against the home relay's STUN
 * server, and the NAT-kind check. Its state (outstanding probes, refresh
 * timer, reflexive addresses, the check, counters) is `struct kw__stun`,
 * defined in stun_probe.c only.
 */
#ifndef KW_IO_STUN_PROBE_H
#define KW_IO_STUN_PROBE_H

#include <stddef.h>

#include "keyway.h"

struct kw__stun;

#define KW_STUN_MAX_TX 32 /* outstanding probes; more are refused */

/* The STUN state of `ep` (kw_endpoint_new; the endpoint keeps it:
 * kw__ep_stun) / frees it (kw_endpoint_free, after the loop's handles are
 * closed; NULL is fine). */
kw_err kw__stun_new(kw_endpoint *ep, struct kw__stun **out);
void kw__stun_free(struct kw__stun *s);
/* Adds (+=) the STUN probes' counters to `out` (kw_endpoint_stats_get). */
void kw__stun_stats(const kw_endpoint *ep, kw_endpoint_stats *out);
/* Sends a Binding request to `to` from our socket of its family; cb runs
 * with the mapped address if an answer comes (never otherwise).
 * KW_ERR_FULL while KW_STUN_MAX_TX are outstanding. */
kw_err kw__stun_probe(kw_endpoint *ep, int relay, const kw_sockaddr *to,
                      void (*cb)(kw_endpoint *, int, const kw_sockaddr *,
                                 const kw_sockaddr *, void *),
                      void *arg);
/* Forgets outstanding probes whose cb argument is `arg`. */
void kw__stun_probe_cancel(kw_endpoint *ep, void *arg);
/* A STUN datagram arrived on a UDP socket. */
void kw__stun_input(kw_endpoint *ep, const kw_sockaddr *from,
                    const uint8_t *data, size_t len);
/* Starts (idempotent) / stops refreshing the reflexive address against the
 * home relay's STUN server. */
void kw__stun_start(kw_endpoint *ep);
void kw__stun_stop(kw_endpoint *ep);
/* Asks the home relay's STUN server again now (after a network change). */
void kw__stun_refresh(kw_endpoint *ep);
/* Our server-reflexive addresses (family 0: none known), either pointer
 * may be NULL (any thread). */
void kw__stun_reflexive(kw_endpoint *ep, kw_sockaddr *v4, kw_sockaddr *v6);
/* Our NAT's mapping behaviour from 2..KW_NATCHK_SERVERS relays' STUN
 * servers (IPv4), fed to kw__disco_local_nat; a running check is left to
 * finish. KW_NATCHK_TICKS ticks of KW_NATCHK_EVERY_MS (the relays'
 * servers are collected as their connections come up; each is asked
 * KW_NATCHK_SENDS times at most). Bounds: 4 servers x 3 Bindings per
 * check. */
#define KW_NATCHK_SERVERS 4
#define KW_NATCHK_SENDS 3
#define KW_NATCHK_EVERY_MS 500
#define KW_NATCHK_TICKS 8
void kw__stun_nat_check(kw_endpoint *ep);
/* The netcheck verdict over mapped addresses (IPv4 ones count): 1 they
 * differ (endpoint-dependent mapping), 0 all the same, -1 fewer than 2. */
int kw__stun_mapping_varies(const kw_sockaddr *mapped, size_t n);

#endif
