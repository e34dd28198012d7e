/* SPDX-License-Identifier: MIT */
/* Unit tests of core/dns: a captured-style mDNS answer decoded byte for
 * byte (compression, PTR, SRV, TXT, A, AAAA), round trips through the
 * writer, TXT values split and joined, name text forms, and refusals:
 * truncation at every length, trailing bytes, pointer loops and forward
 * pointers, names over 255 bytes, labels over 63, bad RDATA sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/dns.h"

static kw__dns_name name(const char *t) {
  kw__dns_name n;
  assert_int_equal(kw__dns_name_from_text(t, &n), KW_OK);
  return n;
}

static void assert_name(const kw__dns_name *n, const char *t) {
  char buf[KW_DNS_MAX_TEXT + 1];
  assert_int_equal(kw__dns_name_to_text(n, buf, sizeof buf), KW_OK);
  assert_string_equal(buf, t);
}

/* A DNS-SD answer as a responder sends it: PTR, then SRV, TXT, A, AAAA in
 * additional records, names compressed. */
static const uint8_t SD_ANSWER[] = {
    0x00, 0x00, 0x84, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04,
    /* 12: _keyway._udp.local PTR abc._keyway._udp.local */
    7, '_', 'k', 'e', 'y', 'w', 'a', 'y', 4, '_', 'u', 'd', 'p', 5, 'l', 'o',
    'c', 'a', 'l', 0, 0x00, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00,
    0x06, 3, 'a', 'b', 'c', 0xc0, 0x0c,
    /* abc._keyway._udp.local SRV 0 0 4242 host.local (cache flush) */
    0xc0, 0x2a, 0x00, 0x21, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x0d,
    0x00, 0x00, 0x00, 0x00, 0x10, 0x92, 4, 'h', 'o', 's', 't', 0xc0, 0x19,
    /* TXT "a=1" "" */
    0xc0, 0x2a, 0x00, 0x10, 0x80, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00, 0x05, 3,
    'a', '=', '1', 0,
    /* host.local A 198.18.0.1 */
    0xc0, 0x42, 0x00, 0x01, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x04, 198,
    18, 0, 1,
    /* host.local AAAA fe80::1 */
    0xc0, 0x42, 0x00, 0x1c, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x10,
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static void test_decode_sd_answer(void **state) {
  (void)state;
  kw__dns_msg m;
  assert_int_equal(kw__dns_decode(SD_ANSWER, sizeof SD_ANSWER, &m), KW_OK);
  assert_int_equal(m.h.flags, 0x8400);
  assert_int_equal(m.h.ancount, 1);
  assert_int_equal(m.h.arcount, 4);
  kw__dns_question q;
  assert_int_equal(kw__dns_next_question(&m, &q), KW_ERR_NOT_FOUND);
  kw__dns_rr rr;
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.section, KW_DNS_SEC_ANSWER);
  assert_int_equal(rr.type, KW_DNS_TYPE_PTR);
  assert_int_equal(rr.ttl, 4500);
  assert_name(&rr.name, "_keyway._udp.local");
  assert_name(&rr.u.target, "abc._keyway._udp.local");
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.section, KW_DNS_SEC_ADDITIONAL);
  assert_int_equal(rr.type, KW_DNS_TYPE_SRV);
  assert_int_equal(rr.rclass, KW_DNS_CLASS_TOP | KW_DNS_CLASS_IN);
  assert_name(&rr.name, "abc._keyway._udp.local");
  assert_int_equal(rr.u.srv.port, 4242);
  assert_name(&rr.u.srv.target, "host.local");
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.type, KW_DNS_TYPE_TXT);
  size_t off = 0, n;
  const uint8_t *s;
  assert_true(kw__dns_txt_next(&rr, &off, &s, &n));
  assert_int_equal(n, 3);
  assert_memory_equal(s, "a=1", 3);
  assert_true(kw__dns_txt_next(&rr, &off, &s, &n));
  assert_int_equal(n, 0);
  assert_false(kw__dns_txt_next(&rr, &off, &s, &n));
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.type, KW_DNS_TYPE_A);
  assert_name(&rr.name, "host.local");
  assert_memory_equal(rr.u.a, ((uint8_t[]){198, 18, 0, 1}), 4);
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.type, KW_DNS_TYPE_AAAA);
  assert_int_equal(rr.u.aaaa[0], 0xfe);
  assert_int_equal(rr.u.aaaa[15], 1);
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_ERR_NOT_FOUND);
}

static void test_truncated_and_trailing(void **state) {
  (void)state;
  kw__dns_msg m;
  for (size_t l = 0; l < sizeof SD_ANSWER; l++)
    assert_int_equal(kw__dns_decode(SD_ANSWER, l, &m), KW_ERR_PARSE);
  uint8_t more[sizeof SD_ANSWER + 1];
  memcpy(more, SD_ANSWER, sizeof SD_ANSWER);
  more[sizeof SD_ANSWER] = 0;
  assert_int_equal(kw__dns_decode(more, sizeof more, &m), KW_ERR_PARSE);
  /* one more record announced than present */
  memcpy(more, SD_ANSWER, sizeof SD_ANSWER);
  more[11] = 5;
  assert_int_equal(kw__dns_decode(more, sizeof SD_ANSWER, &m), KW_ERR_PARSE);
}

static void test_pointers(void **state) {
  (void)state;
  kw__dns_msg m;
  /* a question whose name points at itself */
  uint8_t self[] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
  assert_int_equal(kw__dns_decode(self, sizeof self, &m), KW_ERR_PARSE);
  /* forward pointer */
  uint8_t fwd[] = {0, 0,    0,  0, 0, 1, 0, 0, 0,   0, 0,
                   0, 0xc0, 18, 0, 1, 0, 1, 1, 'a', 0};
  assert_int_equal(kw__dns_decode(fwd, sizeof fwd, &m), KW_ERR_PARSE);
  /* two labels pointing at each other: "a" -> 16, "b" at 16 -> 12 */
  uint8_t loop[] = {0, 0,   0,    0,  0, 2,   0,    0,  0, 0, 0, 0,
                    1, 'a', 0xc0, 16, 1, 'b', 0xc0, 12, 0, 1, 0, 1};
  assert_int_equal(kw__dns_decode(loop, sizeof loop, &m), KW_ERR_PARSE);
  /* a pointer into the header region is fine if it decodes... here the
   * header bytes are not a name: 0 at offset 0 is the root name */
  uint8_t hdr[] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 1, 0, 1};
  assert_int_equal(kw__dns_decode(hdr, sizeof hdr, &m), KW_OK);
  kw__dns_question q;
  assert_int_equal(kw__dns_next_question(&m, &q), KW_OK);
  assert_int_equal(q.name.len, 1);
  /* extended label type 01 */
  uint8_t ext[] = {0, 0, 0,    0,   0, 1, 0, 0, 0, 0,
                   0, 0, 0x41, 'a', 0, 0, 1, 0, 1};
  assert_int_equal(kw__dns_decode(ext, sizeof ext, &m), KW_ERR_PARSE);
}

/* A question with `labels` labels of 63 bytes each, chained by pointers
 * when `chain`. */
static void test_name_length(void **state) {
  (void)state;
  uint8_t buf[600];
  memset(buf, 0, 12);
  buf[5] = 1;
  size_t o = 12;
  for (int i = 0; i < 4; i++) { /* 4 x 64 + 1 = 257 > 255 */
    buf[o++] = 63;
    memset(buf + o, 'x', 63);
    o += 63;
  }
  buf[o++] = 0;
  buf[o++] = 0;
  buf[o++] = 1;
  buf[o++] = 0;
  buf[o++] = 1;
  kw__dns_msg m;
  assert_int_equal(kw__dns_decode(buf, o, &m), KW_ERR_PARSE);
  /* three 63-byte labels and one 61-byte label: 255 exactly */
  o = 12;
  for (int i = 0; i < 3; i++) {
    buf[o++] = 63;
    memset(buf + o, 'x', 63);
    o += 63;
  }
  buf[o++] = 61;
  memset(buf + o, 'y', 61);
  o += 61;
  buf[o++] = 0;
  memcpy(buf + o, "\0\1\0\1", 4);
  o += 4;
  assert_int_equal(kw__dns_decode(buf, o, &m), KW_OK);
  kw__dns_question q;
  assert_int_equal(kw__dns_next_question(&m, &q), KW_OK);
  assert_int_equal(q.name.len, 255);
  /* label of 64 */
  uint8_t l64[12 + 1 + 64 + 1 + 4] = {0, 0, 0, 0, 0, 1};
  l64[12] = 64;
  assert_int_equal(kw__dns_decode(l64, sizeof l64, &m), KW_ERR_PARSE);
}

static void test_rdata_sizes(void **state) {
  (void)state;
  /* root name, type, class IN, ttl 0, rdlen, rdata */
  uint8_t b[64] = {0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
  struct {
    uint16_t type;
    uint8_t rdlen;
    int ok;
  } cases[] = {
      {KW_DNS_TYPE_A, 4, 1},
      {KW_DNS_TYPE_A, 3, 0},
      {KW_DNS_TYPE_A, 5, 0},
      {KW_DNS_TYPE_AAAA, 16, 1},
      {KW_DNS_TYPE_AAAA, 4, 0},
      {KW_DNS_TYPE_TXT, 0, 0},
      {KW_DNS_TYPE_TXT, 1, 1},
      {KW_DNS_TYPE_PTR, 1, 1},
      {KW_DNS_TYPE_PTR, 2, 0},
      {KW_DNS_TYPE_SRV, 7, 1},
      {KW_DNS_TYPE_SRV, 6, 0},
      {KW_DNS_TYPE_SRV, 8, 0},
      {99, 0, 1},
      {99, 20, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memset(b + 13, 0, sizeof b - 13);
    b[13] = (uint8_t)(cases[i].type >> 8);
    b[14] = (uint8_t)cases[i].type;
    b[16] = 1;
    b[22] = cases[i].rdlen;
    kw__dns_msg m;
    kw_err e = kw__dns_decode(b, 23u + cases[i].rdlen, &m);
    assert_int_equal(e, cases[i].ok ? KW_OK : KW_ERR_PARSE);
  }
  /* TXT whose string runs past RDATA */
  uint8_t t[] = {0, 0,  0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0,  0,
                 0, 16, 0,    1, 0, 0, 0, 0, 0, 2, 5, 'a'};
  kw__dns_msg m;
  assert_int_equal(kw__dns_decode(t, sizeof t, &m), KW_ERR_PARSE);
}

static void test_roundtrip(void **state) {
  (void)state;
  uint8_t buf[1500];
  kw__dns_writer wr;
  kw__dns_writer_init(&wr, buf, sizeof buf, 0x1234, KW_DNS_FLAG_QR);
  kw__dns_name svc = name("_keyway._udp.local"), inst;
  assert_int_equal(kw__dns_name_prepend((const uint8_t *)"Abc", 3, &svc, &inst),
                   KW_OK);
  assert_int_equal(kw__dns_add_question(&wr, &svc, KW_DNS_TYPE_PTR,
                                        KW_DNS_CLASS_IN | KW_DNS_CLASS_TOP),
                   KW_OK);
  kw__dns_rr rr;
  memset(&rr, 0, sizeof rr);
  rr.name = svc;
  rr.type = KW_DNS_TYPE_PTR;
  rr.rclass = KW_DNS_CLASS_IN;
  rr.ttl = 4500;
  rr.u.target = inst;
  assert_int_equal(kw__dns_add_rr(&wr, KW_DNS_SEC_ANSWER, &rr), KW_OK);
  memset(&rr, 0, sizeof rr);
  rr.name = inst;
  rr.type = KW_DNS_TYPE_SRV;
  rr.rclass = KW_DNS_CLASS_IN | KW_DNS_CLASS_TOP;
  rr.ttl = 120;
  rr.u.srv.port = 7;
  rr.u.srv.target = name("h.local");
  assert_int_equal(kw__dns_add_rr(&wr, KW_DNS_SEC_ADDITIONAL, &rr), KW_OK);
  uint8_t big[700];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (uint8_t)i;
  assert_int_equal(kw__dns_add_txt(&wr, KW_DNS_SEC_ADDITIONAL, &inst,
                                   KW_DNS_CLASS_IN, 120, big, sizeof big),
                   KW_OK);
  /* sections do not reopen */
  assert_int_equal(kw__dns_add_rr(&wr, KW_DNS_SEC_ANSWER, &rr),
                   KW_ERR_INVALID_ARG);
  size_t n = 0;
  assert_int_equal(kw__dns_finish(&wr, &n), KW_ERR_INVALID_ARG);

  kw__dns_writer_init(&wr, buf, sizeof buf, 0x1234, KW_DNS_FLAG_QR);
  memset(&rr, 0, sizeof rr);
  rr.name = inst;
  rr.type = KW_DNS_TYPE_A;
  rr.rclass = KW_DNS_CLASS_IN;
  rr.ttl = 1;
  memcpy(rr.u.a, "\xc6\x12\0\x02", 4);
  assert_int_equal(kw__dns_add_rr(&wr, KW_DNS_SEC_ANSWER, &rr), KW_OK);
  rr.name = svc; /* a suffix of inst: compressed to one pointer */
  size_t before = wr.w.off;
  assert_int_equal(kw__dns_add_rr(&wr, KW_DNS_SEC_ANSWER, &rr), KW_OK);
  assert_int_equal(wr.w.off - before, 2 + 10 + 4);
  assert_int_equal(kw__dns_add_txt(&wr, KW_DNS_SEC_ADDITIONAL, &inst,
                                   KW_DNS_CLASS_IN, 120, big, sizeof big),
                   KW_OK);
  assert_int_equal(kw__dns_add_txt(&wr, KW_DNS_SEC_ADDITIONAL, &inst,
                                   KW_DNS_CLASS_IN, 120, NULL, 0),
                   KW_OK);
  assert_int_equal(kw__dns_finish(&wr, &n), KW_OK);
  kw__dns_msg m;
  assert_int_equal(kw__dns_decode(buf, n, &m), KW_OK);
  assert_int_equal(m.h.id, 0x1234);
  assert_int_equal(m.h.ancount, 2);
  assert_int_equal(m.h.arcount, 2);
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_name(&rr.name, "Abc._keyway._udp.local");
  assert_true(kw__dns_name_equal(&rr.name, &inst));
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_true(kw__dns_name_equal(&rr.name, &svc));
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  uint8_t back[800];
  size_t bl = 0;
  assert_int_equal(kw__dns_txt_join(&rr, back, sizeof back, &bl), KW_OK);
  assert_int_equal(bl, sizeof big);
  assert_memory_equal(back, big, sizeof big);
  assert_int_equal(kw__dns_txt_join(&rr, back, 100, &bl), KW_ERR_BUFFER);
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
  assert_int_equal(rr.rdlen, 1);
  assert_int_equal(kw__dns_txt_join(&rr, back, sizeof back, &bl), KW_OK);
  assert_int_equal(bl, 0);
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_ERR_NOT_FOUND);
}

static void test_txt_response(void **state) {
  (void)state;
  kw__dns_name nm = name("_keyway.example");
  kw__dns_txt vals[3] = {{"one", 3}, {"two=2", 5}, {"", 0}};
  uint8_t buf[512];
  size_t n = 0;
  assert_int_equal(
      kw__dns_encode_txt_response(&nm, 300, vals, 3, buf, sizeof buf, &n),
      KW_OK);
  kw__dns_msg m;
  assert_int_equal(kw__dns_decode(buf, n, &m), KW_OK);
  assert_int_equal(m.h.flags, KW_DNS_FLAG_QR | KW_DNS_FLAG_AA);
  kw__dns_rr rr;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(kw__dns_next_rr(&m, &rr), KW_OK);
    assert_true(kw__dns_name_equal(&rr.name, &nm));
    assert_int_equal(rr.ttl, 300);
    uint8_t v[16];
    size_t vl;
    assert_int_equal(kw__dns_txt_join(&rr, v, sizeof v, &vl), KW_OK);
    assert_int_equal(vl, vals[i].len);
    assert_memory_equal(v, vals[i].p, vl);
  }
  assert_int_equal(kw__dns_next_rr(&m, &rr), KW_ERR_NOT_FOUND);
  /* too small a buffer */
  for (size_t c = 0; c < n; c++)
    assert_int_equal(kw__dns_encode_txt_response(&nm, 300, vals, 3, buf, c, &n),
                     KW_ERR_BUFFER);
}

static void test_names(void **state) {
  (void)state;
  kw__dns_name n;
  assert_int_equal(kw__dns_name_from_text("", &n), KW_OK);
  assert_int_equal(n.len, 1);
  assert_int_equal(kw__dns_name_from_text(".", &n), KW_OK);
  assert_int_equal(n.len, 1);
  assert_int_equal(kw__dns_name_from_text("a.b.", &n), KW_OK);
  assert_int_equal(n.len, 5);
  assert_int_equal(kw__dns_name_labels(&n), 2);
  assert_int_equal(kw__dns_name_from_text("a..b", &n), KW_ERR_PARSE);
  assert_int_equal(kw__dns_name_from_text(".a", &n), KW_ERR_PARSE);
  assert_int_equal(kw__dns_name_from_text("a b", &n), KW_ERR_PARSE);
  assert_int_equal(kw__dns_name_from_text("a..", &n), KW_ERR_PARSE);
  char l64[70];
  memset(l64, 'q', 64);
  l64[64] = 0;
  assert_int_equal(kw__dns_name_from_text(l64, &n), KW_ERR_PARSE);
  l64[63] = 0;
  assert_int_equal(kw__dns_name_from_text(l64, &n), KW_OK);
  kw__dns_name a = name("HOST.Local"), b = name("host.local"),
               p = name("local");
  assert_true(kw__dns_name_equal(&a, &b));
  assert_true(kw__dns_name_under(&a, &p));
  assert_true(kw__dns_name_under(&p, &p));
  assert_false(kw__dns_name_under(&p, &a));
  kw__dns_name root = name(".");
  assert_true(kw__dns_name_under(&a, &root));
  size_t fl;
  const uint8_t *f = kw__dns_name_first(&a, &fl);
  assert_int_equal(fl, 4);
  assert_memory_equal(f, "HOST", 4);
  assert_null(kw__dns_name_first(&root, &fl));
  /* a label with a dot has no text form */
  kw__dns_name d;
  assert_int_equal(kw__dns_name_prepend((const uint8_t *)"a.b", 3, &p, &d),
                   KW_OK);
  char t[256];
  assert_int_equal(kw__dns_name_to_text(&d, t, sizeof t), KW_ERR_PARSE);
  assert_int_equal(kw__dns_name_to_text(&a, t, 5), KW_ERR_BUFFER);
  assert_int_equal(kw__dns_name_to_text(&root, t, sizeof t), KW_OK);
  assert_string_equal(t, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_sd_answer),
      cmocka_unit_test(test_truncated_and_trailing),
      cmocka_unit_test(test_pointers),
      cmocka_unit_test(test_name_length),
      cmocka_unit_test(test_rdata_sizes),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_txt_response),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
