/* SPDX-License-Identifier: MIT */
/*
 * A fixed-capacity map from socket address to a small value, in least
 * recently used order. Used by the disco pong rate limiter and the
 * punishment table (addr_filter.h), both of which must stay bounded no
 * matter how many source addresses a stranger makes up.
 *
 *  - Capacity is fixed at init; all memory is allocated then, never later.
 *  - Overflow policy: inserting into a full table evicts the least recently
 *    used entry.
 *  - Buckets are chosen by SipHash (crypto_shorthash) under a per-table
 *    random key, so addresses chosen by strangers cannot aim at one bucket.
 *  - Keys compare with kw__sockaddr_equal (bytes past the family's length
 *    are ignored).
 */
#ifndef KW_CORE_ADDRLRU_H
#define KW_CORE_ADDRLRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

typedef struct kw__addrlru_ent {
  kw_sockaddr key;
  uint64_t used;  /* time of the last get/put, ns */
  uint32_t hnext; /* bucket chain */
  uint32_t prev;  /* towards the most recently used */
  uint32_t next;  /* towards the least recently used */
} kw__addrlru_ent;

typedef struct kw__addrlru {
  size_t cap, n, val_size, nbuckets;
  kw__addrlru_ent *ents;
  uint8_t *vals;
  uint32_t *buckets;
  uint32_t mru, lru, free_head;
  uint8_t hkey[16];
} kw__addrlru;

/* Allocates a table of `cap` (1..2^20) entries each holding `val_size`
 * bytes of value. Errors: KW_ERR_INVALID_ARG, KW_ERR_NOMEM. */
kw_err kw__addrlru_init(kw__addrlru *t, size_t cap, size_t val_size);
/* Frees the table's memory (the struct itself is the caller's). */
void kw__addrlru_free(kw__addrlru *t);
/* Returns the value of `key` (marking it most recently used at `now`), or
 * NULL when absent. */
void *kw__addrlru_get(kw__addrlru *t, const kw_sockaddr *key, uint64_t now);
/* Returns the value of `key` without touching its recency, or NULL; sets
 * *used (if not NULL) to its last-use time. */
void *kw__addrlru_peek(kw__addrlru *t, const kw_sockaddr *key, uint64_t *used);
/* Returns the value of `key`, creating a zeroed one (and evicting the least
 * recently used entry if full) when absent; sets *created accordingly. */
void *kw__addrlru_put(kw__addrlru *t, const kw_sockaddr *key, uint64_t now,
                      bool *created);
/* Removes `key` if present; returns whether it was. */
bool kw__addrlru_del(kw__addrlru *t, const kw_sockaddr *key);
/* Removes every entry last used before `before`; returns how many. */
size_t kw__addrlru_expire(kw__addrlru *t, uint64_t before);
/* Number of entries. */
size_t kw__addrlru_count(const kw__addrlru *t);

#endif /* KW_CORE_ADDRLRU_H */
