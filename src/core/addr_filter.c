/* SPDX-License-Identifier: MIT */
/* The punishment table and candidate filtering (see addr_filter.h). */
#include <arpa/inet.h>
#include <string.h>

#include "core/addr_filter.h"

typedef struct strike {
  uint64_t first;        /* first strike of the current series */
  uint64_t banned_until; /* 0: not banned */
  uint64_t spared_until; /* strikes not counted before this */
  uint32_t count;
} strike;

kw_err kw__addr_filter_init(kw__addr_filter *f) {
  if (!f)
    return KW_ERR_INVALID_ARG;
  f->banned_total = 0;
  f->spared_total = 0;
  kw_err e = kw__addrlru_init(&f->tab, KW_ADDR_FILTER_CAP, sizeof(strike));
  if (e != KW_OK)
    return e;
  e = kw__addrlru_init(&f->trusted, KW_ADDR_FILTER_TRUST_CAP, 1);
  if (e != KW_OK)
    kw__addrlru_free(&f->tab);
  return e;
}

void kw__addr_filter_free(kw__addr_filter *f) {
  if (f) {
    kw__addrlru_free(&f->tab);
    kw__addrlru_free(&f->trusted);
  }
}

bool kw__addr_filter_trusted(kw__addr_filter *f, const kw_sockaddr *from,
                             uint64_t now) {
  if (!f || !from)
    return false;
  uint64_t used = 0;
  if (!kw__addrlru_peek(&f->trusted, from, &used))
    return false;
  if (now >= used && now - used >= KW_ADDR_FILTER_TRUST_NS) {
    kw__addrlru_del(&f->trusted, from);
    return false;
  }
  return true;
}

static void expire(kw__addr_filter *f, uint64_t now) {
  if (now >= KW_ADDR_FILTER_EVICT_NS)
    kw__addrlru_expire(&f->tab, now - KW_ADDR_FILTER_EVICT_NS + 1);
}

/* The live entry of `from`, dropping it if it has aged out. */
static strike *lookup(kw__addr_filter *f, const kw_sockaddr *from,
                      uint64_t now) {
  uint64_t used = 0;
  strike *s = kw__addrlru_peek(&f->tab, from, &used);
  if (s && now >= used && now - used >= KW_ADDR_FILTER_EVICT_NS) {
    kw__addrlru_del(&f->tab, from);
    return NULL;
  }
  return s;
}

bool kw__addr_filter_ignored(kw__addr_filter *f, const kw_sockaddr *from,
                             uint64_t now) {
  if (!f || !from)
    return false;
  strike *s = lookup(f, from, now);
  return s && s->banned_until > now;
}

bool kw__addr_filter_strike(kw__addr_filter *f, const kw_sockaddr *from,
                            uint64_t now, kw__addr_spare_fn spare, void *arg,
                            bool *spared) {
  if (spared)
    *spared = false;
  if (!f || !from)
    return false;
  if (kw__addr_filter_trusted(f, from, now))
    return false; /* it authenticated: garbage "from" it is spoofed */
  expire(f, now);
  strike *s = lookup(f, from, now);
  if (s && s->banned_until > now)
    return false; /* already banned: dropped undecoded, no extension */
  if (s && s->spared_until > now)
    return false; /* spared recently: not counted, predicate not re-run */
  bool created;
  s = kw__addrlru_put(&f->tab, from, now, &created);
  if (!s)
    return false;
  if (created || s->count == 0 || now < s->first ||
      now - s->first >= KW_ADDR_FILTER_STRIKE_WINDOW_NS) {
    s->first = now;
    s->count = 0;
    s->banned_until = 0;
  }
  s->count++;
  if (s->count >= KW_ADDR_FILTER_STRIKES) {
    s->count = 0;
    if (spare && spare(arg, from)) {
      s->spared_until = now + KW_ADDR_FILTER_STRIKE_WINDOW_NS;
      f->spared_total++;
      if (spared)
        *spared = true;
      return false;
    }
    s->banned_until = now + KW_ADDR_FILTER_BAN_NS;
    f->banned_total++;
    return true;
  }
  return false;
}

bool kw__addr_filter_bad(kw__addr_filter *f, const kw_sockaddr *from,
                         uint64_t now) {
  return kw__addr_filter_strike(f, from, now, NULL, NULL, NULL);
}

void kw__addr_filter_good(kw__addr_filter *f, const kw_sockaddr *from) {
  if (f && from)
    kw__addrlru_del(&f->tab, from);
}

bool kw__addr_filter_lift(kw__addr_filter *f, const kw_sockaddr *from,
                          uint64_t now) {
  if (!f || !from)
    return false;
  bool was = kw__addr_filter_ignored(f, from, now);
  kw__addrlru_del(&f->tab, from);
  return was;
}

bool kw__addr_filter_trust(kw__addr_filter *f, const kw_sockaddr *from,
                           uint64_t now) {
  if (!f || !from)
    return false;
  bool was = kw__addr_filter_lift(f, from, now);
  bool created;
  (void)kw__addrlru_put(&f->trusted, from, now, &created);
  return was;
}

size_t kw__addr_filter_count(kw__addr_filter *f, uint64_t now) {
  if (!f)
    return 0;
  expire(f, now);
  return kw__addrlru_count(&f->tab);
}

/* ---- candidates ---------------------------------------------------------- */

static const char *const virtual_prefixes[] = {
    "docker", "br-",       "veth",    "virbr",  "tun",  "tap",
    "wg",     "tailscale", "zt",      "vmnet",  "utun", "vboxnet",
    "lxcbr",  "cni",       "flannel", "podman",
};

bool kw__iface_is_virtual(const char *name) {
  if (!name)
    return false;
  for (size_t i = 0; i < sizeof(virtual_prefixes) / sizeof(*virtual_prefixes);
       i++) {
    size_t n = strlen(virtual_prefixes[i]);
    if (strncmp(name, virtual_prefixes[i], n) == 0)
      return true;
  }
  return false;
}

static bool is_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return false;
  return true;
}

int kw__cand_rank(const char *name, const kw_sockaddr *addr) {
  if (!addr)
    return KW_CAND_RANK_NEVER;
  const uint8_t *ip = addr->ip;
  bool priv;
  if (addr->family == 4) {
    if (ip[0] == 0 || ip[0] >= 224 || (ip[0] == 169 && ip[1] == 254))
      return KW_CAND_RANK_NEVER;
    if (ip[0] == 127)
      return KW_CAND_RANK_LOOPBACK;
    priv = ip[0] == 10 || (ip[0] == 172 && (ip[1] & 0xf0) == 16) ||
           (ip[0] == 192 && ip[1] == 168);
  } else if (addr->family == 6) {
    if (is_zero(ip, 15) && ip[15] == 1)
      return KW_CAND_RANK_LOOPBACK;
    if (is_zero(ip, 16) || ip[0] == 0xff ||
        (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80))
      return KW_CAND_RANK_NEVER;
    if (is_zero(ip, 10) && ip[10] == 0xff && ip[11] == 0xff)
      return KW_CAND_RANK_NEVER; /* v4-mapped: never on an interface */
    priv = (ip[0] & 0xfe) == 0xfc;
  } else {
    return KW_CAND_RANK_NEVER;
  }
  if (kw__iface_is_virtual(name))
    return KW_CAND_RANK_VIRTUAL;
  return priv ? KW_CAND_RANK_LAN : KW_CAND_RANK_OTHER;
}

kw_err kw__prefix_parse(const char *s, kw__prefix *out) {
  if (!s || !out)
    return KW_ERR_INVALID_ARG;
  char host[64];
  const char *slash = strchr(s, '/');
  size_t hl = slash ? (size_t)(slash - s) : strlen(s);
  if (hl == 0 || hl >= sizeof(host))
    return KW_ERR_PARSE;
  memcpy(host, s, hl);
  host[hl] = '\0';
  kw__prefix p;
  memset(&p, 0, sizeof(p));
  if (inet_pton(AF_INET, host, p.ip) == 1)
    p.family = 4;
  else if (inet_pton(AF_INET6, host, p.ip) == 1)
    p.family = 6;
  else
    return KW_ERR_PARSE;
  unsigned max = p.family == 4 ? 32 : 128;
  unsigned len = max;
  if (slash) {
    const char *d = slash + 1;
    size_t dl = strlen(d);
    if (dl == 0 || dl > 3 || (dl > 1 && d[0] == '0'))
      return KW_ERR_PARSE;
    len = 0;
    for (size_t i = 0; i < dl; i++) {
      if (d[i] < '0' || d[i] > '9')
        return KW_ERR_PARSE;
      len = len * 10 + (unsigned)(d[i] - '0');
    }
    if (len > max)
      return KW_ERR_PARSE;
  }
  p.len = (uint8_t)len;
  /* Host bits must be zero. */
  for (unsigned bit = len; bit < max; bit++)
    if (p.ip[bit / 8] & (0x80 >> (bit % 8)))
      return KW_ERR_PARSE;
  *out = p;
  return KW_OK;
}

bool kw__prefix_contains(const kw__prefix *p, const kw_sockaddr *a) {
  if (!p || !a || p->family != a->family)
    return false;
  unsigned full = p->len / 8, rest = p->len % 8;
  if (memcmp(p->ip, a->ip, full) != 0)
    return false;
  if (rest) {
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    if ((p->ip[full] & mask) != (a->ip[full] & mask))
      return false;
  }
  return true;
}

static bool valid_pattern(const char *pat) {
  if (!pat)
    return false;
  size_t n = strlen(pat);
  if (n == 0 || n >= KW_IFNAME_MAX)
    return false;
  const char *star = strchr(pat, '*');
  return !star || star == pat + n - 1;
}

static bool pattern_match(const char *pat, const char *name) {
  size_t n = strlen(pat);
  if (n && pat[n - 1] == '*')
    return strncmp(pat, name, n - 1) == 0;
  return strcmp(pat, name) == 0;
}

static kw_err add_iface(char list[][KW_IFNAME_MAX], size_t *n,
                        const char *pat) {
  if (!valid_pattern(pat))
    return KW_ERR_INVALID_ARG;
  if (*n >= KW_CAND_LIST_MAX)
    return KW_ERR_FULL;
  memcpy(list[*n], pat, strlen(pat) + 1);
  (*n)++;
  return KW_OK;
}

static kw_err add_prefix(kw__prefix *list, size_t *n, const char *s) {
  kw__prefix p;
  kw_err err = kw__prefix_parse(s, &p);
  if (err)
    return err;
  if (*n >= KW_CAND_LIST_MAX)
    return KW_ERR_FULL;
  list[(*n)++] = p;
  return KW_OK;
}

kw_err kw__cand_filter_allow_iface(kw__cand_filter *f, const char *pattern) {
  if (!f)
    return KW_ERR_INVALID_ARG;
  return add_iface(f->allow_if, &f->n_allow_if, pattern);
}

kw_err kw__cand_filter_deny_iface(kw__cand_filter *f, const char *pattern) {
  if (!f)
    return KW_ERR_INVALID_ARG;
  return add_iface(f->deny_if, &f->n_deny_if, pattern);
}

kw_err kw__cand_filter_allow_prefix(kw__cand_filter *f, const char *prefix) {
  if (!f || !prefix)
    return KW_ERR_INVALID_ARG;
  return add_prefix(f->allow_pfx, &f->n_allow_pfx, prefix);
}

kw_err kw__cand_filter_deny_prefix(kw__cand_filter *f, const char *prefix) {
  if (!f || !prefix)
    return KW_ERR_INVALID_ARG;
  return add_prefix(f->deny_pfx, &f->n_deny_pfx, prefix);
}

bool kw__cand_allowed_external(const kw__cand_filter *f,
                               const kw_sockaddr *addr) {
  if (!addr)
    return false;
  for (size_t i = 0; f && i < f->n_deny_pfx; i++)
    if (kw__prefix_contains(&f->deny_pfx[i], addr))
      return false;
  return true;
}

bool kw__cand_allowed(const kw__cand_filter *f, const char *name,
                      const kw_sockaddr *addr) {
  if (!addr)
    return false;
  if (!f)
    return true;
  for (size_t i = 0; i < f->n_deny_if; i++)
    if (name && pattern_match(f->deny_if[i], name))
      return false;
  for (size_t i = 0; i < f->n_deny_pfx; i++)
    if (kw__prefix_contains(&f->deny_pfx[i], addr))
      return false;
  if (f->n_allow_if == 0 && f->n_allow_pfx == 0)
    return true;
  for (size_t i = 0; i < f->n_allow_if; i++)
    if (name && pattern_match(f->allow_if[i], name))
      return true;
  for (size_t i = 0; i < f->n_allow_pfx; i++)
    if (kw__prefix_contains(&f->allow_pfx[i], addr))
      return true;
  return false;
}
