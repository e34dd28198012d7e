/* PUT/GET /lookup/<id>: placeholder until core/lookup_store lands. */
#include <stdlib.h>

#include "relay/relay.h"

kw_err kw__rs_lookup_init(kw__rs *rs) {
  (void)rs;
  return KW_OK;
}

void kw__rs_lookup_free(kw__rs *rs) {
  (void)rs;
}

void kw__rs_lookup_handle(kw__rs *rs, bool put, const uint8_t id[KW_ID_LEN],
                          const uint8_t *body, size_t body_len, int *status,
                          uint8_t **resp, size_t *resp_len,
                          const char **content_type) {
  (void)rs, (void)put, (void)id, (void)body, (void)body_len;
  *status = 503;
  *resp = NULL;
  *resp_len = 0;
  *content_type = NULL;
}
