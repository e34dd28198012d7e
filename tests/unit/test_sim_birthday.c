/* SPDX-License-Identifier: MIT */
/* Birthday probing in the simulator (tests/sim; src/core/remote.h,
 * docs/protocol/disco.md "Birthday probing"): MASQUERADE (EIM) against
 * MASQUERADE --random-fully (EDM), each peer running netcheck at the
 * start and sending a NatHint beside its CallMeMaybe. 100 seeds per case:
 * EIM/EDM and EDM/EIM go direct (at least 95 of 100), EDM/EDM stays on
 * the relay, and with probing switched off the same seeds stay on the
 * relay. Bounds per attempt are asserted on every seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"

#define SEEDS 100
#define RUN_NS (10 * SIM_S) /* well before the 30 s second attempt */

static sim_world W; /* large: keep it off the stack */

typedef struct outcome {
  int direct;         /* seeds where both peers went direct */
  uint64_t at[SEEDS]; /* when both were direct (UINT64_MAX never) */
  uint64_t max_pkts, max_socks, max_open, max_starts;
  uint64_t sum_pkts, sum_socks;
} outcome;

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void run_case(bool edm0, bool edm1, bool off, outcome *o) {
  memset(o, 0, sizeof(*o));
  for (int k = 0; k < SEEDS; k++) {
    sim_cfg cfg;
    sim_cfg_default(&cfg, 7777ull * (uint64_t)(k + 1));
    cfg.natcfg[0] = edm0 ? sim_nat_random_fully() : sim_nat_masquerade();
    cfg.natcfg[1] = edm1 ? sim_nat_random_fully() : sim_nat_masquerade();
    cfg.netcheck_at_start = true;
    cfg.no_birthday = off;
    sim_world *w = &W;
    assert_true(sim_world_init(w, &cfg));
    assert_true(sim_start(w));
    o->at[k] = UINT64_MAX;
    for (uint64_t now = 10 * SIM_MS; now <= RUN_NS; now += 10 * SIM_MS) {
      assert_true(sim_run(w, now));
      if (o->at[k] == UINT64_MAX && sim_selected_kind(w, 0) == KW_PATH_DIRECT &&
          sim_selected_kind(w, 1) == KW_PATH_DIRECT)
        o->at[k] = now;
    }
    if (sim_selected_kind(w, 0) == KW_PATH_DIRECT &&
        sim_selected_kind(w, 1) == KW_PATH_DIRECT)
      o->direct++;
    for (int i = 0; i < 2; i++) {
      const sim_stats *st = &w->peers[i].st;
      /* netcheck saw each router right, and the hint went across */
      assert_int_equal(w->peers[i].nat_kind,
                       (i ? edm1 : edm0) ? KW_RP_NAT_EDM : KW_RP_NAT_EIM);
      assert_true(st->nat_hints_recv > 0);
      /* the bounds of one attempt (RUN_NS < KW_RP_BDAY_EVERY_NS) */
      assert_true(st->bday_starts <= 1);
      assert_true(st->bday_socks <= KW_RP_BDAY_SOCKETS);
      assert_true(st->bday_max_open <= KW_RP_BDAY_SOCKETS);
      assert_true(st->bday_pkts <= KW_RP_BDAY_SPRAY + KW_RP_BDAY_SOCKETS);
      /* no extra socket outlives the attempt but the chosen one */
      assert_true(w->peers[i].n_open <= 1);
      if (w->peers[i].n_open)
        assert_int_not_equal(kw__rp_direct_sock(&w->peers[i].rp), 0);
      if (st->bday_pkts > o->max_pkts)
        o->max_pkts = st->bday_pkts;
      if (st->bday_socks > o->max_socks)
        o->max_socks = st->bday_socks;
      if (st->bday_max_open > o->max_open)
        o->max_open = st->bday_max_open;
      if (st->bday_starts > o->max_starts)
        o->max_starts = st->bday_starts;
      o->sum_pkts += st->bday_pkts;
      o->sum_socks += st->bday_socks;
    }
    assert_int_equal(w->pkts_dropped_full, 0);
    sim_world_free(w);
  }
}

static void report(const char *name, outcome *o) {
  qsort(o->at, SEEDS, sizeof(o->at[0]), cmp_u64);
  uint64_t med = o->at[SEEDS / 2];
  printf("# %s: direct %d/%d, median %s%.0f ms; per seed (both peers): "
         "%.0f Pings, %.0f sockets (max %llu Pings, %llu sockets, %llu open "
         "at once)\n",
         name, o->direct, SEEDS, med == UINT64_MAX ? "never " : "",
         med == UINT64_MAX ? 0.0 : (double)med / 1e6,
         (double)o->sum_pkts / SEEDS, (double)o->sum_socks / SEEDS,
         (unsigned long long)o->max_pkts, (unsigned long long)o->max_socks,
         (unsigned long long)o->max_open);
}

static void test_eim_edm_goes_direct(void **state) {
  (void)state;
  static outcome o;
  run_case(false, true, false, &o);
  report("EIM/EDM", &o);
  assert_true(o.direct >= 95);
  assert_int_equal(o.max_starts, 1);
}

static void test_edm_eim_goes_direct(void **state) {
  (void)state;
  static outcome o;
  run_case(true, false, false, &o);
  report("EDM/EIM", &o);
  assert_true(o.direct >= 95);
}

static void test_edm_edm_stays_on_relay(void **state) {
  (void)state;
  static outcome o;
  run_case(true, true, false, &o);
  report("EDM/EDM", &o);
  assert_int_equal(o.direct, 0);
  assert_int_equal(o.sum_pkts, 0); /* no attempt: both sides EDM */
}

static void test_switched_off_stays_on_relay(void **state) {
  (void)state;
  static outcome o;
  run_case(false, true, true, &o);
  report("EIM/EDM, probing off", &o);
  assert_int_equal(o.direct, 0);
  assert_int_equal(o.sum_pkts, 0);
  run_case(true, false, true, &o);
  report("EDM/EIM, probing off", &o);
  assert_int_equal(o.direct, 0);
  assert_int_equal(o.sum_pkts, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_eim_edm_goes_direct),
      cmocka_unit_test(test_edm_eim_goes_direct),
      cmocka_unit_test(test_edm_edm_stays_on_relay),
      cmocka_unit_test(test_switched_off_stays_on_relay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
