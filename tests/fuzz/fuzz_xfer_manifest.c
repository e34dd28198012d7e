/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the keyway/send/1 manifest a receiver parses. Anything
 * accepted must be safe paths only, and must encode back to the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/keyway/xfer.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  xfer_manifest m;
  const char *why;
  if (xfer_decode(data, size, &m, &why) != 0)
    return 0;
  /* within the bounds, safe names only, no duplicates */
  if (m.n > XFER_MAX_ENTRIES)
    __builtin_trap();
  uint64_t bytes = 0;
  for (size_t i = 0; i < m.n; i++) {
    size_t pl = strlen(m.e[i].path);
    bytes += pl;
    if (!xfer_path_ok(m.e[i].path, pl) || m.e[i].mode > 07777)
      __builtin_trap();
    for (size_t j = i + 1; j < m.n && j < i + 64; j++)
      if (!strcmp(m.e[i].path, m.e[j].path))
        __builtin_trap();
  }
  if (bytes > XFER_MAX_NAME_BYTES)
    __builtin_trap();
  size_t len;
  uint8_t *b = xfer_encode(&m, &len);
  if (!b || len != size || memcmp(b, data, size) != 0)
    __builtin_trap();
  free(b);
  xfer_free(&m);
  return 0;
}
