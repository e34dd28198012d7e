/* SPDX-License-Identifier: MIT */
/* Unit tests of core/nlmsg: which rtnetlink notifications count as a
 * network change, and how malformed batches are treated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "core/nlmsg.h"

/* Appends one message of `type` with `body` to buf at *off. */
static void put(uint8_t *buf, size_t *off, uint16_t type, const void *body,
                size_t blen) {
  struct nlmsghdr h;
  memset(&h, 0, sizeof h);
  h.nlmsg_len = (uint32_t)(sizeof h + blen);
  h.nlmsg_type = type;
  memcpy(buf + *off, &h, sizeof h);
  if (blen)
    memcpy(buf + *off + sizeof h, body, blen);
  *off += NLMSG_ALIGN(h.nlmsg_len);
}

static void route(uint8_t *buf, size_t *off, uint16_t type, uint8_t dst_len,
                  uint8_t table) {
  struct rtmsg rt;
  memset(&rt, 0, sizeof rt);
  rt.rtm_family = 2;
  rt.rtm_dst_len = dst_len;
  rt.rtm_table = table;
  put(buf, off, type, &rt, sizeof rt);
}

static void test_empty_is_nothing(void **state) {
  (void)state;
  assert_int_equal(kw__nl_classify(NULL, 0), 0);
}

static void test_address_changes(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t off = 0;
  struct ifaddrmsg ia;
  memset(&ia, 0, sizeof ia);
  put(buf, &off, RTM_NEWADDR, &ia, sizeof ia);
  assert_int_equal(kw__nl_classify(buf, off), KW_NL_ADDR);
  off = 0;
  put(buf, &off, RTM_DELADDR, &ia, sizeof ia);
  assert_int_equal(kw__nl_classify(buf, off), KW_NL_ADDR);
}

static void test_default_route_only_counts(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t off = 0;
  route(buf, &off, RTM_NEWROUTE, 24, RT_TABLE_MAIN); /* a LAN route */
  route(buf, &off, RTM_NEWROUTE, 0, RT_TABLE_LOCAL); /* not main */
  assert_int_equal(kw__nl_classify(buf, off), 0);
  route(buf, &off, RTM_DELROUTE, 0, RT_TABLE_MAIN);
  assert_int_equal(kw__nl_classify(buf, off), KW_NL_DEFAULT_ROUTE);
}

static void test_batch_collects_all(void **state) {
  (void)state;
  uint8_t buf[512];
  size_t off = 0;
  struct ifinfomsg li;
  memset(&li, 0, sizeof li);
  put(buf, &off, RTM_NEWLINK, &li, sizeof li);
  route(buf, &off, RTM_NEWROUTE, 0, RT_TABLE_MAIN);
  put(buf, &off, RTM_NEWADDR, "abcd", 4);
  put(buf, &off, NLMSG_DONE, NULL, 0);
  assert_int_equal(kw__nl_classify(buf, off),
                   KW_NL_LINK | KW_NL_DEFAULT_ROUTE | KW_NL_ADDR);
}

static void test_overrun_and_error(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t off = 0;
  put(buf, &off, NLMSG_OVERRUN, NULL, 0);
  assert_int_equal(kw__nl_classify(buf, off), KW_NL_OVERRUN);
  off = 0;
  put(buf, &off, NLMSG_ERROR, "\0\0\0\0", 4);
  assert_int_equal(kw__nl_classify(buf, off), KW_NL_OVERRUN);
}

static void test_malformed_keeps_what_came_before(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t off = 0;
  put(buf, &off, RTM_NEWADDR, NULL, 0);
  /* a header whose length runs past the buffer */
  struct nlmsghdr h;
  memset(&h, 0, sizeof h);
  h.nlmsg_len = 4000;
  h.nlmsg_type = RTM_NEWLINK;
  memcpy(buf + off, &h, sizeof h);
  assert_int_equal(kw__nl_classify(buf, off + sizeof h),
                   KW_NL_ADDR | KW_NL_MALFORMED);
  /* a length below the header's own size */
  h.nlmsg_len = 3;
  memcpy(buf, &h, sizeof h);
  assert_int_equal(kw__nl_classify(buf, sizeof h), KW_NL_MALFORMED);
  /* a short tail */
  assert_int_equal(kw__nl_classify(buf, 7), KW_NL_MALFORMED);
  /* a route message too short for its rtmsg */
  off = 0;
  put(buf, &off, RTM_NEWROUTE, "xx", 2);
  assert_int_equal(kw__nl_classify(buf, off), KW_NL_MALFORMED);
}

static void test_unpadded_last_message(void **state) {
  (void)state;
  uint8_t buf[64];
  size_t off = 0;
  put(buf, &off, RTM_DELADDR, "abc", 3); /* 19 bytes, padded to 20 */
  assert_int_equal(kw__nl_classify(buf, 19), KW_NL_ADDR);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_is_nothing),
      cmocka_unit_test(test_address_changes),
      cmocka_unit_test(test_default_route_only_counts),
      cmocka_unit_test(test_batch_collects_all),
      cmocka_unit_test(test_overrun_and_error),
      cmocka_unit_test(test_malformed_keeps_what_came_before),
      cmocka_unit_test(test_unpadded_last_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
