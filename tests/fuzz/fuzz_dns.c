/* SPDX-License-Identifier: MIT */
/* Fuzz the DNS decoder (core/dns): never reads out of bounds, never loops;
 * whatever decodes iterates to exactly the header's counts; written again
 * by the writer (questions and records in their sections) it decodes back
 * to the same names, types, classes, TTLs and RDATA fields; a name's text
 * form, when it has one, parses back to the same name. */
#include <stdint.h>
#include <string.h>

#include "core/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[KW_DNS_MAX_MSG];

static void check_text(const kw__dns_name *n) {
  char t[KW_DNS_MAX_TEXT + 1];
  if (kw__dns_name_to_text(n, t, sizeof t) != KW_OK)
    return;
  kw__dns_name back;
  if (kw__dns_name_from_text(t, &back) != KW_OK ||
      !kw__dns_name_equal(&back, n))
    __builtin_trap();
}

static int same_rr(const kw__dns_rr *a, const kw__dns_rr *b) {
  if (!kw__dns_name_equal(&a->name, &b->name) || a->type != b->type ||
      a->rclass != b->rclass || a->ttl != b->ttl || a->section != b->section)
    return 0;
  switch (a->type) {
  case KW_DNS_TYPE_A:
  case KW_DNS_TYPE_AAAA:
    return memcmp(&a->u, &b->u, sizeof a->u.aaaa) == 0;
  case KW_DNS_TYPE_PTR:
  case KW_DNS_TYPE_CNAME:
  case KW_DNS_TYPE_NS:
    return kw__dns_name_equal(&a->u.target, &b->u.target);
  case KW_DNS_TYPE_SRV:
    return a->u.srv.priority == b->u.srv.priority &&
           a->u.srv.weight == b->u.srv.weight &&
           a->u.srv.port == b->u.srv.port &&
           kw__dns_name_equal(&a->u.srv.target, &b->u.srv.target);
  default:
    return a->rdlen == b->rdlen &&
           (a->rdlen == 0 || memcmp(a->rdata, b->rdata, a->rdlen) == 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kw__dns_msg m;
  kw_err e = kw__dns_decode(data, size, &m);
  if (e != KW_OK) {
    if (e != KW_ERR_PARSE)
      __builtin_trap();
    return 0;
  }
  kw__dns_writer wr;
  kw__dns_writer_init(&wr, out, sizeof out, m.h.id, m.h.flags);
  kw__dns_question q;
  unsigned nq = 0;
  while (kw__dns_next_question(&m, &q) == KW_OK) {
    check_text(&q.name);
    kw__dns_add_question(&wr, &q.name, q.type, q.qclass);
    nq++;
  }
  kw__dns_rr rr;
  uint32_t nr = 0;
  while ((e = kw__dns_next_rr(&m, &rr)) == KW_OK) {
    check_text(&rr.name);
    if (rr.type == KW_DNS_TYPE_TXT) {
      size_t off = 0, n, sum = 0;
      const uint8_t *s;
      while (kw__dns_txt_next(&rr, &off, &s, &n))
        sum += 1 + n;
      if (sum != rr.rdlen)
        __builtin_trap();
    }
    kw__dns_add_rr(&wr, rr.section, &rr);
    nr++;
  }
  if (e != KW_ERR_NOT_FOUND || nq != m.h.qdcount ||
      nr != (uint32_t)m.h.ancount + m.h.nscount + m.h.arcount)
    __builtin_trap();
  size_t n = 0;
  e = kw__dns_finish(&wr, &n);
  if (e == KW_ERR_BUFFER)
    return 0; /* less compression than the input used */
  if (e != KW_OK)
    __builtin_trap();
  kw__dns_msg back;
  if (kw__dns_decode(out, n, &back) != KW_OK ||
      memcmp(&back.h, &m.h, sizeof m.h) != 0)
    __builtin_trap();
  kw__dns_decode(data, size, &m);
  kw__dns_question q2;
  while (kw__dns_next_question(&m, &q) == KW_OK) {
    if (kw__dns_next_question(&back, &q2) != KW_OK ||
        !kw__dns_name_equal(&q.name, &q2.name) || q.type != q2.type ||
        q.qclass != q2.qclass)
      __builtin_trap();
  }
  kw__dns_rr rr2;
  while (kw__dns_next_rr(&m, &rr) == KW_OK) {
    if (kw__dns_next_rr(&back, &rr2) != KW_OK || !same_rr(&rr, &rr2))
      __builtin_trap();
  }
  return 0;
}
