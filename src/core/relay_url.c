/* SPDX-License-Identifier: MIT */
/* Relay URL parsing (see relay_url.h). */
#include "core/relay_url.h"

#include <arpa/inet.h>
#include <string.h>

static int parse_port(const char *s, size_t n, uint16_t *out) {
  if (n == 0 || n > 5)
    return -1;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v == 0 || v > 65535 || (n > 1 && s[0] == '0'))
    return -1;
  *out = (uint16_t)v;
  return 0;
}

static int host_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.';
}

kw_err kw__relay_url_parse(const char *url, kw__relay_url *out) {
  static const char scheme[] = "https://";
  if (!url || !out)
    return KW_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  if (strlen(url) > KW_MAX_RELAY_URL ||
      strncmp(url, scheme, sizeof scheme - 1) != 0)
    return KW_ERR_PARSE;
  const char *p = url + sizeof scheme - 1;
  const char *host, *host_end, *port;
  if (*p == '[') {
    host = p + 1;
    host_end = strchr(host, ']');
    if (!host_end || host_end[1] != ':')
      return KW_ERR_PARSE;
    port = host_end + 2;
  } else {
    host = p;
    host_end = strchr(host, ':');
    if (!host_end)
      return KW_ERR_PARSE;
    port = host_end + 1;
    for (const char *q = host; q < host_end; q++)
      if (!host_char_ok(*q))
        return KW_ERR_PARSE;
  }
  size_t hl = (size_t)(host_end - host);
  if (hl == 0 || hl > KW_RELAY_HOST_MAX)
    return KW_ERR_PARSE;
  memcpy(out->host, host, hl);
  out->host[hl] = 0;
  size_t pl = strcspn(port, "/");
  if (parse_port(port, pl, &out->port) != 0)
    return KW_ERR_PARSE;
  const char *rest = port + pl;
  out->stun_port = KW_STUN_DEFAULT_PORT;
  if (*rest == 0 || strcmp(rest, "/") == 0) {
    /* no query */
  } else if (strncmp(rest, "/?stun=", 7) == 0) {
    if (parse_port(rest + 7, strlen(rest + 7), &out->stun_port) != 0)
      return KW_ERR_PARSE;
  } else {
    return KW_ERR_PARSE;
  }
  unsigned char buf[16];
  if (*p == '[') {
    if (inet_pton(AF_INET6, out->host, buf) != 1)
      return KW_ERR_PARSE;
    out->host_is_ip = true;
  } else {
    out->host_is_ip = inet_pton(AF_INET, out->host, buf) == 1;
  }
  return KW_OK;
}
