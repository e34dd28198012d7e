/* SPDX-License-Identifier: MIT */
/* mDNS / DNS-SD messages and policy of LAN discovery: see mdns.h. */
#include "core/mdns.h"

#include <stdio.h>
#include <string.h>

static const uint8_t SERVICE[] = {7,   '_', 'k', 'e', 'y', 'w', 'a',
                                  'y', 4,   '_', 'u', 'd', 'p', 5,
                                  'l', 'o', 'c', 'a', 'l', 0};
static const uint8_t LOCAL[] = {5, 'l', 'o', 'c', 'a', 'l', 0};

void kw__mdns_service(kw__dns_name *out) {
  out->len = sizeof SERVICE;
  memcpy(out->b, SERVICE, sizeof SERVICE);
}

void kw__mdns_instance(const uint8_t id[KW_ID_LEN], kw__dns_name *out) {
  char t[KW_ID_STRLEN + 1];
  kw_id_to_string(id, t, sizeof t);
  kw__dns_name svc;
  kw__mdns_service(&svc);
  kw__dns_name_prepend((const uint8_t *)t, KW_ID_STRLEN, &svc, out);
}

void kw__mdns_host(const uint8_t id[KW_ID_LEN], kw__dns_name *out) {
  char t[KW_ID_STRLEN + 4];
  memcpy(t, "kw-", 3);
  kw_id_to_string(id, t + 3, sizeof t - 3);
  kw__dns_name local;
  local.len = sizeof LOCAL;
  memcpy(local.b, LOCAL, sizeof LOCAL);
  kw__dns_name_prepend((const uint8_t *)t, 3 + KW_ID_STRLEN, &local, out);
}

bool kw__mdns_instance_id(const kw__dns_name *n, uint8_t id[KW_ID_LEN]) {
  kw__dns_name svc;
  kw__mdns_service(&svc);
  size_t l;
  const uint8_t *f = kw__dns_name_first(n, &l);
  if (!f || l != KW_ID_STRLEN || n->len != 1 + l + svc.len ||
      !kw__dns_name_under(n, &svc))
    return false;
  char t[KW_ID_STRLEN + 1];
  memcpy(t, f, l);
  t[l] = 0;
  return kw_id_from_string(t, id) == KW_OK;
}

/* ---- encoding --------------------------------------------------------- */

/* "key=" then bytes, as one TXT character-string. */
static size_t kv(uint8_t *out, const char *key, const void *v, size_t vl) {
  size_t kl = strlen(key);
  out[0] = (uint8_t)(kl + 1 + vl);
  memcpy(out + 1, key, kl);
  out[1 + kl] = '=';
  memcpy(out + 2 + kl, v, vl);
  return 2 + kl + vl;
}

kw_err kw__mdns_encode_response(const kw__mdns_self *s, uint32_t ttl,
                                const kw__mdns_legacy *legacy, uint8_t *out,
                                size_t cap, size_t *outlen) {
  const char *url = s->relay_url ? s->relay_url : "";
  size_t ul = strlen(url);
  if (!s->record || s->record_len == 0 ||
      s->record_len > KW_MDNS_REC_CHUNK * KW_MDNS_REC_CHUNKS || ul > 255 - 6 ||
      s->n_addrs > KW_MDNS_MAX_ADDRS)
    return KW_ERR_INVALID_ARG;
  /* TXT RDATA */
  uint8_t txt[16 + 16 + 256 + KW_MDNS_REC_CHUNKS * (KW_MDNS_REC_CHUNK + 8)];
  size_t tl = 0;
  tl += kv(txt + tl, "v", "1", 1);
  char port[8];
  int pl = snprintf(port, sizeof port, "%u", (unsigned)s->port);
  tl += kv(txt + tl, "port", port, (size_t)pl);
  if (ul)
    tl += kv(txt + tl, "relay", url, ul);
  for (size_t off = 0, i = 0; off < s->record_len; i++) {
    size_t n = s->record_len - off;
    if (n > KW_MDNS_REC_CHUNK)
      n = KW_MDNS_REC_CHUNK;
    char key[8];
    snprintf(key, sizeof key, "rec%u", (unsigned)i);
    tl += kv(txt + tl, key, s->record + off, n);
    off += n;
  }
  uint16_t flush = legacy ? 0 : KW_DNS_CLASS_TOP;
  if (legacy && ttl > KW_MDNS_LEGACY_TTL_S)
    ttl = KW_MDNS_LEGACY_TTL_S;
  kw__dns_writer wr;
  kw__dns_writer_init(&wr, out, cap, legacy ? legacy->id : 0,
                      KW_DNS_FLAG_QR | KW_DNS_FLAG_AA);
  if (legacy)
    kw__dns_add_question(&wr, &legacy->q.name, legacy->q.type,
                         legacy->q.qclass & ~KW_DNS_CLASS_TOP);
  kw__dns_rr rr;
  memset(&rr, 0, sizeof rr);
  kw__dns_name svc, inst, host;
  kw__mdns_service(&svc);
  kw__mdns_instance(s->id, &inst);
  kw__mdns_host(s->id, &host);
  rr.name = svc; /* shared record: never the cache-flush bit */
  rr.type = KW_DNS_TYPE_PTR;
  rr.rclass = KW_DNS_CLASS_IN;
  rr.ttl = ttl;
  rr.u.target = inst;
  kw__dns_add_rr(&wr, KW_DNS_SEC_ANSWER, &rr);
  memset(&rr, 0, sizeof rr);
  rr.name = inst;
  rr.type = KW_DNS_TYPE_SRV;
  rr.rclass = KW_DNS_CLASS_IN | flush;
  rr.ttl = ttl;
  rr.u.srv.port = s->port;
  rr.u.srv.target = host;
  kw__dns_add_rr(&wr, KW_DNS_SEC_ANSWER, &rr);
  memset(&rr, 0, sizeof rr);
  rr.name = inst;
  rr.type = KW_DNS_TYPE_TXT;
  rr.rclass = KW_DNS_CLASS_IN | flush;
  rr.ttl = ttl;
  rr.rdata = txt;
  rr.rdlen = (uint16_t)tl;
  kw__dns_add_rr(&wr, KW_DNS_SEC_ANSWER, &rr);
  for (size_t i = 0; i < s->n_addrs; i++) {
    const kw_sockaddr *a = &s->addrs[i];
    if (a->family != 4 && a->family != 6)
      continue;
    memset(&rr, 0, sizeof rr);
    rr.name = host;
    rr.type = a->family == 4 ? KW_DNS_TYPE_A : KW_DNS_TYPE_AAAA;
    rr.rclass = KW_DNS_CLASS_IN | flush;
    rr.ttl = ttl;
    memcpy(rr.u.aaaa, a->ip, a->family == 4 ? 4 : 16);
    kw__dns_add_rr(&wr, KW_DNS_SEC_ADDITIONAL, &rr);
  }
  return kw__dns_finish(&wr, outlen);
}

kw_err kw__mdns_encode_query(const uint8_t id[KW_ID_LEN], bool qu,
                             uint8_t *out, size_t cap, size_t *outlen) {
  kw__dns_name inst;
  kw__mdns_instance(id, &inst);
  kw__dns_writer wr;
  kw__dns_writer_init(&wr, out, cap, 0, 0);
  kw__dns_add_question(&wr, &inst, KW_DNS_TYPE_TXT,
                       (uint16_t)(KW_DNS_CLASS_IN | (qu ? KW_DNS_CLASS_TOP : 0)));
  return kw__dns_finish(&wr, outlen);
}

/* ---- queries ---------------------------------------------------------- */

static bool class_in(uint16_t c) {
  c &= (uint16_t)~KW_DNS_CLASS_TOP;
  return c == KW_DNS_CLASS_IN || c == KW_DNS_TYPE_ANY;
}

kw_err kw__mdns_parse_query(const uint8_t *p, size_t len, uint16_t src_port,
                            const uint8_t self_id[KW_ID_LEN],
                            kw__mdns_ask *out) {
  memset(out, 0, sizeof *out);
  kw__dns_msg m;
  if (kw__dns_decode(p, len, &m) != KW_OK)
    return KW_ERR_PARSE;
  if ((m.h.flags & KW_DNS_FLAG_QR) || KW_DNS_OPCODE(m.h.flags) != 0)
    return KW_ERR_PARSE;
  kw__dns_name svc, inst, host;
  kw__mdns_service(&svc);
  kw__mdns_instance(self_id, &inst);
  kw__mdns_host(self_id, &host);
  bool want_svc = false, want_us = false;
  kw__dns_question q, first;
  memset(&first, 0, sizeof first);
  while (kw__dns_next_question(&m, &q) == KW_OK) {
    if (!class_in(q.qclass))
      continue;
    bool any = q.type == KW_DNS_TYPE_ANY;
    bool hit = false;
    if (kw__dns_name_equal(&q.name, &svc) &&
        (any || q.type == KW_DNS_TYPE_PTR)) {
      want_svc = hit = true;
    } else if (kw__dns_name_equal(&q.name, &inst) &&
               (any || q.type == KW_DNS_TYPE_TXT ||
                q.type == KW_DNS_TYPE_SRV)) {
      want_us = hit = true;
    } else if (kw__dns_name_equal(&q.name, &host) &&
               (any || q.type == KW_DNS_TYPE_A || q.type == KW_DNS_TYPE_AAAA)) {
      want_us = hit = true;
    }
    if (hit && first.name.len == 0)
      first = q;
  }
  if (!want_svc && !want_us)
    return KW_OK;
  if (!want_us) {
    /* known-answer suppression of the shared PTR record */
    kw__dns_rr rr;
    while (kw__dns_next_rr(&m, &rr) == KW_OK)
      if (rr.section == KW_DNS_SEC_ANSWER && rr.type == KW_DNS_TYPE_PTR &&
          kw__dns_name_equal(&rr.name, &svc) &&
          kw__dns_name_equal(&rr.u.target, &inst) &&
          rr.ttl >= KW_MDNS_TTL_S / 2)
        return KW_OK;
  }
  out->respond = true;
  if (src_port != KW_MDNS_PORT) {
    out->legacy = true;
    out->lq.id = m.h.id;
    out->lq.q = first;
  } else {
    out->unicast = (first.qclass & KW_DNS_CLASS_TOP) != 0;
  }
  return KW_OK;
}

/* ---- responses -------------------------------------------------------- */

bool kw__mdns_limiter_take(kw__mdns_limiter *l, uint64_t now_ns) {
  if (!l->init) {
    l->init = true;
    l->tokens = KW_MDNS_VERIFY_BURST;
    l->last_ns = now_ns;
  }
  if (now_ns > l->last_ns) {
    l->tokens += (double)(now_ns - l->last_ns) * KW_MDNS_VERIFY_PER_S / 1e9;
    if (l->tokens > KW_MDNS_VERIFY_BURST)
      l->tokens = KW_MDNS_VERIFY_BURST;
    l->last_ns = now_ns;
  }
  if (l->tokens < 1)
    return false;
  l->tokens -= 1;
  return true;
}

/* The signed record of a keyway TXT record: the "recN=" strings joined in
 * order (N from 0, no gap, no repeat). 0 when there is none or the
 * strings break that rule. */
static size_t txt_record(const kw__dns_rr *rr, uint8_t *out, size_t cap) {
  size_t off = 0, n, got = 0;
  unsigned next = 0;
  const uint8_t *s;
  while (kw__dns_txt_next(rr, &off, &s, &n)) {
    if (n < 5 || memcmp(s, "rec", 3) != 0)
      continue;
    const uint8_t *eq = memchr(s, '=', n);
    if (!eq)
      continue;
    size_t kl = (size_t)(eq - s);
    if (kl != 4 || s[3] != (uint8_t)('0' + next) || next >= KW_MDNS_REC_CHUNKS)
      return 0;
    size_t vl = n - kl - 1;
    if (vl == 0 || vl > cap - got)
      return 0;
    memcpy(out + got, eq + 1, vl);
    got += vl;
    next++;
  }
  return got;
}

kw_err kw__mdns_parse_response(const uint8_t *p, size_t len, uint64_t now_us,
                               uint64_t now_ns, kw__mdns_limiter *lim,
                               const uint8_t skip_id[KW_ID_LEN],
                               kw__mdns_found *out, size_t max, size_t *n,
                               kw__mdns_rejects *rej) {
  *n = 0;
  kw__mdns_rejects dummy;
  if (!rej)
    rej = &dummy;
  memset(rej, 0, sizeof *rej);
  kw__dns_msg m;
  if (kw__dns_decode(p, len, &m) != KW_OK)
    return KW_ERR_PARSE;
  if (!(m.h.flags & KW_DNS_FLAG_QR) || KW_DNS_OPCODE(m.h.flags) != 0 ||
      KW_DNS_RCODE(m.h.flags) != 0)
    return KW_ERR_PARSE;
  kw__dns_rr rr;
  while (kw__dns_next_rr(&m, &rr) == KW_OK) {
    uint8_t id[KW_ID_LEN];
    if (rr.type != KW_DNS_TYPE_TXT || !class_in(rr.rclass) ||
        !kw__mdns_instance_id(&rr.name, id))
      continue;
    if (skip_id && memcmp(id, skip_id, KW_ID_LEN) == 0)
      continue;
    uint8_t rec[KW_MDNS_REC_CHUNK * KW_MDNS_REC_CHUNKS];
    size_t rl = txt_record(&rr, rec, sizeof rec);
    if (rl == 0) {
      rej->unsigned_++;
      continue;
    }
    if (*n >= max) {
      rej->overflow++;
      continue;
    }
    if (!kw__mdns_limiter_take(lim, now_ns)) {
      rej->limited++;
      continue;
    }
    kw__mdns_found f;
    memset(&f, 0, sizeof f);
    if (kw__record_decode_at(rec, rl, now_us, &f.rec) != KW_OK ||
        memcmp(f.rec.addr.id, id, KW_ID_LEN) != 0) {
      rej->bad_sig++;
      continue;
    }
    f.ttl_s = rr.ttl;
    out[(*n)++] = f;
  }
  return KW_OK;
}

/* ---- cache ------------------------------------------------------------ */

void kw__mdns_cache_put(kw__mdns_cache *c, const kw__mdns_found *f,
                        uint64_t now_us) {
  int slot = -1, soonest = -1;
  for (int i = 0; i < KW_MDNS_CACHE; i++) {
    if (c->e[i].used && c->e[i].expires_us <= now_us)
      c->e[i].used = false;
    if (c->e[i].used &&
        memcmp(c->e[i].addr.id, f->rec.addr.id, KW_ID_LEN) == 0) {
      slot = i;
      break;
    }
  }
  if (slot >= 0) {
    if (f->rec.timestamp_us < c->e[slot].ts_us)
      return; /* an older record than the one we hold */
    if (f->ttl_s == 0) {
      c->e[slot].used = false;
      return;
    }
  } else {
    if (f->ttl_s == 0)
      return;
    for (int i = 0; i < KW_MDNS_CACHE && slot < 0; i++)
      if (!c->e[i].used)
        slot = i;
    if (slot < 0) {
      for (int i = 0; i < KW_MDNS_CACHE; i++)
        if (soonest < 0 || c->e[i].expires_us < c->e[soonest].expires_us)
          soonest = i;
      slot = soonest;
    }
  }
  uint64_t exp = now_us + (uint64_t)f->ttl_s * 1000000u;
  uint64_t rexp = kw__record_expiry(&f->rec);
  c->e[slot].used = true;
  c->e[slot].addr = f->rec.addr;
  c->e[slot].ts_us = f->rec.timestamp_us;
  c->e[slot].expires_us = exp < rexp ? exp : rexp;
}

bool kw__mdns_cache_get(const kw__mdns_cache *c, const uint8_t id[KW_ID_LEN],
                        uint64_t now_us, kw_endpoint_addr *out) {
  for (int i = 0; i < KW_MDNS_CACHE; i++)
    if (c->e[i].used && c->e[i].expires_us > now_us &&
        memcmp(c->e[i].addr.id, id, KW_ID_LEN) == 0) {
      *out = c->e[i].addr;
      return true;
    }
  return false;
}

uint32_t kw__mdns_query_gap_ms(unsigned sent) {
  uint32_t d = KW_MDNS_QUERY_FIRST_MS;
  for (unsigned i = 1; i < sent && d < KW_MDNS_QUERY_MAX_MS; i++)
    d *= 2;
  return d > KW_MDNS_QUERY_MAX_MS ? KW_MDNS_QUERY_MAX_MS : d;
}
