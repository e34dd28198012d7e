/* SPDX-License-Identifier: MIT */
/*
 * Connection-id map: QUIC connection ids (1..20 bytes) to an owner pointer.
 * Chained hash table keyed with SipHash under a per-map random key (ids of
 * incoming Initials are chosen by strangers, so the hash must not be
 * predictable). Bounded: at most `max` entries; kw__cidmap_put refuses more
 * with KW_ERR_FULL.
 */
#ifndef KW_CORE_CIDMAP_H
#define KW_CORE_CIDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define KW_CID_MAXLEN 20

typedef struct kw__cident kw__cident;
struct kw__cident {
  kw__cident *next;
  uint8_t len;
  uint8_t cid[KW_CID_MAXLEN];
  void *val;
};

typedef struct kw__cidmap {
  kw__cident **buckets;
  size_t nbuckets; /* power of two */
  size_t count;
  size_t max;
  uint8_t key[16];
} kw__cidmap;

/* Initialises an empty map holding at most `max` ids. */
kw_err kw__cidmap_init(kw__cidmap *m, size_t max);
void kw__cidmap_free(kw__cidmap *m);
/* Adds or replaces. Errors: KW_ERR_INVALID_ARG (len 0 or > 20),
 * KW_ERR_FULL, KW_ERR_NOMEM. */
kw_err kw__cidmap_put(kw__cidmap *m, const uint8_t *cid, size_t len,
                      void *val);
/* Returns the value or NULL. */
void *kw__cidmap_get(const kw__cidmap *m, const uint8_t *cid, size_t len);
/* Removes; returns true if it was there. */
int kw__cidmap_del(kw__cidmap *m, const uint8_t *cid, size_t len);

#endif
