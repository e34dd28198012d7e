/* SPDX-License-Identifier: MIT */
/* Connection-id map (see cidmap.h). */
#include "core/cidmap.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static size_t slot(const kw__cidmap *m, const uint8_t *cid, size_t len) {
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, cid, len, m->key);
  uint64_t v;
  memcpy(&v, h, sizeof v);
  return (size_t)(v & (m->nbuckets - 1));
}

kw_err kw__cidmap_init(kw__cidmap *m, size_t max) {
  memset(m, 0, sizeof *m);
  if (sodium_init() < 0)
    return KW_ERR_NOMEM;
  m->nbuckets = 64;
  m->max = max;
  m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
  if (!m->buckets)
    return KW_ERR_NOMEM;
  randombytes_buf(m->key, sizeof m->key);
  return KW_OK;
}

void kw__cidmap_free(kw__cidmap *m) {
  if (!m->buckets)
    return;
  for (size_t i = 0; i < m->nbuckets; i++) {
    kw__cident *e = m->buckets[i];
    while (e) {
      kw__cident *n = e->next;
      free(e);
      e = n;
    }
  }
  free(m->buckets);
  m->buckets = NULL;
  m->count = 0;
}

static kw__cident **find(const kw__cidmap *m, const uint8_t *cid, size_t len) {
  kw__cident **pp = &m->buckets[slot(m, cid, len)];
  for (; *pp; pp = &(*pp)->next)
    if ((*pp)->len == len && memcmp((*pp)->cid, cid, len) == 0)
      return pp;
  return pp;
}

static kw_err grow(kw__cidmap *m) {
  size_t nb = m->nbuckets * 2;
  kw__cident **b = calloc(nb, sizeof *b);
  if (!b)
    return KW_ERR_NOMEM;
  kw__cident **old = m->buckets;
  size_t oldn = m->nbuckets;
  m->buckets = b;
  m->nbuckets = nb;
  for (size_t i = 0; i < oldn; i++) {
    kw__cident *e = old[i];
    while (e) {
      kw__cident *n = e->next;
      size_t s = slot(m, e->cid, e->len);
      e->next = b[s];
      b[s] = e;
      e = n;
    }
  }
  free(old);
  return KW_OK;
}

kw_err kw__cidmap_put(kw__cidmap *m, const uint8_t *cid, size_t len,
                      void *val) {
  if (!m || !cid || len == 0 || len > KW_CID_MAXLEN)
    return KW_ERR_INVALID_ARG;
  kw__cident **pp = find(m, cid, len);
  if (*pp) {
    (*pp)->val = val;
    return KW_OK;
  }
  if (m->count >= m->max)
    return KW_ERR_FULL;
  kw__cident *e = calloc(1, sizeof *e);
  if (!e)
    return KW_ERR_NOMEM;
  e->len = (uint8_t)len;
  memcpy(e->cid, cid, len);
  e->val = val;
  *pp = e;
  m->count++;
  if (m->count > m->nbuckets * 2)
    (void)grow(m); /* a failed grow only costs speed */
  return KW_OK;
}

void *kw__cidmap_get(const kw__cidmap *m, const uint8_t *cid, size_t len) {
  if (!m || !cid || len == 0 || len > KW_CID_MAXLEN)
    return NULL;
  kw__cident **pp = find(m, cid, len);
  return *pp ? (*pp)->val : NULL;
}

int kw__cidmap_del(kw__cidmap *m, const uint8_t *cid, size_t len) {
  if (!m || !cid || len == 0 || len > KW_CID_MAXLEN)
    return 0;
  kw__cident **pp = find(m, cid, len);
  if (!*pp)
    return 0;
  kw__cident *e = *pp;
  *pp = e->next;
  free(e);
  m->count--;
  return 1;
}
