/* SPDX-License-Identifier: MIT */
/*
 * Server credentials for TLS streams (net/tls_stream.h): PEM files, or a
 * self-signed ECDSA P-256 certificate made at start-up and optionally kept
 * across restarts. A credential is a gnutls_certificate_credentials_t shown
 * as void *. Used by keyway-relay and the tests' TLS servers; the QUIC
 * handshake's own Ed25519 certificate is src/endpoint/tls.c's.
 */
#ifndef KW_NET_TLS_CRED_H
#define KW_NET_TLS_CRED_H

#include <stdbool.h>

#include "keyway.h"

/* Loads a server certificate chain and key from PEM files. */
kw_err kw__tls_cred_server_load(const char *cert_file, const char *key_file,
                                void **out);
/* Generates a self-signed ECDSA P-256 server certificate valid for one
 * year, with subject alternative names for "localhost", the host name,
 * every IP address of the machine's interfaces and `listen_ip` (when not
 * NULL and not a wildcard). Writes the certificate's PEM to `cert_out`
 * (atomically, mode 0644) unless it is NULL. */
kw_err kw__tls_cred_server_selfsigned(const kw_sockaddr *listen_ip,
                                      const char *cert_out, void **out);
/* The same, kept across restarts: loads `cert_path` / `key_path` when both
 * exist, the certificate is valid for 30 more days and names `listen_ip`;
 * else generates them and writes both (the key with mode 0600, before the
 * certificate). `*reused` (may be NULL) says which. */
kw_err kw__tls_cred_server_selfsigned_keep(const kw_sockaddr *listen_ip,
                                           const char *cert_path,
                                           const char *key_path, bool *reused,
                                           void **out);
void kw__tls_cred_free(void *cred);

#endif /* KW_NET_TLS_CRED_H */
