/* SPDX-License-Identifier: MIT */
/* Unit tests of core/mdns: names, our response (PTR, SRV, TXT with the
 * signed record in chunks, A/AAAA; cache-flush bits; legacy unicast form;
 * goodbye), queries and the decision to answer them (service, instance,
 * host; known-answer suppression; legacy port), responses: found only when
 * the record verifies and is the instance's id (unsigned, bad signature,
 * another id's record, expired, our own, rate-limited, malformed chunk
 * sequences all refused), the cache (newer wins, goodbye removes, bound,
 * expiry) and the query schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/mdns.h"

#define NOW_US 1700000000000000ull
#define NOW_NS 5000000000ull

typedef struct key {
  uint8_t sk[KW_SECRET_KEY_LEN];
  uint8_t id[KW_ID_LEN];
} key;

static key new_key(void) {
  key k;
  assert_int_equal(kw_key_generate(k.sk), KW_OK);
  assert_int_equal(kw_key_id(k.sk, k.id), KW_OK);
  return k;
}

/* A signed record of k with one address and `ts`. */
static size_t make_record(const key *k, uint64_t ts, uint8_t *out) {
  kw__record r;
  memset(&r, 0, sizeof r);
  memcpy(r.addr.id, k->id, KW_ID_LEN);
  r.addr.n_addrs = 1;
  assert_int_equal(kw_sockaddr_parse("198.18.1.10:4242", &r.addr.addrs[0]),
                   KW_OK);
  snprintf(r.addr.relay_url, sizeof r.addr.relay_url, "https://r.test:443");
  r.timestamp_us = ts;
  r.ttl_s = 3600;
  size_t n = 0;
  assert_int_equal(kw__record_encode(&r, k->sk, out, KW_RECORD_MAX_LEN, &n),
                   KW_OK);
  return n;
}

static size_t make_response(const key *k, const uint8_t *rec, size_t rl,
                            uint32_t ttl, uint8_t *out, size_t cap) {
  kw__mdns_self s;
  memset(&s, 0, sizeof s);
  memcpy(s.id, k->id, KW_ID_LEN);
  s.port = 4242;
  s.relay_url = "https://r.test:443";
  s.record = rec;
  s.record_len = rl;
  s.n_addrs = 2;
  assert_int_equal(kw_sockaddr_parse("198.18.1.10:0", &s.addrs[0]), KW_OK);
  assert_int_equal(kw_sockaddr_parse("[fe80::1]:0", &s.addrs[1]), KW_OK);
  size_t n = 0;
  assert_int_equal(kw__mdns_encode_response(&s, ttl, NULL, out, cap, &n),
                   KW_OK);
  return n;
}

static void test_names(void **state) {
  (void)state;
  key k = new_key();
  kw__dns_name svc, inst, host;
  kw__mdns_service(&svc);
  kw__mdns_instance(k.id, &inst);
  kw__mdns_host(k.id, &host);
  char t[KW_DNS_MAX_TEXT + 1], idt[KW_ID_STRLEN + 1], want[128];
  kw_id_to_string(k.id, idt, sizeof idt);
  assert_int_equal(kw__dns_name_to_text(&svc, t, sizeof t), KW_OK);
  assert_string_equal(t, "_keyway._udp.local");
  assert_int_equal(kw__dns_name_to_text(&inst, t, sizeof t), KW_OK);
  snprintf(want, sizeof want, "%s._keyway._udp.local", idt);
  assert_string_equal(t, want);
  assert_int_equal(kw__dns_name_to_text(&host, t, sizeof t), KW_OK);
  snprintf(want, sizeof want, "kw-%s.local", idt);
  assert_string_equal(t, want);
  uint8_t id[KW_ID_LEN];
  assert_true(kw__mdns_instance_id(&inst, id));
  assert_memory_equal(id, k.id, KW_ID_LEN);
  assert_false(kw__mdns_instance_id(&svc, id));
  assert_false(kw__mdns_instance_id(&host, id));
  /* the same id under another service */
  kw__dns_name other, o2;
  assert_int_equal(kw__dns_name_from_text("_other._udp.local", &other), KW_OK);
  kw__dns_name_prepend((const uint8_t *)idt, KW_ID_STRLEN, &other, &o2);
  assert_false(kw__mdns_instance_id(&o2, id));
}

static void test_response_layout(void **state) {
  (void)state;
  key k = new_key();
  uint8_t rec[KW_RECORD_MAX_LEN], msg[KW_MDNS_MAX_TX];
  size_t rl = make_record(&k, NOW_US, rec);
  size_t n = make_response(&k, rec, rl, KW_MDNS_TTL_S, msg, sizeof msg);
  kw__dns_msg m;
  assert_int_equal(kw__dns_decode(msg, n, &m), KW_OK);
  assert_int_equal(m.h.flags, KW_DNS_FLAG_QR | KW_DNS_FLAG_AA);
  assert_int_equal(m.h.id, 0);
  assert_int_equal(m.h.qdcount, 0);
  assert_int_equal(m.h.ancount, 3);
  assert_int_equal(m.h.arcount, 2);
  kw__dns_rr rr;
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.type, KW_DNS_TYPE_PTR);
  assert_int_equal(rr.rclass, KW_DNS_CLASS_IN); /* shared: no flush bit */
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.type, KW_DNS_TYPE_SRV);
  assert_int_equal(rr.rclass, KW_DNS_CLASS_IN | KW_DNS_CLASS_TOP);
  assert_int_equal(rr.u.srv.port, 4242);
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.type, KW_DNS_TYPE_TXT);
  assert_int_equal(rr.ttl, KW_MDNS_TTL_S);
  size_t off = 0, sl;
  const uint8_t *s;
  assert_true(kw__dns_txt_next(&rr, &off, &s, &sl));
  assert_memory_equal(s, "v=1", 3);
  assert_true(kw__dns_txt_next(&rr, &off, &s, &sl));
  assert_memory_equal(s, "port=4242", 9);
  assert_true(kw__dns_txt_next(&rr, &off, &s, &sl));
  assert_memory_equal(s, "relay=https://r.test:443", sl);
  uint8_t joined[KW_RECORD_MAX_LEN];
  size_t jl = 0;
  for (int i = 0; kw__dns_txt_next(&rr, &off, &s, &sl); i++) {
    char kname[16];
    snprintf(kname, sizeof kname, "rec%d=", i);
    assert_memory_equal(s, kname, 5);
    assert_true(sl - 5 <= KW_MDNS_REC_CHUNK);
    memcpy(joined + jl, s + 5, sl - 5);
    jl += sl - 5;
  }
  assert_int_equal(jl, rl);
  assert_memory_equal(joined, rec, rl);
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.type, KW_DNS_TYPE_A);
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.type, KW_DNS_TYPE_AAAA);
  /* a record that is too long for three chunks */
  kw__mdns_self bad;
  memset(&bad, 0, sizeof bad);
  bad.record = rec;
  bad.record_len = KW_MDNS_REC_CHUNK * KW_MDNS_REC_CHUNKS + 1;
  assert_int_equal(
      kw__mdns_encode_response(&bad, 120, NULL, msg, sizeof msg, &n),
      KW_ERR_INVALID_ARG);
  /* a buffer too small */
  kw__mdns_self ok;
  memset(&ok, 0, sizeof ok);
  memcpy(ok.id, k.id, KW_ID_LEN);
  ok.record = rec;
  ok.record_len = rl;
  assert_int_equal(kw__mdns_encode_response(&ok, 120, NULL, msg, 100, &n),
                   KW_ERR_BUFFER);
}

/* The first query of a lookup asks for a unicast answer (QU bit); later
 * ones do not; a query from another port is legacy, never QU. */
static void test_query_qu_bit(void **state) {
  (void)state;
  key k = new_key();
  uint8_t q[512];
  size_t ql = 0;
  kw__mdns_ask ask;
  assert_int_equal(kw__mdns_encode_query(k.id, true, q, sizeof q, &ql), KW_OK);
  assert_int_equal(kw__mdns_parse_query(q, ql, KW_MDNS_PORT, k.id, &ask), KW_OK);
  assert_true(ask.respond);
  assert_true(ask.unicast);
  assert_false(ask.legacy);
  assert_int_equal(kw__mdns_parse_query(q, ql, 40000, k.id, &ask), KW_OK);
  assert_true(ask.respond && ask.legacy);
  assert_false(ask.unicast);
  assert_int_equal(kw__mdns_encode_query(k.id, false, q, sizeof q, &ql), KW_OK);
  assert_int_equal(kw__mdns_parse_query(q, ql, KW_MDNS_PORT, k.id, &ask), KW_OK);
  assert_true(ask.respond);
  assert_false(ask.unicast);
}

static void test_legacy_response(void **state) {
  (void)state;
  key k = new_key();
  uint8_t rec[KW_RECORD_MAX_LEN], msg[KW_MDNS_MAX_TX];
  size_t rl = make_record(&k, NOW_US, rec);
  /* a legacy query from port 40000 for our instance's TXT */
  uint8_t q[512];
  size_t ql = 0;
  assert_int_equal(kw__mdns_encode_query(k.id, false, q, sizeof q, &ql), KW_OK);
  q[0] = 0x12; /* id 0x1234 */
  q[1] = 0x34;
  kw__mdns_ask ask;
  assert_int_equal(kw__mdns_parse_query(q, ql, 40000, k.id, &ask), KW_OK);
  assert_true(ask.respond);
  assert_true(ask.legacy);
  assert_int_equal(ask.lq.id, 0x1234);
  kw__mdns_self s;
  memset(&s, 0, sizeof s);
  memcpy(s.id, k.id, KW_ID_LEN);
  s.record = rec;
  s.record_len = rl;
  size_t n = 0;
  assert_int_equal(
      kw__mdns_encode_response(&s, KW_MDNS_TTL_S, &ask.lq, msg, sizeof msg, &n),
      KW_OK);
  kw__dns_msg m;
  assert_int_equal(kw__dns_decode(msg, n, &m), KW_OK);
  assert_int_equal(m.h.id, 0x1234);
  assert_int_equal(m.h.qdcount, 1);
  kw__dns_rr rr;
  while (kw__dns_next_rr(&m, &rr) == KW_OK) {
    assert_int_equal(rr.ttl, KW_MDNS_LEGACY_TTL_S);
    assert_int_equal(rr.rclass & KW_DNS_CLASS_TOP, 0);
  }
  /* the same query from port 5353 is not legacy */
  assert_int_equal(kw__mdns_parse_query(q, ql, KW_MDNS_PORT, k.id, &ask),
                   KW_OK);
  assert_true(ask.respond);
  assert_false(ask.legacy);
}

static size_t question(const kw__dns_name *nm, uint16_t type, uint8_t *out,
                       size_t cap) {
  kw__dns_writer wr;
  kw__dns_writer_init(&wr, out, cap, 0, 0);
  kw__dns_add_question(&wr, nm, type, KW_DNS_CLASS_IN | KW_DNS_CLASS_TOP);
  size_t n = 0;
  assert_int_equal(kw__dns_finish(&wr, &n), KW_OK);
  return n;
}

static void test_queries(void **state) {
  (void)state;
  key k = new_key(), other = new_key();
  kw__dns_name svc, inst, host, oinst;
  kw__mdns_service(&svc);
  kw__mdns_instance(k.id, &inst);
  kw__mdns_host(k.id, &host);
  kw__mdns_instance(other.id, &oinst);
  uint8_t q[512];
  kw__mdns_ask ask;
  struct {
    const kw__dns_name *n;
    uint16_t type;
    bool respond;
  } cases[] = {
      {&svc, KW_DNS_TYPE_PTR, true},    {&svc, KW_DNS_TYPE_ANY, true},
      {&svc, KW_DNS_TYPE_A, false},     {&inst, KW_DNS_TYPE_TXT, true},
      {&inst, KW_DNS_TYPE_SRV, true},   {&inst, KW_DNS_TYPE_ANY, true},
      {&inst, KW_DNS_TYPE_A, false},    {&host, KW_DNS_TYPE_A, true},
      {&host, KW_DNS_TYPE_AAAA, true},  {&host, KW_DNS_TYPE_TXT, false},
      {&oinst, KW_DNS_TYPE_TXT, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = question(cases[i].n, cases[i].type, q, sizeof q);
    assert_int_equal(kw__mdns_parse_query(q, n, KW_MDNS_PORT, k.id, &ask),
                     KW_OK);
    assert_int_equal(ask.respond, cases[i].respond);
  }
  /* a response is not a query */
  size_t n = question(&svc, KW_DNS_TYPE_PTR, q, sizeof q);
  q[2] |= 0x80;
  assert_int_equal(kw__mdns_parse_query(q, n, KW_MDNS_PORT, k.id, &ask),
                   KW_ERR_PARSE);
  /* known answer: the PTR to us with a fresh TTL suppresses, a stale one
   * does not */
  for (int fresh = 0; fresh < 2; fresh++) {
    kw__dns_writer wr;
    kw__dns_writer_init(&wr, q, sizeof q, 0, 0);
    kw__dns_add_question(&wr, &svc, KW_DNS_TYPE_PTR, KW_DNS_CLASS_IN);
    kw__dns_rr rr;
    memset(&rr, 0, sizeof rr);
    rr.name = svc;
    rr.type = KW_DNS_TYPE_PTR;
    rr.rclass = KW_DNS_CLASS_IN;
    rr.ttl = fresh ? KW_MDNS_TTL_S : KW_MDNS_TTL_S / 2 - 1;
    rr.u.target = inst;
    kw__dns_add_rr(&wr, KW_DNS_SEC_ANSWER, &rr);
    assert_int_equal(kw__dns_finish(&wr, &n), KW_OK);
    assert_int_equal(kw__mdns_parse_query(q, n, KW_MDNS_PORT, k.id, &ask),
                     KW_OK);
    assert_int_equal(ask.respond, !fresh);
  }
}

static void test_found(void **state) {
  (void)state;
  key k = new_key(), other = new_key();
  uint8_t rec[KW_RECORD_MAX_LEN], msg[KW_MDNS_MAX_TX];
  size_t rl = make_record(&k, NOW_US, rec);
  size_t n = make_response(&k, rec, rl, KW_MDNS_TTL_S, msg, sizeof msg);
  kw__mdns_limiter lim = {0};
  kw__mdns_found f[4];
  size_t nf = 0;
  kw__mdns_rejects rej;
  assert_int_equal(kw__mdns_parse_response(msg, n, NOW_US, NOW_NS, &lim, NULL,
                                           f, 4, &nf, &rej),
                   KW_OK);
  assert_int_equal(nf, 1);
  assert_memory_equal(f[0].rec.addr.id, k.id, KW_ID_LEN);
  assert_int_equal(f[0].ttl_s, KW_MDNS_TTL_S);
  assert_int_equal(f[0].rec.addr.n_addrs, 1);
  /* our own, looped back */
  assert_int_equal(kw__mdns_parse_response(msg, n, NOW_US, NOW_NS, &lim, k.id,
                                           f, 4, &nf, &rej),
                   KW_OK);
  assert_int_equal(nf, 0);
  /* expired at the reader's clock */
  assert_int_equal(kw__mdns_parse_response(msg, n, NOW_US + 3601000000ull,
                                           NOW_NS, &lim, NULL, f, 4, &nf, &rej),
                   KW_OK);
  assert_int_equal(nf, 0);
  assert_int_equal(rej.bad_sig, 1);
  /* a signature byte flipped */
  uint8_t bad[KW_MDNS_MAX_TX];
  uint8_t rec2[KW_RECORD_MAX_LEN];
  memcpy(rec2, rec, rl);
  rec2[rl - 1] ^= 1;
  n = make_response(&k, rec2, rl, KW_MDNS_TTL_S, bad, sizeof bad);
  assert_int_equal(kw__mdns_parse_response(bad, n, NOW_US, NOW_NS, &lim, NULL,
                                           f, 4, &nf, &rej),
                   KW_OK);
  assert_int_equal(nf, 0);
  assert_int_equal(rej.bad_sig, 1);
  /* another id's valid record under our instance name */
  size_t orl = make_record(&other, NOW_US, rec2);
  n = make_response(&k, rec2, orl, KW_MDNS_TTL_S, bad, sizeof bad);
  assert_int_equal(kw__mdns_parse_response(bad, n, NOW_US, NOW_NS, &lim, NULL,
                                           f, 4, &nf, &rej),
                   KW_OK);
  assert_int_equal(nf, 0);
  assert_int_equal(rej.bad_sig, 1);
  /* a TXT without a record */
  kw__dns_name inst;
  kw__mdns_instance(k.id, &inst);
  kw__dns_writer wr;
  kw__dns_writer_init(&wr, bad, sizeof bad, 0, KW_DNS_FLAG_QR);
  kw__dns_add_txt(&wr, KW_DNS_SEC_ANSWER, &inst, KW_DNS_CLASS_IN, 120, "port=1",
                  6);
  assert_int_equal(kw__dns_finish(&wr, &n), KW_OK);
  assert_int_equal(kw__mdns_parse_response(bad, n, NOW_US, NOW_NS, &lim, NULL,
                                           f, 4, &nf, &rej),
                   KW_OK);
  assert_int_equal(nf, 0);
  assert_int_equal(rej.unsigned_, 1);
  /* chunks out of order, or a gap */
  const char *seqs[][2] = {
      {"rec1=", "rec0="}, {"rec0=", "rec2="}, {"rec0=", "rec0="}};
  for (size_t i = 0; i < 3; i++) {
    uint8_t rd[600];
    size_t o = 0, half = rl / 2;
    rd[o++] = (uint8_t)(5 + half);
    memcpy(rd + o, seqs[i][0], 5);
    memcpy(rd + o + 5, rec, half);
    o += 5 + half;
    rd[o++] = (uint8_t)(5 + rl - half);
    memcpy(rd + o, seqs[i][1], 5);
    memcpy(rd + o + 5, rec + half, rl - half);
    o += 5 + rl - half;
    kw__dns_rr rr;
    memset(&rr, 0, sizeof rr);
    rr.name = inst;
    rr.type = KW_DNS_TYPE_TXT;
    rr.rclass = KW_DNS_CLASS_IN;
    rr.ttl = 120;
    rr.rdata = rd;
    rr.rdlen = (uint16_t)o;
    kw__dns_writer_init(&wr, bad, sizeof bad, 0, KW_DNS_FLAG_QR);
    kw__dns_add_rr(&wr, KW_DNS_SEC_ANSWER, &rr);
    assert_int_equal(kw__dns_finish(&wr, &n), KW_OK);
    assert_int_equal(kw__mdns_parse_response(bad, n, NOW_US, NOW_NS, &lim, NULL,
                                             f, 4, &nf, &rej),
                     KW_OK);
    assert_int_equal(nf, 0);
  }
  /* a query is not a response */
  n = make_response(&k, rec, rl, KW_MDNS_TTL_S, msg, sizeof msg);
  msg[2] &= 0x7f;
  assert_int_equal(kw__mdns_parse_response(msg, n, NOW_US, NOW_NS, &lim, NULL,
                                           f, 4, &nf, &rej),
                   KW_ERR_PARSE);
}

static void test_limiter(void **state) {
  (void)state;
  key k = new_key();
  uint8_t rec[KW_RECORD_MAX_LEN], msg[KW_MDNS_MAX_TX];
  size_t rl = make_record(&k, NOW_US, rec);
  size_t n = make_response(&k, rec, rl, KW_MDNS_TTL_S, msg, sizeof msg);
  kw__mdns_limiter lim = {0};
  kw__mdns_found f[1];
  size_t nf, got = 0;
  kw__mdns_rejects rej;
  for (int i = 0; i < KW_MDNS_VERIFY_BURST + 10; i++) {
    kw__mdns_parse_response(msg, n, NOW_US, NOW_NS, &lim, NULL, f, 1, &nf,
                            &rej);
    got += nf;
  }
  assert_int_equal(got, KW_MDNS_VERIFY_BURST);
  assert_int_equal(rej.limited, 1);
  /* one second later: KW_MDNS_VERIFY_PER_S more */
  got = 0;
  for (int i = 0; i < KW_MDNS_VERIFY_PER_S + 5; i++) {
    kw__mdns_parse_response(msg, n, NOW_US, NOW_NS + 1000000000ull, &lim, NULL,
                            f, 1, &nf, &rej);
    got += nf;
  }
  assert_int_equal(got, KW_MDNS_VERIFY_PER_S);
}

static kw__mdns_found found(const key *k, uint64_t ts, uint32_t ttl) {
  kw__mdns_found f;
  memset(&f, 0, sizeof f);
  memcpy(f.rec.addr.id, k->id, KW_ID_LEN);
  f.rec.addr.n_addrs = 1;
  f.rec.addr.addrs[0].family = 4;
  f.rec.addr.addrs[0].port = (uint16_t)(ts % 60000 + 1);
  f.rec.timestamp_us = ts;
  f.rec.ttl_s = 3600;
  f.ttl_s = ttl;
  return f;
}

static void test_cache(void **state) {
  (void)state;
  static kw__mdns_cache c;
  memset(&c, 0, sizeof c);
  key k = new_key();
  kw_endpoint_addr a;
  assert_false(kw__mdns_cache_get(&c, k.id, NOW_US, &a));
  kw__mdns_found f = found(&k, NOW_US, 120);
  kw__mdns_cache_put(&c, &f, NOW_US);
  assert_true(kw__mdns_cache_get(&c, k.id, NOW_US, &a));
  assert_int_equal(a.addrs[0].port, f.rec.addr.addrs[0].port);
  /* the mDNS TTL bounds it */
  assert_false(kw__mdns_cache_get(&c, k.id, NOW_US + 121000000ull, &a));
  /* an older record does not replace a newer one */
  kw__mdns_found old = found(&k, NOW_US - 1000, 120);
  kw__mdns_cache_put(&c, &old, NOW_US);
  assert_true(kw__mdns_cache_get(&c, k.id, NOW_US, &a));
  assert_int_equal(a.addrs[0].port, f.rec.addr.addrs[0].port);
  /* an old goodbye does not remove it; a current one does */
  old.ttl_s = 0;
  kw__mdns_cache_put(&c, &old, NOW_US);
  assert_true(kw__mdns_cache_get(&c, k.id, NOW_US, &a));
  kw__mdns_found bye = found(&k, NOW_US + 5, 0);
  kw__mdns_cache_put(&c, &bye, NOW_US);
  assert_false(kw__mdns_cache_get(&c, k.id, NOW_US, &a));
  /* bounded: KW_MDNS_CACHE + 8 ids, the one expiring soonest goes */
  memset(&c, 0, sizeof c);
  key first = new_key();
  kw__mdns_found ff = found(&first, NOW_US, 10);
  kw__mdns_cache_put(&c, &ff, NOW_US);
  for (int i = 0; i < KW_MDNS_CACHE + 8; i++) {
    key x = new_key();
    kw__mdns_found fx = found(&x, NOW_US, 120);
    kw__mdns_cache_put(&c, &fx, NOW_US);
    assert_true(kw__mdns_cache_get(&c, x.id, NOW_US, &a));
  }
  assert_false(kw__mdns_cache_get(&c, first.id, NOW_US, &a));
}

static void test_schedule(void **state) {
  (void)state;
  assert_int_equal(kw__mdns_query_gap_ms(1), 1000);
  assert_int_equal(kw__mdns_query_gap_ms(2), 2000);
  assert_int_equal(kw__mdns_query_gap_ms(3), 4000);
  assert_int_equal(kw__mdns_query_gap_ms(7), 60000);
  assert_int_equal(kw__mdns_query_gap_ms(1000), 60000);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_response_layout),
      cmocka_unit_test(test_legacy_response),
    cmocka_unit_test(test_query_qu_bit),
      cmocka_unit_test(test_queries),
      cmocka_unit_test(test_found),
      cmocka_unit_test(test_limiter),
      cmocka_unit_test(test_cache),
      cmocka_unit_test(test_schedule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
