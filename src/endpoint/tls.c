/* SPDX-License-Identifier: MIT */
/*
 * TLS 1.3 for QUIC with GnuTLS: the only file that knows GnuTLS.
 *
 * Each endpoint presents a self-signed X.509 certificate holding its
 * Ed25519 key (generated at start-up; nothing but the key in it matters).
 * No CA anywhere: the verify callback pins the key. A client pins the id it
 * dialed; a server requires a client certificate and records its key as the
 * remote's endpoint id. The CertificateVerify message proves possession.
 */
#include "endpoint/tls.h"
#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/quic.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <sodium.h>

/* AES-128-GCM first: it is the fastest on AES-NI machines (measured). */
#define KW_PRIORITY                                                            \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"       \
  "+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"              \
  "%DISABLE_TLS13_COMPAT_MODE"

struct kw__tls_ctx {
  gnutls_certificate_credentials_t cred;
  gnutls_priority_t prio;
};

struct kw__tls_sess {
  gnutls_session_t s;
  bool client;
  uint8_t expect[KW_ID_LEN];
};

static kw_err make_cert(const uint8_t sk[KW_SECRET_KEY_LEN],
                        gnutls_certificate_credentials_t cred) {
  gnutls_privkey_t priv = NULL;
  gnutls_pubkey_t pub = NULL;
  gnutls_x509_crt_t crt = NULL;
  gnutls_pcert_st pcert;
  bool pcert_ok = false;
  kw_err err = KW_ERR_TLS;
  gnutls_datum_t x = {(unsigned char *)sk + 32, 32};
  gnutls_datum_t k = {(unsigned char *)sk, 32};

  if (gnutls_privkey_init(&priv) < 0 ||
      gnutls_privkey_import_ecc_raw(priv, GNUTLS_ECC_CURVE_ED25519, &x, NULL,
                                    &k) < 0)
    goto out;
  if (gnutls_pubkey_init(&pub) < 0 ||
      gnutls_pubkey_import_privkey(pub, priv, 0, 0) < 0)
    goto out;
  if (gnutls_x509_crt_init(&crt) < 0)
    goto out;
  uint8_t serial[16];
  randombytes_buf(serial, sizeof serial);
  serial[0] &= 0x7f;
  char cn[KW_ID_STRLEN + 1];
  uint8_t id[KW_ID_LEN];
  memcpy(id, sk + 32, KW_ID_LEN);
  kw_id_to_string(id, cn, sizeof cn);
  time_t now = time(NULL);
  if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
      gnutls_x509_crt_set_serial(crt, serial, sizeof serial) < 0 ||
      gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
      gnutls_x509_crt_set_expiration_time(crt, now + 10 * 365 * 86400L) < 0 ||
      gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                    (unsigned)strlen(cn)) < 0 ||
      gnutls_x509_crt_set_pubkey(crt, pub) < 0 ||
      gnutls_x509_crt_privkey_sign(crt, crt, priv, GNUTLS_DIG_SHA512, 0) < 0)
    goto out;
  if (gnutls_pcert_import_x509(&pcert, crt, 0) < 0)
    goto out;
  pcert_ok = true;
  /* set_key takes ownership of the key and of the pcert's contents */
  if (gnutls_certificate_set_key(cred, NULL, 0, &pcert, 1, priv) < 0)
    goto out;
  priv = NULL;
  pcert_ok = false;
  err = KW_OK;
out:
  if (pcert_ok)
    gnutls_pcert_deinit(&pcert);
  if (crt)
    gnutls_x509_crt_deinit(crt);
  if (pub)
    gnutls_pubkey_deinit(pub);
  if (priv)
    gnutls_privkey_deinit(priv);
  return err;
}

/* Extracts the Ed25519 key of the peer's leaf certificate. */
static int peer_key(gnutls_session_t s, uint8_t out[KW_ID_LEN]) {
  unsigned n = 0;
  const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
  if (!certs || n == 0)
    return -1;
  gnutls_pubkey_t pub;
  if (gnutls_pubkey_init(&pub) < 0)
    return -1;
  int rc = -1;
  gnutls_ecc_curve_t curve;
  gnutls_datum_t x = {0}, y = {0};
  if (gnutls_pubkey_import_x509_raw(pub, &certs[0], GNUTLS_X509_FMT_DER, 0) >=
          0 &&
      gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, &y, 0) >= 0) {
    if (curve == GNUTLS_ECC_CURVE_ED25519 && x.size == KW_ID_LEN) {
      memcpy(out, x.data, KW_ID_LEN);
      rc = 0;
    }
  }
  gnutls_free(x.data);
  gnutls_free(y.data);
  gnutls_pubkey_deinit(pub);
  return rc;
}

static int verify_cb(gnutls_session_t s) {
  ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(s);
  kw_conn *c = ref->user_data;
  struct kw__tls_sess *ts = kw__conn_tls(c);
  uint8_t got[KW_ID_LEN];
  if (peer_key(s, got) != 0) {
    kw__conn_peer_key(c, KW_ERR_CERT, NULL);
    kw__log(kw__conn_ep(c), KW_LOG_WARN, "tls",
            "tls.bad_cert reason=no_ed25519_key");
    return GNUTLS_E_CERTIFICATE_ERROR;
  }
  if (ts->client && memcmp(got, ts->expect, KW_ID_LEN) != 0) {
    char g[KW_ID_STRLEN + 1], e[KW_ID_STRLEN + 1];
    kw_id_to_string(got, g, sizeof g);
    kw_id_to_string(ts->expect, e, sizeof e);
    kw__conn_peer_key(c, KW_ERR_KEY_MISMATCH, got);
    kw__log(kw__conn_ep(c), KW_LOG_WARN, "tls",
            "tls.key_mismatch presented=%s expected=%s", g, e);
    return GNUTLS_E_CERTIFICATE_ERROR;
  }
  kw__conn_peer_key(c, KW_OK, got);
  return 0;
}

kw_err kw__tls_ctx_new(const uint8_t sk[KW_SECRET_KEY_LEN],
                       struct kw__tls_ctx **out) {
  struct kw__tls_ctx *t = calloc(1, sizeof *t);
  if (!t)
    return KW_ERR_NOMEM;
  if (gnutls_certificate_allocate_credentials(&t->cred) < 0) {
    free(t);
    return KW_ERR_TLS;
  }
  kw_err e = make_cert(sk, t->cred);
  if (e != KW_OK) {
    kw__tls_ctx_free(t);
    return e;
  }
  gnutls_certificate_set_verify_function(t->cred, verify_cb);
  if (gnutls_priority_init(&t->prio, KW_PRIORITY, NULL) < 0) {
    kw__tls_ctx_free(t);
    return KW_ERR_TLS;
  }
  *out = t;
  return KW_OK;
}

void kw__tls_ctx_free(struct kw__tls_ctx *t) {
  if (!t)
    return;
  if (t->prio)
    gnutls_priority_deinit(t->prio);
  if (t->cred)
    gnutls_certificate_free_credentials(t->cred);
  free(t);
}

kw_err kw__tls_sess_new(struct kw__tls_ctx *t, void *conn_ref, bool client,
                        const uint8_t *expect_id, const char *alpn,
                        const char alpns[][256], size_t n_alpns,
                        struct kw__tls_sess **out) {
  struct kw__tls_sess *ts = calloc(1, sizeof *ts);
  if (!ts)
    return KW_ERR_NOMEM;
  ts->client = client;
  if (expect_id)
    memcpy(ts->expect, expect_id, KW_ID_LEN);
  unsigned flags =
      (client ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_NO_END_OF_EARLY_DATA;
  if (!client)
    flags |= GNUTLS_NO_AUTO_SEND_TICKET;
  if (gnutls_init(&ts->s, flags) < 0) {
    free(ts);
    return KW_ERR_TLS;
  }
  int rv = client ? ngtcp2_crypto_gnutls_configure_client_session(ts->s)
                  : ngtcp2_crypto_gnutls_configure_server_session(ts->s);
  if (rv != 0 || gnutls_priority_set(ts->s, t->prio) < 0 ||
      gnutls_credentials_set(ts->s, GNUTLS_CRD_CERTIFICATE, t->cred) < 0)
    goto fail;
  gnutls_datum_t protos[KW_MAX_ALPNS];
  size_t np = 0;
  if (client) {
    protos[0].data = (unsigned char *)alpn;
    protos[0].size = (unsigned)strlen(alpn);
    np = 1;
  } else {
    for (size_t i = 0; i < n_alpns && i < KW_MAX_ALPNS; i++) {
      protos[np].data = (unsigned char *)alpns[i];
      protos[np].size = (unsigned)strlen(alpns[i]);
      np++;
    }
    gnutls_certificate_server_set_request(ts->s, GNUTLS_CERT_REQUIRE);
  }
  if (np && gnutls_alpn_set_protocols(ts->s, protos, (unsigned)np,
                                      client ? 0 : GNUTLS_ALPN_MANDATORY) < 0)
    goto fail;
  gnutls_session_set_ptr(ts->s, conn_ref);
  *out = ts;
  return KW_OK;
fail:
  gnutls_deinit(ts->s);
  free(ts);
  return KW_ERR_TLS;
}

void kw__tls_sess_free(struct kw__tls_sess *s) {
  if (!s)
    return;
  gnutls_deinit(s->s);
  free(s);
}

void *kw__tls_sess_native(struct kw__tls_sess *s) {
  return s->s;
}

void kw__tls_sess_alpn(struct kw__tls_sess *s, char *out, size_t outlen) {
  gnutls_datum_t p;
  out[0] = 0;
  if (gnutls_alpn_get_selected_protocol(s->s, &p) == 0 && p.size < outlen) {
    memcpy(out, p.data, p.size);
    out[p.size] = 0;
  }
}

const char *kw__tls_sess_cipher(struct kw__tls_sess *s) {
  return gnutls_cipher_get_name(gnutls_cipher_get(s->s));
}
