/* SPDX-License-Identifier: MIT */
/* Fuzz kw__base32_decode: accepted text is canonical, so it encodes back to
 * the same text (lowercased). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base32.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096)
    return 0;
  uint8_t *out = malloc(size + 1);
  char *text = malloc(size + 2);
  if (!out || !text)
    goto done;
  size_t n = 0;
  kw_err err = kw__base32_decode(out, size, &n, (const char *)data, size);
  if (err != KW_OK) {
    if (err != KW_ERR_PARSE || n != 0)
      __builtin_trap();
    goto done;
  }
  if (kw__base32_encode(text, size + 1, out, n) != size && size != 0)
    __builtin_trap();
  for (size_t i = 0; i < size; i++) {
    char c = (char)data[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != text[i])
      __builtin_trap();
  }
  /* One byte less room must be refused, not overrun. */
  if (n > 0 && kw__base32_decode(out, n - 1, &n, (const char *)data, size) !=
                   KW_ERR_BUFFER)
    __builtin_trap();
done:
  free(out);
  free(text);
  return 0;
}
