/* SPDX-License-Identifier: MIT */
/*
 * bday_xsock: birthday probing's extra sockets on loopback (core/remote.h,
 * "Birthday probing"; the magicsock's bday_send / bday_close).
 *
 *   bday_xsock RELAY1_ADDR RELAY2_ADDR CA_PEM
 *
 * The endpoint under test, E, has two relays whose STUN servers are two
 * sockets of this program that answer every Binding with a different port
 * (as an endpoint-dependent NAT would): E learns it is EDM by itself (the
 * NAT-kind check). Three peers P1..P3 are real keyway endpoints that dial
 * E relay-only, so E has no direct path to them. A plain UDP socket X of
 * this program plays each peer's EIM side: it sends E a sealed NatHint
 * (EIM, reflexive address X) in a peer's name, and E must then
 *  1. open KW_RP_BDAY_SOCKETS extra sockets for P1, each sending one Ping
 *     to X from its own port (counted: distinct ports, and the UDP sockets
 *     of the process grow by as many);
 *  2. after X answers one of those Pings with a Pong (to its port), move
 *     P1's connection onto that socket: path_changed says direct, X; X
 *     gets QUIC from that port; every other extra socket closes at once
 *     (one extra UDP socket left);
 *  3. with P2 and P3 hinted at once, open no more than the per-endpoint cap
 *     KW_XSOCK_MAX_PER_EP in all (the one of P1 counted): the two attempts
 *     together get exactly the cap's remainder;
 *  4. at kw_endpoint_free, close every extra socket (descriptors back to
 *     what they were before any endpoint).
 * Its STUN servers drop the first two requests each: E must resend its
 * reflexive-address request (stun_probe.c, KW_STUN_RETRY_MS).
 * Prints one line per check ("ok - ..." / "FAIL - ...") and exits 1 on a
 * failure.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <sodium.h>

#include "keyway.h"
#include "core/disco.h"
#include "core/remote.h"
#include "core/sockaddr.h"
#include "core/stun.h"

#define XSOCK_CAP 256 /* KW_XSOCK_MAX_PER_EP (src/endpoint/magicsock.h) */
#define NPEERS 3
#define MAXPORTS 1024

static int failed;
static void check(bool ok, const char *what) {
  printf("%s - %s\n", ok ? "ok" : "FAIL", what);
  fflush(stdout);
  if (!ok)
    failed++;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the DIR's own */
}

/* The process's UDP sockets only: the extra sockets are UDP, while the
 * four endpoints' relay and lookup connections (TCP) come and go on their
 * own schedule (a redial under load made the plain count one too many). */
static int count_udp(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  int n = 0, self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    int fd = atoi(e->d_name);
    int type = 0;
    socklen_t tl = sizeof type;
    if (fd != self && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
        type == SOCK_DGRAM)
      n++;
  }
  closedir(d);
  return n;
}

static int udp_socket(struct sockaddr_in *out) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t l = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
    close(fd);
    return -1;
  }
  *out = a;
  return fd;
}

static void to_kw(const struct sockaddr_in *a, kw_sockaddr *k) {
  memset(k, 0, sizeof *k);
  k->family = 4;
  memcpy(k->ip, &a->sin_addr, 4);
  k->port = ntohs(a->sin_port);
}

/* ---- the two "STUN servers" of an endpoint-dependent NAT ---------------- */

static int stun_fd[2];
static unsigned stun_seen[2]; /* requests per server (the thread's own) */
static volatile int stun_stop;

static void *stun_thread(void *arg) {
  (void)arg;
  struct pollfd pf[2] = {{stun_fd[0], POLLIN, 0}, {stun_fd[1], POLLIN, 0}};
  while (!stun_stop) {
    if (poll(pf, 2, 50) <= 0)
      continue;
    for (int i = 0; i < 2; i++) {
      uint8_t b[1500];
      struct sockaddr_in from;
      socklen_t fl = sizeof from;
      ssize_t n =
          recvfrom(stun_fd[i], b, sizeof b, 0, (struct sockaddr *)&from, &fl);
      if (n <= 0)
        continue;
      kw__stun_msg m;
      if (kw__stun_parse_request(b, (size_t)n, &m) != KW_OK)
        continue;
      if (++stun_seen[i] <= 2)
        continue; /* lost: E must ask again (check 0) */
      kw_sockaddr mapped;
      to_kw(&from, &mapped);
      mapped.port = (uint16_t)(40000 + i); /* another port per server */
      uint8_t out[512];
      size_t ol;
      if (kw__stun_build_success(out, sizeof out, &ol, m.txid, &mapped, NULL) ==
          KW_OK)
        (void)sendto(stun_fd[i], out, ol, 0, (struct sockaddr *)&from, fl);
    }
  }
  return NULL;
}

/* ---- E, the endpoint under test ------------------------------------------ */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool e_edm, e_direct, e_reflexive;
static kw_sockaddr e_direct_addr;
static int e_accepted;
static unsigned e_hits;

static void e_log(void *user, kw_log_level level, const char *module,
                  const char *msg) {
  (void)user;
  (void)level;
  if (getenv("BDAY_XSOCK_VERBOSE"))
    fprintf(stderr, "E %s: %s\n", module, msg);
  pthread_mutex_lock(&mu);
  if (strstr(msg, "stun.nat_kind kind=edm"))
    e_edm = true;
  if (strstr(msg, "stun.reflexive addr="))
    e_reflexive = true;
  if (strstr(msg, "holepunch.birthday_hit"))
    e_hits++;
  pthread_mutex_unlock(&mu);
}

static void e_accept(kw_conn *c, void *user) {
  (void)c;
  (void)user;
  pthread_mutex_lock(&mu);
  e_accepted++;
  pthread_mutex_unlock(&mu);
}

static void e_path(kw_conn *c, const kw_path_info *p, void *user) {
  (void)c;
  (void)user;
  pthread_mutex_lock(&mu);
  if (p->kind == KW_PATH_DIRECT) {
    e_direct = true;
    e_direct_addr = p->addr;
  }
  pthread_mutex_unlock(&mu);
}

/* ---- the peers ------------------------------------------------------------
 */

typedef struct peer {
  uint8_t sk[KW_SECRET_KEY_LEN], pk[KW_ID_LEN];
  kw_endpoint *ep;
  kw__disco_key key;
  int connected; /* under mu: 0 waiting, 1 up, -1 failed */
  kw_conn *conn;
  unsigned ports; /* distinct source ports of E's Pings in this peer's name */
  uint16_t port[MAXPORTS];
  uint8_t tx[MAXPORTS][KW_DISCO_TXID_LEN];
  size_t plen[MAXPORTS];
} peer;

static kw_endpoint_addr e_addr;

static void p_connected(kw_conn *c, kw_err err, void *arg) {
  peer *p = arg;
  pthread_mutex_lock(&mu);
  p->connected = err == KW_OK ? 1 : -1;
  p->conn = c;
  pthread_mutex_unlock(&mu);
}

static void p_dial(kw_endpoint *ep, void *arg) {
  kw_err e = kw_endpoint_connect(ep, &e_addr, "kwtest/1", p_connected, arg);
  if (e != KW_OK)
    p_connected(NULL, e, arg);
}

static void p_datagram(kw_endpoint *ep, void *arg) {
  (void)ep;
  peer *p = arg;
  static const uint8_t d[32];
  if (p->conn)
    (void)kw_conn_send_datagram(p->conn, d, sizeof d);
}

static kw_config *base_cfg(const char *r1, const char *r2, const char *ca,
                           const uint8_t *sk) {
  kw_config *cfg;
  kw_sockaddr b;
  if (kw_config_new(&cfg) != KW_OK)
    return NULL;
  if ((sk && kw_config_set_secret_key(cfg, sk) != KW_OK) ||
      kw_sockaddr_parse("127.0.0.1:0", &b) != KW_OK ||
      kw_config_add_bind(cfg, &b) != KW_OK ||
      kw_config_set_families(cfg, true, false) != KW_OK ||
      kw_config_add_alpn(cfg, "kwtest/1") != KW_OK ||
      kw_config_add_relay(cfg, r1) != KW_OK ||
      kw_config_add_relay(cfg, r2) != KW_OK ||
      kw_config_set_relay_ca(cfg, ca) != KW_OK) {
    kw_config_free(cfg);
    return NULL;
  }
  return cfg;
}

/* X: the peers' EIM side. */
static int xfd;
static kw_sockaddr xaddr;
static struct sockaddr_in e_udp;
static peer peers[NPEERS];

static void send_hint(peer *p) {
  kw__disco_msg m;
  memset(&m, 0, sizeof m);
  m.type = KW_DISCO_NAT_HINT;
  m.ts_ms = unix_ms();
  m.nat = KW_DISCO_NAT_EIM;
  m.has_addr = true;
  m.addr = xaddr;
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  kw_err e = kw__disco_seal(&p->key, p->pk, &m, buf, sizeof buf, &n);
  ssize_t w = -1;
  if (e == KW_OK)
    w = sendto(xfd, buf, n, 0, (struct sockaddr *)&e_udp, sizeof e_udp);
  if (w != (ssize_t)n)
    fprintf(stderr, "bday_xsock: NatHint: seal %s, sent %zd\n", kw_errname(e),
            w);
}

/* What reached X for `ms` milliseconds: E's Pings (opened with each
 * peer's key: their source ports per peer) and, from port `watch`, the
 * QUIC datagrams (*quic) and Pings (*pings) */
static void collect(int ms, uint16_t watch, unsigned *quic, unsigned *pings) {
  uint64_t end = now_ms() + (uint64_t)ms;
  struct pollfd pf = {xfd, POLLIN, 0};
  while (now_ms() < end) {
    if (poll(&pf, 1, 10) <= 0)
      continue;
    uint8_t b[2048];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n;
    while ((n = recvfrom(xfd, b, sizeof b, 0, (struct sockaddr *)&from, &fl)) >
           0) {
      uint16_t port = ntohs(from.sin_port);
      fl = sizeof from;
      if (!kw__disco_is(b, (size_t)n)) {
        if (quic && port == watch)
          (*quic)++;
        continue;
      }
      for (int i = 0; i < NPEERS; i++) {
        peer *p = &peers[i];
        kw__disco_msg m;
        if (kw__disco_open(&p->key, b, (size_t)n, &m) != KW_OK ||
            m.type != KW_DISCO_PING)
          continue;
        if (pings && port == watch)
          (*pings)++;
        bool seen = false;
        for (unsigned j = 0; j < p->ports && !seen; j++)
          seen = p->port[j] == port;
        if (!seen && p->ports < MAXPORTS) {
          p->port[p->ports] = port;
          memcpy(p->tx[p->ports], m.tx_id, KW_DISCO_TXID_LEN);
          p->plen[p->ports] = (size_t)n;
          p->ports++;
        }
      }
    }
  }
}

static bool wait_for(bool *flag, int ms) {
  uint64_t end = now_ms() + (uint64_t)ms;
  for (;;) {
    pthread_mutex_lock(&mu);
    bool v = *flag;
    pthread_mutex_unlock(&mu);
    if (v)
      return true;
    if (now_ms() > end)
      return false;
    usleep(10000);
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: bday_xsock RELAY1_ADDR RELAY2_ADDR CA_PEM\n");
    return 2;
  }
  if (sodium_init() < 0)
    return 1;
  /* the libraries' own lasting descriptors (the random source...) come
   * with the first endpoint: one made and freed first, then the count */
  {
    kw_config *c0;
    kw_endpoint *e0 = NULL;
    kw_sockaddr b0;
    if (kw_config_new(&c0) != KW_OK ||
        kw_sockaddr_parse("127.0.0.1:0", &b0) != KW_OK ||
        kw_config_add_bind(c0, &b0) != KW_OK ||
        kw_config_set_families(c0, true, false) != KW_OK ||
        kw_endpoint_new(c0, &e0) != KW_OK || kw_endpoint_start(e0) != KW_OK)
      return 1;
    kw_config_free(c0);
    kw_endpoint_close(e0);
    kw_endpoint_free(e0);
  }
  int fds0 = count_fds();
  struct sockaddr_in s0, s1, xa;
  stun_fd[0] = udp_socket(&s0);
  stun_fd[1] = udp_socket(&s1);
  xfd = udp_socket(&xa);
  if (stun_fd[0] < 0 || stun_fd[1] < 0 || xfd < 0)
    return 1;
  to_kw(&xa, &xaddr);
  pthread_t st;
  pthread_create(&st, NULL, stun_thread, NULL);
  char r1[256], r2[256];
  snprintf(r1, sizeof r1, "https://%s/?stun=%u", argv[1],
           (unsigned)ntohs(s0.sin_port));
  snprintf(r2, sizeof r2, "https://%s/?stun=%u", argv[2],
           (unsigned)ntohs(s1.sin_port));
  char p1[256], p2[256];
  snprintf(p1, sizeof p1, "https://%s/?stun=%u", argv[1],
           (unsigned)ntohs(xa.sin_port));
  snprintf(p2, sizeof p2, "https://%s/?stun=%u", argv[2],
           (unsigned)ntohs(xa.sin_port));

  /* E */
  uint8_t esk[KW_SECRET_KEY_LEN], epk[KW_ID_LEN];
  crypto_sign_keypair(epk, esk);
  kw_config *cfg = base_cfg(r1, r2, argv[3], esk);
  kw_callbacks cbs;
  memset(&cbs, 0, sizeof cbs);
  cbs.conn_accepted = e_accept;
  cbs.path_changed = e_path;
  kw_endpoint *e = NULL;
  if (!cfg || kw_config_set_callbacks(cfg, &cbs, NULL) != KW_OK ||
      kw_config_set_log(cfg, e_log, NULL, KW_LOG_INFO) != KW_OK ||
      kw_endpoint_new(cfg, &e) != KW_OK || kw_endpoint_start(e) != KW_OK) {
    fprintf(stderr, "bday_xsock: endpoint E failed\n");
    return 1;
  }
  kw_config_free(cfg);
  check(wait_for(&e_edm, 8000),
        "E learned an endpoint-dependent mapping from its two relays' STUN");
  /* each server drops its first two requests, so E's first reflexive
   * request is lost (the NAT-kind check's first one too); a request is
   * sent again after 500 ms, 1 s... (before: only at the next 25 s
   * refresh) */
  check(wait_for(&e_reflexive, 8000),
        "E learned its reflexive address though its first STUN request was "
        "lost (resent)");
  char home[KW_MAX_RELAY_URL + 1] = "";
  for (int i = 0; i < 500 && !home[0]; i++) {
    kw_endpoint_home_relay(e, home, sizeof home);
    if (!home[0])
      usleep(10000);
  }
  kw_endpoint_addr ea;
  if (!home[0] || kw_endpoint_get_addr(e, &ea) != KW_OK) {
    fprintf(stderr, "bday_xsock: E has no home relay\n");
    return 1;
  }
  memset(&e_addr, 0, sizeof e_addr);
  memcpy(e_addr.id, ea.id, KW_ID_LEN);
  snprintf(e_addr.relay_url, sizeof e_addr.relay_url, "%s", home);
  memset(&e_udp, 0, sizeof e_udp);
  kw_sockaddr eb[2];
  size_t neb = 0;
  (void)kw_endpoint_bound(e, eb, 2, &neb);
  for (size_t i = 0; i < neb; i++) /* its socket (the "reflexive" is fake) */
    if (eb[i].family == 4 && eb[i].ip[0] == 127) {
      e_udp.sin_family = AF_INET;
      e_udp.sin_port = htons(eb[i].port);
      memcpy(&e_udp.sin_addr, eb[i].ip, 4);
    }
  if (!e_udp.sin_family) {
    fprintf(stderr, "bday_xsock: E has no 127.x address\n");
    return 1;
  }

  /* the peers, relay-only: E knows no direct address of theirs */
  for (int i = 0; i < NPEERS; i++) {
    peer *p = &peers[i];
    crypto_sign_keypair(p->pk, p->sk);
    /* relays without our STUN servers: the peers learn no NAT kind and
     * send no NatHint of their own (X speaks for them) */
    kw_config *pc = base_cfg(p1, p2, argv[3], p->sk);
    if (!pc ||
        kw_config_set_path_policy(pc, KW_PATH_POLICY_RELAY_ONLY) != KW_OK ||
        kw_config_set_birthday_probing(pc, false) != KW_OK ||
        kw_endpoint_new(pc, &p->ep) != KW_OK ||
        kw_endpoint_start(p->ep) != KW_OK) {
      fprintf(stderr, "bday_xsock: peer %d failed\n", i);
      return 1;
    }
    kw_config_free(pc);
    if (kw__disco_key_derive(p->sk, e_addr.id, &p->key) != KW_OK)
      return 1;
    kw_endpoint_post(p->ep, p_dial, p);
  }
  uint64_t deadline = now_ms() + 15000;
  for (int i = 0; i < NPEERS; i++) {
    for (;;) {
      pthread_mutex_lock(&mu);
      int c = peers[i].connected;
      pthread_mutex_unlock(&mu);
      if (c == 1)
        break;
      if (c < 0 || now_ms() > deadline) {
        fprintf(stderr, "bday_xsock: peer %d did not connect\n", i);
        return 1;
      }
      usleep(10000);
    }
  }
  usleep(300000); /* E's side of the handshakes settles */
  collect(100, 0, NULL, NULL);
  for (int i = 0; i < NPEERS; i++)
    peers[i].ports = 0;

  /* 1. P1's NatHint: the extra sockets open and ping X */
  int fds1 = count_udp();
  send_hint(&peers[0]);
  collect(600, 0, NULL, NULL);
  int fds2 = count_udp();
  char line[256];
  snprintf(line, sizeof line,
           "P1: %u extra sockets pinged X from as many ports (wanted %d); "
           "UDP sockets +%d",
           peers[0].ports, KW_RP_BDAY_SOCKETS, fds2 - fds1);
  check(peers[0].ports == KW_RP_BDAY_SOCKETS &&
            fds2 - fds1 == (int)peers[0].ports,
        line);

  /* 2. a Pong on one of them: the path moves there, the others close */
  if (peers[0].ports == 0)
    return 1;
  unsigned k = peers[0].ports / 2;
  kw_sockaddr obs = xaddr;
  obs.port = peers[0].port[k];
  struct sockaddr_in to = e_udp;
  to.sin_port = htons(peers[0].port[k]);
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  if (kw__disco_seal_pong(&peers[0].key, peers[0].pk, peers[0].plen[k],
                          peers[0].tx[k], &obs, unix_ms(), buf, sizeof buf,
                          &n) != KW_OK)
    return 1;
  (void)sendto(xfd, buf, n, 0, (struct sockaddr *)&to, sizeof to);
  unsigned quic = 0, pings = 0;
  for (int i = 0; i < 15; i++) { /* P1 sends; E acknowledges on its path */
    kw_endpoint_post(peers[0].ep, p_datagram, &peers[0]);
    collect(40, peers[0].port[k], &quic, &pings);
  }
  bool direct = wait_for(&e_direct, 100);
  pthread_mutex_lock(&mu);
  bool to_x = kw__sockaddr_equal(&e_direct_addr, &xaddr);
  unsigned hits = e_hits;
  pthread_mutex_unlock(&mu);
  check(direct && to_x && hits == 1,
        "P1: the Pong on one extra socket made X the direct path "
        "(path_changed: direct, X's address)");
  snprintf(line, sizeof line,
           "P1: X got the connection's QUIC (%u) and Pings (%u) from that "
           "socket's port",
           quic, pings);
  check(quic > 0 && pings > 0, line);
  int fds3 = count_udp();
  snprintf(line, sizeof line,
           "P1: the other extra sockets closed at once (UDP sockets +%d, "
           "wanted +1)",
           fds3 - fds1);
  check(fds3 - fds1 == 1, line);

  /* 3. P2 and P3 at once: the per-endpoint cap */
  send_hint(&peers[1]);
  send_hint(&peers[2]);
  collect(600, 0, NULL, NULL);
  int fds4 = count_udp();
  unsigned both = peers[1].ports + peers[2].ports;
  snprintf(line, sizeof line,
           "P2+P3: %u + %u extra sockets, the cap's remainder %d; "
           "UDP sockets +%d, wanted +%d",
           peers[1].ports, peers[2].ports, XSOCK_CAP - 1, fds4 - fds1,
           XSOCK_CAP);
  check(both == XSOCK_CAP - 1 && peers[1].ports <= KW_RP_BDAY_SOCKETS &&
            peers[2].ports <= KW_RP_BDAY_SOCKETS && fds4 - fds1 == XSOCK_CAP,
        line);

  /* 4. the endpoint's close takes every extra socket with it */
  for (int i = 0; i < NPEERS; i++) {
    kw_endpoint_close(peers[i].ep);
    kw_endpoint_free(peers[i].ep);
    kw__disco_key_wipe(&peers[i].key);
  }
  kw_endpoint_close(e);
  kw_endpoint_free(e);
  stun_stop = 1;
  pthread_join(st, NULL);
  close(stun_fd[0]);
  close(stun_fd[1]);
  close(xfd);
  int fds5 = count_fds();
  snprintf(line, sizeof line,
           "after kw_endpoint_free every descriptor is closed (%d, before "
           "any endpoint %d)",
           fds5, fds0);
  check(fds5 == fds0, line);
  sodium_memzero(esk, sizeof esk);
  return failed ? 1 : 0;
}
