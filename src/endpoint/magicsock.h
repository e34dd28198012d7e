/* SPDX-License-Identifier: MIT */
/*
 * The magicsock (magicsock.c): the endpoint's UDP sockets, birthday
 * probing's extra sockets, the punishment table of bad sources, and the
 * per-remote path state (kw__remote) that lets QUIC run over whichever
 * real path works (docs/ARCHITECTURE.md sections 3 and 4). Its state
 * (struct kw__magicsock), kw__remote and kw__xsock are defined in
 * magicsock.c only; the rest of the endpoint goes through these functions.
 */
#ifndef KW_ENDPOINT_MAGICSOCK_H
#define KW_ENDPOINT_MAGICSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include "keyway.h"
#include "core/remote.h"

struct kw__magicsock;

/* ---- life cycle (from endpoint.c) -------------------------------------- */

/* Opens our UDP sockets (cfg bind4/bind6 and families: a family the
 * machine lacks is fine unless the caller bound it or asked for it alone)
 * and starts polling them. Needs the endpoint's loop and configuration. */
kw_err kw__magicsock_new(kw_endpoint *ep, struct kw__magicsock **out);
/* The endpoint's close: every extra socket closes, the poll handles of our
 * sockets are closed (the loop finishes them). */
void kw__magicsock_close_handles(kw_endpoint *ep);
/* After the loop's handles are closed and the remotes freed (NULL: nothing). */
void kw__magicsock_free(struct kw__magicsock *ms);
/* Adds (+=) the magicsock's counters to `out`: UDP packets and bytes,
 * holepunch attempts, its share of drops_unknown. */
void kw__magicsock_stats(const kw_endpoint *ep, kw_endpoint_stats *out);

/* ---- remotes: per remote endpoint path state --------------------------- */

/* Where a packet came from: a UDP address, or a relay (addr.family 0). */
typedef struct kw__src {
  kw_sockaddr addr;
  int relay; /* relay index (relay_client.c), -1 for UDP */
  /* UDP: the socket it came on, 0 our own, 1..KW_RP_BDAY_SOCKETS an extra
   * socket of remote `xr` (birthday probing) */
  unsigned sock;
  struct kw__remote *xr;
} kw__src;

/* Birthday probing's extra UDP sockets (core/remote.h, "Birthday
 * probing"). The table belongs to the magicsock: a remote's extra socket k
 * lives in its `xs[k]`, opened by cbs.bday_send, closed by cbs.bday_close,
 * by the remote's free and by the endpoint's close; nothing else opens or
 * closes one.
 * KW_XSOCK_MAX_PER_EP: every extra socket is a file descriptor; one
 * attempt needs KW_RP_BDAY_SOCKETS (256), so at most one remote's attempt
 * runs at full size at a time, and with the main sockets, relays, DNS and
 * the application's own the endpoint stays far under the usual soft
 * limit of 1024 descriptors. Beyond it bday_send refuses (the attempt
 * runs with the sockets it got). */
#define KW_XSOCK_MAX_PER_EP 256
#define KW_XSOCK_RX_PER_WAKE 16 /* datagrams read per readiness: fairness */

/* One remote endpoint: its connections share its paths (docs/ARCHITECTURE.md
 * section 4). Its path policy is core's kw__rp (core/remote.h, sans-IO):
 * this layer feeds it events and carries out its actions. Owned by
 * magicsock.c (the struct is defined there): other files read it and change
 * it only through the kw__remote_* functions below. */
typedef struct kw__remote kw__remote;

/* The remote state of endpoint `id` (NULL: not known yet, for a direct
 * incoming connection before its handshake): the existing one if there is
 * one (its connections share it), else a new one. */
kw__remote *kw__remote_new(kw_endpoint *ep, const uint8_t *id);
/* After its last connection went: a remote with a known id is kept
 * KW_RP_IDLE_NS (its paths are a head start for the next connection),
 * then freed with all of its memory (at its deadline, kw__remotes_timeout);
 * others are freed now. */
void kw__remote_unref(kw__remote *r);
/* A connection of `r` was created (returns its RTT slot, -1 for none) /
 * is freed (then the remote may be unreferenced: kw__remote_unref). */
int kw__remote_conn_attach(kw__remote *r);
void kw__remote_conn_detach(kw__remote *r, int rtt_slot);
/* The handshake told us the remote's id (an inbound remote learns it). If
 * another remote of that id exists, `r` merges into it: the existing one
 * gains r's validated paths and relay, r's connections move to it
 * (kw__conn_move_remote) and r is freed; callers read the connection's
 * remote again afterwards. */
void kw__remote_set_id(kw__remote *r, const uint8_t id[KW_ID_LEN]);
/* The relay that reaches it; kw__remotes_set_home: the new home relay for
 * every remote without one. */
void kw__remote_set_relay(kw__remote *r, int relay);
void kw__remotes_set_home(kw_endpoint *ep, int relay);
/* A connection's RTT on the remote's selected path (from kw__conn_recv). */
void kw__remote_conn_rtt(kw_conn *c, uint64_t now);
/* Frees every remote (kw_endpoint_free), wiping their disco keys. */
void kw__remotes_free(kw_endpoint *ep);
/* The earliest deadline of every remote (KW_RP_NEVER: none), and running
 * those that are due (may free idle remotes: no caller may hold one). */
uint64_t kw__remotes_next_deadline(kw_endpoint *ep);
void kw__remotes_timeout(kw_endpoint *ep, uint64_t now);
/* Adds a direct candidate of the remote learned from `source` (KW_PSRC_*);
 * true if it is new. kw__remote_add_path: from the application/ticket. */
bool kw__remote_add_path_src(kw__remote *r, const kw_sockaddr *a,
                             uint8_t source);
void kw__remote_add_path(kw__remote *r, const kw_sockaddr *a);
/* The selected direct address, or NULL (relay, or nothing selected). */
const kw_sockaddr *kw__remote_direct(const kw__remote *r);
/* True if the relay is the selected path. */
bool kw__remote_on_relay(const kw__remote *r);
/* A packet from `from` authenticated at `now` for a connection of `r`: the
 * path it came by is validated. Returns true if the selection changed
 * (already reported: kw__remote_path_changed has run). */
bool kw__remote_confirm_path(kw__remote *r, const kw__src *from, uint64_t now);
/* The remote's selected path changed: every connection of it is flushed
 * (on the new path) and reports the change. */
void kw__remote_path_changed(kw__remote *r);
/* Events for the remote's policy (core/remote), from disco and the
 * endpoint's change fan-out: the magicsock owns `r->rp`, the others call
 * these (each is the kw__rp_* call of the same name at `now`). */
bool kw__remote_probe_allow(kw__remote *r, size_t bytes, uint64_t now);
void kw__remote_conn_up(kw__remote *r, uint64_t now);
void kw__remote_conn_down(kw__remote *r, uint64_t now);
/* ... and for every remote of the endpoint at once. */
void kw__remotes_local_candidates(kw_endpoint *ep, uint64_t now);
void kw__remotes_local_nat(kw_endpoint *ep, kw__rp_nat nat, uint64_t now);
void kw__remotes_network_change(kw_endpoint *ep, uint64_t now);
/* The remote of endpoint `id` (one with connections first), or NULL. */
kw__remote *kw__remote_find(kw_endpoint *ep, const uint8_t id[KW_ID_LEN]);
void kw__remote_ping_received(kw__remote *r, const kw__src *from, uint64_t now);
bool kw__remote_pong_received(kw__remote *r,
                              const uint8_t tx_id[KW_DISCO_TXID_LEN],
                              const kw__src *from, uint64_t now,
                              uint64_t *rtt_ns);
void kw__remote_call_me_maybe(kw__remote *r, const kw_sockaddr *addrs, size_t n,
                              uint64_t now);
void kw__remote_remote_nat(kw__remote *r, kw__rp_nat nat,
                           const kw_sockaddr *refl, uint64_t now);

/* What other files read of a remote: its endpoint, its id (NULL while
 * unknown), the relay that reaches it (-1 none), how many connections it
 * has, the mapped address QUIC sees, its disco key (NULL until the id is
 * known and the key derived), its path policy (read only: the path table
 * `pt`). */
kw_endpoint *kw__remote_ep(const kw__remote *r);
const uint8_t *kw__remote_id(const kw__remote *r);
int kw__remote_relay(const kw__remote *r);
unsigned kw__remote_nconns(const kw__remote *r);
const struct sockaddr_in6 *kw__remote_mapped(const kw__remote *r);
const uint8_t *kw__remote_disco_key(const kw__remote *r);
const kw__rp *kw__remote_policy(const kw__remote *r);

/* ---- sockets, sending, receiving --------------------------------------- */

/* Sends a finished batch of packets of `c` on its selected path (or every
 * path while racing). KW_ERR_AGAIN: the caller keeps the batch. */
kw_err kw__magicsock_send(kw_conn *c, const uint8_t *data, size_t len,
                          size_t seg, size_t *sent_segs);
void kw__magicsock_watch_writable(kw_endpoint *ep, kw_conn *c);
/* A connection is freed: it no longer waits for a writable socket. */
void kw__magicsock_forget_conn(kw_endpoint *ep, kw_conn *c);
/* Sends one datagram outside any connection (disco, STUN, a QUIC Retry)
 * from our socket of `to`'s family: KW_ERR_NO_PATH when there is none. */
kw_err kw__magicsock_send_raw(kw_endpoint *ep, const kw_sockaddr *to,
                              const uint8_t *p, size_t n);
/* Whether our socket of `family` (4, 6) is open, and its bound address. */
bool kw__magicsock_bound(const kw_endpoint *ep, int family, kw_sockaddr *out);
/* Whether our IPv4 socket sends with UDP_SEGMENT / receives with UDP_GRO
 * (for the endpoint's log). */
void kw__magicsock_offload(const kw_endpoint *ep, bool *gso, bool *gro);
/* Birthday probing's extra sockets (kw__xsock): sends one datagram from
 * the remote's extra socket `sock` (false if it is not open or the send
 * failed; a full socket buffer drops it, counted in xsock_drops). */
bool kw__magicsock_xsend(kw__remote *r, unsigned sock, const kw_sockaddr *to,
                         const uint8_t *p, size_t n);
/* A datagram arrived (UDP or relay): demultiplex it. `from_id` is the
 * sender's id when a relay vouches for it, else NULL. */
void kw__magicsock_input(kw_endpoint *ep, const kw__src *from,
                         const uint8_t *from_id, const uint8_t *data,
                         size_t len);
/* The loop's clock (monotonic ns); inside a receive batch, the batch's
 * arrival time (one clock read per recvmmsg). */
uint64_t kw__now(kw_endpoint *ep);

/* A UDP source sent something undecodable / authenticated (the bounded
 * punishment table of core/addr_filter). */
void kw__magicsock_strike(kw_endpoint *ep, const kw__src *from);
void kw__magicsock_good(kw_endpoint *ep, const kw__src *from);
/* `a` proved itself (a handshake completed from it): trusted as
 * kw__magicsock_good, `why` logged if that lifted a ban. */
void kw__magicsock_trust_addr(kw_endpoint *ep, const kw_sockaddr *a,
                              const char *why);
#endif /* KW_ENDPOINT_MAGICSOCK_H */
