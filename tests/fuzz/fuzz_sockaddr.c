/* SPDX-License-Identifier: MIT */
/* Fuzz kw_sockaddr_parse: an accepted address formats to text that parses
 * back to the same address, and formatting is a fixed point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyway.h"
#include "core/sockaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  kw_sockaddr a, b;
  kw_err err = kw_sockaddr_parse(s, &a);
  free(s);
  if (err != KW_OK) {
    if (err != KW_ERR_ADDR)
      __builtin_trap();
    return 0;
  }
  if (a.family != 4 && a.family != 6)
    __builtin_trap();
  char text[KW_SOCKADDR_STRLEN], again[KW_SOCKADDR_STRLEN];
  if (kw_sockaddr_format(&a, text, sizeof(text)) != KW_OK)
    __builtin_trap();
  if (kw_sockaddr_parse(text, &b) != KW_OK || !kw__sockaddr_equal(&a, &b))
    __builtin_trap();
  if (kw_sockaddr_format(&b, again, sizeof(again)) != KW_OK ||
      strcmp(text, again) != 0)
    __builtin_trap();
  /* Predicates only look at the address. */
  if (kw__sockaddr_is_loopback(&a) && kw__sockaddr_is_linklocal(&a))
    __builtin_trap();
  return 0;
}
