/* SPDX-License-Identifier: MIT */
/*
 * Conversion between keyway's kw_sockaddr (core/sockaddr.h) and the
 * operating system's struct sockaddr.
 */
#ifndef KW_NET_OSADDR_H
#define KW_NET_OSADDR_H

#include <sys/socket.h>

#include "keyway.h"

/* `a` (family 4 or 6) as a sockaddr_in / sockaddr_in6 in `ss`; *len is its
 * size. */
void kw__sockaddr_to_os(const kw_sockaddr *a, struct sockaddr_storage *ss,
                        socklen_t *len);
/* An AF_INET / AF_INET6 address as a kw_sockaddr; any other family gives
 * family 0. */
void kw__sockaddr_from_os(const struct sockaddr *sa, kw_sockaddr *a);

#endif /* KW_NET_OSADDR_H */
