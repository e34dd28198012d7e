/* SPDX-License-Identifier: MIT */
/* Unit tests of core/paths: the path table and selection rules of
 * docs/PROTOCOL.md ("Path discovery, selection and hole punching"), each by
 * name, with their boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/paths.h"

#define MS 1000000ull
#define US 1000ull

static kw_sockaddr addr(const char *s) {
  kw_sockaddr a;
  assert_int_equal(kw_sockaddr_parse(s, &a), KW_OK);
  return a;
}

static kw_sockaddr nth(int i) {
  char s[64];
  snprintf(s, sizeof(s), "198.18.%d.%d:%d", i / 200, i % 200 + 1, 1000 + i);
  return addr(s);
}

static int add(kw__paths *t, const char *s, uint8_t src, uint64_t now) {
  int idx = KW_PATHS_NONE;
  kw_sockaddr a;
  if (s)
    a = addr(s);
  assert_int_equal(kw__paths_add(t, s ? &a : NULL, src, now, &idx, NULL),
                   KW_OK);
  assert_int_not_equal(idx, KW_PATHS_NONE);
  return idx;
}

/* Adds a validated path with one RTT sample on connection 0. */
static int add_rtt(kw__paths *t, const char *s, uint64_t rtt) {
  int i = add(t, s, KW_PSRC_APP, 0);
  assert_int_equal(kw__paths_rtt_sample(t, i, 0, rtt), KW_OK);
  return i;
}

static int sel(kw__paths *t, bool *changed) {
  bool c = false;
  int r = kw__paths_select(t, 0, &c);
  if (changed)
    *changed = c;
  return r;
}

/* ---- table basics ------------------------------------------------------ */

static void test_empty_selects_none(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  bool changed = true;
  assert_int_equal(sel(&t, &changed), KW_PATHS_NONE);
  assert_false(changed);
  assert_int_equal(kw__paths_selected(&t), KW_PATHS_NONE);
  assert_int_equal(kw__paths_redundant(&t, NULL, 0), 0);
  assert_int_equal(kw__paths_count_ip(&t), 0);
  kw__paths_free(&t);
}

static void test_add_find_merge_sources(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  kw_sockaddr a = addr("198.18.0.1:1");
  int i1, i2;
  bool created;
  assert_int_equal(kw__paths_add(&t, &a, KW_PSRC_APP, 5, &i1, &created), KW_OK);
  assert_true(created);
  assert_true(i1 > KW_PATHS_RELAY);
  assert_int_equal(kw__paths_add(&t, &a, KW_PSRC_DISCO, 6, &i2, &created),
                   KW_OK);
  assert_false(created);
  assert_int_equal(i1, i2);
  const kw__path *p = kw__paths_get(&t, i1);
  assert_non_null(p);
  assert_int_equal(p->sources, KW_PSRC_APP | KW_PSRC_DISCO);
  assert_int_equal(p->state, KW_PST_UNKNOWN);
  assert_int_equal(p->added, 5);
  assert_int_equal(kw__paths_find(&t, &a), i1);
  /* The relay path has its own slot and does not count as IP. */
  int r;
  assert_int_equal(kw__paths_add(&t, NULL, KW_PSRC_LOOKUP, 7, &r, NULL), KW_OK);
  assert_int_equal(r, KW_PATHS_RELAY);
  assert_true(kw__paths_get(&t, r)->relay);
  assert_int_equal(kw__paths_find(&t, NULL), KW_PATHS_RELAY);
  assert_int_equal(kw__paths_count_ip(&t), 1);
  kw_sockaddr b = addr("198.18.0.2:1");
  assert_int_equal(kw__paths_find(&t, &b), KW_PATHS_NONE);
  /* Remove. */
  assert_int_equal(kw__paths_remove(&t, i1), KW_OK);
  assert_int_equal(kw__paths_remove(&t, i1), KW_ERR_NOT_FOUND);
  assert_null(kw__paths_get(&t, i1));
  assert_int_equal(kw__paths_find(&t, &a), KW_PATHS_NONE);
}

static void test_add_rejections(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  int idx = 3;
  kw_sockaddr a = addr("198.18.0.1:0");
  assert_int_equal(kw__paths_add(&t, &a, KW_PSRC_APP, 0, &idx, NULL),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(idx, KW_PATHS_NONE);
  a.port = 1;
  a.family = 0;
  assert_int_equal(kw__paths_add(&t, &a, KW_PSRC_APP, 0, &idx, NULL),
                   KW_ERR_INVALID_ARG);
  a.family = 4;
  assert_int_equal(kw__paths_add(&t, &a, 0, 0, &idx, NULL), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__paths_add(&t, &a, 0x10, 0, &idx, NULL),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__paths_add(NULL, &a, KW_PSRC_APP, 0, &idx, NULL),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__paths_set_state(&t, 5, KW_PST_VALIDATED, 0),
                   KW_ERR_NOT_FOUND);
  assert_int_equal(kw__paths_set_state(&t, -1, KW_PST_VALIDATED, 0),
                   KW_ERR_NOT_FOUND);
  assert_int_equal(kw__paths_set_state(&t, KW_PATHS_SLOTS, KW_PST_VALIDATED, 0),
                   KW_ERR_NOT_FOUND);
  int i = add(&t, "198.18.0.1:1", KW_PSRC_APP, 0);
  assert_int_equal(kw__paths_set_state(&t, i, (kw__path_state)9, 0),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__paths_rtt_sample(&t, i, KW_PATHS_MAX_CONNS, 1),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__paths_rtt_sample(&t, i, 0, KW_PATHS_RTT_UNKNOWN),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__paths_rtt_sample(&t, 20, 0, 1), KW_ERR_NOT_FOUND);
  assert_int_equal(kw__paths_rtt(&t, 20), KW_PATHS_RTT_UNKNOWN);
}

static void test_rule_states_only_validated_selectable(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  int i = add(&t, "198.18.0.1:1", KW_PSRC_APP, 0);
  kw__path_state not_sel[] = {KW_PST_UNKNOWN, KW_PST_VALIDATING,
                              KW_PST_INACTIVE, KW_PST_UNUSABLE};
  for (size_t k = 0; k < 4; k++) {
    assert_int_equal(kw__paths_set_state(&t, i, not_sel[k], 1), KW_OK);
    assert_int_equal(sel(&t, NULL), KW_PATHS_NONE);
  }
  assert_int_equal(kw__paths_set_state(&t, i, KW_PST_VALIDATED, 1), KW_OK);
  assert_int_equal(sel(&t, NULL), i);
  assert_string_equal(kw__path_state_name(KW_PST_VALIDATING), "validating");
  assert_string_equal(kw__path_state_name(KW_PST_UNUSABLE), "unusable");
}

static void test_rtt_sample_validates_but_not_unusable(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  int i = add(&t, "198.18.0.1:1", KW_PSRC_APP, 0);
  assert_int_equal(kw__paths_set_state(&t, i, KW_PST_VALIDATING, 0), KW_OK);
  assert_int_equal(kw__paths_rtt_sample(&t, i, 3, 7 * MS), KW_OK);
  assert_int_equal(kw__paths_get(&t, i)->state, KW_PST_VALIDATED);
  assert_int_equal(kw__paths_set_state(&t, i, KW_PST_UNUSABLE, 0), KW_OK);
  assert_int_equal(kw__paths_rtt_sample(&t, i, 3, 7 * MS), KW_OK);
  assert_int_equal(kw__paths_get(&t, i)->state, KW_PST_UNUSABLE);
}

/* ---- selection rules ---------------------------------------------------- */

static void test_rule_primary_beats_backup_whatever_rtt(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  int r = add_rtt(&t, NULL, 1 * MS);
  assert_int_equal(sel(&t, NULL), r); /* relay alone: relay */
  int d = add_rtt(&t, "198.18.0.1:1", 900 * MS);
  bool changed;
  assert_int_equal(sel(&t, &changed), d);
  assert_true(changed);
  /* Even a direct path with no RTT sample at all beats the relay. */
  kw__paths_init(&t);
  r = add_rtt(&t, NULL, 1 * MS);
  assert_int_equal(sel(&t, NULL), r);
  d = add(&t, "198.18.0.1:1", KW_PSRC_APP, 0);
  assert_int_equal(kw__paths_set_state(&t, d, KW_PST_VALIDATED, 0), KW_OK);
  assert_int_equal(sel(&t, NULL), d);
  /* A relay never displaces a selected direct path. */
  assert_int_equal(kw__paths_rtt_sample(&t, r, 0, 1), KW_OK);
  assert_int_equal(sel(&t, &changed), d);
  assert_false(changed);
}

static void test_rule_lowest_rtt_wins_within_kind(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  add_rtt(&t, "198.18.0.1:1", 30 * MS);
  int b = add_rtt(&t, "198.18.0.2:1", 10 * MS);
  add_rtt(&t, "198.18.0.3:1", 20 * MS);
  assert_int_equal(sel(&t, NULL), b);
}

static void test_rule_rtt_is_min_over_connections(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  int a = add_rtt(&t, "198.18.0.1:1", 30 * MS);
  int b = add_rtt(&t, "198.18.0.2:1", 20 * MS);
  assert_int_equal(kw__paths_rtt_sample(&t, a, 5, 12 * MS), KW_OK);
  assert_int_equal(kw__paths_rtt(&t, a), 12 * MS);
  assert_int_equal(sel(&t, NULL), a); /* 12 < 20 by 8 ms */
  /* Connection 5 goes away: a is back to 30 ms and b wins. */
  kw__paths_conn_gone(&t, 5);
  assert_int_equal(kw__paths_rtt(&t, a), 30 * MS);
  assert_int_equal(sel(&t, NULL), b);
  /* A later sample of the same connection replaces its earlier one. */
  assert_int_equal(kw__paths_rtt_sample(&t, b, 0, 40 * MS), KW_OK);
  assert_int_equal(kw__paths_rtt(&t, b), 40 * MS);
  kw__paths_conn_gone(&t, 0);
  assert_int_equal(kw__paths_rtt(&t, a), KW_PATHS_RTT_UNKNOWN);
  kw__paths_conn_gone(&t, KW_PATHS_MAX_CONNS); /* ignored */
}

static void test_rule_ipv6_3ms_advantage(void **state) {
  (void)state;
  kw__paths t;
  /* v6 at 12.999 ms beats v4 at 10 ms (effective 9.999). */
  kw__paths_init(&t);
  add_rtt(&t, "198.18.0.1:1", 10 * MS);
  int v6 = add_rtt(&t, "[2001:db8::1]:1", 13 * MS - 1);
  assert_int_equal(sel(&t, NULL), v6);
  /* v6 at exactly 13 ms ties with v4 at 10 ms: the tie goes to the lower
   * family (4), deterministically. */
  kw__paths_init(&t);
  int v4 = add_rtt(&t, "198.18.0.1:1", 10 * MS);
  add_rtt(&t, "[2001:db8::1]:1", 13 * MS);
  assert_int_equal(sel(&t, NULL), v4);
  /* v6 at 13.001 ms loses. */
  kw__paths_init(&t);
  add_rtt(&t, "[2001:db8::1]:1", 13 * MS + 1);
  v4 = add_rtt(&t, "198.18.0.1:1", 10 * MS);
  assert_int_equal(sel(&t, NULL), v4);
  /* The bonus is for direct IPv6 only; a tiny v6 RTT does not underflow. */
  kw__paths_init(&t);
  v6 = add_rtt(&t, "[2001:db8::1]:1", 1 * MS);
  v4 = add_rtt(&t, "198.18.0.1:1", 0);
  assert_int_equal(sel(&t, NULL), v6);
}

static void hyst_case(uint64_t cur_rtt, uint64_t new_rtt, bool expect_switch) {
  kw__paths t;
  kw__paths_init(&t);
  int cur = add_rtt(&t, "198.18.0.1:1", cur_rtt);
  assert_int_equal(sel(&t, NULL), cur);
  int nw = add_rtt(&t, "198.18.0.2:1", new_rtt);
  bool changed;
  int got = sel(&t, &changed);
  assert_int_equal(got, expect_switch ? nw : cur);
  assert_int_equal(changed, expect_switch);
}

static void test_rule_hysteresis_4ms_keeps(void **state) {
  (void)state;
  hyst_case(20 * MS, 16 * MS, false);
  hyst_case(20 * MS, 15 * MS + 1, false); /* 4.999999 ms */
  hyst_case(20 * MS, 19 * MS, false);
}

static void test_rule_hysteresis_exactly_5ms_switches(void **state) {
  (void)state;
  hyst_case(20 * MS, 15 * MS, true);
  hyst_case(20 * MS, 14 * MS, true);
  hyst_case(5 * MS, 0, true);
}

static void test_rule_hysteresis_counts_ipv6_bonus(void **state) {
  (void)state;
  kw__paths t;
  /* Current v4 20 ms; v6 at 18 ms is effectively 15: exactly 5 better. */
  kw__paths_init(&t);
  int cur = add_rtt(&t, "198.18.0.1:1", 20 * MS);
  assert_int_equal(sel(&t, NULL), cur);
  int v6 = add_rtt(&t, "[2001:db8::1]:1", 18 * MS);
  assert_int_equal(sel(&t, NULL), v6);
  /* Current v6 at 18 (eff 15); a v4 at 11 ms is only 4 better: keep. */
  int v4 = add_rtt(&t, "198.18.0.3:1", 11 * MS);
  assert_int_equal(sel(&t, NULL), v6);
  assert_int_equal(kw__paths_rtt_sample(&t, v4, 0, 10 * MS), KW_OK);
  assert_int_equal(sel(&t, NULL), v4);
}

static void test_rule_no_current_picks_best(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  add_rtt(&t, "198.18.0.1:1", 11 * MS);
  int b = add_rtt(&t, "198.18.0.2:1", 10 * MS); /* only 1 ms better */
  bool changed;
  assert_int_equal(sel(&t, &changed), b);
  assert_true(changed);
  assert_int_equal(sel(&t, &changed), b);
  assert_false(changed);
}

static void test_rule_unusable_current_replaced_at_once(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  int a = add_rtt(&t, "198.18.0.1:1", 10 * MS);
  assert_int_equal(sel(&t, NULL), a);
  int b = add_rtt(&t, "198.18.0.2:1", 11 * MS); /* worse, kept aside */
  assert_int_equal(sel(&t, NULL), a);
  assert_int_equal(kw__paths_set_state(&t, a, KW_PST_UNUSABLE, 1), KW_OK);
  bool changed;
  assert_int_equal(sel(&t, &changed), b);
  assert_true(changed);
  /* Removing the selected path deselects it; nothing left -> none. */
  assert_int_equal(kw__paths_remove(&t, b), KW_OK);
  assert_int_equal(kw__paths_selected(&t), KW_PATHS_NONE);
  assert_int_equal(sel(&t, &changed), KW_PATHS_NONE);
  assert_false(changed);
  /* Falls back to the relay when the last direct path goes. */
  kw__paths_init(&t);
  int r = add_rtt(&t, NULL, 50 * MS);
  a = add_rtt(&t, "198.18.0.1:1", 10 * MS);
  assert_int_equal(sel(&t, NULL), a);
  assert_int_equal(kw__paths_set_state(&t, a, KW_PST_INACTIVE, 1), KW_OK);
  assert_int_equal(sel(&t, &changed), r);
  assert_true(changed);
}

static void test_rule_current_without_rtt_replaced(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  int a = add(&t, "198.18.0.1:1", KW_PSRC_APP, 0);
  assert_int_equal(kw__paths_set_state(&t, a, KW_PST_VALIDATED, 0), KW_OK);
  assert_int_equal(sel(&t, NULL), a);
  int b = add(&t, "198.18.0.2:1", KW_PSRC_APP, 0);
  assert_int_equal(kw__paths_set_state(&t, b, KW_PST_VALIDATED, 0), KW_OK);
  assert_int_equal(sel(&t, NULL), a); /* both unknown: keep */
  assert_int_equal(kw__paths_rtt_sample(&t, b, 0, 500 * MS), KW_OK);
  assert_int_equal(sel(&t, NULL), b); /* known beats unknown */
}

static void test_rule_ties_are_deterministic(void **state) {
  (void)state;
  const char *order[2][3] = {
      {"198.18.0.9:1", "198.18.0.2:7", "198.18.0.2:5"},
      {"198.18.0.2:5", "198.18.0.9:1", "198.18.0.2:7"},
  };
  kw_sockaddr want = addr("198.18.0.2:5");
  for (int o = 0; o < 2; o++) {
    kw__paths t;
    kw__paths_init(&t);
    for (int i = 0; i < 3; i++)
      add_rtt(&t, order[o][i], 10 * MS);
    int s = sel(&t, NULL);
    const kw__path *p = kw__paths_get(&t, s);
    assert_non_null(p);
    assert_int_equal(p->addr.port, want.port);
    assert_memory_equal(p->addr.ip, want.ip, 4);
  }
}

/* ---- redundant paths ---------------------------------------------------- */

static void test_rule_redundant_direct_paths_closed(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  add_rtt(&t, NULL, 5 * MS);
  int a = add_rtt(&t, "198.18.0.1:1", 30 * MS);
  int b = add_rtt(&t, "198.18.0.2:1", 10 * MS);
  int c = add_rtt(&t, "198.18.0.3:1", 20 * MS);
  add(&t, "198.18.0.4:1", KW_PSRC_APP, 0); /* unknown: not open */
  assert_int_equal(sel(&t, NULL), b);
  int out[8];
  size_t n = kw__paths_redundant(&t, out, 8);
  assert_int_equal(n, 2);
  assert_int_equal(out[0], a < c ? a : c);
  assert_int_equal(out[1], a < c ? c : a);
  /* A short buffer still reports the count. */
  assert_int_equal(kw__paths_redundant(&t, out, 1), 2);
  assert_int_equal(kw__paths_redundant(NULL, out, 8), 0);
}

static void test_rule_never_close_last_direct_nor_relay(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  int r = add_rtt(&t, NULL, 5 * MS);
  int a = add_rtt(&t, "198.18.0.1:1", 30 * MS);
  assert_int_equal(sel(&t, NULL), a);
  int out[8];
  assert_int_equal(kw__paths_redundant(&t, out, 8), 0);
  /* Relay selected (no validated direct): the relay stays. */
  assert_int_equal(kw__paths_set_state(&t, a, KW_PST_UNUSABLE, 0), KW_OK);
  assert_int_equal(sel(&t, NULL), r);
  assert_int_equal(kw__paths_redundant(&t, out, 8), 0);
  /* Nothing selected yet, two validated direct paths: keep the best. */
  kw__paths_init(&t);
  int x = add_rtt(&t, "198.18.0.1:1", 30 * MS);
  int y = add_rtt(&t, "198.18.0.2:1", 10 * MS);
  assert_int_equal(kw__paths_selected(&t), KW_PATHS_NONE);
  assert_int_equal(kw__paths_redundant(&t, out, 8), 1);
  assert_int_equal(out[0], x);
  (void)y;
}

/* ---- limits -------------------------------------------------------------- */

static void test_rule_limit_exactly_30_ip_paths(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  add(&t, NULL, KW_PSRC_APP, 0);
  for (int i = 0; i < KW_PATHS_MAX_IP; i++) {
    kw_sockaddr a = nth(i);
    int idx;
    assert_int_equal(
        kw__paths_add(&t, &a, KW_PSRC_APP, (uint64_t)i, &idx, NULL), KW_OK);
    assert_int_equal(kw__paths_set_state(&t, idx, KW_PST_VALIDATED, 0), KW_OK);
  }
  assert_int_equal(kw__paths_count_ip(&t), 30);
  /* All 30 validated: a 31st unknown path is the lowest priority. */
  kw_sockaddr extra = nth(30);
  int idx = 77;
  assert_int_equal(kw__paths_add(&t, &extra, KW_PSRC_APP, 99, &idx, NULL),
                   KW_ERR_FULL);
  assert_int_equal(idx, KW_PATHS_NONE);
  assert_int_equal(kw__paths_count_ip(&t), 30);
  assert_int_equal(kw__paths_find(&t, &extra), KW_PATHS_NONE);
  /* The relay is still there; it never counted. */
  assert_int_equal(kw__paths_find(&t, NULL), KW_PATHS_RELAY);
  /* Adding a source to a known path needs no room. */
  kw_sockaddr first = nth(0);
  assert_int_equal(kw__paths_add(&t, &first, KW_PSRC_DISCO, 99, &idx, NULL),
                   KW_OK);
}

static void test_rule_prune_oldest_inactive_first(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  int idx[KW_PATHS_MAX_IP];
  for (int i = 0; i < KW_PATHS_MAX_IP; i++) {
    kw_sockaddr a = nth(i);
    assert_int_equal(
        kw__paths_add(&t, &a, KW_PSRC_CONN, (uint64_t)i, &idx[i], NULL), KW_OK);
  }
  /* Two inactive ones, the later-added one inactive for longer. One
   * unusable path (lower priority than anything but inactive). */
  assert_int_equal(kw__paths_set_state(&t, idx[20], KW_PST_INACTIVE, 100),
                   KW_OK);
  assert_int_equal(kw__paths_set_state(&t, idx[10], KW_PST_INACTIVE, 200),
                   KW_OK);
  assert_int_equal(kw__paths_set_state(&t, idx[5], KW_PST_UNUSABLE, 50), KW_OK);
  kw_sockaddr extra = nth(30);
  int e;
  assert_int_equal(kw__paths_add(&t, &extra, KW_PSRC_LOOKUP, 300, &e, NULL),
                   KW_OK);
  kw_sockaddr a20 = nth(20), a10 = nth(10), a5 = nth(5);
  assert_int_equal(kw__paths_find(&t, &a20), KW_PATHS_NONE);
  assert_int_not_equal(kw__paths_find(&t, &a10), KW_PATHS_NONE);
  assert_int_not_equal(kw__paths_find(&t, &a5), KW_PATHS_NONE);
  /* Next: the other inactive one, still before the unusable one. */
  kw_sockaddr extra2 = nth(31);
  assert_int_equal(kw__paths_add(&t, &extra2, KW_PSRC_LOOKUP, 301, &e, NULL),
                   KW_OK);
  assert_int_equal(kw__paths_find(&t, &a10), KW_PATHS_NONE);
  assert_int_not_equal(kw__paths_find(&t, &a5), KW_PATHS_NONE);
  /* Then the lowest priority: the unusable one. */
  kw_sockaddr extra3 = nth(32);
  assert_int_equal(kw__paths_add(&t, &extra3, KW_PSRC_LOOKUP, 302, &e, NULL),
                   KW_OK);
  assert_int_equal(kw__paths_find(&t, &a5), KW_PATHS_NONE);
  assert_int_equal(kw__paths_count_ip(&t), 30);
}

static void test_rule_prune_lowest_priority_order(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  /* 30 paths: all validated from a connection, except a few lower ones. */
  int idx[KW_PATHS_MAX_IP];
  for (int i = 0; i < KW_PATHS_MAX_IP; i++) {
    kw_sockaddr a = nth(i);
    assert_int_equal(
        kw__paths_add(&t, &a, KW_PSRC_CONN, (uint64_t)i, &idx[i], NULL), KW_OK);
    kw__paths_set_state(&t, idx[i], KW_PST_VALIDATED, 0);
  }
  /* Expected pruning order: 2 (unknown, lookup, older), 3 (unknown,
   * lookup), 4 (unknown, app); 7 (validating) outranks a new path. */
  t.p[idx[2]].sources = KW_PSRC_LOOKUP;
  t.p[idx[3]].sources = KW_PSRC_LOOKUP;
  t.p[idx[4]].sources = KW_PSRC_APP;
  kw__paths_set_state(&t, idx[2], KW_PST_UNKNOWN, 0);
  kw__paths_set_state(&t, idx[3], KW_PST_UNKNOWN, 0);
  kw__paths_set_state(&t, idx[4], KW_PST_UNKNOWN, 0);
  kw__paths_set_state(&t, idx[7], KW_PST_VALIDATING, 0);
  int expect[] = {2, 3, 4};
  for (int k = 0; k < 3; k++) {
    kw_sockaddr fresh = nth(40 + k);
    int e;
    /* The fresh path comes from a connection: higher than all of them. */
    assert_int_equal(kw__paths_add(&t, &fresh, KW_PSRC_CONN, 1000, &e, NULL),
                     KW_OK);
    kw__paths_set_state(&t, e, KW_PST_VALIDATED, 0);
    kw_sockaddr gone = nth(expect[k]);
    assert_int_equal(kw__paths_find(&t, &gone), KW_PATHS_NONE);
    for (int j = k + 1; j < 3; j++) {
      kw_sockaddr stay = nth(expect[j]);
      assert_int_not_equal(kw__paths_find(&t, &stay), KW_PATHS_NONE);
    }
  }
  /* Now the lowest is validating (idx 7): a new path, unknown until
   * validated, ranks below it and is refused. */
  kw_sockaddr fresh = nth(50);
  assert_int_equal(kw__paths_add(&t, &fresh, KW_PSRC_CONN, 1001, NULL, NULL),
                   KW_ERR_FULL);
  kw_sockaddr a7 = nth(7);
  assert_int_not_equal(kw__paths_find(&t, &a7), KW_PATHS_NONE);
}

static void test_rule_new_unknown_replaces_older_unknown(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  for (int i = 0; i < KW_PATHS_MAX_IP; i++) {
    kw_sockaddr a = nth(i);
    assert_int_equal(
        kw__paths_add(&t, &a, KW_PSRC_APP, (uint64_t)i, NULL, NULL), KW_OK);
  }
  /* Same state and source: the oldest goes. */
  kw_sockaddr extra = nth(30);
  int e;
  assert_int_equal(kw__paths_add(&t, &extra, KW_PSRC_APP, 50, &e, NULL), KW_OK);
  kw_sockaddr a0 = nth(0), a1 = nth(1);
  assert_int_equal(kw__paths_find(&t, &a0), KW_PATHS_NONE);
  assert_int_not_equal(kw__paths_find(&t, &a1), KW_PATHS_NONE);
  assert_int_equal(kw__paths_find(&t, &extra), e);
  /* A lower source than all present is refused. */
  kw_sockaddr extra2 = nth(31);
  assert_int_equal(kw__paths_add(&t, &extra2, KW_PSRC_LOOKUP, 51, &e, NULL),
                   KW_ERR_FULL);
  assert_int_equal(kw__paths_count_ip(&t), 30);
}

static void test_rule_limit_exactly_10_inactive(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  int idx[12];
  for (int i = 0; i < 12; i++) {
    kw_sockaddr a = nth(i);
    assert_int_equal(
        kw__paths_add(&t, &a, KW_PSRC_APP, (uint64_t)i, &idx[i], NULL), KW_OK);
  }
  for (int i = 0; i < 10; i++)
    assert_int_equal(
        kw__paths_set_state(&t, idx[i], KW_PST_INACTIVE, 100 + (uint64_t)i),
        KW_OK);
  assert_int_equal(kw__paths_count_inactive(&t), 10);
  assert_int_equal(kw__paths_count_ip(&t), 12);
  /* The 11th inactive prunes the one inactive the longest (idx 0). */
  assert_int_equal(kw__paths_set_state(&t, idx[10], KW_PST_INACTIVE, 200),
                   KW_OK);
  assert_int_equal(kw__paths_count_inactive(&t), 10);
  assert_int_equal(kw__paths_count_ip(&t), 11);
  kw_sockaddr a0 = nth(0), a1 = nth(1), a10 = nth(10);
  assert_int_equal(kw__paths_find(&t, &a0), KW_PATHS_NONE);
  assert_int_not_equal(kw__paths_find(&t, &a1), KW_PATHS_NONE);
  assert_int_not_equal(kw__paths_find(&t, &a10), KW_PATHS_NONE);
  /* Setting inactive again does not reset its age. */
  assert_int_equal(kw__paths_set_state(&t, idx[1], KW_PST_INACTIVE, 500),
                   KW_OK);
  assert_int_equal(kw__paths_get(&t, idx[1])->inactive_since, 101);
  assert_int_equal(kw__paths_set_state(&t, idx[11], KW_PST_INACTIVE, 201),
                   KW_OK);
  assert_int_equal(kw__paths_find(&t, &a1), KW_PATHS_NONE);
}

static void test_rule_selected_never_pruned(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  kw_sockaddr a0 = nth(0);
  int s;
  assert_int_equal(kw__paths_add(&t, &a0, KW_PSRC_LOOKUP, 0, &s, NULL), KW_OK);
  assert_int_equal(kw__paths_rtt_sample(&t, s, 0, 1 * MS), KW_OK);
  assert_int_equal(sel(&t, NULL), s);
  int idx[11];
  for (int i = 1; i <= 10; i++) {
    kw_sockaddr a = nth(i);
    assert_int_equal(kw__paths_add(&t, &a, KW_PSRC_CONN, 1, &idx[i], NULL),
                     KW_OK);
    assert_int_equal(
        kw__paths_set_state(&t, idx[i], KW_PST_INACTIVE, 100 + (uint64_t)i),
        KW_OK);
  }
  /* The selected path goes inactive, inactive the longest of all (since
   * 50): the limit prunes the oldest other inactive path instead. */
  assert_int_equal(kw__paths_set_state(&t, s, KW_PST_INACTIVE, 50), KW_OK);
  assert_int_equal(kw__paths_find(&t, &a0), s);
  kw_sockaddr a1 = nth(1), a2 = nth(2);
  assert_int_equal(kw__paths_find(&t, &a1), KW_PATHS_NONE);
  assert_int_not_equal(kw__paths_find(&t, &a2), KW_PATHS_NONE);
  assert_int_equal(kw__paths_count_inactive(&t), 10);
  /* Once deselected it is prunable like any other. */
  assert_int_equal(sel(&t, NULL), KW_PATHS_NONE);
  kw_sockaddr a11 = nth(11);
  int e;
  assert_int_equal(kw__paths_add(&t, &a11, KW_PSRC_APP, 200, &e, NULL), KW_OK);
  assert_int_equal(kw__paths_set_state(&t, e, KW_PST_INACTIVE, 200), KW_OK);
  assert_int_equal(kw__paths_find(&t, &a0), KW_PATHS_NONE);
}

static void test_has_direct_within_10ms_boundary(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  add_rtt(&t, NULL, 1 * MS); /* relay does not count */
  assert_false(kw__paths_has_direct_within(&t, 10 * MS));
  int a = add_rtt(&t, "198.18.0.1:1", 10 * MS + 1);
  assert_false(kw__paths_has_direct_within(&t, 10 * MS));
  assert_int_equal(kw__paths_rtt_sample(&t, a, 1, 10 * MS), KW_OK);
  assert_true(kw__paths_has_direct_within(&t, 10 * MS));
  assert_int_equal(kw__paths_set_state(&t, a, KW_PST_INACTIVE, 0), KW_OK);
  assert_false(kw__paths_has_direct_within(&t, 10 * MS));
}

/* A path remembers that it was validated once (the io layer races such a
 * path again; one never validated, that only disco named, it does not). */
static void test_ever_validated_is_remembered(void **state) {
  (void)state;
  kw__paths t;
  kw__paths_init(&t);
  kw_sockaddr a = addr("198.18.0.1:1"), b = addr("198.18.0.2:2");
  int ia, ib;
  assert_int_equal(kw__paths_add(&t, &a, KW_PSRC_DISCO, 1, &ia, NULL), KW_OK);
  assert_int_equal(kw__paths_add(&t, &b, KW_PSRC_DISCO, 1, &ib, NULL), KW_OK);
  assert_false(kw__paths_get(&t, ia)->ever_validated);
  assert_int_equal(kw__paths_set_state(&t, ia, KW_PST_VALIDATING, 2), KW_OK);
  assert_int_equal(kw__paths_set_state(&t, ia, KW_PST_INACTIVE, 3), KW_OK);
  assert_false(kw__paths_get(&t, ia)->ever_validated);
  assert_int_equal(kw__paths_set_state(&t, ia, KW_PST_VALIDATED, 4), KW_OK);
  assert_int_equal(kw__paths_set_state(&t, ia, KW_PST_INACTIVE, 5), KW_OK);
  assert_true(kw__paths_get(&t, ia)->ever_validated);
  assert_int_equal(kw__paths_rtt_sample(&t, ib, 0, 5 * MS), KW_OK);
  assert_true(kw__paths_get(&t, ib)->ever_validated);
  kw__paths_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_selects_none),
      cmocka_unit_test(test_ever_validated_is_remembered),
      cmocka_unit_test(test_add_find_merge_sources),
      cmocka_unit_test(test_add_rejections),
      cmocka_unit_test(test_rule_states_only_validated_selectable),
      cmocka_unit_test(test_rtt_sample_validates_but_not_unusable),
      cmocka_unit_test(test_rule_primary_beats_backup_whatever_rtt),
      cmocka_unit_test(test_rule_lowest_rtt_wins_within_kind),
      cmocka_unit_test(test_rule_rtt_is_min_over_connections),
      cmocka_unit_test(test_rule_ipv6_3ms_advantage),
      cmocka_unit_test(test_rule_hysteresis_4ms_keeps),
      cmocka_unit_test(test_rule_hysteresis_exactly_5ms_switches),
      cmocka_unit_test(test_rule_hysteresis_counts_ipv6_bonus),
      cmocka_unit_test(test_rule_no_current_picks_best),
      cmocka_unit_test(test_rule_unusable_current_replaced_at_once),
      cmocka_unit_test(test_rule_current_without_rtt_replaced),
      cmocka_unit_test(test_rule_ties_are_deterministic),
      cmocka_unit_test(test_rule_redundant_direct_paths_closed),
      cmocka_unit_test(test_rule_never_close_last_direct_nor_relay),
      cmocka_unit_test(test_rule_limit_exactly_30_ip_paths),
      cmocka_unit_test(test_rule_prune_oldest_inactive_first),
      cmocka_unit_test(test_rule_prune_lowest_priority_order),
      cmocka_unit_test(test_rule_new_unknown_replaces_older_unknown),
      cmocka_unit_test(test_rule_limit_exactly_10_inactive),
      cmocka_unit_test(test_rule_selected_never_pruned),
      cmocka_unit_test(test_has_direct_within_10ms_boundary),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
