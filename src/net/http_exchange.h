/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 over a TLS stream (net/tls_stream.h), the one copy every side
 * uses: the relay client's upgrade, the lookup client's requests and the
 * relay server's endpoints (docs/protocol/relay.md). Parsing is core's
 * (core/http.h, core/relay_proto.h); this module holds the bytes and moves
 * them.
 *
 * kw__http_rx: the bounded buffer a message head (and body) collects in
 * while it arrives in on_data pieces. Whatever follows the message (the
 * next request, relay frames after an upgrade) stays in it for the caller.
 *
 * kw__http_respond: a server's answer (head + body in one write).
 *
 * kw__http_exchange: a client's one-shot request on its own connection
 * ("Connection: close"); the callback gets the response once.
 */
#ifndef KW_NET_HTTP_EXCHANGE_H
#define KW_NET_HTTP_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "keyway.h"
#include "net/tls_stream.h"

typedef struct kw__http_rx {
  uint8_t *buf; /* allocated on the first append, cap bytes */
  size_t len, cap;
} kw__http_rx;

/* An empty buffer that will hold at most `cap` bytes. */
void kw__http_rx_init(kw__http_rx *rx, size_t cap);
/* Frees the bytes; the buffer is empty (and reusable) afterwards. */
void kw__http_rx_free(kw__http_rx *rx);
/* Appends as much of p[0..n) as fits; *taken says how much (0 when full).
 * KW_ERR_NOMEM: the buffer could not be allocated (nothing taken). */
kw_err kw__http_rx_append(kw__http_rx *rx, const uint8_t *p, size_t n,
                          size_t *taken);
/* Drops the first `n` bytes (a message handled). */
void kw__http_rx_consume(kw__http_rx *rx, size_t n);
/* Moves the buffer out (to hand its tail to another parser): *out gets
 * it, `rx` is empty. The caller frees out with kw__http_rx_free. */
void kw__http_rx_take(kw__http_rx *rx, kw__http_rx *out);

/* Writes a response head (core/http.h kw__http_resp_head) and `body` in
 * one write; with `close`, a graceful close follows. KW_ERR_STATE: the
 * head could not be built, the stream is aborted. Write errors are left
 * to the stream's on_close. */
kw_err kw__http_respond(kw__tls_stream *s, int status, const char *ctype,
                        const uint8_t *body, size_t blen, bool close);

/* The answer of a kw__http_exchange, exactly once: err KW_OK with the
 * status and body (valid only during the call), KW_ERR_PARSE (bad or
 * oversized response), or the stream's error (KW_ERR_CLOSED when it ended
 * before a whole response, KW_ERR_CERT, KW_ERR_TIMEOUT...). */
typedef void (*kw__http_exchange_cb)(kw_err err, int status,
                                     const uint8_t *body, size_t len,
                                     void *arg);

/* Connects to `to` (TLS name check against `host`, CA file `ca_file` or
 * the system store when NULL), sends `method` `path` with `body` (a GET
 * sends neither a body nor Content-Length), reads a response of at most
 * `max_resp` bytes, calls cb and closes. On an error return nothing runs.
 * Errors: KW_ERR_INVALID_ARG (request head too long), KW_ERR_NOMEM, and
 * those of kw__tls_stream_connect. */
kw_err kw__http_exchange(uv_loop_t *loop, const kw_sockaddr *to,
                         const char *host, const char *ca_file,
                         const char *method, const char *path,
                         const uint8_t *body, size_t bodylen, size_t max_resp,
                         kw__http_exchange_cb cb, void *arg);

#endif /* KW_NET_HTTP_EXCHANGE_H */
