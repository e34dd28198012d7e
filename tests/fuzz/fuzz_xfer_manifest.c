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
  for (size_t i = 0; i < m.n; i++)
    if (!xfer_path_ok(m.e[i].path, strlen(m.e[i].path)))
      __builtin_trap();
  size_t len;
  uint8_t *b = xfer_encode(&m, &len);
  if (!b || len != size || memcmp(b, data, size) != 0)
    __builtin_trap();
  free(b);
  xfer_free(&m);
  return 0;
}
