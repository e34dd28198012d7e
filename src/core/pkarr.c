/* SPDX-License-Identifier: MIT */
/* pkarr DNS packets of keyway records. See pkarr.h. */
#include "core/pkarr.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/bep44.h"
#include "core/buf.h"
#include "core/dns.h"

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

/* _keyway.<z32 id> */
static kw_err our_name(const uint8_t id[KW_ID_LEN], kw__dns_name *out) {
  char z[KW_PKARR_Z32_LEN + 1];
  char text[sizeof KW_PKARR_LABEL + KW_PKARR_Z32_LEN + 1];
  kw__pkarr_z32(id, z);
  snprintf(text, sizeof text, "%s.%s", KW_PKARR_LABEL, z);
  return kw__dns_name_from_text(text, out);
}

kw_err kw__pkarr_packet(const uint8_t *rec, size_t rec_len, uint8_t *out,
                        size_t cap, size_t *outlen) {
  kw__record r;
  if (!outlen || kw__record_decode(rec, rec_len, &r) != KW_OK)
    return KW_ERR_PARSE;
  if (cap > KW_PKARR_MAX_PACKET)
    cap = KW_PKARR_MAX_PACKET;
  char sig[SIG_B64_LEN + 1];
  sodium_bin2base64(sig, sizeof sig, rec + rec_len - KW_RECORD_SIG_LEN,
                    KW_RECORD_SIG_LEN, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  kw__dns_name nm;
  if (our_name(r.addr.id, &nm) != KW_OK)
    return KW_ERR_PARSE;
  /* "key=value" strings, one TXT record each */
  char vals[2 + KW_MAX_DIRECT_ADDRS][8 + KW_MAX_RELAY_URL + 1];
  kw__dns_txt txt[2 + KW_MAX_DIRECT_ADDRS];
  size_t n = 0;
  snprintf(vals[n++], sizeof vals[0], "sig=%s", sig);
  if (r.addr.relay_url[0])
    snprintf(vals[n++], sizeof vals[0], "relay=%s", r.addr.relay_url);
  for (size_t i = 0; i < r.addr.n_addrs; i++) {
    char a[KW_SOCKADDR_STRLEN];
    if (kw_sockaddr_format(&r.addr.addrs[i], a, sizeof a) != KW_OK)
      return KW_ERR_PARSE;
    snprintf(vals[n++], sizeof vals[0], "addr=%s", a);
  }
  for (size_t i = 0; i < n; i++) {
    txt[i].p = vals[i];
    txt[i].len = strlen(vals[i]);
  }
  kw_err e =
      kw__dns_encode_txt_response(&nm, r.ttl_s, txt, n, out, cap, outlen);
  return e == KW_OK ? KW_OK : KW_ERR_BUFFER;
}

kw_err kw__pkarr_record(const uint8_t *packet, size_t len,
                        const uint8_t id[KW_ID_LEN], int64_t seq,
                        uint8_t *rec, size_t cap, size_t *rec_len,
                        kw__record *out) {
  if (!id || !rec_len || (!packet && len))
    return KW_ERR_INVALID_ARG;
  if (len > KW_PKARR_MAX_PACKET || seq < 0)
    return KW_ERR_PARSE;
  kw__dns_name want;
  kw__dns_msg msg;
  if (our_name(id, &want) != KW_OK ||
      kw__dns_decode(packet, len, &msg) != KW_OK ||
      !(msg.h.flags & KW_DNS_FLAG_QR))
    return KW_ERR_PARSE;
  kw__record r;
  memset(&r, 0, sizeof r);
  memcpy(r.addr.id, id, KW_ID_LEN);
  r.timestamp_us = (uint64_t)seq;
  bool have_sig = false, have_relay = false;
  uint8_t sig[KW_RECORD_SIG_LEN];
  uint32_t ttl = UINT32_MAX;
  kw__dns_rr rr;
  while (kw__dns_next_rr(&msg, &rr) == KW_OK) {
    if (rr.type != KW_DNS_TYPE_TXT ||
        (rr.rclass & ~KW_DNS_CLASS_TOP) != KW_DNS_CLASS_IN ||
        !kw__dns_name_equal(&rr.name, &want))
      continue; /* a pkarr packet may hold more */
    if (rr.ttl < ttl)
      ttl = rr.ttl;
    char kv[8 + KW_MAX_RELAY_URL + 1];
    size_t sl;
    if (kw__dns_txt_join(&rr, (uint8_t *)kv, sizeof kv - 1, &sl) != KW_OK)
      return KW_ERR_PARSE;
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
