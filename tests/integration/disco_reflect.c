/* SPDX-License-Identifier: MIT */
/*
 * disco_reflect: a connected peer that floods an endpoint with sealed
 * CallMeMaybe messages naming addresses of third parties, and counts what
 * the endpoint sends to those addresses (docs/protocol/disco.md, "Probe
 * budget"). Loopback only: the "third parties" are UDP sockets of this
 * program on 127.0.0.2 and up.
 *
 *   disco_reflect TICKET_FILE MODE [IDENTITIES]
 *
 * Each identity is a real keyway endpoint (its own key) with a connection
 * to the target (ALPN keyway/ping/1); the CallMeMaybes are sealed with
 * that key by core's disco codec and sent from a plain UDP socket (a
 * CallMeMaybe is acted on wherever it comes from, as long as it opens).
 * For 4 s each identity sends 50 CallMeMaybes per second, then the
 * program counts 4 s more. MODEs:
 *   same   the first names 16 counter addresses, the others none (the
 *          audit's flood: 200 empty CallMeMaybes at 50/s)
 *   churn  alternately 16 and 16 other counter addresses, so every one
 *          brings new candidates (and the path table churns)
 * Prints what was sent and received, the amplification factor, and exits
 * 1 if the datagrams or bytes the counters saw exceed the bound:
 *   per remote   BURST + RATE x T   (one identity)
 *   per endpoint BURST + RATE x T   (all identities together)
 * with T the seconds from the first CallMeMaybe to the end of counting.
 */
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
#include "core/holepunch.h"

#define MAX_IDS 16
#define NCOUNTERS 32
#define FLOOD_MS 4000
#define TAIL_MS 4000
#define PER_S 50

typedef struct ident {
  uint8_t sk[KW_SECRET_KEY_LEN], pk[KW_ID_LEN];
  kw_endpoint *ep;
  kw__disco_key key;
  pthread_mutex_t mu;
  int connected; /* 0 waiting, 1 up, -1 failed */
  kw_conn *conn;
} ident;

static kw_endpoint_addr target;

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

static void on_connect(kw_conn *c, kw_err err, void *arg) {
  ident *id = arg;
  pthread_mutex_lock(&id->mu);
  id->connected = err == KW_OK ? 1 : -1;
  id->conn = c;
  pthread_mutex_unlock(&id->mu);
  if (err != KW_OK)
    fprintf(stderr, "disco_reflect: connect: %s\n", kw_errname(err));
}

static void do_connect(kw_endpoint *ep, void *arg) {
  kw_err e = kw_endpoint_connect(ep, &target, "keyway/ping/1", on_connect, arg);
  if (e != KW_OK)
    on_connect(NULL, e, arg);
}

static int udp_socket(const char *ip, uint16_t port, struct sockaddr_in *out) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  socklen_t l = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
    close(fd);
    return -1;
  }
  if (out)
    *out = a;
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: disco_reflect TICKET_FILE same|churn [IDENTITIES]\n");
    return 2;
  }
  const char *mode = argv[2];
  bool churn = strcmp(mode, "churn") == 0;
  if (!churn && strcmp(mode, "same") != 0)
    return 2;
  int nid = argc > 3 ? atoi(argv[3]) : 1;
  if (nid < 1 || nid > MAX_IDS)
    return 2;
  if (sodium_init() < 0)
    return 1;
  char tk[KW_TICKET_MAX];
  FILE *f = fopen(argv[1], "r");
  if (!f || !fgets(tk, sizeof tk, f)) {
    fprintf(stderr, "disco_reflect: cannot read %s\n", argv[1]);
    return 1;
  }
  fclose(f);
  const char *why = NULL;
  if (kw_ticket_decode(tk, &target, &why) != KW_OK) {
    fprintf(stderr, "disco_reflect: bad ticket: %s\n", why ? why : "?");
    return 1;
  }
  const kw_sockaddr *tv4 = NULL;
  for (size_t i = 0; i < target.n_addrs; i++)
    if (target.addrs[i].family == 4 && target.addrs[i].ip[0] == 127)
      tv4 = &target.addrs[i];
  if (!tv4) {
    fprintf(stderr, "disco_reflect: the ticket has no 127.x address\n");
    return 1;
  }
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons(tv4->port);
  memcpy(&to.sin_addr, tv4->ip, 4);

  /* the third parties */
  int cfd[NCOUNTERS];
  kw_sockaddr caddr[NCOUNTERS];
  for (int i = 0; i < NCOUNTERS; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "127.0.0.%d", 2 + i);
    struct sockaddr_in a;
    cfd[i] = udp_socket(ip, 0, &a);
    if (cfd[i] < 0) {
      fprintf(stderr, "disco_reflect: bind %s: %s\n", ip, strerror(errno));
      return 1;
    }
    memset(&caddr[i], 0, sizeof caddr[i]);
    caddr[i].family = 4;
    memcpy(caddr[i].ip, &a.sin_addr, 4);
    caddr[i].port = ntohs(a.sin_port);
  }
  int sfd = udp_socket("127.0.0.1", 0, NULL);
  if (sfd < 0)
    return 1;

  /* the peers: real identities with real connections */
  static ident ids[MAX_IDS];
  for (int i = 0; i < nid; i++) {
    ident *d = &ids[i];
    pthread_mutex_init(&d->mu, NULL);
    crypto_sign_keypair(d->pk, d->sk);
    kw_config *cfg;
    kw_sockaddr b;
    if (kw_config_new(&cfg) != KW_OK ||
        kw_config_set_secret_key(cfg, d->sk) != KW_OK ||
        kw_sockaddr_parse("127.0.0.1:0", &b) != KW_OK ||
        kw_config_add_bind(cfg, &b) != KW_OK ||
        kw_config_set_families(cfg, true, false) != KW_OK ||
        kw_config_set_keepalive(cfg, 1000) != KW_OK ||
        kw_endpoint_new(cfg, &d->ep) != KW_OK ||
        kw_endpoint_start(d->ep) != KW_OK) {
      fprintf(stderr, "disco_reflect: endpoint %d failed\n", i);
      return 1;
    }
    kw_config_free(cfg);
    if (kw__disco_key_derive(d->sk, target.id, &d->key) != KW_OK)
      return 1;
    kw_endpoint_post(d->ep, do_connect, d);
  }
  uint64_t deadline = now_ms() + 15000;
  for (int i = 0; i < nid; i++) {
    for (;;) {
      pthread_mutex_lock(&ids[i].mu);
      int c = ids[i].connected;
      pthread_mutex_unlock(&ids[i].mu);
      if (c == 1)
        break;
      if (c < 0 || now_ms() > deadline) {
        fprintf(stderr, "disco_reflect: identity %d did not connect\n", i);
        return 1;
      }
      usleep(10000);
    }
  }
  /* let the connections' own first rounds settle, and drain what they
   * sent (nothing goes to the counters: nobody named them yet) */
  usleep(500000);
  uint8_t rb[2048];
  for (int i = 0; i < NCOUNTERS; i++)
    while (recv(cfd[i], rb, sizeof rb, 0) > 0)
      ;

  uint64_t sent_pkts = 0, sent_bytes = 0, recv_pkts = 0, recv_bytes = 0;
  uint64_t t0 = now_ms();
  int nmsg = FLOOD_MS * PER_S / 1000;
  int next = 0;
  struct pollfd pf[NCOUNTERS];
  for (int i = 0; i < NCOUNTERS; i++) {
    pf[i].fd = cfd[i];
    pf[i].events = POLLIN;
  }
  for (;;) {
    uint64_t t = now_ms() - t0;
    if (t >= FLOOD_MS + TAIL_MS)
      break;
    while (next < nmsg && t >= (uint64_t)next * 1000u / PER_S) {
      for (int i = 0; i < nid; i++) {
        kw__disco_msg m;
        memset(&m, 0, sizeof m);
        m.type = KW_DISCO_CALL_ME_MAYBE;
        m.ts_ms = unix_ms();
        int set = churn ? next % 2 : 0;
        if (churn || next == 0) {
          m.n_addrs = 16;
          for (int j = 0; j < 16; j++)
            m.addrs[j] = caddr[set * 16 + j];
        }
        uint8_t buf[KW_DISCO_MAX_LEN];
        size_t n;
        if (kw__disco_seal(&ids[i].key, ids[i].pk, &m, buf, sizeof buf, &n) !=
            KW_OK)
          return 1;
        if (sendto(sfd, buf, n, 0, (struct sockaddr *)&to, sizeof to) ==
            (ssize_t)n) {
          sent_pkts++;
          sent_bytes += n;
        }
      }
      next++;
    }
    int wait = 5;
    if (poll(pf, NCOUNTERS, wait) > 0)
      for (int i = 0; i < NCOUNTERS; i++) {
        if (!(pf[i].revents & POLLIN))
          continue;
        ssize_t r;
        while ((r = recv(cfd[i], rb, sizeof rb, 0)) > 0) {
          recv_pkts++;
          recv_bytes += (uint64_t)r;
        }
      }
  }
  double secs = (FLOOD_MS + TAIL_MS) / 1000.0;
  uint64_t bound_pkts, bound_bytes;
  if (nid == 1) {
    bound_pkts = KW_PROBE_REMOTE_BURST_PKTS +
                 (uint64_t)(KW_PROBE_REMOTE_PKTS_S * secs);
    bound_bytes = KW_PROBE_REMOTE_BURST_BYTES +
                  (uint64_t)(KW_PROBE_REMOTE_BYTES_S * secs);
  } else {
    bound_pkts = KW_PROBE_EP_BURST_PKTS + (uint64_t)(KW_PROBE_EP_PKTS_S * secs);
    bound_bytes =
        KW_PROBE_EP_BURST_BYTES + (uint64_t)(KW_PROBE_EP_BYTES_S * secs);
  }
  double factor = sent_bytes ? (double)recv_bytes / (double)sent_bytes : 0;
  printf("mode=%s identities=%d sent_pkts=%llu sent_bytes=%llu "
         "reflected_pkts=%llu reflected_bytes=%llu factor=%.2f "
         "bound_pkts=%llu bound_bytes=%llu seconds=%.0f\n",
         mode, nid, (unsigned long long)sent_pkts,
         (unsigned long long)sent_bytes, (unsigned long long)recv_pkts,
         (unsigned long long)recv_bytes, factor,
         (unsigned long long)bound_pkts, (unsigned long long)bound_bytes,
         secs);
  fflush(stdout);
  for (int i = 0; i < nid; i++) {
    kw_endpoint_close(ids[i].ep);
    kw_endpoint_free(ids[i].ep);
    kw__disco_key_wipe(&ids[i].key);
    sodium_memzero(ids[i].sk, sizeof ids[i].sk);
  }
  for (int i = 0; i < NCOUNTERS; i++)
    close(cfd[i]);
  close(sfd);
  return recv_pkts <= bound_pkts && recv_bytes <= bound_bytes ? 0 : 1;
}
