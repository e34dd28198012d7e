/* SPDX-License-Identifier: MIT */
/* Relay framing, authentication and upgrade handshake. See relay_proto.h
 * and docs/protocol/relay.md. */
#include "core/relay_proto.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/http.h"

/* Payload lengths allowed per type, before the decoder's own limit. */
static bool len_range(uint8_t type, uint32_t *lo, uint32_t *hi) {
  switch (type) {
  case KW_RELAY_SERVER_CHALLENGE:
    *lo = *hi = 1 + KW_RELAY_CHALLENGE_LEN + 8;
    return true;
  case KW_RELAY_CLIENT_AUTH:
    *lo = *hi = KW_ID_LEN + KW_RELAY_SIG_LEN;
    return true;
  case KW_RELAY_SERVER_INFO:
    *lo = *hi = KW_RELAY_INFO_LEN;
    return true;
  case KW_RELAY_SEND_PACKET:
  case KW_RELAY_RECV_PACKET:
    *lo = KW_ID_LEN;
    *hi = KW_RELAY_MAX_FRAME;
    return true;
  case KW_RELAY_PING:
  case KW_RELAY_PONG:
    *lo = *hi = KW_RELAY_NONCE_LEN;
    return true;
  case KW_RELAY_PEER_GONE:
    *lo = *hi = KW_ID_LEN + 1;
    return true;
  case KW_RELAY_HEALTH:
  case KW_RELAY_CLOSE:
    *lo = 1;
    *hi = 1 + KW_RELAY_MAX_TEXT;
    return true;
  default:
    return false;
  }
}

bool kw__relay_len_ok(uint8_t type, uint32_t len, uint32_t max_frame) {
  uint32_t lo, hi;
  if (!len_range(type, &lo, &hi))
    return false;
  return len >= lo && len <= hi && len <= max_frame;
}

/* ---- decoder ----------------------------------------------------------- */

#define DEC_MIN_FRAME 1024 /* smaller limits are raised to this */
#define DEC_KEEP_BUF 4096  /* a larger gather buffer is freed after use */

void kw__relay_dec_init(kw__relay_dec *d, uint32_t max_frame) {
  memset(d, 0, sizeof(*d));
  if (max_frame == 0 || max_frame > KW_RELAY_MAX_FRAME)
    max_frame = KW_RELAY_MAX_FRAME;
  if (max_frame < DEC_MIN_FRAME)
    max_frame = DEC_MIN_FRAME;
  d->max_frame = max_frame;
}

void kw__relay_dec_free(kw__relay_dec *d) {
  free(d->buf);
  d->buf = NULL;
  d->cap = 0;
}

kw_err kw__relay_dec_next(kw__relay_dec *d, const uint8_t **in, size_t *inlen,
                          kw__relay_frame *f) {
  if (d->failed)
    return KW_ERR_PARSE;
  const uint8_t *p = *in;
  size_t n = *inlen;

  for (;;) {
    if (d->hdr_have < KW_RELAY_FRAME_HDR) {
      size_t take = KW_RELAY_FRAME_HDR - d->hdr_have;
      if (take > n)
        take = n;
      if (take)
        memcpy(d->hdr + d->hdr_have, p, take);
      d->hdr_have = (uint8_t)(d->hdr_have + take);
      p += take;
      n -= take;
      if (d->hdr_have < KW_RELAY_FRAME_HDR)
        break; /* need more */
      kw__rbuf r;
      kw__rbuf_init(&r, d->hdr + 1, 4);
      uint32_t len = kw__rbuf_u32(&r);
      if (!kw__relay_len_ok(d->hdr[0], len, d->max_frame)) {
        d->failed = true;
        *in = p;
        *inlen = n;
        return KW_ERR_PARSE;
      }
      d->need = len;
      d->have = 0;
    }

    /* Zero-copy: the whole payload is in this chunk, nothing gathered. */
    if (d->have == 0 && n >= d->need) {
      f->type = d->hdr[0];
      f->len = d->need;
      f->payload = p;
      p += d->need;
      n -= d->need;
      d->hdr_have = 0;
      *in = p;
      *inlen = n;
      return KW_OK;
    }
    if (n == 0)
      break;

    if (d->cap < d->need) {
      uint8_t *nb = realloc(d->buf, d->need);
      if (!nb) {
        *in = p;
        *inlen = n;
        return KW_ERR_NOMEM;
      }
      d->buf = nb;
      d->cap = d->need;
    }
    size_t take = d->need - d->have;
    if (take > n)
      take = n;
    memcpy(d->buf + d->have, p, take);
    d->have += (uint32_t)take;
    p += take;
    n -= take;
    if (d->have == d->need) {
      f->type = d->hdr[0];
      f->len = d->need;
      f->payload = d->buf;
      d->hdr_have = 0;
      d->have = 0;
      *in = p;
      *inlen = n;
      return KW_OK;
    }
    break; /* n == 0 */
  }
  /* Release a big gather buffer while idle between frames. */
  if (d->hdr_have == 0 && d->cap > DEC_KEEP_BUF)
    kw__relay_dec_free(d);
  *in = p;
  *inlen = n;
  return KW_ERR_AGAIN;
}

/* ---- payloads ---------------------------------------------------------- */

bool kw__utf8_valid(const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t extra;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      return false;
    }
    if (len - i - 1 < extra)
      return false;
    for (size_t k = 1; k <= extra; k++) {
      uint8_t cc = p[i + k];
      if ((cc & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += extra + 1;
  }
  return true;
}

kw_err kw__relay_parse(const kw__relay_frame *f, kw__relay_msg *m) {
  if (!f || !m || (f->len && !f->payload))
    return KW_ERR_INVALID_ARG;
  if (!kw__relay_len_ok(f->type, f->len, KW_RELAY_MAX_FRAME))
    return KW_ERR_PARSE;
  memset(m, 0, sizeof(*m));
  m->type = f->type;
  kw__rbuf r;
  kw__rbuf_init(&r, f->payload, f->len);
  switch (f->type) {
  case KW_RELAY_SERVER_CHALLENGE:
    m->version = kw__rbuf_u8(&r);
    kw__rbuf_copy(&r, m->challenge, KW_RELAY_CHALLENGE_LEN);
    m->time_us = kw__rbuf_u64(&r);
    if (m->version != KW_RELAY_VERSION && m->version != KW_RELAY_VERSION_V1)
      return KW_ERR_PARSE;
    break;
  case KW_RELAY_CLIENT_AUTH:
    kw__rbuf_copy(&r, m->id, KW_ID_LEN);
    kw__rbuf_copy(&r, m->sig, KW_RELAY_SIG_LEN);
    break;
  case KW_RELAY_SERVER_INFO:
    m->info.max_frame = kw__rbuf_u32(&r);
    m->info.rate_bytes = kw__rbuf_u64(&r);
    m->info.burst_bytes = kw__rbuf_u32(&r);
    m->info.keepalive_s = kw__rbuf_u16(&r);
    m->info.queue_pkts = kw__rbuf_u16(&r);
    break;
  case KW_RELAY_SEND_PACKET:
  case KW_RELAY_RECV_PACKET:
    kw__rbuf_copy(&r, m->id, KW_ID_LEN);
    m->data_len = kw__rbuf_left(&r);
    m->data = kw__rbuf_take(&r, m->data_len);
    break;
  case KW_RELAY_PING:
  case KW_RELAY_PONG:
    kw__rbuf_copy(&r, m->nonce, KW_RELAY_NONCE_LEN);
    break;
  case KW_RELAY_PEER_GONE:
    kw__rbuf_copy(&r, m->id, KW_ID_LEN);
    m->code = kw__rbuf_u8(&r);
    break;
  case KW_RELAY_HEALTH:
  case KW_RELAY_CLOSE:
    m->code = kw__rbuf_u8(&r);
    m->text_len = kw__rbuf_left(&r);
    m->text = (const char *)kw__rbuf_take(&r, m->text_len);
    if (!kw__utf8_valid((const uint8_t *)m->text, m->text_len))
      return KW_ERR_PARSE;
    break;
  default:
    return KW_ERR_PARSE;
  }
  if (r.err || kw__rbuf_left(&r) != 0)
    return KW_ERR_PARSE;
  return KW_OK;
}

kw_err kw__relay_encode(const kw__relay_msg *m, uint8_t *out, size_t cap,
                        size_t *outlen) {
  if (!m || !outlen || (!out && cap))
    return KW_ERR_INVALID_ARG;
  uint32_t lo, hi;
  if (!len_range(m->type, &lo, &hi))
    return KW_ERR_INVALID_ARG;
  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  kw__wbuf_u8(&w, m->type);
  kw__wbuf_u32(&w, 0); /* length, patched below */
  switch (m->type) {
  case KW_RELAY_SERVER_CHALLENGE:
    if (m->version != 0 && m->version != KW_RELAY_VERSION &&
        m->version != KW_RELAY_VERSION_V1)
      return KW_ERR_INVALID_ARG;
    kw__wbuf_u8(&w, m->version ? m->version : KW_RELAY_VERSION);
    kw__wbuf_bytes(&w, m->challenge, KW_RELAY_CHALLENGE_LEN);
    kw__wbuf_u64(&w, m->time_us);
    break;
  case KW_RELAY_CLIENT_AUTH:
    kw__wbuf_bytes(&w, m->id, KW_ID_LEN);
    kw__wbuf_bytes(&w, m->sig, KW_RELAY_SIG_LEN);
    break;
  case KW_RELAY_SERVER_INFO:
    kw__wbuf_u32(&w, m->info.max_frame);
    kw__wbuf_u64(&w, m->info.rate_bytes);
    kw__wbuf_u32(&w, m->info.burst_bytes);
    kw__wbuf_u16(&w, m->info.keepalive_s);
    kw__wbuf_u16(&w, m->info.queue_pkts);
    break;
  case KW_RELAY_SEND_PACKET:
  case KW_RELAY_RECV_PACKET:
    if (m->data_len > KW_RELAY_MAX_PACKET || (m->data_len && !m->data))
      return KW_ERR_INVALID_ARG;
    kw__wbuf_bytes(&w, m->id, KW_ID_LEN);
    kw__wbuf_bytes(&w, m->data, m->data_len);
    break;
  case KW_RELAY_PING:
  case KW_RELAY_PONG:
    kw__wbuf_bytes(&w, m->nonce, KW_RELAY_NONCE_LEN);
    break;
  case KW_RELAY_PEER_GONE:
    kw__wbuf_bytes(&w, m->id, KW_ID_LEN);
    kw__wbuf_u8(&w, m->code);
    break;
  case KW_RELAY_HEALTH:
  case KW_RELAY_CLOSE:
    if (m->text_len > KW_RELAY_MAX_TEXT || (m->text_len && !m->text) ||
        !kw__utf8_valid((const uint8_t *)m->text, m->text_len))
      return KW_ERR_INVALID_ARG;
    kw__wbuf_u8(&w, m->code);
    kw__wbuf_bytes(&w, m->text, m->text_len);
    break;
  }
  if (w.err)
    return KW_ERR_BUFFER;
  uint32_t len = (uint32_t)(w.off - KW_RELAY_FRAME_HDR);
  out[1] = (uint8_t)(len >> 24);
  out[2] = (uint8_t)(len >> 16);
  out[3] = (uint8_t)(len >> 8);
  out[4] = (uint8_t)len;
  *outlen = w.off;
  return KW_OK;
}

kw_err kw__relay_packet_hdr(uint8_t out[KW_RELAY_PACKET_HDR], uint8_t type,
                            const uint8_t id[KW_ID_LEN], size_t datalen) {
  if (!out || !id || datalen > KW_RELAY_MAX_PACKET ||
      (type != KW_RELAY_SEND_PACKET && type != KW_RELAY_RECV_PACKET))
    return KW_ERR_INVALID_ARG;
  kw__wbuf w;
  kw__wbuf_init(&w, out, KW_RELAY_PACKET_HDR);
  kw__wbuf_u8(&w, type);
  kw__wbuf_u32(&w, (uint32_t)(KW_ID_LEN + datalen));
  kw__wbuf_bytes(&w, id, KW_ID_LEN);
  return w.err ? KW_ERR_BUFFER : KW_OK;
}

/* ---- authentication ---------------------------------------------------- */

#define AUTH_CTX_LEN (sizeof(KW_RELAY_AUTH_CONTEXT) - 1)

static void auth_message(uint8_t msg[AUTH_CTX_LEN + KW_RELAY_CHALLENGE_LEN],
                         const uint8_t challenge[KW_RELAY_CHALLENGE_LEN]) {
  memcpy(msg, KW_RELAY_AUTH_CONTEXT, AUTH_CTX_LEN);
  memcpy(msg + AUTH_CTX_LEN, challenge, KW_RELAY_CHALLENGE_LEN);
}

kw_err kw__relay_auth_sign(const uint8_t sk[KW_SECRET_KEY_LEN],
                           const uint8_t challenge[KW_RELAY_CHALLENGE_LEN],
                           uint8_t sig[KW_RELAY_SIG_LEN]) {
  if (!sk || !challenge || !sig)
    return KW_ERR_INVALID_ARG;
  uint8_t msg[AUTH_CTX_LEN + KW_RELAY_CHALLENGE_LEN];
  auth_message(msg, challenge);
  if (crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk) != 0)
    return KW_ERR_INVALID_ARG;
  return KW_OK;
}

kw_err kw__relay_auth_verify(const uint8_t id[KW_ID_LEN],
                             const uint8_t challenge[KW_RELAY_CHALLENGE_LEN],
                             const uint8_t sig[KW_RELAY_SIG_LEN]) {
  if (!id || !challenge || !sig)
    return KW_ERR_INVALID_ARG;
  uint8_t msg[AUTH_CTX_LEN + KW_RELAY_CHALLENGE_LEN];
  auth_message(msg, challenge);
  if (crypto_sign_verify_detached(sig, msg, sizeof(msg), id) != 0)
    return KW_ERR_KEY_MISMATCH;
  return KW_OK;
}

#define AUTH2_CTX_LEN (sizeof(KW_RELAY_AUTH_CONTEXT_V2) - 1)
#define AUTH2_MAX                                                              \
  (AUTH2_CTX_LEN + KW_RELAY_CHALLENGE_LEN + KW_RELAY_EXPORTER_LEN + 1 +        \
   KW_RELAY_NAME_MAX)

static size_t auth2_message(uint8_t msg[AUTH2_MAX],
                            const uint8_t challenge[KW_RELAY_CHALLENGE_LEN],
                            const uint8_t exporter[KW_RELAY_EXPORTER_LEN],
                            const char *name) {
  size_t nlen = strlen(name);
  if (nlen == 0 || nlen > KW_RELAY_NAME_MAX)
    return 0;
  size_t n = 0;
  memcpy(msg, KW_RELAY_AUTH_CONTEXT_V2, AUTH2_CTX_LEN);
  n += AUTH2_CTX_LEN;
  memcpy(msg + n, challenge, KW_RELAY_CHALLENGE_LEN);
  n += KW_RELAY_CHALLENGE_LEN;
  memcpy(msg + n, exporter, KW_RELAY_EXPORTER_LEN);
  n += KW_RELAY_EXPORTER_LEN;
  msg[n++] = (uint8_t)nlen;
  memcpy(msg + n, name, nlen);
  return n + nlen;
}

kw_err kw__relay_auth2_sign(const uint8_t sk[KW_SECRET_KEY_LEN],
                            const uint8_t challenge[KW_RELAY_CHALLENGE_LEN],
                            const uint8_t exporter[KW_RELAY_EXPORTER_LEN],
                            const char *name, uint8_t sig[KW_RELAY_SIG_LEN]) {
  if (!sk || !challenge || !exporter || !name || !sig)
    return KW_ERR_INVALID_ARG;
  uint8_t msg[AUTH2_MAX];
  size_t n = auth2_message(msg, challenge, exporter, name);
  if (n == 0 || crypto_sign_detached(sig, NULL, msg, n, sk) != 0)
    return KW_ERR_INVALID_ARG;
  return KW_OK;
}

kw_err kw__relay_auth2_verify(const uint8_t id[KW_ID_LEN],
                              const uint8_t challenge[KW_RELAY_CHALLENGE_LEN],
                              const uint8_t exporter[KW_RELAY_EXPORTER_LEN],
                              const char *name,
                              const uint8_t sig[KW_RELAY_SIG_LEN]) {
  if (!id || !challenge || !exporter || !name || !sig)
    return KW_ERR_INVALID_ARG;
  uint8_t msg[AUTH2_MAX];
  size_t n = auth2_message(msg, challenge, exporter, name);
  if (n == 0)
    return KW_ERR_INVALID_ARG;
  if (crypto_sign_verify_detached(sig, msg, n, id) != 0)
    return KW_ERR_KEY_MISMATCH;
  return KW_OK;
}

/* ---- HTTP upgrade ------------------------------------------------------ */

kw_err kw__relay_http_req_build(const char *host, char *out, size_t cap,
                                size_t *outlen) {
  return kw__relay_http_req_build_version(host, KW_RELAY_VERSION, out, cap,
                                          outlen);
}

kw_err kw__relay_http_req_build_version(const char *host, int version,
                                        char *out, size_t cap, size_t *outlen) {
  if (!host || !out || !outlen ||
      (version != KW_RELAY_VERSION && version != KW_RELAY_VERSION_V1))
    return KW_ERR_INVALID_ARG;
  size_t hlen = strlen(host);
  if (hlen == 0 || hlen > 255)
    return KW_ERR_INVALID_ARG;
  for (size_t i = 0; i < hlen; i++)
    if ((unsigned char)host[i] <= 0x20 || (unsigned char)host[i] >= 0x7F)
      return KW_ERR_INVALID_ARG;
  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  static const char a[] = "GET " KW_RELAY_HTTP_PATH " HTTP/1.1\r\nHost: ";
  static const char b2[] =
      "\r\nConnection: Upgrade\r\nUpgrade: " KW_RELAY_HTTP_TOKEN "\r\n\r\n";
  static const char b1[] =
      "\r\nConnection: Upgrade\r\nUpgrade: " KW_RELAY_HTTP_TOKEN_V1 "\r\n\r\n";
  kw__wbuf_bytes(&w, a, sizeof(a) - 1);
  kw__wbuf_bytes(&w, host, hlen);
  if (version == KW_RELAY_VERSION_V1)
    kw__wbuf_bytes(&w, b1, sizeof(b1)); /* with NUL */
  else
    kw__wbuf_bytes(&w, b2, sizeof(b2));
  if (w.err)
    return KW_ERR_BUFFER;
  *outlen = w.off - 1;
  return KW_OK;
}

kw_err kw__relay_http_resp_build(char *out, size_t cap, size_t *outlen) {
  return kw__relay_http_resp_build_version(KW_RELAY_VERSION, out, cap, outlen);
}

kw_err kw__relay_http_resp_build_version(int version, char *out, size_t cap,
                                         size_t *outlen) {
  static const char r2[] = "HTTP/1.1 101 Switching Protocols\r\n"
                           "Connection: Upgrade\r\n"
                           "Upgrade: " KW_RELAY_HTTP_TOKEN "\r\n\r\n";
  static const char r1[] = "HTTP/1.1 101 Switching Protocols\r\n"
                           "Connection: Upgrade\r\n"
                           "Upgrade: " KW_RELAY_HTTP_TOKEN_V1 "\r\n\r\n";
  if (!out || !outlen ||
      (version != KW_RELAY_VERSION && version != KW_RELAY_VERSION_V1))
    return KW_ERR_INVALID_ARG;
  const char *r = version == KW_RELAY_VERSION_V1 ? r1 : r2;
  size_t rlen = version == KW_RELAY_VERSION_V1 ? sizeof(r1) : sizeof(r2);
  if (cap < rlen)
    return KW_ERR_BUFFER;
  memcpy(out, r, rlen);
  *outlen = rlen - 1;
  return KW_OK;
}

kw_err kw__relay_http_resp_parse(const uint8_t *p, size_t len, size_t *consumed,
                                 int *status) {
  if (!consumed)
    return KW_ERR_INVALID_ARG;
  kw__http_resp r;
  kw_err err = kw__http_resp_parse(p, len, &r);
  if (status)
    *status = err == KW_OK ? r.status : 0;
  if (err != KW_OK)
    return err;
  *consumed = r.header_len;
  if (r.status != 101 || !r.upgrade)
    return KW_ERR_STATE;
  return KW_OK;
}
