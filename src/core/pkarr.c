/* SPDX-License-Identifier: MIT */
/* pkarr DNS packets of keyway records. See pkarr.h. */
#include "core/pkarr.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/bep44.h"
#include "core/buf.h"

#define T_TXT 16
#define C_IN 1
#define SIG_B64_LEN 86 /* 64 bytes, base64url without padding */

static const char z32_alpha[] = "ybndrfg8ejkmcpqxot1uwisza345h769";

void kw__pkarr_z32(const uint8_t id[KW_ID_LEN],
                   char out[KW_PKARR_Z32_LEN + 1]) {
  unsigned acc = 0, bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < KW_ID_LEN; i++) {
    acc = (acc << 8) | id[i];
    bits += 8;
    while (bits >= 5) {
      out[o++] = z32_alpha[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits)
    out[o++] = z32_alpha[(acc << (5 - bits)) & 31];
  out[o] = '\0';
}

/* One TXT resource record after its name: one character-string. */
static void txt(kw__wbuf *w, uint32_t ttl, const char *key, const char *val) {
  size_t kl = strlen(key), vl = strlen(val);
  kw__wbuf_u16(w, T_TXT);
  kw__wbuf_u16(w, C_IN);
  kw__wbuf_u32(w, ttl);
  if (kl + 1 + vl > 255) {
    w->err = true;
    return;
  }
  kw__wbuf_u16(w, (uint16_t)(1 + kl + 1 + vl));
  kw__wbuf_u8(w, (uint8_t)(kl + 1 + vl));
  kw__wbuf_bytes(w, key, kl);
  kw__wbuf_u8(w, '=');
  kw__wbuf_bytes(w, val, vl);
}

/* The name once, then pointers to it (offset 12). */
static void name(kw__wbuf *w, bool first, const char *z) {
  if (!first) {
    kw__wbuf_u16(w, 0xC000 | 12);
    return;
  }
  kw__wbuf_u8(w, sizeof KW_PKARR_LABEL - 1);
  kw__wbuf_bytes(w, KW_PKARR_LABEL, sizeof KW_PKARR_LABEL - 1);
  kw__wbuf_u8(w, KW_PKARR_Z32_LEN);
  kw__wbuf_bytes(w, z, KW_PKARR_Z32_LEN);
  kw__wbuf_u8(w, 0);
}

kw_err kw__pkarr_packet(const uint8_t *rec, size_t rec_len, uint8_t *out,
                        size_t cap, size_t *outlen) {
  kw__record r;
  if (!outlen || kw__record_decode(rec, rec_len, &r) != KW_OK)
    return KW_ERR_PARSE;
  if (cap > KW_PKARR_MAX_PACKET)
    cap = KW_PKARR_MAX_PACKET;
  char z[KW_PKARR_Z32_LEN + 1];
  kw__pkarr_z32(r.addr.id, z);
  char sig[SIG_B64_LEN + 1];
  sodium_bin2base64(sig, sizeof sig, rec + rec_len - KW_RECORD_SIG_LEN,
                    KW_RECORD_SIG_LEN, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  uint16_t n = (uint16_t)(1 + (r.addr.relay_url[0] ? 1 : 0) + r.addr.n_addrs);
  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  kw__wbuf_u16(&w, 0);      /* id */
  kw__wbuf_u16(&w, 0x8400); /* response, authoritative */
  kw__wbuf_u16(&w, 0);      /* questions */
  kw__wbuf_u16(&w, n);      /* answers */
  kw__wbuf_u16(&w, 0);
  kw__wbuf_u16(&w, 0);
  name(&w, true, z);
  txt(&w, r.ttl_s, "sig", sig);
  if (r.addr.relay_url[0]) {
    name(&w, false, z);
    txt(&w, r.ttl_s, "relay", r.addr.relay_url);
  }
  for (size_t i = 0; i < r.addr.n_addrs; i++) {
    char a[KW_SOCKADDR_STRLEN];
    if (kw_sockaddr_format(&r.addr.addrs[i], a, sizeof a) != KW_OK)
      return KW_ERR_PARSE;
    name(&w, false, z);
    txt(&w, r.ttl_s, "addr", a);
  }
  if (w.err)
    return KW_ERR_BUFFER;
  *outlen = w.off;
  return KW_OK;
}

/* Reads a (possibly compressed) name into text "a.b.c" (lowercase);
 * leaves b after the name. */
static bool read_name(kw__rbuf *b, char *out, size_t cap) {
  size_t o = 0;
  size_t pos = b->off;
  bool jumped = false;
  unsigned hops = 0;
  kw__rbuf r = *b;
  for (;;) {
    uint8_t l = kw__rbuf_u8(&r);
    if (r.err)
      return false;
    if (l == 0)
      break;
    if ((l & 0xC0) == 0xC0) {
      uint8_t l2 = kw__rbuf_u8(&r);
      size_t ptr = ((size_t)(l & 0x3F) << 8) | l2;
      if (r.err || ptr >= pos || ++hops > KW_PKARR_MAX_HOPS)
        return false;
      if (!jumped)
        b->off = r.off;
      jumped = true;
      pos = ptr;
      r.off = ptr;
      continue;
    }
    if (l & 0xC0)
      return false;
    const uint8_t *lab = kw__rbuf_take(&r, l);
    if (!lab || o + l + 2 > cap)
      return false;
    if (o)
      out[o++] = '.';
    for (size_t i = 0; i < l; i++) {
      uint8_t c = lab[i];
      if (c == 0 || c == '.')
        return false;
      out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
  }
  out[o] = '\0';
  if (!jumped)
    b->off = r.off;
  return true;
}

kw_err kw__pkarr_record(const uint8_t *packet, size_t len,
                        const uint8_t id[KW_ID_LEN], int64_t seq,
                        uint8_t *rec, size_t cap, size_t *rec_len,
                        kw__record *out) {
  if (!id || !rec_len || (!packet && len))
    return KW_ERR_INVALID_ARG;
  if (len > KW_PKARR_MAX_PACKET || seq < 0)
    return KW_ERR_PARSE;
  char want[sizeof KW_PKARR_LABEL + KW_PKARR_Z32_LEN + 1];
  char z[KW_PKARR_Z32_LEN + 1];
  kw__pkarr_z32(id, z);
  snprintf(want, sizeof want, "%s.%s", KW_PKARR_LABEL, z);
  kw__rbuf b;
  kw__rbuf_init(&b, packet, len);
  kw__rbuf_u16(&b); /* id */
  uint16_t flags = kw__rbuf_u16(&b);
  uint16_t qd = kw__rbuf_u16(&b);
  uint32_t rrs = (uint32_t)kw__rbuf_u16(&b) + kw__rbuf_u16(&b) +
                 kw__rbuf_u16(&b);
  if (b.err || !(flags & 0x8000))
    return KW_ERR_PARSE;
  char nm[256];
  for (unsigned i = 0; i < qd; i++) {
    if (!read_name(&b, nm, sizeof nm))
      return KW_ERR_PARSE;
    kw__rbuf_take(&b, 4);
    if (b.err)
      return KW_ERR_PARSE;
  }
  kw__record r;
  memset(&r, 0, sizeof r);
  memcpy(r.addr.id, id, KW_ID_LEN);
  r.timestamp_us = (uint64_t)seq;
  bool have_sig = false, have_relay = false;
  uint8_t sig[KW_RECORD_SIG_LEN];
  uint32_t ttl = UINT32_MAX;
  for (uint32_t i = 0; i < rrs; i++) {
    if (!read_name(&b, nm, sizeof nm))
      return KW_ERR_PARSE;
    uint16_t type = kw__rbuf_u16(&b);
    uint16_t cls = kw__rbuf_u16(&b);
    uint32_t rttl = kw__rbuf_u32(&b);
    uint16_t rdlen = kw__rbuf_u16(&b);
    const uint8_t *rd = kw__rbuf_take(&b, rdlen);
    if (b.err)
      return KW_ERR_PARSE;
    if (type != T_TXT || (cls & 0x7FFF) != C_IN || strcmp(nm, want) != 0)
      continue;
    if (rttl < ttl)
      ttl = rttl;
    kw__rbuf t;
    kw__rbuf_init(&t, rd, rdlen);
    while (kw__rbuf_left(&t)) {
      uint8_t sl = kw__rbuf_u8(&t);
      const uint8_t *s = kw__rbuf_take(&t, sl);
      if (t.err)
        return KW_ERR_PARSE;
      char kv[256];
      memcpy(kv, s, sl);
      kv[sl] = '\0';
      if (memchr(kv, 0, sl))
        return KW_ERR_PARSE;
      char *eq = strchr(kv, '=');
      if (!eq)
        continue;
      *eq = '\0';
      const char *val = eq + 1;
      if (strcmp(kv, "sig") == 0) {
        size_t bl;
        if (have_sig || strlen(val) != SIG_B64_LEN ||
            sodium_base642bin(sig, sizeof sig, val, SIG_B64_LEN, NULL, &bl,
                              NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            bl != sizeof sig)
          return KW_ERR_PARSE;
        have_sig = true;
      } else if (strcmp(kv, "relay") == 0) {
        if (have_relay || strlen(val) > KW_MAX_RELAY_URL)
          return KW_ERR_PARSE;
        snprintf(r.addr.relay_url, sizeof r.addr.relay_url, "%s", val);
        have_relay = true;
      } else if (strcmp(kv, "addr") == 0) {
        if (r.addr.n_addrs == KW_MAX_DIRECT_ADDRS ||
            kw_sockaddr_parse(val, &r.addr.addrs[r.addr.n_addrs]) != KW_OK)
          return KW_ERR_PARSE;
        r.addr.n_addrs++;
      }
    }
  }
  if (!have_sig || ttl == UINT32_MAX)
    return KW_ERR_PARSE;
  r.ttl_s = ttl;
  size_t n;
  if (kw__record_assemble(&r, sig, rec, cap, &n) != KW_OK)
    return cap < KW_RECORD_MAX_LEN ? KW_ERR_BUFFER : KW_ERR_PARSE;
  kw__record chk;
  kw_err e = kw__record_decode(rec, n, &chk);
  if (e != KW_OK)
    return e == KW_ERR_KEY_MISMATCH ? e : KW_ERR_PARSE;
  *rec_len = n;
  if (out)
    *out = chk;
  return KW_OK;
}

size_t kw__pkarr_value(const uint8_t *packet, size_t len, uint8_t *out,
                       size_t cap) {
  char h[8];
  int k = snprintf(h, sizeof h, "%zu:", len);
  if (len > KW_PKARR_MAX_PACKET || (size_t)k + len > cap)
    return 0;
  memcpy(out, h, (size_t)k);
  memcpy(out + k, packet, len);
  return (size_t)k + len;
}

kw_err kw__pkarr_body(const uint8_t *rec, size_t rec_len,
                      const uint8_t sk[KW_SECRET_KEY_LEN], uint8_t *out,
                      size_t cap, size_t *outlen) {
  kw__record r;
  if (!sk || !out || !outlen || kw__record_decode(rec, rec_len, &r) != KW_OK ||
      sodium_memcmp(sk + 32, r.addr.id, KW_ID_LEN) != 0 ||
      r.timestamp_us > INT64_MAX)
    return KW_ERR_INVALID_ARG;
  if (cap < 72)
    return KW_ERR_BUFFER;
  size_t plen;
  kw_err e = kw__pkarr_packet(rec, rec_len, out + 72, cap - 72, &plen);
  if (e != KW_OK)
    return e;
  uint8_t v[KW_PKARR_MAX_PACKET + 8];
  size_t vl = kw__pkarr_value(out + 72, plen, v, sizeof v);
  if (!vl || kw__bep44_sign(sk, NULL, 0, (int64_t)r.timestamp_us, v, vl,
                            out) != KW_OK)
    return KW_ERR_BUFFER;
  kw__wbuf w;
  kw__wbuf_init(&w, out + 64, 8);
  kw__wbuf_u64(&w, r.timestamp_us);
  *outlen = 72 + plen;
  return KW_OK;
}

kw_err kw__pkarr_body_open(const uint8_t *body, size_t len,
                           const uint8_t id[KW_ID_LEN], kw__pkarr_item *it) {
  if (!id || !it || (!body && len))
    return KW_ERR_INVALID_ARG;
  memset(it, 0, sizeof *it);
  kw__rbuf b;
  kw__rbuf_init(&b, body, len);
  if (len < 72 + 12 || len > KW_PKARR_MAX_BODY)
    return KW_ERR_PARSE;
  kw__rbuf_copy(&b, it->sig, 64);
  uint64_t seq = kw__rbuf_u64(&b);
  if (b.err || seq > INT64_MAX)
    return KW_ERR_PARSE;
  it->seq = (int64_t)seq;
  it->packet_len = kw__rbuf_left(&b);
  it->packet = kw__rbuf_take(&b, it->packet_len);
  it->v_len = kw__pkarr_value(it->packet, it->packet_len, it->v, sizeof it->v);
  if (!it->v_len)
    return KW_ERR_PARSE;
  if (!kw__bep44_verify(id, NULL, 0, it->seq, it->v, it->v_len, it->sig))
    return KW_ERR_KEY_MISMATCH;
  return KW_OK;
}
