/* SPDX-License-Identifier: MIT */
/* Unit tests of core/holepunch: the scheduling rules of
 * docs/protocol/disco.md ("Hole punching"), each by name, on a
 * hand-advanced clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/holepunch.h"

#define MS 1000000ull
#define S 1000000000ull
#define T0 (1000 * S)

/* A scheduler with one connection whose first round ran at T0. */
static void started(kw__holepunch *hp) {
  kw__holepunch_init(hp);
  kw__holepunch_conn_added(hp, T0);
  assert_true(kw__holepunch_poll(hp, T0));
  assert_int_equal(hp->rounds, 1);
}

static void test_idle_without_connection(void **state) {
  (void)state;
  kw__holepunch hp;
  kw__holepunch_init(&hp);
  assert_int_equal(kw__holepunch_next_deadline(&hp), KW_HP_NEVER);
  kw__holepunch_local_candidates(&hp, T0);
  kw__holepunch_remote_candidates(&hp, T0);
  kw__holepunch_network_change(&hp, T0);
  kw__holepunch_round_failed(&hp, T0);
  assert_int_equal(kw__holepunch_next_deadline(&hp), KW_HP_NEVER);
  assert_false(kw__holepunch_poll(&hp, T0 + 100 * S));
  assert_int_equal(hp.rounds, 0);
}

static void test_rule_trigger_connection_added(void **state) {
  (void)state;
  kw__holepunch hp;
  kw__holepunch_init(&hp);
  kw__holepunch_conn_added(&hp, T0);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0);
  assert_true(kw__holepunch_poll(&hp, T0));
  /* Once only. */
  assert_false(kw__holepunch_poll(&hp, T0));
  assert_false(kw__holepunch_poll(&hp, T0 + 1 * S));
}

static void test_rule_trigger_new_local_candidates(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  /* New candidates bypass the 5 s throttle: a round right away. */
  kw__holepunch_local_candidates(&hp, T0 + 1 * MS);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 1 * MS);
  assert_true(kw__holepunch_poll(&hp, T0 + 1 * MS));
}

static void test_rule_trigger_new_remote_candidates(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_remote_candidates(&hp, T0 + 2 * S);
  assert_true(kw__holepunch_poll(&hp, T0 + 2 * S));
}

static void test_rule_trigger_major_network_change(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_network_change(&hp, T0 + 1);
  assert_true(kw__holepunch_poll(&hp, T0 + 1));
}

static void test_rule_trigger_direct_path_lost(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  /* 1 s after a round, inside the throttle: a lost path still runs now */
  kw__holepunch_path_lost(&hp, T0 + 1 * S);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 1 * S);
  assert_true(kw__holepunch_poll(&hp, T0 + 1 * S));
  assert_int_equal(hp.rounds, 2);
  /* without a connection it is only remembered */
  kw__holepunch_conn_removed(&hp, T0 + 2 * S);
  kw__holepunch_path_lost(&hp, T0 + 3 * S);
  assert_int_equal(kw__holepunch_next_deadline(&hp), KW_HP_NEVER);
  assert_false(kw__holepunch_poll(&hp, T0 + 3 * S));
}

static void test_rule_recovery_rounds_after_a_lost_path(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_set_good_direct(&hp, false);
  const uint64_t L = T0 + 100 * S; /* the direct path is lost here */
  kw__holepunch_path_lost(&hp, L);
  assert_true(kw__holepunch_poll(&hp, L)); /* at once */
  /* then 5, 15 and 35 s after the loss, nothing in between */
  assert_int_equal(kw__holepunch_next_deadline(&hp), L + 5 * S);
  assert_false(kw__holepunch_poll(&hp, L + 5 * S - 1));
  assert_true(kw__holepunch_poll(&hp, L + 5 * S));
  assert_int_equal(kw__holepunch_next_deadline(&hp), L + 15 * S);
  assert_false(kw__holepunch_poll(&hp, L + 15 * S - 1));
  assert_true(kw__holepunch_poll(&hp, L + 15 * S));
  assert_int_equal(kw__holepunch_next_deadline(&hp), L + 35 * S);
  assert_true(kw__holepunch_poll(&hp, L + 35 * S));
  assert_int_equal(hp.rounds, 5);
  /* after the last one only the upgrade check is left: 60 s later */
  assert_int_equal(kw__holepunch_next_deadline(&hp), L + 95 * S);
  assert_false(kw__holepunch_poll(&hp, L + 95 * S - 1));
  assert_true(kw__holepunch_poll(&hp, L + 95 * S));
}

static void test_rule_recovery_stops_when_direct_again(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  const uint64_t L = T0 + 100 * S;
  kw__holepunch_path_lost(&hp, L);
  assert_true(kw__holepunch_poll(&hp, L));
  kw__holepunch_direct_again(&hp);
  assert_int_equal(kw__holepunch_next_deadline(&hp), L + 60 * S);
  assert_false(kw__holepunch_poll(&hp, L + 5 * S));
  assert_false(kw__holepunch_poll(&hp, L + 15 * S));
  assert_int_equal(hp.rounds, 2);
  /* a connection-less remote keeps no recovery either */
  kw__holepunch_path_lost(&hp, L + 20 * S);
  kw__holepunch_conn_removed(&hp, L + 20 * S);
  assert_int_equal(kw__holepunch_next_deadline(&hp), KW_HP_NEVER);
  kw__holepunch_conn_added(&hp, L + 21 * S);
  assert_true(kw__holepunch_poll(&hp, L + 21 * S));
  assert_int_equal(kw__holepunch_next_deadline(&hp), L + 81 * S);
}

static void test_rule_throttle_5s_at_4999ms_defers(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  /* A second connection with no new candidates 4.999 s later: deferred to
   * exactly 5 s after the last round. */
  kw__holepunch_conn_added(&hp, T0 + 4999 * MS);
  assert_false(kw__holepunch_poll(&hp, T0 + 4999 * MS));
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 5 * S);
  assert_false(kw__holepunch_poll(&hp, T0 + 5 * S - 1));
  assert_true(kw__holepunch_poll(&hp, T0 + 5 * S));
  assert_int_equal(hp.rounds, 2);
}

static void test_rule_throttle_5s_at_5s_runs(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_conn_added(&hp, T0 + 5 * S);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 5 * S);
  assert_true(kw__holepunch_poll(&hp, T0 + 5 * S));
}

static void test_rule_throttle_many_triggers_one_round(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  for (int i = 1; i <= 40; i++) {
    kw__holepunch_conn_added(&hp, T0 + (uint64_t)i * 100 * MS);
    assert_false(kw__holepunch_poll(&hp, T0 + (uint64_t)i * 100 * MS));
  }
  assert_true(kw__holepunch_poll(&hp, T0 + 5 * S));
  assert_int_equal(hp.rounds, 2);
  assert_false(kw__holepunch_poll(&hp, T0 + 5 * S + 1));
}

static void test_rule_candidates_while_deferred_run_now(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_conn_added(&hp, T0 + 1 * S); /* deferred to T0+5 s */
  kw__holepunch_remote_candidates(&hp, T0 + 2 * S);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 2 * S);
  assert_true(kw__holepunch_poll(&hp, T0 + 2 * S));
  /* The deferred one was folded into it. */
  assert_false(kw__holepunch_poll(&hp, T0 + 5 * S));
  assert_int_equal(hp.rounds, 2);
}

static void test_rule_candidates_before_connection_remembered(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_conn_removed(&hp, T0 + 1 * S);
  kw__holepunch_local_candidates(&hp, T0 + 2 * S);
  assert_false(kw__holepunch_poll(&hp, T0 + 2 * S));
  /* A connection 3 s after the last round: the candidates are new, so no
   * throttle. */
  kw__holepunch_conn_added(&hp, T0 + 3 * S);
  assert_true(kw__holepunch_poll(&hp, T0 + 3 * S));
}

static void test_rule_upgrade_check_every_60s(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + KW_HP_UPGRADE_NS);
  assert_int_equal(KW_HP_UPGRADE_NS, 60 * S);
  kw__holepunch_set_good_direct(&hp, false);
  assert_false(kw__holepunch_poll(&hp, T0 + 60 * S - 1));
  assert_true(kw__holepunch_poll(&hp, T0 + 60 * S));
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 120 * S);
  assert_true(kw__holepunch_poll(&hp, T0 + 120 * S));
  assert_int_equal(hp.rounds, 3);
}

static void test_rule_upgrade_skipped_with_good_direct(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_set_good_direct(&hp, true);
  assert_false(kw__holepunch_poll(&hp, T0 + 60 * S));
  assert_int_equal(hp.rounds, 1);
  /* The check repeats 60 s later. */
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 120 * S);
  kw__holepunch_set_good_direct(&hp, false);
  assert_false(kw__holepunch_poll(&hp, T0 + 120 * S - 1));
  assert_true(kw__holepunch_poll(&hp, T0 + 120 * S));
}

static void test_rule_upgrade_counts_from_last_round(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_local_candidates(&hp, T0 + 30 * S);
  assert_true(kw__holepunch_poll(&hp, T0 + 30 * S));
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 90 * S);
  assert_false(kw__holepunch_poll(&hp, T0 + 60 * S));
}

static void test_rule_transient_failure_retries_after_100ms(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_round_failed(&hp, T0);
  assert_int_equal(KW_HP_RETRY_NS, 100 * MS);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 100 * MS);
  assert_false(kw__holepunch_poll(&hp, T0 + 100 * MS - 1));
  /* Retried although the last round is only 100 ms old. */
  assert_true(kw__holepunch_poll(&hp, T0 + 100 * MS));
  /* A second failure retries again. */
  kw__holepunch_round_failed(&hp, T0 + 100 * MS);
  assert_true(kw__holepunch_poll(&hp, T0 + 200 * MS));
  assert_int_equal(hp.rounds, 3);
}

static void test_failure_does_not_delay_an_earlier_round(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_local_candidates(&hp, T0 + 1 * S); /* due now */
  kw__holepunch_round_failed(&hp, T0 + 1 * S);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 1 * S);
}

static void test_last_connection_removed_stops(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  kw__holepunch_conn_added(&hp, T0 + 1 * S); /* 2 connections, deferred */
  kw__holepunch_conn_removed(&hp, T0 + 2 * S);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 5 * S);
  kw__holepunch_conn_removed(&hp, T0 + 2 * S);
  assert_int_equal(kw__holepunch_next_deadline(&hp), KW_HP_NEVER);
  assert_false(kw__holepunch_poll(&hp, T0 + 500 * S));
  kw__holepunch_conn_removed(&hp, T0 + 600 * S); /* below zero: ignored */
  assert_int_equal(hp.n_conns, 0);
  kw__holepunch_conn_added(&hp, T0 + 700 * S);
  assert_true(kw__holepunch_poll(&hp, T0 + 700 * S));
}

static void test_time_never_goes_backwards(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  /* A trigger stamped before the last round counts as "now" (T0): it is
   * throttled to T0 + 5 s, not scheduled in the past. */
  kw__holepunch_conn_added(&hp, T0 - 10 * S);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + 5 * S);
  assert_false(kw__holepunch_poll(&hp, T0 - 1 * S));
  assert_true(kw__holepunch_poll(&hp, T0 + 5 * S));
}

static void test_null_is_harmless(void **state) {
  (void)state;
  kw__holepunch_init(NULL);
  kw__holepunch_conn_added(NULL, 0);
  kw__holepunch_conn_removed(NULL, 0);
  kw__holepunch_local_candidates(NULL, 0);
  kw__holepunch_remote_candidates(NULL, 0);
  kw__holepunch_network_change(NULL, 0);
  kw__holepunch_path_lost(NULL, 0);
  kw__holepunch_direct_again(NULL);
  kw__holepunch_round_failed(NULL, 0);
  kw__holepunch_set_good_direct(NULL, true);
  assert_int_equal(kw__holepunch_next_deadline(NULL), KW_HP_NEVER);
  assert_false(kw__holepunch_poll(NULL, 0));
}

/* ---- answering a CallMeMaybe without new candidates ---------------------- */

static void test_answer_at_most_every_2s(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp); /* a round at T0: no reason to stay silent */
  assert_true(kw__holepunch_answer(&hp, T0));
  assert_false(kw__holepunch_answer(&hp, T0 + 1));
  assert_false(kw__holepunch_answer(&hp, T0 + KW_HP_ANSWER_MIN_NS - 1));
  assert_true(kw__holepunch_answer(&hp, T0 + KW_HP_ANSWER_MIN_NS));
  assert_false(kw__holepunch_answer(&hp, T0 + 2 * KW_HP_ANSWER_MIN_NS - 1));
  assert_true(kw__holepunch_answer(&hp, T0 + 2 * KW_HP_ANSWER_MIN_NS));
  /* an answer is no round: the schedule is untouched */
  assert_int_equal(hp.rounds, 1);
  assert_int_equal(kw__holepunch_next_deadline(&hp), T0 + KW_HP_UPGRADE_NS);
}

static void test_answer_flood_bounded(void **state) {
  (void)state;
  kw__holepunch hp;
  started(&hp);
  /* 200 CallMeMaybes at 50/s: one answer per 2 s */
  int answers = 0;
  for (int i = 0; i < 200; i++)
    answers += kw__holepunch_answer(&hp, T0 + 5 * S + (uint64_t)i * 20 * MS);
  assert_int_equal(answers, 2); /* at 5 s and 7 s; 9 s is past the flood */
}

static void test_answer_before_a_connection(void **state) {
  (void)state;
  kw__holepunch hp;
  kw__holepunch_init(&hp);
  /* the remote's CallMeMaybe before our side of the handshake is done */
  assert_true(kw__holepunch_answer(&hp, T0));
  assert_false(kw__holepunch_answer(&hp, T0 + S));
  assert_false(kw__holepunch_answer(NULL, T0));
}

/* ---- token buckets and the probe budget --------------------------------- */

static void test_tbucket_burst_then_rate(void **state) {
  (void)state;
  kw__tbucket b;
  kw__tbucket_init(&b, 10, 5);
  assert_int_equal(kw__tbucket_avail(&b, T0), 10);
  for (int i = 0; i < 10; i++)
    assert_true(kw__tbucket_take(&b, T0, 1));
  assert_false(kw__tbucket_take(&b, T0, 1));
  /* 5 per second: one token every 200 ms, exactly */
  assert_false(kw__tbucket_take(&b, T0 + 200 * MS - 1, 1));
  assert_true(kw__tbucket_take(&b, T0 + 200 * MS, 1));
  assert_false(kw__tbucket_take(&b, T0 + 200 * MS, 1));
  /* never more than the burst, however long it rested */
  assert_int_equal(kw__tbucket_avail(&b, T0 + 3600 * S), 10);
  assert_int_equal(kw__tbucket_avail(&b, UINT64_MAX), 10);
  /* more than the burst at once: never */
  assert_false(kw__tbucket_take(&b, UINT64_MAX, 11));
  assert_true(kw__tbucket_take(&b, UINT64_MAX, 10));
  /* time going backwards refills nothing */
  assert_int_equal(kw__tbucket_avail(&b, T0), 0);
  assert_false(kw__tbucket_take(NULL, T0, 1));
  assert_int_equal(kw__tbucket_avail(NULL, T0), 0);
}

static void test_tbucket_huge_values(void **state) {
  (void)state;
  kw__tbucket b;
  kw__tbucket_init(&b, UINT64_MAX, UINT64_MAX);
  assert_true(kw__tbucket_take(&b, 0, 1000));
  assert_true(kw__tbucket_avail(&b, UINT64_MAX) > 1000);
  kw__tbucket_init(&b, 1, 0); /* never refills */
  assert_true(kw__tbucket_take(&b, 0, 1));
  assert_false(kw__tbucket_take(&b, UINT64_MAX, 1));
}

/* Over any interval of T seconds a remote gets at most BURST + RATE * T
 * probes, in packets and in bytes, whatever it asks. */
static void test_probe_budget_bound_per_remote(void **state) {
  (void)state;
  kw__probe_budget r, ep;
  kw__probe_budget_init_remote(&r);
  kw__probe_budget_init_endpoint(&ep);
  uint64_t sent = 0, bytes = 0;
  /* asked 16 Pings of 133 bytes 50 times a second for 10 s */
  for (int i = 0; i < 500; i++)
    for (int j = 0; j < 16; j++)
      if (kw__probe_allow(&r, &ep, T0 + (uint64_t)i * 20 * MS, 133)) {
        sent++;
        bytes += 133;
      }
  uint64_t t = 10; /* seconds */
  assert_true(sent <= KW_PROBE_REMOTE_BURST_PKTS + KW_PROBE_REMOTE_PKTS_S * t);
  assert_true(bytes <=
              KW_PROBE_REMOTE_BURST_BYTES + KW_PROBE_REMOTE_BYTES_S * t);
  assert_true(sent >= 32 + 8 * 9); /* and it does get its rate */
  assert_true(r.refused == 500 * 16 - sent);
  /* the bytes bucket binds too: large probes run out before the count */
  kw__probe_budget_init_remote(&r);
  int big = 0;
  while (kw__probe_allow(&r, NULL, T0, 1400))
    big++;
  assert_int_equal(big, KW_PROBE_REMOTE_BURST_BYTES / 1400);
  assert_false(kw__probe_allow(NULL, &ep, T0, 1));
}

static void test_probe_budget_endpoint_shared(void **state) {
  (void)state;
  kw__probe_budget ep, r[20];
  kw__probe_budget_init_endpoint(&ep);
  for (int i = 0; i < 20; i++)
    kw__probe_budget_init_remote(&r[i]);
  /* 20 remotes, each within its own burst, share the endpoint's */
  uint64_t sent = 0;
  for (int i = 0; i < 20; i++)
    for (int j = 0; j < KW_PROBE_REMOTE_BURST_PKTS; j++)
      sent += kw__probe_allow(&r[i], &ep, T0, 133);
  assert_int_equal(sent, KW_PROBE_EP_BURST_PKTS);
  /* a refusal by the endpoint takes nothing from the remote */
  uint64_t left = kw__tbucket_avail(&r[19].pkts, T0);
  assert_false(kw__probe_allow(&r[19], &ep, T0, 133));
  assert_int_equal(kw__tbucket_avail(&r[19].pkts, T0), left);
  /* one second later: the endpoint's rate */
  sent = 0;
  for (int i = 0; i < 20; i++)
    for (int j = 0; j < KW_PROBE_REMOTE_BURST_PKTS; j++)
      sent += kw__probe_allow(&r[i], &ep, T0 + S, 133);
  assert_int_equal(sent, KW_PROBE_EP_PKTS_S);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_answer_at_most_every_2s),
      cmocka_unit_test(test_answer_flood_bounded),
      cmocka_unit_test(test_answer_before_a_connection),
      cmocka_unit_test(test_tbucket_burst_then_rate),
      cmocka_unit_test(test_tbucket_huge_values),
      cmocka_unit_test(test_probe_budget_bound_per_remote),
      cmocka_unit_test(test_probe_budget_endpoint_shared),
      cmocka_unit_test(test_idle_without_connection),
      cmocka_unit_test(test_rule_trigger_connection_added),
      cmocka_unit_test(test_rule_trigger_new_local_candidates),
      cmocka_unit_test(test_rule_trigger_new_remote_candidates),
      cmocka_unit_test(test_rule_trigger_major_network_change),
      cmocka_unit_test(test_rule_trigger_direct_path_lost),
      cmocka_unit_test(test_rule_recovery_rounds_after_a_lost_path),
      cmocka_unit_test(test_rule_recovery_stops_when_direct_again),
      cmocka_unit_test(test_rule_throttle_5s_at_4999ms_defers),
      cmocka_unit_test(test_rule_throttle_5s_at_5s_runs),
      cmocka_unit_test(test_rule_throttle_many_triggers_one_round),
      cmocka_unit_test(test_rule_candidates_while_deferred_run_now),
      cmocka_unit_test(test_rule_candidates_before_connection_remembered),
      cmocka_unit_test(test_rule_upgrade_check_every_60s),
      cmocka_unit_test(test_rule_upgrade_skipped_with_good_direct),
      cmocka_unit_test(test_rule_upgrade_counts_from_last_round),
      cmocka_unit_test(test_rule_transient_failure_retries_after_100ms),
      cmocka_unit_test(test_failure_does_not_delay_an_earlier_round),
      cmocka_unit_test(test_last_connection_removed_stops),
      cmocka_unit_test(test_time_never_goes_backwards),
      cmocka_unit_test(test_null_is_harmless),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
