/* SPDX-License-Identifier: MIT */
/* Strict bencode. See bencode.h. */
#include "core/bencode.h"

#include <stdio.h>
#include <string.h>

typedef struct parser {
  kw__rbuf b;
  kw__be_tok *toks;
  size_t cap, n;
  kw_err err;
} parser;

static uint8_t peek(const kw__rbuf *b) {
  return kw__rbuf_left(b) ? b->p[b->off] : 0;
}

/* Digits up to `end`, no leading zero unless the number is 0. */
static bool digits(kw__rbuf *b, uint8_t end, bool neg_ok, int64_t *out) {
  bool neg = false;
  if (neg_ok && peek(b) == '-') {
    neg = true;
    kw__rbuf_u8(b);
  }
  uint64_t v = 0;
  size_t nd = 0;
  bool lead0 = false;
  for (;;) {
    uint8_t c = kw__rbuf_u8(b);
    if (b->err)
      return false;
    if (c == end)
      break;
    if (c < '0' || c > '9')
      return false;
    if (nd == 0 && c == '0')
      lead0 = true;
    else if (lead0)
      return false;
    if (++nd > 19)
      return false;
    v = v * 10 + (uint64_t)(c - '0');
  }
  if (nd == 0 || (neg && (lead0 || v > (uint64_t)INT64_MAX + 1)) ||
      (!neg && v > (uint64_t)INT64_MAX))
    return false;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return true;
}

static size_t value(parser *ps, unsigned depth);

static size_t newtok(parser *ps, kw__be_type t) {
  if (ps->n >= ps->cap) {
    ps->err = KW_ERR_FULL;
    return SIZE_MAX;
  }
  kw__be_tok *k = &ps->toks[ps->n];
  memset(k, 0, sizeof *k);
  k->type = t;
  k->off = ps->b.off;
  return ps->n++;
}

static bool str_body(parser *ps, kw__be_tok *k) {
  int64_t n;
  if (!digits(&ps->b, ':', false, &n))
    return false;
  const uint8_t *s = kw__rbuf_take(&ps->b, (size_t)n);
  if (!s)
    return false;
  k->s = s;
  k->slen = (size_t)n;
  return true;
}

/* Returns the token index or SIZE_MAX (ps->err set). */
static size_t value(parser *ps, unsigned depth) {
  uint8_t c = peek(&ps->b);
  size_t ti;
  if (c == 'i') {
    ti = newtok(ps, KW_BE_INT);
    if (ti == SIZE_MAX)
      return ti;
    kw__rbuf_u8(&ps->b);
    if (!digits(&ps->b, 'e', true, &ps->toks[ti].i))
      goto bad;
  } else if (c >= '0' && c <= '9') {
    ti = newtok(ps, KW_BE_STR);
    if (ti == SIZE_MAX)
      return ti;
    if (!str_body(ps, &ps->toks[ti]))
      goto bad;
  } else if (c == 'l' || c == 'd') {
    if (depth >= KW_BE_MAX_DEPTH)
      goto bad_nt;
    ti = newtok(ps, c == 'l' ? KW_BE_LIST : KW_BE_DICT);
    if (ti == SIZE_MAX)
      return ti;
    kw__rbuf_u8(&ps->b);
    size_t nch = 0;
    const uint8_t *prev = NULL;
    size_t prevlen = 0;
    while (peek(&ps->b) != 'e') {
      if (kw__rbuf_left(&ps->b) == 0)
        goto bad;
      if (c == 'd') {
        if (peek(&ps->b) < '0' || peek(&ps->b) > '9')
          goto bad;
        size_t ki = value(ps, depth + 1);
        if (ki == SIZE_MAX)
          return ki;
        const kw__be_tok *k = &ps->toks[ki];
        if (prev) {
          size_t m = prevlen < k->slen ? prevlen : k->slen;
          int cmp = m ? memcmp(prev, k->s, m) : 0;
          if (cmp > 0 || (cmp == 0 && prevlen >= k->slen))
            goto bad;
        }
        prev = k->s;
        prevlen = k->slen;
        nch++;
      }
      if (value(ps, depth + 1) == SIZE_MAX)
        return SIZE_MAX;
      nch++;
    }
    kw__rbuf_u8(&ps->b);
    ps->toks[ti].n = nch;
  } else {
    goto bad_nt;
  }
  if (ps->b.err)
    goto bad;
  ps->toks[ti].len = ps->b.off - ps->toks[ti].off;
  ps->toks[ti].next = ps->n;
  return ti;
bad:
bad_nt:
  ps->err = KW_ERR_PARSE;
  return SIZE_MAX;
}

kw_err kw__be_parse(const uint8_t *p, size_t len, kw__be_tok *toks,
                    size_t cap, size_t *ntok) {
  if (!toks || !ntok || (!p && len))
    return KW_ERR_INVALID_ARG;
  parser ps;
  kw__rbuf_init(&ps.b, p, len);
  ps.toks = toks;
  ps.cap = cap;
  ps.n = 0;
  ps.err = KW_OK;
  *ntok = 0;
  if (len == 0)
    return KW_ERR_PARSE;
  if (value(&ps, 0) == SIZE_MAX)
    return ps.err ? ps.err : KW_ERR_PARSE;
  if (kw__rbuf_left(&ps.b) != 0)
    return KW_ERR_PARSE;
  *ntok = ps.n;
  return KW_OK;
}

size_t kw__be_dict_get(const kw__be_tok *toks, size_t d, const char *key) {
  if (toks[d].type != KW_BE_DICT)
    return 0;
  size_t kl = strlen(key);
  size_t i = d + 1;
  for (size_t e = 0; e < toks[d].n / 2; e++) {
    size_t v = toks[i].next;
    if (toks[i].slen == kl && memcmp(toks[i].s, key, kl) == 0)
      return v;
    i = toks[v].next;
  }
  return 0;
}

void kw__be_str(kw__wbuf *w, const void *p, size_t n) {
  char h[24];
  int k = snprintf(h, sizeof h, "%zu:", n);
  kw__wbuf_bytes(w, h, (size_t)k);
  kw__wbuf_bytes(w, p, n);
}

void kw__be_cstr(kw__wbuf *w, const char *s) { kw__be_str(w, s, strlen(s)); }

void kw__be_int(kw__wbuf *w, int64_t v) {
  char h[24];
  int k = snprintf(h, sizeof h, "i%llde", (long long)v);
  kw__wbuf_bytes(w, h, (size_t)k);
}
