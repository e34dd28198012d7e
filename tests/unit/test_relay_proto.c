/* SPDX-License-Identifier: MIT */
/* Unit tests of core/relay_proto and core/http: every frame type, the
 * streaming decoder under any chunking, limits, authentication and the
 * HTTP upgrade / request heads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/http.h"
#include "core/relay_proto.h"

static uint8_t big_data[KW_RELAY_MAX_PACKET];

static int setup(void **state) {
  (void)state;
  if (sodium_init() < 0)
    return -1;
  for (size_t i = 0; i < sizeof(big_data); i++)
    big_data[i] = (uint8_t)(i * 7 + 3);
  return 0;
}

/* One message of every type (two packets: empty and largest). */
static size_t sample_msgs(kw__relay_msg *m) {
  size_t n = 0;
  memset(m, 0, 12 * sizeof(*m));
  m[n].type = KW_RELAY_SERVER_CHALLENGE;
  m[n].version = KW_RELAY_VERSION;
  memset(m[n].challenge, 0xc1, 32);
  m[n].time_us = 0x0102030405060708ull;
  n++;
  m[n].type = KW_RELAY_CLIENT_AUTH;
  memset(m[n].id, 0x11, 32);
  memset(m[n].sig, 0x22, 64);
  n++;
  m[n].type = KW_RELAY_SERVER_INFO;
  m[n].info.max_frame = KW_RELAY_MAX_FRAME;
  m[n].info.rate_bytes = 125000000ull;
  m[n].info.burst_bytes = 4u << 20;
  m[n].info.keepalive_s = 15;
  m[n].info.queue_pkts = 512;
  n++;
  m[n].type = KW_RELAY_SEND_PACKET;
  memset(m[n].id, 0x33, 32);
  m[n].data = (const uint8_t *)"sealed bytes";
  m[n].data_len = 12;
  n++;
  m[n].type = KW_RELAY_RECV_PACKET;
  memset(m[n].id, 0x44, 32);
  m[n].data = big_data;
  m[n].data_len = sizeof(big_data);
  n++;
  m[n].type = KW_RELAY_SEND_PACKET;
  memset(m[n].id, 0x55, 32);
  m[n].data = NULL;
  m[n].data_len = 0;
  n++;
  m[n].type = KW_RELAY_PING;
  memcpy(m[n].nonce, "12345678", 8);
  n++;
  m[n].type = KW_RELAY_PONG;
  memcpy(m[n].nonce, "87654321", 8);
  n++;
  m[n].type = KW_RELAY_PEER_GONE;
  memset(m[n].id, 0x66, 32);
  m[n].code = KW_RELAY_GONE_NOT_HERE;
  n++;
  m[n].type = KW_RELAY_HEALTH;
  m[n].code = 2;
  m[n].text = "r\xc3\xa9gion pleine";
  m[n].text_len = strlen(m[n].text);
  n++;
  m[n].type = KW_RELAY_CLOSE;
  m[n].code = KW_RELAY_CLOSE_SHUTDOWN;
  m[n].text = "";
  m[n].text_len = 0;
  n++;
  return n;
}

static void assert_msg_equal(const kw__relay_msg *a, const kw__relay_msg *b) {
  assert_int_equal(a->type, b->type);
  switch (a->type) {
  case KW_RELAY_SERVER_CHALLENGE:
    assert_int_equal(b->version, KW_RELAY_VERSION);
    assert_memory_equal(a->challenge, b->challenge, 32);
    assert_true(a->time_us == b->time_us);
    break;
  case KW_RELAY_CLIENT_AUTH:
    assert_memory_equal(a->id, b->id, 32);
    assert_memory_equal(a->sig, b->sig, 64);
    break;
  case KW_RELAY_SERVER_INFO:
    assert_int_equal(a->info.max_frame, b->info.max_frame);
    assert_true(a->info.rate_bytes == b->info.rate_bytes);
    assert_int_equal(a->info.burst_bytes, b->info.burst_bytes);
    assert_int_equal(a->info.keepalive_s, b->info.keepalive_s);
    assert_int_equal(a->info.queue_pkts, b->info.queue_pkts);
    break;
  case KW_RELAY_SEND_PACKET:
  case KW_RELAY_RECV_PACKET:
    assert_memory_equal(a->id, b->id, 32);
    assert_int_equal(a->data_len, b->data_len);
    if (a->data_len)
      assert_memory_equal(a->data, b->data, a->data_len);
    break;
  case KW_RELAY_PING:
  case KW_RELAY_PONG:
    assert_memory_equal(a->nonce, b->nonce, 8);
    break;
  case KW_RELAY_PEER_GONE:
    assert_memory_equal(a->id, b->id, 32);
    assert_int_equal(a->code, b->code);
    break;
  default:
    assert_int_equal(a->code, b->code);
    assert_int_equal(a->text_len, b->text_len);
    if (a->text_len)
      assert_memory_equal(a->text, b->text, a->text_len);
  }
}

#define STREAM_CAP (KW_RELAY_MAX_FRAME * 2 + 4096)

/* Encodes all samples back to back. */
static size_t sample_stream(uint8_t *out, kw__relay_msg *m, size_t *nmsg,
                            size_t *ends) {
  *nmsg = sample_msgs(m);
  size_t off = 0;
  for (size_t i = 0; i < *nmsg; i++) {
    size_t n;
    assert_int_equal(kw__relay_encode(&m[i], out + off, STREAM_CAP - off, &n),
                     KW_OK);
    off += n;
    ends[i] = off;
  }
  return off;
}

static void test_roundtrip_each_type(void **state) {
  (void)state;
  kw__relay_msg m[12];
  size_t n = sample_msgs(m);
  static uint8_t buf[KW_RELAY_MAX_FRAME + KW_RELAY_FRAME_HDR];
  static uint8_t again[KW_RELAY_MAX_FRAME + KW_RELAY_FRAME_HDR];
  for (size_t i = 0; i < n; i++) {
    size_t len;
    assert_int_equal(kw__relay_encode(&m[i], buf, sizeof(buf), &len), KW_OK);
    assert_int_equal(buf[0], m[i].type);
    uint32_t plen = ((uint32_t)buf[1] << 24) | ((uint32_t)buf[2] << 16) |
                    ((uint32_t)buf[3] << 8) | buf[4];
    assert_int_equal(plen, len - 5);

    kw__relay_dec d;
    kw__relay_dec_init(&d, 0);
    const uint8_t *in = buf;
    size_t inlen = len;
    kw__relay_frame f;
    assert_int_equal(kw__relay_dec_next(&d, &in, &inlen, &f), KW_OK);
    assert_int_equal(inlen, 0);
    assert_ptr_equal(f.payload, buf + 5); /* zero copy */
    assert_null(d.buf);
    assert_int_equal(kw__relay_dec_next(&d, &in, &inlen, &f), KW_ERR_AGAIN);

    kw__relay_msg got;
    assert_int_equal(kw__relay_parse(&f, &got), KW_OK);
    assert_msg_equal(&m[i], &got);
    size_t len2;
    assert_int_equal(kw__relay_encode(&got, again, sizeof(again), &len2),
                     KW_OK);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, again, len);
    /* Every smaller buffer fails. */
    if (len < 400)
      for (size_t cap = 0; cap < len; cap++)
        assert_int_equal(kw__relay_encode(&m[i], buf, cap, &len2),
                         KW_ERR_BUFFER);
    kw__relay_dec_free(&d);
  }
}

static void test_known_bytes(void **state) {
  (void)state;
  kw__relay_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_RELAY_PING;
  memcpy(m.nonce, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  uint8_t out[32];
  size_t n;
  assert_int_equal(kw__relay_encode(&m, out, sizeof(out), &n), KW_OK);
  const uint8_t want[13] = {6, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
  assert_int_equal(n, 13);
  assert_memory_equal(out, want, 13);

  m.type = KW_RELAY_HEALTH;
  m.code = 1;
  m.text = "ok";
  m.text_len = 2;
  assert_int_equal(kw__relay_encode(&m, out, sizeof(out), &n), KW_OK);
  const uint8_t want2[8] = {9, 0, 0, 0, 3, 1, 'o', 'k'};
  assert_int_equal(n, 8);
  assert_memory_equal(out, want2, 8);
}

/* Feeds the stream in chunks of the given sizes (cycled) and checks every
 * frame comes out in order and intact. */
static void decode_chunked(const uint8_t *s, size_t slen, const size_t *sizes,
                           size_t nsizes, const kw__relay_msg *m, size_t nmsg) {
  kw__relay_dec d;
  kw__relay_dec_init(&d, 0);
  size_t off = 0, k = 0, got = 0;
  while (off < slen) {
    size_t c = sizes[k++ % nsizes];
    if (c > slen - off)
      c = slen - off;
    const uint8_t *in = s + off;
    size_t inlen = c;
    for (;;) {
      kw__relay_frame f;
      kw_err e = kw__relay_dec_next(&d, &in, &inlen, &f);
      if (e == KW_ERR_AGAIN) {
        assert_int_equal(inlen, 0);
        break;
      }
      assert_int_equal(e, KW_OK);
      assert_true(got < nmsg);
      kw__relay_msg pm;
      assert_int_equal(kw__relay_parse(&f, &pm), KW_OK);
      assert_msg_equal(&m[got], &pm);
      got++;
    }
    off += c;
  }
  assert_int_equal(got, nmsg);
  assert_int_equal(d.hdr_have, 0);
  kw__relay_dec_free(&d);
}

static void test_chunked_decoding(void **state) {
  (void)state;
  static uint8_t s[STREAM_CAP];
  kw__relay_msg m[12];
  size_t nmsg, ends[12];
  size_t slen = sample_stream(s, m, &nmsg, ends);

  size_t one = 1;
  decode_chunked(s, slen, &one, 1, m, nmsg);
  size_t whole = slen;
  decode_chunked(s, slen, &whole, 1, m, nmsg);
  const size_t odd[] = {3, 1, 4, 1, 5, 9,    2,     6, 5, 3,
                        5, 8, 9, 7, 9, 1000, 65536, 2, 7};
  decode_chunked(s, slen, odd, sizeof(odd) / sizeof(odd[0]), m, nmsg);
  for (size_t c = 2; c < 70; c++)
    decode_chunked(s, slen, &c, 1, m, nmsg);
  /* Pseudo-random chunk sizes, deterministic. */
  uint32_t x = 12345;
  size_t sizes[64];
  for (int round = 0; round < 20; round++) {
    for (size_t i = 0; i < 64; i++) {
      x = x * 1103515245u + 12345u;
      sizes[i] = 1 + (x >> 8) % 9000;
    }
    decode_chunked(s, slen, sizes, 64, m, nmsg);
  }
}

static void test_split_header_and_buffer_release(void **state) {
  (void)state;
  kw__relay_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_RELAY_SEND_PACKET;
  m.data = big_data;
  m.data_len = 10000;
  static uint8_t buf[20000];
  size_t n;
  assert_int_equal(kw__relay_encode(&m, buf, sizeof(buf), &n), KW_OK);
  kw__relay_dec d;
  kw__relay_dec_init(&d, 0);
  kw__relay_frame f;
  const uint8_t *in = buf;
  size_t inlen = 3; /* half a header */
  assert_int_equal(kw__relay_dec_next(&d, &in, &inlen, &f), KW_ERR_AGAIN);
  assert_int_equal(d.hdr_have, 3);
  inlen = 100;
  assert_int_equal(kw__relay_dec_next(&d, &in, &inlen, &f), KW_ERR_AGAIN);
  assert_non_null(d.buf);
  assert_int_equal(d.cap, 10032);
  inlen = n - 103;
  assert_int_equal(kw__relay_dec_next(&d, &in, &inlen, &f), KW_OK);
  assert_ptr_equal(f.payload, d.buf); /* gathered */
  assert_int_equal(f.len, 10032);
  assert_memory_equal(f.payload + 32, big_data, 10000);
  /* idle again: the big buffer goes */
  assert_int_equal(kw__relay_dec_next(&d, &in, &inlen, &f), KW_ERR_AGAIN);
  assert_null(d.buf);
  kw__relay_dec_free(&d);
}

static void put_hdr(uint8_t *p, uint8_t type, uint32_t len) {
  p[0] = type;
  p[1] = (uint8_t)(len >> 24);
  p[2] = (uint8_t)(len >> 16);
  p[3] = (uint8_t)(len >> 8);
  p[4] = (uint8_t)len;
}

static kw_err decode_hdr_only(uint8_t type, uint32_t len, uint32_t max) {
  uint8_t h[5 + 64] = {0};
  put_hdr(h, type, len);
  kw__relay_dec d;
  kw__relay_dec_init(&d, max);
  const uint8_t *in = h;
  size_t inlen = sizeof(h);
  kw__relay_frame f;
  kw_err e = kw__relay_dec_next(&d, &in, &inlen, &f);
  if (e == KW_ERR_PARSE) {
    /* Nothing allocated, and failed for good. */
    assert_null(d.buf);
    assert_true(d.failed);
    static const uint8_t ping[13] = {6, 0, 0, 0, 8};
    in = ping;
    inlen = sizeof(ping);
    assert_int_equal(kw__relay_dec_next(&d, &in, &inlen, &f), KW_ERR_PARSE);
    assert_int_equal(inlen, sizeof(ping));
  }
  kw__relay_dec_free(&d);
  return e;
}

static void test_oversize_and_bad_lengths(void **state) {
  (void)state;
  assert_int_equal(
      decode_hdr_only(KW_RELAY_SEND_PACKET, KW_RELAY_MAX_FRAME + 1, 0),
      KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_SEND_PACKET, 0xFFFFFFFFu, 0),
                   KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_RECV_PACKET, 0x80000000u, 0),
                   KW_ERR_PARSE);
  /* the largest frame header is accepted (waits for the payload) */
  assert_int_equal(decode_hdr_only(KW_RELAY_SEND_PACKET, KW_RELAY_MAX_FRAME, 0),
                   KW_ERR_AGAIN);
  /* a lower decoder limit */
  assert_int_equal(decode_hdr_only(KW_RELAY_SEND_PACKET, 2000, 1500),
                   KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_SEND_PACKET, 1500, 1500),
                   KW_ERR_AGAIN);
  /* limits below 1024 are raised to 1024 */
  assert_int_equal(decode_hdr_only(KW_RELAY_SEND_PACKET, 1024, 10),
                   KW_ERR_AGAIN);
  /* fixed-size types with any other length */
  assert_int_equal(decode_hdr_only(KW_RELAY_PING, 7, 0), KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_PING, 9, 0), KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_PING, 8, 0), KW_OK);
  assert_int_equal(decode_hdr_only(KW_RELAY_PONG, 0, 0), KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_CLIENT_AUTH, 95, 0), KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_CLIENT_AUTH, 97, 0), KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_SERVER_CHALLENGE, 40, 0),
                   KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_SERVER_INFO, 21, 0), KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_PEER_GONE, 32, 0), KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_SEND_PACKET, 31, 0), KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_SEND_PACKET, 32, 0), KW_OK);
  assert_int_equal(decode_hdr_only(KW_RELAY_HEALTH, 0, 0), KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_HEALTH, 257, 0), KW_ERR_PARSE);
  assert_int_equal(decode_hdr_only(KW_RELAY_CLOSE, 256, 0), KW_ERR_AGAIN);
}

static void test_unknown_types(void **state) {
  (void)state;
  const uint8_t types[] = {0, 11, 12, 0x7f, 0x80, 0xff};
  for (size_t i = 0; i < sizeof(types); i++) {
    assert_int_equal(decode_hdr_only(types[i], 8, 0), KW_ERR_PARSE);
    kw__relay_frame f = {types[i], 8, (const uint8_t *)"12345678"};
    kw__relay_msg m;
    assert_int_equal(kw__relay_parse(&f, &m), KW_ERR_PARSE);
    memset(&m, 0, sizeof(m));
    m.type = types[i];
    uint8_t out[64];
    size_t n;
    assert_int_equal(kw__relay_encode(&m, out, sizeof(out), &n),
                     KW_ERR_INVALID_ARG);
  }
}

static void test_parse_rejects(void **state) {
  (void)state;
  kw__relay_msg m;
  uint8_t p[300] = {0};
  /* challenge of another version */
  p[0] = 3;
  kw__relay_frame f = {KW_RELAY_SERVER_CHALLENGE, 41, p};
  assert_int_equal(kw__relay_parse(&f, &m), KW_ERR_PARSE);
  p[0] = 0;
  assert_int_equal(kw__relay_parse(&f, &m), KW_ERR_PARSE);
  p[0] = 2;
  assert_int_equal(kw__relay_parse(&f, &m), KW_OK);
  assert_int_equal(m.version, 2);
  p[0] = 1;
  assert_int_equal(kw__relay_parse(&f, &m), KW_OK);
  /* text not UTF-8 */
  const char *bad[] = {"\xff",     "\xc0\x80",         "\xed\xa0\x80",
                       "\xe2\x82", "\xf4\x90\x80\x80", "a\x80"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    p[0] = 0;
    size_t bl = strlen(bad[i]);
    memcpy(p + 1, bad[i], bl);
    kw__relay_frame h = {KW_RELAY_HEALTH, (uint32_t)(1 + bl), p};
    assert_int_equal(kw__relay_parse(&h, &m), KW_ERR_PARSE);
    h.type = KW_RELAY_CLOSE;
    assert_int_equal(kw__relay_parse(&h, &m), KW_ERR_PARSE);
  }
  /* wrong lengths through parse directly */
  kw__relay_frame g = {KW_RELAY_PEER_GONE, 34, p};
  assert_int_equal(kw__relay_parse(&g, &m), KW_ERR_PARSE);
  g.len = 33;
  assert_int_equal(kw__relay_parse(&g, &m), KW_OK);
  kw__relay_frame big = {KW_RELAY_SEND_PACKET, KW_RELAY_MAX_FRAME + 1, p};
  assert_int_equal(kw__relay_parse(&big, &m), KW_ERR_PARSE);
  assert_int_equal(kw__relay_parse(NULL, &m), KW_ERR_INVALID_ARG);
}

static void test_encode_rejects(void **state) {
  (void)state;
  kw__relay_msg m;
  uint8_t out[512];
  size_t n;
  memset(&m, 0, sizeof(m));
  m.type = KW_RELAY_HEALTH;
  char long_text[KW_RELAY_MAX_TEXT + 2];
  memset(long_text, 'x', sizeof(long_text));
  m.text = long_text;
  m.text_len = KW_RELAY_MAX_TEXT + 1;
  assert_int_equal(kw__relay_encode(&m, out, sizeof(out), &n),
                   KW_ERR_INVALID_ARG);
  m.text_len = KW_RELAY_MAX_TEXT;
  assert_int_equal(kw__relay_encode(&m, out, sizeof(out), &n), KW_OK);
  assert_int_equal(n, 5 + 1 + KW_RELAY_MAX_TEXT);
  m.text = "\xff";
  m.text_len = 1;
  assert_int_equal(kw__relay_encode(&m, out, sizeof(out), &n),
                   KW_ERR_INVALID_ARG);
  m.text = NULL;
  m.text_len = 3;
  assert_int_equal(kw__relay_encode(&m, out, sizeof(out), &n),
                   KW_ERR_INVALID_ARG);
  m.type = KW_RELAY_SEND_PACKET;
  m.data = big_data;
  m.data_len = KW_RELAY_MAX_PACKET + 1;
  assert_int_equal(kw__relay_encode(&m, out, sizeof(out), &n),
                   KW_ERR_INVALID_ARG);
  m.data_len = 100;
  assert_int_equal(kw__relay_encode(&m, out, 100, &n), KW_ERR_BUFFER);
}

static void test_packet_hdr(void **state) {
  (void)state;
  uint8_t id[32];
  memset(id, 0xab, 32);
  kw__relay_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_RELAY_RECV_PACKET;
  memcpy(m.id, id, 32);
  m.data = (const uint8_t *)"hello";
  m.data_len = 5;
  uint8_t full[64], hdr[KW_RELAY_PACKET_HDR];
  size_t n;
  assert_int_equal(kw__relay_encode(&m, full, sizeof(full), &n), KW_OK);
  assert_int_equal(kw__relay_packet_hdr(hdr, KW_RELAY_RECV_PACKET, id, 5),
                   KW_OK);
  assert_memory_equal(hdr, full, KW_RELAY_PACKET_HDR);
  assert_int_equal(kw__relay_packet_hdr(hdr, KW_RELAY_PING, id, 5),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(
      kw__relay_packet_hdr(hdr, KW_RELAY_SEND_PACKET, id, KW_RELAY_MAX_PACKET),
      KW_OK);
  assert_int_equal(kw__relay_packet_hdr(hdr, KW_RELAY_SEND_PACKET, id,
                                        KW_RELAY_MAX_PACKET + 1),
                   KW_ERR_INVALID_ARG);
}

static void test_auth(void **state) {
  (void)state;
  uint8_t sk[64], id[32], sk2[64], id2[32];
  assert_int_equal(kw_key_generate(sk), KW_OK);
  assert_int_equal(kw_key_id(sk, id), KW_OK);
  assert_int_equal(kw_key_generate(sk2), KW_OK);
  assert_int_equal(kw_key_id(sk2, id2), KW_OK);
  uint8_t ch[32], sig[64];
  randombytes_buf(ch, sizeof(ch));
  assert_int_equal(kw__relay_auth_sign(sk, ch, sig), KW_OK);
  assert_int_equal(kw__relay_auth_verify(id, ch, sig), KW_OK);
  /* wrong key */
  assert_int_equal(kw__relay_auth_verify(id2, ch, sig), KW_ERR_KEY_MISMATCH);
  /* other challenge */
  uint8_t ch2[32];
  memcpy(ch2, ch, 32);
  ch2[31] ^= 1;
  assert_int_equal(kw__relay_auth_verify(id, ch2, sig), KW_ERR_KEY_MISMATCH);
  /* any bit of the signature */
  for (int i = 0; i < 64; i++) {
    uint8_t s2[64];
    memcpy(s2, sig, 64);
    s2[i] ^= 0x10;
    assert_int_equal(kw__relay_auth_verify(id, ch, s2), KW_ERR_KEY_MISMATCH);
  }
  /* a signature over the bare challenge (no context) is refused */
  uint8_t raw[64];
  crypto_sign_detached(raw, NULL, ch, 32, sk);
  assert_int_equal(kw__relay_auth_verify(id, ch, raw), KW_ERR_KEY_MISMATCH);
  /* the signed message is exactly context || challenge */
  uint8_t msg[20 + 32];
  memcpy(msg, "keyway-relay-auth-v1", 20);
  memcpy(msg + 20, ch, 32);
  assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof(msg), id), 0);
  /* all-zero id (small order point) */
  uint8_t zero[32] = {0};
  assert_int_equal(kw__relay_auth_verify(zero, ch, sig), KW_ERR_KEY_MISMATCH);
  assert_int_equal(kw__relay_auth_verify(NULL, ch, sig), KW_ERR_INVALID_ARG);
}

/* Version 2: bound to the TLS exporter value and the relay's name. */
static void test_auth_v2(void **state) {
  (void)state;
  uint8_t sk[64], id[32];
  assert_int_equal(kw_key_generate(sk), KW_OK);
  assert_int_equal(kw_key_id(sk, id), KW_OK);
  uint8_t ch[32], ex[32], sig[64];
  randombytes_buf(ch, sizeof(ch));
  randombytes_buf(ex, sizeof(ex));
  const char *name = "relay.example:443";
  assert_int_equal(kw__relay_auth2_sign(sk, ch, ex, name, sig), KW_OK);
  assert_int_equal(kw__relay_auth2_verify(id, ch, ex, name, sig), KW_OK);
  /* another session (exporter), another relay name, another challenge */
  uint8_t ex2[32];
  memcpy(ex2, ex, 32);
  ex2[0] ^= 1;
  assert_int_equal(kw__relay_auth2_verify(id, ch, ex2, name, sig),
                   KW_ERR_KEY_MISMATCH);
  assert_int_equal(kw__relay_auth2_verify(id, ch, ex, "other.example:443", sig),
                   KW_ERR_KEY_MISMATCH);
  uint8_t ch2[32];
  memcpy(ch2, ch, 32);
  ch2[5] ^= 1;
  assert_int_equal(kw__relay_auth2_verify(id, ch2, ex, name, sig),
                   KW_ERR_KEY_MISMATCH);
  /* a version 1 answer is no version 2 answer, and the reverse */
  uint8_t s1[64];
  assert_int_equal(kw__relay_auth_sign(sk, ch, s1), KW_OK);
  assert_int_equal(kw__relay_auth2_verify(id, ch, ex, name, s1),
                   KW_ERR_KEY_MISMATCH);
  assert_int_equal(kw__relay_auth_verify(id, ch, sig), KW_ERR_KEY_MISMATCH);
  /* the signed message is context || challenge || exporter || len || name */
  uint8_t msg[20 + 32 + 32 + 1 + 17];
  memcpy(msg, "keyway-relay-auth-v2", 20);
  memcpy(msg + 20, ch, 32);
  memcpy(msg + 52, ex, 32);
  msg[84] = 17;
  memcpy(msg + 85, name, 17);
  assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof(msg), id), 0);
  /* names: 1..255 bytes */
  assert_int_equal(kw__relay_auth2_sign(sk, ch, ex, "", sig),
                   KW_ERR_INVALID_ARG);
  char big[300];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  assert_int_equal(kw__relay_auth2_sign(sk, ch, ex, big, sig),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__relay_auth2_verify(id, ch, NULL, name, sig),
                   KW_ERR_INVALID_ARG);
}

static void test_utf8(void **state) {
  (void)state;
  assert_true(kw__utf8_valid((const uint8_t *)"", 0));
  assert_true(kw__utf8_valid((const uint8_t *)"plain", 5));
  assert_true(kw__utf8_valid((const uint8_t *)"\xc3\xa9", 2));
  assert_true(kw__utf8_valid((const uint8_t *)"\xe2\x82\xac", 3));
  assert_true(kw__utf8_valid((const uint8_t *)"\xf0\x9f\x98\x80", 4));
  assert_true(kw__utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4));
  assert_false(kw__utf8_valid((const uint8_t *)"\xf0\x9f\x98", 3));
  assert_false(kw__utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));
  assert_false(kw__utf8_valid((const uint8_t *)"\xf8\x88\x80\x80\x80", 5));
  assert_false(kw__utf8_valid((const uint8_t *)"\x80", 1));
  assert_false(kw__utf8_valid((const uint8_t *)"\xc3\x28", 2));
}

/* ---- HTTP ------------------------------------------------------------- */

static kw_err req(const char *s, kw__http_req *r) {
  return kw__http_req_parse((const uint8_t *)s, strlen(s), r);
}

static void test_upgrade_request_roundtrip(void **state) {
  (void)state;
  char out[512];
  size_t n;
  assert_int_equal(
      kw__relay_http_req_build("relay.example:8443", out, sizeof(out), &n),
      KW_OK);
  const char *want =
      "GET /keyway-relay HTTP/1.1\r\nHost: relay.example:8443\r\n"
      "Connection: Upgrade\r\nUpgrade: keyway-relay-v2\r\n\r\n";
  assert_int_equal(n, strlen(want));
  assert_string_equal(out, want);
  kw__http_req r1;
  assert_int_equal(kw__http_req_parse((const uint8_t *)out, n, &r1), KW_OK);
  assert_true(r1.upgrade);
  assert_int_equal(r1.upgrade_version, 2);
  /* version 1, for relays that still take it */
  assert_int_equal(
      kw__relay_http_req_build_version("h:1", 1, out, sizeof(out), &n), KW_OK);
  assert_non_null(strstr(out, "Upgrade: keyway-relay-v1\r\n"));
  assert_int_equal(kw__http_req_parse((const uint8_t *)out, n, &r1), KW_OK);
  assert_int_equal(r1.upgrade_version, 1);
  assert_int_equal(
      kw__relay_http_req_build_version("h:1", 3, out, sizeof(out), &n),
      KW_ERR_INVALID_ARG);
  assert_int_equal(
      kw__relay_http_req_build("relay.example:8443", out, sizeof(out), &n),
      KW_OK);
  /* every prefix needs more */
  kw__http_req r;
  for (size_t i = 0; i < n; i++)
    assert_int_equal(kw__http_req_parse((const uint8_t *)out, i, &r),
                     KW_ERR_AGAIN);
  /* frames after the head are left alone */
  uint8_t buf[600];
  memcpy(buf, out, n);
  const uint8_t ping[13] = {6, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
  memcpy(buf + n, ping, 13);
  assert_int_equal(kw__http_req_parse(buf, n + 13, &r), KW_OK);
  assert_int_equal(r.header_len, n);
  assert_int_equal(r.method, KW_HTTP_GET);
  assert_string_equal(r.path, "/keyway-relay");
  assert_string_equal(r.host, "relay.example:8443");
  assert_true(r.upgrade);
  assert_false(r.has_length);
  int st;
  assert_int_equal(kw__http_route_req(&r, NULL, &st), KW_ROUTE_RELAY);
  assert_int_equal(st, 101);
  kw__relay_dec d;
  kw__relay_dec_init(&d, 0);
  const uint8_t *in = buf + r.header_len;
  size_t inlen = 13;
  kw__relay_frame f;
  assert_int_equal(kw__relay_dec_next(&d, &in, &inlen, &f), KW_OK);
  assert_int_equal(f.type, KW_RELAY_PING);
  kw__relay_dec_free(&d);

  /* builder argument checks */
  assert_int_equal(kw__relay_http_req_build("", out, sizeof(out), &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__relay_http_req_build("a b", out, sizeof(out), &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__relay_http_req_build("a\r\nX: y", out, sizeof(out), &n),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__relay_http_req_build("host", out, 20, &n),
                   KW_ERR_BUFFER);
}

static void test_upgrade_case_insensitive(void **state) {
  (void)state;
  kw__http_req r;
  assert_int_equal(req("GET /keyway-relay HTTP/1.1\r\nhOsT: h\r\n"
                       "connection: keep-alive, UPGRADE\r\n"
                       "UPGRADE: foo/2, KeyWay-Relay-V1 \r\n\r\n",
                       &r),
                   KW_OK);
  assert_true(r.upgrade);
  /* only one of the two headers: no upgrade */
  assert_int_equal(req("GET /keyway-relay HTTP/1.1\r\nHost: h\r\n"
                       "Upgrade: keyway-relay-v1\r\n\r\n",
                       &r),
                   KW_OK);
  assert_false(r.upgrade);
  int st;
  assert_int_equal(kw__http_route_req(&r, NULL, &st), KW_ROUTE_NONE);
  assert_int_equal(st, 426);
  assert_int_equal(req("GET /keyway-relay HTTP/1.1\r\nHost: h\r\n"
                       "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n",
                       &r),
                   KW_OK);
  assert_false(r.upgrade);
  assert_int_equal(
      req("GET /keyway-relay HTTP/1.1\r\nHost: h\r\n"
          "Connection: upgrade\r\nUpgrade: keyway-relay-v10\r\n\r\n",
          &r),
      KW_OK);
  assert_false(r.upgrade);
}

static void expect_fail(const char *s, int status) {
  kw__http_req r;
  kw_err e = req(s, &r);
  if (e != KW_ERR_PARSE || r.status != status)
    fail_msg("%s: got err %d status %d, want status %d", s, e, r.status,
             status);
}

static void test_request_rejects(void **state) {
  (void)state;
  expect_fail("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400); /* TLS */
  expect_fail("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);      /* bare LF */
  expect_fail("GET / HTTP/1.1\nHost: h\r\n\r\n", 400);      /* bare LF */
  expect_fail("GET / HTTP/1.1\r\nHost: h\rx\r\n\r\n", 400); /* bare CR */
  expect_fail("GET / HTTP/1.1\r\nHost: h\r\n  folded\r\n\r\n", 400);
  expect_fail("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);
  expect_fail("GET / HTTP/1.1\r\n: h\r\n\r\n", 400);
  expect_fail("GET / HTTP/1.1\r\nnocolon\r\n\r\n", 400);
  expect_fail("GET / HTTP/1.1\r\nX: a\x01"
              "b\r\n\r\n",
              400);
  expect_fail("GET / HTTP/1.1\r\n\r\n", 400); /* no Host */
  expect_fail("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
  expect_fail("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
  expect_fail("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
  expect_fail("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400);
  expect_fail("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
  expect_fail("GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400);
  expect_fail("GET / HTTP/1.0\r\nHost: h\r\n\r\n", 505);
  expect_fail("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
  expect_fail("POST / HTTP/1.1\r\nHost: h\r\n\r\n", 405);
  expect_fail("get / HTTP/1.1\r\nHost: h\r\n\r\n", 405);
  expect_fail("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4097\r\n\r\n",
              413);
  expect_fail("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 12a\r\n\r\n", 400);
  expect_fail("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400);
  expect_fail("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400);
  expect_fail("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: "
              "99999999999999999999\r\n\r\n",
              400);
  expect_fail("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
              "Content-Length: 1\r\n\r\n",
              400);
  expect_fail(
      "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
  /* early failure on partial garbage */
  kw__http_req r;
  assert_int_equal(kw__http_req_parse((const uint8_t *)"GET /\0", 6, &r),
                   KW_ERR_PARSE);
  assert_int_equal(r.status, 400);
  assert_int_equal(kw__http_req_parse((const uint8_t *)"GET /", 5, &r),
                   KW_ERR_AGAIN);
  expect_fail("GE\rT", 400);

  char longpath[400] = "GET /";
  memset(longpath + 5, 'a', 300);
  strcpy(longpath + 305, " HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_fail(longpath, 414);
}

static void test_request_limits(void **state) {
  (void)state;
  static char big[KW_HTTP_MAX_HEADER + 64];
  kw__http_req r;
  /* a head of exactly KW_HTTP_MAX_HEADER bytes is accepted */
  const char *start = "GET /ping HTTP/1.1\r\nHost: h\r\nX: ";
  size_t sl = strlen(start);
  memcpy(big, start, sl);
  size_t fill = KW_HTTP_MAX_HEADER - sl - 4;
  memset(big + sl, 'v', fill);
  memcpy(big + sl + fill, "\r\n\r\n", 4);
  assert_int_equal(kw__http_req_parse((uint8_t *)big, KW_HTTP_MAX_HEADER, &r),
                   KW_OK);
  assert_int_equal(r.header_len, KW_HTTP_MAX_HEADER);
  /* one byte more is refused, also when more bytes arrive */
  memset(big + sl, 'v', fill + 1);
  memcpy(big + sl + fill + 1, "\r\n\r\n", 4);
  assert_int_equal(
      kw__http_req_parse((uint8_t *)big, KW_HTTP_MAX_HEADER + 1, &r),
      KW_ERR_PARSE);
  assert_int_equal(r.status, 431);
  assert_int_equal(
      kw__http_req_parse((uint8_t *)big, KW_HTTP_MAX_HEADER + 5, &r),
      KW_ERR_PARSE);
  assert_int_equal(r.status, 431);
  /* below the limit without an end: need more */
  assert_int_equal(
      kw__http_req_parse((uint8_t *)big, KW_HTTP_MAX_HEADER - 1, &r),
      KW_ERR_AGAIN);
  /* too many header lines */
  size_t off = (size_t)sprintf(big, "GET /ping HTTP/1.1\r\nHost: h\r\n");
  for (int i = 0; i < KW_HTTP_MAX_HEADERS; i++)
    off += (size_t)sprintf(big + off, "X%d: y\r\n", i);
  strcpy(big + off, "\r\n");
  assert_int_equal(kw__http_req_parse((uint8_t *)big, off + 2, &r),
                   KW_ERR_PARSE);
  assert_int_equal(r.status, 431);
}

static void test_routes(void **state) {
  (void)state;
  uint8_t sk[64], id[32], got[32];
  char text[KW_ID_STRLEN + 1], s[512];
  assert_int_equal(kw_key_generate(sk), KW_OK);
  assert_int_equal(kw_key_id(sk, id), KW_OK);
  assert_int_equal(kw_id_to_string(id, text, sizeof(text)), KW_OK);
  kw__http_req r;
  int st;

  snprintf(s, sizeof(s), "GET /lookup/%s HTTP/1.1\r\nHost: h\r\n\r\n", text);
  assert_int_equal(req(s, &r), KW_OK);
  memset(got, 0, 32);
  assert_int_equal(kw__http_route_req(&r, got, &st), KW_ROUTE_LOOKUP_GET);
  assert_memory_equal(got, id, 32);
  assert_int_equal(st, 200);

  snprintf(s, sizeof(s),
           "PUT /lookup/%s HTTP/1.1\r\nHost: h\r\nContent-Length: 4096\r\n\r\n"
           "BODY",
           text);
  assert_int_equal(req(s, &r), KW_OK);
  assert_int_equal(r.header_len, strlen(s) - 4);
  assert_true(r.has_length);
  assert_int_equal(r.content_length, 4096);
  assert_int_equal(kw__http_route_req(&r, got, &st), KW_ROUTE_LOOKUP_PUT);

  snprintf(s, sizeof(s), "PUT /lookup/%s HTTP/1.1\r\nHost: h\r\n\r\n", text);
  assert_int_equal(req(s, &r), KW_OK);
  assert_int_equal(kw__http_route_req(&r, got, &st), KW_ROUTE_NONE);
  assert_int_equal(st, 411);

  snprintf(s, sizeof(s), "GET /lookup/%.51s HTTP/1.1\r\nHost: h\r\n\r\n", text);
  assert_int_equal(req(s, &r), KW_OK);
  assert_int_equal(kw__http_route_req(&r, got, &st), KW_ROUTE_NONE);
  assert_int_equal(st, 400);
  snprintf(s, sizeof(s),
           "GET /lookup/%s HTTP/1.1\r\nHost: h\r\n"
           "Content-Length: 3\r\n\r\n",
           text);
  assert_int_equal(req(s, &r), KW_OK);
  assert_int_equal(kw__http_route_req(&r, got, &st), KW_ROUTE_NONE);
  assert_int_equal(st, 400);
  assert_int_equal(req("GET /lookup/ HTTP/1.1\r\nHost: h\r\n\r\n", &r), KW_OK);
  assert_int_equal(kw__http_route_req(&r, got, &st), KW_ROUTE_NONE);
  assert_int_equal(st, 400);

  assert_int_equal(req("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n", &r), KW_OK);
  assert_int_equal(kw__http_route_req(&r, NULL, &st), KW_ROUTE_METRICS);
  assert_int_equal(req("GET /ping?t=123 HTTP/1.1\r\nHost: h\r\n\r\n", &r),
                   KW_OK);
  assert_int_equal(kw__http_route_req(&r, NULL, &st), KW_ROUTE_PING);
  assert_int_equal(req("PUT /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0"
                       "\r\n\r\n",
                       &r),
                   KW_OK);
  assert_int_equal(kw__http_route_req(&r, NULL, &st), KW_ROUTE_NONE);
  assert_int_equal(st, 405);
  assert_int_equal(req("PUT /keyway-relay HTTP/1.1\r\nHost: h\r\n\r\n", &r),
                   KW_OK);
  assert_int_equal(kw__http_route_req(&r, NULL, &st), KW_ROUTE_NONE);
  assert_int_equal(st, 405);
  assert_int_equal(req("GET /pingx HTTP/1.1\r\nHost: h\r\n\r\n", &r), KW_OK);
  assert_int_equal(kw__http_route_req(&r, NULL, &st), KW_ROUTE_NONE);
  assert_int_equal(st, 404);
  assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &r), KW_OK);
  assert_int_equal(kw__http_route_req(&r, NULL, &st), KW_ROUTE_NONE);
  assert_int_equal(st, 404);
}

static void test_upgrade_response(void **state) {
  (void)state;
  char out[256];
  size_t n, used = 0;
  int st = 0;
  assert_int_equal(kw__relay_http_resp_build(out, sizeof(out), &n), KW_OK);
  assert_string_equal(out, "HTTP/1.1 101 Switching Protocols\r\n"
                           "Connection: Upgrade\r\n"
                           "Upgrade: keyway-relay-v2\r\n\r\n");
  assert_int_equal(kw__relay_http_resp_build(out, 10, &n), KW_ERR_BUFFER);
  char o1[256];
  size_t n1;
  assert_int_equal(kw__relay_http_resp_build_version(1, o1, sizeof(o1), &n1),
                   KW_OK);
  assert_non_null(strstr(o1, "Upgrade: keyway-relay-v1\r\n"));
  for (size_t i = 0; i < n; i++)
    assert_int_equal(kw__relay_http_resp_parse((uint8_t *)out, i, &used, &st),
                     KW_ERR_AGAIN);
  uint8_t buf[300];
  memcpy(buf, out, n);
  memcpy(buf + n, "\x09\x00\x00\x00\x01\x00", 6);
  assert_int_equal(kw__relay_http_resp_parse(buf, n + 6, &used, &st), KW_OK);
  assert_int_equal(used, n);
  assert_int_equal(st, 101);

  const char *forbidden = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
  assert_int_equal(kw__relay_http_resp_parse((const uint8_t *)forbidden,
                                             strlen(forbidden), &used, &st),
                   KW_ERR_STATE);
  assert_int_equal(st, 403);
  const char *noup = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
  assert_int_equal(kw__relay_http_resp_parse((const uint8_t *)noup,
                                             strlen(noup), &used, &st),
                   KW_ERR_STATE);
  const char *bare = "HTTP/1.1 101\r\nConnection: upgrade\r\n"
                     "Upgrade: keyway-relay-v1\r\n\r\n";
  assert_int_equal(kw__relay_http_resp_parse((const uint8_t *)bare,
                                             strlen(bare), &used, &st),
                   KW_OK);
  const char *bad[] = {"HTTP/1.1 1x1 OK\r\n\r\n",
                       "HTTP/1.1 099 X\r\n\r\n",
                       "HTTP/1.0 101 X\r\n\r\n",
                       "HTTP/1.1  101 X\r\n\r\n",
                       "HTTP/1.1 101X\r\n\r\n",
                       "SSH-2.0-OpenSSH\r\n\r\n",
                       "HTTP/1.1 101 X\n\n",
                       "HTTP/1.1 200 OK\r\nTransfer-Encoding: x\r\n\r\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(kw__relay_http_resp_parse((const uint8_t *)bad[i],
                                               strlen(bad[i]), &used, &st),
                     KW_ERR_PARSE);
}

static void test_resp_head(void **state) {
  (void)state;
  char out[256];
  size_t n;
  assert_int_equal(
      kw__http_resp_head(404, "text/plain", 10, true, out, sizeof(out), &n),
      KW_OK);
  assert_string_equal(out,
                      "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n"
                      "Content-Type: text/plain\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
  assert_int_equal(n, strlen(out));
  kw__http_resp r;
  assert_int_equal(kw__http_resp_parse((uint8_t *)out, n, &r), KW_OK);
  assert_int_equal(r.status, 404);
  assert_int_equal(r.content_length, 10);
  assert_int_equal(kw__http_resp_head(200, NULL, 0, false, out, 20, &n),
                   KW_ERR_BUFFER);
  assert_int_equal(
      kw__http_resp_head(200, "a\r\nb", 0, false, out, sizeof(out), &n),
      KW_ERR_INVALID_ARG);
  assert_int_equal(kw__http_resp_head(99, NULL, 0, false, out, sizeof(out), &n),
                   KW_ERR_INVALID_ARG);
  assert_string_equal(kw__http_reason(431), "Request Header Fields Too Large");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_each_type),
      cmocka_unit_test(test_known_bytes),
      cmocka_unit_test(test_chunked_decoding),
      cmocka_unit_test(test_split_header_and_buffer_release),
      cmocka_unit_test(test_oversize_and_bad_lengths),
      cmocka_unit_test(test_unknown_types),
      cmocka_unit_test(test_parse_rejects),
      cmocka_unit_test(test_encode_rejects),
      cmocka_unit_test(test_packet_hdr),
      cmocka_unit_test(test_auth),
      cmocka_unit_test(test_auth_v2),
      cmocka_unit_test(test_utf8),
      cmocka_unit_test(test_upgrade_request_roundtrip),
      cmocka_unit_test(test_upgrade_case_insensitive),
      cmocka_unit_test(test_request_rejects),
      cmocka_unit_test(test_request_limits),
      cmocka_unit_test(test_routes),
      cmocka_unit_test(test_upgrade_response),
      cmocka_unit_test(test_resp_head),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
