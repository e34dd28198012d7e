/* SPDX-License-Identifier: MIT */
/*
 * TLS 1.3 for QUIC (tls.c, the only file that knows GnuTLS): the
 * endpoint's credentials and one session per connection, both opaque.
 */
#ifndef KW_ENDPOINT_TLS_H
#define KW_ENDPOINT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

struct kw__tls_ctx;
struct kw__tls_sess;

kw_err kw__tls_ctx_new(const uint8_t sk[KW_SECRET_KEY_LEN],
                       struct kw__tls_ctx **out);
void kw__tls_ctx_free(struct kw__tls_ctx *t);
/* Creates a session for a connection (`conn_ref`: its
 * ngtcp2_crypto_conn_ref, whose user_data is the kw_conn); a client pins
 * `expect_id`, offers `alpn`. The certificate check reports to the
 * connection through kw__conn_peer_key. */
kw_err kw__tls_sess_new(struct kw__tls_ctx *t, void *conn_ref, bool client,
                        const uint8_t *expect_id, const char *alpn,
                        const char alpns[][256], size_t n_alpns,
                        struct kw__tls_sess **out);
void kw__tls_sess_free(struct kw__tls_sess *s);
void *kw__tls_sess_native(struct kw__tls_sess *s);
/* After the handshake: copies the negotiated ALPN. */
void kw__tls_sess_alpn(struct kw__tls_sess *s, char *out, size_t outlen);
/* The negotiated cipher's name, for logs. */
const char *kw__tls_sess_cipher(struct kw__tls_sess *s);

#endif
