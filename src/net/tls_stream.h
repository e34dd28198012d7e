/* SPDX-License-Identifier: MIT */
/*
 * TLS over a libuv TCP connection (GnuTLS with memory push/pull functions
 * driven by uv_read): the transport of the relay protocol, both for the
 * endpoint's relay client and for keyway-relay itself.
 *
 * Life cycle: a stream starts with kw__tls_stream_connect (client) or
 * kw__tls_stream_accept (server). on_open runs once the handshake is done;
 * on_data delivers decrypted bytes in batches (up to 64 KiB at a time);
 * on_close runs exactly once, asynchronously, and the stream is freed after
 * it returns. Every callback runs on the loop thread.
 *
 * on_close codes: KW_OK after kw__tls_stream_close, KW_ERR_CLOSED when the
 * peer ended the connection (close_notify or TCP EOF), KW_ERR_CERT when the
 * peer's certificate failed verification, KW_ERR_TLS for any other TLS
 * failure, KW_ERR_TIMEOUT when connect + handshake took longer than 10 s,
 * KW_ERR_IO for a socket error (refused, reset...).
 *
 * Writing: kw__tls_stream_write takes all bytes or none. Bytes written in
 * one loop iteration are coalesced into full TLS records and flushed at
 * the end of the iteration (or as soon as 64 KiB are pending). When more
 * than the high watermark (1 MiB by default) would be queued it returns
 * KW_ERR_FULL and takes nothing; on_writable follows once the queue fell
 * below a quarter of the high watermark. Writes before on_open are kept
 * and sent after the handshake.
 *
 * Closing: kw__tls_stream_close is graceful: queued bytes are still sent,
 * then close_notify and a TCP FIN; the connection is torn down when the
 * peer closes too or after a short linger (500 ms).
 *
 * Server credentials (net/tls_cred.h) are a
 * gnutls_certificate_credentials_t shown as void *.
 */
#ifndef KW_NET_TLS_STREAM_H
#define KW_NET_TLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "keyway.h"

#define KW_TLS_STREAM_HWM (1u << 20)
#define KW_TLS_STREAM_HANDSHAKE_MS 10000
#define KW_TLS_STREAM_LINGER_MS 500

typedef struct kw__tls_stream kw__tls_stream;

typedef struct kw__tls_stream_cbs {
  /* The handshake is done. */
  void (*on_open)(kw__tls_stream *s, void *ud);
  /* Decrypted bytes; valid only during the call. */
  void (*on_data)(kw__tls_stream *s, const uint8_t *p, size_t n, void *ud);
  /* The queue fell below the low watermark after a KW_ERR_FULL. */
  void (*on_writable)(kw__tls_stream *s, void *ud);
  /* Exactly once; `s` is freed after it returns. */
  void (*on_close)(kw__tls_stream *s, kw_err err, void *ud);
} kw__tls_stream_cbs;

/* Client: TCP connect to `to`, then TLS with SNI and certificate name check
 * against `host` (a DNS name or an IP literal; an IP is matched against the
 * certificate's IP SANs and not sent as SNI). `ca_file`: a PEM file of
 * trusted certificates, or NULL for the system trust store. On an error
 * return no callback runs and *out is untouched. */
kw_err kw__tls_stream_connect(uv_loop_t *loop, const kw_sockaddr *to,
                              const char *host, const char *ca_file,
                              const kw__tls_stream_cbs *cbs, void *ud,
                              kw__tls_stream **out);

/* Server: wraps an accepted TCP handle. `tcp` must have been allocated with
 * malloc and initialised on `loop`; its ownership passes in even when an
 * error is returned (then it is closed and freed, and no callback runs).
 * `server_cred` is a gnutls_certificate_credentials_t, which must outlive
 * the stream. */
kw_err kw__tls_stream_accept(uv_loop_t *loop, uv_tcp_t *tcp, void *server_cred,
                             const kw__tls_stream_cbs *cbs, void *ud,
                             kw__tls_stream **out);

/* Queues `n` bytes. KW_ERR_FULL (nothing taken) when the queue already
 * holds bytes and `n` more would pass the high watermark; KW_ERR_CLOSED
 * once closing. */
kw_err kw__tls_stream_write(kw__tls_stream *s, const uint8_t *p, size_t n);
/* Like kw__tls_stream_write for several pieces at once (all or nothing);
 * the pieces end up in the same TLS records. */
kw_err kw__tls_stream_writev(kw__tls_stream *s, const uv_buf_t *bufs,
                             size_t nbufs);
/* Bytes accepted by write but not yet handed to the kernel. */
size_t kw__tls_stream_queued(const kw__tls_stream *s);
/* Changes the high watermark (bytes; the low watermark is a quarter). */
void kw__tls_stream_set_hwm(kw__tls_stream *s, size_t hwm);
/* Stops (true) or restarts (false) reading: back-pressure. */
void kw__tls_stream_pause(kw__tls_stream *s, bool paused);
/* Graceful close; idempotent; on_close(KW_OK) follows asynchronously. */
void kw__tls_stream_close(kw__tls_stream *s);
/* Immediate close without flushing (on_close(err) follows, async). */
void kw__tls_stream_abort(kw__tls_stream *s, kw_err err);
/* True once on_open ran and until closing starts. */
bool kw__tls_stream_is_open(const kw__tls_stream *s);
/* The TCP peer's address. */
bool kw__tls_stream_peer_addr(const kw__tls_stream *s, kw_sockaddr *out);
/* The negotiated TLS version and cipher, e.g. "TLS1.3 AES-128-GCM", for
 * logs; "" before the handshake. */
const char *kw__tls_stream_cipher(const kw__tls_stream *s, char *buf,
                                  size_t buflen);

/* The TLS exporter value (RFC 8446 section 7.5, RFC 5705) of the session
 * under `label` with an empty context: n bytes both ends compute alike and
 * no other session shares. Errors: KW_ERR_STATE (not open), KW_ERR_TLS
 * (TLS 1.2 without the extended master secret, or a GnuTLS failure). */
kw_err kw__tls_stream_exporter(const kw__tls_stream *s, const char *label,
                               uint8_t *out, size_t n);

#endif /* KW_NET_TLS_STREAM_H */
