/* SPDX-License-Identifier: MIT */
/*
 * LAN discovery on the endpoint's own sockets (docs/protocol/lan.md): one
 * UDP socket per family bound to port 5353 (SO_REUSEADDR/SO_REUSEPORT, so
 * a system responder such as Avahi keeps working beside it), joined to
 * 224.0.0.251 / ff02::fb on every interface the candidate rules allow.
 * Messages and policy are core/mdns (sans-IO); this file moves them:
 * announcements at start and after a change (KW_MDNS_ANNOUNCES, 1 s
 * apart), answers to queries naming us (at most one multicast per second
 * per interface and family; legacy unicast queries answered by unicast),
 * queries for the ids being resolved (0, 1, 2, 4... s), a goodbye at
 * close. Datagrams whose IP TTL / hop limit is not 255 (not sent on the
 * link) or that arrive on an interface we did not join are dropped.
 *
 * Why not a library (docs/protocol/lan.md): Debian 12's libmdnsd is
 * IPv4-only, reads the clock and logs to stdio itself; Avahi's core is a
 * whole host responder that would contend with avahi-daemon, and its
 * client needs that daemon over D-Bus. keyway needs only its own service.
 */
#include "endpoint/lan.h"

#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/magicsock.h"
#include "endpoint/resolve.h"
#include "net/clock.h"
#include "net/osaddr.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr_filter.h"
#include "core/mdns.h"
#include "core/record.h"

#define KW_LAN_MAX_IFACES 16
#define KW_LAN_MAX_LOOKUPS 32 /* more at once: KW_ERR_FULL */
#define KW_LAN_TICK_MS 100    /* the timer, while anything is scheduled */
#define KW_LAN_RX_PER_WAKE 16
#define KW_LAN_RECORD_TTL_S 3600

typedef struct lan_iface {
  char name[IF_NAMESIZE];
  unsigned index;
  kw_sockaddr addrs[KW_MDNS_MAX_ADDRS]; /* A/AAAA we announce on it */
  size_t n_addrs;
  bool has4, has6;
  bool joined[2];
  uint64_t last_resp_ns[2];  /* last multicast response, per family */
  uint64_t last_uresp_ns[2]; /* last unicast answer to a QU question */
} lan_iface;

typedef struct lan_lookup {
  bool used;
  uint8_t id[KW_ID_LEN];
  uint64_t deadline_ns, next_ns;
  unsigned sent;
  kw__resolve_cb cb;
  void *arg;
} lan_lookup;

typedef struct kw__lan kw__lan;
struct kw__lan {
  kw_endpoint *ep;
  int fd[2]; /* IPv4, IPv6; -1 none */
  uv_poll_t poll[2];
  bool poll_init[2];
  uv_timer_t timer;
  bool timer_init;
  lan_iface ifs[KW_LAN_MAX_IFACES];
  size_t n_ifs;
  unsigned announces_left;
  uint64_t next_announce_ns;
  lan_lookup q[KW_LAN_MAX_LOOKUPS];
  kw__mdns_cache cache;
  kw__mdns_limiter lim;
  kw__mdns_rejects rej; /* dropped since the last lan.rejected line */
  uint64_t rej_logged_ns;
  bool stopping;
  uint8_t rx[KW_MDNS_MAX_RX + 1];
};

static void handle_closed(uv_handle_t *h) {
  (void)h;
}

/* ---- interfaces -------------------------------------------------------- */

static int join(kw__lan *l, lan_iface *ifc, int fam, bool on) {
  int fd = l->fd[fam];
  if (fd < 0)
    return -1;
  if (fam == 0) {
    struct ip_mreqn m;
    memset(&m, 0, sizeof m);
    m.imr_multiaddr.s_addr = htonl(0xe00000fbu); /* 224.0.0.251 */
    m.imr_ifindex = (int)ifc->index;
    return setsockopt(fd, IPPROTO_IP,
                      on ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &m,
                      sizeof m);
  }
  struct ipv6_mreq m;
  memset(&m, 0, sizeof m);
  m.ipv6mr_multiaddr.s6_addr[0] = 0xff;
  m.ipv6mr_multiaddr.s6_addr[1] = 0x02;
  m.ipv6mr_multiaddr.s6_addr[15] = 0xfb;
  m.ipv6mr_interface = ifc->index;
  return setsockopt(fd, IPPROTO_IPV6,
                    on ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP, &m,
                    sizeof m);
}

static lan_iface *iface_named(kw__lan *l, const char *name) {
  for (size_t i = 0; i < l->n_ifs; i++)
    if (strcmp(l->ifs[i].name, name) == 0)
      return &l->ifs[i];
  return NULL;
}

/* The interfaces an allowed candidate address lives on (loopback never:
 * multicast does not leave the host there). */
static void scan_ifaces(kw__lan *l) {
  kw_endpoint *ep = l->ep;
  for (size_t i = 0; i < l->n_ifs; i++)
    for (int f = 0; f < 2; f++)
      if (l->ifs[i].joined[f])
        join(l, &l->ifs[i], f, false);
  l->n_ifs = 0;
  uv_interface_address_t *ifs = NULL;
  int n = 0;
  if (uv_interface_addresses(&ifs, &n) != 0)
    return;
  /* pass 1: which interfaces carry an allowed candidate */
  for (int i = 0; i < n; i++) {
    if (ifs[i].is_internal)
      continue;
    kw_sockaddr a;
    kw__sockaddr_from_os((const struct sockaddr *)&ifs[i].address, &a);
    if (kw__cand_rank(ifs[i].name, &a) == KW_CAND_RANK_NEVER ||
        !kw__cand_allowed(kw__ep_cfg(ep)->cand, ifs[i].name, &a))
      continue;
    if (iface_named(l, ifs[i].name) || l->n_ifs >= KW_LAN_MAX_IFACES)
      continue;
    unsigned idx = if_nametoindex(ifs[i].name);
    if (idx == 0)
      continue;
    lan_iface *ifc = &l->ifs[l->n_ifs++];
    memset(ifc, 0, sizeof *ifc);
    snprintf(ifc->name, sizeof ifc->name, "%s", ifs[i].name);
    ifc->index = idx;
  }
  /* pass 2: their addresses (link-local IPv6 too: mDNS lives there) */
  for (int i = 0; i < n; i++) {
    lan_iface *ifc = ifs[i].is_internal ? NULL : iface_named(l, ifs[i].name);
    if (!ifc)
      continue;
    kw_sockaddr a;
    kw__sockaddr_from_os((const struct sockaddr *)&ifs[i].address, &a);
    if (a.family == 4)
      ifc->has4 = true;
    else
      ifc->has6 = true;
    if (ifc->n_addrs < KW_MDNS_MAX_ADDRS)
      ifc->addrs[ifc->n_addrs++] = a;
  }
  uv_free_interface_addresses(ifs, n);
  for (size_t i = 0; i < l->n_ifs; i++) {
    lan_iface *ifc = &l->ifs[i];
    for (int f = 0; f < 2; f++) {
      if (!(f == 0 ? ifc->has4 : ifc->has6) || l->fd[f] < 0)
        continue;
      int r = join(l, ifc, f, true);
      ifc->joined[f] = r == 0 || errno == EADDRINUSE;
      kw__log(ep, ifc->joined[f] ? KW_LOG_INFO : KW_LOG_WARN, "lan",
              "lan.join if=%s family=%d ok=%d", ifc->name, f == 0 ? 4 : 6,
              ifc->joined[f]);
    }
  }
}

static lan_iface *iface_index(kw__lan *l, unsigned idx) {
  for (size_t i = 0; i < l->n_ifs; i++)
    if (l->ifs[i].index == idx)
      return &l->ifs[i];
  return NULL;
}

/* ---- sending ----------------------------------------------------------- */

static void send_to(kw__lan *l, int fam, const lan_iface *ifc,
                    const struct sockaddr *to, socklen_t tolen,
                    const uint8_t *msg, size_t len) {
  int fd = l->fd[fam];
  if (fd < 0)
    return;
  if (fam == 0) {
    struct ip_mreqn m;
    memset(&m, 0, sizeof m);
    m.imr_ifindex = (int)ifc->index;
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m);
  } else {
    int idx = (int)ifc->index;
    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
  }
  if (sendto(fd, msg, len, 0, to, tolen) < 0)
    kw__log(l->ep, KW_LOG_DEBUG, "lan", "lan.send_failed if=%s errno=%d",
            ifc->name, errno);
}

static void send_mc(kw__lan *l, int fam, const lan_iface *ifc,
                    const uint8_t *msg, size_t len) {
  if (fam == 0) {
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(KW_MDNS_PORT);
    to.sin_addr.s_addr = htonl(0xe00000fbu);
    send_to(l, 0, ifc, (struct sockaddr *)&to, sizeof to, msg, len);
  } else {
    struct sockaddr_in6 to;
    memset(&to, 0, sizeof to);
    to.sin6_family = AF_INET6;
    to.sin6_port = htons(KW_MDNS_PORT);
    to.sin6_addr.s6_addr[0] = 0xff;
    to.sin6_addr.s6_addr[1] = 0x02;
    to.sin6_addr.s6_addr[15] = 0xfb;
    to.sin6_scope_id = ifc->index;
    send_to(l, 1, ifc, (struct sockaddr *)&to, sizeof to, msg, len);
  }
}

/* Our response for interface `ifc`, family `fam`. */
static bool encode_self(kw__lan *l, const lan_iface *ifc, int fam, uint32_t ttl,
                        const kw__mdns_legacy *legacy, uint8_t *out, size_t cap,
                        size_t *n) {
  kw_endpoint *ep = l->ep;
  kw__record rec;
  memset(&rec, 0, sizeof rec);
  if (kw_endpoint_get_addr(ep, &rec.addr) != KW_OK)
    return false;
  rec.timestamp_us = kw__unix_us();
  rec.ttl_s = KW_LAN_RECORD_TTL_S;
  uint8_t rb[KW_RECORD_MAX_LEN];
  size_t rl;
  if (kw__record_encode(&rec, kw__ep_cfg(ep)->sk, rb, sizeof rb, &rl) != KW_OK)
    return false;
  kw__mdns_self s;
  memset(&s, 0, sizeof s);
  memcpy(s.id, kw__ep_id(ep), KW_ID_LEN);
  kw_sockaddr b;
  if (!kw__magicsock_bound(ep, fam == 0 ? 4 : 6, &b) &&
      !kw__magicsock_bound(ep, 4, &b) && !kw__magicsock_bound(ep, 6, &b))
    return false;
  s.port = b.port;
  s.relay_url = rec.addr.relay_url;
  s.record = rb;
  s.record_len = rl;
  for (size_t i = 0; i < ifc->n_addrs; i++)
    s.addrs[s.n_addrs++] = ifc->addrs[i];
  /* an interface with many addresses: fewer A/AAAA, never no answer */
  while (kw__mdns_encode_response(&s, ttl, legacy, out, cap, n) ==
         KW_ERR_BUFFER) {
    if (s.n_addrs == 0)
      return false;
    s.n_addrs--;
  }
  return true;
}

static void announce(kw__lan *l, uint32_t ttl) {
  uint8_t msg[KW_MDNS_MAX_TX];
  size_t n;
  uint64_t now = kw__now(l->ep);
  for (size_t i = 0; i < l->n_ifs; i++)
    for (int f = 0; f < 2; f++)
      if (l->ifs[i].joined[f] &&
          encode_self(l, &l->ifs[i], f, ttl, NULL, msg, sizeof msg, &n)) {
        send_mc(l, f, &l->ifs[i], msg, n);
        l->ifs[i].last_resp_ns[f] = now;
      }
}

static void query(kw__lan *l, const uint8_t id[KW_ID_LEN], bool first) {
  uint8_t msg[KW_MDNS_MAX_TX];
  size_t n;
  if (kw__mdns_encode_query(id, first, msg, sizeof msg, &n) != KW_OK)
    return;
  for (size_t i = 0; i < l->n_ifs; i++)
    for (int f = 0; f < 2; f++)
      if (l->ifs[i].joined[f])
        send_mc(l, f, &l->ifs[i], msg, n);
}

/* ---- the timer --------------------------------------------------------- */

static void tick(uv_timer_t *t);

static bool busy(const kw__lan *l) {
  if (l->announces_left)
    return true;
  for (int i = 0; i < KW_LAN_MAX_LOOKUPS; i++)
    if (l->q[i].used)
      return true;
  return false;
}

static void arm(kw__lan *l) {
  if (l->timer_init && !l->stopping && busy(l) &&
      !uv_is_active((uv_handle_t *)&l->timer))
    uv_timer_start(&l->timer, tick, KW_LAN_TICK_MS, KW_LAN_TICK_MS);
}

static void lookup_end(kw__lan *l, lan_lookup *q, kw_err err,
                       const kw_endpoint_addr *a) {
  kw__resolve_cb cb = q->cb;
  void *arg = q->arg;
  q->used = false;
  cb(l->ep, err, a, arg);
}

static void tick(uv_timer_t *t) {
  kw__lan *l = t->data;
  uint64_t now = kw__now(l->ep);
  if (l->announces_left && now >= l->next_announce_ns) {
    announce(l, KW_MDNS_TTL_S);
    l->announces_left--;
    l->next_announce_ns = now + KW_MDNS_ANNOUNCE_GAP_MS * 1000000ull;
  }
  for (int i = 0; i < KW_LAN_MAX_LOOKUPS; i++) {
    lan_lookup *q = &l->q[i];
    if (!q->used)
      continue;
    if (now >= q->deadline_ns) {
      lookup_end(l, q, KW_ERR_NOT_FOUND, NULL);
    } else if (now >= q->next_ns) {
      query(l, q->id, false);
      q->sent++;
      q->next_ns = now + kw__mdns_query_gap_ms(q->sent) * 1000000ull;
    }
  }
  if (!busy(l))
    uv_timer_stop(&l->timer);
}

/* ---- receiving --------------------------------------------------------- */

static void got_response(kw__lan *l, const uint8_t *p, size_t len) {
  kw_endpoint *ep = l->ep;
  kw__mdns_found found[8];
  size_t n = 0;
  kw__mdns_rejects rej;
  uint64_t now_us = kw__unix_us();
  if (kw__mdns_parse_response(p, len, now_us, kw__now(ep), &l->lim,
                              kw__ep_id(ep), found, 8, &n, &rej) != KW_OK)
    return;
  /* one log line per second at most, whatever a flood sends */
  l->rej.unsigned_ += rej.unsigned_;
  l->rej.bad_sig += rej.bad_sig;
  l->rej.limited += rej.limited;
  uint64_t now = kw__now(ep);
  if ((l->rej.unsigned_ || l->rej.bad_sig || l->rej.limited) &&
      (l->rej_logged_ns == 0 || now - l->rej_logged_ns >= 1000000000ull)) {
    kw__log(ep, KW_LOG_INFO, "lan",
            "lan.rejected unsigned=%u bad_sig=%u limited=%u", l->rej.unsigned_,
            l->rej.bad_sig, l->rej.limited);
    memset(&l->rej, 0, sizeof l->rej);
    l->rej_logged_ns = now;
  }
  for (size_t i = 0; i < n; i++) {
    kw__mdns_cache_put(&l->cache, &found[i], now_us);
    char idb[KW_ID_SHORTLEN + 1];
    kw_id_to_short(found[i].rec.addr.id, idb, sizeof idb);
    kw__log(ep, KW_LOG_DEBUG, "lan", "lan.heard id=%s ttl=%u addrs=%zu", idb,
            found[i].ttl_s, found[i].rec.addr.n_addrs);
    if (found[i].ttl_s == 0)
      continue;
    for (int k = 0; k < KW_LAN_MAX_LOOKUPS; k++)
      if (l->q[k].used &&
          memcmp(l->q[k].id, found[i].rec.addr.id, KW_ID_LEN) == 0) {
        kw__log(ep, KW_LOG_INFO, "lan", "lan.resolved id=%s addrs=%zu", idb,
                found[i].rec.addr.n_addrs);
        lookup_end(l, &l->q[k], KW_OK, &found[i].rec.addr);
      }
  }
}

static void got_query(kw__lan *l, int fam, lan_iface *ifc,
                      const struct sockaddr *from, socklen_t fromlen,
                      uint16_t sport, const uint8_t *p, size_t len) {
  kw__mdns_ask ask;
  if (kw__mdns_parse_query(p, len, sport, kw__ep_id(l->ep), &ask) != KW_OK ||
      !ask.respond)
    return;
  uint64_t now = kw__now(l->ep);
  bool held =
      ifc->last_resp_ns[fam] != 0 &&
      now - ifc->last_resp_ns[fam] < KW_MDNS_RESPONSE_GAP_MS * 1000000ull;
  /* held back by the multicast gap: only a QU question (RFC 6762 5.4) is
   * answered then, by unicast, under its own gap */
  bool qu_now =
      held && !ask.legacy && ask.unicast &&
      (ifc->last_uresp_ns[fam] == 0 ||
       now - ifc->last_uresp_ns[fam] >= KW_MDNS_UNICAST_GAP_MS * 1000000ull);
  if (held && !qu_now)
    return; /* answered on this link less than a second ago */
  uint8_t msg[KW_MDNS_MAX_TX];
  size_t n;
  if (!encode_self(l, ifc, fam, KW_MDNS_TTL_S, ask.legacy ? &ask.lq : NULL, msg,
                   sizeof msg, &n))
    return;
  if (qu_now)
    ifc->last_uresp_ns[fam] = now;
  else
    ifc->last_resp_ns[fam] = now;
  if (ask.legacy || qu_now)
    send_to(l, fam, ifc, from, fromlen, msg, n);
  else
    send_mc(l, fam, ifc, msg, n);
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  kw__lan *l = h->data;
  (void)events;
  if (status < 0 || l->stopping)
    return;
  int fam = h == &l->poll[0] ? 0 : 1;
  for (int k = 0; k < KW_LAN_RX_PER_WAKE; k++) {
    struct sockaddr_storage from;
    struct iovec iov = {l->rx, sizeof l->rx};
    union {
      char buf[256];
      struct cmsghdr align;
    } cbuf;
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.buf;
    mh.msg_controllen = sizeof cbuf.buf;
    ssize_t r = recvmsg(l->fd[fam], &mh, 0);
    if (r < 0)
      return;
    if ((size_t)r > KW_MDNS_MAX_RX || (mh.msg_flags & MSG_TRUNC))
      continue;
    unsigned ifindex = 0;
    int ttl = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        struct in_pktinfo pi;
        memcpy(&pi, CMSG_DATA(c), sizeof pi);
        ifindex = (unsigned)pi.ipi_ifindex;
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
        memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      } else if (c->cmsg_level == IPPROTO_IPV6 &&
                 c->cmsg_type == IPV6_PKTINFO) {
        struct in6_pktinfo pi;
        memcpy(&pi, CMSG_DATA(c), sizeof pi);
        ifindex = pi.ipi6_ifindex;
      } else if (c->cmsg_level == IPPROTO_IPV6 &&
                 c->cmsg_type == IPV6_HOPLIMIT) {
        memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      }
    }
    lan_iface *ifc = iface_index(l, ifindex);
    if (!ifc || !ifc->joined[fam] || ttl != 255)
      continue; /* not one of our links, or not sent on the link */
    kw_sockaddr src;
    kw__sockaddr_from_os((const struct sockaddr *)&from, &src);
    if (r < KW_DNS_HEADER_LEN)
      continue;
    if (l->rx[2] & 0x80) {
      if (src.port == KW_MDNS_PORT)
        got_response(l, l->rx, (size_t)r);
    } else {
      got_query(l, fam, ifc, (const struct sockaddr *)&from, mh.msg_namelen,
                src.port, l->rx, (size_t)r);
    }
    if (l->stopping)
      return;
  }
}

/* ---- life cycle -------------------------------------------------------- */

static int open_sock(int fam) {
  int one = 1, ttl = 255;
  int fd = socket(fam == 0 ? AF_INET : AF_INET6,
                  SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  int ok;
  if (fam == 0) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(KW_MDNS_PORT);
    ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
         setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) == 0 &&
         setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) == 0 &&
         setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one) == 0 &&
         setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) == 0 &&
         setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof one) == 0;
  } else {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(KW_MDNS_PORT);
    ok =
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0 &&
        bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl) ==
            0 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl) ==
            0 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one) ==
            0 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) == 0 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) == 0;
  }
  if (!ok) {
    close(fd);
    return -1;
  }
  return fd;
}

bool kw__lan_on(const kw_endpoint *ep) {
  return kw__ep_lan(ep) != NULL;
}

kw_err kw__lan_new(kw_endpoint *ep, struct kw__lan **out) {
  *out = NULL;
  if (!kw__ep_cfg(ep)->lan)
    return KW_OK;
  kw__lan *l = calloc(1, sizeof *l);
  if (!l)
    return KW_ERR_NOMEM;
  l->ep = ep;
  for (int f = 0; f < 2; f++) {
    bool want = kw__magicsock_bound(ep, f == 0 ? 4 : 6, NULL);
    l->fd[f] = want ? open_sock(f) : -1;
    if (want && l->fd[f] < 0)
      kw__log(ep, KW_LOG_WARN, "lan", "lan.socket_failed family=%d errno=%d",
              f == 0 ? 4 : 6, errno);
  }
  if (l->fd[0] < 0 && l->fd[1] < 0) {
    free(l);
    kw__log(ep, KW_LOG_WARN, "lan", "lan.unavailable");
    return KW_OK; /* the other sources still work */
  }
  for (int f = 0; f < 2; f++) {
    if (l->fd[f] < 0)
      continue;
    uv_poll_init(kw__ep_loop(ep), &l->poll[f], l->fd[f]);
    l->poll[f].data = l;
    l->poll_init[f] = true;
    uv_poll_start(&l->poll[f], UV_READABLE, poll_cb);
  }
  uv_timer_init(kw__ep_loop(ep), &l->timer);
  l->timer.data = l;
  l->timer_init = true;
  *out = l;
  scan_ifaces(l);
  kw__log(ep, KW_LOG_INFO, "lan", "lan.started ifaces=%zu v4=%d v6=%d",
          l->n_ifs, l->fd[0] >= 0, l->fd[1] >= 0);
  l->announces_left = KW_MDNS_ANNOUNCES;
  l->next_announce_ns = 0;
  arm(l);
  return KW_OK;
}

void kw__lan_record_changed(kw_endpoint *ep) {
  kw__lan *l = kw__ep_lan(ep);
  if (!l || l->stopping)
    return;
  l->announces_left = KW_MDNS_ANNOUNCES;
  l->next_announce_ns = 0;
  arm(l);
}

void kw__lan_network_changed(kw_endpoint *ep) {
  kw__lan *l = kw__ep_lan(ep);
  if (!l || l->stopping)
    return;
  scan_ifaces(l);
  kw__lan_record_changed(ep);
}

kw_err kw__lan_lookup(kw_endpoint *ep, const uint8_t id[KW_ID_LEN],
                      uint64_t deadline_ns, kw__resolve_cb cb, void *arg) {
  kw__lan *l = kw__ep_lan(ep);
  if (!l || l->stopping)
    return KW_ERR_NO_PATH;
  kw_endpoint_addr a;
  if (kw__mdns_cache_get(&l->cache, id, kw__unix_us(), &a)) {
    cb(ep, KW_OK, &a, arg); /* heard announced already */
    return KW_OK;
  }
  for (int i = 0; i < KW_LAN_MAX_LOOKUPS; i++) {
    lan_lookup *q = &l->q[i];
    if (q->used)
      continue;
    q->used = true;
    memcpy(q->id, id, KW_ID_LEN);
    q->deadline_ns = deadline_ns;
    q->cb = cb;
    q->arg = arg;
    query(l, id, true);
    q->sent = 1;
    q->next_ns = kw__now(ep) + kw__mdns_query_gap_ms(1) * 1000000ull;
    arm(l);
    return KW_OK;
  }
  return KW_ERR_FULL;
}

void kw__lan_stop(kw_endpoint *ep) {
  kw__lan *l = kw__ep_lan(ep);
  if (!l || l->stopping)
    return;
  announce(l, 0); /* goodbye: TTL 0 */
  l->stopping = true;
  for (int i = 0; i < KW_LAN_MAX_LOOKUPS; i++)
    if (l->q[i].used)
      lookup_end(l, &l->q[i], KW_ERR_CLOSED, NULL);
  for (int f = 0; f < 2; f++)
    if (l->poll_init[f])
      uv_close((uv_handle_t *)&l->poll[f], handle_closed);
  if (l->timer_init)
    uv_close((uv_handle_t *)&l->timer, handle_closed);
}

void kw__lan_free(struct kw__lan *l) {
  if (!l)
    return;
  for (int f = 0; f < 2; f++)
    if (l->fd[f] >= 0)
      close(l->fd[f]);
  free(l);
}
