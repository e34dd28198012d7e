/* SPDX-License-Identifier: MIT */
/*
 * Relay URLs: "https://HOST:PORT" with an optional "/" or "/?stun=PORT".
 * HOST is a DNS name, an IPv4 address or a bracketed IPv6 address. The
 * port is required (no default 443: relays are self-hosted). STUN defaults
 * to UDP port 3478 on the IP address the relay's TLS connection reached
 * (docs/ARCHITECTURE.md section 4, "STUN": no separate DNS lookup).
 */
#ifndef KW_CORE_RELAY_URL_H
#define KW_CORE_RELAY_URL_H

#include <stdint.h>

#include "keyway.h"

#define KW_RELAY_HOST_MAX 253
#define KW_STUN_DEFAULT_PORT 3478

typedef struct kw__relay_url {
  char host[KW_RELAY_HOST_MAX + 1]; /* without brackets */
  uint16_t port;
  uint16_t stun_port;
  bool host_is_ip;
} kw__relay_url;

/* Parses `url`. KW_ERR_PARSE on anything else (another scheme, no port,
 * port 0 or > 65535, empty or overlong host, unknown query). */
kw_err kw__relay_url_parse(const char *url, kw__relay_url *out);

#endif
