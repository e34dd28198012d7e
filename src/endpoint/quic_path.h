/* SPDX-License-Identifier: MIT */
/*
 * The fake paths QUIC sees, and connection migration when the magicsock
 * moves a connection to another real path (docs/ARCHITECTURE.md section 4).
 * Used by quic.c only; like quic.c, it calls ngtcp2.
 */
#ifndef KW_ENDPOINT_QUIC_PATH_H
#define KW_ENDPOINT_QUIC_PATH_H

#include "endpoint/quic.h"

#include <ngtcp2/ngtcp2.h>

#define KW_CIDLEN 16 /* our connection ids */

/* Storage for the two addresses of a fake path. */
typedef struct kw__qpath {
  ngtcp2_path path;
  struct sockaddr_in6 local, remote;
} kw__qpath;

/* Fills `p` with the path of `c` in generation `gen`: a client's local
 * address carries it, a server's remote address (the peer's) carries it. */
void kw__qpath_build(const kw_conn *c, uint16_t gen, kw__qpath *p);
/* The generation a received packet is presented in: a client's current
 * one; on a server, that of the packet's destination connection id, and a
 * connection id first used after the handshake starts a new generation. */
uint16_t kw__qpath_rx_gen(kw_conn *c, const uint8_t *data, size_t len);
/* Called after ngtcp2 accepted a packet: a first use of a connection id
 * opens its generation; counts a server's move to a new generation (ngtcp2
 * saw the peer migrate). */
void kw__qpath_after_read(kw_conn *c);
/* Called when the path the application hears of changed to `now`: a
 * client with a confirmed handshake migrates (not on the first report). */
void kw__qpath_changed(kw_conn *c, const kw_path_info *now);
/* A migration that waited for a spare connection id of the peer tries
 * again (from kw__conn_flush). */
void kw__qpath_retry(kw_conn *c);

#endif
