/* SPDX-License-Identifier: MIT */
/*
 * Server credentials for TLS streams: loaded from PEM files, or a fresh
 * self-signed ECDSA P-256 certificate (the relay's default, so clients can
 * trust it with --relay-ca).
 */
#include "net/tls_cred.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>

#include "net/osaddr.h"

kw_err kw__tls_cred_server_load(const char *cert_file, const char *key_file,
                                void **out) {
  if (!cert_file || !key_file || !out)
    return KW_ERR_INVALID_ARG;
  gnutls_certificate_credentials_t cred;
  if (gnutls_certificate_allocate_credentials(&cred) < 0)
    return KW_ERR_NOMEM;
  if (gnutls_certificate_set_x509_key_file(cred, cert_file, key_file,
                                           GNUTLS_X509_FMT_PEM) < 0) {
    gnutls_certificate_free_credentials(cred);
    return KW_ERR_CERT;
  }
  *out = cred;
  return KW_OK;
}

void kw__tls_cred_free(void *cred) {
  if (cred)
    gnutls_certificate_free_credentials(cred);
}

static bool ip_is_wild(const kw_sockaddr *a) {
  static const uint8_t zero[16];
  return memcmp(a->ip, zero, a->family == 4 ? 4 : 16) == 0;
}

static int add_ip(gnutls_x509_crt_t crt, const kw_sockaddr *a) {
  return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, a->ip,
                                              a->family == 4 ? 4u : 16u,
                                              GNUTLS_FSAN_APPEND);
}

static kw_err write_atomic(const char *path, const void *p, size_t n) {
  size_t len = strlen(path);
  char *tmp = malloc(len + 16);
  if (!tmp)
    return KW_ERR_NOMEM;
  snprintf(tmp, len + 16, "%s.tmp%u", path, (unsigned)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    free(tmp);
    return KW_ERR_IO;
  }
  const uint8_t *q = p;
  size_t left = n;
  while (left > 0) {
    ssize_t w = write(fd, q, left);
    if (w <= 0) {
      close(fd);
      unlink(tmp);
      free(tmp);
      return KW_ERR_IO;
    }
    q += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
    unlink(tmp);
    free(tmp);
    return KW_ERR_IO;
  }
  free(tmp);
  return KW_OK;
}

/* Writes the private key's PEM to `path` atomically with mode 0600. */
static kw_err write_key(const char *path, gnutls_x509_privkey_t key) {
  gnutls_datum_t kp = {NULL, 0};
  if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &kp) < 0)
    return KW_ERR_TLS;
  char tmp[4200];
  kw_err err = KW_ERR_IO;
  if (snprintf(tmp, sizeof tmp, "%s.tmp%u", path, (unsigned)getpid()) <
      (int)sizeof tmp) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      bool ok = write(fd, kp.data, kp.size) == (ssize_t)kp.size &&
                fsync(fd) == 0;
      ok = close(fd) == 0 && ok;
      if (ok && rename(tmp, path) == 0)
        err = KW_OK;
      else
        unlink(tmp);
    }
  }
  gnutls_memset(kp.data, 0, kp.size);
  gnutls_free(kp.data);
  return err;
}

static kw_err selfsigned(const kw_sockaddr *listen_ip, const char *cert_out,
                         const char *key_out, void **out);

kw_err kw__tls_cred_server_selfsigned(const kw_sockaddr *listen_ip,
                                      const char *cert_out, void **out) {
  return selfsigned(listen_ip, cert_out, NULL, out);
}

/* True when the PEM certificate in `path` is valid for another 30 days
 * and names `listen_ip` (unless it is a wildcard or NULL). */
static bool cert_still_fits(const char *path, const kw_sockaddr *listen_ip) {
  gnutls_datum_t d = {NULL, 0};
  gnutls_x509_crt_t crt = NULL;
  bool ok = false;
  if (gnutls_load_file(path, &d) < 0)
    return false;
  if (gnutls_x509_crt_init(&crt) >= 0 &&
      gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) >= 0) {
    ok = gnutls_x509_crt_get_expiration_time(crt) > time(NULL) + 30L * 86400;
    if (ok && listen_ip && (listen_ip->family == 4 || listen_ip->family == 6) &&
        !ip_is_wild(listen_ip))
      ok = gnutls_x509_crt_check_ip(crt, listen_ip->ip,
                                    listen_ip->family == 4 ? 4 : 16, 0) != 0;
  }
  if (crt)
    gnutls_x509_crt_deinit(crt);
  gnutls_free(d.data);
  return ok;
}

kw_err kw__tls_cred_server_selfsigned_keep(const kw_sockaddr *listen_ip,
                                           const char *cert_path,
                                           const char *key_path, bool *reused,
                                           void **out) {
  if (!cert_path || !key_path || !out)
    return KW_ERR_INVALID_ARG;
  if (reused)
    *reused = false;
  if (access(cert_path, R_OK) == 0 && access(key_path, R_OK) == 0 &&
      cert_still_fits(cert_path, listen_ip) &&
      kw__tls_cred_server_load(cert_path, key_path, out) == KW_OK) {
    if (reused)
      *reused = true;
    return KW_OK;
  }
  return selfsigned(listen_ip, cert_path, key_path, out);
}

static kw_err selfsigned(const kw_sockaddr *listen_ip, const char *cert_out,
                         const char *key_out, void **out) {
  if (!out)
    return KW_ERR_INVALID_ARG;
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt = NULL;
  gnutls_certificate_credentials_t cred = NULL;
  gnutls_datum_t pem = {NULL, 0};
  kw_err err = KW_ERR_TLS;

  if (gnutls_x509_privkey_init(&key) < 0 ||
      gnutls_x509_privkey_generate(
          key, GNUTLS_PK_ECDSA,
          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0)
    goto out;
  if (gnutls_x509_crt_init(&crt) < 0)
    goto out;
  uint8_t serial[16];
  randombytes_buf(serial, sizeof serial);
  serial[0] &= 0x7f;
  serial[0] |= 0x01;
  time_t now = time(NULL);
  static const char cn[] = "keyway-relay";
  if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
      gnutls_x509_crt_set_serial(crt, serial, sizeof serial) < 0 ||
      gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
      gnutls_x509_crt_set_expiration_time(crt, now + 365L * 86400) < 0 ||
      gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                    sizeof cn - 1) < 0 ||
      gnutls_x509_crt_set_key(crt, key) < 0 ||
      gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
      gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
      gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0)
    goto out;
  if (gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost",
                                           9, GNUTLS_FSAN_APPEND) < 0)
    goto out;
  char host[256];
  if (gethostname(host, sizeof host) == 0) {
    host[sizeof host - 1] = 0;
    if (host[0] && strcmp(host, "localhost") != 0 &&
        gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host,
                                             (unsigned)strlen(host),
                                             GNUTLS_FSAN_APPEND) < 0)
      goto out;
  }
  uv_interface_address_t *ifs = NULL;
  int nifs = 0;
  if (uv_interface_addresses(&ifs, &nifs) == 0) {
    for (int i = 0; i < nifs; i++) {
      kw_sockaddr a;
      kw__sockaddr_from_os((const struct sockaddr *)&ifs[i].address, &a);
      if (a.family &&
          !(listen_ip && listen_ip->family == a.family &&
            memcmp(listen_ip->ip, a.ip, a.family == 4 ? 4 : 16) == 0))
        add_ip(crt, &a);
    }
    uv_free_interface_addresses(ifs, nifs);
  }
  if (listen_ip && (listen_ip->family == 4 || listen_ip->family == 6) &&
      !ip_is_wild(listen_ip) && add_ip(crt, listen_ip) < 0)
    goto out;
  if (gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0)
    goto out;
  if (cert_out) {
    if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem) < 0)
      goto out;
    /* the key first: a certificate on disk always has its key there */
    if (key_out && (err = write_key(key_out, key)) != KW_OK)
      goto out;
    err = write_atomic(cert_out, pem.data, pem.size);
    if (err != KW_OK)
      goto out;
    err = KW_ERR_TLS;
  }
  if (gnutls_certificate_allocate_credentials(&cred) < 0)
    goto out;
  if (gnutls_certificate_set_x509_key(cred, &crt, 1, key) < 0)
    goto out;
  *out = cred;
  cred = NULL;
  err = KW_OK;
out:
  gnutls_free(pem.data);
  if (cred)
    gnutls_certificate_free_credentials(cred);
  if (crt)
    gnutls_x509_crt_deinit(crt);
  if (key)
    gnutls_x509_privkey_deinit(key);
  return err;
}
