/* SPDX-License-Identifier: MIT */
/* Deterministic simulation of two peers' NAT traversal (tests/sim): the
 * NAT models themselves, then whole scenarios over many seeds — which NAT
 * combinations end up direct and which stay on the relay — plus the disco
 * rules under a hostile network (loss, duplication, relayed pings, junk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../sim/sim.h"

#define SEEDS 100
#define RUN_NS (70 * SIM_S) /* past one 60 s upgrade check */

static kw_sockaddr A(const char *s) {
  kw_sockaddr a;
  assert_int_equal(kw_sockaddr_parse(s, &a), KW_OK);
  return a;
}

/* ---- NAT models --------------------------------------------------------- */

static void nat_pair(sim_behavior map, sim_behavior filt, sim_nat *n) {
  sim_nat_cfg c = {map, filt, 30 * SIM_S, false, false, false};
  sim_nat_free(n); /* the last use's (n is static) */
  sim_nat_init(n, &c, "198.19.0.1:0", 5000);
}

static void test_nat_mapping_behaviours(void **state) {
  (void)state;
  kw_sockaddr in = A("198.18.1.2:100"), x1 = A("198.19.5.1:1"),
              x1b = A("198.19.5.1:2"), x2 = A("198.19.5.2:1"), e1, e2, e3;
  static sim_nat n; /* zeroed; its perms stay reachable */
  nat_pair(SIM_EI, SIM_EI, &n);
  sim_nat_out(&n, &in, &x1, 0, &e1);
  sim_nat_out(&n, &in, &x1b, 0, &e2);
  sim_nat_out(&n, &in, &x2, 0, &e3);
  assert_int_equal(e1.port, 5000);
  assert_int_equal(e2.port, 5000);
  assert_int_equal(e3.port, 5000);
  assert_true(same_ip(&e1, &n.pub));
  nat_pair(SIM_AD, SIM_EI, &n);
  sim_nat_out(&n, &in, &x1, 0, &e1);
  sim_nat_out(&n, &in, &x1b, 0, &e2);
  sim_nat_out(&n, &in, &x2, 0, &e3);
  assert_int_equal(e1.port, e2.port); /* same IP, other port */
  assert_int_not_equal(e1.port, e3.port);
  nat_pair(SIM_APD, SIM_EI, &n);
  sim_nat_out(&n, &in, &x1, 0, &e1);
  sim_nat_out(&n, &in, &x1b, 0, &e2);
  sim_nat_out(&n, &in, &x2, 0, &e3);
  assert_int_not_equal(e1.port, e2.port);
  assert_int_not_equal(e2.port, e3.port);
  assert_int_equal(n.mappings_made, 3);
  /* Two inside hosts never share a mapping. */
  kw_sockaddr in2 = A("198.18.1.3:100");
  nat_pair(SIM_EI, SIM_EI, &n);
  sim_nat_out(&n, &in, &x1, 0, &e1);
  sim_nat_out(&n, &in2, &x1, 0, &e2);
  assert_int_not_equal(e1.port, e2.port);
}

static void test_nat_filtering_behaviours(void **state) {
  (void)state;
  kw_sockaddr in = A("198.18.1.2:100"), x1 = A("198.19.5.1:1"),
              x1b = A("198.19.5.1:2"), x2 = A("198.19.5.2:1"), e, got;
  sim_behavior f[3] = {SIM_EI, SIM_AD, SIM_APD};
  /* from: x1 (contacted), x1b (same IP, other port), x2 (other IP) */
  bool want[3][3] = {
      {true, true, true}, {true, true, false}, {true, false, false}};
  for (int k = 0; k < 3; k++) {
    static sim_nat n;
    nat_pair(SIM_EI, f[k], &n);
    sim_nat_out(&n, &in, &x1, 0, &e);
    assert_int_equal(sim_nat_in(&n, &x1, &e, 1, &got), want[k][0]);
    if (want[k][0])
      assert_true(kw__sockaddr_equal(&got, &in));
    assert_int_equal(sim_nat_in(&n, &x1b, &e, 1, &got), want[k][1]);
    assert_int_equal(sim_nat_in(&n, &x2, &e, 1, &got), want[k][2]);
    /* No mapping on that port / another public IP: dropped. */
    kw_sockaddr wrong = e;
    wrong.port++;
    assert_false(sim_nat_in(&n, &x1, &wrong, 1, &got));
    wrong = A("198.19.0.9:1");
    wrong.port = e.port;
    assert_false(sim_nat_in(&n, &x1, &wrong, 1, &got));
  }
}

static void test_nat_mapping_timeout(void **state) {
  (void)state;
  kw_sockaddr in = A("198.18.1.2:100"), x1 = A("198.19.5.1:1"), e, e2, got;
  static sim_nat n; /* zeroed; its perms stay reachable */
  nat_pair(SIM_EI, SIM_AD, &n);
  uint64_t to = n.cfg.timeout_ns;
  sim_nat_out(&n, &in, &x1, 0, &e);
  assert_true(sim_nat_in(&n, &x1, &e, to - 1, &got));
  /* Inbound traffic does not refresh; outbound does. */
  sim_nat_out(&n, &in, &x1, to - 1, &e2);
  assert_int_equal(e2.port, e.port);
  assert_true(sim_nat_in(&n, &x1, &e, 2 * to - 2, &got));
  assert_false(sim_nat_in(&n, &x1, &e, 2 * to - 1, &got));
  /* After expiry a new mapping with a new port. */
  sim_nat_out(&n, &in, &x1, 2 * to, &e2);
  assert_int_not_equal(e2.port, e.port);
  assert_true(n.dropped_in >= 1);
}

static void test_prng_is_deterministic(void **state) {
  (void)state;
  sim_rng a = {7}, b = {7}, c = {8};
  for (int i = 0; i < 100; i++) {
    uint64_t x = sim_rand(&a);
    assert_int_equal(x, sim_rand(&b));
    assert_int_not_equal(x, sim_rand(&c));
  }
  for (int i = 0; i < 1000; i++) {
    double u = sim_uniform(&a);
    assert_true(u >= 0.0 && u < 1.0);
  }
}

/* ---- scenarios ------------------------------------------------------------
 */

typedef struct scenario {
  const char *name;
  bool nat[2];
  sim_nat_cfg nc[2];
  bool same_lan;
  double loss, dup;
  kw_path_kind want;
  uint64_t direct_by; /* if direct: selected by this time (0: by the end) */
} scenario;

#define NAT(m, f)                                                              \
  { SIM_##m, SIM_##f, 30 * SIM_S, false, false, false }

typedef struct outcome {
  kw_path_kind kind[2];
  uint64_t direct_at[2]; /* first time each peer selected a direct path */
  sim_stats st[2];
  uint64_t events, lost;
} outcome;

static outcome run_scenario(const scenario *sc, uint64_t seed) {
  sim_cfg cfg;
  sim_cfg_default(&cfg, seed);
  for (int i = 0; i < 2; i++) {
    cfg.nat[i] = sc->nat[i];
    cfg.natcfg[i] = sc->nc[i];
  }
  cfg.same_lan = sc->same_lan;
  cfg.wan.loss = sc->loss;
  cfg.wan.dup = sc->dup;
  static sim_world w; /* large: keep it off the stack */
  assert_true(sim_world_init(&w, &cfg));
  assert_true(sim_start(&w));
  outcome o;
  memset(&o, 0, sizeof(o));
  o.direct_at[0] = o.direct_at[1] = UINT64_MAX;
  /* Step in 100 ms slices to see when direct paths get selected. */
  for (uint64_t t = 100 * SIM_MS; t <= RUN_NS; t += 100 * SIM_MS) {
    assert_true(sim_run(&w, t));
    for (int i = 0; i < 2; i++)
      if (o.direct_at[i] == UINT64_MAX &&
          sim_selected_kind(&w, i) == KW_PATH_DIRECT)
        o.direct_at[i] = t;
  }
  for (int i = 0; i < 2; i++) {
    o.kind[i] = sim_selected_kind(&w, i);
    o.st[i] = w.peers[i].st;
    /* Invariants of the rules, whatever the scenario. */
    assert_true(w.peers[i].st.pongs_sent <=
                w.peers[1 - i].st.pings_sent + w.pkts_lost + 1000);
    assert_int_equal(w.peers[i].st.relay_dropped, 0);
    assert_true(kw__paths_count_ip(&w.peers[i].paths) <= KW_PATHS_MAX_IP);
  }
  o.events = w.events;
  o.lost = w.pkts_lost;
  assert_int_equal(w.pkts_dropped_full, 0);
  sim_world_free(&w);
  return o;
}

static void check_scenario(const scenario *sc) {
  uint64_t dups = 0;
  for (uint64_t seed = 1; seed <= SEEDS; seed++) {
    outcome o = run_scenario(sc, seed * 7919);
    for (int i = 0; i < 2; i++) {
      if (o.kind[i] != sc->want) {
        print_error("%s: seed %llu peer %d ended %s, want %s\n", sc->name,
                    (unsigned long long)(seed * 7919), i,
                    kw_path_kind_name(o.kind[i]), kw_path_kind_name(sc->want));
        fail();
      }
      if (sc->want == KW_PATH_DIRECT && sc->direct_by &&
          o.direct_at[i] > sc->direct_by) {
        print_error("%s: seed %llu peer %d direct only at %llu ms\n", sc->name,
                    (unsigned long long)(seed * 7919), i,
                    (unsigned long long)(o.direct_at[i] / SIM_MS));
        fail();
      }
      if (sc->want == KW_PATH_RELAY)
        assert_int_equal(o.direct_at[i], UINT64_MAX); /* never direct */
      assert_true(o.st[i].rounds >= 1);
      dups += o.st[i].dup_dropped;
    }
  }
  if (sc->dup > 0)
    assert_true(dups > 0); /* duplicates were seen and dropped */
}

static void test_sim_public_public_direct(void **state) {
  (void)state;
  scenario sc = {
      "public/public", {false, false}, {NAT(EI, EI), NAT(EI, EI)}, false, 0, 0,
      KW_PATH_DIRECT,  1 * SIM_S};
  check_scenario(&sc);
}

static void test_sim_eim_eif_both_direct(void **state) {
  (void)state;
  scenario sc = {
      "EIM-EIF/EIM-EIF", {true, true}, {NAT(EI, EI), NAT(EI, EI)}, false, 0, 0,
      KW_PATH_DIRECT,    1 * SIM_S};
  check_scenario(&sc);
}

static void test_sim_eim_adf_both_direct(void **state) {
  (void)state;
  scenario sc = {
      "EIM-ADF/EIM-ADF", {true, true}, {NAT(EI, AD), NAT(EI, AD)}, false, 0, 0,
      KW_PATH_DIRECT,    2 * SIM_S};
  check_scenario(&sc);
}

static void test_sim_eim_apdf_both_direct(void **state) {
  (void)state;
  scenario sc = {"EIM-APDF/EIM-APDF",
                 {true, true},
                 {NAT(EI, APD), NAT(EI, APD)},
                 false,
                 0,
                 0,
                 KW_PATH_DIRECT,
                 2 * SIM_S};
  check_scenario(&sc);
}

static void test_sim_eim_eif_vs_symmetric_direct(void **state) {
  (void)state;
  /* The symmetric side's pings arrive from a fresh port; the open side
   * learns it from the Ping and pings back. */
  scenario sc = {"EIM-EIF/APDM-APDF",
                 {true, true},
                 {NAT(EI, EI), NAT(APD, APD)},
                 false,
                 0,
                 0,
                 KW_PATH_DIRECT,
                 2 * SIM_S};
  check_scenario(&sc);
}

static void test_sim_adm_vs_eim_eif_direct(void **state) {
  (void)state;
  scenario sc = {
      "ADM-ADF/EIM-EIF", {true, true}, {NAT(AD, AD), NAT(EI, EI)}, false, 0, 0,
      KW_PATH_DIRECT,    2 * SIM_S};
  check_scenario(&sc);
}

static void test_sim_eim_apdf_vs_symmetric_relay(void **state) {
  (void)state;
  scenario sc = {"EIM-APDF/APDM-APDF",
                 {true, true},
                 {NAT(EI, APD), NAT(APD, APD)},
                 false,
                 0,
                 0,
                 KW_PATH_RELAY,
                 0};
  check_scenario(&sc);
}

static void test_sim_symmetric_both_relay(void **state) {
  (void)state;
  scenario sc = {"APDM/APDM",
                 {true, true},
                 {NAT(APD, APD), NAT(APD, APD)},
                 false,
                 0,
                 0,
                 KW_PATH_RELAY,
                 0};
  check_scenario(&sc);
}

static void test_sim_edm_both_relay(void **state) {
  (void)state;
  /* Address-dependent mapping on both sides is as bad as symmetric. */
  scenario sc = {"ADM-ADF/ADM-ADF",
                 {true, true},
                 {NAT(AD, AD), NAT(AD, AD)},
                 false,
                 0,
                 0,
                 KW_PATH_RELAY,
                 0};
  check_scenario(&sc);
}

static void test_sim_lossy_duplicating_network_direct(void **state) {
  (void)state;
  scenario sc = {"lossy EIM-APDF/EIM-APDF",
                 {true, true},
                 {NAT(EI, APD), NAT(EI, APD)},
                 false,
                 0.10,
                 0.05,
                 KW_PATH_DIRECT,
                 0};
  check_scenario(&sc);
}

static void test_sim_same_lan_uses_lan_address(void **state) {
  (void)state;
  scenario sc = {
      "same LAN",     {true, true}, {NAT(APD, APD), NAT(APD, APD)}, true, 0, 0,
      KW_PATH_DIRECT, 1 * SIM_S};
  check_scenario(&sc);
  /* And the path is the LAN address with a LAN round trip. */
  sim_cfg cfg;
  sim_cfg_default(&cfg, 99);
  cfg.same_lan = true;
  static sim_world w;
  assert_true(sim_world_init(&w, &cfg));
  assert_true(sim_start(&w));
  assert_true(sim_run(&w, 10 * SIM_S));
  for (int i = 0; i < 2; i++) {
    const kw__path *p = sim_selected(&w, i);
    assert_non_null(p);
    assert_true(kw__sockaddr_equal(&p->addr, &w.peers[1 - i].local));
    assert_true(kw__paths_rtt(&w.peers[i].paths,
                              kw__paths_selected(&w.peers[i].paths)) <
                5 * SIM_MS);
  }
  sim_world_free(&w);
}

static void test_sim_direct_rtt_and_switch_once(void **state) {
  (void)state;
  sim_cfg cfg;
  sim_cfg_default(&cfg, 1234);
  cfg.nat[0] = cfg.nat[1] = false;
  static sim_world w;
  assert_true(sim_world_init(&w, &cfg));
  assert_true(sim_start(&w));
  assert_int_equal(sim_selected_kind(&w, 0), KW_PATH_RELAY);
  assert_true(sim_run(&w, 30 * SIM_S));
  for (int i = 0; i < 2; i++) {
    assert_int_equal(sim_selected_kind(&w, i), KW_PATH_DIRECT);
    uint64_t rtt =
        kw__paths_rtt(&w.peers[i].paths, kw__paths_selected(&w.peers[i].paths));
    assert_true(rtt >= 40 * SIM_MS && rtt <= 50 * SIM_MS);
    /* relay -> direct, and no flapping afterwards (hysteresis). */
    assert_int_equal(w.peers[i].st.path_changes, 2);
  }
  sim_world_free(&w);
}

static void test_sim_is_deterministic(void **state) {
  (void)state;
  scenario sc = {"det",
                 {true, true},
                 {NAT(EI, APD), NAT(EI, APD)},
                 false,
                 0.05,
                 0.05,
                 KW_PATH_DIRECT,
                 0};
  outcome a = run_scenario(&sc, 42), b = run_scenario(&sc, 42),
          c = run_scenario(&sc, 43);
  assert_memory_equal(&a.st, &b.st, sizeof(a.st));
  assert_int_equal(a.events, b.events);
  assert_int_equal(a.direct_at[0], b.direct_at[0]);
  assert_int_equal(a.direct_at[1], b.direct_at[1]);
  assert_true(memcmp(&a.st, &c.st, sizeof(a.st)) != 0 || a.events != c.events);
}

static void test_sim_relayed_ping_dropped_not_answered(void **state) {
  (void)state;
  sim_cfg cfg;
  sim_cfg_default(&cfg, 5);
  static sim_world w;
  assert_true(sim_world_init(&w, &cfg));
  assert_true(sim_start(&w));
  assert_true(sim_run(&w, 5 * SIM_S));
  sim_peer *a = &w.peers[0], *b = &w.peers[1];
  uint64_t pongs = b->st.pongs_sent;
  /* A genuine Ping from a, delivered through the relay. */
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_PING;
  m.ts_ms = unix_ms(&w);
  memset(m.tx_id, 0x5a, sizeof(m.tx_id));
  uint8_t out[KW_DISCO_MAX_LEN];
  size_t n;
  assert_int_equal(kw__disco_seal(&a->key, a->id, &m, out, sizeof(out), &n),
                   KW_OK);
  sim_inject_relay(&w, 1, out, n);
  assert_true(sim_run(&w, 6 * SIM_S));
  assert_int_equal(b->st.relay_dropped, 1);
  assert_int_equal(b->st.pongs_sent, pongs);
  sim_world_free(&w);
}

static void test_sim_replayed_ping_answered_once(void **state) {
  (void)state;
  sim_cfg cfg;
  sim_cfg_default(&cfg, 6);
  cfg.nat[1] = false; /* b public so an outsider can reach it */
  static sim_world w;
  assert_true(sim_world_init(&w, &cfg));
  assert_true(sim_start(&w));
  assert_true(sim_run(&w, 5 * SIM_S));
  sim_peer *a = &w.peers[0], *b = &w.peers[1];
  kw__disco_msg m;
  memset(&m, 0, sizeof(m));
  m.type = KW_DISCO_PING;
  m.ts_ms = unix_ms(&w);
  memset(m.tx_id, 0x77, sizeof(m.tx_id));
  uint8_t out[KW_DISCO_MAX_LEN];
  size_t n;
  assert_int_equal(kw__disco_seal(&a->key, a->id, &m, out, sizeof(out), &n),
                   KW_OK);
  kw_sockaddr from = A("198.19.9.9:9");
  uint64_t pongs = b->st.pongs_sent, dups = b->st.dup_dropped;
  for (int i = 0; i < 5; i++)
    sim_inject(&w, &from, &b->local, out, n);
  assert_true(sim_run(&w, 6 * SIM_S));
  assert_int_equal(b->st.pongs_sent, pongs + 1);
  assert_int_equal(b->st.dup_dropped, dups + 4);
  /* 40 s later the same bytes are stale. */
  assert_true(sim_run(&w, 46 * SIM_S));
  uint64_t stale = b->st.stale_dropped;
  sim_inject(&w, &from, &b->local, out, n);
  assert_true(sim_run(&w, 47 * SIM_S));
  assert_int_equal(b->st.stale_dropped, stale + 1);
  sim_world_free(&w);
}

static void test_sim_junk_sender_punished(void **state) {
  (void)state;
  sim_cfg cfg;
  sim_cfg_default(&cfg, 8);
  cfg.nat[1] = false;
  static sim_world w;
  assert_true(sim_world_init(&w, &cfg));
  assert_true(sim_start(&w));
  assert_true(sim_run(&w, 3 * SIM_S));
  sim_peer *b = &w.peers[1];
  kw_sockaddr evil = A("198.19.66.6:666");
  uint8_t junk[200];
  memcpy(junk, "KWdisco\x01", 8);
  memset(junk + 8, 0x42, sizeof(junk) - 8);
  for (int i = 0; i < 20; i++)
    sim_inject(&w, &evil, &b->local, junk, sizeof(junk));
  assert_true(sim_run(&w, 4 * SIM_S));
  assert_int_equal(b->st.undecodable, KW_ADDR_FILTER_STRIKES);
  assert_int_equal(b->st.ignored, 20 - KW_ADDR_FILTER_STRIKES);
  assert_true(kw__addr_filter_ignored(&b->filter, &evil, w.now));
  /* The real peer is unaffected. */
  assert_true(sim_run(&w, 20 * SIM_S));
  assert_int_equal(sim_selected_kind(&w, 1), KW_PATH_DIRECT);
  sim_world_free(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nat_mapping_behaviours),
      cmocka_unit_test(test_nat_filtering_behaviours),
      cmocka_unit_test(test_nat_mapping_timeout),
      cmocka_unit_test(test_prng_is_deterministic),
      cmocka_unit_test(test_sim_public_public_direct),
      cmocka_unit_test(test_sim_eim_eif_both_direct),
      cmocka_unit_test(test_sim_eim_adf_both_direct),
      cmocka_unit_test(test_sim_eim_apdf_both_direct),
      cmocka_unit_test(test_sim_eim_eif_vs_symmetric_direct),
      cmocka_unit_test(test_sim_adm_vs_eim_eif_direct),
      cmocka_unit_test(test_sim_eim_apdf_vs_symmetric_relay),
      cmocka_unit_test(test_sim_symmetric_both_relay),
      cmocka_unit_test(test_sim_edm_both_relay),
      cmocka_unit_test(test_sim_lossy_duplicating_network_direct),
      cmocka_unit_test(test_sim_same_lan_uses_lan_address),
      cmocka_unit_test(test_sim_direct_rtt_and_switch_once),
      cmocka_unit_test(test_sim_is_deterministic),
      cmocka_unit_test(test_sim_relayed_ping_dropped_not_answered),
      cmocka_unit_test(test_sim_replayed_ping_answered_once),
      cmocka_unit_test(test_sim_junk_sender_punished),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
