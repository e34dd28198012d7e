/* SPDX-License-Identifier: MIT */
/*
 * ticket_tool: rewrites tickets for the CLI tests.
 *   ticket_tool reid TICKET ID     same addresses, another endpoint id
 *   ticket_tool port TICKET PORT   only the first address, at PORT
 *   ticket_tool id TICKET          the endpoint id's text form
 *   ticket_tool addrs TICKET       its direct addresses, one per line
 *   ticket_tool strip TICKET       the same without its application token
 *   ticket_tool idonly TICKET      only the id and the token (no address,
 *                                  no relay: dialing resolves the id)
 * reid and port keep the token.
 *   ticket_tool relay TICKET       its relay URL (an empty line if none)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyway.h"

int main(int argc, char **argv) {
  kw_endpoint_addr a;
  const char *why = NULL;
  if (argc == 3 && !strcmp(argv[1], "id") &&
      kw_ticket_decode(argv[2], &a, &why) == KW_OK) {
    char t[KW_ID_STRLEN + 1];
    kw_id_to_string(a.id, t, sizeof t);
    printf("%s\n", t);
    return 0;
  }
  if (argc == 3 && !strcmp(argv[1], "relay") &&
      kw_ticket_decode(argv[2], &a, &why) == KW_OK) {
    printf("%s\n", a.relay_url);
    return 0;
  }
  if (argc == 3 && !strcmp(argv[1], "addrs") &&
      kw_ticket_decode(argv[2], &a, &why) == KW_OK) {
    for (size_t i = 0; i < a.n_addrs; i++) {
      char s[KW_SOCKADDR_STRLEN];
      kw_sockaddr_format(&a.addrs[i], s, sizeof s);
      printf("%s\n", s);
    }
    return 0;
  }
  uint8_t tok[KW_TICKET_TOKEN_MAX];
  size_t toklen = 0;
  bool one = argc == 3 && (!strcmp(argv[1], "strip") || !strcmp(argv[1], "idonly"));
  if ((argc != 4 && !one) ||
      kw_ticket_decode_token(argv[2], &a, tok, &toklen, &why) != KW_OK) {
    fprintf(stderr, "ticket_tool: %s\n", why ? why : "usage");
    return 2;
  }
  if (!strcmp(argv[1], "strip")) {
    toklen = 0; /* the same ticket without its application token */
  } else if (!strcmp(argv[1], "idonly")) {
    a.n_addrs = 0; /* only the id and the token: resolved by lookup */
    a.relay_url[0] = 0;
  } else if (!strcmp(argv[1], "reid")) {
    if (kw_id_from_string(argv[3], a.id) != KW_OK)
      return 2;
  } else if (!strcmp(argv[1], "port")) {
    a.n_addrs = 1;
    a.addrs[0].port = (uint16_t)atoi(argv[3]);
  } else {
    return 2;
  }
  char t[KW_TICKET_MAX];
  if (kw_ticket_encode_token(&a, tok, toklen, t, sizeof t) != KW_OK)
    return 1;
  printf("%s\n", t);
  return 0;
}
