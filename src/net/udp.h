/* SPDX-License-Identifier: MIT */
/*
 * UDP sockets on Linux (docs/ARCHITECTURE.md section 3): one non-blocking
 * socket per address family (IPv6 with IPV6_V6ONLY), 8 MiB buffers,
 * recvmmsg with UDP_GRO, sendmsg with UDP_SEGMENT (GSO), sendmmsg where GSO
 * is missing. Knows no endpoint: the owner opens a kw__udp (opaque, defined
 * in udp.c), polls its fd with its own handle when it wants, and hands
 * received datagrams on.
 */
#ifndef KW_NET_UDP_H
#define KW_NET_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define KW_GSO_MAX_SEGS 64
#define KW_GSO_MAX_BYTES 65000 /* UDP payload limit of one GSO send */
#define KW_RX_BATCH 16
#define KW_RX_BUFSZ 65536

typedef struct kw__udp kw__udp;

/* Opens a socket bound to `bind_to` (its family: 4 or 6) with 8 MiB
 * buffers and GRO where the kernel has it; *out is the caller's until
 * kw__udp_close. */
kw_err kw__udp_open(const kw_sockaddr *bind_to, kw__udp **out);
/* A socket for a short life (birthday probing's extra sockets): the
 * system's default buffers (a few hundred of them must not reserve 8 MiB
 * each), no GRO (read it with kw__udp_recv_one). kw__udp_grow_bufs gives
 * it kw__udp_open's 8 MiB buffers once it carries a connection. */
kw_err kw__udp_open_small(const kw_sockaddr *bind_to, kw__udp **out);
void kw__udp_grow_bufs(kw__udp *u);
/* Closes the socket and frees it (NULL: nothing). */
void kw__udp_close(kw__udp *u);
/* Its descriptor (for the owner's poll), its bound address, and whether
 * UDP_SEGMENT works / UDP_GRO is on. */
int kw__udp_fd(const kw__udp *u);
const kw_sockaddr *kw__udp_bound(const kw__udp *u);
bool kw__udp_gso(const kw__udp *u);
bool kw__udp_gro(const kw__udp *u);
/* Sends `n` segments of `seg` bytes (the last may be shorter) as one GSO
 * call, or one by one without GSO. Returns KW_OK, KW_ERR_AGAIN (nothing
 * sent; *sent_segs tells how many went out before the socket filled) or
 * KW_ERR_IO. */
kw_err kw__udp_send(kw__udp *u, const kw_sockaddr *to, const uint8_t *data,
                    size_t len, size_t seg, size_t *sent_segs);
/* Receives one batch. For each datagram (GRO super-packets are split) calls
 * fn(arg, from, data, len). Returns datagrams seen, 0 on EAGAIN, <0 error. */
int kw__udp_recv_batch(kw__udp *u,
                       void (*fn)(void *arg, kw__udp *u,
                                  const kw_sockaddr *from, const uint8_t *data,
                                  size_t len),
                       void *arg);

/* Receives one datagram into the caller's `buf` (cap bytes; a longer one
 * is cut). Returns 1 (*from, *len set), 0 on EAGAIN, -1 on an error. */
int kw__udp_recv_one(kw__udp *u, uint8_t *buf, size_t cap, kw_sockaddr *from,
                     size_t *len);

#endif /* KW_NET_UDP_H */
