/* SPDX-License-Identifier: MIT */
/* STUN Binding codec (RFC 8489). See stun.h. */
#include "core/stun.h"

#include <string.h>

#include "core/buf.h"

bool kw__stun_is(const uint8_t *p, size_t len) {
  if (!p || len < KW_STUN_HEADER_LEN || (p[0] & 0xC0) != 0)
    return false;
  if (p[4] != 0x21 || p[5] != 0x12 || p[6] != 0xA4 || p[7] != 0x42)
    return false;
  size_t mlen = ((size_t)p[2] << 8) | p[3];
  return (mlen & 3) == 0 && mlen == len - KW_STUN_HEADER_LEN;
}

uint32_t kw__stun_crc32(const uint8_t *p, size_t len) {
  /* Reflected CRC-32, polynomial 0x04C11DB7; bitwise, no table. */
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

/* True for comprehension-required attribute types keyway understands or
 * deliberately ignores (authentication attributes of other STUN usages,
 * ICE's PRIORITY and USE-CANDIDATE, which a Binding server can answer
 * without). CHANGE-REQUEST (RFC 5780) is not among them: a client relying
 * on it must learn that this server does not do it. */
static bool known_required(uint16_t t) {
  switch (t) {
  case KW_STUN_ATTR_MAPPED_ADDRESS:
  case KW_STUN_ATTR_USERNAME:
  case KW_STUN_ATTR_MESSAGE_INTEGRITY:
  case KW_STUN_ATTR_ERROR_CODE:
  case KW_STUN_ATTR_UNKNOWN_ATTRIBUTES:
  case KW_STUN_ATTR_REALM:
  case KW_STUN_ATTR_NONCE:
  case KW_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
  case KW_STUN_ATTR_PASSWORD_ALGORITHM:
  case KW_STUN_ATTR_USERHASH:
  case KW_STUN_ATTR_XOR_MAPPED_ADDRESS:
  case KW_STUN_ATTR_PRIORITY:
  case KW_STUN_ATTR_USE_CANDIDATE:
    return true;
  default:
    return false;
  }
}

/* Decodes a (XOR-)MAPPED-ADDRESS value. `xor_key` is cookie || txid (16
 * bytes) or NULL for plain MAPPED-ADDRESS. */
static kw_err parse_addr(const uint8_t *v, size_t vlen, const uint8_t *xor_key,
                         kw_sockaddr *out) {
  kw__rbuf r;
  kw__rbuf_init(&r, v, vlen);
  (void)kw__rbuf_u8(&r); /* reserved */
  uint8_t fam = kw__rbuf_u8(&r);
  uint16_t port = kw__rbuf_u16(&r);
  size_t alen;
  if (fam == 0x01)
    alen = 4;
  else if (fam == 0x02)
    alen = 16;
  else
    return KW_ERR_PARSE;
  const uint8_t *ip = kw__rbuf_take(&r, alen);
  if (!ip || kw__rbuf_left(&r) != 0)
    return KW_ERR_PARSE;
  memset(out, 0, sizeof(*out));
  out->family = fam == 0x01 ? 4 : 6;
  out->port = xor_key ? (uint16_t)(port ^ (KW_STUN_MAGIC >> 16)) : port;
  for (size_t i = 0; i < alen; i++)
    out->ip[i] = xor_key ? (uint8_t)(ip[i] ^ xor_key[i]) : ip[i];
  return KW_OK;
}

static void add_unknown(kw__stun_msg *m, uint16_t t) {
  for (size_t i = 0; i < m->n_unknown; i++)
    if (m->unknown[i] == t)
      return;
  if (m->n_unknown < KW_STUN_MAX_UNKNOWN)
    m->unknown[m->n_unknown++] = t;
}

kw_err kw__stun_parse(const uint8_t *p, size_t len, kw__stun_msg *m) {
  if (!m)
    return KW_ERR_INVALID_ARG;
  memset(m, 0, sizeof(*m));
  if (!kw__stun_is(p, len))
    return KW_ERR_PARSE;

  kw__rbuf r;
  kw__rbuf_init(&r, p, len);
  m->type = kw__rbuf_u16(&r);
  (void)kw__rbuf_u16(&r); /* length, checked by kw__stun_is */
  (void)kw__rbuf_u32(&r); /* cookie, checked */
  kw__rbuf_copy(&r, m->txid, KW_STUN_TXID_LEN);
  m->method = (uint16_t)((m->type & 0x000F) | ((m->type & 0x00E0) >> 1) |
                         ((m->type & 0x3E00) >> 2));
  m->cls = (uint8_t)(((m->type >> 4) & 1) | ((m->type >> 7) & 2));

  uint8_t xor_key[16] = {0x21, 0x12, 0xA4, 0x42};
  memcpy(xor_key + 4, m->txid, KW_STUN_TXID_LEN);

  bool have_xor = false, have_plain = false, after_integrity = false;
  kw_sockaddr plain;
  memset(&plain, 0, sizeof(plain));

  while (kw__rbuf_left(&r) > 0) {
    size_t attr_start = r.off;
    uint16_t t = kw__rbuf_u16(&r);
    uint16_t alen = kw__rbuf_u16(&r);
    const uint8_t *v = kw__rbuf_take(&r, alen);
    (void)kw__rbuf_take(&r, (size_t)((4 - (alen & 3)) & 3)); /* padding */
    if (r.err)
      return KW_ERR_PARSE; /* truncated header, value or padding */

    if (t == KW_STUN_ATTR_FINGERPRINT) {
      m->has_fingerprint = true;
      if (alen != 4 || kw__rbuf_left(&r) != 0)
        return KW_ERR_PARSE; /* must be last and 4 bytes */
      uint32_t want = kw__stun_crc32(p, attr_start) ^ KW_STUN_FINGERPRINT_XOR;
      uint32_t got = ((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) |
                     ((uint32_t)v[2] << 8) | v[3];
      if (want != got)
        return KW_ERR_PARSE;
      continue;
    }
    if (t == KW_STUN_ATTR_MESSAGE_INTEGRITY ||
        t == KW_STUN_ATTR_MESSAGE_INTEGRITY_SHA256) {
      m->has_integrity = true;
      after_integrity = true;
      continue;
    }
    /* RFC 8489 14.5: attributes after MESSAGE-INTEGRITY other than
     * FINGERPRINT (and MESSAGE-INTEGRITY-SHA256) are ignored. */
    if (after_integrity)
      continue;

    switch (t) {
    case KW_STUN_ATTR_XOR_MAPPED_ADDRESS:
      if (!have_xor) {
        if (parse_addr(v, alen, xor_key, &m->mapped) != KW_OK)
          return KW_ERR_PARSE;
        have_xor = true;
      }
      break;
    case KW_STUN_ATTR_MAPPED_ADDRESS:
      if (!have_plain) {
        if (parse_addr(v, alen, NULL, &plain) != KW_OK)
          return KW_ERR_PARSE;
        have_plain = true;
      }
      break;
    case KW_STUN_ATTR_ERROR_CODE:
      if (m->error_code == 0) {
        if (alen < 4)
          return KW_ERR_PARSE;
        unsigned cls = v[2] & 0x07, num = v[3];
        if (cls < 3 || cls > 6 || num > 99)
          return KW_ERR_PARSE;
        m->error_code = (uint16_t)(cls * 100 + num);
      }
      break;
    case KW_STUN_ATTR_UNKNOWN_ATTRIBUTES:
      if (alen & 1)
        return KW_ERR_PARSE;
      break;
    case KW_STUN_ATTR_SOFTWARE:
      if (!m->software) {
        m->software = v;
        m->software_len = alen;
      }
      break;
    default:
      if (t < 0x8000 && !known_required(t))
        add_unknown(m, t);
      break;
    }
  }
  if (have_xor) {
    m->mapped_xor = true;
  } else if (have_plain) {
    m->mapped = plain;
  }
  return KW_OK;
}

kw_err kw__stun_parse_response(const uint8_t *p, size_t len,
                               const uint8_t *txid, kw__stun_msg *m) {
  kw_err err = kw__stun_parse(p, len, m);
  if (err != KW_OK)
    return err;
  if (m->method != 1 ||
      (m->cls != KW_STUN_CLASS_SUCCESS && m->cls != KW_STUN_CLASS_ERROR))
    return KW_ERR_PARSE;
  if (txid && memcmp(txid, m->txid, KW_STUN_TXID_LEN) != 0)
    return KW_ERR_NOT_FOUND;
  if (m->cls == KW_STUN_CLASS_ERROR)
    return m->error_code ? KW_ERR_PEER : KW_ERR_PARSE;
  if (m->n_unknown > 0 || m->mapped.family == 0)
    return KW_ERR_PARSE;
  return KW_OK;
}

kw_err kw__stun_parse_request(const uint8_t *p, size_t len, kw__stun_msg *m) {
  kw_err err = kw__stun_parse(p, len, m);
  if (err != KW_OK)
    return err;
  if (m->type != KW_STUN_BINDING_REQUEST)
    return KW_ERR_PARSE;
  return KW_OK;
}

/* ---- builders ---------------------------------------------------------- */

static void put_header(kw__wbuf *w, uint16_t type,
                       const uint8_t txid[KW_STUN_TXID_LEN]) {
  kw__wbuf_u16(w, type);
  kw__wbuf_u16(w, 0); /* length, patched by finish() */
  kw__wbuf_u32(w, KW_STUN_MAGIC);
  kw__wbuf_bytes(w, txid, KW_STUN_TXID_LEN);
}

static void put_attr(kw__wbuf *w, uint16_t type, const void *v, size_t len) {
  static const uint8_t zeros[3] = {0, 0, 0};
  kw__wbuf_u16(w, type);
  kw__wbuf_u16(w, (uint16_t)len);
  kw__wbuf_bytes(w, v, len);
  kw__wbuf_bytes(w, zeros, (4 - (len & 3)) & 3);
}

static void set_length(kw__wbuf *w, size_t body) {
  w->p[2] = (uint8_t)(body >> 8);
  w->p[3] = (uint8_t)body;
}

/* Patches the length field, appends FINGERPRINT if asked, reports the
 * size. */
static kw_err finish(kw__wbuf *w, bool fingerprint, size_t *outlen) {
  if (w->err)
    return KW_ERR_BUFFER;
  if (fingerprint) {
    set_length(w, w->off - KW_STUN_HEADER_LEN + 8);
    uint32_t crc = kw__stun_crc32(w->p, w->off) ^ KW_STUN_FINGERPRINT_XOR;
    uint8_t v[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16),
                    (uint8_t)(crc >> 8), (uint8_t)crc};
    put_attr(w, KW_STUN_ATTR_FINGERPRINT, v, 4);
    if (w->err)
      return KW_ERR_BUFFER;
  }
  set_length(w, w->off - KW_STUN_HEADER_LEN);
  *outlen = w->off;
  return KW_OK;
}

static kw_err check_software(const char *software, size_t *len) {
  *len = software ? strlen(software) : 0;
  return *len > KW_STUN_MAX_SOFTWARE ? KW_ERR_INVALID_ARG : KW_OK;
}

kw_err kw__stun_build_request(uint8_t *out, size_t cap, size_t *outlen,
                              const uint8_t txid[KW_STUN_TXID_LEN],
                              const char *software, bool fingerprint) {
  size_t swlen;
  if (!out || !outlen || !txid || check_software(software, &swlen) != KW_OK)
    return KW_ERR_INVALID_ARG;
  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  put_header(&w, KW_STUN_BINDING_REQUEST, txid);
  if (swlen)
    put_attr(&w, KW_STUN_ATTR_SOFTWARE, software, swlen);
  return finish(&w, fingerprint, outlen);
}

kw_err kw__stun_build_success(uint8_t *out, size_t cap, size_t *outlen,
                              const uint8_t txid[KW_STUN_TXID_LEN],
                              const kw_sockaddr *mapped, const char *software) {
  size_t swlen;
  if (!out || !outlen || !txid || !mapped ||
      check_software(software, &swlen) != KW_OK)
    return KW_ERR_INVALID_ARG;
  if (mapped->family != 4 && mapped->family != 6)
    return KW_ERR_INVALID_ARG;
  uint8_t key[16] = {0x21, 0x12, 0xA4, 0x42};
  memcpy(key + 4, txid, KW_STUN_TXID_LEN);
  size_t alen = mapped->family == 4 ? 4 : 16;
  uint8_t v[20];
  v[0] = 0;
  v[1] = mapped->family == 4 ? 0x01 : 0x02;
  uint16_t xport = (uint16_t)(mapped->port ^ (KW_STUN_MAGIC >> 16));
  v[2] = (uint8_t)(xport >> 8);
  v[3] = (uint8_t)xport;
  for (size_t i = 0; i < alen; i++)
    v[4 + i] = (uint8_t)(mapped->ip[i] ^ key[i]);

  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  put_header(&w, KW_STUN_BINDING_SUCCESS, txid);
  put_attr(&w, KW_STUN_ATTR_XOR_MAPPED_ADDRESS, v, 4 + alen);
  if (swlen)
    put_attr(&w, KW_STUN_ATTR_SOFTWARE, software, swlen);
  return finish(&w, true, outlen);
}

static const char *reason_phrase(uint16_t code) {
  switch (code) {
  case 300:
    return "Try Alternate";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthenticated";
  case 420:
    return "Unknown Attribute";
  case 438:
    return "Stale Nonce";
  case 500:
    return "Server Error";
  default:
    return "Error";
  }
}

kw_err kw__stun_build_error(uint8_t *out, size_t cap, size_t *outlen,
                            const uint8_t txid[KW_STUN_TXID_LEN], uint16_t code,
                            const char *reason, const uint16_t *unknown,
                            size_t n_unknown, const char *software) {
  size_t swlen;
  if (!out || !outlen || !txid || code < 300 || code > 699 ||
      (n_unknown && !unknown) || n_unknown > KW_STUN_MAX_UNKNOWN ||
      check_software(software, &swlen) != KW_OK)
    return KW_ERR_INVALID_ARG;
  if (!reason)
    reason = reason_phrase(code);
  size_t rlen = strlen(reason);
  if (rlen > 128)
    return KW_ERR_INVALID_ARG;

  uint8_t ec[4 + 128];
  ec[0] = 0;
  ec[1] = 0;
  ec[2] = (uint8_t)(code / 100);
  ec[3] = (uint8_t)(code % 100);
  memcpy(ec + 4, reason, rlen);

  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  put_header(&w, KW_STUN_BINDING_ERROR, txid);
  put_attr(&w, KW_STUN_ATTR_ERROR_CODE, ec, 4 + rlen);
  if (n_unknown) {
    uint8_t ua[2 * KW_STUN_MAX_UNKNOWN];
    for (size_t i = 0; i < n_unknown; i++) {
      ua[2 * i] = (uint8_t)(unknown[i] >> 8);
      ua[2 * i + 1] = (uint8_t)unknown[i];
    }
    put_attr(&w, KW_STUN_ATTR_UNKNOWN_ATTRIBUTES, ua, 2 * n_unknown);
  }
  if (swlen)
    put_attr(&w, KW_STUN_ATTR_SOFTWARE, software, swlen);
  return finish(&w, true, outlen);
}

kw_err kw__stun_serve(const uint8_t *req, size_t len, const kw_sockaddr *from,
                      const char *software, uint8_t *out, size_t cap,
                      size_t *outlen, uint16_t *code) {
  if (!outlen || !from || !out)
    return KW_ERR_INVALID_ARG;
  *outlen = 0;
  if (code)
    *code = 0;
  if (!kw__stun_is(req, len))
    return KW_ERR_PARSE; /* not STUN at all */
  kw__stun_msg m;
  kw_err err = kw__stun_parse(req, len, &m);
  if (m.cls != KW_STUN_CLASS_REQUEST)
    return KW_ERR_PARSE; /* never answer responses or indications */
  if (err != KW_OK && m.has_fingerprint)
    return KW_ERR_PARSE; /* RFC 8489 7.3: bad fingerprint -> discard */

  uint16_t c = 0;
  if (err != KW_OK || m.method != 1)
    c = 400;
  else if (m.n_unknown > 0)
    c = 420;
  kw_err e;
  if (c == 0)
    e = kw__stun_build_success(out, cap, outlen, m.txid, from, software);
  else if (c == 420)
    e = kw__stun_build_error(out, cap, outlen, m.txid, 420, NULL, m.unknown,
                             m.n_unknown, software);
  else
    e = kw__stun_build_error(out, cap, outlen, m.txid, 400, NULL, NULL, 0,
                             software);
  if (e != KW_OK) {
    *outlen = 0;
    return e;
  }
  if (code)
    *code = c;
  return KW_OK;
}
