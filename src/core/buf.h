/* SPDX-License-Identifier: MIT */
/*
 * Bounds-checked byte readers and writers. Every parser of outside bytes
 * reads through kw__rbuf: a read past the end sets a sticky error and
 * yields zeros, so a parser checks once at the end (or early, where it
 * loops). Writers do the same on overflow. All integers are big-endian
 * (network order).
 */
#ifndef KW_CORE_BUF_H
#define KW_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct kw__rbuf {
  const uint8_t *p;
  size_t len;
  size_t off;
  bool err; /* sticky: set by any short read */
} kw__rbuf;

typedef struct kw__wbuf {
  uint8_t *p;
  size_t cap;
  size_t off;
  bool err; /* sticky: set by any write that did not fit */
} kw__wbuf;

static inline void kw__rbuf_init(kw__rbuf *b, const void *p, size_t len) {
  b->p = (const uint8_t *)p;
  b->len = len;
  b->off = 0;
  b->err = false;
}

static inline size_t kw__rbuf_left(const kw__rbuf *b) {
  return b->err ? 0 : b->len - b->off;
}

/* Returns a pointer to the next n bytes and advances, or NULL (and sets err)
 * if fewer are left. */
static inline const uint8_t *kw__rbuf_take(kw__rbuf *b, size_t n) {
  if (b->err || b->len - b->off < n) {
    b->err = true;
    return NULL;
  }
  const uint8_t *r = b->p + b->off;
  b->off += n;
  return r;
}

static inline uint8_t kw__rbuf_u8(kw__rbuf *b) {
  const uint8_t *q = kw__rbuf_take(b, 1);
  return q ? q[0] : 0;
}

static inline uint16_t kw__rbuf_u16(kw__rbuf *b) {
  const uint8_t *q = kw__rbuf_take(b, 2);
  return q ? (uint16_t)((q[0] << 8) | q[1]) : 0;
}

static inline uint32_t kw__rbuf_u32(kw__rbuf *b) {
  const uint8_t *q = kw__rbuf_take(b, 4);
  return q ? ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) |
                 ((uint32_t)q[2] << 8) | q[3]
           : 0;
}

static inline uint64_t kw__rbuf_u64(kw__rbuf *b) {
  uint64_t hi = kw__rbuf_u32(b);
  return (hi << 32) | kw__rbuf_u32(b);
}

/* Copies n bytes into out (zeros on error). */
static inline bool kw__rbuf_copy(kw__rbuf *b, void *out, size_t n) {
  const uint8_t *q = kw__rbuf_take(b, n);
  if (!q) {
    memset(out, 0, n);
    return false;
  }
  memcpy(out, q, n);
  return true;
}

static inline void kw__wbuf_init(kw__wbuf *b, void *p, size_t cap) {
  b->p = (uint8_t *)p;
  b->cap = cap;
  b->off = 0;
  b->err = false;
}

/* Reserves n bytes and returns a pointer to them, or NULL (sets err). */
static inline uint8_t *kw__wbuf_reserve(kw__wbuf *b, size_t n) {
  if (b->err || b->cap - b->off < n) {
    b->err = true;
    return NULL;
  }
  uint8_t *r = b->p + b->off;
  b->off += n;
  return r;
}

static inline void kw__wbuf_bytes(kw__wbuf *b, const void *src, size_t n) {
  uint8_t *q = kw__wbuf_reserve(b, n);
  if (q && n)
    memcpy(q, src, n);
}

static inline void kw__wbuf_u8(kw__wbuf *b, uint8_t v) {
  kw__wbuf_bytes(b, &v, 1);
}

static inline void kw__wbuf_u16(kw__wbuf *b, uint16_t v) {
  uint8_t t[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  kw__wbuf_bytes(b, t, 2);
}

static inline void kw__wbuf_u32(kw__wbuf *b, uint32_t v) {
  uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                  (uint8_t)v};
  kw__wbuf_bytes(b, t, 4);
}

static inline void kw__wbuf_u64(kw__wbuf *b, uint64_t v) {
  kw__wbuf_u32(b, (uint32_t)(v >> 32));
  kw__wbuf_u32(b, (uint32_t)v);
}

#endif /* KW_CORE_BUF_H */
