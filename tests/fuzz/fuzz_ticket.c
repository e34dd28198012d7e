/* SPDX-License-Identifier: MIT */
/* Fuzz kw_ticket_decode; whatever decodes must re-encode and decode to the
 * same address. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyway.h"
#include "core/sockaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const kw_endpoint_addr *x, const kw_endpoint_addr *y) {
  if (memcmp(x->id, y->id, KW_ID_LEN) != 0 ||
      strcmp(x->relay_url, y->relay_url) != 0 || x->n_addrs != y->n_addrs)
    __builtin_trap();
  for (size_t i = 0; i < x->n_addrs; i++)
    if (!kw__sockaddr_equal(&x->addrs[i], &y->addrs[i]))
      __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  kw_endpoint_addr a, b;
  const char *why = NULL;
  uint8_t tok[KW_TICKET_TOKEN_MAX], tok2[KW_TICKET_TOKEN_MAX];
  size_t tlen = 0, tlen2 = 0;
  kw_err err = kw_ticket_decode_token(s, &a, tok, &tlen, &why);
  /* the plain decoder agrees on validity */
  kw_endpoint_addr c;
  if ((kw_ticket_decode(s, &c, NULL) == KW_OK) != (err == KW_OK))
    __builtin_trap();
  free(s);
  if (err != KW_OK) {
    if (err != KW_ERR_BAD_TICKET || !why)
      __builtin_trap();
    return 0;
  }
  if (why)
    __builtin_trap();
  char text[KW_TICKET_MAX];
  if (tlen > KW_TICKET_TOKEN_MAX ||
      kw_ticket_encode_token(&a, tok, tlen, text, sizeof(text)) != KW_OK)
    __builtin_trap();
  if (kw_ticket_decode_token(text, &b, tok2, &tlen2, &why) != KW_OK ||
      tlen2 != tlen || memcmp(tok, tok2, tlen) != 0)
    __builtin_trap();
  check_same(&a, &b);
  /* Encoding is deterministic. */
  char again[KW_TICKET_MAX];
  if (kw_ticket_encode_token(&b, tok2, tlen2, again, sizeof(again)) != KW_OK ||
      strcmp(text, again) != 0)
    __builtin_trap();
  return 0;
}
