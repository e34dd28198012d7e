/* SPDX-License-Identifier: MIT */
/* Unit tests of core/ticket: round trips, the pinned wire format and every
 * rejection path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "keyway.h"
#include "core/base32.h"
#include "core/sockaddr.h"

/* Seed 0..31, relay "https://relay.test:443", 127.0.0.1:4433, [::1]:4433.
 * Pinned wire format, checked against an independent implementation of
 * docs/protocol/tickets.md (Python: base64.b32encode + hashlib.blake2b). */
#define VECTOR_TICKET                                                          \
  "kw1aeb2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qaiwnb2hi4dthixs64t" \
  "f"                                                                          \
  "nrqxsltumvzxiorugqzqibt7aaaacekrayjaaaaaaaaaaaaaaaaaaaaaaaaacekrmti6x5i"

static void seed_id(uint8_t id[32]) {
  uint8_t seed[32], sk[64];
  for (int i = 0; i < 32; i++)
    seed[i] = (uint8_t)i;
  crypto_sign_seed_keypair(id, sk, seed);
}

/* A payload under construction (raw bytes, before checksum and base32). */
typedef struct payload {
  uint8_t b[1024];
  size_t n;
} payload;

static void put(payload *p, const void *d, size_t n) {
  assert_true(p->n + n <= sizeof(p->b));
  memcpy(p->b + p->n, d, n);
  p->n += n;
}

static void put_u8(payload *p, uint8_t v) {
  put(p, &v, 1);
}

/* version 1 + the pinned id */
static void start(payload *p) {
  uint8_t id[32];
  p->n = 0;
  put_u8(p, 1);
  seed_id(id);
  put(p, id, 32);
}

static void put_v4(payload *p, uint8_t last, uint16_t port) {
  uint8_t f[8] = {4, 6, 198, 18, 0, last, (uint8_t)(port >> 8), (uint8_t)port};
  put(p, f, sizeof(f));
}

/* Appends the checksum and writes "kw1" + base32 into out. */
static void finish(payload *p, char *out, size_t outlen, bool good_sum) {
  uint8_t h[32];
  crypto_generichash(h, sizeof(h), p->b, p->n, NULL, 0);
  if (!good_sum)
    h[0] ^= 1;
  put(p, h, 4);
  assert_true(outlen > 3);
  memcpy(out, "kw1", 3);
  assert_int_not_equal(kw__base32_encode(out + 3, outlen - 3, p->b, p->n), 0);
}

static void expect_bad(const char *text, const char *why) {
  kw_endpoint_addr a;
  memset(&a, 0x5a, sizeof(a));
  const char *got = NULL;
  assert_int_equal(kw_ticket_decode(text, &a, &got), KW_ERR_BAD_TICKET);
  assert_non_null(got);
  assert_string_equal(got, why);
  /* The output is untouched on failure. */
  for (size_t i = 0; i < sizeof(a); i++)
    assert_int_equal(((uint8_t *)&a)[i], 0x5a);
  /* why may be NULL. */
  assert_int_equal(kw_ticket_decode(text, &a, NULL), KW_ERR_BAD_TICKET);
}

static void expect_bad_payload(payload *p, const char *why) {
  char text[2048];
  finish(p, text, sizeof(text), true);
  expect_bad(text, why);
}

static void sample(kw_endpoint_addr *a, size_t n_addrs, bool relay) {
  memset(a, 0, sizeof(*a));
  seed_id(a->id);
  if (relay)
    strcpy(a->relay_url, "https://relay.test:443");
  for (size_t i = 0; i < n_addrs; i++) {
    kw_sockaddr *s = &a->addrs[i];
    if (i % 2 == 0) {
      s->family = 4;
      s->ip[0] = 198;
      s->ip[1] = 18;
      s->ip[2] = (uint8_t)i;
      s->ip[3] = 1;
    } else {
      s->family = 6;
      s->ip[0] = 0xfd;
      s->ip[15] = (uint8_t)i;
    }
    s->port = (uint16_t)(1000 + i * 4099);
  }
  a->n_addrs = n_addrs;
}

static void assert_addr_equal(const kw_endpoint_addr *x,
                              const kw_endpoint_addr *y) {
  assert_memory_equal(x->id, y->id, 32);
  assert_string_equal(x->relay_url, y->relay_url);
  assert_int_equal(x->n_addrs, y->n_addrs);
  for (size_t i = 0; i < x->n_addrs; i++)
    assert_true(kw__sockaddr_equal(&x->addrs[i], &y->addrs[i]));
}

static void test_round_trips(void **state) {
  (void)state;
  for (int relay = 0; relay <= 1; relay++) {
    for (size_t n = 0; n <= KW_MAX_DIRECT_ADDRS; n++) {
      kw_endpoint_addr a, b;
      char text[KW_TICKET_MAX];
      sample(&a, n, relay);
      assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)), KW_OK);
      assert_memory_equal(text, "kw1", 3);
      for (const char *c = text + 3; *c; c++)
        assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", *c));
      const char *why = "unset";
      memset(&b, 0x77, sizeof(b));
      assert_int_equal(kw_ticket_decode(text, &b, &why), KW_OK);
      assert_null(why);
      assert_addr_equal(&a, &b);
    }
  }
}

static void test_largest_fits(void **state) {
  (void)state;
  kw_endpoint_addr a, b;
  char text[KW_TICKET_MAX];
  memset(&a, 0, sizeof(a));
  seed_id(a.id);
  memcpy(a.relay_url, "https://", 8);
  memset(a.relay_url + 8, 'r', KW_MAX_RELAY_URL - 8);
  a.relay_url[KW_MAX_RELAY_URL] = '\0';
  for (size_t i = 0; i < KW_MAX_DIRECT_ADDRS; i++) {
    a.addrs[i].family = 6;
    memset(a.addrs[i].ip, 0xff, 16);
    a.addrs[i].ip[0] = (uint8_t)i;
    a.addrs[i].port = 65535;
  }
  a.n_addrs = KW_MAX_DIRECT_ADDRS;
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)), KW_OK);
  assert_true(strlen(text) < KW_TICKET_MAX);
  assert_int_equal(kw_ticket_decode(text, &b, NULL), KW_OK);
  assert_addr_equal(&a, &b);
  /* Too small an output buffer: KW_ERR_BUFFER and an empty string. */
  size_t need = strlen(text) + 1;
  assert_int_equal(kw_ticket_encode(&a, text, need - 1), KW_ERR_BUFFER);
  assert_string_equal(text, "");
  assert_int_equal(kw_ticket_encode(&a, text, 3), KW_ERR_BUFFER);
  assert_int_equal(kw_ticket_encode(&a, text, 0), KW_ERR_BUFFER);
  assert_int_equal(kw_ticket_encode(&a, text, need), KW_OK);
}

static void test_known_vector(void **state) {
  (void)state;
  kw_endpoint_addr a, b;
  char text[KW_TICKET_MAX];
  memset(&a, 0, sizeof(a));
  seed_id(a.id);
  strcpy(a.relay_url, "https://relay.test:443");
  assert_int_equal(kw_sockaddr_parse("127.0.0.1:4433", &a.addrs[0]), KW_OK);
  assert_int_equal(kw_sockaddr_parse("[::1]:4433", &a.addrs[1]), KW_OK);
  a.n_addrs = 2;
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)), KW_OK);
  assert_string_equal(text, VECTOR_TICKET);
  assert_int_equal(kw_ticket_decode(VECTOR_TICKET, &b, NULL), KW_OK);
  assert_addr_equal(&a, &b);
}

static void test_text_leniency(void **state) {
  (void)state;
  kw_endpoint_addr a, b;
  char text[KW_TICKET_MAX], wrapped[KW_TICKET_MAX + 16];
  sample(&a, 3, true);
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)), KW_OK);
  /* Surrounding whitespace. */
  snprintf(wrapped, sizeof(wrapped), " \t\r\n%s\r\n \v\f", text);
  assert_int_equal(kw_ticket_decode(wrapped, &b, NULL), KW_OK);
  assert_addr_equal(&a, &b);
  /* Upper case (some channels shout). */
  for (char *c = text; *c; c++)
    if (*c >= 'a' && *c <= 'z')
      *c = (char)(*c - 'a' + 'A');
  assert_memory_equal(text, "KW1", 3);
  memset(&b, 0, sizeof(b));
  assert_int_equal(kw_ticket_decode(text, &b, NULL), KW_OK);
  assert_addr_equal(&a, &b);
  /* Whitespace inside is not base32. */
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)), KW_OK);
  snprintf(wrapped, sizeof(wrapped), "%.20s %s", text, text + 20);
  expect_bad(wrapped, "not base32");
}

static void test_skips_high_unknown_fields(void **state) {
  (void)state;
  payload p;
  char text[2048];
  kw_endpoint_addr a;
  start(&p);
  uint8_t f1[] = {200, 3, 'a', 'b', 'c'};
  put(&p, f1, sizeof(f1));
  put_v4(&p, 1, 7);
  uint8_t f2[] = {128, 0};
  put(&p, f2, sizeof(f2));
  uint8_t f3[2 + 255] = {255, 255};
  put(&p, f3, sizeof(f3));
  finish(&p, text, sizeof(text), true);
  const char *why = "unset";
  assert_int_equal(kw_ticket_decode(text, &a, &why), KW_OK);
  assert_null(why);
  assert_int_equal(a.n_addrs, 1);
  assert_int_equal(a.addrs[0].family, 4);
  assert_int_equal(a.addrs[0].port, 7);
  assert_string_equal(a.relay_url, "");
}

/* The application token (field type 2): round trip, the largest ticket with
 * the largest token still fits, kw_ticket_decode skips it, old tickets
 * decode with no token, and malformed token fields are refused. */
static void test_token(void **state) {
  (void)state;
  kw_endpoint_addr a, b;
  char text[KW_TICKET_MAX];
  uint8_t tok[KW_TICKET_TOKEN_MAX], got[KW_TICKET_TOKEN_MAX];
  size_t glen = 99;
  for (size_t i = 0; i < sizeof tok; i++)
    tok[i] = (uint8_t)(0xa0 + i);
  sample(&a, 3, true);
  assert_int_equal(kw_ticket_encode_token(&a, tok, sizeof tok, text,
                                          sizeof text),
                   KW_OK);
  assert_int_equal(kw_ticket_decode_token(text, &b, got, &glen, NULL), KW_OK);
  assert_addr_equal(&a, &b);
  assert_int_equal(glen, sizeof tok);
  assert_memory_equal(got, tok, sizeof tok);
  memset(&b, 0, sizeof b);
  assert_int_equal(kw_ticket_decode(text, &b, NULL), KW_OK);
  assert_addr_equal(&a, &b);
  /* no token: the same text as kw_ticket_encode */
  char plain[KW_TICKET_MAX];
  assert_int_equal(kw_ticket_encode_token(&a, NULL, 0, text, sizeof text),
                   KW_OK);
  assert_int_equal(kw_ticket_encode(&a, plain, sizeof plain), KW_OK);
  assert_string_equal(text, plain);
  /* an old ticket: decodes, no token */
  glen = 99;
  assert_int_equal(kw_ticket_decode_token(VECTOR_TICKET, &b, got, &glen, NULL),
                   KW_OK);
  assert_int_equal(glen, 0);
  /* too long a token */
  uint8_t big[KW_TICKET_TOKEN_MAX + 1] = {0};
  assert_int_equal(kw_ticket_encode_token(&a, big, sizeof big, text,
                                          sizeof text),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw_ticket_encode_token(&a, NULL, 4, text, sizeof text),
                   KW_ERR_INVALID_ARG);
  /* the largest ticket plus the largest token fits */
  memset(&a, 0, sizeof(a));
  seed_id(a.id);
  memcpy(a.relay_url, "https://", 8);
  memset(a.relay_url + 8, 'r', KW_MAX_RELAY_URL - 8);
  a.relay_url[KW_MAX_RELAY_URL] = '\0';
  for (size_t i = 0; i < KW_MAX_DIRECT_ADDRS; i++) {
    a.addrs[i].family = 6;
    memset(a.addrs[i].ip, 0xff, 16);
    a.addrs[i].ip[0] = (uint8_t)i;
    a.addrs[i].port = 65535;
  }
  a.n_addrs = KW_MAX_DIRECT_ADDRS;
  assert_int_equal(kw_ticket_encode_token(&a, tok, sizeof tok, text,
                                          sizeof text),
                   KW_OK);
  assert_true(strlen(text) < KW_TICKET_MAX);
  assert_int_equal(kw_ticket_decode_token(text, &b, got, &glen, NULL), KW_OK);
  assert_int_equal(glen, sizeof tok);
  /* malformed token fields */
  payload p;
  start(&p);
  uint8_t t0[] = {2, 0};
  put(&p, t0, sizeof t0);
  expect_bad_payload(&p, "bad token length");
  start(&p);
  uint8_t t17[2 + 17] = {2, 17};
  put(&p, t17, sizeof t17);
  expect_bad_payload(&p, "bad token length");
  start(&p);
  uint8_t t2[] = {2, 1, 7, 2, 1, 8};
  put(&p, t2, sizeof t2);
  expect_bad_payload(&p, "more than one token");
}

static void test_rejects_text(void **state) {
  (void)state;
  char text[KW_TICKET_MAX], big[KW_TICKET_MAX + 8];
  kw_endpoint_addr a;
  sample(&a, 2, true);
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)), KW_OK);

  expect_bad("", "empty ticket");
  expect_bad(" \n\t ", "empty ticket");
  expect_bad("kw", "missing kw1 prefix");
  expect_bad("k", "missing kw1 prefix");
  text[2] = '2';
  expect_bad(text, "missing kw1 prefix");
  expect_bad(text + 3, "missing kw1 prefix");
  expect_bad("kx1aaaaaaaa", "missing kw1 prefix");
  expect_bad("xw1aaaaaaaa", "missing kw1 prefix");
  expect_bad("kw1!!!!!!!!", "not base32");
  expect_bad("kw1aaaaaaaa=", "not base32");
  expect_bad("kw1a", "not base32"); /* impossible length */
  expect_bad("kw1", "ticket too short");
  expect_bad("kw1aaaaaaaa", "ticket too short");
  /* Longer than KW_TICKET_MAX - 1 characters. */
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  memcpy(big, "kw1", 3);
  expect_bad(big, "ticket too long");
  big[KW_TICKET_MAX] = '\0'; /* KW_TICKET_MAX chars: one too many */
  expect_bad(big, "ticket too long");
  /* Exactly at the bound it is decoded (and fails on content). */
  big[KW_TICKET_MAX - 1] = '\0';
  expect_bad(big, "unsupported version 0"); /* all-zero payload */
  big[KW_TICKET_MAX - 2] = '\0';
  expect_bad(big, "not base32"); /* 1019 base32 chars: impossible length */

  kw_endpoint_addr out;
  const char *why = NULL;
  assert_int_equal(kw_ticket_decode(NULL, &out, &why), KW_ERR_INVALID_ARG);
  assert_string_equal(why, "missing argument");
  assert_int_equal(kw_ticket_decode("kw1", NULL, &why), KW_ERR_INVALID_ARG);
}

static void test_rejects_payload(void **state) {
  (void)state;
  payload p;
  char text[2048];

  /* Version. */
  start(&p);
  p.b[0] = 0;
  expect_bad_payload(&p, "unsupported version 0");
  start(&p);
  p.b[0] = 2;
  expect_bad_payload(&p, "unsupported version (made by a newer keyway?)");

  /* Checksum: wrong sum, and a flipped bit in the body. */
  start(&p);
  put_v4(&p, 1, 9);
  finish(&p, text, sizeof(text), false);
  expect_bad(text, "checksum mismatch");
  start(&p);
  put_v4(&p, 1, 9);
  finish(&p, text, sizeof(text), true);
  text[20] = text[20] == 'a' ? 'b' : 'a';
  expect_bad(text, "checksum mismatch");

  /* Id that is no valid Ed25519 point. */
  start(&p);
  memset(p.b + 1, 0, 32);
  expect_bad_payload(&p, "invalid endpoint id");
  start(&p);
  memset(p.b + 1, 0xff, 32);
  expect_bad_payload(&p, "invalid endpoint id");

  /* Truncated fields: a lone type byte, a length past the end. */
  start(&p);
  put_u8(&p, 4);
  expect_bad_payload(&p, "truncated field");
  start(&p);
  uint8_t trunc[] = {4, 6, 1, 2, 3};
  put(&p, trunc, sizeof(trunc));
  expect_bad_payload(&p, "truncated field");
  start(&p);
  uint8_t trunc2[] = {200, 10, 1};
  put(&p, trunc2, sizeof(trunc2));
  expect_bad_payload(&p, "truncated field");

  /* Relay URL rules. */
  start(&p);
  uint8_t r0[] = {1, 0};
  put(&p, r0, sizeof(r0));
  expect_bad_payload(&p, "bad relay url length");
  static const char *bad_urls[][2] = {
      {"http://relay.test", "relay url is not https://HOST"},
      {"https://", "relay url is not https://HOST"},
      {"HTTPS://relay.test", "relay url is not https://HOST"},
      {"relay.test", "relay url is not https://HOST"},
      {"https://relay test", "relay url has a non-printable character"},
      {"https://relay.test\n", "relay url has a non-printable character"},
      {"https://r\x7f", "relay url has a non-printable character"},
      {"https://r\xc3\xa9", "relay url has a non-printable character"},
      {"https://\x01", "relay url has a non-printable character"},
  };
  for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
    start(&p);
    put_u8(&p, 1);
    put_u8(&p, (uint8_t)strlen(bad_urls[i][0]));
    put(&p, bad_urls[i][0], strlen(bad_urls[i][0]));
    expect_bad_payload(&p, bad_urls[i][1]);
  }
  /* A NUL inside the URL. */
  start(&p);
  uint8_t rn[] = {1, 10, 'h', 't', 't', 'p', 's', ':', '/', '/', 'a', 0};
  put(&p, rn, sizeof(rn));
  expect_bad_payload(&p, "relay url has a non-printable character");
  start(&p);
  for (int k = 0; k < 2; k++) {
    put_u8(&p, 1);
    put_u8(&p, 10);
    put(&p, "https://r1", 10);
  }
  expect_bad_payload(&p, "more than one relay url");

  /* Address rules. */
  start(&p);
  uint8_t l5[] = {4, 5, 1, 2, 3, 4, 5};
  put(&p, l5, sizeof(l5));
  expect_bad_payload(&p, "bad address length");
  start(&p);
  uint8_t l7[] = {4, 7, 1, 2, 3, 4, 5, 6, 7};
  put(&p, l7, sizeof(l7));
  expect_bad_payload(&p, "bad address length");
  start(&p);
  uint8_t l6for6[] = {6, 6, 1, 2, 3, 4, 5, 6};
  put(&p, l6for6, sizeof(l6for6));
  expect_bad_payload(&p, "bad address length");
  start(&p);
  put_v4(&p, 1, 0);
  expect_bad_payload(&p, "address port is 0");
  start(&p);
  uint8_t v6port0[20] = {6, 18, 0xfd, [17] = 1, [18] = 0, [19] = 0};
  put(&p, v6port0, sizeof(v6port0));
  expect_bad_payload(&p, "address port is 0");
  start(&p);
  uint8_t zero4[] = {4, 6, 0, 0, 0, 0, 0, 80};
  put(&p, zero4, sizeof(zero4));
  expect_bad_payload(&p, "unspecified address");
  start(&p);
  uint8_t zero6[20] = {6, 18, [18] = 0, [19] = 80};
  put(&p, zero6, sizeof(zero6));
  expect_bad_payload(&p, "unspecified address");
  start(&p);
  put_v4(&p, 1, 9);
  put_v4(&p, 2, 9);
  put_v4(&p, 1, 9);
  expect_bad_payload(&p, "duplicate address");
  start(&p);
  for (int i = 0; i <= KW_MAX_DIRECT_ADDRS; i++)
    put_v4(&p, (uint8_t)(i + 1), 9);
  expect_bad_payload(&p, "too many addresses");

  /* Unknown types below 128 are rejected. */
  static const uint8_t unknown[] = {0, 3, 5, 7, 127};
  for (size_t i = 0; i < sizeof(unknown); i++) {
    start(&p);
    put_u8(&p, unknown[i]);
    put_u8(&p, 0);
    expect_bad_payload(&p, "unknown field type");
  }
}

static void test_encode_rejects(void **state) {
  (void)state;
  kw_endpoint_addr a;
  char text[KW_TICKET_MAX];
  sample(&a, 2, true);
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)), KW_OK);

  sample(&a, 2, false);
  a.n_addrs = KW_MAX_DIRECT_ADDRS + 1;
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)),
                   KW_ERR_INVALID_ARG);
  sample(&a, 2, false);
  a.addrs[1].family = 0;
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)),
                   KW_ERR_INVALID_ARG);
  sample(&a, 2, false);
  a.addrs[0].port = 0;
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)),
                   KW_ERR_INVALID_ARG);
  sample(&a, 2, false);
  memset(a.addrs[1].ip, 0, 16);
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)),
                   KW_ERR_INVALID_ARG);
  sample(&a, 2, false);
  a.addrs[1] = a.addrs[0];
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)),
                   KW_ERR_INVALID_ARG);
  sample(&a, 0, false);
  strcpy(a.relay_url, "http://relay.test");
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)),
                   KW_ERR_INVALID_ARG);
  /* Not NUL-terminated within the field: too long. */
  sample(&a, 0, false);
  memset(a.relay_url, 'x', sizeof(a.relay_url));
  memcpy(a.relay_url, "https://", 8);
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)),
                   KW_ERR_INVALID_ARG);
  sample(&a, 0, false);
  memset(a.id, 0, sizeof(a.id));
  assert_int_equal(kw_ticket_encode(&a, text, sizeof(text)), KW_ERR_BAD_ID);
  assert_int_equal(kw_ticket_encode(NULL, text, sizeof(text)),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw_ticket_encode(&a, NULL, sizeof(text)),
                   KW_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trips),
      cmocka_unit_test(test_largest_fits),
      cmocka_unit_test(test_known_vector),
      cmocka_unit_test(test_text_leniency),
      cmocka_unit_test(test_skips_high_unknown_fields),
      cmocka_unit_test(test_rejects_text),
      cmocka_unit_test(test_rejects_payload),
      cmocka_unit_test(test_encode_rejects),
      cmocka_unit_test(test_token),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
