/* The deterministic network simulator (see sim.h). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/sockaddr.h"
#include "sim.h"

/* ---- PRNG ---------------------------------------------------------------- */

uint64_t sim_rand(sim_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double sim_uniform(sim_rng *r) {
  return (double)(sim_rand(r) >> 11) / 9007199254740992.0;
}

static kw_sockaddr sa(const char *s) {
  kw_sockaddr a;
  memset(&a, 0, sizeof(a));
  if (kw_sockaddr_parse(s, &a) != KW_OK)
    memset(&a, 0, sizeof(a)); /* a typo in a literal: tests will fail */
  return a;
}

static bool same_ip(const kw_sockaddr *a, const kw_sockaddr *b) {
  return a->family == b->family &&
         memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16) == 0;
}

/* ---- NAT ---------------------------------------------------------------- */

void sim_nat_init(sim_nat *n, const sim_nat_cfg *cfg, const char *pub_ip,
                  uint16_t first_port) {
  memset(n, 0, sizeof(*n));
  n->cfg = *cfg;
  n->pub = sa(pub_ip);
  n->pub.port = 0;
  n->next_port = first_port ? first_port : 1024;
}

static void nat_expire(sim_nat *n, uint64_t now) {
  for (size_t i = 0; i < SIM_MAX_MAPPINGS; i++)
    if (n->m[i].used && now - n->m[i].last_out >= n->cfg.timeout_ns)
      n->m[i].used = false;
}

static bool key_match(sim_behavior b, const kw_sockaddr *want,
                      const kw_sockaddr *have) {
  switch (b) {
  case SIM_EI:
    return true;
  case SIM_AD:
    return same_ip(want, have);
  case SIM_APD:
    return kw__sockaddr_equal(want, have);
  }
  return false;
}

bool sim_nat_out(sim_nat *n, const kw_sockaddr *src, const kw_sockaddr *dst,
                 uint64_t now, kw_sockaddr *ext_src) {
  nat_expire(n, now);
  sim_mapping *m = NULL;
  for (size_t i = 0; i < SIM_MAX_MAPPINGS && !m; i++)
    if (n->m[i].used && kw__sockaddr_equal(&n->m[i].inside, src) &&
        key_match(n->cfg.mapping, dst, &n->m[i].dest))
      m = &n->m[i];
  if (!m) {
    size_t victim = 0;
    for (size_t i = 0; i < SIM_MAX_MAPPINGS; i++) {
      if (!n->m[i].used) {
        victim = i;
        break;
      }
      if (n->m[i].last_out < n->m[victim].last_out)
        victim = i;
    }
    m = &n->m[victim];
    memset(m, 0, sizeof(*m));
    m->used = true;
    m->inside = *src;
    m->dest = *dst;
    if (n->next_port == 0)
      n->next_port = 1024;
    m->ext_port = n->next_port++;
    n->mappings_made++;
  }
  m->last_out = now;
  bool known = false;
  for (size_t i = 0; i < m->n_perms; i++)
    known |= kw__sockaddr_equal(&m->perms[i], dst);
  if (!known) {
    if (m->n_perms == SIM_MAX_PERMS) {
      memmove(m->perms, m->perms + 1, (SIM_MAX_PERMS - 1) * sizeof(*m->perms));
      m->n_perms--;
    }
    m->perms[m->n_perms++] = *dst;
  }
  *ext_src = n->pub;
  ext_src->port = m->ext_port;
  return true;
}

bool sim_nat_in(sim_nat *n, const kw_sockaddr *src, const kw_sockaddr *ext_dst,
                uint64_t now, kw_sockaddr *inside_dst) {
  nat_expire(n, now);
  if (!same_ip(ext_dst, &n->pub)) {
    n->dropped_in++;
    return false;
  }
  for (size_t i = 0; i < SIM_MAX_MAPPINGS; i++) {
    sim_mapping *m = &n->m[i];
    if (!m->used || m->ext_port != ext_dst->port)
      continue;
    bool ok = n->cfg.filtering == SIM_EI;
    for (size_t j = 0; j < m->n_perms && !ok; j++)
      ok = key_match(n->cfg.filtering, src, &m->perms[j]);
    if (!ok)
      break;
    *inside_dst = m->inside;
    return true;
  }
  n->dropped_in++;
  return false;
}

/* ---- packet heap ------------------------------------------------------- */

static bool pkt_before(const sim_pkt *a, const sim_pkt *b) {
  return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_swap(sim_pkt *a, sim_pkt *b) {
  sim_pkt t = *a;
  *a = *b;
  *b = t;
}

static sim_pkt *heap_push(sim_world *w) {
  if (w->npkts == SIM_MAX_PKTS) {
    w->pkts_dropped_full++;
    return NULL;
  }
  return &w->heap[w->npkts++];
}

/* Sifts the element just written at the end into place. */
static void heap_fix_last(sim_world *w) {
  size_t i = w->npkts - 1;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!pkt_before(&w->heap[i], &w->heap[p]))
      break;
    heap_swap(&w->heap[i], &w->heap[p]);
    i = p;
  }
}

static void heap_pop(sim_world *w, sim_pkt *out) {
  *out = w->heap[0];
  w->heap[0] = w->heap[--w->npkts];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < w->npkts && pkt_before(&w->heap[l], &w->heap[m]))
      m = l;
    if (r < w->npkts && pkt_before(&w->heap[r], &w->heap[m]))
      m = r;
    if (m == i)
      break;
    heap_swap(&w->heap[i], &w->heap[m]);
    i = m;
  }
}

static void enqueue(sim_world *w, sim_pkt_kind kind, int to_peer,
                    const kw_sockaddr *src, const kw_sockaddr *dst,
                    const uint8_t *data, size_t len, const sim_link *link) {
  if (len > SIM_PKT_MAX)
    return;
  int copies = 1;
  if (link) {
    if (sim_uniform(&w->rng) < link->loss) {
      w->pkts_lost++;
      return;
    }
    if (sim_uniform(&w->rng) < link->dup)
      copies = 2;
  }
  for (int c = 0; c < copies; c++) {
    sim_pkt *p = heap_push(w);
    if (!p)
      return;
    p->kind = kind;
    p->to_peer = to_peer;
    p->src = *src;
    p->dst = *dst;
    p->len = len;
    memcpy(p->data, data, len);
    uint64_t d = link ? link->delay_ns : w->cfg.relay_ns;
    if (link && link->jitter_ns)
      d += (uint64_t)(sim_uniform(&w->rng) * (double)link->jitter_ns);
    p->at = w->now + d;
    p->seq = w->seq++;
    heap_fix_last(w);
  }
}

/* ---- sending from a peer ----------------------------------------------- */

static int peer_index(const sim_world *w, const sim_peer *p) {
  return p == &w->peers[0] ? 0 : 1;
}

static void peer_send(sim_world *w, sim_peer *p, const kw_sockaddr *dst,
                      const uint8_t *data, size_t len) {
  /* Same LAN: straight there. */
  for (int i = 0; i < 2; i++) {
    sim_peer *q = &w->peers[i];
    if (q != p && q->lan == p->lan && kw__sockaddr_equal(&q->local, dst)) {
      enqueue(w, SIM_PK_LAN, i, &p->local, dst, data, len, &w->cfg.lan);
      return;
    }
  }
  kw_sockaddr src = p->local;
  if (p->nat >= 0) {
    sim_nat *n = &w->nats[p->nat];
    /* Private destinations that are not on our LAN are unroutable, and a
     * NAT does not hairpin. */
    if (same_ip(dst, &n->pub))
      return;
    for (int i = 0; i < 2; i++)
      if (w->peers[i].nat >= 0 && same_ip(dst, &w->peers[i].local))
        return;
    sim_nat_out(n, &p->local, dst, w->now, &src);
  }
  enqueue(w, SIM_PK_WAN, -1, &src, dst, data, len, &w->cfg.wan);
}

static void peer_send_relay(sim_world *w, sim_peer *p, const uint8_t *data,
                            size_t len) {
  kw_sockaddr none;
  memset(&none, 0, sizeof(none));
  enqueue(w, SIM_PK_RELAY, 1 - peer_index(w, p), &none, &none, data, len, NULL);
}

/* ---- peer logic ------------------------------------------------------- */

static uint64_t unix_ms(const sim_world *w) {
  return SIM_UNIX_BASE_MS + w->now / SIM_MS;
}

static sim_peer *other(sim_world *w, sim_peer *p) {
  return &w->peers[1 - peer_index(w, p)];
}

static void send_ping(sim_world *w, sim_peer *p, int idx) {
  const kw__path *path = kw__paths_get(&p->paths, idx);
  if (!path || path->relay)
    return;
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_PING;
  m.ts_ms = unix_ms(w);
  for (size_t i = 0; i < KW_DISCO_TXID_LEN; i++)
    m.tx_id[i] = (uint8_t)sim_rand(&w->rng);
  uint8_t out[KW_DISCO_MAX_LEN];
  size_t n;
  if (kw__disco_seal(&p->key, p->id, &m, out, sizeof(out), &n) != KW_OK)
    return;
  size_t slot = p->ping_next++ % SIM_MAX_PINGS;
  p->pings[slot].used = true;
  memcpy(p->pings[slot].tx, m.tx_id, KW_DISCO_TXID_LEN);
  p->pings[slot].to = path->addr;
  p->pings[slot].sent = w->now;
  p->last_ping[idx] = w->now;
  if (path->state != KW_PST_VALIDATED)
    kw__paths_set_state(&p->paths, idx, KW_PST_VALIDATING, w->now);
  p->st.pings_sent++;
  peer_send(w, p, &path->addr, out, n);
}

static void run_round(sim_world *w, sim_peer *p) {
  p->st.rounds++;
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_CALL_ME_MAYBE;
  m.ts_ms = unix_ms(w);
  m.n_addrs = p->n_cands;
  memcpy(m.addrs, p->cands, p->n_cands * sizeof(*p->cands));
  uint8_t out[KW_DISCO_MAX_LEN];
  size_t n;
  if (kw__disco_seal(&p->key, p->id, &m, out, sizeof(out), &n) == KW_OK) {
    peer_send_relay(w, p, out, n);
    p->st.cmm_sent++;
  }
  for (int i = 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *path = kw__paths_get(&p->paths, i);
    if (!path || path->state == KW_PST_INACTIVE ||
        path->state == KW_PST_UNUSABLE)
      continue;
    send_ping(w, p, i);
    p->tries[i] = SIM_PING_TRIES - 1;
  }
}

static void reselect(sim_world *w, sim_peer *p) {
  bool changed;
  kw__paths_select(&p->paths, w->now, &changed);
  if (changed)
    p->st.path_changes++;
  kw__holepunch_set_good_direct(
      &p->hp, kw__paths_has_direct_within(&p->paths, KW_HP_GOOD_RTT_NS));
}

static void add_local_candidate(sim_world *w, sim_peer *p,
                                const kw_sockaddr *a) {
  for (size_t i = 0; i < p->n_cands; i++)
    if (kw__sockaddr_equal(&p->cands[i], a))
      return;
  if (p->n_cands == KW_MAX_DIRECT_ADDRS)
    return;
  p->cands[p->n_cands++] = *a;
  kw__holepunch_local_candidates(&p->hp, w->now);
}

static void on_disco(sim_world *w, sim_peer *p, const kw_sockaddr *from,
                     bool via_relay, const uint8_t *data, size_t len) {
  if (!via_relay && kw__addr_filter_ignored(&p->filter, from, w->now)) {
    p->st.ignored++;
    return;
  }
  uint8_t sender[KW_ID_LEN];
  kw__disco_msg m;
  if (kw__disco_peek_sender(data, len, sender) != KW_OK ||
      memcmp(sender, other(w, p)->id, KW_ID_LEN) != 0 ||
      kw__disco_open(&p->key, data, len, &m) != KW_OK) {
    p->st.undecodable++;
    if (!via_relay)
      kw__addr_filter_bad(&p->filter, from, w->now);
    return;
  }
  if (!via_relay)
    kw__addr_filter_good(&p->filter, from);
  if (!kw__disco_act_via(m.type, via_relay)) {
    p->st.relay_dropped++;
    return;
  }
  switch (kw__disco_replay_check(&p->replay, sender, &m, unix_ms(w))) {
  case KW_DISCO_FRESH:
    break;
  case KW_DISCO_DUP:
    p->st.dup_dropped++;
    return;
  case KW_DISCO_STALE:
    p->st.stale_dropped++;
    return;
  }
  switch (m.type) {
  case KW_DISCO_PING: {
    int idx;
    kw__paths_add(&p->paths, from, KW_PSRC_DISCO, w->now, &idx, NULL);
    if (kw__disco_pong_allow(&p->lim, from, w->now)) {
      uint8_t out[KW_DISCO_MAX_LEN];
      size_t n;
      if (kw__disco_seal_pong(&p->key, p->id, len, m.tx_id, from, unix_ms(w),
                              out, sizeof(out), &n) == KW_OK) {
        p->st.pongs_sent++;
        peer_send(w, p, from, out, n);
      }
    } else {
      p->st.pong_limited++;
    }
    /* Ping back a path we have not validated yet. */
    const kw__path *path = kw__paths_get(&p->paths, idx);
    if (path && path->state != KW_PST_VALIDATED &&
        (p->last_ping[idx] == 0 ||
         w->now - p->last_ping[idx] >= SIM_PING_RETRY_NS / 2))
      send_ping(w, p, idx);
    break;
  }
  case KW_DISCO_PONG: {
    for (size_t i = 0; i < SIM_MAX_PINGS; i++) {
      if (!p->pings[i].used ||
          memcmp(p->pings[i].tx, m.tx_id, KW_DISCO_TXID_LEN) != 0)
        continue;
      p->pings[i].used = false;
      if (!kw__sockaddr_equal(&p->pings[i].to, from))
        break; /* answered from elsewhere: not this path */
      int idx = kw__paths_find(&p->paths, from);
      if (idx != KW_PATHS_NONE) {
        kw__paths_rtt_sample(&p->paths, idx, 0, w->now - p->pings[i].sent);
        p->tries[idx] = 0;
      }
      p->st.pongs_recv++;
      add_local_candidate(w, p, &m.addr);
      break;
    }
    break;
  }
  case KW_DISCO_CALL_ME_MAYBE: {
    p->st.cmm_recv++;
    bool fresh = false;
    for (size_t i = 0; i < m.n_addrs; i++) {
      bool created = false;
      kw__paths_add(&p->paths, &m.addrs[i], KW_PSRC_DISCO, w->now, NULL,
                    &created);
      fresh |= created;
    }
    if (fresh)
      kw__holepunch_remote_candidates(&p->hp, w->now);
    break;
  }
  }
  reselect(w, p);
}

static const uint8_t stun_req[8] = {'S', 'I', 'M', 'S', 'T', 'U', 'N', '?'};
static const uint8_t stun_rsp[8] = {'S', 'I', 'M', 'S', 'T', 'U', 'N', '!'};

static void peer_recv(sim_world *w, sim_peer *p, const kw_sockaddr *from,
                      bool via_relay, const uint8_t *data, size_t len) {
  if (!via_relay && len == 8 + sizeof(kw_sockaddr) &&
      memcmp(data, stun_rsp, 8) == 0 && kw__sockaddr_equal(from, &w->stun)) {
    kw_sockaddr refl;
    memcpy(&refl, data + 8, sizeof(refl));
    p->have_refl = true;
    add_local_candidate(w, p, &refl);
    return;
  }
  if (kw__disco_is(data, len)) {
    on_disco(w, p, from, via_relay, data, len);
    return;
  }
  p->st.undecodable++;
  if (!via_relay && !kw__addr_filter_ignored(&p->filter, from, w->now))
    kw__addr_filter_bad(&p->filter, from, w->now);
}

/* ---- world ----------------------------------------------------------------
 */

void sim_cfg_default(sim_cfg *c, uint64_t seed) {
  memset(c, 0, sizeof(*c));
  c->seed = seed;
  for (int i = 0; i < 2; i++) {
    c->nat[i] = true;
    c->natcfg[i].mapping = SIM_EI;
    c->natcfg[i].filtering = SIM_EI;
    c->natcfg[i].timeout_ns = 30 * SIM_S;
  }
  c->wan.delay_ns = 20 * SIM_MS;
  c->wan.jitter_ns = 5 * SIM_MS;
  c->lan.delay_ns = SIM_MS / 2;
  c->relay_ns = 30 * SIM_MS;
}

static bool peer_init(sim_world *w, int i) {
  sim_peer *p = &w->peers[i];
  memset(p, 0, sizeof(*p));
  uint8_t seed[crypto_sign_SEEDBYTES];
  for (size_t k = 0; k < sizeof(seed); k++)
    seed[k] = (uint8_t)sim_rand(&w->rng);
  if (crypto_sign_seed_keypair(p->id, p->sk, seed) != 0)
    return false;
  kw__paths_init(&p->paths);
  kw__holepunch_init(&p->hp);
  if (kw__disco_replay_init(&p->replay, 1024) != KW_OK)
    return false;
  if (kw__disco_pong_limiter_init(&p->lim) != KW_OK)
    return false;
  if (kw__addr_filter_init(&p->filter) != KW_OK)
    return false;
  return true;
}

bool sim_world_init(sim_world *w, const sim_cfg *cfg) {
  memset(w, 0, sizeof(*w));
  if (sodium_init() < 0)
    return false;
  w->cfg = *cfg;
  w->rng.s = cfg->seed;
  w->heap = calloc(SIM_MAX_PKTS, sizeof(*w->heap));
  if (!w->heap)
    return false;
  w->stun = sa("198.19.255.1:3478");
  sim_nat_init(&w->nats[0], &cfg->natcfg[0], "198.19.0.1:0",
               (uint16_t)(1024 + sim_rand(&w->rng) % 30000));
  sim_nat_init(&w->nats[1], &cfg->natcfg[1], "198.19.0.2:0",
               (uint16_t)(1024 + sim_rand(&w->rng) % 30000));
  for (int i = 0; i < 2; i++)
    if (!peer_init(w, i))
      return false;
  sim_peer *a = &w->peers[0], *b = &w->peers[1];
  if (cfg->same_lan) {
    a->local = sa("198.18.1.2:41641");
    b->local = sa("198.18.1.3:41641");
    a->nat = b->nat = 0;
    a->lan = b->lan = 1;
  } else {
    a->local = cfg->nat[0] ? sa("198.18.1.2:41641") : sa("198.19.1.1:41641");
    b->local = cfg->nat[1] ? sa("198.18.2.2:41641") : sa("198.19.1.2:41641");
    a->nat = cfg->nat[0] ? 0 : -1;
    b->nat = cfg->nat[1] ? 1 : -1;
    a->lan = 1;
    b->lan = 2;
  }
  if (kw__disco_key_derive(a->sk, b->id, &a->key) != KW_OK ||
      kw__disco_key_derive(b->sk, a->id, &b->key) != KW_OK)
    return false;
  return true;
}

void sim_world_free(sim_world *w) {
  for (int i = 0; i < 2; i++) {
    kw__disco_replay_free(&w->peers[i].replay);
    kw__disco_pong_limiter_free(&w->peers[i].lim);
    kw__addr_filter_free(&w->peers[i].filter);
  }
  free(w->heap);
  w->heap = NULL;
}

bool sim_start(sim_world *w) {
  for (int i = 0; i < 2; i++) {
    sim_peer *p = &w->peers[i];
    p->cands[p->n_cands++] = p->local;
    /* The QUIC connection came up through the relay. */
    int r;
    if (kw__paths_add(&p->paths, NULL, KW_PSRC_APP, w->now, &r, NULL))
      return false;
    kw__paths_rtt_sample(&p->paths, r, 0, 2 * w->cfg.relay_ns);
    reselect(w, p);
    kw__holepunch_conn_added(&p->hp, w->now);
    peer_send(w, p, &w->stun, stun_req, sizeof(stun_req));
    p->next_retry = w->now + SIM_PING_RETRY_NS;
  }
  return true;
}

static void deliver(sim_world *w, sim_pkt *pkt) {
  switch (pkt->kind) {
  case SIM_PK_RELAY:
    peer_recv(w, &w->peers[pkt->to_peer], &pkt->src, true, pkt->data, pkt->len);
    return;
  case SIM_PK_LAN:
    peer_recv(w, &w->peers[pkt->to_peer], &pkt->src, false, pkt->data,
              pkt->len);
    return;
  case SIM_PK_WAN:
    break;
  }
  if (kw__sockaddr_equal(&pkt->dst, &w->stun)) {
    if (pkt->len == sizeof(stun_req) &&
        memcmp(pkt->data, stun_req, sizeof(stun_req)) == 0) {
      uint8_t rsp[8 + sizeof(kw_sockaddr)];
      memcpy(rsp, stun_rsp, 8);
      memcpy(rsp + 8, &pkt->src, sizeof(kw_sockaddr));
      enqueue(w, SIM_PK_WAN, -1, &w->stun, &pkt->src, rsp, sizeof(rsp),
              &w->cfg.wan);
    }
    return;
  }
  for (int n = 0; n < 2; n++) {
    sim_nat *nat = &w->nats[n];
    if (!same_ip(&pkt->dst, &nat->pub))
      continue;
    bool used = false;
    for (int i = 0; i < 2; i++)
      used |= w->peers[i].nat == n;
    if (!used)
      continue;
    kw_sockaddr inside;
    if (!sim_nat_in(nat, &pkt->src, &pkt->dst, w->now, &inside))
      return;
    for (int i = 0; i < 2; i++)
      if (w->peers[i].nat == n &&
          kw__sockaddr_equal(&w->peers[i].local, &inside)) {
        peer_recv(w, &w->peers[i], &pkt->src, false, pkt->data, pkt->len);
        return;
      }
    return;
  }
  for (int i = 0; i < 2; i++)
    if (w->peers[i].nat < 0 &&
        kw__sockaddr_equal(&w->peers[i].local, &pkt->dst)) {
      peer_recv(w, &w->peers[i], &pkt->src, false, pkt->data, pkt->len);
      return;
    }
}

static void retry_pings(sim_world *w, sim_peer *p) {
  /* Like the io layer: STUN again every second until a reflexive address
   * is known, then every SIM_STUN_REFRESH_NS (which also keeps an
   * endpoint-independent mapping alive). */
  if (!p->have_refl || w->now >= p->next_stun) {
    peer_send(w, p, &w->stun, stun_req, sizeof(stun_req));
    p->next_stun = w->now + SIM_STUN_REFRESH_NS;
  }
  for (int i = 1; i < KW_PATHS_SLOTS; i++) {
    const kw__path *path = kw__paths_get(&p->paths, i);
    if (!path || p->tries[i] == 0 || path->state == KW_PST_VALIDATED) {
      p->tries[i] = 0;
      continue;
    }
    p->tries[i]--;
    send_ping(w, p, i);
  }
  /* Heartbeat: the selected direct path is pinged every few seconds, as
   * the io layer does; it keeps NAT mappings open and lets the other side
   * validate the path from its end (it pings back what it has not
   * validated). */
  int sel = kw__paths_selected(&p->paths);
  if (w->now >= p->next_heartbeat) {
    if (sel > KW_PATHS_RELAY)
      send_ping(w, p, sel);
    p->next_heartbeat = w->now + SIM_HEARTBEAT_NS;
  }
  p->next_retry = w->now + SIM_PING_RETRY_NS;
}

bool sim_run(sim_world *w, uint64_t until) {
  uint64_t budget = 2000000;
  while (budget-- > 0) {
    uint64_t next = UINT64_MAX;
    if (w->npkts)
      next = w->heap[0].at;
    for (int i = 0; i < 2; i++) {
      uint64_t d = kw__holepunch_next_deadline(&w->peers[i].hp);
      if (d < next)
        next = d;
      if (w->peers[i].next_retry < next)
        next = w->peers[i].next_retry;
    }
    if (next > until) {
      w->now = until;
      return true;
    }
    if (next > w->now)
      w->now = next;
    w->events++;
    while (w->npkts && w->heap[0].at <= w->now) {
      sim_pkt pkt;
      heap_pop(w, &pkt);
      deliver(w, &pkt);
    }
    for (int i = 0; i < 2; i++) {
      sim_peer *p = &w->peers[i];
      if (kw__holepunch_poll(&p->hp, w->now))
        run_round(w, p);
      if (p->next_retry <= w->now)
        retry_pings(w, p);
    }
  }
  return false;
}

const kw__path *sim_selected(const sim_world *w, int i) {
  return kw__paths_get(&w->peers[i].paths,
                       kw__paths_selected(&w->peers[i].paths));
}

kw_path_kind sim_selected_kind(const sim_world *w, int i) {
  const kw__path *p = sim_selected(w, i);
  if (!p)
    return KW_PATH_NONE;
  return p->relay ? KW_PATH_RELAY : KW_PATH_DIRECT;
}

void sim_inject(sim_world *w, const kw_sockaddr *src, const kw_sockaddr *dst,
                const uint8_t *data, size_t len) {
  enqueue(w, SIM_PK_WAN, -1, src, dst, data, len, &w->cfg.wan);
}

void sim_inject_relay(sim_world *w, int i, const uint8_t *data, size_t len) {
  kw_sockaddr none;
  memset(&none, 0, sizeof(none));
  enqueue(w, SIM_PK_RELAY, i, &none, &none, data, len, NULL);
}
