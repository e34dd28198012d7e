/* SPDX-License-Identifier: MIT */
/*
 * Strict bencode (BEP 3) for KRPC and BEP 44 (docs/protocol/dht.md).
 *
 * The decoder turns one bencoded value into a flat array of tokens in
 * document order; a container's token is followed by its children, and
 * `next` is the index just past its subtree. It accepts exactly one
 * encoding per value: integers without leading zeros, "-0" or a "+",
 * within int64; string lengths without leading zeros; dictionary keys
 * strings in strictly increasing byte order; depth at most
 * KW_BE_MAX_DEPTH; nothing after the value. Strings point into the input.
 *
 * The encoder writes into a kw__wbuf; the caller orders dictionary keys.
 */
#ifndef KW_CORE_BENCODE_H
#define KW_CORE_BENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "keyway.h"

#define KW_BE_MAX_DEPTH 8

typedef enum kw__be_type {
  KW_BE_INT = 1,
  KW_BE_STR,
  KW_BE_LIST,
  KW_BE_DICT,
} kw__be_type;

typedef struct kw__be_tok {
  kw__be_type type;
  size_t off, len;   /* the encoded span of the value in the input */
  int64_t i;         /* KW_BE_INT */
  const uint8_t *s;  /* KW_BE_STR: the bytes */
  size_t slen;
  size_t n;          /* containers: children (a dict: 2 per entry) */
  size_t next;       /* index of the token after this subtree */
} kw__be_tok;

/* Parses p[0..len) into toks[0..cap). Errors: KW_ERR_PARSE (not strict
 * bencode as above), KW_ERR_FULL (more than `cap` tokens). */
kw_err kw__be_parse(const uint8_t *p, size_t len, kw__be_tok *toks,
                    size_t cap, size_t *ntok);

/* In the dict at toks[d], the index of the value of `key`, or 0 if absent
 * (index 0 is always the top-level value, never a dict's value). */
size_t kw__be_dict_get(const kw__be_tok *toks, size_t d, const char *key);

void kw__be_str(kw__wbuf *w, const void *p, size_t n);
void kw__be_cstr(kw__wbuf *w, const char *s);
void kw__be_int(kw__wbuf *w, int64_t v);
static inline void kw__be_open_dict(kw__wbuf *w) { kw__wbuf_u8(w, 'd'); }
static inline void kw__be_open_list(kw__wbuf *w) { kw__wbuf_u8(w, 'l'); }
static inline void kw__be_close(kw__wbuf *w) { kw__wbuf_u8(w, 'e'); }

#endif /* KW_CORE_BENCODE_H */
