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

int main(void) {
  const struct CMUnitTest tests[] = {
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
