/* SPDX-License-Identifier: MIT */
/*
 * Tickets: "kw1" + lowercase base32 (no padding) of a binary payload
 *
 *   version u8 (= 1) | id [32] | field* | checksum [4]
 *   field    = type u8 | len u8 | value [len]
 *   checksum = first 4 bytes of BLAKE2b-256 over everything before it
 *
 * Field types: 1 relay URL, 2 application token (1..16 opaque bytes, e.g.
 * the capability of one `keyway send` share), 4 IPv4 address (ip[4] port
 * be16), 6 IPv6 address (ip[16] port be16); types >= 128 are skipped, other
 * unknown types are rejected. docs/protocol/tickets.md is the full description. The
 * encoder enforces every rule the decoder checks, so whatever encodes also
 * decodes.
 */
#include <sodium.h>
#include <string.h>

#include "keyway.h"
#include "core/base32.h"
#include "core/buf.h"
#include "core/sockaddr.h"

#define TICKET_VERSION 1
#define PREFIX "kw1"
#define PREFIX_LEN 3
#define CHECKSUM_LEN 4

#define FIELD_RELAY 1
#define FIELD_TOKEN 2
#define FIELD_IPV4 4
#define FIELD_IPV6 6
#define FIELD_SKIPPABLE 128 /* types from here on are ignored if unknown */

/* Largest payload the text bound allows. */
#define MAX_PAYLOAD ((KW_TICKET_MAX - 1 - PREFIX_LEN) * 5 / 8)

static void checksum(const uint8_t *p, size_t len, uint8_t out[CHECKSUM_LEN]) {
  uint8_t h[crypto_generichash_BYTES];
  crypto_generichash(h, sizeof(h), p, len, NULL, 0);
  memcpy(out, h, CHECKSUM_LEN);
}

/* A relay URL: printable ASCII without spaces, "https://" and a host. */
static const char *check_relay_url(const char *u, size_t len) {
  if (len == 0 || len > KW_MAX_RELAY_URL)
    return "bad relay url length";
  for (size_t i = 0; i < len; i++)
    if (u[i] <= 0x20 || u[i] >= 0x7f)
      return "relay url has a non-printable character";
  if (len <= 8 || memcmp(u, "https://", 8) != 0)
    return "relay url is not https://HOST";
  return NULL;
}

static bool ip_is_zero(const kw_sockaddr *s) {
  size_t n = s->family == 4 ? 4 : 16;
  for (size_t i = 0; i < n; i++)
    if (s->ip[i])
      return false;
  return true;
}

/* Checks the address about to become addrs[n] against the rules and the
 * ones before it. */
static const char *check_addr(const kw_sockaddr *addrs, size_t n) {
  const kw_sockaddr *s = &addrs[n];
  if (s->port == 0)
    return "address port is 0";
  if (ip_is_zero(s))
    return "unspecified address";
  for (size_t i = 0; i < n; i++)
    if (kw__sockaddr_equal(&addrs[i], s))
      return "duplicate address";
  return NULL;
}

kw_err kw_ticket_encode(const kw_endpoint_addr *a, char *out, size_t outlen) {
  return kw_ticket_encode_token(a, NULL, 0, out, outlen);
}

kw_err kw_ticket_encode_token(const kw_endpoint_addr *a, const uint8_t *token,
                              size_t token_len, char *out, size_t outlen) {
  if (!a || !out || (token_len && !token) ||
      token_len > KW_TICKET_TOKEN_MAX) {
    if (out && outlen)
      out[0] = '\0';
    return KW_ERR_INVALID_ARG;
  }
  if (outlen)
    out[0] = '\0';
  if (sodium_init() < 0)
    return KW_ERR_UNSUPPORTED;
  if (!crypto_core_ed25519_is_valid_point(a->id))
    return KW_ERR_BAD_ID;
  if (a->n_addrs > KW_MAX_DIRECT_ADDRS)
    return KW_ERR_INVALID_ARG;
  size_t ulen = strnlen(a->relay_url, sizeof(a->relay_url));
  if (ulen == sizeof(a->relay_url))
    return KW_ERR_INVALID_ARG;
  if (ulen && check_relay_url(a->relay_url, ulen))
    return KW_ERR_INVALID_ARG;

  uint8_t payload[MAX_PAYLOAD];
  kw__wbuf w;
  kw__wbuf_init(&w, payload, sizeof(payload));
  kw__wbuf_u8(&w, TICKET_VERSION);
  kw__wbuf_bytes(&w, a->id, KW_ID_LEN);
  if (ulen) {
    kw__wbuf_u8(&w, FIELD_RELAY);
    kw__wbuf_u8(&w, (uint8_t)ulen);
    kw__wbuf_bytes(&w, a->relay_url, ulen);
  }
  if (token_len) {
    kw__wbuf_u8(&w, FIELD_TOKEN);
    kw__wbuf_u8(&w, (uint8_t)token_len);
    kw__wbuf_bytes(&w, token, token_len);
  }
  for (size_t i = 0; i < a->n_addrs; i++) {
    const kw_sockaddr *s = &a->addrs[i];
    if (s->family != 4 && s->family != 6)
      return KW_ERR_INVALID_ARG;
    if (check_addr(a->addrs, i))
      return KW_ERR_INVALID_ARG;
    size_t iplen = s->family == 4 ? 4 : 16;
    kw__wbuf_u8(&w, s->family == 4 ? FIELD_IPV4 : FIELD_IPV6);
    kw__wbuf_u8(&w, (uint8_t)(iplen + 2));
    kw__wbuf_bytes(&w, s->ip, iplen);
    kw__wbuf_u16(&w, s->port);
  }
  uint8_t *sum = kw__wbuf_reserve(&w, CHECKSUM_LEN);
  if (!sum || w.err)
    return KW_ERR_INVALID_ARG; /* cannot happen within the bounds above */
  checksum(payload, w.off - CHECKSUM_LEN, sum);

  if (outlen < PREFIX_LEN + 1)
    return KW_ERR_BUFFER;
  memcpy(out, PREFIX, PREFIX_LEN);
  if (kw__base32_encode(out + PREFIX_LEN, outlen - PREFIX_LEN, payload,
                        w.off) == 0) {
    out[0] = '\0';
    return KW_ERR_BUFFER;
  }
  return KW_OK;
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

/* Parses the fields between the id and the checksum into `a`. */
static const char *parse_fields(kw__rbuf *r, kw_endpoint_addr *a,
                                uint8_t *token, size_t *token_len) {
  bool have_relay = false, have_token = false;
  while (kw__rbuf_left(r) > 0) {
    uint8_t type = kw__rbuf_u8(r);
    uint8_t len = kw__rbuf_u8(r);
    const uint8_t *v = kw__rbuf_take(r, len);
    if (!v)
      return "truncated field";
    if (type == FIELD_RELAY) {
      if (have_relay)
        return "more than one relay url";
      const char *why = check_relay_url((const char *)v, len);
      if (why)
        return why;
      memcpy(a->relay_url, v, len);
      a->relay_url[len] = '\0';
      have_relay = true;
    } else if (type == FIELD_TOKEN) {
      if (have_token)
        return "more than one token";
      if (len == 0 || len > KW_TICKET_TOKEN_MAX)
        return "bad token length";
      memcpy(token, v, len);
      *token_len = len;
      have_token = true;
    } else if (type == FIELD_IPV4 || type == FIELD_IPV6) {
      size_t iplen = type == FIELD_IPV4 ? 4 : 16;
      if (len != iplen + 2)
        return "bad address length";
      if (a->n_addrs == KW_MAX_DIRECT_ADDRS)
        return "too many addresses";
      kw_sockaddr *s = &a->addrs[a->n_addrs];
      memset(s, 0, sizeof(*s));
      s->family = type == FIELD_IPV4 ? 4 : 6;
      memcpy(s->ip, v, iplen);
      s->port = (uint16_t)((v[iplen] << 8) | v[iplen + 1]);
      const char *why = check_addr(a->addrs, a->n_addrs);
      if (why)
        return why;
      a->n_addrs++;
    } else if (type < FIELD_SKIPPABLE) {
      return "unknown field type";
    }
  }
  return NULL;
}

/* Decodes a trimmed ticket text; returns NULL or the defect. */
static const char *decode(const char *t, size_t len, kw_endpoint_addr *a,
                          uint8_t *token, size_t *token_len) {
  if (len == 0)
    return "empty ticket";
  if (len > KW_TICKET_MAX - 1)
    return "ticket too long";
  if (len < PREFIX_LEN || (t[0] != 'k' && t[0] != 'K') ||
      (t[1] != 'w' && t[1] != 'W') || t[2] != '1')
    return "missing kw1 prefix";
  uint8_t payload[MAX_PAYLOAD];
  size_t n = 0;
  if (kw__base32_decode(payload, sizeof(payload), &n, t + PREFIX_LEN,
                        len - PREFIX_LEN) != KW_OK)
    return "not base32";
  if (n < 1 + KW_ID_LEN + CHECKSUM_LEN)
    return "ticket too short";
  if (payload[0] == 0)
    return "unsupported version 0";
  if (payload[0] != TICKET_VERSION)
    return "unsupported version (made by a newer keyway?)";
  uint8_t sum[CHECKSUM_LEN];
  checksum(payload, n - CHECKSUM_LEN, sum);
  if (memcmp(sum, payload + n - CHECKSUM_LEN, CHECKSUM_LEN) != 0)
    return "checksum mismatch";

  kw__rbuf r;
  kw__rbuf_init(&r, payload, n - CHECKSUM_LEN);
  (void)kw__rbuf_u8(&r);
  kw__rbuf_copy(&r, a->id, KW_ID_LEN);
  if (!crypto_core_ed25519_is_valid_point(a->id))
    return "invalid endpoint id";
  return parse_fields(&r, a, token, token_len);
}

kw_err kw_ticket_decode(const char *s, kw_endpoint_addr *a, const char **why) {
  return kw_ticket_decode_token(s, a, NULL, NULL, why);
}

kw_err kw_ticket_decode_token(const char *s, kw_endpoint_addr *a,
                              uint8_t token[KW_TICKET_TOKEN_MAX],
                              size_t *token_len, const char **why) {
  if (token_len)
    *token_len = 0;
  if (why)
    *why = NULL;
  if (!s || !a) {
    if (why)
      *why = "missing argument";
    return KW_ERR_INVALID_ARG;
  }
  if (sodium_init() < 0) {
    if (why)
      *why = "libsodium unavailable";
    return KW_ERR_UNSUPPORTED;
  }
  while (is_space(*s))
    s++;
  size_t len = strlen(s);
  while (len > 0 && is_space(s[len - 1]))
    len--;
  kw_endpoint_addr tmp;
  memset(&tmp, 0, sizeof(tmp));
  uint8_t tok[KW_TICKET_TOKEN_MAX];
  size_t tlen = 0;
  const char *defect = decode(s, len, &tmp, tok, &tlen);
  if (defect) {
    sodium_memzero(tok, sizeof tok);
    if (why)
      *why = defect;
    return KW_ERR_BAD_TICKET;
  }
  *a = tmp;
  if (token && token_len) {
    memcpy(token, tok, tlen);
    *token_len = tlen;
  }
  sodium_memzero(tok, sizeof tok);
  return KW_OK;
}
