/* SPDX-License-Identifier: MIT */
/*
 * A small sans-IO Mainline DHT node (BEP 5 KRPC, BEP 44 items;
 * docs/protocol/dht.md section 3). The caller owns the UDP socket and the
 * clock: it feeds datagrams to kw__dht_input, calls kw__dht_tick by
 * kw__dht_next_ms, and sends what the node hands to cbs.send. SHA-1
 * (tokens, item targets) comes from cbs.sha1.
 *
 * What it does:
 *  - answers ping, find_node, get and put (mutable items only; immutable
 *    puts get error 203, other methods 204);
 *  - iterative lookups (K = KW_DHT_K closest, KW_DHT_ALPHA in flight) for
 *    find_node (bootstrap, refresh), get (best verified item: highest seq)
 *    and put (a get lookup for write tokens, then put to the K closest).
 *
 * Bounds and overflow policies:
 *  - routing table KW_DHT_TABLE_MAX nodes (IPv4 only: compact nodes are
 *    IPv4), flat; when full a node that failed KW_DHT_BAD_FAILS queries in
 *    a row is replaced, else the one farthest from our id if the newcomer
 *    is closer, else the newcomer is dropped;
 *  - stored items KW_DHT_STORE_MAX; when full the item stored (or last
 *    refreshed) longest ago is evicted; an item not refreshed for
 *    KW_DHT_ITEM_LIFE_MS is dropped;
 *  - KW_DHT_OPS_MAX lookups at once (KW_ERR_FULL beyond), each keeping
 *    the KW_DHT_OP_CANDS closest candidates it heard of;
 *  - KW_DHT_BOOT_MAX bootstrap addresses (KW_ERR_FULL beyond).
 * Tokens: the first 8 bytes of SHA-1(secret || ip), secret rotated every
 * KW_DHT_TOKEN_ROTATE_MS; the current and the previous one are accepted.
 * Time is monotonic milliseconds, passed in. No global state.
 */
#ifndef KW_CORE_DHT_H
#define KW_CORE_DHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bep44.h"
#include "core/krpc.h"
#include "keyway.h"

#define KW_DHT_K 8
#define KW_DHT_ALPHA 3
#define KW_DHT_TABLE_MAX 128
#define KW_DHT_BAD_FAILS 2
#define KW_DHT_STORE_MAX 1024
#define KW_DHT_ITEM_LIFE_MS (2ull * 3600 * 1000)
#define KW_DHT_OPS_MAX 16
#define KW_DHT_OP_CANDS 16
#define KW_DHT_BOOT_MAX 8
#define KW_DHT_QUERY_MS 1000ull /* one query's answer */
#define KW_DHT_OP_MS 5000ull    /* one lookup, puts included */
#define KW_DHT_TOKEN_ROTATE_MS (5ull * 60 * 1000)
#define KW_DHT_REFRESH_MS (5ull * 60 * 1000) /* find_node(own id) */

typedef struct kw__dht kw__dht;

typedef struct kw__dht_item {
  uint8_t k[32];
  uint8_t salt[KW_KRPC_MAX_SALT];
  size_t salt_len;
  int64_t seq;
  uint8_t sig[64];
  uint8_t v[KW_KRPC_MAX_V]; /* bencoded */
  size_t v_len;
} kw__dht_item;

typedef enum kw__dht_op_kind {
  KW_DHT_OP_FIND = 1,
  KW_DHT_OP_GET,
  KW_DHT_OP_PUT,
} kw__dht_op_kind;

typedef struct kw__dht_cbs {
  kw__sha1_fn sha1;
  void (*send)(void *ctx, const kw_sockaddr *to, const uint8_t *p, size_t n);
  /* A get lookup ended: the verified item with the highest seq, or NULL. */
  void (*get_done)(void *ctx, uint32_t op, const kw__dht_item *item);
  /* A put ended: `stored` nodes acknowledged it (ours not counted). */
  void (*put_done)(void *ctx, uint32_t op, unsigned stored);
  void *ctx;
} kw__dht_cbs;

/* `secret` seeds the first token secret (later ones come from
 * randombytes). Errors: KW_ERR_INVALID_ARG, KW_ERR_NOMEM. */
kw_err kw__dht_new(const kw__dht_cbs *cbs, const uint8_t node_id[20],
                   uint64_t now_ms, kw__dht **out);
void kw__dht_free(kw__dht *d);

/* Adds a bootstrap address and starts a find_node(own id) lookup. */
kw_err kw__dht_bootstrap(kw__dht *d, const kw_sockaddr *addr, uint64_t now_ms);
void kw__dht_input(kw__dht *d, const kw_sockaddr *from, const uint8_t *p,
                   size_t n, uint64_t now_ms);
void kw__dht_tick(kw__dht *d, uint64_t now_ms);
/* When kw__dht_tick should run next (absolute ms). */
uint64_t kw__dht_next_ms(const kw__dht *d);

/* Starts a get lookup for the item of key k (and salt). Errors:
 * KW_ERR_FULL (KW_DHT_OPS_MAX running), KW_ERR_INVALID_ARG. */
kw_err kw__dht_get(kw__dht *d, const uint8_t k[32], const uint8_t *salt,
                   size_t salt_len, uint64_t now_ms, uint32_t *op);
/* Stores the item locally and starts a put lookup. Errors:
 * KW_ERR_KEY_MISMATCH (signature does not verify), KW_ERR_FULL,
 * KW_ERR_INVALID_ARG. */
kw_err kw__dht_put(kw__dht *d, const kw__dht_item *it, uint64_t now_ms,
                   uint32_t *op);

/* The stored item of target, or NULL. */
const kw__dht_item *kw__dht_lookup_local(const kw__dht *d,
                                         const uint8_t target[20]);
size_t kw__dht_node_count(const kw__dht *d);
size_t kw__dht_item_count(const kw__dht *d);
const uint8_t *kw__dht_id(const kw__dht *d);

#endif /* KW_CORE_DHT_H */
