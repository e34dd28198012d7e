/* SPDX-License-Identifier: MIT */
/* Simulator twins of the NAT-lab cases (tests/natlab): every case the lab
 * runs with real namespaces, iptables NAT and keyway binaries has a twin
 * here that runs the same topology in the deterministic simulator
 * (tests/sim) over many seeds, driving core/disco, core/paths,
 * core/holepunch and core/stun the way the io layer does. Each twin
 * asserts the final path kind, when (in virtual time) the path became
 * direct, and that a transfer running through the scenario delivered every
 * packet. The distributions are printed as information; pass/fail only
 * uses bounds that follow from the rules (docs/ARCHITECTURE.md section 4),
 * never wall time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../sim/sim.h"

#define SEEDS 100

static kw_sockaddr A(const char *s) {
  kw_sockaddr a;
  assert_int_equal(kw_sockaddr_parse(s, &a), KW_OK);
  return a;
}

static bool addr_is(const kw_sockaddr *a, const char *s) {
  kw_sockaddr b = A(s);
  return kw__sockaddr_equal(a, &b);
}

/* ---- the lab's router modes ---------------------------------------------- */

typedef enum router {
  R_PUBLIC = 0, /* no NAT: a host on the public segment */
  R_EIM,        /* MASQUERADE */
  R_EDM,        /* MASQUERADE --random-fully */
  R_UDPBLOCK,   /* MASQUERADE + FORWARD -p udp DROP */
} router;

static const char *router_name(router r) {
  switch (r) {
  case R_PUBLIC:
    return "public";
  case R_EIM:
    return "EIM";
  case R_EDM:
    return "EDM";
  case R_UDPBLOCK:
    return "UDP-blocked";
  }
  return "?";
}

static void set_router(sim_cfg *c, int i, router r) {
  c->nat[i] = r != R_PUBLIC;
  c->natcfg[i] = r == R_EDM ? sim_nat_random_fully() : sim_nat_masquerade();
  c->natcfg[i].udp_blocked = r == R_UDPBLOCK;
}

/* ---- a twin: topology, events, a transfer -------------------------------- */

typedef enum event_kind {
  EV_NONE = 0,
  EV_FLUSH,    /* conntrack -F on every router */
  EV_UDP_DOWN, /* iptables -I FORWARD -p udp -j DROP on router `router` */
  EV_UDP_UP,   /* ... and deleted again */
  EV_REBIND,   /* router `router` maps to new ports (MASQUERADE
                * --to-ports 40000-40999) and conntrack -F */
} event_kind;

typedef struct event {
  event_kind kind;
  uint64_t at; /* at + a per-seed random part of SPREAD */
  int router;
} event;

/* Events happen at a random moment within this much after their time. */
#define SPREAD (2 * SIM_S)

typedef struct twin {
  const char *name;
  router r[2];
  bool same_lan;
  uint16_t portmap[2];
  uint64_t wan_ns, relay_ns; /* 0: sim defaults */
  bool no_jitter;            /* else 0..10 ms per seed */
  double loss, dup;
  event ev[2];
  /* transfer: peer 1 (the dialer) sends xfer_pkts, one every xfer_every,
   * from xfer_at */
  uint32_t xfer_pkts;
  uint64_t xfer_at, xfer_every;
  uint64_t run_ns;
} twin;

typedef struct result {
  uint64_t ev_at[2]; /* when the events happened */
  kw_path_kind kind[2];
  uint64_t direct_at[2]; /* first direct selection, UINT64_MAX: never */
  uint64_t both_direct_at;
  bool complete;
  uint64_t xfer_done_at, max_gap;
  uint64_t sent_direct, sent_relay, resent;
  /* after the first event */
  bool relay_after_event;   /* both peers on the relay at some point */
  uint64_t relay_at;        /* when both were first on the relay */
  uint64_t direct_again_at; /* both direct again after that (or after a
                               flush), UINT64_MAX: never */
  uint64_t fallbacks;
  /* both direct after the first event with peer 0 on another address
   * than before it (UINT64_MAX: never) */
  uint64_t followed_at;
  kw_sockaddr sel_addr[2];
  sim_stats st[2];
  uint64_t events;
} result;

static sim_world W; /* large: keep it off the stack */

#define REBIND_PORT 40000

static void apply(sim_world *w, const event *e) {
  switch (e->kind) {
  case EV_NONE:
    break;
  case EV_FLUSH:
    sim_nat_flush(&w->nats[0]);
    sim_nat_flush(&w->nats[1]);
    break;
  case EV_UDP_DOWN:
    w->nats[e->router].udp_down = true;
    break;
  case EV_UDP_UP:
    w->nats[e->router].udp_down = false;
    break;
  case EV_REBIND:
    w->nats[e->router].cfg.preserve_port = false;
    w->nats[e->router].cfg.random_port = false;
    w->nats[e->router].next_port = REBIND_PORT;
    sim_nat_flush(&w->nats[e->router]);
    break;
  }
}

static bool both(const sim_world *w, kw_path_kind k) {
  return sim_selected_kind(w, 0) == k && sim_selected_kind(w, 1) == k;
}

static result run_twin(const twin *t, uint64_t seed) {
  sim_cfg cfg;
  sim_cfg_default(&cfg, seed);
  set_router(&cfg, 0, t->r[0]);
  set_router(&cfg, 1, t->r[1]);
  cfg.same_lan = t->same_lan;
  cfg.portmap[0] = t->portmap[0];
  cfg.portmap[1] = t->portmap[1];
  /* What varies per seed besides the world's own draws. */
  sim_rng v = {seed ^ 0x7477696e73ull};
  if (t->wan_ns)
    cfg.wan.delay_ns = t->wan_ns;
  cfg.wan.jitter_ns =
      t->no_jitter ? 0 : (uint64_t)(sim_uniform(&v) * 10.0 * SIM_MS);
  if (t->relay_ns)
    cfg.relay_ns = t->relay_ns;
  cfg.wan.loss = t->loss;
  cfg.wan.dup = t->dup;
  result r;
  memset(&r, 0, sizeof(r));
  event ev[2] = {t->ev[0], t->ev[1]};
  for (int i = 0; i < 2; i++) {
    if (ev[i].kind != EV_NONE)
      ev[i].at += (uint64_t)(sim_uniform(&v) * (double)SPREAD);
    r.ev_at[i] = ev[i].at;
  }
  sim_world *w = &W;
  assert_true(sim_world_init(w, &cfg));
  assert_true(sim_start(w));
  r.both_direct_at = r.relay_at = r.direct_again_at = UINT64_MAX;
  r.followed_at = UINT64_MAX;
  kw_sockaddr before0;
  memset(&before0, 0, sizeof(before0));
  const uint64_t step = 10 * SIM_MS;
  size_t next_ev = 0;
  bool xfer_on = false;
  for (uint64_t now = step; now <= t->run_ns; now += step) {
    if (t->xfer_pkts && !xfer_on && now > t->xfer_at) {
      assert_true(sim_run(w, t->xfer_at));
      assert_true(sim_xfer_start(w, 1, t->xfer_pkts, t->xfer_every));
      xfer_on = true;
    }
    if (next_ev < 2 && ev[next_ev].kind != EV_NONE && now > ev[next_ev].at) {
      assert_true(sim_run(w, ev[next_ev].at));
      if (next_ev == 0 && sim_selected_kind(w, 0) == KW_PATH_DIRECT)
        before0 = sim_selected(w, 0)->addr;
      apply(w, &ev[next_ev]);
      next_ev++;
    }
    assert_true(sim_run(w, now));
    if (r.both_direct_at == UINT64_MAX && both(w, KW_PATH_DIRECT))
      r.both_direct_at = now;
    if (ev[0].kind != EV_NONE && next_ev > 0) {
      if (r.followed_at == UINT64_MAX && both(w, KW_PATH_DIRECT) &&
          !kw__sockaddr_equal(&sim_selected(w, 0)->addr, &before0))
        r.followed_at = now;
      if (!r.relay_after_event && both(w, KW_PATH_RELAY)) {
        r.relay_after_event = true;
        r.relay_at = now;
      }
      size_t n_ev = ev[1].kind != EV_NONE ? 2 : 1;
      if (r.relay_after_event && next_ev >= n_ev &&
          r.direct_again_at == UINT64_MAX && both(w, KW_PATH_DIRECT))
        r.direct_again_at = now;
    }
  }
  for (int i = 0; i < 2; i++) {
    r.kind[i] = sim_selected_kind(w, i);
    r.direct_at[i] = w->peers[i].first_direct_at;
    r.st[i] = w->peers[i].st;
    r.fallbacks += w->peers[i].st.fallbacks;
    const kw__path *p = sim_selected(w, i);
    if (p && !p->relay)
      r.sel_addr[i] = p->addr;
    /* Rules that hold in every scenario. */
    assert_int_equal(w->peers[i].st.relay_dropped, 0);
    assert_true(kw__paths_count_ip(&w->peers[i].paths) <= KW_PATHS_MAX_IP);
    assert_true(kw__paths_count_inactive(&w->peers[i].paths) <=
                KW_PATHS_MAX_INACTIVE);
  }
  r.complete = !t->xfer_pkts || sim_xfer_complete(w);
  r.xfer_done_at = w->xfer.done_at;
  r.max_gap = w->xfer.max_gap;
  r.sent_direct = w->xfer.sent_direct;
  r.sent_relay = w->xfer.sent_relay;
  r.resent = w->xfer.resent;
  r.events = w->events;
  assert_int_equal(w->pkts_dropped_full, 0);
  sim_world_free(w);
  return r;
}

/* ---- reporting ----------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Prints min / median / 95th percentile / max of v[0..n) in ms (values of
 * UINT64_MAX are "never" and counted apart). */
static void report(const char *twin_name, const char *what, uint64_t *v,
                   size_t n) {
  size_t never = 0;
  for (size_t i = 0; i < n; i++)
    never += v[i] == UINT64_MAX;
  qsort(v, n, sizeof(*v), cmp_u64);
  size_t m = n - never;
  if (m == 0) {
    print_message("  %-28s %-24s never (%zu seeds)\n", twin_name, what, n);
    return;
  }
  char nv[32] = "";
  if (never)
    snprintf(nv, sizeof(nv), "  never: %zu", never);
  print_message("  %-28s %-24s min %6.0f  p50 %6.0f  p95 %6.0f  max %6.0f ms"
                "%s\n",
                twin_name, what, (double)v[0] / 1e6, (double)v[m / 2] / 1e6,
                (double)v[(m * 95) / 100] / 1e6, (double)v[m - 1] / 1e6, nv);
}

#define FAIL_SEED(t, seed, ...)                                                \
  do {                                                                         \
    print_error("%s seed %llu: ", (t)->name, (unsigned long long)(seed));      \
    print_error(__VA_ARGS__);                                                  \
    print_error("\n");                                                         \
    fail();                                                                    \
  } while (0)

static uint64_t seed_of(int k) {
  return 1000003ull * (uint64_t)(k + 1);
}

/* ---- the plain cases: final path kind, direct when, data complete -------- */

typedef struct expect {
  kw_path_kind kind;
  uint64_t direct_by;  /* both direct by this time (virtual), if direct */
  const char *addr[2]; /* if set: the address peer i ends up on */
} expect;

static void check_twin(const twin *t, expect want) {
  static uint64_t at[SEEDS], gap[SEEDS], done[SEEDS];
  for (int k = 0; k < SEEDS; k++) {
    uint64_t seed = seed_of(k);
    result r = run_twin(t, seed);
    for (int i = 0; i < 2; i++)
      if (r.kind[i] != want.kind)
        FAIL_SEED(t, seed, "peer %d ended %s, want %s", i,
                  kw_path_kind_name(r.kind[i]), kw_path_kind_name(want.kind));
    if (want.kind == KW_PATH_DIRECT && r.both_direct_at > want.direct_by)
      FAIL_SEED(t, seed, "both direct only at %llu ms",
                (unsigned long long)(r.both_direct_at / SIM_MS));
    if (want.kind == KW_PATH_RELAY) {
      /* Never direct, not even for a moment: nothing to fall back from. */
      if (r.direct_at[0] != UINT64_MAX || r.direct_at[1] != UINT64_MAX)
        FAIL_SEED(t, seed, "went direct where it cannot");
      assert_int_equal(r.sent_direct, 0);
    }
    if (!r.complete)
      FAIL_SEED(t, seed, "transfer incomplete");
    if (want.kind == KW_PATH_DIRECT && t->xfer_at >= want.direct_by)
      /* The transfer started after the path was direct: it ran there. */
      assert_true(r.sent_direct > 0 && r.sent_relay == 0);
    assert_int_equal(r.fallbacks, 0); /* a healthy path is never given up */
    for (int i = 0; i < 2; i++)
      if (want.addr[i] && !addr_is(&r.sel_addr[i], want.addr[i]))
        FAIL_SEED(t, seed, "peer %d not on %s", i, want.addr[i]);
    at[k] = r.both_direct_at;
    gap[k] = r.max_gap;
    done[k] = r.xfer_done_at - t->xfer_at;
  }
  if (want.kind == KW_PATH_DIRECT)
    report(t->name, "both direct at", at, SEEDS);
  report(t->name, "transfer took", done, SEEDS);
  report(t->name, "longest delivery gap", gap, SEEDS);
}

/* A small transfer through every plain case (the lab pipes 16 MiB). */
#define XFER_PKTS 500
#define XFER_EVERY (4 * SIM_MS)

static void twin_no_nat_direct(void **state) {
  (void)state;
  twin t = {.name = "no NAT",
            .r = {R_PUBLIC, R_PUBLIC},
            .xfer_pkts = XFER_PKTS,
            .xfer_at = 3 * SIM_S,
            .xfer_every = XFER_EVERY,
            .run_ns = 10 * SIM_S};
  check_twin(&t, (expect){KW_PATH_DIRECT, 1 * SIM_S, {NULL, NULL}});
}

static void twin_eim_eim_direct(void **state) {
  (void)state;
  /* The first Pings die on the far NAT (no mapping toward us yet); the
   * other side's Pings then open both ways: direct within the 3 tries of
   * the first round. */
  twin t = {.name = "EIM/EIM",
            .r = {R_EIM, R_EIM},
            .xfer_pkts = XFER_PKTS,
            .xfer_at = 3 * SIM_S,
            .xfer_every = XFER_EVERY,
            .run_ns = 10 * SIM_S};
  check_twin(&t, (expect){KW_PATH_DIRECT, 3 * SIM_S, {NULL, NULL}});
}

static void twin_eim_eim_lossy_direct(void **state) {
  (void)state;
  /* Not a lab case (netem is missing there): EIM/EIM with 3% loss and 1%
   * duplication each way. A lost Ping is retried a second later; direct
   * well before the first 60 s upgrade check. */
  twin t = {.name = "EIM/EIM lossy",
            .r = {R_EIM, R_EIM},
            .loss = 0.03,
            .dup = 0.01,
            .xfer_pkts = XFER_PKTS,
            .xfer_at = 1 * SIM_S,
            .xfer_every = XFER_EVERY,
            .run_ns = 15 * SIM_S};
  check_twin(&t, (expect){KW_PATH_DIRECT, KW_HP_UPGRADE_NS, {NULL, NULL}});
}

static void twin_eim_public_direct(void **state) {
  (void)state;
  twin t = {.name = "EIM/public",
            .r = {R_EIM, R_PUBLIC},
            .xfer_pkts = XFER_PKTS,
            .xfer_at = 3 * SIM_S,
            .xfer_every = XFER_EVERY,
            .run_ns = 10 * SIM_S};
  check_twin(&t, (expect){KW_PATH_DIRECT, 3 * SIM_S, {NULL, NULL}});
}

static void twin_eim_edm_relay(void **state) {
  (void)state;
  /* The EDM side's Pings leave from a fresh port per destination, which
   * the EIM side's conntrack filtering drops; the EIM side's Pings reach
   * a port the EDM side never mapped toward it. Connected, via relay,
   * through a 60 s upgrade check. */
  twin t = {.name = "EIM/EDM",
            .r = {R_EIM, R_EDM},
            .xfer_pkts = XFER_PKTS,
            .xfer_at = 1 * SIM_S,
            .xfer_every = XFER_EVERY,
            .run_ns = 70 * SIM_S};
  check_twin(&t, (expect){KW_PATH_RELAY, 0, {NULL, NULL}});
}

static void twin_edm_edm_relay(void **state) {
  (void)state;
  twin t = {.name = "EDM/EDM",
            .r = {R_EDM, R_EDM},
            .xfer_pkts = XFER_PKTS,
            .xfer_at = 1 * SIM_S,
            .xfer_every = XFER_EVERY,
            .run_ns = 70 * SIM_S};
  check_twin(&t, (expect){KW_PATH_RELAY, 0, {NULL, NULL}});
}

static void twin_udp_blocked_relay(void **state) {
  (void)state;
  twin t = {.name = "UDP-blocked/EIM",
            .r = {R_UDPBLOCK, R_EIM},
            .xfer_pkts = XFER_PKTS,
            .xfer_at = 1 * SIM_S,
            .xfer_every = XFER_EVERY,
            .run_ns = 70 * SIM_S};
  check_twin(&t, (expect){KW_PATH_RELAY, 0, {NULL, NULL}});
  /* And the blocked side never learnt a reflexive address. */
  result r = run_twin(&t, 1);
  assert_int_equal(r.st[0].stun_recv, 0);
  assert_true(r.st[0].stun_sent > 0);
  assert_true(r.st[1].stun_recv > 0);
}

static void twin_same_nat_lan_direct(void **state) {
  (void)state;
  twin t = {.name = "two hosts behind one NAT",
            .r = {R_EIM, R_EIM},
            .same_lan = true,
            .xfer_pkts = XFER_PKTS,
            .xfer_at = 3 * SIM_S,
            .xfer_every = XFER_EVERY,
            .run_ns = 10 * SIM_S};
  /* Over their LAN addresses, not the NAT's (which does not hairpin). */
  check_twin(&t, (expect){KW_PATH_DIRECT,
                          1 * SIM_S,
                          {"198.18.1.3:41641", "198.18.1.2:41641"}});
}

/* ---- mid-transfer events ------------------------------------------------- */

/* The lab's mid-transfer cases: 64 MiB at about 20 MiB/s, the event 1.5 s
 * in. Here: 1000 packets, one every 10 ms (10 s), from t = 3 s (direct by
 * then), the event at a random moment 1.5 to 3.5 s in. */
#define LONG_PKTS 1000
#define LONG_EVERY (10 * SIM_MS)
#define LONG_AT (3 * SIM_S)
#define EVENT_AT (LONG_AT + 1500 * SIM_MS)

static void twin_conntrack_flush_mid_transfer(void **state) {
  (void)state;
  twin t = {.name = "EIM/EIM conntrack -F",
            .r = {R_EIM, R_EIM},
            .ev = {{EV_FLUSH, EVENT_AT, 0}, {EV_NONE, 0, 0}},
            .xfer_pkts = LONG_PKTS,
            .xfer_at = LONG_AT,
            .xfer_every = LONG_EVERY,
            .run_ns = 25 * SIM_S};
  static uint64_t gap[SEEDS], done[SEEDS];
  uint64_t fallbacks = 0;
  for (int k = 0; k < SEEDS; k++) {
    uint64_t seed = seed_of(k);
    result r = run_twin(&t, seed);
    if (r.both_direct_at > r.ev_at[0])
      FAIL_SEED(&t, seed, "not direct before the flush");
    if (!r.complete)
      FAIL_SEED(&t, seed, "transfer incomplete");
    for (int i = 0; i < 2; i++)
      if (r.kind[i] != KW_PATH_DIRECT)
        FAIL_SEED(&t, seed, "peer %d ended %s", i,
                  kw_path_kind_name(r.kind[i]));
    /* MASQUERADE gives the same ports back: the path survives without
     * giving it up, and the stall is a liveness Ping's worth (the
     * receiver's Ping after SIM_QUIET_NS re-opens its side), never the
     * full SIM_DEAD_NS. */
    if (r.max_gap >= SIM_DEAD_NS)
      FAIL_SEED(&t, seed, "delivery stalled %llu ms",
                (unsigned long long)(r.max_gap / SIM_MS));
    fallbacks += r.fallbacks;
    gap[k] = r.max_gap;
    done[k] = r.xfer_done_at - LONG_AT;
  }
  assert_int_equal(fallbacks, 0);
  report(t.name, "transfer took", done, SEEDS);
  report(t.name, "longest delivery gap", gap, SEEDS);
}

/* The NAT lab's rebinding (bench/natlab_switch.sh at 28 s): the sender's
 * router maps to new ports and forgets its mappings mid-transfer. Its
 * packets now come from a new address, which the receiver's router
 * filters (conntrack knows the old one only), and the receiver's packets
 * to the old address find no mapping: nothing gets through either way.
 * The sender's liveness under load turns suspect after 1 s, rechecks its
 * reflexive address (STUN: the new port), and the round that change
 * starts tells the receiver, whose Ping to the new address opens its
 * router; the receiver then follows the new address (the rebind rule). */
static void twin_nat_rebind_mid_transfer(void **state) {
  (void)state;
  twin t = {.name = "EIM/EIM NAT rebinding",
            .r = {R_EIM, R_EIM},
            .ev = {{EV_REBIND, EVENT_AT, 1}, {EV_NONE, 0, 0}},
            .xfer_pkts = LONG_PKTS,
            .xfer_at = LONG_AT,
            .xfer_every = LONG_EVERY,
            .run_ns = 25 * SIM_S};
  static uint64_t gap[SEEDS], followed[SEEDS], done[SEEDS];
  for (int k = 0; k < SEEDS; k++) {
    uint64_t seed = seed_of(k);
    result r = run_twin(&t, seed);
    if (r.both_direct_at > r.ev_at[0])
      FAIL_SEED(&t, seed, "not direct before the rebinding");
    if (!r.complete)
      FAIL_SEED(&t, seed, "transfer incomplete");
    for (int i = 0; i < 2; i++)
      if (r.kind[i] != KW_PATH_DIRECT)
        FAIL_SEED(&t, seed, "peer %d ended %s", i,
                  kw_path_kind_name(r.kind[i]));
    /* the receiver follows the sender's new address ... */
    if (r.sel_addr[0].port < REBIND_PORT ||
        r.sel_addr[0].port >= REBIND_PORT + 1000)
      FAIL_SEED(&t, seed, "peer 0 ended on port %u",
                (unsigned)r.sel_addr[0].port);
    /* ... well before the idle rule would even give the old one up (and
     * long before the next STUN refresh, SIM_STUN_REFRESH_NS) */
    if (r.followed_at == UINT64_MAX ||
        r.followed_at - r.ev_at[0] >= KW_RP_DIRECT_DEAD_NS)
      FAIL_SEED(&t, seed, "new address followed only %llu ms later",
                (unsigned long long)((r.followed_at - r.ev_at[0]) / SIM_MS));
    if (r.max_gap >= KW_RP_DIRECT_DEAD_NS)
      FAIL_SEED(&t, seed, "delivery stalled %llu ms",
                (unsigned long long)(r.max_gap / SIM_MS));
    assert_true(r.st[1].rechecks >= 1);
    gap[k] = r.max_gap;
    followed[k] = r.followed_at - r.ev_at[0];
    done[k] = r.xfer_done_at - LONG_AT;
  }
  report(t.name, "new address followed", followed, SEEDS);
  report(t.name, "transfer took", done, SEEDS);
  report(t.name, "longest delivery gap", gap, SEEDS);
}

static void udp_dies(const twin *t, bool comes_back) {
  static uint64_t gap[SEEDS], relay[SEEDS], again[SEEDS], done[SEEDS];
  for (int k = 0; k < SEEDS; k++) {
    uint64_t seed = seed_of(k);
    result r = run_twin(t, seed);
    uint64_t down = r.ev_at[0];
    if (r.both_direct_at > down)
      FAIL_SEED(t, seed, "not direct before UDP died");
    if (!r.complete)
      FAIL_SEED(t, seed, "transfer incomplete");
    if (!r.relay_after_event)
      FAIL_SEED(t, seed, "never fell back to the relay");
    /* Both give the path up SIM_DEAD_NS after its last packet, checked
     * every SIM_TICK_NS; the relay carries on from there. */
    if (r.relay_at > down + SIM_DEAD_NS + 2 * SIM_TICK_NS + 100 * SIM_MS)
      FAIL_SEED(t, seed, "relay only at %llu ms after UDP died",
                (unsigned long long)((r.relay_at - down) / SIM_MS));
    if (r.max_gap >
        SIM_DEAD_NS + 2 * SIM_TICK_NS + SIM_XFER_RTO_NS + 200 * SIM_MS)
      FAIL_SEED(t, seed, "delivery stalled %llu ms",
                (unsigned long long)(r.max_gap / SIM_MS));
    assert_true(r.fallbacks >= 2 && r.sent_relay > 0);
    kw_path_kind want = comes_back ? KW_PATH_DIRECT : KW_PATH_RELAY;
    for (int i = 0; i < 2; i++)
      if (r.kind[i] != want)
        FAIL_SEED(t, seed, "peer %d ended %s", i, kw_path_kind_name(r.kind[i]));
    if (comes_back) {
      /* Back by the first recovery round after UDP returns (5, 15, 35 s
       * after the loss; the loss is at relay_at) plus its Pings, long
       * before the 60 s upgrade check. */
      uint64_t up = r.ev_at[1], by = UINT64_MAX;
      uint64_t step = KW_HP_RECOVER_FIRST_NS, at = r.relay_at;
      for (int n = 0; n < KW_HP_RECOVER_ROUNDS; n++, step *= 2) {
        at += step;
        if (at >= up) {
          by = at + 3 * SIM_S;
          break;
        }
      }
      if (by == UINT64_MAX)
        by = r.relay_at + KW_HP_UPGRADE_NS + 3 * SIM_S;
      if (r.direct_again_at == UINT64_MAX || r.direct_again_at > by)
        FAIL_SEED(t, seed, "not direct again %llu ms after UDP came back",
                  (unsigned long long)((r.direct_again_at - up) / SIM_MS));
      again[k] = r.direct_again_at - up;
    }
    gap[k] = r.max_gap;
    relay[k] = r.relay_at - down;
    done[k] = r.xfer_done_at - LONG_AT;
  }
  report(t->name, "relay after UDP died", relay, SEEDS);
  report(t->name, "transfer took", done, SEEDS);
  report(t->name, "longest delivery gap", gap, SEEDS);
  if (comes_back)
    report(t->name, "direct after UDP is back", again, SEEDS);
}

static void twin_udp_dropped_mid_transfer(void **state) {
  (void)state;
  twin t = {.name = "EIM/EIM UDP dropped",
            .r = {R_EIM, R_EIM},
            .ev = {{EV_UDP_DOWN, EVENT_AT, 1}, {EV_NONE, 0, 0}},
            .xfer_pkts = LONG_PKTS,
            .xfer_at = LONG_AT,
            .xfer_every = LONG_EVERY,
            .run_ns = 75 * SIM_S}; /* past an upgrade check, still down */
  udp_dies(&t, false);
}

static void twin_udp_dropped_then_restored(void **state) {
  (void)state;
  twin t = {
      .name = "EIM/EIM UDP dropped+back",
      .r = {R_EIM, R_EIM},
      .ev = {{EV_UDP_DOWN, EVENT_AT, 1}, {EV_UDP_UP, EVENT_AT + 15 * SIM_S, 1}},
      .xfer_pkts = LONG_PKTS,
      .xfer_at = LONG_AT,
      .xfer_every = LONG_EVERY,
      .run_ns = 85 * SIM_S};
  udp_dies(&t, true);
}

/* ---- miniupnpd: a port-mapped candidate ---------------------------------- */

static void twin_upnp_port_mapping_direct(void **state) {
  (void)state;
  /* Both routers EDM, so plain punching cannot work (twin_edm_edm_relay);
   * peer 1's router forwards 45000 to it and peer 1 advertises that. */
  twin t = {.name = "EDM/EDM+port mapping",
            .r = {R_EDM, R_EDM},
            .portmap = {0, 45000},
            .xfer_pkts = XFER_PKTS,
            .xfer_at = 3 * SIM_S,
            .xfer_every = XFER_EVERY,
            .run_ns = 10 * SIM_S};
  /* Peer 0 talks to the mapped port (peer 1 to the port peer 0's router
   * picked toward it, learnt from its Ping). */
  check_twin(&t,
             (expect){KW_PATH_DIRECT, 3 * SIM_S, {"198.19.0.2:45000", NULL}});
  /* The same with an EIM router on the other side. */
  twin t2 = t;
  t2.name = "EIM/EDM+port mapping";
  t2.r[0] = R_EIM;
  check_twin(&t2,
             (expect){KW_PATH_DIRECT, 3 * SIM_S, {"198.19.0.2:45000", NULL}});
}

/* ---- netcheck: EIM vs EDM from two STUN servers -------------------------- */

static int netcheck_once(router rt, uint64_t seed, double loss, bool same_host,
                         kw_sockaddr *first) {
  sim_cfg cfg;
  sim_cfg_default(&cfg, seed);
  set_router(&cfg, 0, rt);
  cfg.wan.loss = loss;
  sim_world *w = &W;
  assert_true(sim_world_init(w, &cfg));
  if (same_host) /* a relay URL with ?stun=PORT: one host, two ports */
    w->stun2 = A("198.19.255.1:3479");
  assert_true(sim_start(w));
  assert_true(sim_run(w, (uint64_t)(sim_uniform(&w->rng) * 3.0 * SIM_S)));
  sim_netcheck_start(w, 0);
  assert_true(sim_run(w, w->now + 3 * SIM_S)); /* the netcheck timeout */
  int v = sim_netcheck_result(w, 0, first);
  sim_world_free(w);
  return v;
}

static void twin_netcheck_eim_vs_edm(void **state) {
  (void)state;
  struct {
    router r;
    int want;
  } cases[] = {{R_EIM, 0}, {R_EDM, 1}, {R_PUBLIC, 0}, {R_UDPBLOCK, -1}};
  kw_sockaddr pub0 = A("198.19.0.1:0");
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    for (int k = 0; k < SEEDS; k++) {
      {
        /* every other seed: both servers on one host, two ports */
        bool same_host = k & 1;
        kw_sockaddr first;
        int v = netcheck_once(cases[c].r, seed_of(k), 0, same_host, &first);
        if (v != cases[c].want) {
          print_error("netcheck %s seed %llu same_host %d: %d, want %d\n",
                      router_name(cases[c].r), (unsigned long long)seed_of(k),
                      same_host, v, cases[c].want);
          fail();
        }
        if (cases[c].r == R_EIM) /* port preserved by MASQUERADE */
          assert_true(addr_is(&first, "198.19.0.1:41641"));
        if (cases[c].r == R_EDM)
          assert_true(memcmp(first.ip, pub0.ip, 4) == 0);
      }
    }
  }
  /* 10% loss each way: three sends per server usually get through; when
   * they do not the answer is "unknown", never the wrong one. */
  int unknown = 0;
  for (int k = 0; k < SEEDS; k++) {
    for (int e = 0; e < 2; e++) {
      int v = netcheck_once(e ? R_EDM : R_EIM, seed_of(k), 0.10, false, NULL);
      if (v == -1)
        unknown++;
      else
        assert_int_equal(v, e);
    }
  }
  print_message("  netcheck with 10%% loss: %d of %d unknown, none wrong\n",
                unknown, 2 * SEEDS);
  assert_true(unknown < SEEDS / 5);
}

/* ---- 20 ms per WAN direction --------------------------------------------- */

static void twin_wan_delay_eim_eim_direct(void **state) {
  (void)state;
  /* The lab delays each router's WAN link by 20 ms each way: peer to peer
   * and peer to relay to peer both cross two of them (40 ms one way, an
   * 80 ms round trip; the sim's STUN server sits one WAN hop away too). */
  const uint64_t rtt = 80 * SIM_MS;
  twin t = {.name = "EIM/EIM 20 ms WAN",
            .r = {R_EIM, R_EIM},
            .wan_ns = 40 * SIM_MS,
            .relay_ns = 40 * SIM_MS,
            .no_jitter = true,
            .xfer_pkts = XFER_PKTS,
            .xfer_at = 3 * SIM_S,
            .xfer_every = XFER_EVERY,
            .run_ns = 10 * SIM_S};
  static uint64_t rtts[SEEDS];
  for (int k = 0; k < SEEDS; k++) {
    result r = run_twin(&t, seed_of(k));
    assert_int_equal(r.kind[0], KW_PATH_DIRECT);
    assert_int_equal(r.kind[1], KW_PATH_DIRECT);
    assert_true(r.complete);
    /* STUN (1 RTT), CallMeMaybe over the relay (1/2), Pings that open
     * both NATs and their Pongs (1-2): a handful of round trips, and
     * well inside the first round's 3 Ping tries. */
    if (r.both_direct_at > 10 * rtt)
      FAIL_SEED(&t, seed_of(k), "direct only after %llu round trips",
                (unsigned long long)(r.both_direct_at / rtt));
    rtts[k] = r.both_direct_at;
  }
  report(t.name, "both direct at", rtts, SEEDS);
  qsort(rtts, SEEDS, sizeof(*rtts), cmp_u64);
  print_message("  %-28s in round trips: min %.1f  p50 %.1f  max %.1f\n",
                t.name, (double)rtts[0] / (double)rtt,
                (double)rtts[SEEDS / 2] / (double)rtt,
                (double)rtts[SEEDS - 1] / (double)rtt);
}

/* ---- beyond the lab: churn --------------------------------------------------
 * Not a lab case: an open (EIM, endpoint-independent filtering) NAT against
 * an EDM router whose mappings are flushed every 15 s, for 10 virtual
 * minutes. Each flush moves the EDM side to new ports, so the open side
 * learns a new peer-reflexive path from its Pings and the old one dies.
 * This run (first with a flush every 45 s over 30 minutes) showed a paths
 * table filling up with "validating"
 * candidates that never answer, after which kw__paths_add refuses the new,
 * working one (KW_ERR_FULL, as paths.h says): failed candidates have to be
 * made inactive (capped, pruned oldest first). */
static void twin_beyond_edm_flush_churn(void **state) {
  (void)state;
  sim_nat_cfg open = sim_nat_masquerade();
  open.filtering = SIM_EI;
  static uint64_t rounds[40];
  for (int k = 0; k < 40; k++) {
    sim_cfg cfg;
    sim_cfg_default(&cfg, seed_of(k));
    cfg.natcfg[0] = open;
    cfg.natcfg[1] = sim_nat_random_fully();
    sim_world *w = &W;
    assert_true(sim_world_init(w, &cfg));
    assert_true(sim_start(w));
    uint64_t direct_s = 0, flushes = 0;
    for (uint64_t t = 1; t <= 600; t++) {
      if (t % 15 == 0) {
        sim_nat_flush(&w->nats[1]);
        flushes++;
      }
      assert_true(sim_run(w, t * SIM_S));
      direct_s += both(w, KW_PATH_DIRECT);
      for (int i = 0; i < 2; i++) {
        assert_true(kw__paths_count_ip(&w->peers[i].paths) <= KW_PATHS_MAX_IP);
        assert_true(kw__paths_count_inactive(&w->peers[i].paths) <=
                    KW_PATHS_MAX_INACTIVE);
      }
    }
    for (int i = 0; i < 2; i++) {
      sim_peer *p = &w->peers[i];
      assert_int_equal(sim_selected_kind(w, i), KW_PATH_DIRECT);
      assert_int_equal(p->st.paths_full, 0);
      /* Rounds: the 60 s upgrade checks, and per flush a fallback round
       * plus rounds for new candidates -- not a bounce every few seconds. */
      if (p->st.rounds > 10 + 4 * flushes) {
        print_error("churn seed %llu peer %d: %llu rounds\n",
                    (unsigned long long)seed_of(k), i,
                    (unsigned long long)p->st.rounds);
        fail();
      }
      rounds[k] = p->st.rounds > rounds[k] ? p->st.rounds : rounds[k];
    }
    /* Each flush costs at most the SIM_DEAD_NS fallback and a round. */
    assert_true(direct_s >= 600 - flushes * 8);
    sim_world_free(w);
  }
  qsort(rounds, 40, sizeof(*rounds), cmp_u64);
  print_message(
      "  %-28s rounds per peer in 10 min: min %llu p50 %llu max %llu\n",
      "EIF vs EDM, flush/15 s", (unsigned long long)rounds[0],
      (unsigned long long)rounds[20], (unsigned long long)rounds[39]);
}

/* ---- the NAT models the twins rely on ------------------------------------ */

static void test_masquerade_preserves_port_and_flush(void **state) {
  (void)state;
  sim_nat_cfg c = sim_nat_masquerade();
  static sim_nat n; /* zeroed; its perms stay reachable */
  sim_nat_init(&n, &c, "198.19.0.1:0", 5000);
  kw_sockaddr in = A("198.18.1.2:41641"), in2 = A("198.18.1.3:41641"),
              x1 = A("198.19.5.1:1"), x2 = A("198.19.5.2:1"), e1, e2, got;
  assert_true(sim_nat_out(&n, &in, &x1, 0, &e1));
  assert_int_equal(e1.port, 41641);
  assert_true(sim_nat_out(&n, &in, &x2, 0, &e2));
  assert_int_equal(e2.port, 41641); /* endpoint-independent */
  /* The second host with the same port gets another. */
  assert_true(sim_nat_out(&n, &in2, &x1, 0, &e2));
  assert_int_not_equal(e2.port, 41641);
  /* conntrack filtering: address and port dependent. */
  assert_true(sim_nat_in(&n, &x1, &e1, 1, &got));
  kw_sockaddr x1b = A("198.19.5.1:2");
  assert_false(sim_nat_in(&n, &x1b, &e1, 1, &got));
  /* conntrack -F: inbound dropped until the host sends again, then the
   * same port is back. */
  sim_nat_flush(&n);
  assert_false(sim_nat_in(&n, &x1, &e1, 2, &got));
  assert_true(sim_nat_out(&n, &in, &x1, 3, &e2));
  assert_int_equal(e2.port, 41641);
  assert_true(sim_nat_in(&n, &x1, &e1, 4, &got));
}

static void test_random_fully_and_udp_down(void **state) {
  (void)state;
  sim_nat_cfg c = sim_nat_random_fully();
  static sim_nat n; /* zeroed; its perms stay reachable */
  sim_nat_init(&n, &c, "198.19.0.1:0", 5000);
  kw_sockaddr in = A("198.18.1.2:41641"), x1 = A("198.19.5.1:1"),
              x1b = A("198.19.5.1:2"), e1, e2, e3, got;
  assert_true(sim_nat_out(&n, &in, &x1, 0, &e1));
  assert_true(sim_nat_out(&n, &in, &x1b, 0, &e2));
  assert_true(sim_nat_out(&n, &in, &x1, 0, &e3));
  assert_int_not_equal(e1.port, e2.port); /* per destination */
  assert_int_equal(e1.port, e3.port);
  sim_nat_flush(&n);
  assert_true(sim_nat_out(&n, &in, &x1, 1, &e3));
  assert_int_not_equal(e1.port, e3.port); /* a new random port */
  n.udp_down = true;
  assert_false(sim_nat_out(&n, &in, &x1, 2, &e3));
  assert_false(sim_nat_in(&n, &x1, &e3, 2, &got));
  assert_int_equal(n.dropped_udp, 2);
  n.udp_down = false;
  assert_true(sim_nat_in(&n, &x1, &e3, 3, &got));
}

static void test_port_forward(void **state) {
  (void)state;
  sim_nat_cfg c = sim_nat_random_fully();
  static sim_nat n; /* zeroed; its perms stay reachable */
  sim_nat_init(&n, &c, "198.19.0.2:0", 5000);
  kw_sockaddr in = A("198.18.2.2:41641"), x1 = A("198.19.5.1:1"),
              x2 = A("198.19.5.2:7"), e, got;
  sim_nat_forward(&n, &in, 45000);
  kw_sockaddr fwd = A("198.19.0.2:45000");
  /* Open to anyone... */
  assert_true(sim_nat_in(&n, &x1, &fwd, 0, &got));
  assert_true(kw__sockaddr_equal(&got, &in));
  /* ...and the answer leaves from the forwarded port. */
  assert_true(sim_nat_out(&n, &in, &x1, 1, &e));
  assert_int_equal(e.port, 45000);
  /* A destination that never came in gets an ordinary EDM mapping. */
  assert_true(sim_nat_out(&n, &in, &x2, 1, &e));
  assert_int_not_equal(e.port, 45000);
}

static void test_twins_are_deterministic(void **state) {
  (void)state;
  twin t = {.name = "det",
            .r = {R_EIM, R_EIM},
            .ev = {{EV_UDP_DOWN, EVENT_AT, 1}, {EV_NONE, 0, 0}},
            .loss = 0.02,
            .xfer_pkts = 2000,
            .xfer_at = LONG_AT,
            .xfer_every = LONG_EVERY,
            .run_ns = 20 * SIM_S};
  result a = run_twin(&t, 77), b = run_twin(&t, 77), c = run_twin(&t, 78);
  assert_memory_equal(&a.st, &b.st, sizeof(a.st));
  assert_int_equal(a.events, b.events);
  assert_int_equal(a.max_gap, b.max_gap);
  assert_int_equal(a.xfer_done_at, b.xfer_done_at);
  assert_true(a.events != c.events || a.xfer_done_at != c.xfer_done_at);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_masquerade_preserves_port_and_flush),
      cmocka_unit_test(test_random_fully_and_udp_down),
      cmocka_unit_test(test_port_forward),
      cmocka_unit_test(test_twins_are_deterministic),
      cmocka_unit_test(twin_no_nat_direct),
      cmocka_unit_test(twin_eim_eim_direct),
      cmocka_unit_test(twin_eim_eim_lossy_direct),
      cmocka_unit_test(twin_eim_public_direct),
      cmocka_unit_test(twin_eim_edm_relay),
      cmocka_unit_test(twin_edm_edm_relay),
      cmocka_unit_test(twin_udp_blocked_relay),
      cmocka_unit_test(twin_same_nat_lan_direct),
      cmocka_unit_test(twin_conntrack_flush_mid_transfer),
      cmocka_unit_test(twin_nat_rebind_mid_transfer),
      cmocka_unit_test(twin_udp_dropped_mid_transfer),
      cmocka_unit_test(twin_udp_dropped_then_restored),
      cmocka_unit_test(twin_upnp_port_mapping_direct),
      cmocka_unit_test(twin_netcheck_eim_vs_edm),
      cmocka_unit_test(twin_wan_delay_eim_eim_direct),
      cmocka_unit_test(twin_beyond_edm_flush_churn),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
