/* SPDX-License-Identifier: MIT */
/* Fuzz the relay frame decoder: the input is a TCP byte stream. It is
 * decoded whole and again in chunks whose sizes come from the input; both
 * must yield the same frames and end the same way. Every frame that parses
 * must encode back to exactly its bytes. */
#include <stdint.h>
#include <string.h>

#include "core/relay_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct summary {
  uint64_t hash;
  size_t frames;
  kw_err last;
} summary;

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static uint8_t enc[KW_RELAY_FRAME_HDR + KW_RELAY_MAX_FRAME];

static void check_frame(const kw__relay_frame *f) {
  if (f->len > KW_RELAY_MAX_FRAME)
    __builtin_trap();
  kw__relay_msg m;
  if (kw__relay_parse(f, &m) != KW_OK)
    return;
  size_t n;
  if (kw__relay_encode(&m, enc, sizeof(enc), &n) != KW_OK)
    __builtin_trap();
  if (n != KW_RELAY_FRAME_HDR + f->len || enc[0] != f->type ||
      memcmp(enc + KW_RELAY_FRAME_HDR, f->payload, f->len) != 0)
    __builtin_trap();
}

static summary run(const uint8_t *data, size_t size, const uint8_t *sizes,
                   size_t nsizes, uint32_t max) {
  summary s = {0xcbf29ce484222325ull, 0, KW_ERR_AGAIN};
  kw__relay_dec d;
  kw__relay_dec_init(&d, max);
  size_t off = 0, k = 0;
  while (off < size && s.last != KW_ERR_PARSE) {
    size_t c = nsizes ? (size_t)sizes[k++ % nsizes] + 1 : size;
    if (c > size - off)
      c = size - off;
    const uint8_t *in = data + off;
    size_t inlen = c;
    for (;;) {
      kw__relay_frame f;
      kw_err e = kw__relay_dec_next(&d, &in, &inlen, &f);
      s.last = e;
      if (e != KW_OK)
        break;
      check_frame(&f);
      s.frames++;
      s.hash = fnv(s.hash, &f.type, 1);
      s.hash = fnv(s.hash, f.payload, f.len);
    }
    if (s.last == KW_ERR_AGAIN && inlen != 0)
      __builtin_trap();
    off += c;
  }
  kw__relay_dec_free(&d);
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  /* First byte: how many chunk sizes follow; then the stream. */
  size_t nsizes = data[0] % 16;
  if (size < 1 + nsizes)
    return 0;
  const uint8_t *sizes = data + 1;
  const uint8_t *stream = data + 1 + nsizes;
  size_t slen = size - 1 - nsizes;
  summary a = run(stream, slen, NULL, 0, 0);
  summary b = run(stream, slen, sizes, nsizes, 0);
  if (a.frames != b.frames || a.hash != b.hash || a.last != b.last)
    __builtin_trap();
  /* A smaller limit fails no later than the default one. */
  summary c = run(stream, slen, sizes, nsizes, 1024);
  if (c.frames > a.frames)
    __builtin_trap();
  return 0;
}
