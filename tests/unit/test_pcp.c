/* SPDX-License-Identifier: MIT */
/* Unit tests of core/pcp: MAP and ANNOUNCE requests byte for byte, every
 * result code, the MAP response checks (nonce, protocol, port, grants that
 * cannot be used, delete), rejection of short, long, misaligned, other
 * version and other opcode datagrams, options, the retransmission
 * schedule and the epoch check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/pcp.h"

static const uint8_t NONCE[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

static kw__pcp_map_req map_req(uint32_t lifetime) {
  kw__pcp_map_req q;
  memset(&q, 0, sizeof q);
  memcpy(q.nonce, NONCE, sizeof NONCE);
  q.protocol = KW_PCP_PROTO_UDP;
  q.internal_port = 40001;
  q.suggested_port = 40001;
  q.lifetime_s = lifetime;
  assert_int_equal(kw_sockaddr_parse("198.18.1.10:0", &q.client_ip), KW_OK);
  return q;
}

/* A MAP response to `q` from a server, as bytes. */
static size_t map_resp(const kw__pcp_map_req *q, uint8_t result,
                       uint32_t lifetime, const char *ext, uint8_t *out,
                       size_t cap) {
  kw__pcp_response r;
  memset(&r, 0, sizeof r);
  r.version = 2;
  r.opcode = KW_PCP_OP_MAP;
  r.result = result;
  r.lifetime_s = lifetime;
  r.epoch_s = 1000;
  r.has_map = true;
  memcpy(r.nonce, q->nonce, sizeof r.nonce);
  r.protocol = q->protocol;
  r.internal_port = q->internal_port;
  if (ext)
    assert_int_equal(kw_sockaddr_parse(ext, &r.external), KW_OK);
  else
    r.external.family = 4;
  size_t n = 0;
  assert_int_equal(kw__pcp_encode_response(&r, out, cap, &n), KW_OK);
  return n;
}

static kw__pcp_match decode_check(const uint8_t *p, size_t n,
                                  const kw__pcp_map_req *q, kw__pcp_response *r,
                                  const char **why) {
  assert_int_equal(kw__pcp_decode_response(p, n, r), KW_OK);
  return kw__pcp_check_map(r, q, why);
}

static void test_encode_map(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(7200);
  uint8_t out[KW_PCP_MAP_MSG_LEN];
  size_t n = 0;
  assert_int_equal(kw__pcp_encode_map(&q, out, sizeof out, &n), KW_OK);
  static const uint8_t want[60] = {
      2,    1,    0,    0,    0x00, 0x00, 0x1c, 0x20, /* v2 MAP, 7200 s */
      0,    0,    0,    0,    0,    0,    0,    0,    /* client address */
      0,    0,    0xff, 0xff, 198,  18,   1,    10,   /* ::ffff:198.18.1.10 */
      1,    2,    3,    4,    5,    6,    7,    8,    /* nonce */
      9,    10,   11,   12,   17,   0,    0,    0,    /* UDP, reserved */
      0x9c, 0x41, 0x9c, 0x41, 0,    0,    0,    0,    /* ports 40001 */
      0,    0,    0,    0,    0,    0,    0xff, 0xff, /* suggested ext: */
      0,    0,    0,    0};                           /* ::ffff:0.0.0.0 */
  assert_int_equal(n, 60);
  assert_memory_equal(out, want, sizeof want);
  /* a suggested address, and IPv6 as itself */
  assert_int_equal(kw_sockaddr_parse("198.18.0.1:0", &q.suggested_ip), KW_OK);
  assert_int_equal(kw__pcp_encode_map(&q, out, sizeof out, &n), KW_OK);
  assert_int_equal(out[56], 198);
  assert_int_equal(out[59], 1);
  assert_int_equal(kw_sockaddr_parse("[2001:db8::1]:0", &q.client_ip), KW_OK);
  assert_int_equal(kw__pcp_encode_map(&q, out, sizeof out, &n), KW_OK);
  assert_int_equal(out[8], 0x20);
  assert_int_equal(out[9], 0x01);
  assert_int_equal(out[23], 1);
}

static void test_encode_map_errors(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(7200);
  uint8_t out[KW_PCP_MAP_MSG_LEN];
  size_t n = 99;
  assert_int_equal(kw__pcp_encode_map(&q, out, 59, &n), KW_ERR_BUFFER);
  assert_int_equal(n, 0);
  assert_int_equal(kw__pcp_encode_map(NULL, out, sizeof out, &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__pcp_encode_map(&q, NULL, sizeof out, &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__pcp_encode_map(&q, out, sizeof out, NULL),
                   KW_ERR_INVALID_ARG);
  kw__pcp_map_req b = q;
  b.client_ip.family = 0;
  assert_int_equal(kw__pcp_encode_map(&b, out, sizeof out, &n),
                   KW_ERR_INVALID_ARG);
  b = q;
  b.protocol = 0; /* all protocols needs port 0 */
  assert_int_equal(kw__pcp_encode_map(&b, out, sizeof out, &n),
                   KW_ERR_INVALID_ARG);
  b = q;
  b.internal_port = 0;
  assert_int_equal(kw__pcp_encode_map(&b, out, sizeof out, &n),
                   KW_ERR_INVALID_ARG);
  b = q;
  b.suggested_ip.family = 9;
  assert_int_equal(kw__pcp_encode_map(&b, out, sizeof out, &n),
                   KW_ERR_INVALID_ARG);
  b = q;
  b.protocol = 0;
  b.internal_port = 0;
  assert_int_equal(kw__pcp_encode_map(&b, out, sizeof out, &n), KW_OK);
}

static void test_encode_announce(void **state) {
  (void)state;
  kw_sockaddr c;
  assert_int_equal(kw_sockaddr_parse("198.18.1.10:0", &c), KW_OK);
  uint8_t out[KW_PCP_HEADER_LEN];
  size_t n = 0;
  assert_int_equal(kw__pcp_encode_announce(&c, out, sizeof out, &n), KW_OK);
  assert_int_equal(n, 24);
  assert_int_equal(out[0], 2);
  assert_int_equal(out[1], 0);
  assert_int_equal(out[4] | out[5] | out[6] | out[7], 0);
  assert_int_equal(out[18], 0xff);
  assert_int_equal(out[20], 198);
  assert_int_equal(kw__pcp_encode_announce(&c, out, 23, &n), KW_ERR_BUFFER);
  assert_int_equal(kw__pcp_encode_announce(NULL, out, 24, &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__pcp_encode_announce(&c, NULL, 24, &n),
                   KW_ERR_INVALID_ARG);
  /* an ANNOUNCE answer decodes */
  kw__pcp_response r;
  memset(&r, 0, sizeof r);
  r.version = 2;
  r.opcode = KW_PCP_OP_ANNOUNCE;
  r.epoch_s = 77;
  assert_int_equal(kw__pcp_encode_response(&r, out, sizeof out, &n), KW_OK);
  assert_int_equal(n, 24);
  kw__pcp_response d;
  assert_int_equal(kw__pcp_decode_response(out, n, &d), KW_OK);
  assert_int_equal(d.opcode, KW_PCP_OP_ANNOUNCE);
  assert_int_equal(d.epoch_s, 77);
  assert_false(d.has_map);
  /* and is not an answer to a MAP */
  kw__pcp_map_req q = map_req(7200);
  const char *why;
  assert_int_equal(kw__pcp_check_map(&d, &q, &why), KW_PCP_MATCH_NOT_OURS);
  assert_string_equal(why, "opcode");
}

static void test_granted(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(7200);
  uint8_t p[128];
  size_t n =
      map_resp(&q, KW_PCP_SUCCESS, 3600, "198.18.0.1:40001", p, sizeof p);
  assert_int_equal(n, 60);
  kw__pcp_response r;
  const char *why;
  assert_int_equal(decode_check(p, n, &q, &r, &why), KW_PCP_MATCH_GRANTED);
  assert_int_equal(r.version, 2);
  assert_int_equal(r.lifetime_s, 3600);
  assert_int_equal(r.epoch_s, 1000);
  assert_int_equal(r.external.family, 4);
  assert_int_equal(r.external.port, 40001);
  assert_int_equal(r.external.ip[0], 198);
  assert_int_equal(r.external.ip[3], 1);
  assert_int_equal(kw__pcp_check_map(&r, &q, NULL), KW_PCP_MATCH_GRANTED);
}

static void test_every_result_code(void **state) {
  (void)state;
  static const char *const names[] = {
      "SUCCESS",           "UNSUPP_VERSION",        "NOT_AUTHORIZED",
      "MALFORMED_REQUEST", "UNSUPP_OPCODE",         "UNSUPP_OPTION",
      "MALFORMED_OPTION",  "NETWORK_FAILURE",       "NO_RESOURCES",
      "UNSUPP_PROTOCOL",   "USER_EX_QUOTA",         "CANNOT_PROVIDE_EXTERNAL",
      "ADDRESS_MISMATCH",  "EXCESSIVE_REMOTE_PEERS"};
  kw__pcp_map_req q = map_req(7200);
  for (int code = 0; code < 14; code++) {
    assert_string_equal(kw__pcp_result_name(code), names[code]);
    uint8_t p[128];
    size_t n = map_resp(&q, (uint8_t)code, code ? 30 : 7200, "198.18.0.1:40001",
                        p, sizeof p);
    kw__pcp_response r;
    kw__pcp_match m = decode_check(p, n, &q, &r, NULL);
    assert_int_equal(r.result, code);
    assert_int_equal(m, code == 0 ? KW_PCP_MATCH_GRANTED : KW_PCP_MATCH_ERROR);
    bool transient =
        code == KW_PCP_NETWORK_FAILURE || code == KW_PCP_NO_RESOURCES ||
        code == KW_PCP_USER_EX_QUOTA || code == KW_PCP_EXCESSIVE_REMOTE_PEERS;
    assert_int_equal(kw__pcp_result_transient(code), transient);
  }
  assert_string_equal(kw__pcp_result_name(14), "UNKNOWN");
  assert_string_equal(kw__pcp_result_name(255), "UNKNOWN");
  assert_string_equal(kw__pcp_result_name(-1), "UNKNOWN");
  /* an unknown code is an error too */
  uint8_t p[128];
  size_t n = map_resp(&q, 200, 30, "198.18.0.1:1", p, sizeof p);
  kw__pcp_response r;
  assert_int_equal(decode_check(p, n, &q, &r, NULL), KW_PCP_MATCH_ERROR);
}

static void test_header_only_errors(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(7200);
  uint8_t p[24] = {2, 0x81, 0, KW_PCP_MALFORMED_REQUEST};
  kw__pcp_response r;
  const char *why;
  assert_int_equal(decode_check(p, 24, &q, &r, &why), KW_PCP_MATCH_ERROR);
  assert_false(r.has_map);
  p[3] = KW_PCP_UNSUPP_VERSION;
  assert_int_equal(decode_check(p, 24, &q, &r, &why), KW_PCP_MATCH_ERROR);
  /* other errors must carry the nonce */
  p[3] = KW_PCP_NO_RESOURCES;
  assert_int_equal(decode_check(p, 24, &q, &r, &why), KW_PCP_MATCH_NOT_OURS);
  assert_string_equal(why, "nonce");
  /* a header-only success is malformed */
  p[3] = 0;
  assert_int_equal(kw__pcp_decode_response(p, 24, &r), KW_ERR_PARSE);
  /* a MAP payload cut short */
  uint8_t m[128];
  size_t n = map_resp(&q, 0, 60, "198.18.0.1:1", m, sizeof m);
  assert_int_equal(kw__pcp_decode_response(m, n - 4, &r), KW_ERR_PARSE);
  assert_int_equal(kw__pcp_decode_response(m, 28, &r), KW_ERR_PARSE);
}

static void test_nonce_mismatch(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(7200);
  uint8_t p[128];
  for (int i = 0; i < 12; i++) {
    size_t n = map_resp(&q, 0, 7200, "198.18.0.1:40001", p, sizeof p);
    p[24 + i] ^= 0x40;
    kw__pcp_response r;
    const char *why;
    assert_int_equal(decode_check(p, n, &q, &r, &why), KW_PCP_MATCH_NOT_OURS);
    assert_string_equal(why, "nonce");
  }
  /* errors with another nonce are not ours either */
  size_t n = map_resp(&q, KW_PCP_NOT_AUTHORIZED, 30, NULL, p, sizeof p);
  p[30] ^= 1;
  kw__pcp_response r;
  assert_int_equal(decode_check(p, n, &q, &r, NULL), KW_PCP_MATCH_NOT_OURS);
}

static void test_protocol_port_mismatch(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(7200);
  uint8_t p[128];
  size_t n = map_resp(&q, 0, 7200, "198.18.0.1:40001", p, sizeof p);
  p[36] = 6; /* TCP */
  kw__pcp_response r;
  const char *why;
  assert_int_equal(decode_check(p, n, &q, &r, &why), KW_PCP_MATCH_NOT_OURS);
  assert_string_equal(why, "protocol");
  n = map_resp(&q, 0, 7200, "198.18.0.1:40001", p, sizeof p);
  p[41] ^= 1; /* internal port */
  assert_int_equal(decode_check(p, n, &q, &r, &why), KW_PCP_MATCH_NOT_OURS);
  assert_string_equal(why, "internal-port");
  assert_int_equal(kw__pcp_check_map(NULL, &q, &why), KW_PCP_MATCH_NOT_OURS);
  assert_int_equal(kw__pcp_check_map(&r, NULL, &why), KW_PCP_MATCH_NOT_OURS);
}

static void test_bad_grants(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(7200);
  static const struct {
    const char *ext;
    uint32_t lifetime;
    const char *why;
  } cases[] = {
      {"198.18.0.1:40001", 0, "lifetime"}, /* lifetime 0 to a create */
      {"198.18.0.1:0", 7200, "port"},
      {"0.0.0.0:40001", 7200, "address"},
      {"127.0.0.1:40001", 7200, "address"},
      {"224.0.0.1:40001", 7200, "address"},
      {"255.255.255.255:40001", 7200, "address"},
      {"[2001:db8::1]:40001", 7200, "address"}, /* v6 to a v4 ask */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t p[128];
    size_t n = map_resp(&q, 0, cases[i].lifetime, cases[i].ext, p, sizeof p);
    kw__pcp_response r;
    const char *why;
    assert_int_equal(decode_check(p, n, &q, &r, &why), KW_PCP_MATCH_BAD_GRANT);
    assert_string_equal(why, cases[i].why);
  }
  /* an IPv6 client: IPv4 or :: or multicast are no grant, 2001:db8::1 is */
  kw__pcp_map_req q6 = map_req(7200);
  assert_int_equal(kw_sockaddr_parse("[2001:db8::2]:0", &q6.client_ip), KW_OK);
  const char *v6[] = {"198.18.0.1:5", "[::]:5", "[ff02::1]:5"};
  for (size_t i = 0; i < 3; i++) {
    uint8_t p[128];
    size_t n = map_resp(&q6, 0, 60, v6[i], p, sizeof p);
    kw__pcp_response r;
    assert_int_equal(decode_check(p, n, &q6, &r, NULL), KW_PCP_MATCH_BAD_GRANT);
  }
  uint8_t p[128];
  size_t n = map_resp(&q6, 0, 60, "[2001:db8::1]:5", p, sizeof p);
  kw__pcp_response r;
  assert_int_equal(decode_check(p, n, &q6, &r, NULL), KW_PCP_MATCH_GRANTED);
}

static void test_delete(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(0); /* lifetime 0: delete */
  uint8_t p[128];
  size_t n = map_resp(&q, 0, 0, "0.0.0.0:0", p, sizeof p);
  kw__pcp_response r;
  const char *why;
  assert_int_equal(decode_check(p, n, &q, &r, &why), KW_PCP_MATCH_DELETED);
  /* a delete answered with a lifetime did not delete */
  n = map_resp(&q, 0, 60, "198.18.0.1:40001", p, sizeof p);
  assert_int_equal(decode_check(p, n, &q, &r, &why), KW_PCP_MATCH_BAD_GRANT);
  assert_string_equal(why, "lifetime");
  /* NOT_AUTHORIZED to a delete (another nonce at the server) */
  n = map_resp(&q, KW_PCP_NOT_AUTHORIZED, 0, NULL, p, sizeof p);
  assert_int_equal(decode_check(p, n, &q, &r, &why), KW_PCP_MATCH_ERROR);
  /* the delete request itself */
  uint8_t out[60];
  assert_int_equal(kw__pcp_encode_map(&q, out, sizeof out, &n), KW_OK);
  assert_int_equal(out[4] | out[5] | out[6] | out[7], 0);
}

static void test_lengths(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(7200);
  uint8_t p[KW_PCP_MAX_MSG + 8];
  memset(p, 0, sizeof p);
  size_t n = map_resp(&q, 0, 7200, "198.18.0.1:40001", p, sizeof p);
  kw__pcp_response r;
  for (size_t len = 0; len < 24; len++)
    assert_int_equal(kw__pcp_decode_response(p, len, &r), KW_ERR_PARSE);
  for (size_t len = n - 3; len < n + 4; len++)
    if (len != n)
      assert_int_equal(kw__pcp_decode_response(p, len, &r), KW_ERR_PARSE);
  /* padding after the payload is not an option: zeros decode as an option
   * of code 0 and length 0 (mandatory, unknown) */
  assert_int_equal(kw__pcp_decode_response(p, n + 4, &r), KW_OK);
  assert_true(r.unknown_mandatory);
  assert_int_equal(kw__pcp_check_map(&r, &q, NULL), KW_PCP_MATCH_BAD_GRANT);
  /* longer than 1100: refused, even when well formed */
  size_t big = KW_PCP_MAX_MSG + 4;
  uint8_t *o = p + n;
  o[0] = 200; /* optional unknown option filling the rest */
  o[1] = 0;
  size_t olen = big - n - 4;
  o[2] = (uint8_t)(olen >> 8);
  o[3] = (uint8_t)olen;
  assert_int_equal(kw__pcp_decode_response(p, big, &r), KW_ERR_PARSE);
  /* the same at exactly 1100 is fine */
  olen = KW_PCP_MAX_MSG - n - 4;
  o[2] = (uint8_t)(olen >> 8);
  o[3] = (uint8_t)olen;
  assert_int_equal(kw__pcp_decode_response(p, KW_PCP_MAX_MSG, &r), KW_OK);
  assert_int_equal(r.n_options, 1);
  assert_false(r.unknown_mandatory);
  assert_int_equal(kw__pcp_check_map(&r, &q, NULL), KW_PCP_MATCH_GRANTED);
  assert_int_equal(kw__pcp_decode_response(NULL, 60, &r), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__pcp_decode_response(p, 60, NULL), KW_ERR_INVALID_ARG);
}

static void test_version_opcode(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(7200);
  uint8_t p[128];
  size_t n = map_resp(&q, 0, 7200, "198.18.0.1:40001", p, sizeof p);
  kw__pcp_response r;
  /* a request (no R bit) */
  p[1] = KW_PCP_OP_MAP;
  assert_int_equal(kw__pcp_decode_response(p, n, &r), KW_ERR_PARSE);
  /* PEER and unknown opcodes */
  p[1] = 0x80 | KW_PCP_OP_PEER;
  assert_int_equal(kw__pcp_decode_response(p, n, &r), KW_ERR_PARSE);
  p[1] = 0x80 | 0x7f;
  assert_int_equal(kw__pcp_decode_response(p, n, &r), KW_ERR_PARSE);
  p[1] = 0x80 | KW_PCP_OP_MAP;
  /* version 1 (the draft): unsupported, the result readable */
  p[0] = 1;
  p[3] = KW_PCP_UNSUPP_VERSION;
  assert_int_equal(kw__pcp_decode_response(p, n, &r), KW_ERR_UNSUPPORTED);
  assert_int_equal(r.version, 1);
  assert_int_equal(r.result, KW_PCP_UNSUPP_VERSION);
  p[0] = 3;
  assert_int_equal(kw__pcp_decode_response(p, n, &r), KW_ERR_UNSUPPORTED);
  assert_int_equal(r.version, 3);
  /* version 0 in a PCP-sized datagram: neither */
  p[0] = 0;
  assert_int_equal(kw__pcp_decode_response(p, n, &r), KW_ERR_PARSE);
  /* NAT-PMP's "unsupported version" answer (RFC 6886 3.5) */
  static const uint8_t natpmp[8] = {0, 0x81, 0, 1, 0, 0, 0x12, 0x34};
  assert_int_equal(kw__pcp_decode_response(natpmp, 8, &r), KW_ERR_UNSUPPORTED);
  assert_int_equal(r.version, 0);
  assert_int_equal(r.result, 1);
  assert_int_equal(r.epoch_s, 0x1234);
  uint8_t np2[8];
  memcpy(np2, natpmp, 8);
  np2[2] = 1; /* a 16-bit result above 255: not that answer */
  assert_int_equal(kw__pcp_decode_response(np2, 8, &r), KW_ERR_PARSE);
  np2[2] = 0;
  np2[1] = 1; /* a NAT-PMP request */
  assert_int_equal(kw__pcp_decode_response(np2, 8, &r), KW_ERR_PARSE);
  /* the reserved byte is ignored */
  n = map_resp(&q, 0, 7200, "198.18.0.1:40001", p, sizeof p);
  p[2] = 0xaa;
  assert_int_equal(decode_check(p, n, &q, &r, NULL), KW_PCP_MATCH_GRANTED);
}

/* Appends an option to a response of length n; returns the new length. */
static size_t add_opt(uint8_t *p, size_t n, uint8_t code, uint16_t len) {
  p[n] = code;
  p[n + 1] = 0;
  p[n + 2] = (uint8_t)(len >> 8);
  p[n + 3] = (uint8_t)len;
  size_t padded = ((size_t)len + 3u) & ~(size_t)3u;
  memset(p + n + 4, 0x5a, padded);
  return n + 4 + padded;
}

static void test_options(void **state) {
  (void)state;
  kw__pcp_map_req q = map_req(7200);
  uint8_t p[256];
  kw__pcp_response r;
  const char *why;
  size_t n = map_resp(&q, 0, 7200, "198.18.0.1:40001", p, sizeof p);
  size_t m = add_opt(p, n, KW_PCP_OPT_PREFER_FAILURE, 0);
  m = add_opt(p, m, KW_PCP_OPT_FILTER, 20);
  m = add_opt(p, m, 130, 3); /* optional, unknown, padded */
  assert_int_equal(decode_check(p, m, &q, &r, &why), KW_PCP_MATCH_GRANTED);
  assert_int_equal(r.n_options, 3);
  assert_true(r.prefer_failure);
  assert_true(r.filter);
  assert_false(r.third_party);
  /* THIRD_PARTY: the mapping is for someone else */
  m = add_opt(p, n, KW_PCP_OPT_THIRD_PARTY, 16);
  assert_int_equal(decode_check(p, m, &q, &r, &why), KW_PCP_MATCH_BAD_GRANT);
  assert_string_equal(why, "option");
  /* an unknown mandatory option */
  m = add_opt(p, n, 99, 4);
  assert_int_equal(decode_check(p, m, &q, &r, &why), KW_PCP_MATCH_BAD_GRANT);
  /* known options with the wrong length */
  assert_int_equal(
      kw__pcp_decode_response(p, add_opt(p, n, KW_PCP_OPT_THIRD_PARTY, 4), &r),
      KW_ERR_PARSE);
  assert_int_equal(kw__pcp_decode_response(
                       p, add_opt(p, n, KW_PCP_OPT_PREFER_FAILURE, 4), &r),
                   KW_ERR_PARSE);
  assert_int_equal(
      kw__pcp_decode_response(p, add_opt(p, n, KW_PCP_OPT_FILTER, 16), &r),
      KW_ERR_PARSE);
  /* an option longer than the datagram, or its padding cut off */
  m = add_opt(p, n, 130, 8);
  p[n + 3] = 12;
  assert_int_equal(kw__pcp_decode_response(p, m, &r), KW_ERR_PARSE);
  m = add_opt(p, n, 130, 5); /* 4 + 8 bytes */
  assert_int_equal(kw__pcp_decode_response(p, m - 4, &r), KW_ERR_PARSE);
  /* an empty optional option: just its 4-byte header */
  p[n] = 130;
  p[n + 2] = p[n + 3] = 0;
  assert_int_equal(kw__pcp_decode_response(p, n + 4, &r), KW_OK);
  assert_int_equal(r.n_options, 1);
  /* an error answer may carry options too */
  n = map_resp(&q, KW_PCP_UNSUPP_OPTION, 30, NULL, p, sizeof p);
  m = add_opt(p, n, KW_PCP_OPT_PREFER_FAILURE, 0);
  assert_int_equal(decode_check(p, m, &q, &r, &why), KW_PCP_MATCH_ERROR);
}

static void test_encode_response_errors(void **state) {
  (void)state;
  kw__pcp_response r;
  memset(&r, 0, sizeof r);
  r.version = 2;
  r.opcode = KW_PCP_OP_PEER;
  uint8_t out[64];
  size_t n;
  assert_int_equal(kw__pcp_encode_response(&r, out, sizeof out, &n),
                   KW_ERR_INVALID_ARG);
  r.opcode = KW_PCP_OP_MAP;
  r.has_map = true;
  assert_int_equal(kw__pcp_encode_response(&r, out, 59, &n), KW_ERR_BUFFER);
  assert_int_equal(kw__pcp_encode_response(NULL, out, 60, &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__pcp_encode_response(&r, out, 60, &n), KW_OK);
  assert_int_equal(n, 60);
  r.has_map = false; /* header only */
  assert_int_equal(kw__pcp_encode_response(&r, out, 60, &n), KW_OK);
  assert_int_equal(n, 24);
}

static void test_retransmit(void **state) {
  (void)state;
  /* RAND = 0 */
  uint32_t rt = kw__pcp_retransmit_ms(0, 100);
  assert_int_equal(rt, 3000);
  rt = kw__pcp_retransmit_ms(rt, 100);
  assert_int_equal(rt, 6000);
  rt = kw__pcp_retransmit_ms(rt, 100);
  assert_int_equal(rt, 12000);
  /* the jitter's ends, and clamping */
  assert_int_equal(kw__pcp_retransmit_ms(0, 0), 2700);
  assert_int_equal(kw__pcp_retransmit_ms(0, 200), 3300);
  assert_int_equal(kw__pcp_retransmit_ms(0, 999), 3300);
  /* past MRT: around MRT */
  assert_int_equal(kw__pcp_retransmit_ms(600000, 100), KW_PCP_MRT_MS);
  assert_int_equal(kw__pcp_retransmit_ms(1024000, 0), 921600);
  assert_int_equal(kw__pcp_retransmit_ms(1024000, 200), 1126400);
  /* never shrinks to zero, however long it ran */
  uint32_t t = 0;
  for (int i = 0; i < 40; i++) {
    t = kw__pcp_retransmit_ms(t, (unsigned)(i * 37) % 201);
    assert_true(t >= 2700 && t <= 1126400);
  }
}

static void test_epoch(void **state) {
  (void)state;
  kw__pcp_epoch e = {0};
  assert_true(kw__pcp_epoch_update(&e, 1000, 500));  /* the first */
  assert_true(kw__pcp_epoch_update(&e, 61000, 560)); /* in step */
  assert_true(kw__pcp_epoch_update(&e, 61500, 559)); /* 1 s back: fine */
  assert_false(kw__pcp_epoch_update(&e, 62000, 10)); /* rebooted */
  /* after a reset the new epoch is the base */
  assert_true(kw__pcp_epoch_update(&e, 72000, 20));
  /* the server's clock ran far ahead of ours */
  assert_false(kw__pcp_epoch_update(&e, 73000, 200));
  /* ours ran far ahead (the server restarted and counted up again) */
  assert_false(kw__pcp_epoch_update(&e, 3673000, 300));
  /* within 2 s + 1/16 */
  assert_true(kw__pcp_epoch_update(&e, 3773000, 400 + 6 + 2));
  assert_true(kw__pcp_epoch_update(&e, 3873000, 408 + 100 - 8));
  /* a clock that went back (ours) counts as no time */
  assert_true(kw__pcp_epoch_update(&e, 3872000, 501));
  assert_false(kw__pcp_epoch_update(NULL, 0, 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encode_map),
      cmocka_unit_test(test_encode_map_errors),
      cmocka_unit_test(test_encode_announce),
      cmocka_unit_test(test_granted),
      cmocka_unit_test(test_every_result_code),
      cmocka_unit_test(test_header_only_errors),
      cmocka_unit_test(test_nonce_mismatch),
      cmocka_unit_test(test_protocol_port_mismatch),
      cmocka_unit_test(test_bad_grants),
      cmocka_unit_test(test_delete),
      cmocka_unit_test(test_lengths),
      cmocka_unit_test(test_version_opcode),
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_encode_response_errors),
      cmocka_unit_test(test_retransmit),
      cmocka_unit_test(test_epoch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
