/* SPDX-License-Identifier: MIT */
/* Unit tests of core/addr_filter (the punishment table, candidate ranks and
 * allow/deny lists) and core/addrlru. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/addr_filter.h"
#include "core/addrlru.h"

#define S 1000000000ull
#define MS 1000000ull

static kw_sockaddr addr(const char *s) {
  kw_sockaddr a;
  assert_int_equal(kw_sockaddr_parse(s, &a), KW_OK);
  return a;
}

static kw_sockaddr nth(uint32_t i) {
  kw_sockaddr a;
  memset(&a, 0, sizeof(a));
  a.family = 4;
  a.ip[0] = 198;
  a.ip[1] = 18 + (uint8_t)(i >> 16 & 1);
  a.ip[2] = (uint8_t)(i >> 8);
  a.ip[3] = (uint8_t)i;
  a.port = 7;
  return a;
}

/* ---- punishment table ---------------------------------------------------- */

static void test_rule_punish_after_strikes(void **state) {
  (void)state;
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  kw_sockaddr a = addr("198.18.0.1:1000");
  uint64_t t = 100 * S;
  assert_false(kw__addr_filter_ignored(&f, &a, t));
  for (int i = 0; i < KW_ADDR_FILTER_STRIKES - 1; i++) {
    assert_false(kw__addr_filter_bad(&f, &a, t + (uint64_t)i * MS));
    assert_false(kw__addr_filter_ignored(&f, &a, t + (uint64_t)i * MS));
  }
  assert_true(kw__addr_filter_bad(&f, &a, t + 10 * MS));
  assert_true(kw__addr_filter_ignored(&f, &a, t + 10 * MS));
  assert_int_equal(f.banned_total, 1);
  /* Only this address: another port, another family are untouched. */
  kw_sockaddr b = addr("198.18.0.1:1001"), c = addr("[::1]:1000");
  assert_false(kw__addr_filter_ignored(&f, &b, t + 10 * MS));
  assert_false(kw__addr_filter_ignored(&f, &c, t + 10 * MS));
  kw__addr_filter_free(&f);
}

static void test_rule_punish_strike_window_boundary(void **state) {
  (void)state;
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  kw_sockaddr a = addr("198.18.0.1:1"), b = addr("198.18.0.2:1");
  uint64_t t = 100 * S;
  for (int i = 0; i < KW_ADDR_FILTER_STRIKES - 1; i++) {
    kw__addr_filter_bad(&f, &a, t);
    kw__addr_filter_bad(&f, &b, t);
  }
  /* Last strike just inside the window bans ... */
  assert_true(
      kw__addr_filter_bad(&f, &a, t + KW_ADDR_FILTER_STRIKE_WINDOW_NS - 1));
  /* ... exactly at the window's end starts a new series instead. */
  assert_false(
      kw__addr_filter_bad(&f, &b, t + KW_ADDR_FILTER_STRIKE_WINDOW_NS));
  assert_false(
      kw__addr_filter_ignored(&f, &b, t + KW_ADDR_FILTER_STRIKE_WINDOW_NS));
  /* The new series needs all strikes again. */
  uint64_t t2 = t + KW_ADDR_FILTER_STRIKE_WINDOW_NS;
  for (int i = 1; i < KW_ADDR_FILTER_STRIKES - 1; i++)
    assert_false(kw__addr_filter_bad(&f, &b, t2 + (uint64_t)i));
  assert_true(kw__addr_filter_bad(&f, &b, t2 + 100));
  kw__addr_filter_free(&f);
}

static void ban(kw__addr_filter *f, const kw_sockaddr *a, uint64_t t) {
  for (int i = 0; i < KW_ADDR_FILTER_STRIKES - 1; i++)
    assert_false(kw__addr_filter_bad(f, a, t));
  assert_true(kw__addr_filter_bad(f, a, t));
}

static void test_rule_punish_ban_duration(void **state) {
  (void)state;
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  kw_sockaddr a = addr("198.18.0.1:1");
  uint64_t t = 100 * S;
  ban(&f, &a, t);
  assert_true(kw__addr_filter_ignored(&f, &a, t + KW_ADDR_FILTER_BAN_NS - 1));
  assert_false(kw__addr_filter_ignored(&f, &a, t + KW_ADDR_FILTER_BAN_NS));
  /* After the ban a fresh series is needed to ban again. */
  uint64_t t2 = t + KW_ADDR_FILTER_BAN_NS;
  assert_false(kw__addr_filter_bad(&f, &a, t2));
  assert_false(kw__addr_filter_ignored(&f, &a, t2));
  kw__addr_filter_free(&f);
}

static void test_rule_punish_banned_packets_do_not_extend(void **state) {
  (void)state;
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  kw_sockaddr a = addr("198.18.0.1:1");
  uint64_t t = 100 * S;
  ban(&f, &a, t);
  for (int i = 0; i < 50; i++)
    assert_false(kw__addr_filter_bad(&f, &a, t + 30 * S + (uint64_t)i));
  assert_false(kw__addr_filter_ignored(&f, &a, t + KW_ADDR_FILTER_BAN_NS));
  assert_int_equal(f.banned_total, 1);
  kw__addr_filter_free(&f);
}

static void test_rule_punish_good_packet_forgives(void **state) {
  (void)state;
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  kw_sockaddr a = addr("198.18.0.1:1");
  uint64_t t = 100 * S;
  ban(&f, &a, t);
  kw__addr_filter_good(&f, &a);
  assert_false(kw__addr_filter_ignored(&f, &a, t + 1));
  assert_int_equal(kw__addr_filter_count(&f, t + 1), 0);
  /* Strikes are forgotten too. */
  for (int i = 0; i < KW_ADDR_FILTER_STRIKES - 1; i++)
    kw__addr_filter_bad(&f, &a, t + 2);
  kw__addr_filter_good(&f, &a);
  assert_false(kw__addr_filter_bad(&f, &a, t + 3));
  kw__addr_filter_free(&f);
}

static void test_rule_punish_evicted_after_5_min(void **state) {
  (void)state;
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  kw_sockaddr a = addr("198.18.0.1:1");
  uint64_t t = 100 * S;
  kw__addr_filter_bad(&f, &a, t);
  assert_int_equal(KW_ADDR_FILTER_EVICT_NS, 300 * S);
  assert_int_equal(kw__addr_filter_count(&f, t + KW_ADDR_FILTER_EVICT_NS - 1),
                   1);
  assert_int_equal(kw__addr_filter_count(&f, t + KW_ADDR_FILTER_EVICT_NS), 0);
  kw__addr_filter_free(&f);
}

static void test_rule_punish_table_bounded_1024(void **state) {
  (void)state;
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  assert_int_equal(KW_ADDR_FILTER_CAP, 1024);
  uint64_t t = 100 * S;
  kw_sockaddr first = nth(0);
  ban(&f, &first, t);
  for (uint32_t i = 1; i < KW_ADDR_FILTER_CAP; i++) {
    kw_sockaddr a = nth(i);
    kw__addr_filter_bad(&f, &a, t + i);
  }
  assert_int_equal(kw__addr_filter_count(&f, t + 2000), KW_ADDR_FILTER_CAP);
  assert_true(kw__addr_filter_ignored(&f, &first, t + 2000));
  /* One more: the least recently struck (the first) is dropped. */
  kw_sockaddr extra = nth(5000);
  kw__addr_filter_bad(&f, &extra, t + 3000);
  assert_int_equal(kw__addr_filter_count(&f, t + 3000), KW_ADDR_FILTER_CAP);
  assert_false(kw__addr_filter_ignored(&f, &first, t + 3000));
  kw__addr_filter_free(&f);
}

/* ---- spoofed garbage must not ban a real peer ---------------------------- */

typedef struct known {
  kw_sockaddr a; /* the one known path */
  int calls;
} known;

static bool spare_a(void *arg, const kw_sockaddr *x) {
  known *k = arg;
  k->calls++;
  return x->port == k->a.port && memcmp(x->ip, k->a.ip, 4) == 0;
}

/* The predicate (a known path of a remote) spares the address when the ban
 * is due, and is not asked again for a strike window. */
static void test_rule_punish_known_path_spared(void **state) {
  (void)state;
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  known k = {addr("198.18.0.1:1000"), 0};
  kw_sockaddr other = addr("198.18.0.2:1000");
  uint64_t t = 100 * S;
  bool spared;
  for (int i = 0; i < 50; i++) /* 50 spoofed datagrams in 50 ms */
    assert_false(kw__addr_filter_strike(&f, &k.a, t + (uint64_t)i * MS,
                                        spare_a, &k, &spared));
  assert_false(kw__addr_filter_ignored(&f, &k.a, t + 50 * MS));
  assert_int_equal(k.calls, 1); /* asked once, at the 8th */
  assert_int_equal(f.spared_total, 1);
  assert_int_equal(f.banned_total, 0);
  /* after the window a new series; spared again, asked again */
  for (int i = 0; i < KW_ADDR_FILTER_STRIKES; i++)
    kw__addr_filter_strike(&f, &k.a, t + KW_ADDR_FILTER_STRIKE_WINDOW_NS + S,
                           spare_a, &k, &spared);
  assert_true(spared);
  assert_int_equal(k.calls, 2);
  /* an address the predicate does not know is still banned */
  bool banned = false;
  for (int i = 0; i < KW_ADDR_FILTER_STRIKES; i++)
    banned = kw__addr_filter_strike(&f, &other, t, spare_a, &k, &spared);
  assert_true(banned);
  assert_false(spared);
  assert_true(kw__addr_filter_ignored(&f, &other, t));
  kw__addr_filter_free(&f);
}

/* An address that authenticated is never struck for 10 minutes, however
 * much garbage claims to come from it; then it can be again. */
static void test_rule_punish_trusted_never_banned(void **state) {
  (void)state;
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  kw_sockaddr a = addr("198.18.0.1:1000");
  uint64_t t = 100 * S;
  /* banned first (spoofed before the peer showed up), then it proves
   * itself: the ban goes at once */
  ban(&f, &a, t);
  assert_true(kw__addr_filter_ignored(&f, &a, t));
  assert_true(kw__addr_filter_trust(&f, &a, t + 1));
  assert_false(kw__addr_filter_ignored(&f, &a, t + 1));
  assert_true(kw__addr_filter_trusted(&f, &a, t + 1));
  for (int i = 0; i < 1000; i++)
    assert_false(kw__addr_filter_bad(&f, &a, t + 2 + (uint64_t)i));
  assert_false(kw__addr_filter_ignored(&f, &a, t + 2000));
  assert_int_equal(kw__addr_filter_count(&f, t + 2000), 0); /* no entry */
  assert_false(kw__addr_filter_trust(&f, &a, t + 3000)); /* was not banned */
  /* 10 minutes after its last authenticated packet the trust is gone */
  uint64_t end = t + 3000 + KW_ADDR_FILTER_TRUST_NS;
  assert_true(kw__addr_filter_trusted(&f, &a, end - 1));
  assert_false(kw__addr_filter_trusted(&f, &a, end));
  ban(&f, &a, end);
  assert_true(kw__addr_filter_ignored(&f, &a, end));
  /* lift: forgets, says whether it was banned */
  assert_true(kw__addr_filter_lift(&f, &a, end));
  assert_false(kw__addr_filter_lift(&f, &a, end));
  assert_false(kw__addr_filter_trusted(NULL, &a, 0));
  assert_false(kw__addr_filter_trust(NULL, &a, 0));
  assert_false(kw__addr_filter_lift(NULL, &a, 0));
  kw__addr_filter_free(&f);
}

/* Both tables stay bounded: trusting 5000 addresses keeps 1024 (the least
 * recently authenticated go). */
static void test_rule_punish_trust_table_bounded(void **state) {
  (void)state;
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  uint64_t t = 100 * S;
  for (uint32_t i = 0; i < 5000; i++) {
    kw_sockaddr a = nth(i);
    kw__addr_filter_trust(&f, &a, t + i);
  }
  assert_int_equal(kw__addrlru_count(&f.trusted), KW_ADDR_FILTER_TRUST_CAP);
  kw_sockaddr old = nth(0), recent = nth(4999);
  assert_false(kw__addr_filter_trusted(&f, &old, t + 5000));
  assert_true(kw__addr_filter_trusted(&f, &recent, t + 5000));
  kw__addr_filter_free(&f);
}

static void test_punish_null_args(void **state) {
  (void)state;
  kw_sockaddr a = addr("198.18.0.1:1");
  assert_false(kw__addr_filter_ignored(NULL, &a, 0));
  assert_false(kw__addr_filter_bad(NULL, &a, 0));
  kw__addr_filter_good(NULL, &a);
  assert_int_equal(kw__addr_filter_count(NULL, 0), 0);
  assert_int_equal(kw__addr_filter_init(NULL), KW_ERR_INVALID_ARG);
  kw__addr_filter f;
  assert_int_equal(kw__addr_filter_init(&f), KW_OK);
  assert_false(kw__addr_filter_bad(&f, NULL, 0));
  assert_false(kw__addr_filter_ignored(&f, NULL, 0));
  kw__addr_filter_free(&f);
}

/* ---- addrlru ----------------------------------------------------------- */

static void test_addrlru_basic(void **state) {
  (void)state;
  kw__addrlru t;
  assert_int_equal(kw__addrlru_init(&t, 0, 8), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__addrlru_init(&t, (1u << 20) + 1, 8), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__addrlru_init(&t, 3, sizeof(uint64_t)), KW_OK);
  kw_sockaddr a = nth(1), b = nth(2), c = nth(3), d = nth(4);
  bool created;
  uint64_t *v = kw__addrlru_put(&t, &a, 1, &created);
  assert_non_null(v);
  assert_true(created);
  assert_int_equal(*v, 0);
  *v = 11;
  v = kw__addrlru_put(&t, &a, 2, &created);
  assert_false(created);
  assert_int_equal(*v, 11);
  kw__addrlru_put(&t, &b, 3, NULL);
  kw__addrlru_put(&t, &c, 4, NULL);
  assert_int_equal(kw__addrlru_count(&t), 3);
  /* a is the least recently used; touch it so b becomes it. */
  assert_non_null(kw__addrlru_get(&t, &a, 5));
  kw__addrlru_put(&t, &d, 6, NULL);
  assert_int_equal(kw__addrlru_count(&t), 3);
  assert_null(kw__addrlru_peek(&t, &b, NULL));
  uint64_t used = 0;
  v = kw__addrlru_peek(&t, &a, &used);
  assert_non_null(v);
  assert_int_equal(*v, 11);
  assert_int_equal(used, 5);
  /* Bytes past an IPv4 address do not make it another key. */
  kw_sockaddr a2 = a;
  a2.ip[10] = 0x55;
  assert_non_null(kw__addrlru_get(&t, &a2, 7));
  assert_true(kw__addrlru_del(&t, &a2));
  assert_false(kw__addrlru_del(&t, &a));
  assert_int_equal(kw__addrlru_count(&t), 2);
  /* Expire: c (used 4) goes, d (used 6) stays. */
  assert_int_equal(kw__addrlru_expire(&t, 5), 1);
  assert_null(kw__addrlru_get(&t, &c, 8));
  assert_non_null(kw__addrlru_get(&t, &d, 8));
  kw__addrlru_free(&t);
  assert_null(kw__addrlru_get(&t, &d, 8));
}

static void test_addrlru_churn_stays_consistent(void **state) {
  (void)state;
  kw__addrlru t;
  assert_int_equal(kw__addrlru_init(&t, 64, sizeof(uint32_t)), KW_OK);
  uint32_t x = 12345;
  for (uint32_t step = 0; step < 20000; step++) {
    x = x * 1103515245u + 12345u;
    kw_sockaddr a = nth((x >> 8) % 200);
    switch ((x >> 24) % 3) {
    case 0: {
      uint32_t *v = kw__addrlru_put(&t, &a, step, NULL);
      assert_non_null(v);
      *v = (x >> 8) % 200;
      break;
    }
    case 1: {
      uint32_t *v = kw__addrlru_get(&t, &a, step);
      if (v)
        assert_int_equal(*v, (x >> 8) % 200);
      break;
    }
    default:
      kw__addrlru_del(&t, &a);
    }
    assert_true(kw__addrlru_count(&t) <= 64);
  }
  kw__addrlru_free(&t);
}

/* ---- candidates: ranks ----------------------------------------------------
 */

static void test_rule_virtual_interfaces_rank_last(void **state) {
  (void)state;
  const char *virt[] = {"docker0",  "br-1a2b3c", "veth12ab",  "virbr0",
                        "tun0",     "tap3",      "wg0",       "tailscale0",
                        "ztabcdef", "vmnet8",    "utun4",     "vboxnet0",
                        "lxcbr0",   "cni0",      "flannel.1", "podman0"};
  kw_sockaddr lan = addr("192.168.1.10:0");
  for (size_t i = 0; i < sizeof(virt) / sizeof(*virt); i++) {
    assert_true(kw__iface_is_virtual(virt[i]));
    assert_int_equal(kw__cand_rank(virt[i], &lan), KW_CAND_RANK_VIRTUAL);
  }
  const char *real[] = {"eth0", "enp3s0", "wlan0", "wlp2s0",  "en0",
                        "lo",   "bond0",  "eno1",  "ethernet"};
  for (size_t i = 0; i < sizeof(real) / sizeof(*real); i++)
    assert_false(kw__iface_is_virtual(real[i]));
  assert_false(kw__iface_is_virtual(NULL));
  /* A virtual interface ranks behind any real one. */
  kw_sockaddr pub = addr("198.18.0.5:0");
  assert_true(kw__cand_rank("docker0", &lan) > kw__cand_rank("eth0", &pub));
  assert_true(kw__cand_rank("eth0", &lan) < kw__cand_rank("eth0", &pub));
}

static void test_cand_rank_lan_first(void **state) {
  (void)state;
  const char *lan[] = {"10.1.2.3:0",    "172.16.0.1:0", "172.31.255.1:0",
                       "192.168.0.1:0", "[fd00::1]:0",  "[fc00::1]:0"};
  for (size_t i = 0; i < sizeof(lan) / sizeof(*lan); i++) {
    kw_sockaddr a = addr(lan[i]);
    assert_int_equal(kw__cand_rank("eth0", &a), KW_CAND_RANK_LAN);
    assert_int_equal(kw__cand_rank(NULL, &a), KW_CAND_RANK_LAN);
  }
  const char *other[] = {"172.15.0.1:0", "172.32.0.1:0",    "198.18.0.1:0",
                         "100.64.0.1:0", "[2001:db8::1]:0", "11.0.0.1:0"};
  for (size_t i = 0; i < sizeof(other) / sizeof(*other); i++) {
    kw_sockaddr a = addr(other[i]);
    assert_int_equal(kw__cand_rank("eth0", &a), KW_CAND_RANK_OTHER);
  }
}

static void test_cand_rank_loopback_and_never(void **state) {
  (void)state;
  kw_sockaddr a = addr("127.0.0.1:0");
  assert_int_equal(kw__cand_rank("lo", &a), KW_CAND_RANK_LOOPBACK);
  a = addr("127.9.9.9:0");
  assert_int_equal(kw__cand_rank("docker0", &a), KW_CAND_RANK_LOOPBACK);
  a = addr("[::1]:0");
  assert_int_equal(kw__cand_rank("lo", &a), KW_CAND_RANK_LOOPBACK);
  const char *never[] = {
      "0.0.0.0:0",   "0.1.2.3:0",   "169.254.1.1:0",     "224.0.0.1:0",
      "239.1.1.1:0", "240.0.0.1:0", "255.255.255.255:0", "[::]:0",
      "[fe80::1]:0", "[febf::1]:0", "[ff02::1]:0",       "[::ffff:10.0.0.1]:0"};
  for (size_t i = 0; i < sizeof(never) / sizeof(*never); i++) {
    a = addr(never[i]);
    assert_int_equal(kw__cand_rank("eth0", &a), KW_CAND_RANK_NEVER);
  }
  a = addr("[fec0::1]:0"); /* just past link-local */
  assert_int_equal(kw__cand_rank("eth0", &a), KW_CAND_RANK_OTHER);
  memset(&a, 0, sizeof(a));
  assert_int_equal(kw__cand_rank("eth0", &a), KW_CAND_RANK_NEVER);
  assert_int_equal(kw__cand_rank("eth0", NULL), KW_CAND_RANK_NEVER);
}

/* ---- candidates: prefixes and lists ------------------------------------- */

static void test_prefix_parse(void **state) {
  (void)state;
  kw__prefix p;
  assert_int_equal(kw__prefix_parse("10.0.0.0/8", &p), KW_OK);
  assert_int_equal(p.family, 4);
  assert_int_equal(p.len, 8);
  assert_int_equal(kw__prefix_parse("fd00::/8", &p), KW_OK);
  assert_int_equal(p.family, 6);
  assert_int_equal(p.len, 8);
  assert_int_equal(kw__prefix_parse("198.18.0.7", &p), KW_OK);
  assert_int_equal(p.len, 32);
  assert_int_equal(kw__prefix_parse("::/0", &p), KW_OK);
  assert_int_equal(p.len, 0);
  assert_int_equal(kw__prefix_parse("2001:db8::1/128", &p), KW_OK);
  const char *bad[] = {
      "",
      "/8",
      "10.0.0.0/",
      "10.0.0.0/33",
      "10.0.0.1/8",
      "10.0.0.0/08",
      "10.0.0.0/x",
      "fd00::/129",
      "fd00::/1000",
      "host/8",
      "10.0.0.0/8/8",
      "0123456789012345678901234567890123456789012345678901234567890123/8"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    assert_int_equal(kw__prefix_parse(bad[i], &p), KW_ERR_PARSE);
  assert_int_equal(kw__prefix_parse(NULL, &p), KW_ERR_INVALID_ARG);
}

static void test_prefix_contains_boundaries(void **state) {
  (void)state;
  kw__prefix p;
  assert_int_equal(kw__prefix_parse("198.18.0.0/15", &p), KW_OK);
  kw_sockaddr a = addr("198.19.255.255:1");
  assert_true(kw__prefix_contains(&p, &a));
  a = addr("198.18.0.0:1");
  assert_true(kw__prefix_contains(&p, &a));
  a = addr("198.20.0.0:1");
  assert_false(kw__prefix_contains(&p, &a));
  a = addr("198.17.255.255:1");
  assert_false(kw__prefix_contains(&p, &a));
  a = addr("[::ffff:198.18.0.1]:1");
  assert_false(kw__prefix_contains(&p, &a)); /* family differs */
  assert_int_equal(kw__prefix_parse("0.0.0.0/0", &p), KW_OK);
  a = addr("1.2.3.4:1");
  assert_true(kw__prefix_contains(&p, &a));
  assert_false(kw__prefix_contains(NULL, &a));
}

static void test_rule_cand_allow_deny_lists(void **state) {
  (void)state;
  kw__cand_filter f;
  memset(&f, 0, sizeof(f));
  kw_sockaddr lan = addr("192.168.1.2:0"), pub = addr("198.18.0.2:0");
  /* No lists: everything goes. */
  assert_true(kw__cand_allowed(&f, "eth0", &lan));
  assert_true(kw__cand_allowed(NULL, "docker0", &lan));
  assert_false(kw__cand_allowed(&f, "eth0", NULL));
  /* Deny by exact name and by wildcard. */
  assert_int_equal(kw__cand_filter_deny_iface(&f, "eth1"), KW_OK);
  assert_int_equal(kw__cand_filter_deny_iface(&f, "docker*"), KW_OK);
  assert_false(kw__cand_allowed(&f, "eth1", &lan));
  assert_true(kw__cand_allowed(&f, "eth10", &lan));
  assert_false(kw__cand_allowed(&f, "docker0", &lan));
  assert_true(kw__cand_allowed(&f, NULL, &lan));
  /* Deny by prefix. */
  assert_int_equal(kw__cand_filter_deny_prefix(&f, "192.168.0.0/16"), KW_OK);
  assert_false(kw__cand_allowed(&f, "eth0", &lan));
  assert_true(kw__cand_allowed(&f, "eth0", &pub));
  /* An allow list restricts to its entries ... */
  assert_int_equal(kw__cand_filter_allow_iface(&f, "wlan*"), KW_OK);
  assert_false(kw__cand_allowed(&f, "eth0", &pub));
  assert_true(kw__cand_allowed(&f, "wlan0", &pub));
  assert_false(kw__cand_allowed(&f, NULL, &pub));
  assert_int_equal(kw__cand_filter_allow_prefix(&f, "198.18.0.0/15"), KW_OK);
  assert_true(kw__cand_allowed(&f, "eth0", &pub));
  /* ... and deny wins over allow. */
  assert_false(kw__cand_allowed(&f, "wlan0", &lan));
  assert_int_equal(kw__cand_filter_deny_prefix(&f, "198.18.0.2/32"), KW_OK);
  assert_false(kw__cand_allowed(&f, "wlan0", &pub));
}

static void test_rule_cand_external_only_deny_prefixes(void **state) {
  (void)state;
  kw__cand_filter f;
  memset(&f, 0, sizeof(f));
  kw_sockaddr refl = addr("198.19.7.7:4242"), other = addr("198.18.5.5:1");
  assert_true(kw__cand_allowed_external(NULL, &refl));
  assert_false(kw__cand_allowed_external(&f, NULL));
  /* allow lists name local interfaces and networks: they do not apply */
  assert_int_equal(kw__cand_filter_allow_iface(&f, "eth0"), KW_OK);
  assert_int_equal(kw__cand_filter_allow_prefix(&f, "198.18.0.0/24"), KW_OK);
  assert_true(kw__cand_allowed_external(&f, &refl));
  /* deny prefixes do, and interface denials do not */
  assert_int_equal(kw__cand_filter_deny_iface(&f, "*"), KW_OK);
  assert_true(kw__cand_allowed_external(&f, &refl));
  assert_int_equal(kw__cand_filter_deny_prefix(&f, "198.19.0.0/16"), KW_OK);
  assert_false(kw__cand_allowed_external(&f, &refl));
  assert_true(kw__cand_allowed_external(&f, &other));
}

static void test_cand_filter_rejections(void **state) {
  (void)state;
  kw__cand_filter f;
  memset(&f, 0, sizeof(f));
  assert_int_equal(kw__cand_filter_deny_iface(&f, ""), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__cand_filter_deny_iface(&f, "do*ker"),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__cand_filter_deny_iface(&f, "**"), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__cand_filter_allow_iface(&f, NULL), KW_ERR_INVALID_ARG);
  char longname[KW_IFNAME_MAX + 1];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[KW_IFNAME_MAX] = '\0';
  assert_int_equal(kw__cand_filter_allow_iface(&f, longname),
                   KW_ERR_INVALID_ARG);
  longname[KW_IFNAME_MAX - 1] = '\0'; /* 31 chars: fits */
  assert_int_equal(kw__cand_filter_allow_iface(&f, longname), KW_OK);
  assert_int_equal(kw__cand_filter_allow_prefix(&f, "10.0.0.1/8"),
                   KW_ERR_PARSE);
  assert_int_equal(kw__cand_filter_allow_prefix(NULL, "10.0.0.0/8"),
                   KW_ERR_INVALID_ARG);
  for (int i = 0; i < KW_CAND_LIST_MAX; i++)
    assert_int_equal(kw__cand_filter_deny_iface(&f, "x*"), KW_OK);
  assert_int_equal(kw__cand_filter_deny_iface(&f, "x*"), KW_ERR_FULL);
  for (int i = 0; i < KW_CAND_LIST_MAX; i++)
    assert_int_equal(kw__cand_filter_deny_prefix(&f, "10.0.0.0/8"), KW_OK);
  assert_int_equal(kw__cand_filter_deny_prefix(&f, "10.0.0.0/8"), KW_ERR_FULL);
  assert_int_equal(f.n_deny_if, KW_CAND_LIST_MAX);
  assert_int_equal(f.n_deny_pfx, KW_CAND_LIST_MAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rule_punish_after_strikes),
      cmocka_unit_test(test_rule_punish_strike_window_boundary),
      cmocka_unit_test(test_rule_punish_ban_duration),
      cmocka_unit_test(test_rule_punish_banned_packets_do_not_extend),
      cmocka_unit_test(test_rule_punish_good_packet_forgives),
      cmocka_unit_test(test_rule_punish_evicted_after_5_min),
      cmocka_unit_test(test_rule_punish_table_bounded_1024),
      cmocka_unit_test(test_rule_punish_known_path_spared),
      cmocka_unit_test(test_rule_punish_trusted_never_banned),
      cmocka_unit_test(test_rule_punish_trust_table_bounded),
      cmocka_unit_test(test_punish_null_args),
      cmocka_unit_test(test_addrlru_basic),
      cmocka_unit_test(test_addrlru_churn_stays_consistent),
      cmocka_unit_test(test_rule_virtual_interfaces_rank_last),
      cmocka_unit_test(test_cand_rank_lan_first),
      cmocka_unit_test(test_cand_rank_loopback_and_never),
      cmocka_unit_test(test_prefix_parse),
      cmocka_unit_test(test_prefix_contains_boundaries),
      cmocka_unit_test(test_rule_cand_allow_deny_lists),
      cmocka_unit_test(test_rule_cand_external_only_deny_prefixes),
      cmocka_unit_test(test_cand_filter_rejections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
