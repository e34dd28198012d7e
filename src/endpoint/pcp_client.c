/* SPDX-License-Identifier: MIT */
/*
 * PCP client (RFC 6887): MAP requests to the default gateway's UDP port
 * 5351 from a socket of our own, connected to the gateway so that only its
 * answers arrive and an ICMP "port unreachable" (no PCP server) ends a
 * request at once. One transaction at a time: the request is sent, then
 * resent on RFC 6887 section 8.1.1's schedule (3 s, 6 s, ... each +-10%)
 * up to KW_PCP_TRIES times. Every datagram is decoded and checked by
 * core/pcp; anything that is not an answer to the request out (another
 * nonce, protocol, port, opcode, malformed) is ignored and the request
 * keeps waiting. See pcp_client.h and docs/protocol/portmap.md.
 */
#include "endpoint/pcp_client.h"

#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/magicsock.h"
#include "net/osaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/pcp.h"

#define KW_PCP_TRIES 3 /* sends at 0, ~3, ~9 s: "no answer" after ~21 s */

struct kw__pcp {
  kw_endpoint *ep;
  kw__pcp_cb cb;
  void *arg;
  uint16_t internal_port;
  uint8_t bind_ip[4]; /* 0.0.0.0: the wildcard */
  /* the socket, opened on the first request */
  uv_udp_t udp;
  uv_timer_t timer;
  bool handles; /* udp and timer initialised */
  int open_handles;
  bool connected;
  kw_sockaddr server; /* the gateway's port 5351 */
  kw_sockaddr client; /* our address toward it */
  /* the mapping */
  uint8_t nonce[KW_PCP_NONCE_LEN];
  bool have_nonce;
  kw_sockaddr held; /* external address of the mapping held; family 0 none */
  kw__pcp_epoch epoch;
  /* the transaction out */
  bool busy;
  bool deleting; /* the request out is a delete (only logged) */
  kw__pcp_map_req req;
  uint8_t msg[KW_PCP_MAP_MSG_LEN];
  size_t msglen;
  unsigned tries;
  uint32_t rt_ms;
  /* the first request (netcheck) */
  bool probed, answered;
  int last_result;
  bool closing;
  uint8_t rbuf[KW_PCP_MAX_MSG + 4]; /* one more: a longer datagram shows */
};

static uint64_t now_ms(kw__pcp *pc) {
  return kw__now(pc->ep) / 1000000u;
}

static void fmt(const kw_sockaddr *a, char *s, size_t n) {
  if (a->family)
    kw_sockaddr_format(a, s, n);
  else
    snprintf(s, n, "-");
}

/* The IPv4 default gateway from /proc/net/route (what libnatpmp does on
 * Linux): the first up route to 0.0.0.0/0 with a gateway. */
static bool default_gateway(uint8_t out[4]) {
  FILE *f = fopen("/proc/net/route", "re");
  if (!f)
    return false;
  char line[256];
  bool found = false;
  if (!fgets(line, sizeof line, f)) { /* the header */
    fclose(f);
    return false;
  }
  while (!found && fgets(line, sizeof line, f)) {
    char ifname[64];
    unsigned long dest, gw, mask;
    unsigned flags, refcnt, use, metric;
    if (sscanf(line, "%63s %lx %lx %x %u %u %u %lx", ifname, &dest, &gw, &flags,
               &refcnt, &use, &metric, &mask) != 8)
      continue;
    /* RTF_UP 0x1, RTF_GATEWAY 0x2; the file is in host byte order of the
     * network-order address */
    if (dest == 0 && mask == 0 && (flags & 0x3) == 0x3 && gw != 0) {
      uint32_t g = (uint32_t)gw;
      memcpy(out, &g, 4);
      found = true;
    }
  }
  fclose(f);
  return found;
}

static void on_closed(uv_handle_t *h) {
  kw__pcp *pc = h->data;
  pc->open_handles--;
}

static void close_handles(kw__pcp *pc) {
  if (!pc->handles)
    return;
  pc->handles = false;
  uv_timer_stop(&pc->timer);
  uv_udp_recv_stop(&pc->udp);
  uv_close((uv_handle_t *)&pc->udp, on_closed);
  uv_close((uv_handle_t *)&pc->timer, on_closed);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  kw__pcp *pc = h->data;
  buf->base = (char *)pc->rbuf;
  buf->len = sizeof pc->rbuf;
}

static void finish(kw__pcp *pc, kw__pcp_answer *a) {
  uv_timer_stop(&pc->timer);
  pc->busy = false;
  a->tries = pc->tries;
  pc->probed = true;
  if (a->answered) {
    pc->answered = true;
    pc->last_result = a->result;
  }
  if (pc->cb)
    pc->cb(pc->arg, a);
}

static void answer_init(kw__pcp_answer *a, kw__pcp_outcome o, const char *why) {
  memset(a, 0, sizeof *a);
  a->outcome = o;
  a->result = -1;
  snprintf(a->reason, sizeof a->reason, "%s", why);
}

/* The delete at close (or a mapping given up) ended. */
static void delete_done(kw__pcp *pc, const char *result) {
  char port[8];
  snprintf(port, sizeof port, "%u", pc->held.port);
  kw__log(pc->ep, KW_LOG_INFO, "portmap",
          "portmap.released proto=pcp port=%s result=%s", port, result);
  uv_timer_stop(&pc->timer);
  pc->busy = false;
  pc->deleting = false;
  memset(&pc->held, 0, sizeof pc->held);
  pc->have_nonce = false; /* the next mapping is a new one */
  if (pc->closing)
    close_handles(pc);
}

static void send_req(kw__pcp *pc) {
  uv_buf_t b = uv_buf_init((char *)pc->msg, (unsigned)pc->msglen);
  int r = uv_udp_try_send(&pc->udp, &b, 1, NULL);
  pc->tries++;
  kw__log(pc->ep, KW_LOG_DEBUG, "portmap", "pcp.request lifetime_s=%u try=%u%s",
          pc->req.lifetime_s, pc->tries, r < 0 ? " send-failed" : "");
}

static void recv_cb(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags) {
  (void)from;
  (void)flags;
  kw__pcp *pc = u->data;
  if (nread == 0 || !pc->busy)
    return;
  kw__pcp_answer a;
  if (nread < 0) {
    /* ICMP port unreachable on the connected socket: no PCP server */
    if (nread != UV_ECONNREFUSED)
      return;
    if (pc->deleting) {
      delete_done(pc, "port-unreachable");
      return;
    }
    answer_init(&a, KW__PCP_NO_SERVER, "port-unreachable");
    finish(pc, &a);
    return;
  }
  kw__pcp_response r;
  kw_err e =
      kw__pcp_decode_response((const uint8_t *)buf->base, (size_t)nread, &r);
  if (e == KW_ERR_UNSUPPORTED) {
    if (pc->deleting) {
      delete_done(pc, "unsupported-version");
      return;
    }
    if (r.version == 0) {
      answer_init(&a, KW__PCP_NO_SERVER, "natpmp-only");
    } else {
      answer_init(&a, KW__PCP_NO_SERVER, "");
      snprintf(a.reason, sizeof a.reason, "pcp-version-%u", r.version);
      a.answered = true;
      a.result = r.result;
    }
    finish(pc, &a);
    return;
  }
  const char *why = "malformed";
  kw__pcp_match m = e == KW_OK ? kw__pcp_check_map(&r, &pc->req, &why)
                               : KW_PCP_MATCH_NOT_OURS;
  if (m == KW_PCP_MATCH_NOT_OURS) {
    kw__log(pc->ep, KW_LOG_INFO, "portmap", "pcp.ignored reason=%s len=%zd",
            why, nread);
    return;
  }
  bool epoch_ok = kw__pcp_epoch_update(&pc->epoch, now_ms(pc), r.epoch_s);
  kw__log(pc->ep, KW_LOG_DEBUG, "portmap",
          "pcp.answer result=%s lifetime_s=%u epoch=%u%s",
          kw__pcp_result_name(r.result), r.lifetime_s, r.epoch_s,
          epoch_ok ? "" : " epoch-reset");
  if (pc->deleting) {
    delete_done(pc, kw__pcp_result_name(r.result));
    return;
  }
  if (m == KW_PCP_MATCH_GRANTED) {
    answer_init(&a, KW__PCP_GRANTED, "");
    a.external = r.external;
    a.lifetime_s = r.lifetime_s;
    pc->held = r.external;
  } else if (m == KW_PCP_MATCH_ERROR) {
    bool version = r.result == KW_PCP_UNSUPP_VERSION;
    answer_init(&a, version ? KW__PCP_NO_SERVER : KW__PCP_REFUSED,
                kw__pcp_result_name(r.result));
    a.lifetime_s = r.lifetime_s;
    if (r.result != KW_PCP_SUCCESS && !kw__pcp_result_transient(r.result))
      memset(&pc->held, 0, sizeof pc->held); /* that mapping is no more */
  } else { /* BAD_GRANT (or DELETED to a create, which check_map never
              returns) */
    answer_init(&a, KW__PCP_REFUSED, "");
    snprintf(a.reason, sizeof a.reason, "bad-grant-%s", why);
  }
  a.answered = true;
  a.result = r.result;
  a.epoch_reset = !epoch_ok;
  finish(pc, &a);
}

static void timer_cb(uv_timer_t *t) {
  kw__pcp *pc = t->data;
  if (!pc->busy)
    return;
  if (pc->deleting) {
    delete_done(pc, "no-answer");
    return;
  }
  pc->probed = true; /* the first retransmission time passed: netcheck may
                        report "no PCP answer" now */
  if (pc->tries >= KW_PCP_TRIES) {
    kw__pcp_answer a;
    answer_init(&a, KW__PCP_NO_SERVER, "no-answer");
    finish(pc, &a);
    return;
  }
  send_req(pc);
  pc->rt_ms = kw__pcp_retransmit_ms(pc->rt_ms, randombytes_uniform(201));
  uv_timer_start(&pc->timer, timer_cb, pc->rt_ms, 0);
}

kw__pcp *kw__pcp_new(kw_endpoint *ep, uint16_t internal_port,
                     const uint8_t *bind_ip4, kw__pcp_cb cb, void *arg) {
  kw__pcp *pc = calloc(1, sizeof *pc);
  if (!pc)
    return NULL;
  pc->ep = ep;
  pc->cb = cb;
  pc->arg = arg;
  pc->internal_port = internal_port;
  if (bind_ip4)
    memcpy(pc->bind_ip, bind_ip4, 4);
  pc->last_result = -1;
  return pc;
}

/* Opens and connects the socket to the default gateway's port 5351 and
 * learns our address toward it. A reason on failure. */
static const char *open_socket(kw__pcp *pc) {
  if (!pc->handles) {
    if (uv_udp_init(kw__ep_loop(pc->ep), &pc->udp) != 0)
      return "no-socket";
    uv_timer_init(kw__ep_loop(pc->ep), &pc->timer);
    pc->udp.data = pc;
    pc->timer.data = pc;
    pc->handles = true;
    pc->open_handles = 2;
    struct sockaddr_in b;
    memset(&b, 0, sizeof b);
    b.sin_family = AF_INET;
    memcpy(&b.sin_addr, pc->bind_ip, 4);
    if (uv_udp_bind(&pc->udp, (const struct sockaddr *)&b, 0) != 0 ||
        uv_udp_recv_start(&pc->udp, alloc_cb, recv_cb) != 0) {
      close_handles(pc);
      return "no-socket";
    }
  }
  if (pc->connected)
    return NULL;
  uint8_t gw[4];
  if (!default_gateway(gw))
    return "no-gateway";
  memset(&pc->server, 0, sizeof pc->server);
  pc->server.family = 4;
  memcpy(pc->server.ip, gw, 4);
  pc->server.port = KW_PCP_SERVER_PORT;
  struct sockaddr_storage ss;
  socklen_t sl;
  kw__sockaddr_to_os(&pc->server, &ss, &sl);
  if (uv_udp_connect(&pc->udp, (const struct sockaddr *)&ss) != 0)
    return "no-route";
  pc->connected = true;
  struct sockaddr_storage me;
  int ml = sizeof me;
  if (uv_udp_getsockname(&pc->udp, (struct sockaddr *)&me, &ml) != 0)
    return "no-address";
  kw__sockaddr_from_os((const struct sockaddr *)&me, &pc->client);
  pc->client.port = 0;
  char s[KW_SOCKADDR_STRLEN], c[KW_SOCKADDR_STRLEN];
  fmt(&pc->server, s, sizeof s);
  fmt(&pc->client, c, sizeof c);
  kw__log(pc->ep, KW_LOG_DEBUG, "portmap", "pcp.server addr=%s client=%s", s,
          c);
  return NULL;
}

/* Builds and sends the MAP request for `lifetime_s` and arms the timer. */
static void start_request(kw__pcp *pc, uint32_t lifetime_s, unsigned first_ms) {
  memset(&pc->req, 0, sizeof pc->req);
  memcpy(pc->req.nonce, pc->nonce, sizeof pc->nonce);
  pc->req.protocol = KW_PCP_PROTO_UDP;
  pc->req.internal_port = pc->internal_port;
  pc->req.lifetime_s = lifetime_s;
  pc->req.client_ip = pc->client;
  if (pc->held.family == 4) {
    pc->req.suggested_port = pc->held.port;
    pc->req.suggested_ip = pc->held;
    pc->req.suggested_ip.port = 0;
  } else {
    pc->req.suggested_port = pc->internal_port;
  }
  if (kw__pcp_encode_map(&pc->req, pc->msg, sizeof pc->msg, &pc->msglen) !=
      KW_OK)
    pc->msglen = 0;
  pc->busy = true;
  pc->tries = 0;
  pc->rt_ms = 0;
  send_req(pc);
  pc->rt_ms = kw__pcp_retransmit_ms(0, randombytes_uniform(201));
  uv_timer_start(&pc->timer, timer_cb, first_ms ? first_ms : pc->rt_ms, 0);
}

kw_err kw__pcp_map(kw__pcp *pc, uint32_t lifetime_s) {
  if (!pc || pc->busy || pc->closing)
    return KW_ERR_STATE;
  kw__pcp_answer a;
  const char *why = open_socket(pc);
  if (why) {
    answer_init(&a, KW__PCP_NO_SERVER, why);
    pc->probed = true;
    if (pc->cb)
      pc->cb(pc->arg, &a);
    return KW_OK;
  }
  if (!pc->have_nonce) {
    randombytes_buf(pc->nonce, sizeof pc->nonce);
    pc->have_nonce = true;
  }
  pc->deleting = false;
  start_request(pc, lifetime_s, 0);
  return KW_OK;
}

bool kw__pcp_busy(const kw__pcp *pc) {
  return pc && pc->busy;
}

/* Sends a delete of the mapping held; the answer (or `wait_ms` without
 * one) ends it in delete_done. */
static bool start_delete(kw__pcp *pc, unsigned wait_ms) {
  if (!pc->handles || !pc->connected || pc->held.family == 0 || !pc->have_nonce)
    return false;
  uv_timer_stop(&pc->timer);
  pc->deleting = true;
  /* RFC 6887 section 15: same nonce, protocol and internal port, lifetime
   * 0; one try (closing cannot wait for a retransmission) */
  start_request(pc, 0, wait_ms);
  return true;
}

void kw__pcp_delete(kw__pcp *pc) {
  if (!pc || pc->closing)
    return;
  if (pc->busy && !pc->deleting) {
    uv_timer_stop(&pc->timer);
    pc->busy = false;
  }
  if (!pc->deleting)
    (void)start_delete(pc, 2000);
}

void kw__pcp_reset(kw__pcp *pc) {
  if (!pc || pc->closing)
    return;
  if (pc->handles)
    uv_timer_stop(&pc->timer);
  pc->busy = false;
  pc->deleting = false;
  if (pc->connected) {
    (void)uv_udp_connect(&pc->udp, NULL); /* a new gateway next time */
    pc->connected = false;
  }
  memset(&pc->held, 0, sizeof pc->held);
  memset(&pc->epoch, 0, sizeof pc->epoch);
  pc->have_nonce = false;
}

bool kw__pcp_probe_state(const kw__pcp *pc, bool *answered, int *result,
                         kw_sockaddr *external) {
  *answered = pc && pc->answered;
  *result = pc ? pc->last_result : -1;
  if (pc)
    *external = pc->held;
  else
    memset(external, 0, sizeof *external);
  return pc && pc->probed;
}

void kw__pcp_close(kw__pcp *pc, unsigned wait_ms) {
  if (!pc || pc->closing)
    return;
  pc->closing = true;
  if (pc->busy && !pc->deleting) {
    uv_timer_stop(&pc->timer);
    pc->busy = false;
  }
  if (pc->deleting)
    return; /* a delete is out: it closes when it ends */
  if (!start_delete(pc, wait_ms))
    close_handles(pc);
}

bool kw__pcp_closed(const kw__pcp *pc) {
  return !pc || (!pc->handles && pc->open_handles == 0);
}

void kw__pcp_free(kw__pcp *pc) {
  free(pc);
}
