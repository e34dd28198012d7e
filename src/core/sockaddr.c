/* SPDX-License-Identifier: MIT */
/*
 * Text form of UDP socket addresses: "1.2.3.4:5" and "[v6]:5". Parsing is
 * strict (no names, no scope ids, no leading zeros in the port); port 0 is
 * allowed because binds use it.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/sockaddr.h"

/* Longer inputs cannot be valid: "[" + 45-char v6 + "]:" + 5 digits. */
#define MAX_TEXT 64

/* Parses a decimal port 0..65535 spanning exactly [s, s+len). */
static bool parse_port(const char *s, size_t len, uint16_t *port) {
  if (len == 0 || len > 5)
    return false;
  if (len > 1 && s[0] == '0')
    return false;
  uint32_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (uint32_t)(s[i] - '0');
  }
  if (v > 65535)
    return false;
  *port = (uint16_t)v;
  return true;
}

kw_err kw_sockaddr_parse(const char *s, kw_sockaddr *out) {
  if (!s || !out)
    return KW_ERR_INVALID_ARG;
  size_t len = strnlen(s, MAX_TEXT + 1);
  if (len == 0 || len > MAX_TEXT)
    return KW_ERR_ADDR;
  char host[MAX_TEXT + 1];
  kw_sockaddr a;
  memset(&a, 0, sizeof(a));
  const char *port;
  if (s[0] == '[') {
    const char *close = memchr(s, ']', len);
    if (!close || close[1] != ':')
      return KW_ERR_ADDR;
    size_t hl = (size_t)(close - s - 1);
    memcpy(host, s + 1, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET6, host, a.ip) != 1)
      return KW_ERR_ADDR;
    a.family = 6;
    port = close + 2;
  } else {
    const char *colon = memchr(s, ':', len);
    if (!colon)
      return KW_ERR_ADDR;
    size_t hl = (size_t)(colon - s);
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, host, a.ip) != 1)
      return KW_ERR_ADDR;
    a.family = 4;
    port = colon + 1;
  }
  if (!parse_port(port, (size_t)(s + len - port), &a.port))
    return KW_ERR_ADDR;
  *out = a;
  return KW_OK;
}

kw_err kw_sockaddr_format(const kw_sockaddr *a, char *out, size_t outlen) {
  if (!a || !out)
    return KW_ERR_INVALID_ARG;
  if (outlen)
    out[0] = '\0';
  char host[INET6_ADDRSTRLEN];
  int n;
  if (a->family == 4) {
    if (!inet_ntop(AF_INET, a->ip, host, sizeof(host)))
      return KW_ERR_INVALID_ARG;
    n = snprintf(out, outlen, "%s:%u", host, (unsigned)a->port);
  } else if (a->family == 6) {
    if (!inet_ntop(AF_INET6, a->ip, host, sizeof(host)))
      return KW_ERR_INVALID_ARG;
    n = snprintf(out, outlen, "[%s]:%u", host, (unsigned)a->port);
  } else {
    return KW_ERR_INVALID_ARG;
  }
  if (n < 0 || (size_t)n >= outlen) {
    if (outlen)
      out[0] = '\0';
    return KW_ERR_BUFFER;
  }
  return KW_OK;
}

bool kw__sockaddr_equal(const kw_sockaddr *a, const kw_sockaddr *b) {
  if (a->family != b->family)
    return false;
  if (a->family == 0)
    return true;
  if (a->port != b->port)
    return false;
  size_t n = a->family == 4 ? 4 : 16;
  return memcmp(a->ip, b->ip, n) == 0;
}

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool kw__sockaddr_is_loopback(const kw_sockaddr *a) {
  if (a->family == 4)
    return a->ip[0] == 127;
  if (a->family == 6) {
    static const uint8_t one[16] = {[15] = 1};
    if (memcmp(a->ip, one, 16) == 0)
      return true;
    return memcmp(a->ip, v4mapped, 12) == 0 && a->ip[12] == 127;
  }
  return false;
}

bool kw__sockaddr_is_linklocal(const kw_sockaddr *a) {
  if (a->family == 4)
    return a->ip[0] == 169 && a->ip[1] == 254;
  if (a->family == 6)
    return a->ip[0] == 0xfe && (a->ip[1] & 0xc0) == 0x80;
  return false;
}
