/* SPDX-License-Identifier: MIT */
/* Bounded lookup store of signed endpoint records. See lookup_store.h. */
#include "core/lookup_store.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Allocation failures inside uthash are reported (hh.tbl == NULL after an
 * add), never fatal. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

typedef struct entry {
  uint8_t id[KW_ID_LEN];
  uint64_t timestamp_us;
  uint64_t expiry_us;
  size_t heap_idx;
  bool pinned;               /* its id is connected: never evicted */
  struct entry *prev, *next; /* eviction list (unpinned only), oldest first */
  uint8_t *bytes;            /* the signed record as put */
  size_t len;
  UT_hash_handle hh;
} entry;

struct kw__lookup_store {
  entry *map;   /* uthash head */
  entry **heap; /* min-heap on expiry_us, `count` used of `capacity` */
  size_t count;
  size_t capacity;
  entry *old_head, *old_tail; /* unpinned records by put order */
  uint8_t key[crypto_shorthash_KEYBYTES];
};

static unsigned hash_id(const kw__lookup_store *s, const uint8_t *id) {
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, id, KW_ID_LEN, s->key);
  return (unsigned)h[0] | (unsigned)h[1] << 8 | (unsigned)h[2] << 16 |
         (unsigned)h[3] << 24;
}

/* ---- heap -------------------------------------------------------------- */

static void heap_set(kw__lookup_store *s, size_t i, entry *e) {
  s->heap[i] = e;
  e->heap_idx = i;
}

static void heap_up(kw__lookup_store *s, size_t i) {
  entry *e = s->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (s->heap[parent]->expiry_us <= e->expiry_us)
      break;
    heap_set(s, i, s->heap[parent]);
    i = parent;
  }
  heap_set(s, i, e);
}

static void heap_down(kw__lookup_store *s, size_t i) {
  entry *e = s->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    uint64_t best = e->expiry_us;
    if (l < s->count && s->heap[l]->expiry_us < best) {
      m = l;
      best = s->heap[l]->expiry_us;
    }
    if (r < s->count && s->heap[r]->expiry_us < best)
      m = r;
    if (m == i)
      break;
    heap_set(s, i, s->heap[m]);
    i = m;
  }
  heap_set(s, i, e);
}

static void heap_remove(kw__lookup_store *s, entry *e) {
  size_t i = e->heap_idx;
  s->count--;
  if (i == s->count)
    return;
  entry *last = s->heap[s->count];
  heap_set(s, i, last);
  heap_up(s, i);
  heap_down(s, last->heap_idx);
}

/* ---- eviction list ---------------------------------------------------- */

static void list_unlink(kw__lookup_store *s, entry *e) {
  if (e->prev)
    e->prev->next = e->next;
  else if (s->old_head == e)
    s->old_head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else if (s->old_tail == e)
    s->old_tail = e->prev;
  e->prev = e->next = NULL;
}

static void list_append(kw__lookup_store *s, entry *e) {
  e->next = NULL;
  e->prev = s->old_tail;
  if (s->old_tail)
    s->old_tail->next = e;
  else
    s->old_head = e;
  s->old_tail = e;
}

/* ---- store ------------------------------------------------------------- */

static void drop(kw__lookup_store *s, entry *e) {
  if (!e->pinned)
    list_unlink(s, e);
  HASH_DELETE(hh, s->map, e);
  heap_remove(s, e);
  free(e->bytes);
  free(e);
}

kw_err kw__lookup_store_new(size_t capacity, kw__lookup_store **out) {
  if (!out || capacity == 0 || capacity > SIZE_MAX / sizeof(entry *))
    return KW_ERR_INVALID_ARG;
  kw__lookup_store *s = calloc(1, sizeof(*s));
  if (!s)
    return KW_ERR_NOMEM;
  s->heap = malloc(capacity * sizeof(entry *));
  if (!s->heap) {
    free(s);
    return KW_ERR_NOMEM;
  }
  s->capacity = capacity;
  randombytes_buf(s->key, sizeof(s->key));
  *out = s;
  return KW_OK;
}

void kw__lookup_store_free(kw__lookup_store *s) {
  if (!s)
    return;
  entry *e, *tmp;
  HASH_ITER(hh, s->map, e, tmp) {
    HASH_DELETE(hh, s->map, e);
    free(e->bytes);
    free(e);
  }
  free(s->heap);
  free(s);
}

size_t kw__lookup_store_expire(kw__lookup_store *s, uint64_t now_us) {
  size_t n = 0;
  while (s->count > 0 && s->heap[0]->expiry_us <= now_us) {
    drop(s, s->heap[0]);
    n++;
  }
  return n;
}

size_t kw__lookup_store_count(const kw__lookup_store *s) {
  return s->count;
}

static entry *find(kw__lookup_store *s, const uint8_t *id) {
  entry *e = NULL;
  unsigned hv = hash_id(s, id);
  HASH_FIND_BYHASHVALUE(hh, s->map, id, KW_ID_LEN, hv, e);
  return e;
}

kw_err kw__lookup_store_put(kw__lookup_store *s, const uint8_t *rec, size_t len,
                            uint64_t now_us, kw__record *parsed) {
  return kw__lookup_store_put_pinned(s, rec, len, now_us, false, parsed);
}

void kw__lookup_store_pin(kw__lookup_store *s, const uint8_t id[KW_ID_LEN],
                          bool pinned) {
  if (!s || !id)
    return;
  entry *e = find(s, id);
  if (!e || e->pinned == pinned)
    return;
  e->pinned = pinned;
  if (pinned)
    list_unlink(s, e);
  else
    list_append(s, e); /* just left: the youngest of the evictable */
}

kw_err kw__lookup_store_put_pinned(kw__lookup_store *s, const uint8_t *rec,
                                   size_t len, uint64_t now_us, bool pinned,
                                   kw__record *parsed) {
  if (!s || (!rec && len))
    return KW_ERR_INVALID_ARG;
  kw__record r;
  kw_err err = kw__record_decode(rec, len, &r);
  if (err != KW_OK)
    return err;
  if (parsed)
    *parsed = r;
  uint64_t expiry = kw__record_expiry(&r);
  if (expiry <= now_us)
    return KW_ERR_INVALID_ARG; /* expired */
  if (r.timestamp_us > now_us &&
      r.timestamp_us - now_us > KW_LOOKUP_MAX_SKEW_US)
    return KW_ERR_INVALID_ARG; /* from the future */
  kw__lookup_store_expire(s, now_us);

  uint8_t *copy = malloc(len);
  if (!copy)
    return KW_ERR_NOMEM;
  memcpy(copy, rec, len);

  entry *e = find(s, r.addr.id);
  if (e) {
    if (r.timestamp_us <= e->timestamp_us) {
      free(copy);
      return KW_ERR_STATE;
    }
    free(e->bytes);
    e->bytes = copy;
    e->len = len;
    e->timestamp_us = r.timestamp_us;
    e->expiry_us = expiry;
    heap_up(s, e->heap_idx);
    heap_down(s, e->heap_idx);
    if (!e->pinned)
      list_unlink(s, e);
    e->pinned = pinned;
    if (!pinned)
      list_append(s, e); /* refreshed: the youngest again */
    return KW_OK;
  }

  if (s->count == s->capacity) {
    /* the oldest record of an id that is not connected makes room; when
     * every record belongs to a connected id, nothing is evicted */
    if (!s->old_head) {
      free(copy);
      return KW_ERR_FULL;
    }
    drop(s, s->old_head);
  }
  e = calloc(1, sizeof(*e));
  if (!e) {
    free(copy);
    return KW_ERR_NOMEM;
  }
  memcpy(e->id, r.addr.id, KW_ID_LEN);
  e->bytes = copy;
  e->len = len;
  e->timestamp_us = r.timestamp_us;
  e->expiry_us = expiry;
  unsigned hv = hash_id(s, e->id);
  HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->map, e->id, KW_ID_LEN, hv, e);
  if (e->hh.tbl == NULL) {
    free(copy);
    free(e);
    return KW_ERR_NOMEM;
  }
  s->count++;
  heap_set(s, s->count - 1, e);
  heap_up(s, s->count - 1);
  e->pinned = pinned;
  if (!pinned)
    list_append(s, e);
  return KW_OK;
}

kw_err kw__lookup_store_get(kw__lookup_store *s, const uint8_t id[KW_ID_LEN],
                            uint64_t now_us, uint8_t *out, size_t cap,
                            size_t *outlen) {
  if (!s || !id || !outlen)
    return KW_ERR_INVALID_ARG;
  entry *e = find(s, id);
  if (!e)
    return KW_ERR_NOT_FOUND;
  if (e->expiry_us <= now_us) {
    drop(s, e);
    return KW_ERR_NOT_FOUND;
  }
  *outlen = e->len;
  if (!out || cap < e->len)
    return KW_ERR_BUFFER;
  memcpy(out, e->bytes, e->len);
  return KW_OK;
}
