/* SPDX-License-Identifier: MIT */
/*
 * The QUIC module's interface to the rest of the endpoint (quic.c,
 * quic_stream.c, quic_path.c): connections and streams are opaque here
 * (their structs and the module's state, struct kw__quic, are defined in
 * quic_conn.h, which only quic*.c include); the magicsock, disco, TLS and
 * the endpoint reach them through these functions.
 */
#ifndef KW_ENDPOINT_QUIC_H
#define KW_ENDPOINT_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

typedef struct kw__remote kw__remote;
typedef struct kw__src kw__src;
struct kw__tls_sess;
struct kw__quic;

/* The module's state of an endpoint: created by kw_endpoint_new (after
 * the configuration is copied: the connection-id table is sized by
 * max_conns), freed by kw_endpoint_free after every connection is gone. */
kw_err kw__quic_new(kw_endpoint *ep, struct kw__quic **out);
void kw__quic_free(struct kw__quic *q);
/* Adds the module's counters to `out` (+=) and sets the gauges
 * handshakes_in_progress and send_buffered (kw_endpoint_stats_get). */
void kw__quic_stats(const kw_endpoint *ep, kw_endpoint_stats *out);
/* How many connections exist (handshakes included), for logs. */
unsigned kw__quic_nconns(const kw_endpoint *ep);

/* Incoming handshakes (docs/PROTOCOL.md, "Handshakes in progress"): past
 * KW_RETRY_THRESHOLD of them, an Initial without a valid Retry token is
 * answered with a Retry; at most KW_HALFOPEN_MAX exist at once (further
 * Initials are dropped; kw_config_set_retry_threshold sets the first
 * bound); once half of them are taken, a source address (or
 * relayed id) that holds KW_HALFOPEN_PER_SRC gets no more; each must
 * complete within
 * KW_HALFOPEN_TIMEOUT_MS. Established connections are counted apart,
 * against kw_config_set_max_conns. */
#define KW_RETRY_THRESHOLD 16
#define KW_HALFOPEN_MAX 128
#define KW_HALFOPEN_PER_SRC 8
#define KW_HALFOPEN_TIMEOUT_MS 5000
#define KW_RETRY_TOKEN_TIMEOUT_MS 5000

/* Dead peer: an established connection with ack-eliciting data in flight
 * that hears nothing from the remote for KW_DEAD_PEER_MS (or 6 PTOs, if
 * longer; and at least half that since the data went in flight) closes
 * with KW_ERR_UNREACHABLE. A receiver has something in flight once its
 * keep-alive PING is out. Longer than a path switch: a
 * direct path is declared dead after 5 s of silence and the relay takes
 * over (core/remote.h), which answers again well within the rest. */
#define KW_DEAD_PEER_MS 10000
#define KW_DEAD_PEER_PTOS 6

/* Connections, streams, their chunks and queued datagrams are the QUIC
 * module's own (quic*.c): defined in quic_conn.h, which no other file
 * includes (tests/layers checks it). The rest of the endpoint reaches a
 * connection through the kw__conn_* functions below. */
typedef struct kw__chunk kw__chunk;
typedef struct kw__dgram kw__dgram;

/* What the magicsock, disco and TLS need of a connection (quic.c). */
kw_endpoint *kw__conn_ep(const kw_conn *c);
kw__remote *kw__conn_remote(const kw_conn *c);
/* The handshake completed and no close is decided yet. */
bool kw__conn_established(const kw_conn *c);
/* The remote's paths-table RTT slot of the connection, -1 for none. */
int kw__conn_rtt_slot(const kw_conn *c);
/* Every connection of `r` is flushed on this loop turn (its selected path
 * changed: the flush sends on the new one and reports it). */
void kw__conn_mark_dirty_remote(kw__remote *r);
/* Every connection of `from` becomes one of `to` (kw__remote_set_id
 * merges an inbound remote into the existing one of its id); QUIC's view
 * of the peer (its mapped address) stays the same. */
void kw__conn_move_remote(kw__remote *from, kw__remote *to);
/* Forgets the batch that hit EAGAIN (loss recovery resends it). */
void kw__conn_drop_pending(kw_conn *c);
/* Flushes every connection marked dirty this loop turn (a few rounds:
 * a flush may dirty another); kw__conn_reap frees those that closed. */
void kw__conn_flush_dirty(kw_endpoint *ep);
/* The connection's TLS session, and what its certificate check found
 * (tls.c, during the handshake): `err` KW_OK with the peer's key, or the
 * failure (KW_ERR_CERT without a key, KW_ERR_KEY_MISMATCH with the key
 * presented) the connection closes with. */
struct kw__tls_sess *kw__conn_tls(const kw_conn *c);
void kw__conn_peer_key(kw_conn *c, kw_err err, const uint8_t *id);

kw_err kw__conn_client_new(kw_endpoint *ep, kw__remote *r, const char *alpn,
                           kw_connect_cb cb, void *arg, kw_conn **out);
/* A QUIC packet's destination connection id (pointing into data): false
 * when the bytes are not a QUIC packet of a version keyway speaks (quic.c,
 * so that only the QUIC module knows ngtcp2). */
bool kw__quic_dcid(const uint8_t *data, size_t len, const uint8_t **dcid,
                   size_t *dcidlen);
/* The connection a packet with this destination connection id belongs
 * to, or NULL. */
kw_conn *kw__quic_conn_by_dcid(kw_endpoint *ep, const uint8_t *dcid,
                               size_t dcidlen);
/* Handles a datagram whose connection id is unknown: maybe a new incoming
 * connection. */
void kw__conn_accept(kw_endpoint *ep, const kw__src *from,
                     const uint8_t *from_id, const uint8_t *data, size_t len);
void kw__conn_recv(kw_conn *c, const kw__src *from, const uint8_t *data,
                   size_t len);
void kw__conn_mark_dirty(kw_conn *c);
/* Writes everything QUIC wants to send now and re-arms the timer. */
void kw__conn_flush(kw_conn *c);
/* Blocked socket became writable. */
void kw__conn_retry_pending(kw_conn *c);
/* Closes every connection now (endpoint shutdown): sends CONNECTION_CLOSE. */
void kw__conn_shutdown_all(kw_endpoint *ep);
/* Frees connections marked closing. */
void kw__conn_reap(kw_endpoint *ep);

#endif
