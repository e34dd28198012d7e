/* SPDX-License-Identifier: MIT */
/*
 * The network change monitor (Linux): an rtnetlink socket subscribed to
 * address, route and link notifications. Bursts are coalesced for
 * KW_NETMON_SETTLE_MS; then, if the set of interface addresses or the
 * default route changed (or the kernel dropped notifications), it is a
 * major change:
 *  - every remote pings its selected direct path at once and gets a
 *    hole-punching round (core/holepunch's network-change trigger), which
 *    sends our new candidates in a CallMeMaybe;
 *  - the reflexive address is asked again, port mappings are renewed and
 *    our lookup record is republished.
 * The UDP sockets are bound to the wildcard address (or to what the
 * application chose), so they survive address changes and need no rebind:
 * the kernel picks the new source address for each packet.
 *
 * Without netlink (another OS, or a sandbox refusing the socket) the
 * endpoint still recovers, only slower: liveness Pings notice a dead path
 * within seconds and the 60 s upgrade check finds better ones.
 */
#include "endpoint/netmon.h"

#include "endpoint/changes.h"
#include <uv.h>

#include "endpoint/endpoint.h"
#include "net/osaddr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "core/nlmsg.h"

#define KW_NETMON_SETTLE_MS 200
#define KW_NETMON_READS 16 /* datagrams per wake-up, for fairness */

struct kw__netmon {
  kw_endpoint *ep;
  int fd;       /* -1 while not watching */
  bool started; /* poll and settle are initialised, not yet closed */
  uv_poll_t poll;
  uv_timer_t settle;
  int open_handles;
  unsigned pending;  /* KW_NL_* bits seen since the last settle */
  uint64_t addr_sig; /* hash of the interface address set */
  uint64_t changes;
};

/* FNV-1a over the sorted-independent set: XOR of per-address hashes, so
 * the order the kernel lists interfaces in does not matter. */
static uint64_t addr_signature(void) {
  uv_interface_address_t *ifs = NULL;
  int n = 0;
  if (uv_interface_addresses(&ifs, &n) != 0)
    return 0;
  uint64_t sig = (uint64_t)n;
  for (int i = 0; i < n; i++) {
    if (ifs[i].is_internal)
      continue;
    kw_sockaddr a;
    kw__sockaddr_from_os((const struct sockaddr *)&ifs[i].address, &a);
    uint64_t h = 1469598103934665603ull;
    const uint8_t *p = a.ip;
    for (size_t k = 0; k < sizeof a.ip; k++)
      h = (h ^ p[k]) * 1099511628211ull;
    h = (h ^ a.family) * 1099511628211ull;
    sig ^= h;
  }
  uv_free_interface_addresses(ifs, n);
  return sig;
}

static void settle_cb(uv_timer_t *t) {
  struct kw__netmon *nm = t->data;
  kw_endpoint *ep = nm->ep;
  unsigned bits = nm->pending;
  nm->pending = 0;
  if (kw__ep_closing(ep))
    return;
  uint64_t sig = addr_signature();
  bool addrs = sig != nm->addr_sig;
  nm->addr_sig = sig;
  bool major = addrs || (bits & (KW_NL_DEFAULT_ROUTE | KW_NL_OVERRUN));
  if (!major)
    return;
  nm->changes++;
  kw__log(ep, KW_LOG_INFO, "netmon",
          "netmon.change addrs=%s default_route=%s overrun=%s n=%llu",
          addrs ? "changed" : "same",
          bits & KW_NL_DEFAULT_ROUTE ? "changed" : "same",
          bits & KW_NL_OVERRUN ? "yes" : "no", (unsigned long long)nm->changes);
  kw__endpoint_changed(ep, KW__CHANGE_NETWORK, "netmon");
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  struct kw__netmon *nm = h->data;
  (void)events;
  if (status < 0)
    return;
  uint8_t buf[8192];
  for (int i = 0; i < KW_NETMON_READS; i++) {
    ssize_t n = recv(nm->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == ENOBUFS) /* the kernel dropped notifications */
        nm->pending |= KW_NL_OVERRUN;
      break;
    }
    nm->pending |= kw__nl_classify(buf, (size_t)n);
  }
  if (nm->pending && !uv_is_active((uv_handle_t *)&nm->settle))
    uv_timer_start(&nm->settle, settle_cb, KW_NETMON_SETTLE_MS, 0);
}

kw_err kw__netmon_new(kw_endpoint *ep, struct kw__netmon **out) {
  struct kw__netmon *nm = calloc(1, sizeof *nm);
  if (!nm)
    return KW_ERR_NOMEM;
  nm->ep = ep;
  nm->fd = -1;
  *out = nm;
  return KW_OK;
}

void kw__netmon_free(struct kw__netmon *nm) {
  if (!nm)
    return;
  if (nm->fd >= 0)
    close(nm->fd);
  free(nm);
}

kw_err kw__netmon_start(kw_endpoint *ep) {
  struct kw__netmon *nm = kw__ep_netmon(ep);
  if (!nm || nm->started || nm->fd >= 0)
    return KW_OK;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  NETLINK_ROUTE);
  if (fd < 0) {
    kw__log(ep, KW_LOG_INFO, "netmon", "netmon.unavailable errno=%d", errno);
    return KW_OK; /* degraded, not fatal: see the top of the file */
  }
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
                 RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      uv_poll_init_socket(kw__ep_loop(ep), &nm->poll, fd) != 0) {
    kw__log(ep, KW_LOG_INFO, "netmon", "netmon.unavailable errno=%d", errno);
    close(fd);
    return KW_OK;
  }
  nm->fd = fd;
  nm->started = true;
  nm->poll.data = nm;
  uv_timer_init(kw__ep_loop(ep), &nm->settle);
  nm->settle.data = nm;
  nm->open_handles = 2;
  nm->addr_sig = addr_signature();
  uv_poll_start(&nm->poll, UV_READABLE, poll_cb);
  return KW_OK;
}

static void closed_cb(uv_handle_t *h) {
  struct kw__netmon *nm = h->data;
  if (--nm->open_handles == 0) {
    close(nm->fd);
    nm->fd = -1;
  }
}

/* The handles close; the socket with the last of them (kw__netmon_free
 * after the loop ran). */
void kw__netmon_stop(kw_endpoint *ep) {
  struct kw__netmon *nm = kw__ep_netmon(ep);
  if (!nm || !nm->started)
    return;
  nm->started = false;
  uv_close((uv_handle_t *)&nm->poll, closed_cb);
  uv_close((uv_handle_t *)&nm->settle, closed_cb);
}
