/* SPDX-License-Identifier: MIT */
/* Fuzz the STUN codec: kw__stun_parse, the response/request views and the
 * server answer. Whatever parses must be self-consistent; every answer the
 * server writes must parse as a fingerprinted response to the same
 * transaction. */
#include <stdint.h>
#include <string.h>

#include "core/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kw__stun_msg m, r;
  kw_err err = kw__stun_parse(data, size, &m);
  if (err == KW_OK) {
    if (!kw__stun_is(data, size) || m.n_unknown > KW_STUN_MAX_UNKNOWN)
      __builtin_trap();
    if (m.software &&
        (m.software < data || m.software + m.software_len > data + size))
      __builtin_trap();
    if (m.mapped.family != 0) {
      if (m.mapped.family != 4 && m.mapped.family != 6)
        __builtin_trap();
      /* The address survives a success response of ours. */
      uint8_t out[KW_STUN_MAX_BUILD];
      size_t n;
      if (kw__stun_build_success(out, sizeof(out), &n, m.txid, &m.mapped,
                                 NULL) != KW_OK)
        __builtin_trap();
      if (kw__stun_parse_response(out, n, m.txid, &r) != KW_OK ||
          r.mapped.family != m.mapped.family ||
          r.mapped.port != m.mapped.port ||
          memcmp(r.mapped.ip, m.mapped.ip, m.mapped.family == 4 ? 4 : 16) != 0)
        __builtin_trap();
    }
  } else if (err != KW_ERR_PARSE) {
    __builtin_trap();
  }
  (void)kw__stun_parse_response(data, size, NULL, &r);
  (void)kw__stun_parse_request(data, size, &r);

  kw_sockaddr from;
  memset(&from, 0, sizeof(from));
  from.family = (size & 1) ? 6 : 4;
  from.ip[0] = 127;
  from.ip[15] = 1;
  from.port = 3478;
  uint8_t out[KW_STUN_MAX_BUILD];
  size_t n = 0;
  uint16_t code = 0;
  err = kw__stun_serve(data, size, &from, "keyway-fuzz", out, sizeof(out), &n,
                       &code);
  if (err == KW_OK) {
    if (n == 0 || kw__stun_parse(out, n, &r) != KW_OK || !r.has_fingerprint ||
        memcmp(r.txid, data + 8, KW_STUN_TXID_LEN) != 0)
      __builtin_trap();
    kw_err want = code == 0 ? KW_OK : KW_ERR_PEER;
    if (kw__stun_parse_response(out, n, data + 8, &r) != want)
      __builtin_trap();
    if (code != 0 && r.error_code != code)
      __builtin_trap();
  } else if (err != KW_ERR_PARSE || n != 0) {
    __builtin_trap();
  }
  return 0;
}
