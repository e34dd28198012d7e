/* SPDX-License-Identifier: MIT */
/* Helpers on kw_sockaddr beyond the public parse/format. */
#ifndef KW_CORE_SOCKADDR_H
#define KW_CORE_SOCKADDR_H

#include <stdbool.h>

#include "keyway.h"

/* True if both have the same family, address and port (two family-0
 * addresses are equal; bytes beyond the family's length are ignored). */
bool kw__sockaddr_equal(const kw_sockaddr *a, const kw_sockaddr *b);
/* True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool kw__sockaddr_is_loopback(const kw_sockaddr *a);
/* True for 169.254.0.0/16 and fe80::/10. */
bool kw__sockaddr_is_linklocal(const kw_sockaddr *a);

#endif /* KW_CORE_SOCKADDR_H */
