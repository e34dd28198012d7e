/* SPDX-License-Identifier: MIT */
/* Fuzz KRPC decoding and the DHT node behind it: a decoded message
 * re-encodes and decodes to the same fields, and any input fed to a node
 * (with a stand-in hash) is handled without a crash; its answers decode. */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "core/dht.h"
#include "core/krpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void hash(void *ctx, const void *p, size_t n, uint8_t out[20]) {
  (void)ctx;
  crypto_generichash(out, 20, p, n, NULL, 0);
}

static void sent(void *ctx, const kw_sockaddr *to, const uint8_t *p,
                 size_t n) {
  (void)ctx;
  (void)to;
  kw__krpc_msg m;
  if (kw__krpc_decode(p, n, &m) != KW_OK)
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kw__krpc_msg m, d;
  if (kw__krpc_decode(data, size, &m) == KW_OK) {
    uint8_t buf[2 * KW_KRPC_MAX_MSG];
    size_t n;
    if ((m.y == 'q' && m.q == KW_KRPC_OTHER) ||
        kw__krpc_encode(&m, buf, sizeof buf, &n) != KW_OK) {
      /* unknown methods are not re-encodable */
    } else if (n <= KW_KRPC_MAX_MSG) {
      if (kw__krpc_decode(buf, n, &d) != KW_OK || d.y != m.y ||
          d.q != m.q || d.v_len != m.v_len || d.has_seq != m.has_seq ||
          d.seq != m.seq || d.nodes_len != m.nodes_len ||
          d.token_len != m.token_len)
        __builtin_trap();
    }
  }
  static kw__dht *node;
  if (!node) {
    if (sodium_init() < 0)
      return 0;
    kw__dht_cbs cbs = {hash, sent, NULL, NULL, NULL};
    uint8_t id[20] = {1, 2, 3};
    if (kw__dht_new(&cbs, id, 0, &node) != KW_OK)
      return 0;
  }
  kw_sockaddr from;
  memset(&from, 0, sizeof from);
  from.family = 4;
  from.ip[0] = 198;
  from.ip[1] = 18;
  from.ip[3] = size ? data[0] : 1;
  from.port = 6881;
  kw__dht_input(node, &from, data, size, 1000);
  kw__dht_tick(node, 1000);
  return 0;
}
