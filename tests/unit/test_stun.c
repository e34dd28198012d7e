/* SPDX-License-Identifier: MIT */
/* Unit tests of core/stun: RFC 5769 vectors, builders, server answers and
 * every rejection path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/stun.h"

/* RFC 5769 section 2.1: sample request (USERNAME, PRIORITY, ICE-CONTROLLED,
 * MESSAGE-INTEGRITY, FINGERPRINT). */
static const uint8_t rfc_req[] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10,
    0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
    0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf};

/* RFC 5769 section 2.2: IPv4 response, 192.0.2.1:32853. */
static const uint8_t rfc_v4[] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
    0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};

/* RFC 5769 section 2.3: IPv6 response,
 * [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
static const uint8_t rfc_v6[] = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
    0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
    0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c};

static const uint8_t rfc_txid[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                     0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

static const uint8_t v6_addr[16] = {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34,
                                    0x56, 0x78, 0x00, 0x11, 0x22, 0x33,
                                    0x44, 0x55, 0x66, 0x77};

/* ---- a tiny message builder for hand-made (often broken) messages ---- */

typedef struct msg {
  uint8_t b[600];
  size_t n;
} msg;

static void m_start(msg *m, uint16_t type) {
  memset(m, 0, sizeof(*m));
  m->b[0] = (uint8_t)(type >> 8);
  m->b[1] = (uint8_t)type;
  m->b[4] = 0x21;
  m->b[5] = 0x12;
  m->b[6] = 0xa4;
  m->b[7] = 0x42;
  memcpy(m->b + 8, rfc_txid, 12);
  m->n = 20;
}

static void m_raw(msg *m, const void *p, size_t n) {
  memcpy(m->b + m->n, p, n);
  m->n += n;
}

/* Attribute with correct padding. */
static void m_attr(msg *m, uint16_t t, const void *v, size_t len) {
  uint8_t h[4] = {(uint8_t)(t >> 8), (uint8_t)t, (uint8_t)(len >> 8),
                  (uint8_t)len};
  m_raw(m, h, 4);
  m_raw(m, v, len);
  while (m->n & 3)
    m->b[m->n++] = 0;
}

/* Sets the length field to the actual body size. */
static void m_fix(msg *m) {
  size_t body = m->n - 20;
  m->b[2] = (uint8_t)(body >> 8);
  m->b[3] = (uint8_t)body;
}

static void m_fingerprint(msg *m) {
  m->n += 8;
  m_fix(m);
  m->n -= 8;
  uint32_t c = kw__stun_crc32(m->b, m->n) ^ 0x5354554eu;
  uint8_t v[4] = {(uint8_t)(c >> 24), (uint8_t)(c >> 16), (uint8_t)(c >> 8),
                  (uint8_t)c};
  m_attr(m, 0x8028, v, 4);
}

static kw_sockaddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d,
                      uint16_t port) {
  kw_sockaddr s;
  memset(&s, 0, sizeof(s));
  s.family = 4;
  s.ip[0] = a;
  s.ip[1] = b;
  s.ip[2] = c;
  s.ip[3] = d;
  s.port = port;
  return s;
}

/* ---- tests ------------------------------------------------------------ */

static void test_crc32(void **state) {
  (void)state;
  assert_int_equal(kw__stun_crc32((const uint8_t *)"123456789", 9),
                   0xCBF43926u);
  assert_int_equal(kw__stun_crc32((const uint8_t *)"", 0), 0);
}

static void test_is(void **state) {
  (void)state;
  assert_true(kw__stun_is(rfc_v4, sizeof(rfc_v4)));
  assert_true(kw__stun_is(rfc_v6, sizeof(rfc_v6)));
  assert_true(kw__stun_is(rfc_req, sizeof(rfc_req)));
  msg m;
  m_start(&m, 0x0001);
  assert_true(kw__stun_is(m.b, 20));
  assert_false(kw__stun_is(m.b, 19));
  assert_false(kw__stun_is(NULL, 20));
  assert_false(kw__stun_is(m.b, 24)); /* length field 0 != 4 */
  m.b[0] = 0x40;                      /* QUIC fixed bit */
  assert_false(kw__stun_is(m.b, 20));
  m.b[0] = 0x80;
  assert_false(kw__stun_is(m.b, 20));
  m.b[0] = 0;
  m.b[7] = 0x43; /* cookie */
  assert_false(kw__stun_is(m.b, 20));
  m.b[7] = 0x42;
  m.b[3] = 2; /* not a multiple of 4 */
  assert_false(kw__stun_is(m.b, 22));
  m.b[3] = 4;
  assert_true(kw__stun_is(m.b, 24));
  assert_false(kw__stun_is(m.b, 28));
}

static void test_rfc_request(void **state) {
  (void)state;
  kw__stun_msg m;
  assert_int_equal(kw__stun_parse(rfc_req, sizeof(rfc_req), &m), KW_OK);
  assert_int_equal(m.type, KW_STUN_BINDING_REQUEST);
  assert_int_equal(m.method, 1);
  assert_int_equal(m.cls, KW_STUN_CLASS_REQUEST);
  assert_memory_equal(m.txid, rfc_txid, 12);
  assert_true(m.has_fingerprint);
  assert_true(m.has_integrity);
  assert_int_equal(m.n_unknown, 0); /* PRIORITY is known */
  assert_int_equal(m.mapped.family, 0);
  assert_int_equal(m.software_len, 16);
  assert_memory_equal(m.software, "STUN test client", 16);
  assert_int_equal(kw__stun_parse_request(rfc_req, sizeof(rfc_req), &m), KW_OK);
  /* A request is not a response. */
  assert_int_equal(kw__stun_parse_response(rfc_req, sizeof(rfc_req), NULL, &m),
                   KW_ERR_PARSE);
}

static void test_rfc_v4_response(void **state) {
  (void)state;
  kw__stun_msg m;
  assert_int_equal(
      kw__stun_parse_response(rfc_v4, sizeof(rfc_v4), rfc_txid, &m), KW_OK);
  assert_int_equal(m.cls, KW_STUN_CLASS_SUCCESS);
  assert_true(m.has_fingerprint);
  assert_true(m.has_integrity);
  assert_true(m.mapped_xor);
  kw_sockaddr want = v4(192, 0, 2, 1, 32853);
  assert_int_equal(m.mapped.family, 4);
  assert_int_equal(m.mapped.port, 32853);
  assert_memory_equal(m.mapped.ip, want.ip, 4);
  assert_int_equal(m.software_len, 11);
  assert_memory_equal(m.software, "test vector", 11);
  /* Not a request. */
  assert_int_equal(kw__stun_parse_request(rfc_v4, sizeof(rfc_v4), &m),
                   KW_ERR_PARSE);
}

static void test_rfc_v6_response(void **state) {
  (void)state;
  kw__stun_msg m;
  assert_int_equal(
      kw__stun_parse_response(rfc_v6, sizeof(rfc_v6), rfc_txid, &m), KW_OK);
  assert_int_equal(m.mapped.family, 6);
  assert_int_equal(m.mapped.port, 32853);
  assert_memory_equal(m.mapped.ip, v6_addr, 16);
}

static void test_rfc_txid_mismatch(void **state) {
  (void)state;
  kw__stun_msg m;
  uint8_t other[12];
  memcpy(other, rfc_txid, 12);
  other[11] ^= 1;
  assert_int_equal(kw__stun_parse_response(rfc_v4, sizeof(rfc_v4), other, &m),
                   KW_ERR_NOT_FOUND);
}

/* Every single-bit flip of the vectors is rejected (the header checks catch
 * some, FINGERPRINT the rest), unless the flip hits what makes the
 * fingerprint a fingerprint: its type (then it is another attribute) or the
 * MESSAGE-INTEGRITY length (then the fingerprint lands in the ignored
 * part), or an earlier length that swallows the rest. Such a message no
 * longer counts as fingerprinted. */
static void test_every_bitflip_rejected(void **state) {
  (void)state;
  size_t accepted = 0;
  const uint8_t *vecs[3] = {rfc_req, rfc_v4, rfc_v6};
  size_t lens[3] = {sizeof(rfc_req), sizeof(rfc_v4), sizeof(rfc_v6)};
  for (int v = 0; v < 3; v++) {
    uint8_t buf[128];
    for (size_t i = 0; i < lens[v]; i++) {
      for (int bit = 0; bit < 8; bit++) {
        memcpy(buf, vecs[v], lens[v]);
        buf[i] ^= (uint8_t)(1u << bit);
        kw__stun_msg m;
        if (kw__stun_parse(buf, lens[v], &m) == KW_OK) {
          assert_false(m.has_fingerprint);
          accepted++;
        }
      }
    }
  }
  /* 16 flips of each FINGERPRINT type, one MESSAGE-INTEGRITY length bit in
   * each vector, one USERNAME length bit in the request. */
  assert_int_equal(accepted, 3 * 16 + 3 + 1);
}

static void test_every_truncation_rejected(void **state) {
  (void)state;
  for (size_t n = 0; n < sizeof(rfc_v4); n++) {
    kw__stun_msg m;
    assert_int_equal(kw__stun_parse(rfc_v4, n, &m), KW_ERR_PARSE);
  }
  /* Truncated with the length field adjusted: the fingerprint no longer
   * matches or an attribute is cut. */
  uint8_t buf[sizeof(rfc_v4)];
  for (size_t n = 20; n < sizeof(rfc_v4); n += 4) {
    memcpy(buf, rfc_v4, n);
    buf[2] = (uint8_t)((n - 20) >> 8);
    buf[3] = (uint8_t)(n - 20);
    kw__stun_msg m;
    kw_err e = kw__stun_parse_response(buf, n, rfc_txid, &m);
    /* Up to and including XOR-MAPPED-ADDRESS it parses as a response
     * without fingerprint; cut inside an attribute it is rejected. */
    if (n == 36 || n == 48 || n == 72)
      assert_int_equal(e, n == 36 ? KW_ERR_PARSE : KW_OK);
    else
      assert_int_equal(e, KW_ERR_PARSE);
  }
}

static void test_build_request(void **state) {
  (void)state;
  uint8_t out[KW_STUN_MAX_BUILD];
  size_t n = 0;
  assert_int_equal(
      kw__stun_build_request(out, sizeof(out), &n, rfc_txid, NULL, false),
      KW_OK);
  const uint8_t want[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4,
                            0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                            0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
  assert_int_equal(n, 20);
  assert_memory_equal(out, want, 20);
  assert_true(kw__stun_is(out, n));

  assert_int_equal(
      kw__stun_build_request(out, sizeof(out), &n, rfc_txid, "keyway", true),
      KW_OK);
  assert_int_equal(n, 20 + 4 + 8 + 8);
  kw__stun_msg m;
  assert_int_equal(kw__stun_parse_request(out, n, &m), KW_OK);
  assert_true(m.has_fingerprint);
  assert_false(m.has_integrity);
  assert_int_equal(m.software_len, 6);
  assert_memory_equal(m.software, "keyway", 6);
  assert_memory_equal(m.txid, rfc_txid, 12);
  /* Padding bytes are zero. */
  assert_int_equal(out[30], 0);
  assert_int_equal(out[31], 0);

  /* Every too-small buffer fails cleanly. */
  for (size_t cap = 0; cap < 40; cap++)
    assert_int_equal(
        kw__stun_build_request(out, cap, &n, rfc_txid, "keyway", true),
        KW_ERR_BUFFER);
  char big[KW_STUN_MAX_SOFTWARE + 2];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  assert_int_equal(
      kw__stun_build_request(out, sizeof(out), &n, rfc_txid, big, true),
      KW_ERR_INVALID_ARG);
  assert_int_equal(
      kw__stun_build_request(out, sizeof(out), &n, NULL, NULL, true),
      KW_ERR_INVALID_ARG);
}

static void test_build_success_matches_rfc_attr(void **state) {
  (void)state;
  uint8_t out[KW_STUN_MAX_BUILD];
  size_t n = 0;
  kw_sockaddr a = v4(192, 0, 2, 1, 32853);
  assert_int_equal(
      kw__stun_build_success(out, sizeof(out), &n, rfc_txid, &a, NULL), KW_OK);
  /* header, XOR-MAPPED-ADDRESS exactly as in RFC 5769 2.2, FINGERPRINT */
  assert_int_equal(n, 20 + 12 + 8);
  assert_memory_equal(out + 20, rfc_v4 + 36, 12);
  assert_int_equal(out[0], 0x01);
  assert_int_equal(out[1], 0x01);

  kw_sockaddr b;
  memset(&b, 0, sizeof(b));
  b.family = 6;
  memcpy(b.ip, v6_addr, 16);
  b.port = 32853;
  assert_int_equal(
      kw__stun_build_success(out, sizeof(out), &n, rfc_txid, &b, "test vector"),
      KW_OK);
  assert_int_equal(n, 20 + 24 + 16 + 8);
  assert_memory_equal(out + 20, rfc_v6 + 36, 24);
  kw__stun_msg m;
  assert_int_equal(kw__stun_parse_response(out, n, rfc_txid, &m), KW_OK);
  assert_memory_equal(m.mapped.ip, v6_addr, 16);
  assert_int_equal(m.mapped.port, 32853);
  assert_int_equal(m.software_len, 11);

  kw_sockaddr bad = a;
  bad.family = 5;
  assert_int_equal(
      kw__stun_build_success(out, sizeof(out), &n, rfc_txid, &bad, NULL),
      KW_ERR_INVALID_ARG);
  for (size_t cap = 0; cap < 40; cap++)
    assert_int_equal(kw__stun_build_success(out, cap, &n, rfc_txid, &a, NULL),
                     KW_ERR_BUFFER);
}

static void test_mapped_address_fallback(void **state) {
  (void)state;
  msg m;
  m_start(&m, 0x0101);
  uint8_t plain[8] = {0, 1, 0x12, 0x34, 198, 18, 0, 7};
  m_attr(&m, 0x0001, plain, 8);
  m_fix(&m);
  kw__stun_msg p;
  assert_int_equal(kw__stun_parse_response(m.b, m.n, rfc_txid, &p), KW_OK);
  assert_false(p.mapped_xor);
  assert_int_equal(p.mapped.family, 4);
  assert_int_equal(p.mapped.port, 0x1234);
  assert_int_equal(p.mapped.ip[0], 198);
  assert_int_equal(p.mapped.ip[3], 7);
  assert_false(p.has_fingerprint);

  /* Both present: XOR-MAPPED-ADDRESS wins whatever the order. */
  uint8_t x[8] = {0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
  m_attr(&m, 0x0020, x, 8);
  m_fingerprint(&m);
  assert_int_equal(kw__stun_parse_response(m.b, m.n, rfc_txid, &p), KW_OK);
  assert_true(p.mapped_xor);
  assert_int_equal(p.mapped.port, 32853);
  assert_int_equal(p.mapped.ip[0], 192);
  assert_true(p.has_fingerprint);

  /* Only the first of repeated attributes counts. */
  uint8_t x2[8] = {0, 1, 0, 1, 0, 0, 0, 0};
  m_start(&m, 0x0101);
  m_attr(&m, 0x0020, x, 8);
  m_attr(&m, 0x0020, x2, 8);
  m_fix(&m);
  assert_int_equal(kw__stun_parse_response(m.b, m.n, rfc_txid, &p), KW_OK);
  assert_int_equal(p.mapped.port, 32853);
}

static void test_response_without_address(void **state) {
  (void)state;
  msg m;
  m_start(&m, 0x0101);
  m_attr(&m, 0x8022, "x", 1);
  m_fingerprint(&m);
  kw__stun_msg p;
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_OK);
  assert_int_equal(kw__stun_parse_response(m.b, m.n, rfc_txid, &p),
                   KW_ERR_PARSE);
}

static void test_bad_family_and_lengths(void **state) {
  (void)state;
  kw__stun_msg p;
  msg m;
  /* unknown family 3 */
  uint8_t f3[8] = {0, 3, 0, 1, 1, 2, 3, 4};
  m_start(&m, 0x0101);
  m_attr(&m, 0x0020, f3, 8);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  /* family 0 */
  f3[1] = 0;
  m_start(&m, 0x0101);
  m_attr(&m, 0x0001, f3, 8);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  /* IPv4 with 20-byte value */
  uint8_t long4[20] = {0, 1, 0, 1};
  m_start(&m, 0x0101);
  m_attr(&m, 0x0020, long4, 20);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  /* IPv6 with 8-byte value */
  uint8_t short6[8] = {0, 2, 0, 1, 1, 2, 3, 4};
  m_start(&m, 0x0101);
  m_attr(&m, 0x0020, short6, 8);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  /* 3-byte address value */
  m_start(&m, 0x0101);
  m_attr(&m, 0x0001, short6, 3);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
}

static void test_truncated_attribute(void **state) {
  (void)state;
  kw__stun_msg p;
  msg m;
  /* attribute claims 8 bytes, only 4 follow */
  m_start(&m, 0x0101);
  uint8_t h[8] = {0x00, 0x20, 0x00, 0x08, 0, 1, 0, 1};
  m_raw(&m, h, 8);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  /* attribute header cut in half is impossible with a length that is a
   * multiple of 4, but a huge declared length must still be rejected */
  m_start(&m, 0x0101);
  uint8_t h2[4] = {0x80, 0x22, 0xff, 0xff};
  m_raw(&m, h2, 4);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
}

static void test_missing_padding(void **state) {
  (void)state;
  /* SOFTWARE "hello" without its 3 padding bytes, then a 3-byte attribute:
   * 16 bytes in total, so the header check passes but the walk fails. */
  msg m;
  m_start(&m, 0x0101);
  uint8_t raw[16] = {0x80, 0x22, 0x00, 0x05, 'h',  'e', 'l', 'l',
                     'o',  0x80, 0x23, 0x00, 0x03, 'a', 'b', 'c'};
  m_raw(&m, raw, 16);
  m_fix(&m);
  kw__stun_msg p;
  assert_true(kw__stun_is(m.b, m.n));
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
}

static void test_padding_content_ignored(void **state) {
  (void)state;
  /* RFC 5769 pads with spaces; non-zero padding is accepted. */
  msg m;
  m_start(&m, 0x0101);
  uint8_t raw[12] = {0x80, 0x22, 0x00, 0x05, 'h',  'e',
                     'l',  'l',  'o',  0xff, 0xff, 0xff};
  m_raw(&m, raw, 12);
  uint8_t x[8] = {0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
  m_attr(&m, 0x0020, x, 8);
  m_fingerprint(&m);
  kw__stun_msg p;
  assert_int_equal(kw__stun_parse_response(m.b, m.n, rfc_txid, &p), KW_OK);
  assert_int_equal(p.software_len, 5);
}

static void test_fingerprint_rules(void **state) {
  (void)state;
  kw__stun_msg p;
  msg m;
  /* fingerprint not last */
  m_start(&m, 0x0101);
  uint8_t x[8] = {0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
  m_attr(&m, 0x0020, x, 8);
  m_fingerprint(&m);
  m_attr(&m, 0x8022, "z", 1);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  assert_true(p.has_fingerprint);
  /* fingerprint of the wrong length */
  m_start(&m, 0x0101);
  m_attr(&m, 0x0020, x, 8);
  uint8_t eight[8] = {0};
  m_attr(&m, 0x8028, eight, 8);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  /* wrong value */
  m_start(&m, 0x0101);
  m_attr(&m, 0x0020, x, 8);
  m_fingerprint(&m);
  m.b[m.n - 1] ^= 0x80;
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  /* the fingerprint covers the length field: computing it over a header
   * that does not yet count the fingerprint is wrong */
  m_start(&m, 0x0101);
  m_attr(&m, 0x0020, x, 8);
  m_fix(&m);
  uint32_t c = kw__stun_crc32(m.b, m.n) ^ 0x5354554eu;
  uint8_t v[4] = {(uint8_t)(c >> 24), (uint8_t)(c >> 16), (uint8_t)(c >> 8),
                  (uint8_t)c};
  m_attr(&m, 0x8028, v, 4);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
}

static void test_error_code_and_unknown_attrs(void **state) {
  (void)state;
  uint8_t out[KW_STUN_MAX_BUILD];
  size_t n;
  uint16_t unk[2] = {0x0003, 0x7777};
  assert_int_equal(kw__stun_build_error(out, sizeof(out), &n, rfc_txid, 420,
                                        NULL, unk, 2, "kw"),
                   KW_OK);
  kw__stun_msg p;
  assert_int_equal(kw__stun_parse_response(out, n, rfc_txid, &p), KW_ERR_PEER);
  assert_int_equal(p.error_code, 420);
  assert_int_equal(p.cls, KW_STUN_CLASS_ERROR);
  /* ERROR-CODE: class 4, number 20, "Unknown Attribute" */
  assert_int_equal(out[20], 0x00);
  assert_int_equal(out[21], 0x09);
  assert_int_equal(out[22], 0x00);
  assert_int_equal(out[23], 4 + 17);
  assert_int_equal(out[26], 4);
  assert_int_equal(out[27], 20);
  assert_memory_equal(out + 28, "Unknown Attribute", 17);
  /* then UNKNOWN-ATTRIBUTES at 20 + 4 + 24 */
  const uint8_t ua[8] = {0x00, 0x0a, 0x00, 0x04, 0x00, 0x03, 0x77, 0x77};
  assert_memory_equal(out + 48, ua, 8);

  assert_int_equal(kw__stun_build_error(out, sizeof(out), &n, rfc_txid, 299,
                                        NULL, NULL, 0, NULL),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__stun_build_error(out, sizeof(out), &n, rfc_txid, 700,
                                        NULL, NULL, 0, NULL),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__stun_build_error(out, sizeof(out), &n, rfc_txid, 400,
                                        NULL, NULL, KW_STUN_MAX_UNKNOWN + 1,
                                        NULL),
                   KW_ERR_INVALID_ARG);
  for (size_t cap = 0; cap < 60; cap++)
    assert_int_equal(
        kw__stun_build_error(out, cap, &n, rfc_txid, 420, NULL, unk, 2, NULL),
        KW_ERR_BUFFER);

  /* malformed ERROR-CODE: class 2, number 100, too short */
  msg m;
  uint8_t ec[4] = {0, 0, 2, 0};
  m_start(&m, 0x0111);
  m_attr(&m, 0x0009, ec, 4);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  ec[2] = 4;
  ec[3] = 100;
  m_start(&m, 0x0111);
  m_attr(&m, 0x0009, ec, 4);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  m_start(&m, 0x0111);
  m_attr(&m, 0x0009, ec, 3);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
  /* error response without ERROR-CODE */
  m_start(&m, 0x0111);
  m_fix(&m);
  assert_int_equal(kw__stun_parse_response(m.b, m.n, rfc_txid, &p),
                   KW_ERR_PARSE);
  /* UNKNOWN-ATTRIBUTES of odd length */
  m_start(&m, 0x0111);
  m_attr(&m, 0x000a, ua, 3);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_ERR_PARSE);
}

static void test_unknown_required_in_response(void **state) {
  (void)state;
  msg m;
  uint8_t x[8] = {0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
  m_start(&m, 0x0101);
  m_attr(&m, 0x0020, x, 8);
  m_attr(&m, 0x7001, "ab", 2);
  m_fix(&m);
  kw__stun_msg p;
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_OK);
  assert_int_equal(p.n_unknown, 1);
  assert_int_equal(p.unknown[0], 0x7001);
  assert_int_equal(kw__stun_parse_response(m.b, m.n, rfc_txid, &p),
                   KW_ERR_PARSE);
  /* comprehension-optional unknown attributes are fine */
  m_start(&m, 0x0101);
  m_attr(&m, 0x0020, x, 8);
  m_attr(&m, 0xC001, "ab", 2);
  m_fix(&m);
  assert_int_equal(kw__stun_parse_response(m.b, m.n, rfc_txid, &p), KW_OK);
}

static void test_after_integrity_ignored(void **state) {
  (void)state;
  msg m;
  uint8_t x[8] = {0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
  uint8_t mi[20] = {0};
  m_start(&m, 0x0101);
  m_attr(&m, 0x0020, x, 8);
  m_attr(&m, 0x0008, mi, 20);
  m_attr(&m, 0x7001, "ab", 2);                 /* ignored */
  uint8_t other[8] = {0, 1, 0, 9, 1, 1, 1, 1}; /* ignored too */
  m_attr(&m, 0x0001, other, 8);
  m_fingerprint(&m);
  kw__stun_msg p;
  assert_int_equal(kw__stun_parse_response(m.b, m.n, rfc_txid, &p), KW_OK);
  assert_int_equal(p.n_unknown, 0);
  assert_true(p.has_integrity);
  assert_int_equal(p.mapped.port, 32853);
}

static void test_serve_success(void **state) {
  (void)state;
  uint8_t req[64], out[KW_STUN_MAX_BUILD];
  size_t rn, n;
  uint16_t code = 99;
  assert_int_equal(
      kw__stun_build_request(req, sizeof(req), &rn, rfc_txid, NULL, true),
      KW_OK);
  kw_sockaddr from = v4(127, 0, 0, 1, 40000);
  assert_int_equal(kw__stun_serve(req, rn, &from, "keyway-relay", out,
                                  sizeof(out), &n, &code),
                   KW_OK);
  assert_int_equal(code, 0);
  kw__stun_msg p;
  assert_int_equal(kw__stun_parse_response(out, n, rfc_txid, &p), KW_OK);
  assert_int_equal(p.mapped.family, 4);
  assert_int_equal(p.mapped.port, 40000);
  assert_memory_equal(p.mapped.ip, from.ip, 4);
  assert_true(p.has_fingerprint);
  assert_int_equal(p.software_len, 12);

  kw_sockaddr f6;
  memset(&f6, 0, sizeof(f6));
  f6.family = 6;
  f6.ip[15] = 1;
  f6.port = 1;
  assert_int_equal(
      kw__stun_serve(req, 20, &f6, NULL, out, sizeof(out), &n, &code),
      KW_ERR_PARSE); /* length field disagrees with 20 */
  req[3] = 0;
  assert_int_equal(
      kw__stun_serve(req, 20, &f6, NULL, out, sizeof(out), &n, &code), KW_OK);
  assert_int_equal(kw__stun_parse_response(out, n, rfc_txid, &p), KW_OK);
  assert_int_equal(p.mapped.family, 6);
  assert_memory_equal(p.mapped.ip, f6.ip, 16);

  /* The RFC 5769 ICE request is answered too. */
  assert_int_equal(kw__stun_serve(rfc_req, sizeof(rfc_req), &from, NULL, out,
                                  sizeof(out), &n, &code),
                   KW_OK);
  assert_int_equal(code, 0);
  /* optional unknown attributes do not matter */
  msg m;
  m_start(&m, 0x0001);
  m_attr(&m, 0x8050, "opt", 3);
  m_fix(&m);
  assert_int_equal(
      kw__stun_serve(m.b, m.n, &from, NULL, out, sizeof(out), &n, &code),
      KW_OK);
  assert_int_equal(code, 0);
  /* small output buffer */
  assert_int_equal(kw__stun_serve(m.b, m.n, &from, NULL, out, 10, &n, &code),
                   KW_ERR_BUFFER);
  assert_int_equal(n, 0);
}

static void test_serve_420(void **state) {
  (void)state;
  msg m;
  m_start(&m, 0x0001);
  uint8_t cr[4] = {0, 0, 0, 6};
  m_attr(&m, 0x0003, cr, 4); /* CHANGE-REQUEST: not supported */
  m_attr(&m, 0x7777, "x", 1);
  m_attr(&m, 0x0003, cr, 4); /* listed once */
  m_fingerprint(&m);
  uint8_t out[KW_STUN_MAX_BUILD];
  size_t n;
  uint16_t code;
  kw_sockaddr from = v4(127, 0, 0, 1, 1);
  assert_int_equal(
      kw__stun_serve(m.b, m.n, &from, NULL, out, sizeof(out), &n, &code),
      KW_OK);
  assert_int_equal(code, 420);
  kw__stun_msg p;
  assert_int_equal(kw__stun_parse_response(out, n, rfc_txid, &p), KW_ERR_PEER);
  assert_int_equal(p.error_code, 420);
  const uint8_t ua[8] = {0x00, 0x0a, 0x00, 0x04, 0x00, 0x03, 0x77, 0x77};
  assert_memory_equal(out + 48, ua, 8);

  /* More distinct unknown attributes than remembered: still 420, list
   * capped. */
  m_start(&m, 0x0001);
  for (uint16_t t = 0x7000; t < 0x7000 + 12; t++)
    m_attr(&m, t, "", 0);
  m_fix(&m);
  assert_int_equal(
      kw__stun_serve(m.b, m.n, &from, NULL, out, sizeof(out), &n, &code),
      KW_OK);
  assert_int_equal(code, 420);
  assert_int_equal(out[50], 0);
  assert_int_equal(out[51], 2 * KW_STUN_MAX_UNKNOWN);
}

static void test_serve_400_and_drops(void **state) {
  (void)state;
  uint8_t out[KW_STUN_MAX_BUILD];
  size_t n = 7;
  uint16_t code = 7;
  kw_sockaddr from = v4(127, 0, 0, 1, 1);
  kw__stun_msg p;
  msg m;

  /* malformed attribute in a request -> 400 */
  m_start(&m, 0x0001);
  uint8_t f3[8] = {0, 3, 0, 1, 1, 2, 3, 4};
  m_attr(&m, 0x0020, f3, 8);
  m_fix(&m);
  assert_int_equal(
      kw__stun_serve(m.b, m.n, &from, NULL, out, sizeof(out), &n, &code),
      KW_OK);
  assert_int_equal(code, 400);
  assert_int_equal(kw__stun_parse_response(out, n, rfc_txid, &p), KW_ERR_PEER);
  assert_int_equal(p.error_code, 400);

  /* another method's request -> 400 */
  m_start(&m, 0x0003);
  m_fix(&m);
  assert_int_equal(
      kw__stun_serve(m.b, m.n, &from, NULL, out, sizeof(out), &n, &code),
      KW_OK);
  assert_int_equal(code, 400);

  /* bad fingerprint -> dropped */
  m_start(&m, 0x0001);
  m_fingerprint(&m);
  m.b[m.n - 2] ^= 1;
  n = 7;
  assert_int_equal(
      kw__stun_serve(m.b, m.n, &from, NULL, out, sizeof(out), &n, &code),
      KW_ERR_PARSE);
  assert_int_equal(n, 0);

  /* responses and indications are never answered */
  assert_int_equal(kw__stun_serve(rfc_v4, sizeof(rfc_v4), &from, NULL, out,
                                  sizeof(out), &n, &code),
                   KW_ERR_PARSE);
  m_start(&m, 0x0011);
  m_fix(&m);
  assert_int_equal(
      kw__stun_serve(m.b, m.n, &from, NULL, out, sizeof(out), &n, &code),
      KW_ERR_PARSE);
  /* not STUN */
  const uint8_t quic[24] = {0xc0, 0, 0, 0, 1};
  assert_int_equal(kw__stun_serve(quic, sizeof(quic), &from, NULL, out,
                                  sizeof(out), &n, &code),
                   KW_ERR_PARSE);
  assert_int_equal(n, 0);
  assert_int_equal(
      kw__stun_serve(NULL, 0, &from, NULL, out, sizeof(out), &n, &code),
      KW_ERR_PARSE);
  assert_int_equal(kw__stun_serve(rfc_req, sizeof(rfc_req), NULL, NULL, out,
                                  sizeof(out), &n, &code),
                   KW_ERR_INVALID_ARG);
}

static void test_method_class_decoding(void **state) {
  (void)state;
  msg m;
  kw__stun_msg p;
  /* 0x0113: Allocate (3) error response */
  m_start(&m, 0x0113);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_OK);
  assert_int_equal(p.method, 3);
  assert_int_equal(p.cls, KW_STUN_CLASS_ERROR);
  /* 0x3EEF: all method bits set */
  m_start(&m, 0x3EEF);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_OK);
  assert_int_equal(p.method, 0xFFF);
  assert_int_equal(p.cls, KW_STUN_CLASS_REQUEST);
  m_start(&m, 0x0011);
  m_fix(&m);
  assert_int_equal(kw__stun_parse(m.b, m.n, &p), KW_OK);
  assert_int_equal(p.cls, KW_STUN_CLASS_INDICATION);
  assert_int_equal(kw__stun_parse(m.b, m.n, NULL), KW_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32),
      cmocka_unit_test(test_is),
      cmocka_unit_test(test_rfc_request),
      cmocka_unit_test(test_rfc_v4_response),
      cmocka_unit_test(test_rfc_v6_response),
      cmocka_unit_test(test_rfc_txid_mismatch),
      cmocka_unit_test(test_every_bitflip_rejected),
      cmocka_unit_test(test_every_truncation_rejected),
      cmocka_unit_test(test_build_request),
      cmocka_unit_test(test_build_success_matches_rfc_attr),
      cmocka_unit_test(test_mapped_address_fallback),
      cmocka_unit_test(test_response_without_address),
      cmocka_unit_test(test_bad_family_and_lengths),
      cmocka_unit_test(test_truncated_attribute),
      cmocka_unit_test(test_missing_padding),
      cmocka_unit_test(test_padding_content_ignored),
      cmocka_unit_test(test_fingerprint_rules),
      cmocka_unit_test(test_error_code_and_unknown_attrs),
      cmocka_unit_test(test_unknown_required_in_response),
      cmocka_unit_test(test_after_integrity_ignored),
      cmocka_unit_test(test_serve_success),
      cmocka_unit_test(test_serve_420),
      cmocka_unit_test(test_serve_400_and_drops),
      cmocka_unit_test(test_method_class_decoding),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
