/* SPDX-License-Identifier: MIT */
/*
 * PCP, the Port Control Protocol (RFC 6887), sans-IO: MAP and ANNOUNCE
 * requests, their responses, the retransmission schedule (section 8.1.1)
 * and the epoch check (section 8.5). The client that sends these over UDP
 * to the gateway's port 5351 is src/endpoint/pcp_client.c; what is sent
 * and when is docs/protocol/portmap.md.
 *
 * Every field of a response is outside input: the decoder checks the
 * length (24..1100 bytes, a multiple of 4), the version, the R bit, the
 * opcode and its payload size, and walks the options with bounds checks;
 * kw__pcp_check_map then ties a MAP response to the request it answers
 * (nonce, protocol, internal port) and checks what a grant must carry.
 */
#ifndef KW_CORE_PCP_H
#define KW_CORE_PCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define KW_PCP_SERVER_PORT 5351
#define KW_PCP_VERSION 2
#define KW_PCP_MAX_MSG 1100 /* RFC 6887 section 7 */
#define KW_PCP_HEADER_LEN 24
#define KW_PCP_MAP_PAYLOAD_LEN 36
#define KW_PCP_MAP_MSG_LEN (KW_PCP_HEADER_LEN + KW_PCP_MAP_PAYLOAD_LEN)
#define KW_PCP_NONCE_LEN 12
#define KW_PCP_PROTO_UDP 17

#define KW_PCP_OP_ANNOUNCE 0
#define KW_PCP_OP_MAP 1
#define KW_PCP_OP_PEER 2
#define KW_PCP_R_BIT 0x80

/* Result codes (RFC 6887 section 7.4). */
enum {
  KW_PCP_SUCCESS = 0,
  KW_PCP_UNSUPP_VERSION = 1,
  KW_PCP_NOT_AUTHORIZED = 2,
  KW_PCP_MALFORMED_REQUEST = 3,
  KW_PCP_UNSUPP_OPCODE = 4,
  KW_PCP_UNSUPP_OPTION = 5,
  KW_PCP_MALFORMED_OPTION = 6,
  KW_PCP_NETWORK_FAILURE = 7,
  KW_PCP_NO_RESOURCES = 8,
  KW_PCP_UNSUPP_PROTOCOL = 9,
  KW_PCP_USER_EX_QUOTA = 10,
  KW_PCP_CANNOT_PROVIDE_EXTERNAL = 11,
  KW_PCP_ADDRESS_MISMATCH = 12,
  KW_PCP_EXCESSIVE_REMOTE_PEERS = 13,
};

/* Options (section 7.3 and 13). Codes 0-127 are mandatory to process. */
#define KW_PCP_OPT_THIRD_PARTY 1
#define KW_PCP_OPT_PREFER_FAILURE 2
#define KW_PCP_OPT_FILTER 3

/* Retransmission (section 8.1.1): IRT 3 s, MRT 1024 s, each timeout
 * (1 + RAND) times the base with RAND in [-0.1, +0.1]. */
#define KW_PCP_IRT_MS 3000u
#define KW_PCP_MRT_MS 1024000u

/* "SUCCESS", "NO_RESOURCES", ...; "UNKNOWN" for codes RFC 6887 does not
 * define. Never NULL. */
const char *kw__pcp_result_name(int code);
/* True for the results section 7.4 calls short-lifetime errors (the
 * condition is expected to clear soon: NETWORK_FAILURE, NO_RESOURCES,
 * USER_EX_QUOTA, EXCESSIVE_REMOTE_PEERS). */
bool kw__pcp_result_transient(int code);

typedef struct kw__pcp_map_req {
  uint8_t nonce[KW_PCP_NONCE_LEN];
  uint8_t protocol;         /* KW_PCP_PROTO_UDP; 0 means all protocols */
  uint16_t internal_port;   /* 0 only with protocol 0 */
  uint16_t suggested_port;  /* 0: no preference */
  kw_sockaddr suggested_ip; /* family 0: no preference (::ffff:0.0.0.0) */
  uint32_t lifetime_s;      /* 0 deletes the mapping */
  kw_sockaddr client_ip;    /* our address toward the server: family 4 is
                               sent IPv4-mapped (::ffff:a.b.c.d) */
} kw__pcp_map_req;

/* A MAP request (60 bytes, no options). KW_ERR_INVALID_ARG: a NULL, no
 * client address, an internal port without a protocol (or the reverse, a
 * protocol without a port: PCP allows "all ports" only for protocol 0),
 * KW_ERR_BUFFER: cap < 60. */
kw_err kw__pcp_encode_map(const kw__pcp_map_req *req, uint8_t *out, size_t cap,
                          size_t *outlen);
/* An ANNOUNCE request (24 bytes, lifetime 0): a server answers with its
 * epoch time, which tells whether it lost its mappings (section 14.1). */
kw_err kw__pcp_encode_announce(const kw_sockaddr *client_ip, uint8_t *out,
                               size_t cap, size_t *outlen);

typedef struct kw__pcp_response {
  uint8_t version; /* 2; another value only with KW_ERR_UNSUPPORTED */
  uint8_t opcode;  /* without the R bit */
  uint8_t result;
  uint32_t lifetime_s;
  uint32_t epoch_s;
  /* MAP only (has_map): copied from the request, or assigned */
  bool has_map; /* false: a header-only error answer (section 7.2 lets a
                   server that could not parse the request send no more) */
  uint8_t nonce[KW_PCP_NONCE_LEN];
  uint8_t protocol;
  uint16_t internal_port;
  kw_sockaddr external; /* assigned address and port; family 4 when the
                           field is IPv4-mapped, else 6 */
  /* options seen (all walked and bounds-checked; none is required) */
  unsigned n_options;
  bool third_party, prefer_failure, filter;
  bool unknown_mandatory; /* an option with a code 0-127 we do not know */
} kw__pcp_response;

/* Decodes a datagram from the server. KW_OK: a version-2 response of a
 * known opcode. KW_ERR_UNSUPPORTED: a well-formed answer of another
 * version (out->version says which: 0 is NAT-PMP's "unsupported version"
 * answer of a gateway that speaks no PCP, RFC 6887 appendix A; 1 a server
 * of the draft version), out->result set when it has one.
 * KW_ERR_PARSE: anything else (shorter than 24 or longer than 1100 bytes,
 * not a multiple of 4, a request (no R bit), an opcode other than
 * ANNOUNCE and MAP, a payload of the wrong size, a truncated or padded-out
 * option, an option of a known code with the wrong length), out zeroed.
 * KW_ERR_INVALID_ARG: NULL. */
kw_err kw__pcp_decode_response(const uint8_t *p, size_t len,
                               kw__pcp_response *out);

/* A response (no options) in the layout the decoder reads: the test
 * servers' and the fuzz target's encoder. */
kw_err kw__pcp_encode_response(const kw__pcp_response *r, uint8_t *out,
                               size_t cap, size_t *outlen);

/* How a decoded response relates to a MAP request we sent. */
typedef enum kw__pcp_match {
  KW_PCP_MATCH_GRANTED,   /* SUCCESS, lifetime > 0, a usable address */
  KW_PCP_MATCH_DELETED,   /* SUCCESS, lifetime 0, to a delete request */
  KW_PCP_MATCH_ERROR,     /* another result code: out of our hands */
  KW_PCP_MATCH_NOT_OURS,  /* not an answer to this request: ignore it
                             (another opcode, nonce, protocol or port) */
  KW_PCP_MATCH_BAD_GRANT, /* SUCCESS that cannot be used: lifetime 0 to a
                             create, port 0, an address 0.0.0.0, multicast,
                             loopback or broadcast, IPv6 to an IPv4 ask, an
                             unknown mandatory option, THIRD_PARTY */
} kw__pcp_match;

/* `why` (optional) names the reason for NOT_OURS and BAD_GRANT:
 * "opcode", "nonce", "protocol", "internal-port", "lifetime", "port",
 * "address", "option". A header-only error answer (no MAP fields) is
 * matched as ERROR only for UNSUPP_VERSION and MALFORMED_REQUEST, the two
 * a server may send without having parsed the request; otherwise
 * NOT_OURS ("nonce"). */
kw__pcp_match kw__pcp_check_map(const kw__pcp_response *r,
                                const kw__pcp_map_req *req, const char **why);

/* The retransmission timeout after `prev_ms` (0: the first, IRT) with
 * RAND = (rand_permille - 100) / 1000, rand_permille in 0..200 (clamped):
 * RT = (1 + RAND) * IRT, then RT = (1 + RAND) * 2 * RTprev, and once past
 * MRT, RT = (1 + RAND) * MRT. */
uint32_t kw__pcp_retransmit_ms(uint32_t prev_ms, unsigned rand_permille);

/* The epoch check of section 8.5: what the client keeps from the last
 * valid answer of a server. */
typedef struct kw__pcp_epoch {
  bool have;
  uint64_t client_ms; /* our clock when it came */
  uint32_t server_s;  /* its epoch time */
} kw__pcp_epoch;

/* Records an answer with epoch `server_s` received at `now_ms` (any
 * monotonic clock in ms) and returns false when the server evidently lost
 * its state since the previous one (its epoch went back more than 1 s, or
 * advanced out of step with our clock by more than 2 s plus 1/16): the
 * client must then create its mappings anew. The first answer is always
 * valid. */
bool kw__pcp_epoch_update(kw__pcp_epoch *e, uint64_t now_ms, uint32_t server_s);

#endif /* KW_CORE_PCP_H */
