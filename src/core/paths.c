/* SPDX-License-Identifier: MIT */
/* Per-remote path table and path selection (see paths.h). */
#include <string.h>

#include "core/paths.h"
#include "core/sockaddr.h"

void kw__paths_init(kw__paths *t) {
  if (!t)
    return;
  memset(t, 0, sizeof(*t));
  t->selected = KW_PATHS_NONE;
}

void kw__paths_free(kw__paths *t) {
  kw__paths_init(t);
}

static bool valid_slot(const kw__paths *t, int idx) {
  return t && idx >= 0 && idx < KW_PATHS_SLOTS && t->p[idx].used;
}

const kw__path *kw__paths_get(const kw__paths *t, int idx) {
  return valid_slot(t, idx) ? &t->p[idx] : NULL;
}

int kw__paths_find(const kw__paths *t, const kw_sockaddr *addr) {
  if (!t)
    return KW_PATHS_NONE;
  if (!addr)
    return t->p[KW_PATHS_RELAY].used ? KW_PATHS_RELAY : KW_PATHS_NONE;
  for (int i = 1; i < KW_PATHS_SLOTS; i++)
    if (t->p[i].used && kw__sockaddr_equal(&t->p[i].addr, addr))
      return i;
  return KW_PATHS_NONE;
}

size_t kw__paths_count_ip(const kw__paths *t) {
  size_t n = 0;
  for (int i = 1; t && i < KW_PATHS_SLOTS; i++)
    n += t->p[i].used;
  return n;
}

size_t kw__paths_count_inactive(const kw__paths *t) {
  size_t n = 0;
  for (int i = 1; t && i < KW_PATHS_SLOTS; i++)
    n += t->p[i].used && t->p[i].state == KW_PST_INACTIVE;
  return n;
}

static int state_class(kw__path_state st) {
  switch (st) {
  case KW_PST_INACTIVE:
    return -1;
  case KW_PST_UNUSABLE:
    return 0;
  case KW_PST_UNKNOWN:
    return 1;
  case KW_PST_VALIDATING:
    return 2;
  case KW_PST_VALIDATED:
    return 3;
  }
  return -1;
}

static int source_class(uint8_t s) {
  if (s & KW_PSRC_CONN)
    return 3;
  if (s & KW_PSRC_APP)
    return 2;
  if (s & KW_PSRC_DISCO)
    return 1;
  return 0;
}

/* True if a has lower pruning priority than b. */
static bool prio_lower(const kw__path *a, const kw__path *b) {
  int sa = state_class(a->state), sb = state_class(b->state);
  if (sa != sb)
    return sa < sb;
  int ca = source_class(a->sources), cb = source_class(b->sources);
  if (ca != cb)
    return ca < cb;
  return a->seq < b->seq;
}

static void remove_slot(kw__paths *t, int i) {
  memset(&t->p[i], 0, sizeof(t->p[i]));
  if (t->selected == i)
    t->selected = KW_PATHS_NONE;
}

/* Removes the longest-inactive IP path other than the selected one;
 * returns its slot or KW_PATHS_NONE. */
static int prune_oldest_inactive(kw__paths *t) {
  int victim = KW_PATHS_NONE;
  for (int i = 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *p = &t->p[i];
    if (!p->used || p->state != KW_PST_INACTIVE || i == t->selected)
      continue;
    if (victim == KW_PATHS_NONE ||
        p->inactive_since < t->p[victim].inactive_since ||
        (p->inactive_since == t->p[victim].inactive_since &&
         p->seq < t->p[victim].seq))
      victim = i;
  }
  if (victim != KW_PATHS_NONE)
    remove_slot(t, victim);
  return victim;
}

static int prune_lowest(kw__paths *t) {
  int victim = KW_PATHS_NONE;
  for (int i = 1; i < KW_PATHS_SLOTS; i++) {
    if (!t->p[i].used || i == t->selected)
      continue;
    if (victim == KW_PATHS_NONE || prio_lower(&t->p[i], &t->p[victim]))
      victim = i;
  }
  if (victim != KW_PATHS_NONE)
    remove_slot(t, victim);
  return victim;
}

/* Enforces both limits given `ip_want` IP paths wanted in the table;
 * returns true if `watch` got pruned. */
static bool enforce(kw__paths *t, size_t ip_want, int watch) {
  bool hit = false;
  while (kw__paths_count_inactive(t) > KW_PATHS_MAX_INACTIVE) {
    int v = prune_oldest_inactive(t);
    if (v == KW_PATHS_NONE)
      break;
    hit |= v == watch;
  }
  while (kw__paths_count_ip(t) > ip_want) {
    int v = prune_oldest_inactive(t);
    if (v == KW_PATHS_NONE)
      v = prune_lowest(t);
    if (v == KW_PATHS_NONE)
      break;
    hit |= v == watch;
  }
  return hit;
}

kw_err kw__paths_add(kw__paths *t, const kw_sockaddr *addr, uint8_t source,
                     uint64_t now, int *idx, bool *created) {
  if (idx)
    *idx = KW_PATHS_NONE;
  if (created)
    *created = false;
  if (!t || (source & KW_PSRC_ALL) == 0 || (source & ~KW_PSRC_ALL))
    return KW_ERR_INVALID_ARG;
  if (addr && ((addr->family != 4 && addr->family != 6) || addr->port == 0))
    return KW_ERR_INVALID_ARG;
  int i = kw__paths_find(t, addr);
  if (i != KW_PATHS_NONE) {
    t->p[i].sources |= source;
    if (idx)
      *idx = i;
    return KW_OK;
  }
  if (!addr) {
    i = KW_PATHS_RELAY;
  } else {
    /* Make room first if every IP slot is taken. */
    if (kw__paths_count_ip(t) >= KW_PATHS_MAX_IP) {
      /* Temporarily add in a scratch comparison: the new path is unknown,
       * so it loses to anything of higher priority. */
      kw__path cand;
      memset(&cand, 0, sizeof(cand));
      cand.used = true;
      cand.state = KW_PST_UNKNOWN;
      cand.sources = source;
      cand.seq = t->seq + 1;
      bool has_inactive = false;
      int lowest = KW_PATHS_NONE;
      for (int j = 1; j < KW_PATHS_SLOTS; j++) {
        if (!t->p[j].used || j == t->selected)
          continue;
        if (t->p[j].state == KW_PST_INACTIVE)
          has_inactive = true;
        if (lowest == KW_PATHS_NONE || prio_lower(&t->p[j], &t->p[lowest]))
          lowest = j;
      }
      if (!has_inactive &&
          (lowest == KW_PATHS_NONE || prio_lower(&cand, &t->p[lowest])))
        return KW_ERR_FULL;
      enforce(t, KW_PATHS_MAX_IP - 1, KW_PATHS_NONE);
    }
    i = KW_PATHS_NONE;
    for (int j = 1; j < KW_PATHS_SLOTS; j++)
      if (!t->p[j].used) {
        i = j;
        break;
      }
    if (i == KW_PATHS_NONE) /* cannot happen after enforce */
      return KW_ERR_FULL;
  }
  kw__path *p = &t->p[i];
  memset(p, 0, sizeof(*p));
  p->used = true;
  p->relay = addr == NULL;
  if (addr) {
    p->addr.family = addr->family;
    memcpy(p->addr.ip, addr->ip, addr->family == 4 ? 4 : 16);
    p->addr.port = addr->port;
  }
  p->sources = source;
  p->state = KW_PST_UNKNOWN;
  p->added = now;
  p->seq = ++t->seq;
  if (idx)
    *idx = i;
  if (created)
    *created = true;
  return KW_OK;
}

kw_err kw__paths_remove(kw__paths *t, int idx) {
  if (!valid_slot(t, idx))
    return KW_ERR_NOT_FOUND;
  remove_slot(t, idx);
  return KW_OK;
}

kw_err kw__paths_set_sock(kw__paths *t, int idx, uint16_t sock) {
  if (!valid_slot(t, idx))
    return KW_ERR_NOT_FOUND;
  t->p[idx].sock = sock;
  return KW_OK;
}

kw_err kw__paths_set_state(kw__paths *t, int idx, kw__path_state st,
                           uint64_t now) {
  if (!valid_slot(t, idx))
    return KW_ERR_NOT_FOUND;
  if (st < KW_PST_UNKNOWN || st > KW_PST_UNUSABLE)
    return KW_ERR_INVALID_ARG;
  kw__path *p = &t->p[idx];
  if (st == KW_PST_INACTIVE && p->state != KW_PST_INACTIVE)
    p->inactive_since = now;
  p->state = st;
  if (st == KW_PST_VALIDATED)
    p->ever_validated = true;
  if (st == KW_PST_INACTIVE && !p->relay)
    enforce(t, KW_PATHS_MAX_IP, KW_PATHS_NONE);
  return KW_OK;
}

kw_err kw__paths_rtt_sample(kw__paths *t, int idx, size_t conn,
                            uint64_t rtt_ns) {
  if (!valid_slot(t, idx))
    return KW_ERR_NOT_FOUND;
  if (conn >= KW_PATHS_MAX_CONNS || rtt_ns == KW_PATHS_RTT_UNKNOWN)
    return KW_ERR_INVALID_ARG;
  kw__path *p = &t->p[idx];
  p->rtt[conn] = rtt_ns;
  p->has_rtt |= 1u << conn;
  if (p->state != KW_PST_UNUSABLE) {
    p->state = KW_PST_VALIDATED;
    p->ever_validated = true;
  }
  return KW_OK;
}

void kw__paths_conn_gone(kw__paths *t, size_t conn) {
  if (!t || conn >= KW_PATHS_MAX_CONNS)
    return;
  for (int i = 0; i < KW_PATHS_SLOTS; i++) {
    t->p[i].has_rtt &= ~(1u << conn);
    t->p[i].rtt[conn] = 0;
  }
}

static uint64_t path_rtt(const kw__path *p) {
  uint64_t best = KW_PATHS_RTT_UNKNOWN;
  for (size_t c = 0; c < KW_PATHS_MAX_CONNS; c++)
    if ((p->has_rtt & (1u << c)) && p->rtt[c] < best)
      best = p->rtt[c];
  return best;
}

uint64_t kw__paths_rtt(const kw__paths *t, int idx) {
  return valid_slot(t, idx) ? path_rtt(&t->p[idx]) : KW_PATHS_RTT_UNKNOWN;
}

/* RTT with the IPv6 bonus, as a signed number (INT64_MAX: unknown). */
static int64_t eff_rtt(const kw__path *p) {
  uint64_t r = path_rtt(p);
  if (r == KW_PATHS_RTT_UNKNOWN || r > (uint64_t)INT64_MAX)
    return INT64_MAX;
  int64_t e = (int64_t)r;
  if (!p->relay && p->addr.family == 6)
    e -= (int64_t)KW_PATHS_IPV6_BONUS_NS;
  return e;
}

static bool selectable(const kw__path *p) {
  return p->used && p->state == KW_PST_VALIDATED;
}

/* Total order: direct before relay, lower effective RTT, then address. */
static bool better(const kw__path *a, const kw__path *b) {
  if (a->relay != b->relay)
    return !a->relay;
  int64_t ea = eff_rtt(a), eb = eff_rtt(b);
  if (ea != eb)
    return ea < eb;
  if (a->addr.family != b->addr.family)
    return a->addr.family < b->addr.family;
  int c = memcmp(a->addr.ip, b->addr.ip, 16);
  if (c != 0)
    return c < 0;
  return a->addr.port < b->addr.port;
}

static int best_of(const kw__paths *t, bool direct_only) {
  int best = KW_PATHS_NONE;
  for (int i = direct_only ? 1 : 0; i < KW_PATHS_SLOTS; i++) {
    if (!selectable(&t->p[i]))
      continue;
    if (best == KW_PATHS_NONE || better(&t->p[i], &t->p[best]))
      best = i;
  }
  return best;
}

int kw__paths_select(kw__paths *t, uint64_t now, bool *changed) {
  (void)now;
  if (changed)
    *changed = false;
  if (!t)
    return KW_PATHS_NONE;
  int cur = t->selected;
  int best = best_of(t, false);
  int pick;
  if (best == KW_PATHS_NONE) {
    pick = KW_PATHS_NONE;
  } else if (cur == KW_PATHS_NONE || !selectable(&t->p[cur])) {
    pick = best;
  } else if (t->p[best].relay != t->p[cur].relay) {
    pick = t->p[best].relay ? cur : best; /* direct beats relay */
  } else {
    int64_t ec = eff_rtt(&t->p[cur]), eb = eff_rtt(&t->p[best]);
    bool switch_ = ec == INT64_MAX ? eb != INT64_MAX
                                   : ec - eb >= (int64_t)KW_PATHS_SWITCH_NS;
    pick = switch_ ? best : cur;
  }
  if (changed)
    *changed = pick != cur;
  t->selected = pick;
  return pick;
}

int kw__paths_selected(const kw__paths *t) {
  return t ? t->selected : KW_PATHS_NONE;
}

size_t kw__paths_redundant(const kw__paths *t, int *out, size_t cap) {
  if (!t)
    return 0;
  int keep = KW_PATHS_NONE;
  if (t->selected > KW_PATHS_RELAY && selectable(&t->p[t->selected]))
    keep = t->selected;
  else
    keep = best_of(t, true);
  size_t n = 0;
  for (int i = 1; i < KW_PATHS_SLOTS; i++) {
    if (i == keep || !selectable(&t->p[i]))
      continue;
    if (out && n < cap)
      out[n] = i;
    n++;
  }
  return n;
}

bool kw__paths_has_direct_within(const kw__paths *t, uint64_t max_rtt_ns) {
  for (int i = 1; t && i < KW_PATHS_SLOTS; i++)
    if (selectable(&t->p[i]) && path_rtt(&t->p[i]) <= max_rtt_ns)
      return true;
  return false;
}

const char *kw__path_state_name(kw__path_state st) {
  switch (st) {
  case KW_PST_UNKNOWN:
    return "unknown";
  case KW_PST_VALIDATING:
    return "validating";
  case KW_PST_VALIDATED:
    return "validated";
  case KW_PST_INACTIVE:
    return "inactive";
  case KW_PST_UNUSABLE:
    return "unusable";
  }
  return "unknown";
}
