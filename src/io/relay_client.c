/*
 * The relay client: the endpoint's connections to keyway-relay servers.
 * (Being built: until it lands every relay operation reports NO_PATH.)
 */
#include "io/internal.h"

kw_err kw__relay_send_batch(kw_endpoint *ep, int relay, const uint8_t *dst_id,
                            const uint8_t *data, size_t len, size_t seg,
                            size_t *sent_segs) {
  (void)ep, (void)relay, (void)dst_id, (void)data, (void)len, (void)seg;
  *sent_segs = 0;
  return KW_ERR_NO_PATH;
}

int kw__relay_index(kw_endpoint *ep, const char *url, bool add) {
  (void)ep, (void)url, (void)add;
  return -1;
}

int kw__relay_home(kw_endpoint *ep) {
  (void)ep;
  return -1;
}

kw_err kw__relays_start(kw_endpoint *ep) {
  (void)ep;
  return KW_OK;
}

void kw__relays_stop(kw_endpoint *ep) { (void)ep; }
void kw__relays_free(kw_endpoint *ep) { (void)ep; }

kw_err kw__relay_lookup(kw_endpoint *ep, const uint8_t id[KW_ID_LEN],
                        void (*cb)(kw_endpoint *ep, kw_err err,
                                   const kw_endpoint_addr *addr, void *arg),
                        void *arg) {
  (void)ep, (void)id, (void)cb, (void)arg;
  return KW_ERR_NO_PATH;
}
