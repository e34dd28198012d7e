/* SPDX-License-Identifier: MIT */
/* Fixed-capacity address -> value map in LRU order (see addrlru.h). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/addrlru.h"
#include "core/sockaddr.h"

#define NIL UINT32_MAX
#define MAX_CAP (1u << 20)

static size_t bucket_of(const kw__addrlru *t, const kw_sockaddr *a) {
  uint8_t in[19];
  size_t alen = a->family == 4 ? 4 : a->family == 6 ? 16 : 0;
  in[0] = a->family;
  memcpy(in + 1, a->ip, alen);
  in[1 + alen] = (uint8_t)(a->port >> 8);
  in[2 + alen] = (uint8_t)a->port;
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, in, 3 + alen, t->hkey);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | h[i];
  return (size_t)(v % t->nbuckets);
}

kw_err kw__addrlru_init(kw__addrlru *t, size_t cap, size_t val_size) {
  if (!t)
    return KW_ERR_INVALID_ARG;
  memset(t, 0, sizeof(*t));
  if (cap == 0 || cap > MAX_CAP)
    return KW_ERR_INVALID_ARG;
  if (sodium_init() < 0)
    return KW_ERR_UNSUPPORTED;
  t->cap = cap;
  t->val_size = val_size;
  t->nbuckets = cap;
  t->ents = calloc(cap, sizeof(*t->ents));
  t->vals = calloc(cap, val_size ? val_size : 1);
  t->buckets = malloc(cap * sizeof(*t->buckets));
  if (!t->ents || !t->vals || !t->buckets) {
    kw__addrlru_free(t);
    return KW_ERR_NOMEM;
  }
  for (size_t i = 0; i < cap; i++) {
    t->buckets[i] = NIL;
    t->ents[i].hnext = i + 1 < cap ? (uint32_t)(i + 1) : NIL;
  }
  t->free_head = 0;
  t->mru = t->lru = NIL;
  randombytes_buf(t->hkey, sizeof(t->hkey));
  return KW_OK;
}

void kw__addrlru_free(kw__addrlru *t) {
  if (!t)
    return;
  free(t->ents);
  free(t->vals);
  free(t->buckets);
  memset(t, 0, sizeof(*t));
}

static void *val_at(kw__addrlru *t, uint32_t i) {
  return t->vals + (size_t)i * t->val_size;
}

static uint32_t find(const kw__addrlru *t, const kw_sockaddr *key,
                     size_t *bucket) {
  size_t b = bucket_of(t, key);
  if (bucket)
    *bucket = b;
  for (uint32_t i = t->buckets[b]; i != NIL; i = t->ents[i].hnext)
    if (kw__sockaddr_equal(&t->ents[i].key, key))
      return i;
  return NIL;
}

static void lru_unlink(kw__addrlru *t, uint32_t i) {
  kw__addrlru_ent *e = &t->ents[i];
  if (e->prev != NIL)
    t->ents[e->prev].next = e->next;
  else
    t->mru = e->next;
  if (e->next != NIL)
    t->ents[e->next].prev = e->prev;
  else
    t->lru = e->prev;
  e->prev = e->next = NIL;
}

static void lru_push_front(kw__addrlru *t, uint32_t i) {
  kw__addrlru_ent *e = &t->ents[i];
  e->prev = NIL;
  e->next = t->mru;
  if (t->mru != NIL)
    t->ents[t->mru].prev = i;
  t->mru = i;
  if (t->lru == NIL)
    t->lru = i;
}

static void remove_at(kw__addrlru *t, uint32_t i) {
  size_t b = bucket_of(t, &t->ents[i].key);
  uint32_t *pp = &t->buckets[b];
  while (*pp != NIL && *pp != i)
    pp = &t->ents[*pp].hnext;
  if (*pp == i)
    *pp = t->ents[i].hnext;
  lru_unlink(t, i);
  t->ents[i].hnext = t->free_head;
  t->free_head = i;
  t->n--;
}

void *kw__addrlru_get(kw__addrlru *t, const kw_sockaddr *key, uint64_t now) {
  if (!t || !t->ents || !key)
    return NULL;
  uint32_t i = find(t, key, NULL);
  if (i == NIL)
    return NULL;
  t->ents[i].used = now;
  lru_unlink(t, i);
  lru_push_front(t, i);
  return val_at(t, i);
}

void *kw__addrlru_peek(kw__addrlru *t, const kw_sockaddr *key, uint64_t *used) {
  if (!t || !t->ents || !key)
    return NULL;
  uint32_t i = find(t, key, NULL);
  if (i == NIL)
    return NULL;
  if (used)
    *used = t->ents[i].used;
  return val_at(t, i);
}

void *kw__addrlru_put(kw__addrlru *t, const kw_sockaddr *key, uint64_t now,
                      bool *created) {
  if (created)
    *created = false;
  if (!t || !t->ents || !key)
    return NULL;
  void *v = kw__addrlru_get(t, key, now);
  if (v)
    return v;
  if (t->n == t->cap)
    remove_at(t, t->lru);
  uint32_t i = t->free_head;
  t->free_head = t->ents[i].hnext;
  kw__addrlru_ent *e = &t->ents[i];
  memset(&e->key, 0, sizeof(e->key));
  e->key.family = key->family;
  e->key.port = key->port;
  memcpy(e->key.ip, key->ip, key->family == 4 ? 4 : key->family == 6 ? 16 : 0);
  e->used = now;
  size_t b = bucket_of(t, &e->key);
  e->hnext = t->buckets[b];
  t->buckets[b] = i;
  lru_push_front(t, i);
  t->n++;
  v = val_at(t, i);
  memset(v, 0, t->val_size);
  if (created)
    *created = true;
  return v;
}

bool kw__addrlru_del(kw__addrlru *t, const kw_sockaddr *key) {
  if (!t || !t->ents || !key)
    return false;
  uint32_t i = find(t, key, NULL);
  if (i == NIL)
    return false;
  remove_at(t, i);
  return true;
}

size_t kw__addrlru_expire(kw__addrlru *t, uint64_t before) {
  size_t n = 0;
  if (!t || !t->ents)
    return 0;
  while (t->lru != NIL && t->ents[t->lru].used < before) {
    remove_at(t, t->lru);
    n++;
  }
  return n;
}

size_t kw__addrlru_count(const kw__addrlru *t) {
  return t ? t->n : 0;
}
