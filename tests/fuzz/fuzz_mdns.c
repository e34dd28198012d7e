/* SPDX-License-Identifier: MIT */
/* Fuzz the mDNS checks (core/mdns): a received datagram decoded as a query
 * (for a fixed own id) and as a response never reads out of bounds; a
 * query with a port other than 5353 that gets an answer is legacy and the
 * legacy answer encodes and decodes; every instance a response yields has
 * a record verified for the id its instance name carries, and goes into
 * the cache, where it is found again unless it was a goodbye. */
#include <stdint.h>
#include <string.h>

#include "core/mdns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the id of the seed corpus responder (its key is 32 bytes of 7) */
static const char SELF[] =
    "5jfgyy7ctrjavpxvkb5rglwf7gkuo5vox27hxescd3vgsfcg2iwa";

static kw__mdns_cache cache;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t self[KW_ID_LEN];
  if (kw_id_from_string(SELF, self) != KW_OK)
    __builtin_trap();
  uint16_t port = size & 1 ? 40000 : KW_MDNS_PORT;
  kw__mdns_ask ask;
  if (kw__mdns_parse_query(data, size, port, self, &ask) == KW_OK &&
      ask.respond) {
    if (ask.legacy != (port != KW_MDNS_PORT))
      __builtin_trap();
    uint8_t rec[8] = {1};
    kw__mdns_self s;
    memset(&s, 0, sizeof s);
    memcpy(s.id, self, KW_ID_LEN);
    s.record = rec;
    s.record_len = sizeof rec;
    uint8_t out[KW_MDNS_MAX_TX];
    size_t n = 0;
    if (kw__mdns_encode_response(&s, KW_MDNS_TTL_S, ask.legacy ? &ask.lq : NULL,
                                 out, sizeof out, &n) != KW_OK)
      __builtin_trap();
    kw__dns_msg m;
    if (kw__dns_decode(out, n, &m) != KW_OK)
      __builtin_trap();
  }
  kw__mdns_limiter lim = {0};
  kw__mdns_found f[8];
  size_t nf = 0;
  kw__mdns_rejects rej;
  uint64_t now_us = 1700000000000000ull;
  if (kw__mdns_parse_response(data, size, now_us, 1, &lim, NULL, f, 8, &nf,
                              &rej) != KW_OK)
    return 0;
  for (size_t i = 0; i < nf; i++) {
    if (kw__record_check_time(&f[i].rec, now_us) != KW_OK)
      __builtin_trap();
    kw__mdns_cache_put(&cache, &f[i], now_us);
    kw_endpoint_addr a;
    bool have = kw__mdns_cache_get(&cache, f[i].rec.addr.id, now_us, &a);
    if (f[i].ttl_s > 0 && !have && i + 1 == nf)
      __builtin_trap();
  }
  return 0;
}
