/* SPDX-License-Identifier: MIT */
/*
 * KRPC messages of the Mainline DHT (BEP 5) with the BEP 44 arguments
 * (docs/protocol/dht.md section 2). One struct for queries ('q'),
 * responses ('r') and errors ('e'); fields not present have has_* false
 * or a NULL pointer. Pointers point into the decoded input.
 *
 * Decoding is strict bencode (bencode.h); beyond that it is lenient the
 * way the DHT needs: unknown keys are ignored (other implementations add
 * "v", "ip", "nodes6"...), but every key keyway reads must have its type
 * and length: id/target 20 bytes, k 32, sig 64, nodes a multiple of 26,
 * token at most KW_KRPC_MAX_TOKEN, salt at most 64, v at most 1000
 * encoded bytes, t 1..KW_KRPC_MAX_TID.
 */
#ifndef KW_CORE_KRPC_H
#define KW_CORE_KRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define KW_KRPC_MAX_TID 16
#define KW_KRPC_MAX_TOKEN 64
#define KW_KRPC_MAX_SALT 64
#define KW_KRPC_MAX_V 1000 /* BEP 44: the bencoded v */
#define KW_KRPC_NODE_LEN 26 /* compact IPv4 node: id 20, ip 4, port 2 */
#define KW_KRPC_MAX_MSG 1500
#define KW_KRPC_MAX_TOKENS 96 /* bencode tokens per message */

typedef enum kw__krpc_method {
  KW_KRPC_OTHER = 0,
  KW_KRPC_PING,
  KW_KRPC_FIND_NODE,
  KW_KRPC_GET,
  KW_KRPC_PUT,
} kw__krpc_method;

typedef struct kw__krpc_msg {
  uint8_t t[KW_KRPC_MAX_TID];
  size_t tlen;
  char y;             /* 'q', 'r' or 'e' */
  kw__krpc_method q;  /* queries */
  bool ro;            /* read-only node (BEP 43) */
  bool has_id, has_target, has_k, has_sig, has_seq, has_cas;
  uint8_t id[20], target[20], k[32], sig[64];
  int64_t seq, cas;
  const uint8_t *token, *salt, *nodes, *v; /* v: the bencoded value */
  size_t token_len, salt_len, nodes_len, v_len;
  int64_t err_code; /* 'e' */
  const uint8_t *err_msg;
  size_t err_len;
} kw__krpc_msg;

/* Errors: KW_ERR_PARSE. */
kw_err kw__krpc_decode(const uint8_t *p, size_t len, kw__krpc_msg *m);
/* Encodes m: a query with m->q's arguments, a response, or an error.
 * Fields with has_* false or a NULL pointer are left out. Errors:
 * KW_ERR_INVALID_ARG (unknown y or method, over-long fields),
 * KW_ERR_BUFFER. */
kw_err kw__krpc_encode(const kw__krpc_msg *m, uint8_t *out, size_t cap,
                       size_t *outlen);

/* The i-th compact node of m->nodes. */
void kw__krpc_node(const kw__krpc_msg *m, size_t i, uint8_t id[20],
                   kw_sockaddr *addr);

#endif /* KW_CORE_KRPC_H */
