/* SPDX-License-Identifier: MIT */
/* Fuzz kw_id_from_string: an accepted id prints back as the same text
 * (lowercased), and the short form is its prefix. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  uint8_t id[KW_ID_LEN];
  kw_err err = kw_id_from_string(s, id);
  if (err != KW_OK) {
    free(s);
    if (err != KW_ERR_BAD_ID)
      __builtin_trap();
    return 0;
  }
  char text[KW_ID_STRLEN + 1], shrt[KW_ID_SHORTLEN + 1];
  if (kw_id_to_string(id, text, sizeof(text)) != KW_OK ||
      strlen(text) != KW_ID_STRLEN)
    __builtin_trap();
  for (size_t i = 0; i < KW_ID_STRLEN; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != text[i])
      __builtin_trap();
  }
  free(s);
  uint8_t back[KW_ID_LEN];
  if (kw_id_from_string(text, back) != KW_OK ||
      memcmp(back, id, KW_ID_LEN) != 0)
    __builtin_trap();
  if (kw_id_to_short(id, shrt, sizeof(shrt)) != KW_OK ||
      memcmp(shrt, text, KW_ID_SHORTLEN) != 0 ||
      shrt[KW_ID_SHORTLEN] != '\0')
    __builtin_trap();
  return 0;
}
