/* SPDX-License-Identifier: MIT */
/* The deterministic network simulator (see sim.h). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/sockaddr.h"
#include "core/stun.h"
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

/* ---- NAT ---------------------------------------------------------------- */

sim_nat_cfg sim_nat_masquerade(void) {
  sim_nat_cfg c;
  memset(&c, 0, sizeof(c));
  c.mapping = SIM_EI;
  c.filtering = SIM_APD;
  c.timeout_ns = 30 * SIM_S; /* nf_conntrack_udp_timeout */
  c.preserve_port = true;
  return c;
}

sim_nat_cfg sim_nat_random_fully(void) {
  sim_nat_cfg c;
  memset(&c, 0, sizeof(c));
  c.mapping = SIM_APD;
  c.filtering = SIM_APD;
  c.timeout_ns = 30 * SIM_S;
  c.random_port = true;
  return c;
}

void sim_nat_init(sim_nat *n, const sim_nat_cfg *cfg, const char *pub_ip,
                  uint16_t first_port) {
  memset(n, 0, sizeof(*n));
  n->cfg = *cfg;
  n->pub = sa(pub_ip);
  n->pub.port = 0;
  n->next_port = first_port ? first_port : 1024;
  n->rng.s = 0x6e6174ull ^ first_port;
  n->udp_down = cfg->udp_blocked;
}

static void nat_expire(sim_nat *n, uint64_t now) {
  /* next_expire is a lower bound of the earliest expiry (mappings are
   * only refreshed, which moves theirs later). */
  if (now < n->next_expire)
    return;
  uint64_t next = UINT64_MAX;
  for (size_t i = 0; i < SIM_MAX_MAPPINGS; i++) {
    if (!n->m[i].used)
      continue;
    if (now - n->m[i].last_out >= n->cfg.timeout_ns)
      n->m[i].used = false;
    else if (n->m[i].last_out + n->cfg.timeout_ns < next)
      next = n->m[i].last_out + n->cfg.timeout_ns;
  }
  n->next_expire = next;
}

void sim_nat_free(sim_nat *n) {
  for (size_t i = 0; i < SIM_MAX_MAPPINGS; i++) {
    free(n->m[i].perms);
    n->m[i].perms = NULL;
    n->m[i].n_perms = n->m[i].cap_perms = 0;
  }
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

static bool port_taken(const sim_nat *n, uint16_t port) {
  if (port == 0 || (n->fwd && port == n->fwd_port))
    return true;
  for (size_t i = 0; i < SIM_MAX_MAPPINGS; i++)
    if (n->m[i].used && n->m[i].ext_port == port)
      return true;
  return false;
}

static uint16_t nat_port(sim_nat *n, const kw_sockaddr *inside) {
  if (n->cfg.preserve_port && !port_taken(n, inside->port))
    return inside->port;
  for (int tries = 0; tries < 1000; tries++) {
    uint16_t p;
    if (n->cfg.random_port) {
      p = (uint16_t)(1024 + sim_rand(&n->rng) % (65536 - 1024));
    } else {
      if (n->next_port < 1024)
        n->next_port = 1024;
      p = n->next_port++;
    }
    if (!port_taken(n, p))
      return p;
  }
  return 0;
}

static bool fwd_peer(const sim_nat *n, const kw_sockaddr *a) {
  for (size_t i = 0; i < n->n_fwd_peers; i++)
    if (kw__sockaddr_equal(&n->fwd_peers[i], a))
      return true;
  return false;
}

bool sim_nat_out(sim_nat *n, const kw_sockaddr *src, const kw_sockaddr *dst,
                 uint64_t now, kw_sockaddr *ext_src) {
  if (n->udp_down) {
    n->dropped_udp++;
    return false;
  }
  nat_expire(n, now);
  *ext_src = n->pub;
  if (n->fwd && kw__sockaddr_equal(src, &n->fwd_inside) && fwd_peer(n, dst)) {
    ext_src->port = n->fwd_port;
    return true;
  }
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
    m->used = false; /* its port is free again */
    uint16_t port = nat_port(n, src);
    if (port == 0)
      return false;
    kw_sockaddr *keep = m->perms;
    size_t cap = m->cap_perms;
    memset(m, 0, sizeof(*m));
    m->perms = keep; /* reused: its memory stays */
    m->cap_perms = cap;
    m->used = true;
    m->inside = *src;
    m->dest = *dst;
    m->ext_port = port;
    n->mappings_made++;
    if (now + n->cfg.timeout_ns < n->next_expire)
      n->next_expire = now + n->cfg.timeout_ns;
  }
  m->last_out = now;
  bool known = false;
  for (size_t i = 0; i < m->n_perms; i++)
    known |= kw__sockaddr_equal(&m->perms[i], dst);
  if (!known && m->n_perms == m->cap_perms && m->cap_perms < SIM_MAX_PERMS) {
    size_t cap = m->cap_perms ? m->cap_perms * 2 : 8;
    kw_sockaddr *np = realloc(m->perms, cap * sizeof(*np));
    if (np) {
      m->perms = np;
      m->cap_perms = cap;
    }
  }
  if (!known && m->cap_perms) {
    if (m->n_perms == m->cap_perms) {
      memmove(m->perms, m->perms + 1, (m->cap_perms - 1) * sizeof(*m->perms));
      m->n_perms--;
    }
    m->perms[m->n_perms++] = *dst;
  }
  ext_src->port = m->ext_port;
  return true;
}

bool sim_nat_in(sim_nat *n, const kw_sockaddr *src, const kw_sockaddr *ext_dst,
                uint64_t now, kw_sockaddr *inside_dst) {
  if (n->udp_down) {
    n->dropped_udp++;
    return false;
  }
  nat_expire(n, now);
  if (!same_ip(ext_dst, &n->pub)) {
    n->dropped_in++;
    return false;
  }
  if (n->fwd && ext_dst->port == n->fwd_port) {
    if (!fwd_peer(n, src)) {
      if (n->n_fwd_peers == SIM_MAX_PERMS) {
        memmove(n->fwd_peers, n->fwd_peers + 1,
                (SIM_MAX_PERMS - 1) * sizeof(*n->fwd_peers));
        n->n_fwd_peers--;
      }
      n->fwd_peers[n->n_fwd_peers++] = *src;
    }
    *inside_dst = n->fwd_inside;
    return true;
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

void sim_nat_flush(sim_nat *n) {
  for (size_t i = 0; i < SIM_MAX_MAPPINGS; i++) {
    n->m[i].used = false;
    n->m[i].n_perms = 0;
  }
  n->n_fwd_peers = 0;
  n->flushes++;
}

void sim_nat_forward(sim_nat *n, const kw_sockaddr *inside, uint16_t ext_port) {
  n->fwd = true;
  n->fwd_inside = *inside;
  n->fwd_port = ext_port;
  n->n_fwd_peers = 0;
}

/* ---- packet heap ------------------------------------------------------- */

typedef struct sim_key sim_key;

static bool key_before(const sim_key *a, const sim_key *b) {
  return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void key_swap(sim_key *a, sim_key *b) {
  sim_key t = *a;
  *a = *b;
  *b = t;
}

/* A free slot for a packet about to be pushed, NULL if all are in flight. */
static sim_pkt *heap_slot(sim_world *w) {
  if (w->n_free == 0) {
    w->pkts_dropped_full++;
    return NULL;
  }
  return &w->pool[w->free_slots[w->n_free - 1]];
}

/* Pushes the packet just written into heap_slot's slot. */
static void heap_push(sim_world *w, const sim_pkt *p) {
  size_t i = w->npkts++;
  w->heap[i].at = p->at;
  w->heap[i].seq = p->seq;
  w->heap[i].slot = w->free_slots[--w->n_free];
  while (i > 0) {
    size_t up = (i - 1) / 2;
    if (!key_before(&w->heap[i], &w->heap[up]))
      break;
    key_swap(&w->heap[i], &w->heap[up]);
    i = up;
  }
}

/* Takes the earliest packet off the heap; its slot stays taken until
 * slot_free (so what is sent while it is handled cannot overwrite it). */
static uint32_t heap_pop(sim_world *w) {
  uint32_t slot = w->heap[0].slot;
  w->heap[0] = w->heap[--w->npkts];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < w->npkts && key_before(&w->heap[l], &w->heap[m]))
      m = l;
    if (r < w->npkts && key_before(&w->heap[r], &w->heap[m]))
      m = r;
    if (m == i)
      break;
    key_swap(&w->heap[i], &w->heap[m]);
    i = m;
  }
  return slot;
}

static void slot_free(sim_world *w, uint32_t slot) {
  w->free_slots[w->n_free++] = slot;
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
    sim_pkt *p = heap_slot(w);
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
    heap_push(w, p);
  }
}

/* ---- sending from a peer ----------------------------------------------- */

static int peer_index(const sim_world *w, const sim_peer *p) {
  return p == &w->peers[0] ? 0 : 1;
}

/* The local address of socket `sock` (0 the peer's own, 1.. extra). */
static kw_sockaddr sock_addr(const sim_peer *p, unsigned sock) {
  kw_sockaddr a = p->local;
  a.port = (uint16_t)(a.port + sock);
  return a;
}

static void peer_send_from(sim_world *w, sim_peer *p, unsigned sock,
                           const kw_sockaddr *dst, const uint8_t *data,
                           size_t len) {
  kw_sockaddr local = sock_addr(p, sock);
  /* Same LAN: straight there. */
  for (int i = 0; i < 2; i++) {
    sim_peer *q = &w->peers[i];
    if (q != p && q->lan == p->lan && kw__sockaddr_equal(&q->local, dst)) {
      enqueue(w, SIM_PK_LAN, i, &local, dst, data, len, &w->cfg.lan);
      return;
    }
  }
  kw_sockaddr src = local;
  if (p->nat >= 0) {
    sim_nat *n = &w->nats[p->nat];
    /* Private destinations that are not on our LAN are unroutable, and a
     * NAT does not hairpin. */
    if (same_ip(dst, &n->pub))
      return;
    for (int i = 0; i < 2; i++)
      if (w->peers[i].nat >= 0 && same_ip(dst, &w->peers[i].local))
        return;
    if (!sim_nat_out(n, &local, dst, w->now, &src))
      return;
  }
  enqueue(w, SIM_PK_WAN, -1, &src, dst, data, len, &w->cfg.wan);
}

static void peer_send(sim_world *w, sim_peer *p, const kw_sockaddr *dst,
                      const uint8_t *data, size_t len) {
  peer_send_from(w, p, 0, dst, data, len);
}

static void peer_send_relay(sim_world *w, sim_peer *p, const uint8_t *data,
                            size_t len) {
  kw_sockaddr none;
  memset(&none, 0, sizeof(none));
  enqueue(w, SIM_PK_RELAY, 1 - peer_index(w, p), &none, &none, data, len, NULL);
}

/* Sends on the selected path (a QUIC packet); false if it went via relay. */
static bool peer_send_selected(sim_world *w, sim_peer *p, const uint8_t *data,
                               size_t len) {
  const kw__path *sel = kw__paths_get(&p->rp.pt, kw__paths_selected(&p->rp.pt));
  if (sel && !sel->relay) {
    peer_send_from(w, p, sel->sock, &sel->addr, data, len);
    kw__rp_sent(&p->rp, w->now); /* as magicsock reports a send */
    return true;
  }
  peer_send_relay(w, p, data, len);
  return false;
}

static void send_stun(sim_world *w, sim_peer *p, const kw_sockaddr *server,
                      uint8_t tx[12]) {
  for (size_t i = 0; i < 12; i++)
    tx[i] = (uint8_t)sim_rand(&w->rng);
  uint8_t out[KW_STUN_MAX_BUILD];
  size_t n;
  if (kw__stun_build_request(out, sizeof(out), &n, tx, NULL, true) != KW_OK)
    return;
  p->st.stun_sent++;
  peer_send(w, p, server, out, n);
}

/* ---- peer logic: the shipped core/remote, fed like the endpoint does ---- */

static sim_peer *other(sim_world *w, sim_peer *p) {
  return &w->peers[1 - peer_index(w, p)];
}

static bool cb_send_ping(void *user, const kw_sockaddr *to,
                         const uint8_t tx_id[KW_DISCO_TXID_LEN], bool probe) {
  sim_peer *p = user;
  sim_world *w = p->world;
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_PING;
  m.ts_ms = unix_ms(w);
  memcpy(m.tx_id, tx_id, KW_DISCO_TXID_LEN);
  uint8_t out[KW_DISCO_MAX_LEN];
  size_t n;
  if (kw__disco_seal(&p->key, p->id, &m, out, sizeof(out), &n) != KW_OK)
    return false;
  p->st.pings_sent++;
  const kw_sockaddr *d = kw__rp_direct(&p->rp);
  if (!probe && d && kw__sockaddr_equal(d, to))
    p->st.live_pings++;
  peer_send(w, p, to, out, n);
  return true;
}

static bool seal_ping(sim_peer *p, const uint8_t tx_id[KW_DISCO_TXID_LEN],
                      uint8_t *out, size_t *n) {
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_PING;
  m.ts_ms = unix_ms(p->world);
  memcpy(m.tx_id, tx_id, KW_DISCO_TXID_LEN);
  return kw__disco_seal(&p->key, p->id, &m, out, KW_DISCO_MAX_LEN, n) == KW_OK;
}

/* Birthday probing: a Ping from socket `sock` (opened on first use). */
static bool cb_bday_send(void *user, unsigned sock, const kw_sockaddr *to,
                         const uint8_t tx_id[KW_DISCO_TXID_LEN]) {
  sim_peer *p = user;
  if (sock > SIM_MAX_SOCKS)
    return false;
  if (sock && !p->sock_open[sock]) {
    p->sock_open[sock] = true;
    p->n_open++;
    p->st.bday_socks++;
    if (p->n_open > p->st.bday_max_open)
      p->st.bday_max_open = p->n_open;
  }
  uint8_t out[KW_DISCO_MAX_LEN];
  size_t n;
  if (!seal_ping(p, tx_id, out, &n))
    return false;
  p->st.bday_pkts++;
  peer_send_from(p->world, p, sock, to, out, n);
  return true;
}

static void cb_bday_close(void *user, unsigned keep) {
  sim_peer *p = user;
  for (unsigned k = 1; k <= SIM_MAX_SOCKS; k++)
    if (k != keep && p->sock_open[k]) {
      p->sock_open[k] = false;
      p->n_open--;
    }
}

/* The NatHint beside a CallMeMaybe: our mapping behaviour (netcheck) and
 * reflexive address (STUN), as the endpoint sends it. */
static void send_nat_hint(sim_world *w, sim_peer *p) {
  if (p->nat_kind == KW_RP_NAT_UNKNOWN)
    return;
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_NAT_HINT;
  m.ts_ms = unix_ms(w);
  m.nat = (uint8_t)(p->nat_kind == KW_RP_NAT_EDM ? KW_DISCO_NAT_EDM
                                                 : KW_DISCO_NAT_EIM);
  m.has_addr = p->have_refl;
  m.addr = p->refl;
  uint8_t out[KW_DISCO_MAX_LEN];
  size_t n;
  if (kw__disco_seal(&p->key, p->id, &m, out, sizeof(out), &n) != KW_OK)
    return;
  peer_send_relay(w, p, out, n);
  p->st.nat_hints_sent++;
}

static bool cb_send_call_me_maybe(void *user) {
  sim_peer *p = user;
  sim_world *w = p->world;
  send_nat_hint(w, p);
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_CALL_ME_MAYBE;
  m.ts_ms = unix_ms(w);
  m.n_addrs = p->n_cands;
  memcpy(m.addrs, p->cands, p->n_cands * sizeof(*p->cands));
  uint8_t out[KW_DISCO_MAX_LEN];
  size_t n;
  if (kw__disco_seal(&p->key, p->id, &m, out, sizeof(out), &n) != KW_OK)
    return false;
  peer_send_relay(w, p, out, n);
  p->st.cmm_sent++;
  return true;
}

static void cb_path_changed(void *user) {
  sim_peer *p = user;
  p->st.path_changes++;
  if (kw__rp_direct(&p->rp)) {
    p->direct_since = p->world->now;
    if (p->first_direct_at == UINT64_MAX)
      p->first_direct_at = p->world->now;
  }
}

static void cb_random(void *user, uint8_t *buf, size_t n) {
  sim_peer *p = user;
  for (size_t i = 0; i < n; i++)
    buf[i] = (uint8_t)sim_rand(&p->world->rng);
}

static void cb_note(void *user, kw__rp_note what, const kw_sockaddr *addr,
                    uint64_t a, uint64_t b) {
  sim_peer *p = user;
  (void)addr;
  (void)a;
  (void)b;
  if (what == KW_RP_NOTE_ROUND)
    p->st.rounds++;
  else if (what == KW_RP_NOTE_BDAY_START)
    p->st.bday_starts++;
  else if (what == KW_RP_NOTE_BDAY_HIT)
    p->st.bday_hits++;
  else if (what == KW_RP_NOTE_DIRECT_LOST)
    p->st.fallbacks++;
}

/* The path fell silent under load: STUN now (the endpoint's
 * kw__stun_refresh). */
static void cb_recheck(void *user) {
  sim_peer *p = user;
  p->st.rechecks++;
  send_stun(p->world, p, &p->world->stun, p->stun_tx);
  p->next_stun = p->world->now + SIM_STUN_REFRESH_NS;
}

static const kw__rp_cbs sim_rp_cbs = {
    .send_ping = cb_send_ping,
    .send_call_me_maybe = cb_send_call_me_maybe,
    .path_changed = cb_path_changed,
    .random = cb_random,
    .note = cb_note,
    .bday_send = cb_bday_send,
    .bday_close = cb_bday_close,
    .recheck = cb_recheck,
};

/* Our candidate set (the endpoint's kw_endpoint_get_addr): a new STUN
 * address tells the remote's policy (a round); an address a Pong observed
 * joins without one (as the endpoint's note_observed). */
static void add_local_candidate(sim_world *w, sim_peer *p, const kw_sockaddr *a,
                                bool round) {
  for (size_t i = 0; i < p->n_cands; i++)
    if (kw__sockaddr_equal(&p->cands[i], a))
      return;
  if (p->n_cands == KW_MAX_DIRECT_ADDRS)
    return;
  p->cands[p->n_cands++] = *a;
  if (round)
    kw__rp_local_candidates(&p->rp, w->now);
}

/* A candidate the table could not take. */
static void count_refused(sim_peer *p, const kw_sockaddr *a) {
  if (kw__paths_find(&p->rp.pt, a) == KW_PATHS_NONE)
    p->st.paths_full++;
}

static void on_disco(sim_world *w, sim_peer *p, const kw_sockaddr *from,
                     unsigned sock, bool via_relay, const uint8_t *data,
                     size_t len) {
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
    if (kw__disco_pong_allow(&p->lim, from, w->now)) {
      uint8_t out[KW_DISCO_MAX_LEN];
      size_t n;
      if (kw__disco_seal_pong(&p->key, p->id, len, m.tx_id, from, unix_ms(w),
                              out, sizeof(out), &n) == KW_OK) {
        p->st.pongs_sent++;
        peer_send_from(w, p, sock, from, out, n); /* from where it came */
      }
    } else {
      p->st.pong_limited++;
    }
    kw__rp_ping_received_on(&p->rp, from, sock, w->now);
    count_refused(p, from);
    break;
  }
  case KW_DISCO_PONG:
    if (kw__rp_pong_received_on(&p->rp, m.tx_id, from, sock, w->now, NULL)) {
      p->st.pongs_recv++;
      add_local_candidate(w, p, &m.addr, false);
    }
    break;
  case KW_DISCO_CALL_ME_MAYBE:
    p->st.cmm_recv++;
    kw__rp_call_me_maybe(&p->rp, m.addrs, m.n_addrs, w->now);
    for (size_t i = 0; i < m.n_addrs; i++)
      count_refused(p, &m.addrs[i]);
    break;
  case KW_DISCO_NAT_HINT:
    p->st.nat_hints_recv++;
    kw__rp_remote_nat(&p->rp,
                      m.nat == KW_DISCO_NAT_EDM   ? KW_RP_NAT_EDM
                      : m.nat == KW_DISCO_NAT_EIM ? KW_RP_NAT_EIM
                                                  : KW_RP_NAT_UNKNOWN,
                      m.has_addr ? &m.addr : NULL, w->now);
    break;
  }
}

static void on_stun(sim_world *w, sim_peer *p, const kw_sockaddr *from,
                    const uint8_t *data, size_t len) {
  kw__stun_msg m;
  if (kw__stun_parse_response(data, len, NULL, &m) != KW_OK)
    return;
  p->st.stun_recv++;
  if (kw__sockaddr_equal(from, &w->stun) &&
      memcmp(m.txid, p->stun_tx, sizeof(p->stun_tx)) == 0) {
    if (p->have_refl && !kw__sockaddr_equal(&p->refl, &m.mapped)) {
      /* The NAT moved us (a flush, an expiry): the old reflexive address
       * is no candidate any more. */
      for (size_t i = 0; i < p->n_cands; i++)
        if (kw__sockaddr_equal(&p->cands[i], &p->refl)) {
          p->cands[i] = p->cands[--p->n_cands];
          break;
        }
    }
    p->have_refl = true;
    p->refl = m.mapped;
    add_local_candidate(w, p, &m.mapped, true);
  }
  const kw_sockaddr *servers[2] = {&w->stun, &w->stun2};
  for (int k = 0; k < 2; k++)
    if (p->nc_on && kw__sockaddr_equal(from, servers[k]) &&
        memcmp(m.txid, p->nc[k].tx, sizeof(p->nc[k].tx)) == 0) {
      p->nc[k].answered = true;
      p->nc[k].mapped = m.mapped;
    }
  if (w->cfg.netcheck_at_start && p->nat_kind == KW_RP_NAT_UNKNOWN) {
    /* netcheck's verdict goes to the policy (the endpoint's
     * kw_netcheck_report.mapping_varies_by_dest) */
    int v = sim_netcheck_result(w, peer_index(w, p), NULL);
    if (v >= 0) {
      p->nat_kind = v ? KW_RP_NAT_EDM : KW_RP_NAT_EIM;
      kw__rp_local_nat(&p->rp, (kw__rp_nat)p->nat_kind, w->now);
    }
  }
}

static const uint8_t data_magic[8] = {'S', 'I', 'M', 'D', 'A', 'T', 'A', 0};
static const uint8_t ack_magic[8] = {'S', 'I', 'M', 'A', 'C', 'K', 0, 0};

static void put32(uint8_t *b, uint32_t v) {
  b[0] = (uint8_t)(v >> 24);
  b[1] = (uint8_t)(v >> 16);
  b[2] = (uint8_t)(v >> 8);
  b[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
         b[3];
}

static void on_data(sim_world *w, sim_peer *p, bool via_relay,
                    const uint8_t *data) {
  sim_xfer *x = &w->xfer;
  uint32_t seq = get32(data + 8);
  if (!x->on || seq >= x->n)
    return;
  if (memcmp(data, data_magic, 8) == 0) {
    if (peer_index(w, p) == x->from)
      return;
    if (via_relay)
      x->recv_relay++;
    else
      x->recv_direct++;
    if (!x->delivered[seq]) {
      x->delivered[seq] = 1;
      x->n_delivered++;
      uint64_t gap = w->now - x->last_progress;
      if (gap > x->max_gap)
        x->max_gap = gap;
      x->last_progress = w->now;
      if (x->n_delivered == x->n)
        x->done_at = w->now;
    }
    uint8_t ack[12];
    memcpy(ack, ack_magic, 8);
    put32(ack + 8, seq);
    peer_send_selected(w, p, ack, sizeof(ack));
  } else if (peer_index(w, p) == x->from) {
    if (!x->acked[seq]) {
      x->acked[seq] = 1;
      while (x->low_unacked < x->next_new && x->acked[x->low_unacked])
        x->low_unacked++;
    }
  }
}

static void peer_recv(sim_world *w, sim_peer *p, const kw_sockaddr *from,
                      unsigned sock, bool via_relay, const uint8_t *data,
                      size_t len) {
  if (!via_relay && sock == 0 && kw__stun_is(data, len) &&
      (kw__sockaddr_equal(from, &w->stun) ||
       kw__sockaddr_equal(from, &w->stun2))) {
    on_stun(w, p, from, data, len);
    return;
  }
  if (kw__disco_is(data, len)) {
    on_disco(w, p, from, sock, via_relay, data, len);
    return;
  }
  if (len == 12 &&
      (memcmp(data, data_magic, 8) == 0 || memcmp(data, ack_magic, 8) == 0)) {
    /* QUIC packets, authenticated: they confirm the path they came by
     * (the endpoint's kw__remote_confirm_path). */
    kw__rp_packet(&p->rp, via_relay ? NULL : from, w->now);
    on_data(w, p, via_relay, data);
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
  p->world = w;
  kw__rp_init(&p->rp, &sim_rp_cbs, p);
  p->first_direct_at = UINT64_MAX;
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
  w->pool = malloc(SIM_MAX_PKTS * sizeof(*w->pool)); /* written before read */
  w->heap = calloc(SIM_MAX_PKTS, sizeof(*w->heap));
  w->free_slots = calloc(SIM_MAX_PKTS, sizeof(*w->free_slots));
  if (!w->pool || !w->heap || !w->free_slots)
    return false;
  for (uint32_t i = 0; i < SIM_MAX_PKTS; i++)
    w->free_slots[i] = SIM_MAX_PKTS - 1 - i;
  w->n_free = SIM_MAX_PKTS;
  w->stun = sa("198.19.255.1:3478");
  w->stun2 = sa("198.19.255.2:3478");
  sim_nat_init(&w->nats[0], &cfg->natcfg[0], "198.19.0.1:0",
               (uint16_t)(1024 + sim_rand(&w->rng) % 30000));
  sim_nat_init(&w->nats[1], &cfg->natcfg[1], "198.19.0.2:0",
               (uint16_t)(1024 + sim_rand(&w->rng) % 30000));
  w->nats[0].rng.s = sim_rand(&w->rng);
  w->nats[1].rng.s = sim_rand(&w->rng);
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
  for (int i = 0; i < 2; i++)
    if (cfg->portmap[i] && w->peers[i].nat >= 0)
      sim_nat_forward(&w->nats[w->peers[i].nat], &w->peers[i].local,
                      cfg->portmap[i]);
  if (kw__disco_key_derive(a->sk, b->id, &a->key) != KW_OK ||
      kw__disco_key_derive(b->sk, a->id, &b->key) != KW_OK)
    return false;
  return true;
}

void sim_world_free(sim_world *w) {
  sim_nat_free(&w->nats[0]);
  sim_nat_free(&w->nats[1]);
  for (int i = 0; i < 2; i++) {
    kw__rp_free(&w->peers[i].rp);
    kw__disco_replay_free(&w->peers[i].replay);
    kw__disco_pong_limiter_free(&w->peers[i].lim);
    kw__addr_filter_free(&w->peers[i].filter);
  }
  free(w->pool);
  free(w->heap);
  free(w->free_slots);
  w->pool = NULL;
  w->heap = NULL;
  w->free_slots = NULL;
  free(w->xfer.sent_at);
  free(w->xfer.acked);
  free(w->xfer.delivered);
  memset(&w->xfer, 0, sizeof(w->xfer));
}

bool sim_start(sim_world *w) {
  for (int i = 0; i < 2; i++) {
    sim_peer *p = &w->peers[i];
    p->cands[p->n_cands++] = p->local;
    if (w->cfg.portmap[i] && p->nat >= 0) {
      /* The port mapping the router granted (UPnP/NAT-PMP). */
      kw_sockaddr m = w->nats[p->nat].pub;
      m.port = w->cfg.portmap[i];
      p->cands[p->n_cands++] = m;
    }
    /* The QUIC connection came up through the relay, as the endpoint
     * sees one: dialled by ticket (the relay), its packets authenticated
     * on it, its handshake done. */
    kw__rp_set_keyed(&p->rp, w->now);
    (void)kw__rp_conn_open(&p->rp);
    (void)kw__rp_candidate(&p->rp, NULL, KW_PSRC_APP, w->now);
    kw__rp_packet(&p->rp, NULL, w->now);
    if (kw__rp_on_relay(&p->rp) == false)
      return false;
    if (w->cfg.no_birthday)
      kw__rp_set_birthday(&p->rp, false);
    kw__rp_conn_up(&p->rp, w->now);
    send_stun(w, p, &w->stun, p->stun_tx);
    p->next_retry = w->now + SIM_PING_RETRY_NS;
    if (w->cfg.netcheck_at_start)
      sim_netcheck_start(w, i);
  }
  return true;
}

static void stun_serve(sim_world *w, sim_pkt *pkt) {
  uint8_t out[KW_STUN_MAX_BUILD];
  size_t n = 0;
  if (kw__stun_serve(pkt->data, pkt->len, &pkt->src, NULL, out, sizeof(out), &n,
                     NULL) == KW_OK &&
      n > 0)
    enqueue(w, SIM_PK_WAN, -1, &pkt->dst, &pkt->src, out, n, &w->cfg.wan);
}

static void deliver(sim_world *w, sim_pkt *pkt) {
  switch (pkt->kind) {
  case SIM_PK_RELAY:
    peer_recv(w, &w->peers[pkt->to_peer], &pkt->src, 0, true, pkt->data,
              pkt->len);
    return;
  case SIM_PK_LAN:
    peer_recv(w, &w->peers[pkt->to_peer], &pkt->src, 0, false, pkt->data,
              pkt->len);
    return;
  case SIM_PK_WAN:
    break;
  }
  if (kw__sockaddr_equal(&pkt->dst, &w->stun) ||
      kw__sockaddr_equal(&pkt->dst, &w->stun2)) {
    stun_serve(w, pkt);
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
    for (int i = 0; i < 2; i++) {
      sim_peer *q = &w->peers[i];
      if (q->nat != n || !same_ip(&q->local, &inside) ||
          inside.port < q->local.port ||
          inside.port > q->local.port + SIM_MAX_SOCKS)
        continue;
      unsigned sock = (unsigned)(inside.port - q->local.port);
      if (sock && !q->sock_open[sock])
        return; /* closed: the host drops it */
      peer_recv(w, q, &pkt->src, sock, false, pkt->data, pkt->len);
      return;
    }
    return;
  }
  for (int i = 0; i < 2; i++)
    if (w->peers[i].nat < 0 &&
        kw__sockaddr_equal(&w->peers[i].local, &pkt->dst)) {
      peer_recv(w, &w->peers[i], &pkt->src, 0, false, pkt->data, pkt->len);
      return;
    }
}

static void stun_tick(sim_world *w, sim_peer *p) {
  /* Like the endpoint: STUN again every second until a reflexive address
   * is known, then every SIM_STUN_REFRESH_NS (which also keeps an
   * endpoint-independent mapping alive). */
  if (!p->have_refl || w->now >= p->next_stun) {
    send_stun(w, p, &w->stun, p->stun_tx);
    p->next_stun = w->now + SIM_STUN_REFRESH_NS;
  }
  p->next_retry = w->now + SIM_PING_RETRY_NS;
}

static void netcheck_step(sim_world *w, sim_peer *p) {
  const kw_sockaddr *servers[2] = {&w->stun, &w->stun2};
  bool more = false;
  for (int k = 0; k < 2; k++) {
    if (p->nc[k].answered || p->nc[k].sends >= SIM_NC_SENDS)
      continue;
    p->nc[k].sends++;
    send_stun(w, p, servers[k], p->nc[k].tx);
    more = true;
  }
  p->nc_next = more ? w->now + SIM_NC_EVERY_NS : UINT64_MAX;
}

static void xfer_tick(sim_world *w) {
  sim_xfer *x = &w->xfer;
  x->next_tick = w->now + x->interval_ns;
  if (x->low_unacked >= x->n) {
    x->next_tick = UINT64_MAX; /* everything acknowledged */
    return;
  }
  sim_peer *p = &w->peers[x->from];
  uint8_t pkt[12];
  memcpy(pkt, data_magic, 8);
  int resent = 0;
  /* resend_due: a lower bound of the earliest unacknowledged packet's
   * time-out (sends only add later ones). */
  uint64_t due = UINT64_MAX;
  uint32_t s = x->low_unacked;
  for (; w->now >= x->resend_due && s < x->next_new &&
         resent < SIM_XFER_RESEND_PER_TICK;
       s++) {
    if (x->acked[s])
      continue;
    if (w->now - x->sent_at[s] < SIM_XFER_RTO_NS) {
      if (x->sent_at[s] + SIM_XFER_RTO_NS < due)
        due = x->sent_at[s] + SIM_XFER_RTO_NS;
      continue;
    }
    put32(pkt + 8, s);
    x->sent_at[s] = w->now;
    x->resent++;
    resent++;
    if (peer_send_selected(w, p, pkt, sizeof(pkt)))
      x->sent_direct++;
    else
      x->sent_relay++;
    if (w->now + SIM_XFER_RTO_NS < due)
      due = w->now + SIM_XFER_RTO_NS;
  }
  if (w->now >= x->resend_due)
    /* A full scan found the earliest; a cut-short one rescans next tick. */
    x->resend_due = s >= x->next_new ? due : w->now;
  if (x->next_new < x->n && x->next_new - x->low_unacked < SIM_XFER_WINDOW) {
    uint32_t nw = x->next_new++;
    put32(pkt + 8, nw);
    x->sent_at[nw] = w->now;
    if (peer_send_selected(w, p, pkt, sizeof(pkt)))
      x->sent_direct++;
    else
      x->sent_relay++;
    if (w->now + SIM_XFER_RTO_NS < x->resend_due)
      x->resend_due = w->now + SIM_XFER_RTO_NS;
  }
}

bool sim_run(sim_world *w, uint64_t until) {
  uint64_t budget = 2000000;
  while (budget-- > 0) {
    uint64_t next = UINT64_MAX;
    if (w->npkts)
      next = w->heap[0].at;
    for (int i = 0; i < 2; i++) {
      sim_peer *p = &w->peers[i];
      uint64_t d = kw__rp_next_deadline(&p->rp);
      if (d < next)
        next = d;
      if (p->next_retry < next)
        next = p->next_retry;
      if (p->nc_on && p->nc_next < next)
        next = p->nc_next;
    }
    if (w->xfer.on && w->xfer.next_tick < next)
      next = w->xfer.next_tick;
    if (next > until) {
      w->now = until;
      return true;
    }
    if (next > w->now)
      w->now = next;
    w->events++;
    while (w->npkts && w->heap[0].at <= w->now) {
      uint32_t slot = heap_pop(w);
      deliver(w, &w->pool[slot]);
      slot_free(w, slot);
    }
    for (int i = 0; i < 2; i++) {
      sim_peer *p = &w->peers[i];
      if (kw__rp_next_deadline(&p->rp) <= w->now)
        kw__rp_handle_timeout(&p->rp, w->now);
      if (p->next_retry <= w->now)
        stun_tick(w, p);
      if (p->nc_on && p->nc_next <= w->now)
        netcheck_step(w, p);
    }
    if (w->xfer.on && w->xfer.next_tick <= w->now)
      xfer_tick(w);
  }
  return false;
}

const kw__path *sim_selected(const sim_world *w, int i) {
  return kw__paths_get(&w->peers[i].rp.pt,
                       kw__paths_selected(&w->peers[i].rp.pt));
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

bool sim_xfer_start(sim_world *w, int from, uint32_t n, uint64_t interval_ns) {
  sim_xfer *x = &w->xfer;
  free(x->sent_at);
  free(x->acked);
  free(x->delivered);
  memset(x, 0, sizeof(*x));
  x->sent_at = calloc(n ? n : 1, sizeof(*x->sent_at));
  x->acked = calloc(n ? n : 1, 1);
  x->delivered = calloc(n ? n : 1, 1);
  if (!x->sent_at || !x->acked || !x->delivered)
    return false;
  x->on = true;
  x->from = from;
  x->n = n;
  x->interval_ns = interval_ns ? interval_ns : SIM_MS;
  x->started = x->last_progress = w->now;
  x->next_tick = w->now;
  return true;
}

bool sim_xfer_complete(const sim_world *w) {
  return w->xfer.on && w->xfer.n_delivered == w->xfer.n;
}

void sim_netcheck_start(sim_world *w, int i) {
  sim_peer *p = &w->peers[i];
  memset(p->nc, 0, sizeof(p->nc));
  p->nc_on = true;
  p->nc_next = w->now;
}

int sim_netcheck_result(const sim_world *w, int i, kw_sockaddr *first) {
  const sim_peer *p = &w->peers[i];
  /* As src/endpoint/netcheck.c: IPv4 answers compared with the first. */
  int servers = 0, distinct = 0;
  kw_sockaddr f;
  memset(&f, 0, sizeof(f));
  for (int k = 0; k < 2; k++) {
    if (!p->nc[k].answered || p->nc[k].mapped.family != 4)
      continue;
    servers++;
    if (!f.family)
      f = p->nc[k].mapped;
    else if (!kw__sockaddr_equal(&f, &p->nc[k].mapped))
      distinct = 1;
  }
  if (first)
    *first = f;
  return servers >= 2 ? distinct : -1;
}
