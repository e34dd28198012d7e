/* SPDX-License-Identifier: MIT */
/*
 * Disco and hole punching (disco_io.c): sealed Ping, Pong, CallMeMaybe and
 * NatHint on the magicsock's sockets and through relays, and the one timer
 * at the earliest deadline of every remote's path policy. Its state
 * (replay window, Pong limiter, timer, observed addresses, our NAT's kind,
 * counters) is `struct kw__disco`, defined in disco_io.c only.
 */
#ifndef KW_IO_DISCO_IO_H
#define KW_IO_DISCO_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"
#include "core/disco.h"

struct kw__disco;
struct kw__remote;
struct kw__src;

/* Our addresses as remotes saw them (Pongs): at most this many kept. */
#define KW_OBSERVED_MAX 4

/* The disco state of `ep` (kw_endpoint_new; the endpoint keeps it:
 * kw__ep_disco) / frees it (kw_endpoint_free, after the loop's handles are
 * closed; NULL is fine). */
kw_err kw__disco_new(kw_endpoint *ep, struct kw__disco **out);
void kw__disco_free(struct kw__disco *d);
/* Starts disco (its replay window, Pong limiter and timer) and the
 * network monitor / stops the timer and the monitor. */
kw_err kw__disco_start(kw_endpoint *ep);
void kw__disco_stop(kw_endpoint *ep);
/* Adds (+=) disco's counters to `out` (kw_endpoint_stats_get). */
void kw__disco_stats(const kw_endpoint *ep, kw_endpoint_stats *out);
/* The remote's path policy asks for a Ping (tx id given; `probe`: out of
 * the probe budgets) / a CallMeMaybe through its relay (core/remote.h). */
bool kw__disco_send_ping(struct kw__remote *r, const kw_sockaddr *to,
                         const uint8_t tx_id[KW_DISCO_TXID_LEN], bool probe);
/* The same from socket `sock` (0 our own, else the remote's extra socket,
 * which must be open: kw__magicsock_xsend). */
bool kw__disco_send_ping_from(struct kw__remote *r, unsigned sock,
                              const kw_sockaddr *to,
                              const uint8_t tx_id[KW_DISCO_TXID_LEN],
                              bool probe);
bool kw__disco_send_call_me_maybe(struct kw__remote *r);
/* A disco datagram arrived over UDP or through a relay. */
void kw__disco_input(kw_endpoint *ep, const struct kw__src *from,
                     const uint8_t *data, size_t len);
/* A connection of remote `r` is up / gone: the hole-punch schedule
 * follows. Up counts it only for a remote whose id is known (returns
 * whether it did); down is called once for each connection up counted. */
bool kw__disco_conn_up(kw_endpoint *ep, struct kw__remote *r);
void kw__disco_conn_down(kw_endpoint *ep, struct kw__remote *r);
/* Re-arms the disco timer at the earliest deadline of all remotes, after
 * anything that may have moved one. */
void kw__disco_arm(kw_endpoint *ep);
/* A major network change: every remote re-pings its paths and punches. */
void kw__disco_network_change(kw_endpoint *ep);
/* Our candidate set gained addresses (a port mapping, a new reflexive or
 * interface address): every remote with connections gets a round. */
void kw__disco_local_candidates(kw_endpoint *ep);
/* netcheck found our mapping behaviour (mapping_varies_by_dest: 1, 0, -1
 * unknown): every remote's policy learns it (and the remotes with the
 * next CallMeMaybe's NatHint). */
void kw__disco_local_nat(kw_endpoint *ep, int mapping_varies_by_dest);
/* Our NAT's mapping behaviour as netcheck last saw it (KW_RP_NAT_*, 0
 * unknown). */
uint8_t kw__disco_nat_kind(const kw_endpoint *ep);
/* Our addresses as remotes saw them in Pongs, newest first (at most
 * KW_OBSERVED_MAX): copies up to `cap`, returns how many (any thread). */
size_t kw__disco_observed(kw_endpoint *ep, kw_sockaddr *out, size_t cap);

#endif
