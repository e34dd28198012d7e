/* SPDX-License-Identifier: MIT */
/*
 * STUN Binding server on UDP (RFC 8489), answering with the sender's
 * reflexive address in XOR-MAPPED-ADDRESS. The codec is core/stun; this
 * file only moves datagrams: recvmmsg batches in, one non-blocking send
 * per answer (an answer the socket cannot take right now is dropped and
 * counted: the client retries).
 *
 * RFC 3489 clients (no magic cookie, e.g. the classic `stun` tool) get the
 * backwards-compatible answer of RFC 8489 section 12: MAPPED-ADDRESS only
 * (their parsers refuse the unknown XOR-MAPPED-ADDRESS). Their requests
 * for a reply from another address or port (CHANGE-REQUEST flags) cannot
 * be honoured by a single-address server and get no answer, which tells
 * such a client the truth: no such reply arrives. RESPONSE-ADDRESS is
 * never honoured (reflection): the answer goes to the source.
 * (core/stun_classic).
 */
#include <stdlib.h>
#include <string.h>

#include "core/stun.h"
#include "core/stun_classic.h"
#include "net/osaddr.h"
#include "relay/relay.h"

#define STUN_BATCH 16
#define STUN_DGRAM 2048 /* requests are tiny; anything longer is dropped */

struct kw__rs_stun {
  kw__rs *rs;
  uv_udp_t udp;
  uint8_t *buf; /* STUN_BATCH slots of 64 KiB (libuv's recvmmsg layout) */
};

#define SLOT (64u * 1024)

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  kw__rs_stun *st = h->data;
  (void)suggested;
  b->base = (char *)st->buf;
  b->len = STUN_BATCH * SLOT;
}

static void recv_cb(uv_udp_t *u, ssize_t nread, const uv_buf_t *b,
                    const struct sockaddr *addr, unsigned flags) {
  kw__rs_stun *st = u->data;
  kw__rs *rs = st->rs;
  (void)b, (void)flags;
  if (nread <= 0 || !addr || rs->stopping)
    return;
  if (nread > STUN_DGRAM || nread < KW_STUN_HEADER_LEN) {
    rs->m.stun_dropped++;
    return;
  }
  kw_sockaddr from;
  kw__sockaddr_from_os(addr, &from);
  uint8_t out[KW_STUN_MAX_BUILD];
  if (!kw__stun_is((const uint8_t *)b->base, (size_t)nread)) {
    size_t n = 0;
    kw_err ce = kw__stun_classic_serve((const uint8_t *)b->base, (size_t)nread,
                                       &from, out, sizeof out, &n);
    uv_buf_t cb = uv_buf_init((char *)out, (unsigned)n);
    if (ce != KW_OK || uv_udp_try_send(u, &cb, 1, addr) < 0) {
      rs->m.stun_dropped++;
      return;
    }
    rs->m.stun_requests++;
    if (rs->cfg.verbosity > 0) {
      char fa[KW_SOCKADDR_STRLEN];
      kw_sockaddr_format(&from, fa, sizeof fa);
      kw__rs_log(rs, KW_RS_DEBUG, "stun.request", "from=%s classic=true", fa);
    }
    return;
  }
  size_t outlen = 0;
  uint16_t code = 0;
  kw_err e = kw__stun_serve((const uint8_t *)b->base, (size_t)nread, &from,
                            "keyway-relay", out, sizeof out, &outlen, &code);
  if (e != KW_OK || outlen == 0) {
    rs->m.stun_dropped++;
    return;
  }
  rs->m.stun_requests++;
  if (rs->cfg.verbosity > 0) {
    char fa[KW_SOCKADDR_STRLEN];
    kw_sockaddr_format(&from, fa, sizeof fa);
    kw__rs_log(rs, KW_RS_DEBUG, "stun.request", "from=%s code=%u", fa,
               (unsigned)code);
  }
  if (code != 0)
    rs->m.stun_errors++;
  uv_buf_t ob = uv_buf_init((char *)out, (unsigned)outlen);
  if (uv_udp_try_send(u, &ob, 1, addr) < 0)
    rs->m.stun_dropped++;
}

kw_err kw__rs_stun_start(kw__rs *rs) {
  if (rs->cfg.stun_listen.family == 0)
    return KW_OK;
  kw__rs_stun *st = calloc(1, sizeof *st);
  if (!st)
    return KW_ERR_NOMEM;
  st->buf = malloc((size_t)STUN_BATCH * SLOT);
  if (!st->buf) {
    free(st);
    return KW_ERR_NOMEM;
  }
  st->rs = rs;
  int fam = rs->cfg.stun_listen.family == 4 ? AF_INET : AF_INET6;
  if (uv_udp_init_ex(rs->loop, &st->udp, (unsigned)fam | UV_UDP_RECVMMSG) !=
      0) {
    free(st->buf);
    free(st);
    return KW_ERR_IO;
  }
  st->udp.data = st;
  rs->stun = st;
  struct sockaddr_storage ss;
  socklen_t sl;
  kw__sockaddr_to_os(&rs->cfg.stun_listen, &ss, &sl);
  if (uv_udp_bind(&st->udp, (struct sockaddr *)&ss,
                  fam == AF_INET6 ? UV_UDP_IPV6ONLY : 0) != 0)
    return KW_ERR_ADDR;
  if (uv_udp_recv_start(&st->udp, alloc_cb, recv_cb) != 0)
    return KW_ERR_IO;
  int nl = sizeof ss;
  if (uv_udp_getsockname(&st->udp, (struct sockaddr *)&ss, &nl) == 0)
    kw__sockaddr_from_os((struct sockaddr *)&ss, &rs->cfg.stun_listen);
  char a[KW_SOCKADDR_STRLEN];
  kw_sockaddr_format(&rs->cfg.stun_listen, a, sizeof a);
  kw__rs_log(rs, KW_RS_INFO, "stun.listening", "addr=%s", a);
  return KW_OK;
}

static void stun_closed(uv_handle_t *h) {
  kw__rs_stun *st = h->data;
  free(st->buf);
  free(st);
}

void kw__rs_stun_stop(kw__rs *rs) {
  if (!rs->stun)
    return;
  uv_close((uv_handle_t *)&rs->stun->udp, stun_closed);
  rs->stun = NULL;
}
