/* SPDX-License-Identifier: MIT */
/* Fuzz the RFC 3489 answerer: never reads out of bounds; an answer is
 * exactly header + MAPPED-ADDRESS, echoes the transaction id and carries
 * the source address. */
#include <stdint.h>
#include <string.h>

#include "core/stun_classic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kw_sockaddr from;
  memset(&from, 0, sizeof from);
  from.family = (size & 1) ? 6 : 4;
  from.ip[0] = 127;
  from.ip[3] = 1;
  from.port = 4242;
  uint8_t out[KW_STUN_CLASSIC_MAX_ANSWER];
  size_t n = 0;
  kw_err e = kw__stun_classic_serve(data, size, &from, out, sizeof out, &n);
  if (e == KW_OK) {
    size_t alen = from.family == 4 ? 4 : 16;
    if (n != 20 + 8 + alen || size < 20 || memcmp(out + 4, data + 4, 16) ||
        out[0] != 0x01 || out[1] != 0x01 ||
        memcmp(out + n - alen, from.ip, alen) != 0)
      __builtin_trap();
  } else if (e != KW_ERR_PARSE && e != KW_ERR_UNSUPPORTED) {
    __builtin_trap();
  } else if (n != 0) {
    __builtin_trap();
  }
  return 0;
}
