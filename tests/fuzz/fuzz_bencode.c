/* SPDX-License-Identifier: MIT */
/* Fuzz the strict bencode decoder: whatever parses has consistent spans
 * (each token inside its parent, `next` past its subtree), and the top
 * value's span is the whole input. */
#include <stdint.h>
#include <string.h>

#include "core/bencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kw__be_tok t[64];
  size_t n;
  kw_err e = kw__be_parse(data, size, t, 64, &n);
  if (e != KW_OK) {
    if (e != KW_ERR_PARSE && e != KW_ERR_FULL)
      __builtin_trap();
    return 0;
  }
  if (n == 0 || t[0].off != 0 || t[0].len != size || t[0].next != n)
    __builtin_trap();
  for (size_t i = 0; i < n; i++) {
    if (t[i].off + t[i].len > size || t[i].next <= i || t[i].next > n)
      __builtin_trap();
    if (t[i].type == KW_BE_STR &&
        (t[i].s < data || t[i].s + t[i].slen > data + size))
      __builtin_trap();
    if (t[i].type == KW_BE_DICT && (t[i].n % 2))
      __builtin_trap();
  }
  if (t[0].type == KW_BE_DICT)
    (void)kw__be_dict_get(t, 0, "a");
  return 0;
}
