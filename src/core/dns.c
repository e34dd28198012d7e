/* SPDX-License-Identifier: MIT */
/* DNS message codec: see dns.h for the rules it enforces. */
#include "core/dns.h"

#include <string.h>

/* ---- names ---------------------------------------------------------- */

static uint8_t lower(uint8_t c) {
  return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Reads a name at b->off. The name's in-place bytes must lie inside b;
 * a compression pointer may jump anywhere in msg[0..) before itself, and
 * reading then stays below the pointer's own offset, so every jump goes
 * strictly backwards and no loop is possible. */
static bool read_name(const uint8_t *msg, kw__rbuf *b, kw__dns_name *out) {
  kw__rbuf cur = *b;
  bool jumped = false;
  unsigned hops = 0;
  size_t n = 0;
  for (;;) {
    size_t at = cur.off;
    uint8_t l = kw__rbuf_u8(&cur);
    if (cur.err)
      return false;
    if ((l & 0xc0) == 0xc0) {
      uint8_t lo = kw__rbuf_u8(&cur);
      if (cur.err)
        return false;
      size_t target = ((size_t)(l & 0x3f) << 8) | lo;
      if (target >= at || ++hops > KW_DNS_MAX_HOPS)
        return false;
      if (!jumped) {
        b->off = cur.off;
        jumped = true;
      }
      kw__rbuf_init(&cur, msg, at); /* stay below this pointer */
      cur.off = target;
      continue;
    }
    if (l & 0xc0)
      return false; /* 01 and 10: extended / reserved label types */
    if (n + 1u + l > KW_DNS_MAX_NAME)
      return false;
    out->b[n++] = l;
    if (l == 0)
      break;
    if (!kw__rbuf_copy(&cur, out->b + n, l))
      return false;
    n += l;
  }
  out->len = (uint8_t)n;
  if (!jumped)
    b->off = cur.off;
  return true;
}

bool kw__dns_name_equal(const kw__dns_name *a, const kw__dns_name *b) {
  if (a->len != b->len)
    return false;
  for (size_t i = 0; i < a->len; i++)
    if (lower(a->b[i]) != lower(b->b[i]))
      return false;
  return true;
}

unsigned kw__dns_name_labels(const kw__dns_name *n) {
  unsigned k = 0;
  for (size_t i = 0; i < n->len && n->b[i]; i += 1u + n->b[i])
    k++;
  return k;
}

const uint8_t *kw__dns_name_first(const kw__dns_name *n, size_t *len) {
  if (n->len < 2 || n->b[0] == 0) {
    *len = 0;
    return NULL;
  }
  *len = n->b[0];
  return n->b + 1;
}

kw_err kw__dns_name_prepend(const uint8_t *label, size_t len,
                            const kw__dns_name *parent, kw__dns_name *out) {
  if (len == 0 || len > KW_DNS_MAX_LABEL || parent->len == 0 ||
      1u + len + parent->len > KW_DNS_MAX_NAME)
    return KW_ERR_PARSE;
  kw__dns_name t;
  t.b[0] = (uint8_t)len;
  memcpy(t.b + 1, label, len);
  memcpy(t.b + 1 + len, parent->b, parent->len);
  t.len = (uint8_t)(1u + len + parent->len);
  *out = t;
  return KW_OK;
}

bool kw__dns_name_under(const kw__dns_name *n, const kw__dns_name *parent) {
  for (size_t i = 0; i < n->len; i += 1u + n->b[i]) {
    if ((size_t)n->len - i == parent->len) {
      for (size_t k = 0; k < parent->len; k++)
        if (lower(n->b[i + k]) != lower(parent->b[k]))
          return false;
      return true;
    }
    if (n->b[i] == 0)
      break;
  }
  return false;
}

kw_err kw__dns_name_from_text(const char *text, kw__dns_name *out) {
  size_t tl = strlen(text);
  if (tl == 1 && text[0] == '.')
    tl = 0;
  else if (tl && text[tl - 1] == '.')
    tl--;
  if (tl > KW_DNS_MAX_TEXT)
    return KW_ERR_PARSE;
  kw__dns_name t;
  size_t n = 0, i = 0;
  while (i < tl) {
    size_t j = i;
    while (j < tl && text[j] != '.') {
      unsigned char c = (unsigned char)text[j];
      if (c <= 0x20 || c >= 0x7f || c == '\\')
        return KW_ERR_PARSE;
      j++;
    }
    size_t l = j - i;
    if (l == 0 || l > KW_DNS_MAX_LABEL || n + 1 + l + 1 > KW_DNS_MAX_NAME)
      return KW_ERR_PARSE;
    t.b[n++] = (uint8_t)l;
    memcpy(t.b + n, text + i, l);
    n += l;
    i = j + 1;
    if (j < tl && i == tl)
      return KW_ERR_PARSE; /* "a..": an empty label before the end */
  }
  t.b[n++] = 0;
  t.len = (uint8_t)n;
  *out = t;
  return KW_OK;
}

kw_err kw__dns_name_to_text(const kw__dns_name *n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n->len && n->b[i]; i += 1u + n->b[i]) {
    size_t l = n->b[i];
    if (i + 1 + l > n->len)
      return KW_ERR_PARSE;
    if (o && o < cap)
      out[o] = '.';
    if (o)
      o++;
    for (size_t k = 0; k < l; k++) {
      uint8_t c = n->b[i + 1 + k];
      if (c <= 0x20 || c >= 0x7f || c == '.' || c == '\\')
        return KW_ERR_PARSE;
      if (o < cap)
        out[o] = (char)c;
      o++;
    }
  }
  if (o + 1 > cap)
    return KW_ERR_BUFFER;
  out[o] = 0;
  return KW_OK;
}

/* ---- decoding ------------------------------------------------------- */

static bool read_header(kw__rbuf *b, kw__dns_header *h) {
  h->id = kw__rbuf_u16(b);
  h->flags = kw__rbuf_u16(b);
  h->qdcount = kw__rbuf_u16(b);
  h->ancount = kw__rbuf_u16(b);
  h->nscount = kw__rbuf_u16(b);
  h->arcount = kw__rbuf_u16(b);
  return !b->err;
}

static bool read_question(const uint8_t *msg, kw__rbuf *b,
                          kw__dns_question *q) {
  if (!read_name(msg, b, &q->name))
    return false;
  q->type = kw__rbuf_u16(b);
  q->qclass = kw__rbuf_u16(b);
  return !b->err;
}

/* A name that fills rd exactly. */
static bool rdata_name(const uint8_t *msg, kw__rbuf *rd, kw__dns_name *n) {
  return read_name(msg, rd, n) && !rd->err && kw__rbuf_left(rd) == 0;
}

static bool read_rr(const uint8_t *msg, kw__rbuf *b, kw__dns_rr *rr) {
  if (!read_name(msg, b, &rr->name))
    return false;
  rr->type = kw__rbuf_u16(b);
  rr->rclass = kw__rbuf_u16(b);
  rr->ttl = kw__rbuf_u32(b);
  rr->rdlen = kw__rbuf_u16(b);
  size_t start = b->off;
  rr->rdata = kw__rbuf_take(b, rr->rdlen);
  if (b->err)
    return false;
  memset(&rr->u, 0, sizeof rr->u);
  /* RDATA: in place up to its end, pointers may reach before it. */
  kw__rbuf rd;
  kw__rbuf_init(&rd, msg, start + rr->rdlen);
  rd.off = start;
  switch (rr->type) {
  case KW_DNS_TYPE_A:
    return rr->rdlen == 4 && kw__rbuf_copy(&rd, rr->u.a, 4);
  case KW_DNS_TYPE_AAAA:
    return rr->rdlen == 16 && kw__rbuf_copy(&rd, rr->u.aaaa, 16);
  case KW_DNS_TYPE_PTR:
  case KW_DNS_TYPE_CNAME:
  case KW_DNS_TYPE_NS:
    return rdata_name(msg, &rd, &rr->u.target);
  case KW_DNS_TYPE_SRV:
    rr->u.srv.priority = kw__rbuf_u16(&rd);
    rr->u.srv.weight = kw__rbuf_u16(&rd);
    rr->u.srv.port = kw__rbuf_u16(&rd);
    return !rd.err && rdata_name(msg, &rd, &rr->u.srv.target);
  case KW_DNS_TYPE_TXT: {
    if (rr->rdlen == 0)
      return false;
    while (kw__rbuf_left(&rd)) {
      uint8_t l = kw__rbuf_u8(&rd);
      kw__rbuf_take(&rd, l);
      if (rd.err)
        return false;
    }
    return true;
  }
  default:
    return true;
  }
}

static uint32_t total(const kw__dns_header *h) {
  return (uint32_t)h->qdcount + h->ancount + h->nscount + h->arcount;
}

kw_err kw__dns_decode(const uint8_t *p, size_t len, kw__dns_msg *m) {
  memset(m, 0, sizeof *m);
  if (!p || len < KW_DNS_HEADER_LEN || len > KW_DNS_MAX_MSG)
    return KW_ERR_PARSE;
  kw__rbuf b;
  kw__rbuf_init(&b, p, len);
  kw__dns_header h;
  if (!read_header(&b, &h))
    return KW_ERR_PARSE;
  uint32_t n = total(&h);
  for (uint32_t i = 0; i < n; i++) {
    bool ok;
    if (i < h.qdcount) {
      kw__dns_question q;
      ok = read_question(p, &b, &q);
    } else {
      kw__dns_rr rr;
      ok = read_rr(p, &b, &rr);
    }
    if (!ok || b.err)
      return KW_ERR_PARSE;
  }
  if (kw__rbuf_left(&b) != 0)
    return KW_ERR_PARSE;
  m->h = h;
  m->p = p;
  m->len = len;
  m->off = KW_DNS_HEADER_LEN;
  m->next = 0;
  return KW_OK;
}

kw_err kw__dns_next_question(kw__dns_msg *m, kw__dns_question *q) {
  if (!m->p || m->next >= m->h.qdcount)
    return KW_ERR_NOT_FOUND;
  kw__rbuf b;
  kw__rbuf_init(&b, m->p, m->len);
  b.off = m->off;
  if (!read_question(m->p, &b, q))
    return KW_ERR_PARSE; /* not reached: kw__dns_decode checked it */
  m->off = b.off;
  m->next++;
  return KW_OK;
}

kw_err kw__dns_next_rr(kw__dns_msg *m, kw__dns_rr *rr) {
  kw__dns_question q;
  while (m->p && m->next < m->h.qdcount)
    if (kw__dns_next_question(m, &q) != KW_OK)
      return KW_ERR_PARSE;
  if (!m->p || m->next >= total(&m->h))
    return KW_ERR_NOT_FOUND;
  kw__rbuf b;
  kw__rbuf_init(&b, m->p, m->len);
  b.off = m->off;
  if (!read_rr(m->p, &b, rr))
    return KW_ERR_PARSE;
  uint32_t k = m->next - m->h.qdcount;
  rr->section = k < m->h.ancount ? KW_DNS_SEC_ANSWER
                : k < (uint32_t)m->h.ancount + m->h.nscount
                    ? KW_DNS_SEC_AUTHORITY
                    : KW_DNS_SEC_ADDITIONAL;
  m->off = b.off;
  m->next++;
  return KW_OK;
}

bool kw__dns_txt_next(const kw__dns_rr *rr, size_t *off, const uint8_t **s,
                      size_t *n) {
  if (rr->type != KW_DNS_TYPE_TXT || !rr->rdata || *off >= rr->rdlen)
    return false;
  size_t l = rr->rdata[*off];
  if (*off + 1 + l > rr->rdlen)
    return false;
  *s = rr->rdata + *off + 1;
  *n = l;
  *off += 1 + l;
  return true;
}

kw_err kw__dns_txt_join(const kw__dns_rr *rr, uint8_t *out, size_t cap,
                        size_t *outlen) {
  if (rr->type != KW_DNS_TYPE_TXT)
    return KW_ERR_INVALID_ARG;
  size_t off = 0, o = 0, n;
  const uint8_t *s;
  while (kw__dns_txt_next(rr, &off, &s, &n)) {
    if (cap - o < n)
      return KW_ERR_BUFFER;
    memcpy(out + o, s, n);
    o += n;
  }
  *outlen = o;
  return KW_OK;
}

/* ---- encoding ------------------------------------------------------- */

void kw__dns_writer_init(kw__dns_writer *wr, uint8_t *buf, size_t cap,
                         uint16_t id, uint16_t flags) {
  memset(wr, 0, sizeof *wr);
  kw__wbuf_init(&wr->w, buf, cap > KW_DNS_MAX_MSG ? KW_DNS_MAX_MSG : cap);
  wr->h.id = id;
  wr->h.flags = flags;
  wr->sec = KW_DNS_SEC_QUESTION;
  kw__wbuf_reserve(&wr->w, KW_DNS_HEADER_LEN);
  if (wr->w.err)
    wr->err = KW_ERR_BUFFER;
}

/* The name whose wire form starts at `off` in what was written. */
static bool written_name(const kw__dns_writer *wr, size_t off,
                         kw__dns_name *n) {
  kw__rbuf b;
  kw__rbuf_init(&b, wr->w.p, wr->w.off);
  b.off = off;
  return read_name(wr->w.p, &b, n);
}

static void write_name(kw__dns_writer *wr, const kw__dns_name *n,
                       bool compress) {
  size_t i = 0;
  while (i < n->len && n->b[i]) {
    if (compress) {
      kw__dns_name suf;
      suf.len = (uint8_t)(n->len - i);
      memcpy(suf.b, n->b + i, suf.len);
      for (unsigned k = 0; k < wr->ncomp; k++) {
        kw__dns_name have;
        if (written_name(wr, wr->comp[k], &have) &&
            kw__dns_name_equal(&have, &suf)) {
          kw__wbuf_u16(&wr->w, (uint16_t)(0xc000u | wr->comp[k]));
          return;
        }
      }
      if (wr->ncomp < KW_DNS_COMP_MAX && wr->w.off < 0x3fff && !wr->w.err)
        wr->comp[wr->ncomp++] = (uint16_t)wr->w.off;
    }
    kw__wbuf_bytes(&wr->w, n->b + i, 1u + n->b[i]);
    i += 1u + n->b[i];
  }
  kw__wbuf_u8(&wr->w, 0);
}

static bool name_ok(const kw__dns_name *n) {
  if (n->len == 0)
    return false;
  size_t i = 0;
  while (i < n->len && n->b[i]) {
    if (n->b[i] > KW_DNS_MAX_LABEL)
      return false;
    i += 1u + n->b[i];
  }
  return i == (size_t)n->len - 1u;
}

static kw_err fail(kw__dns_writer *wr, kw_err e) {
  if (wr->err == KW_OK)
    wr->err = e;
  return e;
}

kw_err kw__dns_add_question(kw__dns_writer *wr, const kw__dns_name *name,
                            uint16_t type, uint16_t qclass) {
  if (wr->err)
    return wr->err;
  if (wr->sec != KW_DNS_SEC_QUESTION || wr->h.qdcount == 0xffff ||
      !name_ok(name))
    return fail(wr, KW_ERR_INVALID_ARG);
  write_name(wr, name, true);
  kw__wbuf_u16(&wr->w, type);
  kw__wbuf_u16(&wr->w, qclass);
  if (wr->w.err)
    return fail(wr, KW_ERR_BUFFER);
  wr->h.qdcount++;
  return KW_OK;
}

static uint16_t *count_of(kw__dns_writer *wr, kw__dns_section s) {
  return s == KW_DNS_SEC_ANSWER      ? &wr->h.ancount
         : s == KW_DNS_SEC_AUTHORITY ? &wr->h.nscount
                                     : &wr->h.arcount;
}

/* Opens `sec` and writes the owner name, type, class, TTL; returns the
 * offset of the RDLENGTH field to patch, or 0 on error. */
static size_t rr_head(kw__dns_writer *wr, kw__dns_section sec,
                      const kw__dns_name *name, uint16_t type, uint16_t rclass,
                      uint32_t ttl) {
  if (wr->err)
    return 0;
  if (sec < KW_DNS_SEC_ANSWER || sec > KW_DNS_SEC_ADDITIONAL || sec < wr->sec ||
      *count_of(wr, sec) == 0xffff || !name_ok(name)) {
    fail(wr, KW_ERR_INVALID_ARG);
    return 0;
  }
  wr->sec = sec;
  write_name(wr, name, true);
  kw__wbuf_u16(&wr->w, type);
  kw__wbuf_u16(&wr->w, rclass);
  kw__wbuf_u32(&wr->w, ttl);
  size_t at = wr->w.off;
  kw__wbuf_u16(&wr->w, 0);
  if (wr->w.err) {
    fail(wr, KW_ERR_BUFFER);
    return 0;
  }
  return at;
}

static kw_err rr_tail(kw__dns_writer *wr, kw__dns_section sec, size_t at) {
  if (wr->w.err)
    return fail(wr, KW_ERR_BUFFER);
  size_t rdlen = wr->w.off - at - 2;
  if (rdlen > 0xffff)
    return fail(wr, KW_ERR_INVALID_ARG);
  wr->w.p[at] = (uint8_t)(rdlen >> 8);
  wr->w.p[at + 1] = (uint8_t)rdlen;
  (*count_of(wr, sec))++;
  return KW_OK;
}

kw_err kw__dns_add_rr(kw__dns_writer *wr, kw__dns_section sec,
                      const kw__dns_rr *rr) {
  size_t at = rr_head(wr, sec, &rr->name, rr->type, rr->rclass, rr->ttl);
  if (!at)
    return wr->err;
  switch (rr->type) {
  case KW_DNS_TYPE_A:
    kw__wbuf_bytes(&wr->w, rr->u.a, 4);
    break;
  case KW_DNS_TYPE_AAAA:
    kw__wbuf_bytes(&wr->w, rr->u.aaaa, 16);
    break;
  case KW_DNS_TYPE_PTR:
  case KW_DNS_TYPE_CNAME:
  case KW_DNS_TYPE_NS:
    if (!name_ok(&rr->u.target))
      return fail(wr, KW_ERR_INVALID_ARG);
    write_name(wr, &rr->u.target, true);
    break;
  case KW_DNS_TYPE_SRV:
    if (!name_ok(&rr->u.srv.target))
      return fail(wr, KW_ERR_INVALID_ARG);
    kw__wbuf_u16(&wr->w, rr->u.srv.priority);
    kw__wbuf_u16(&wr->w, rr->u.srv.weight);
    kw__wbuf_u16(&wr->w, rr->u.srv.port);
    write_name(wr, &rr->u.srv.target, false);
    break;
  default:
    if (rr->rdlen && !rr->rdata)
      return fail(wr, KW_ERR_INVALID_ARG);
    if (rr->type == KW_DNS_TYPE_TXT && rr->rdlen == 0)
      return fail(wr, KW_ERR_INVALID_ARG);
    kw__wbuf_bytes(&wr->w, rr->rdata, rr->rdlen);
    break;
  }
  return rr_tail(wr, sec, at);
}

kw_err kw__dns_add_txt(kw__dns_writer *wr, kw__dns_section sec,
                       const kw__dns_name *name, uint16_t rclass, uint32_t ttl,
                       const void *val, size_t len) {
  if (len && !val)
    return fail(wr, KW_ERR_INVALID_ARG);
  if (len > 0xffff)
    return fail(wr, KW_ERR_INVALID_ARG);
  size_t at = rr_head(wr, sec, name, KW_DNS_TYPE_TXT, rclass, ttl);
  if (!at)
    return wr->err;
  const uint8_t *p = val;
  size_t off = 0;
  do {
    size_t l = len - off > KW_DNS_TXT_CHUNK ? KW_DNS_TXT_CHUNK : len - off;
    kw__wbuf_u8(&wr->w, (uint8_t)l);
    if (l)
      kw__wbuf_bytes(&wr->w, p + off, l);
    off += l;
  } while (off < len && !wr->w.err);
  return rr_tail(wr, sec, at);
}

kw_err kw__dns_finish(kw__dns_writer *wr, size_t *outlen) {
  if (wr->err)
    return wr->err;
  kw__wbuf h;
  kw__wbuf_init(&h, wr->w.p, KW_DNS_HEADER_LEN);
  kw__wbuf_u16(&h, wr->h.id);
  kw__wbuf_u16(&h, wr->h.flags);
  kw__wbuf_u16(&h, wr->h.qdcount);
  kw__wbuf_u16(&h, wr->h.ancount);
  kw__wbuf_u16(&h, wr->h.nscount);
  kw__wbuf_u16(&h, wr->h.arcount);
  *outlen = wr->w.off;
  return KW_OK;
}

kw_err kw__dns_encode_txt_response(const kw__dns_name *name, uint32_t ttl,
                                   const kw__dns_txt *vals, size_t n,
                                   uint8_t *out, size_t cap, size_t *outlen) {
  if (!name || (n && !vals) || !out || !outlen || n > 0xffff)
    return KW_ERR_INVALID_ARG;
  kw__dns_writer wr;
  kw__dns_writer_init(&wr, out, cap, 0, KW_DNS_FLAG_QR | KW_DNS_FLAG_AA);
  for (size_t i = 0; i < n; i++)
    kw__dns_add_txt(&wr, KW_DNS_SEC_ANSWER, name, KW_DNS_CLASS_IN, ttl,
                    vals[i].p, vals[i].len);
  return kw__dns_finish(&wr, outlen);
}
