/* SPDX-License-Identifier: MIT */
/* Fuzz the PCP response decoder and the MAP check: never reads out of
 * bounds; whatever decodes as version 2 encodes again (without its
 * options) and decodes back to the same fields; the MAP check never calls
 * an answer GRANTED that lacks what a grant needs. The first 12 bytes of
 * the input double as the request's nonce so that matching answers are
 * reached. A MAP request built from the input always encodes to 60 bytes
 * with its fields where RFC 6887 puts them. */
#include <stdint.h>
#include <string.h>

#include "core/pcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const uint8_t *data, size_t size) {
  if (size < 16)
    return;
  kw__pcp_map_req q;
  memset(&q, 0, sizeof q);
  memcpy(q.nonce, data, 12);
  q.protocol = data[12] ? data[12] : KW_PCP_PROTO_UDP;
  q.internal_port = (uint16_t)(data[13] << 8 | data[14]);
  if (q.internal_port == 0)
    q.internal_port = 1;
  q.suggested_port = (uint16_t)(data[15] << 8);
  q.lifetime_s = (uint32_t)size * 97u;
  q.client_ip.family = (data[15] & 1) ? 6 : 4;
  memcpy(q.client_ip.ip, data, size >= 32 ? 16 : 4);
  uint8_t out[KW_PCP_MAP_MSG_LEN];
  size_t n = 0;
  if (kw__pcp_encode_map(&q, out, sizeof out, &n) != KW_OK || n != 60 ||
      out[0] != 2 || out[1] != 1 || memcmp(out + 24, q.nonce, 12) != 0 ||
      out[36] != q.protocol ||
      (uint16_t)(out[40] << 8 | out[41]) != q.internal_port)
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_request(data, size);
  kw__pcp_response r;
  kw_err e = kw__pcp_decode_response(data, size, &r);
  if (e == KW_ERR_UNSUPPORTED) {
    if (r.version == KW_PCP_VERSION)
      __builtin_trap();
    return 0;
  }
  if (e != KW_OK) {
    if (e != KW_ERR_PARSE)
      __builtin_trap();
    return 0;
  }
  if (size < KW_PCP_HEADER_LEN || size > KW_PCP_MAX_MSG || (size & 3) ||
      r.version != KW_PCP_VERSION)
    __builtin_trap();
  uint8_t out[KW_PCP_MAX_MSG];
  size_t n = 0;
  if (kw__pcp_encode_response(&r, out, sizeof out, &n) != KW_OK)
    __builtin_trap();
  kw__pcp_response back;
  if (kw__pcp_decode_response(out, n, &back) != KW_OK ||
      back.opcode != r.opcode || back.result != r.result ||
      back.lifetime_s != r.lifetime_s || back.epoch_s != r.epoch_s ||
      back.has_map != r.has_map ||
      memcmp(back.nonce, r.nonce, sizeof r.nonce) != 0 ||
      back.protocol != r.protocol || back.internal_port != r.internal_port ||
      back.external.family != r.external.family ||
      back.external.port != r.external.port ||
      memcmp(back.external.ip, r.external.ip, sizeof r.external.ip) != 0 ||
      back.n_options != 0)
    __builtin_trap();
  /* a request that this answer's own fields would match */
  kw__pcp_map_req q;
  memset(&q, 0, sizeof q);
  memcpy(q.nonce, r.has_map ? r.nonce : data, KW_PCP_NONCE_LEN);
  q.protocol = r.protocol;
  q.internal_port = r.internal_port;
  q.lifetime_s = size & 4 ? 0 : 7200;
  q.client_ip.family = 4;
  const char *why = NULL;
  kw__pcp_match m = kw__pcp_check_map(&r, &q, &why);
  if (!why)
    __builtin_trap();
  if (m == KW_PCP_MATCH_GRANTED &&
      (r.result != KW_PCP_SUCCESS || r.lifetime_s == 0 || q.lifetime_s == 0 ||
       r.external.family != 4 || r.external.ip[0] == 0 ||
       (r.external.port == 0 && q.protocol != 0) || r.third_party ||
       r.unknown_mandatory))
    __builtin_trap();
  if (m == KW_PCP_MATCH_DELETED && (q.lifetime_s != 0 || r.lifetime_s != 0))
    __builtin_trap();
  return 0;
}
