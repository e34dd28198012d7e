/* SPDX-License-Identifier: MIT */
/* kw_sockaddr <-> struct sockaddr (net/osaddr.h). */
#include "net/osaddr.h"

#include <netinet/in.h>
#include <string.h>

void kw__sockaddr_to_os(const kw_sockaddr *a, struct sockaddr_storage *ss,
                        socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (a->family == 4) {
    struct sockaddr_in *s = (struct sockaddr_in *)ss;
    s->sin_family = AF_INET;
    s->sin_port = htons(a->port);
    memcpy(&s->sin_addr, a->ip, 4);
    *len = sizeof *s;
  } else {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(a->port);
    memcpy(&s->sin6_addr, a->ip, 16);
    *len = sizeof *s;
  }
}

void kw__sockaddr_from_os(const struct sockaddr *sa, kw_sockaddr *a) {
  memset(a, 0, sizeof *a);
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
    a->family = 4;
    a->port = ntohs(s->sin_port);
    memcpy(a->ip, &s->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
    /* v4-mapped addresses cannot arrive: the socket is V6ONLY */
    a->family = 6;
    a->port = ntohs(s->sin6_port);
    memcpy(a->ip, &s->sin6_addr, 16);
  }
}
