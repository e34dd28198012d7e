/* SPDX-License-Identifier: MIT */
/*
 * RFC 3489 ("classic STUN") Binding requests, server side, sans-IO: the
 * backwards-compatible answer of RFC 8489 section 12 for clients that send
 * no magic cookie. core/stun handles RFC 8489 proper; this is the small
 * remainder a relay needs so that old clients (the classic `stun` tool)
 * still learn their address.
 */
#ifndef KW_CORE_STUN_CLASSIC_H
#define KW_CORE_STUN_CLASSIC_H

#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define KW_STUN_CLASSIC_TXID_LEN 16
#define KW_STUN_CLASSIC_CHANGE_REQUEST 0x0003
/* Largest answer: header + MAPPED-ADDRESS for IPv6. */
#define KW_STUN_CLASSIC_MAX_ANSWER (20 + 4 + 20)

/* Answers the datagram `req` from `from` if it is a well-formed RFC 3489
 * Binding request: a Binding success response with the same 16-byte
 * transaction id and MAPPED-ADDRESS = `from` (nothing else: classic
 * parsers refuse attributes they do not know). Attributes are walked with
 * bounds checks; RESPONSE-ADDRESS is ignored (the answer goes to the
 * source, so a server cannot be made to reflect traffic).
 * Errors (drop silently): KW_ERR_PARSE (not an RFC 3489 Binding request:
 * too short, top bits set, another type, length field not len-20 or not a
 * multiple of 4, the RFC 8489 magic cookie present, a truncated attribute),
 * KW_ERR_UNSUPPORTED (CHANGE-REQUEST asks for an answer from another
 * address or port, which a single-address server cannot give; a malformed
 * CHANGE-REQUEST is KW_ERR_PARSE), KW_ERR_INVALID_ARG, KW_ERR_BUFFER. */
kw_err kw__stun_classic_serve(const uint8_t *req, size_t len,
                              const kw_sockaddr *from, uint8_t *out, size_t cap,
                              size_t *outlen);

#endif /* KW_CORE_STUN_CLASSIC_H */
