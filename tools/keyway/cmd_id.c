/* SPDX-License-Identifier: MIT */
/* keyway id: print this endpoint's id (the key file is created if missing). */
#include <stdio.h>

#include "common.h"

int cmd_id(cli *c) {
  if (c->npos)
    return cli_usage_error(c, "id takes no arguments");
  uint8_t sk[KW_SECRET_KEY_LEN], id[KW_ID_LEN];
  bool have = false;
  int rc = cli_load_key(c, sk, &have);
  if (rc)
    return rc;
  if (!have && kw_key_generate(sk) != KW_OK)
    return cli_fail(c, KW_ERR_NOMEM, "cannot generate a key");
  kw_key_id(sk, id);
  char t[KW_ID_STRLEN + 1];
  printf("%s\n", cli_id(id, t));
  return fflush(stdout) == 0 ? 0 : 1;
}
