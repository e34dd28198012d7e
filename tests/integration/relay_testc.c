/* SPDX-License-Identifier: MIT */
/*
 * A tiny relay client for test_relay_server.sh: speaks the relay protocol
 * (core/relay_proto) through kw__tls_stream, behaving well or badly.
 *
 *   relay_testc id SEED                     print the id of seed SEED
 *   relay_testc MODE ADDR:PORT CAFILE [ARG]  run one scenario
 *
 * Keys come from seeds (32 bytes of SEED's little-endian value), so the
 * script can put ids on an allowlist. Prints "ok MODE ..." and exits 0
 * when the scenario saw exactly what it expects; otherwise prints why and
 * exits 1. Every scenario has a 30 s guard (60 s for "many").
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <uv.h>

#include "core/http.h"
#include "core/record.h"
#include "core/relay_proto.h"
#include "net/osaddr.h"
#include "net/tls_stream.h"

#define FAILF(...)                                                             \
  do {                                                                         \
    fprintf(stderr, "FAIL %s: ", g.mode);                                      \
    fprintf(stderr, __VA_ARGS__);                                              \
    fprintf(stderr, "\n");                                                     \
    exit(1);                                                                   \
  } while (0)

typedef struct tc tc;
typedef void (*frame_fn)(tc *c, const kw__relay_msg *m);

typedef enum misbehave {
  MB_NONE,
  MB_SEND_BEFORE_AUTH,
  MB_BAD_SIG,
  MB_HTTP_GARBAGE,
  MB_PING_ONLY,
  MB_LOOKUP,
  MB_SILENT,     /* upgrades, then never authenticates */
  MB_SHORT_AUTH, /* a CLIENT_AUTH frame one byte short */
} misbehave;

struct tc {
  int idx;
  kw__tls_stream *s;
  uint8_t sk[KW_SECRET_KEY_LEN], id[KW_ID_LEN];
  int phase; /* 0 tls, 1 await 101, 2 await challenge, 3 await info, 4 ready */
  uint8_t hbuf[8192];
  size_t hlen;
  kw__relay_dec dec;
  misbehave mb;
  bool closed;
  kw_err close_err;
  int close_code; /* CLOSE frame code seen, -1 none */
  frame_fn on_frame;
  void (*on_ready)(tc *c);
  /* sees the challenge and the answer about to go; true: do not send */
  bool (*on_challenge)(tc *c, const kw__relay_msg *ch, kw__relay_msg *auth);
  bool v1; /* upgrade with keyway-relay-v1 and sign the challenge alone */
  /* counters */
  uint64_t rx_pkts, rx_bytes;
  bool writable_wait;
};

static struct {
  const char *mode;
  uv_loop_t loop;
  kw_sockaddr relay;
  const char *ca;
  char host[64];     /* the relay's IP as text: TLS name check and Host */
  char host_hdr[80]; /* the Host header sent: "ip:port" (signed in v2) */
  uv_timer_t guard;
  tc *cs;
  size_t n;
  size_t ready, closed;
  /* throughput */
  uint64_t tp_target, tp_sent, tp_pkt;
  uint64_t t0;
  int stage;
  uint64_t peer_gone_code[2];
  size_t ring_got;
  uint8_t pattern[65536];
} g;

static uv_timer_t lk_timer;
static void lk_next(tc *c);
static void lf_send(tc *c);
static void fair_flood(void);
static void fl_pump(void);
static int lk_mode; /* lookup scripts: 0 basic, 1 evict, 2 attack */
static int lk_send_attack(tc *c, int step);
static void finish(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void seed_key(unsigned long seed, uint8_t sk[KW_SECRET_KEY_LEN],
                     uint8_t id[KW_ID_LEN]) {
  uint8_t s[32] = {0};
  for (int i = 0; i < 8; i++)
    s[i] = (uint8_t)(seed >> (8 * i));
  s[31] = 0x6b; /* not the all-zero seed */
  crypto_sign_seed_keypair(id, sk, s);
}

static void send_msg(tc *c, const kw__relay_msg *m) {
  uint8_t buf[KW_RELAY_MAX_FRAME + KW_RELAY_FRAME_HDR];
  size_t n;
  if (kw__relay_encode(m, buf, sizeof buf, &n) != KW_OK)
    FAILF("encode type %u", m->type);
  kw_err e = kw__tls_stream_write(c->s, buf, n);
  if (e != KW_OK)
    FAILF("write: %s", kw_errname(e));
}

static kw_err send_pkt(tc *c, const uint8_t *to, const uint8_t *data,
                       size_t len) {
  uint8_t hdr[KW_RELAY_PACKET_HDR];
  kw__relay_packet_hdr(hdr, KW_RELAY_SEND_PACKET, to, len);
  uv_buf_t b[2] = {uv_buf_init((char *)hdr, sizeof hdr),
                   uv_buf_init((char *)data, (unsigned)len)};
  return kw__tls_stream_writev(c->s, b, 2);
}

static void send_raw(tc *c, const void *p, size_t n) {
  if (kw__tls_stream_write(c->s, p, n) != KW_OK)
    FAILF("raw write");
}

static void handle_frame(tc *c, const kw__relay_frame *f) {
  kw__relay_msg m;
  if (kw__relay_parse(f, &m) != KW_OK)
    FAILF("client %d: server sent a malformed frame type %u", c->idx, f->type);
  if (m.type == KW_RELAY_CLOSE)
    c->close_code = m.code;
  if (c->phase == 2) {
    if (m.type != KW_RELAY_SERVER_CHALLENGE)
      FAILF("expected challenge, got %u", m.type);
    c->phase = 3;
    if (c->mb == MB_SILENT)
      return;
    if (c->mb == MB_SHORT_AUTH) {
      uint8_t sh[5 + 95] = {KW_RELAY_CLIENT_AUTH, 0, 0, 0, 95};
      send_raw(c, sh, sizeof sh);
      return;
    }
    if (c->mb == MB_SEND_BEFORE_AUTH) {
      uint8_t x[8] = {1, 2, 3};
      send_pkt(c, c->id, x, sizeof x);
      return;
    }
    kw__relay_msg a;
    memset(&a, 0, sizeof a);
    a.type = KW_RELAY_CLIENT_AUTH;
    memcpy(a.id, c->id, KW_ID_LEN);
    uint8_t ch[KW_RELAY_CHALLENGE_LEN];
    memcpy(ch, m.challenge, sizeof ch);
    if (c->mb == MB_BAD_SIG)
      ch[0] ^= 1; /* signs another challenge */
    if (c->v1 || m.version == KW_RELAY_VERSION_V1) {
      kw__relay_auth_sign(c->sk, ch, a.sig);
    } else {
      uint8_t ex[KW_RELAY_EXPORTER_LEN];
      if (kw__tls_stream_exporter(c->s, KW_RELAY_EXPORTER_LABEL, ex,
                                  sizeof ex) != KW_OK)
        FAILF("exporter");
      kw__relay_auth2_sign(c->sk, ch, ex, g.host_hdr, a.sig);
    }
    if (c->on_challenge && c->on_challenge(c, &m, &a))
      return;
    send_msg(c, &a);
    return;
  }
  if (c->phase == 3 && m.type == KW_RELAY_SERVER_INFO) {
    if (m.info.max_frame < 65536 || m.info.keepalive_s != 15)
      FAILF("server info: max_frame %u keepalive %u", m.info.max_frame,
            m.info.keepalive_s);
    c->phase = 4;
    g.ready++;
    if (c->on_ready)
      c->on_ready(c);
    return;
  }
  if (m.type == KW_RELAY_PING) {
    kw__relay_msg r;
    memset(&r, 0, sizeof r);
    r.type = KW_RELAY_PONG;
    memcpy(r.nonce, m.nonce, sizeof r.nonce);
    send_msg(c, &r);
  }
  if (c->on_frame)
    c->on_frame(c, &m);
}

static void on_open(kw__tls_stream *s, void *ud) {
  tc *c = ud;
  if (c->mb == MB_HTTP_GARBAGE) {
    send_raw(c, "HELLO WORLD\r\n\r\n", 15);
    c->phase = 1;
    return;
  }
  if (c->mb == MB_LOOKUP) {
    c->phase = 1;
    if (strcmp(g.mode, "lookup-flood") == 0) {
      lf_send(c);
      return;
    }
    uv_timer_init(&g.loop, &lk_timer);
    lk_next(c);
    return;
  }
  if (c->mb == MB_PING_ONLY) {
    static const char r[] = "GET /ping HTTP/1.1\r\nHost: relay\r\n\r\n";
    send_raw(c, r, sizeof r - 1);
    c->phase = 1;
    return;
  }
  char req[512];
  size_t n;
  if (kw__relay_http_req_build_version(
          g.host_hdr, c->v1 ? KW_RELAY_VERSION_V1 : KW_RELAY_VERSION, req,
          sizeof req, &n) != KW_OK)
    FAILF("request build");
  (void)s;
  send_raw(c, req, n);
  c->phase = 1;
}

static void on_data(kw__tls_stream *s, const uint8_t *p, size_t n, void *ud) {
  tc *c = ud;
  (void)s;
  if (c->phase == 1) {
    size_t take = sizeof c->hbuf - c->hlen;
    if (take > n)
      take = n;
    memcpy(c->hbuf + c->hlen, p, take);
    c->hlen += take;
    if (c->mb == MB_HTTP_GARBAGE || c->mb == MB_PING_ONLY ||
        c->mb == MB_LOOKUP) {
      if (c->on_frame)
        c->on_frame(c, NULL); /* the mode inspects hbuf */
      return;
    }
    size_t used = 0;
    int status = 0;
    kw_err e = kw__relay_http_resp_parse(c->hbuf, c->hlen, &used, &status);
    if (e == KW_ERR_AGAIN)
      return;
    if (e != KW_OK && status == 426 && strcmp(g.mode, "v1refused") == 0)
      finish("status=426");
    if (e != KW_OK)
      FAILF("upgrade refused: %s status %d", kw_errname(e), status);
    c->phase = 2;
    kw__relay_dec_init(&c->dec, 0);
    /* frame bytes that came with the head */
    size_t extra = c->hlen - used;
    uint8_t tmp[8192];
    memcpy(tmp, c->hbuf + used, extra);
    p = tmp;
    n = extra;
    /* fall through into the frame loop with the leftover */
    while (!c->closed) {
      kw__relay_frame f;
      e = kw__relay_dec_next(&c->dec, &p, &n, &f);
      if (e == KW_ERR_AGAIN)
        break;
      if (e != KW_OK)
        FAILF("decode");
      handle_frame(c, &f);
    }
    return;
  }
  while (!c->closed && c->s) {
    kw__relay_frame f;
    kw_err e = kw__relay_dec_next(&c->dec, &p, &n, &f);
    if (e == KW_ERR_AGAIN)
      break;
    if (e != KW_OK)
      FAILF("decode");
    handle_frame(c, &f);
  }
}

static void on_writable(kw__tls_stream *s, void *ud);

static void on_close(kw__tls_stream *s, kw_err err, void *ud) {
  tc *c = ud;
  (void)s;
  c->closed = true;
  c->close_err = err;
  c->s = NULL;
  kw__relay_dec_free(&c->dec);
  g.closed++;
  if (c->on_frame)
    c->on_frame(c, NULL);
}

static const kw__tls_stream_cbs cbs = {on_open, on_data, on_writable, on_close};

static void tc_start(tc *c, int idx, unsigned long seed) {
  memset(c, 0, sizeof *c);
  c->idx = idx;
  c->close_code = -1;
  c->v1 = getenv("KW_TESTC_V1") != NULL; /* talk to relays of version 1 */
  seed_key(seed, c->sk, c->id);
  kw_err e =
      kw__tls_stream_connect(&g.loop, &g.relay, g.host, g.ca, &cbs, c, &c->s);
  if (e != KW_OK)
    FAILF("connect: %s", kw_errname(e));
}

static void finish(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void finish(const char *fmt, ...) {
  printf("ok %s", g.mode);
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    printf(" ");
    vprintf(fmt, ap);
    va_end(ap);
  }
  printf("\n");
  fflush(stdout);
  exit(0);
}

static void guard_cb(uv_timer_t *t) {
  (void)t;
  FAILF("timed out (ready %zu of %zu, closed %zu)", g.ready, g.n, g.closed);
}

/* ---- scenarios -------------------------------------------------------- */

/* expects the server to close us with CLOSE(code) */
static int want_code;
static void expect_close(tc *c, const kw__relay_msg *m) {
  if (m && m->type == KW_RELAY_SERVER_INFO)
    FAILF("authenticated although it should not");
  if (!c->closed)
    return;
  if (c->close_code != want_code)
    FAILF("close code %d, want %d", c->close_code, want_code);
  finish("code=%d", c->close_code);
}

/* pair: exchange, then throughput */
static void tp_pump(void);

static void pair_frame(tc *c, const kw__relay_msg *m) {
  if (!m) {
    if (c->closed)
      FAILF("client %d closed: %s code %d", c->idx, kw_errname(c->close_err),
            c->close_code);
    return;
  }
  if (m->type != KW_RELAY_RECV_PACKET)
    return;
  tc *other = &g.cs[1 - c->idx];
  if (memcmp(m->id, other->id, KW_ID_LEN) != 0)
    FAILF("packet from the wrong id");
  if (g.stage == 0) {
    /* packet k carries k (4 bytes) then pattern bytes */
    uint32_t k = (uint32_t)m->data[0] << 24 | (uint32_t)m->data[1] << 16 |
                 (uint32_t)m->data[2] << 8 | m->data[3];
    if (k != c->rx_pkts || m->data_len != 100 + k % 1200 ||
        memcmp(m->data + 4, g.pattern + k, m->data_len - 4) != 0)
      FAILF("packet %u of client %d garbled (len %zu)", k, c->idx, m->data_len);
    c->rx_pkts++;
    if (g.cs[0].rx_pkts == 1000 && g.cs[1].rx_pkts == 1000) {
      g.stage = 1;
      g.cs[1].rx_bytes = 0;
      g.tp_target = 256ull << 20;
      g.tp_pkt = 1400;
      g.tp_sent = 0;
      g.t0 = uv_hrtime();
      tp_pump();
    }
    return;
  }
  c->rx_bytes += m->data_len;
  if (c->rx_bytes >= g.tp_target) {
    double secs = (double)(uv_hrtime() - g.t0) / 1e9;
    double mbs = (double)g.tp_target / secs / 1e6;
    if (g.stage == 1) {
      printf("throughput pkt=1400 bytes=%llu seconds=%.3f MB/s=%.1f\n",
             (unsigned long long)g.tp_target, secs, mbs);
      g.stage = 2;
      g.cs[1].rx_bytes = 0;
      g.tp_target = 512ull << 20;
      g.tp_pkt = 16384;
      g.tp_sent = 0;
      g.t0 = uv_hrtime();
      tp_pump();
    } else {
      printf("throughput pkt=16384 bytes=%llu seconds=%.3f MB/s=%.1f\n",
             (unsigned long long)g.tp_target, secs, mbs);
      finish("exchanged=1000x2");
    }
    return;
  }
  tp_pump();
}

#define TP_WINDOW (1536u * 1024)

static void tp_pump(void) {
  tc *a = &g.cs[0], *b = &g.cs[1];
  while (g.tp_sent < g.tp_target && g.tp_sent - b->rx_bytes < TP_WINDOW) {
    kw_err e = send_pkt(a, b->id, g.pattern, g.tp_pkt);
    if (e == KW_ERR_FULL)
      return; /* on_writable resumes */
    if (e != KW_OK)
      FAILF("send: %s", kw_errname(e));
    g.tp_sent += g.tp_pkt;
  }
}

static void on_writable(kw__tls_stream *s, void *ud) {
  (void)s, (void)ud;
  if (strcmp(g.mode, "pair") == 0 || strcmp(g.mode, "rate") == 0)
    tp_pump();
  else if (strcmp(g.mode, "fair") == 0)
    fair_flood();
  else if (strncmp(g.mode, "flood-", 6) == 0)
    fl_pump();
}

static void pair_ready(tc *c) {
  (void)c;
  if (g.ready < 2)
    return;
  for (int side = 0; side < 2; side++) {
    tc *from = &g.cs[side], *to = &g.cs[1 - side];
    for (uint32_t k = 0; k < 1000; k++) {
      uint8_t buf[1400];
      size_t len = 100 + k % 1200;
      buf[0] = (uint8_t)(k >> 24);
      buf[1] = (uint8_t)(k >> 16);
      buf[2] = (uint8_t)(k >> 8);
      buf[3] = (uint8_t)k;
      memcpy(buf + 4, g.pattern + k, len - 4);
      if (send_pkt(from, to->id, buf, len) != KW_OK)
        FAILF("send %u", k);
    }
  }
}

/* rate: 3 MiB through a relay limited to 1 MiB/s must take >= 2 s */
static void rate_frame(tc *c, const kw__relay_msg *m) {
  if (!m) {
    if (c->closed)
      FAILF("client %d closed", c->idx);
    return;
  }
  if (m->type != KW_RELAY_RECV_PACKET)
    return;
  c->rx_bytes += m->data_len;
  if (c->rx_bytes >= g.tp_target) {
    double secs = (double)(uv_hrtime() - g.t0) / 1e9;
    if (secs < 2.0)
      FAILF("3 MiB took %.2f s: not rate limited", secs);
    if (secs > 6.0)
      FAILF("3 MiB took %.2f s: far slower than the rate", secs);
    finish("seconds=%.2f", secs);
  }
  tp_pump();
}

static void rate_ready(tc *c) {
  (void)c;
  if (g.ready < 2)
    return;
  g.tp_target = 3u << 20;
  g.tp_pkt = 1400;
  g.t0 = uv_hrtime();
  tp_pump();
}

/* peergone */
static void pg_frame(tc *c, const kw__relay_msg *m) {
  if (!m)
    return;
  if (c->idx == 0 && m->type == KW_RELAY_PEER_GONE) {
    uint8_t ghost_sk[KW_SECRET_KEY_LEN], ghost[KW_ID_LEN];
    seed_key(9, ghost_sk, ghost);
    if (g.stage == 0) {
      if (m->code != KW_RELAY_GONE_NOT_HERE ||
          memcmp(m->id, ghost, KW_ID_LEN) != 0)
        FAILF("first PEER_GONE: code %u", m->code);
      g.stage = 1;
      tc_start(&g.cs[1], 1, 2); /* now B comes */
      return;
    }
    if (g.stage == 2) {
      if (m->code != KW_RELAY_GONE_DISCONNECTED ||
          memcmp(m->id, g.cs[1].id, KW_ID_LEN) != 0)
        FAILF("second PEER_GONE: code %u", m->code);
      finish("not_here+disconnected");
    }
  }
  if (c->idx == 1 && m->type == KW_RELAY_RECV_PACKET && g.stage == 1) {
    g.stage = 2;
    kw__relay_msg cl;
    memset(&cl, 0, sizeof cl);
    cl.type = KW_RELAY_CLOSE;
    send_msg(c, &cl);
    kw__tls_stream_close(c->s);
  }
}

static void pg_ready(tc *c) {
  uint8_t x[16] = {0};
  if (c->idx == 0) {
    uint8_t ghost_sk[KW_SECRET_KEY_LEN], ghost[KW_ID_LEN];
    seed_key(9, ghost_sk, ghost);
    send_pkt(c, ghost, x, sizeof x);
  } else {
    send_pkt(&g.cs[0], c->id, x, sizeof x);
  }
}

/* many: a ring of N clients, each sends one packet to the next */
static void many_ready(tc *c) {
  (void)c;
  if (g.ready < g.n)
    return;
  double secs = (double)(uv_hrtime() - g.t0) / 1e9;
  printf("all %zu authenticated in %.2f s\n", g.n, secs);
  fflush(stdout);
  for (size_t i = 0; i < g.n; i++) {
    tc *to = &g.cs[(i + 1) % g.n];
    uint8_t x[64];
    memcpy(x, g.cs[i].id, 32);
    memcpy(x + 32, to->id, 32);
    if (send_pkt(&g.cs[i], to->id, x, sizeof x) != KW_OK)
      FAILF("send");
  }
}

static void many_frame(tc *c, const kw__relay_msg *m) {
  if (!m) {
    if (c->closed)
      FAILF("client %d closed: %s", c->idx, kw_errname(c->close_err));
    return;
  }
  if (m->type != KW_RELAY_RECV_PACKET)
    return;
  tc *from = &g.cs[(c->idx + g.n - 1) % g.n];
  if (memcmp(m->id, from->id, 32) != 0 || m->data_len != 64 ||
      memcmp(m->data, from->id, 32) != 0 || memcmp(m->data + 32, c->id, 32))
    FAILF("ring packet wrong at %d", c->idx);
  if (++g.ring_got == g.n)
    finish("clients=%zu seconds=%.2f", g.n, (double)(uv_hrtime() - g.t0) / 1e9);
}

/* replace: the second connection with the same id closes the first */
static void replace_check(void) {
  tc *a = &g.cs[0], *b = &g.cs[1];
  if (!a->closed || b->phase != 4)
    return; /* the two events arrive in either order */
  if (a->close_code != KW_RELAY_CLOSE_REPLACED)
    FAILF("first connection closed with code %d", a->close_code);
  if (b->closed)
    FAILF("second connection closed too");
  finish("code=%d", a->close_code);
}

static void replace_frame(tc *c, const kw__relay_msg *m) {
  (void)c, (void)m;
  replace_check();
}

static void replace_ready(tc *c) {
  if (c->idx == 0)
    tc_start(&g.cs[1], 1, 1);
  else
    replace_check();
}

/* wait-shutdown: ready, then the relay must say goodbye */
static void ws_ready(tc *c) {
  (void)c;
  printf("ready\n");
  fflush(stdout);
}

static int ws_code = KW_RELAY_CLOSE_SHUTDOWN;
static void ws_frame(tc *c, const kw__relay_msg *m) {
  (void)m;
  if (c->closed) {
    if (c->close_code != ws_code)
      FAILF("close code %d", c->close_code);
    finish("code=%d", c->close_code);
  }
}

/* keepalive: the relay pings within 16 s (handle_frame answers) */
static void ka_frame(tc *c, const kw__relay_msg *m) {
  if (m && m->type == KW_RELAY_PING)
    finish("after=%.1fs", (double)(uv_hrtime() - g.t0) / 1e9);
  if (c->closed)
    FAILF("closed before a keep-alive ping");
}

/* http garbage / ping: inspect the HTTP answer */
static void http_frame(tc *c, const kw__relay_msg *m) {
  (void)m;
  c->hbuf[c->hlen < sizeof c->hbuf ? c->hlen : sizeof c->hbuf - 1] = 0;
  const char *want = c->mb == MB_PING_ONLY ? "HTTP/1.1 200" : "HTTP/1.1 400";
  if (c->mb == MB_PING_ONLY && strstr((char *)c->hbuf, "\r\n\r\npong\n")) {
    if (strncmp((char *)c->hbuf, want, strlen(want)) != 0)
      FAILF("answer: %.40s", c->hbuf);
    finish(NULL);
  }
  if (c->mb == MB_HTTP_GARBAGE && c->closed) {
    if (strncmp((char *)c->hbuf, want, strlen(want)) != 0)
      FAILF("answer: %.40s", c->hbuf);
    finish(NULL);
  }
  if (c->closed)
    FAILF("closed without the expected answer: %.40s", c->hbuf);
}

static void auth_ready(tc *c) {
  (void)c;
  finish(NULL);
}

/* oversize / badframe: after auth, send a bad frame */
static bool oversize;
static void bad_ready(tc *c) {
  if (oversize) {
    uint8_t h[5] = {KW_RELAY_SEND_PACKET, 0x00, 0x10, 0x00, 0x00}; /* 1 MiB */
    send_raw(c, h, sizeof h);
  } else {
    uint8_t h[9] = {0xEE, 0, 0, 0, 4, 1, 2, 3, 4};
    send_raw(c, h, sizeof h);
  }
}

/* lookup: PUT/GET of signed records over one keep-alive connection */
static int lk_step;
static uint8_t lk_new[KW_RECORD_MAX_LEN];
static size_t lk_new_len;
static uint64_t lk_wait_until;

static size_t make_record(unsigned long seed, uint64_t ts_us, uint32_t ttl,
                          uint8_t *out) {
  kw__record r;
  memset(&r, 0, sizeof r);
  uint8_t sk[KW_SECRET_KEY_LEN];
  seed_key(seed, sk, r.addr.id);
  strcpy(r.addr.relay_url, "https://127.0.0.1:443");
  r.addr.n_addrs = 1;
  kw_sockaddr_parse("127.0.0.1:4242", &r.addr.addrs[0]);
  r.timestamp_us = ts_us;
  r.ttl_s = ttl;
  size_t n = 0;
  if (kw__record_encode(&r, sk, out, KW_RECORD_MAX_LEN, &n) != KW_OK)
    FAILF("record encode");
  return n;
}

static uint64_t unix_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void lk_request(tc *c, bool put, unsigned long path_seed,
                       const uint8_t *body, size_t blen) {
  uint8_t sk[KW_SECRET_KEY_LEN], id[KW_ID_LEN];
  seed_key(path_seed, sk, id);
  char ids[KW_ID_STRLEN + 1];
  kw_id_to_string(id, ids, sizeof ids);
  char head[512];
  int n = put ? snprintf(head, sizeof head,
                         "PUT /lookup/%s HTTP/1.1\r\nHost: relay\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         ids, blen)
              : snprintf(head, sizeof head,
                         "GET /lookup/%s HTTP/1.1\r\nHost: relay\r\n\r\n", ids);
  send_raw(c, head, (size_t)n);
  if (blen)
    send_raw(c, body, blen);
}

/* Sends request number `step`; returns the status it expects. */
static bool lk_evict;

/* With --max-records 2 and no client connected: the record stored longest
 * ago makes room, whatever the TTLs. */
static int lk_send_evict(tc *c, int step) {
  static uint8_t rec[KW_RECORD_MAX_LEN];
  uint64_t now = unix_us();
  size_t n;
  switch (step) {
  case 0:
    n = make_record(11, now, 60, rec);
    lk_request(c, true, 11, rec, n);
    return 204;
  case 1:
    n = make_record(12, now, 120, rec);
    lk_request(c, true, 12, rec, n);
    return 204;
  case 2: /* full: evicts 11 (stored first) */
    n = make_record(13, now, 90, rec);
    lk_request(c, true, 13, rec, n);
    return 204;
  case 3:
    lk_request(c, false, 11, NULL, 0);
    return 404;
  case 4:
    lk_request(c, false, 12, NULL, 0);
    return 200;
  case 5:
    lk_request(c, false, 13, NULL, 0);
    return 200;
  case 6: /* a short-lived record still gets in: evicts 12 (oldest) */
    n = make_record(14, now, 30, rec);
    lk_request(c, true, 14, rec, n);
    return 204;
  case 7:
    lk_request(c, false, 14, NULL, 0);
    return 200;
  case 8:
    lk_request(c, false, 12, NULL, 0);
    return 404;
  default:
    return -1;
  }
}

static int lk_send(tc *c, int step) {
  static uint8_t rec[KW_RECORD_MAX_LEN];
  uint64_t now = unix_us();
  size_t n;
  if (lk_mode == 2)
    return lk_send_attack(c, step);
  if (lk_evict)
    return lk_send_evict(c, step);
  switch (step) {
  case 0: /* fresh record */
    lk_new_len = make_record(1, now, 60, lk_new);
    lk_request(c, true, 1, lk_new, lk_new_len);
    return 204;
  case 1: /* read it back, byte-exact */
    lk_request(c, false, 1, NULL, 0);
    return 200;
  case 2: /* older timestamp: refused */
    n = make_record(1, now - 5000000, 60, rec);
    lk_request(c, true, 1, rec, n);
    return 409;
  case 3: /* same timestamp again: not newer either */
    lk_request(c, true, 1, lk_new, lk_new_len);
    return 409;
  case 4: /* forged: one signature bit flipped */
    n = make_record(1, now + 1000, 60, rec);
    rec[n - 1] ^= 1;
    lk_request(c, true, 1, rec, n);
    return 400;
  case 5: /* a valid record of seed 2 under seed 1's path */
    n = make_record(2, now, 60, rec);
    lk_request(c, true, 1, rec, n);
    return 400;
  case 6: /* garbage body */
    lk_request(c, true, 1, (const uint8_t *)"not a record", 12);
    return 400;
  case 7: /* the newer record is still served */
    lk_request(c, false, 1, NULL, 0);
    return 200;
  case 8: /* unknown id */
    lk_request(c, false, 77, NULL, 0);
    return 404;
  case 9: /* a record with a 1 s TTL ... */
    n = make_record(3, now, 1, rec);
    lk_request(c, true, 3, rec, n);
    return 204;
  case 10:
    lk_request(c, false, 3, NULL, 0);
    return 200;
  case 11: /* ... has expired 1.5 s later */
    lk_request(c, false, 3, NULL, 0);
    return 404;
  case 12: /* expired on arrival */
    n = make_record(4, now - 120000000, 60, rec);
    lk_request(c, true, 4, rec, n);
    return 400;
  default:
    return -1;
  }
}

static int lk_expect;

static void lk_timer_cb(uv_timer_t *t) {
  lk_next(t->data);
}

static void lk_next(tc *c) {
  if ((lk_mode == 2 ? lk_step == 12 : (!lk_evict && lk_step == 11)) &&
      uv_hrtime() < lk_wait_until) {
    lk_timer.data = c;
    uv_timer_start(&lk_timer, lk_timer_cb,
                   (lk_wait_until - uv_hrtime()) / 1000000 + 1, 0);
    return;
  }
  lk_expect = lk_send(c, lk_step);
  if (lk_expect < 0)
    finish("steps=%d", lk_step);
}

static void lk_frame(tc *c, const kw__relay_msg *m) {
  (void)m;
  if (c->closed)
    FAILF("closed at step %d", lk_step);
  if (c->phase == 0)
    return;
  for (;;) {
    kw__http_resp r;
    kw_err e = kw__http_resp_parse(c->hbuf, c->hlen, &r);
    if (e == KW_ERR_AGAIN)
      return;
    if (e != KW_OK)
      FAILF("bad HTTP answer at step %d", lk_step);
    size_t body = r.has_length ? r.content_length : 0;
    if (c->hlen < r.header_len + body)
      return;
    if (r.status != lk_expect)
      FAILF("step %d: status %d, want %d", lk_step, r.status, lk_expect);
    if (!lk_evict && lk_mode == 0 && (lk_step == 1 || lk_step == 7) &&
        (body != lk_new_len ||
         memcmp(c->hbuf + r.header_len, lk_new, body) != 0))
      FAILF("step %d: record bytes differ", lk_step);
    memmove(c->hbuf, c->hbuf + r.header_len + body,
            c->hlen - r.header_len - body);
    c->hlen -= r.header_len + body;
    lk_step++;
    if ((lk_step == 11 && !lk_evict) || (lk_step == 12 && lk_mode == 2))
      lk_wait_until =
          uv_hrtime() + (lk_mode == 2 ? 1200000000ull : 1500000000ull);
    lk_next(c);
    if (c->hlen == 0)
      return;
  }
}

/* ---- attacks ------------------------------------------------------------ */

/* replay-v2: what a relay the client trusts could do. Session A is "the
 * relay's own login" elsewhere: its challenge is shown to the client on
 * session B, the client signs it there (B's exporter), and the answer goes
 * out on A. The relay must refuse it (CLOSE auth). replay-v1: the same with
 * a version 1 answer (the challenge alone signed). */
static uint8_t rp_challenge[KW_RELAY_CHALLENGE_LEN];
static bool rp_have, rp_v1;
static bool rp_challenge_cb(tc *c, const kw__relay_msg *ch,
                            kw__relay_msg *auth) {
  (void)auth;
  if (c->idx == 0) {
    memcpy(rp_challenge, ch->challenge, sizeof rp_challenge);
    rp_have = true;
    tc_start(&g.cs[1], 1, 1);               /* the client's own session */
    g.cs[1].on_challenge = rp_challenge_cb; /* B never answers for itself */
    return true;
  }
  if (!rp_have)
    FAILF("no challenge from session A");
  /* the honest client signs A's challenge, bound to its session B */
  kw__relay_msg a;
  memset(&a, 0, sizeof a);
  a.type = KW_RELAY_CLIENT_AUTH;
  memcpy(a.id, c->id, KW_ID_LEN);
  uint8_t ex[KW_RELAY_EXPORTER_LEN];
  if (kw__tls_stream_exporter(c->s, KW_RELAY_EXPORTER_LABEL, ex, sizeof ex) !=
      KW_OK)
    FAILF("exporter");
  if (rp_v1)
    kw__relay_auth_sign(c->sk, rp_challenge, a.sig);
  else
    kw__relay_auth2_sign(c->sk, rp_challenge, ex, g.host_hdr, a.sig);
  send_msg(&g.cs[0], &a); /* replayed on A */
  return true;
}

static void rp_ready(tc *c) {
  (void)c;
  FAILF("the replayed answer logged in on another session");
}

static void rp_frame(tc *c, const kw__relay_msg *m) {
  if (c->idx != 0)
    return;
  if (m && m->type == KW_RELAY_SERVER_INFO)
    FAILF("the replayed answer logged in on another session");
  if (!c->closed)
    return;
  if (c->close_code != KW_RELAY_CLOSE_AUTH)
    FAILF("close code %d, want %d", c->close_code, KW_RELAY_CLOSE_AUTH);
  finish("replay refused code=%d", c->close_code);
}

/* lookup-attack (relay with --max-records 5): seed 50 is connected as a
 * relay client and publishes its record; a stranger then floods the store
 * over one connection. */
static int lk_send_attack(tc *c, int step) {
  static uint8_t rec[KW_RECORD_MAX_LEN];
  uint64_t now = unix_us();
  size_t n;
  if (step == 0) { /* the connected endpoint's record, TTL 600 s */
    n = make_record(50, now, 600, rec);
    lk_request(c, true, 50, rec, n);
    return 204;
  }
  if (step == 1) { /* dated 290 s ahead: refused */
    n = make_record(60, now + 290000000ull, 86400, rec);
    lk_request(c, true, 60, rec, n);
    return 400;
  }
  if (step >= 2 && step < 10) { /* 8 long-lived strangers, 25 s ahead */
    unsigned long seed = 100 + (unsigned long)step;
    n = make_record(seed, now + 25000000ull, 86400, rec);
    lk_request(c, true, seed, rec, n);
    return 204;
  }
  if (step == 10) { /* the connection's burst (10) is spent */
    n = make_record(130, now, 86400, rec);
    lk_request(c, true, 130, rec, n);
    return 429;
  }
  if (step == 11) { /* the connected endpoint's record survived */
    lk_request(c, false, 50, NULL, 0);
    return 200;
  }
  if (step == 12) { /* 1.2 s later: its re-PUT is stored */
    n = make_record(50, now, 600, rec);
    lk_request(c, true, 50, rec, n);
    return 204;
  }
  return -1;
}

static void la_ready(tc *c) {
  if (c->idx != 0)
    return;
  tc_start(&g.cs[1], 1, 1);
  g.cs[1].mb = MB_LOOKUP;
  g.cs[1].on_frame = lk_frame;
}

/* lookup-flood: N connections from one address, 10 pipelined PUTs of fresh
 * ids each; counts 204 and 429. ARG: N. */
static size_t lf_done, lf_ok, lf_limited, lf_other;
static void lf_frame(tc *c, const kw__relay_msg *m) {
  (void)m;
  if (c->phase == 0)
    return;
  if (c->closed) {
    if (c->rx_pkts < 10)
      FAILF("connection %d closed after %llu answers", c->idx,
            (unsigned long long)c->rx_pkts);
    return;
  }
  for (;;) {
    kw__http_resp r;
    kw_err e = kw__http_resp_parse(c->hbuf, c->hlen, &r);
    if (e == KW_ERR_AGAIN)
      return;
    if (e != KW_OK)
      FAILF("bad HTTP answer");
    size_t body = r.has_length ? r.content_length : 0;
    if (c->hlen < r.header_len + body)
      return;
    if (r.status == 204)
      lf_ok++;
    else if (r.status == 429)
      lf_limited++;
    else
      lf_other++;
    memmove(c->hbuf, c->hbuf + r.header_len + body,
            c->hlen - r.header_len - body);
    c->hlen -= r.header_len + body;
    if (++c->rx_pkts == 10 && ++lf_done == g.n)
      finish("stored=%zu limited=%zu other=%zu", lf_ok, lf_limited, lf_other);
  }
}

static void lf_send(tc *c) {
  uint8_t rec[KW_RECORD_MAX_LEN];
  for (int i = 0; i < 10; i++) {
    unsigned long seed = 5000 + (unsigned long)c->idx * 10 + (unsigned long)i;
    size_t n = make_record(seed, unix_us(), 3600, rec);
    lk_request(c, true, seed, rec, n);
  }
}

/* fair: R reads slowly (~4 MB/s), F floods R, L sends R 1200-byte packets
 * at 500 packets/s for 3 s. L's packets must get through. */
#define FAIR_PKT 1200
#define FAIR_READ_BPS 4000000.0
static uv_timer_t fair_timer, fair_unpause;
static uint64_t fair_sent_l, fair_got_l, fair_got_f, fair_sent_f, fair_rbytes;
static uint64_t fair_t0;
static bool fair_paused, fair_flooding;

static void fair_flood(void) {
  tc *f = &g.cs[1], *r = &g.cs[0];
  uint8_t buf[FAIR_PKT];
  memset(buf, 'F', sizeof buf);
  while (fair_flooding && f->s) {
    kw_err e = send_pkt(f, r->id, buf, sizeof buf);
    if (e == KW_ERR_FULL)
      return; /* on_writable */
    if (e != KW_OK)
      FAILF("flood send: %s", kw_errname(e));
    fair_sent_f++;
  }
}

static void fair_tick(uv_timer_t *t) {
  (void)t;
  double el = (double)(uv_hrtime() - fair_t0) / 1e9;
  if (el < 3.0) {
    uint64_t want = (uint64_t)(el * 500.0);
    uint8_t buf[FAIR_PKT];
    memset(buf, 'L', sizeof buf);
    while (fair_sent_l < want) {
      if (send_pkt(&g.cs[2], g.cs[0].id, buf, sizeof buf) != KW_OK)
        FAILF("legit send");
      fair_sent_l++;
    }
    return;
  }
  fair_flooding = false;
  if (el < 5.0)
    return; /* let the queue drain */
  double share = fair_sent_l ? (double)fair_got_l / (double)fair_sent_l : 0;
  printf("legit sent=%llu delivered=%llu (%.1f%%); flood sent=%llu "
         "delivered=%llu\n",
         (unsigned long long)fair_sent_l, (unsigned long long)fair_got_l,
         share * 100.0, (unsigned long long)fair_sent_f,
         (unsigned long long)fair_got_f);
  if (share < 0.9)
    FAILF("only %.1f%% of the legit sender's packets arrived", share * 100.0);
  finish("legit_delivered=%.1f%%", share * 100.0);
}

static void fair_unpause_cb(uv_timer_t *t) {
  (void)t;
  tc *r = &g.cs[0];
  double el = (double)(uv_hrtime() - fair_t0) / 1e9;
  if (fair_paused && r->s && (double)fair_rbytes <= el * FAIR_READ_BPS) {
    fair_paused = false;
    kw__tls_stream_pause(r->s, false);
  }
}

static void fair_frame(tc *c, const kw__relay_msg *m) {
  if (!m) {
    if (c->closed)
      FAILF("client %d closed", c->idx);
    return;
  }
  if (c->idx != 0 || m->type != KW_RELAY_RECV_PACKET)
    return;
  fair_rbytes += m->data_len + KW_RELAY_PACKET_HDR;
  if (memcmp(m->id, g.cs[2].id, KW_ID_LEN) == 0)
    fair_got_l++;
  else if (memcmp(m->id, g.cs[1].id, KW_ID_LEN) == 0)
    fair_got_f++;
  double el = (double)(uv_hrtime() - fair_t0) / 1e9;
  if (!fair_paused && (double)fair_rbytes > el * FAIR_READ_BPS) {
    fair_paused = true;
    kw__tls_stream_pause(c->s, true);
  }
}

static void fair_ready(tc *c) {
  (void)c;
  if (g.ready < 3)
    return;
  fair_t0 = uv_hrtime();
  fair_flooding = true;
  uv_timer_init(&g.loop, &fair_timer);
  uv_timer_init(&g.loop, &fair_unpause);
  uv_timer_start(&fair_timer, fair_tick, 2, 2);
  uv_timer_start(&fair_unpause, fair_unpause_cb, 10, 10);
  fair_flood();
}

/* unknownflood: 2000 packets to 2000 ids nobody has; the PEER_GONE answers
 * must stay within the per-client cap (10/s). */
static uint64_t uf_gone;
static uv_timer_t uf_timer;
static void uf_done(uv_timer_t *t) {
  (void)t;
  double secs = (double)(uv_hrtime() - g.t0) / 1e9;
  printf("peer_gone=%llu for 2000 unknown ids in %.1f s\n",
         (unsigned long long)uf_gone, secs);
  if ((double)uf_gone > 10.0 * secs + 12.0)
    FAILF("%llu PEER_GONE answers: not capped", (unsigned long long)uf_gone);
  finish("peer_gone=%llu", (unsigned long long)uf_gone);
}
static void uf_frame(tc *c, const kw__relay_msg *m) {
  if (!m) {
    if (c->closed)
      FAILF("closed");
    return;
  }
  if (m->type == KW_RELAY_PEER_GONE)
    uf_gone++;
}
static void uf_ready(tc *c) {
  uint8_t x[64] = {0};
  g.t0 = uv_hrtime();
  for (uint32_t i = 0; i < 2000; i++) {
    uint8_t ghost[KW_ID_LEN];
    randombytes_buf(ghost, sizeof ghost);
    if (send_pkt(c, ghost, x, sizeof x) != KW_OK)
      FAILF("send");
  }
  uv_timer_init(&g.loop, &uf_timer);
  uv_timer_start(&uf_timer, uf_done, 1500, 0);
}

/* flood-stuck SECONDS / flood-unknown SECONDS (benchmarks, bench/
 * relay_flood.sh): flood a peer that never reads, or ids nobody has, as fast
 * as the relay takes it; prints the offered rate. */
static double fl_secs;
static bool fl_unknown;
static uint64_t fl_sent;
static void fl_pump(void) {
  tc *f = &g.cs[fl_unknown ? 0 : 1];
  uint8_t buf[1200], to[KW_ID_LEN];
  memset(buf, 'x', sizeof buf);
  memcpy(to, g.cs[0].id, KW_ID_LEN);
  while (f->s) {
    double el = (double)(uv_hrtime() - g.t0) / 1e9;
    if (el >= fl_secs) {
      printf("offered %.1f MB/s for %.1f s\n",
             (double)fl_sent * 1237.0 / el / 1e6, el);
      finish(NULL);
    }
    if (fl_unknown) {
      to[0] = (uint8_t)fl_sent;
      to[1] = (uint8_t)(fl_sent >> 8);
      to[2] = 0xee;
    }
    kw_err e = send_pkt(f, to, buf, sizeof buf);
    if (e == KW_ERR_FULL)
      return;
    if (e != KW_OK)
      FAILF("flood send: %s", kw_errname(e));
    fl_sent++;
  }
}
static void fl_ready(tc *c) {
  if (!fl_unknown && c->idx == 0)
    kw__tls_stream_pause(c->s, true); /* never reads */
  if (g.ready < g.n)
    return;
  g.t0 = uv_hrtime();
  fl_pump();
}
static void fl_frame(tc *c, const kw__relay_msg *m) {
  (void)m;
  if (c->closed)
    FAILF("client %d closed", c->idx);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0)
    return 1;
  if (argc == 3 && strcmp(argv[1], "id") == 0) {
    uint8_t sk[KW_SECRET_KEY_LEN], id[KW_ID_LEN];
    seed_key(strtoul(argv[2], NULL, 10), sk, id);
    char s[KW_ID_STRLEN + 1];
    kw_id_to_string(id, s, sizeof s);
    printf("%s\n", s);
    return 0;
  }
  if (argc < 4) {
    fprintf(stderr, "usage: relay_testc MODE ADDR:PORT CAFILE [ARG]\n");
    return 2;
  }
  g.mode = argv[1];
  if (kw_sockaddr_parse(argv[2], &g.relay) != KW_OK)
    FAILF("bad address %s", argv[2]);
  g.ca = argv[3];
  {
    struct sockaddr_storage ss;
    socklen_t sl;
    kw__sockaddr_to_os(&g.relay, &ss, &sl);
    if (g.relay.family == 4)
      uv_ip4_name((struct sockaddr_in *)&ss, g.host, sizeof g.host);
    else
      uv_ip6_name((struct sockaddr_in6 *)&ss, g.host, sizeof g.host);
    snprintf(g.host_hdr, sizeof g.host_hdr,
             g.relay.family == 6 ? "[%s]:%u" : "%s:%u", g.host, g.relay.port);
  }
  const char *arg = argc > 4 ? argv[4] : NULL;
  for (size_t i = 0; i < sizeof g.pattern; i++)
    g.pattern[i] = (uint8_t)(i * 7 + (i >> 8));
  uv_loop_init(&g.loop);
  uv_timer_init(&g.loop, &g.guard);
  uint64_t guard_ms = 30000;
  g.n = 1;
  g.cs = calloc(2, sizeof(tc));
  const char *m = g.mode;
  g.t0 = uv_hrtime();

  if (strcmp(m, "pair") == 0 || strcmp(m, "rate") == 0) {
    bool rate = m[0] == 'r';
    g.n = 2;
    for (int i = 0; i < 2; i++) {
      tc_start(&g.cs[i], i, (unsigned long)i + 1);
      g.cs[i].on_ready = rate ? rate_ready : pair_ready;
      g.cs[i].on_frame = rate ? rate_frame : pair_frame;
    }
    guard_ms = 60000;
  } else if (strcmp(m, "noauth") == 0 || strcmp(m, "badsig") == 0 ||
             strcmp(m, "notallowed") == 0) {
    unsigned long seed = arg ? strtoul(arg, NULL, 10) : 1;
    tc_start(&g.cs[0], 0, seed);
    g.cs[0].on_frame = expect_close;
    if (m[0] == 'n' && m[2] == 'a') {
      g.cs[0].mb = MB_SEND_BEFORE_AUTH;
      want_code = KW_RELAY_CLOSE_PROTOCOL;
    } else if (m[0] == 'b') {
      g.cs[0].mb = MB_BAD_SIG;
      want_code = KW_RELAY_CLOSE_AUTH;
    } else {
      want_code = KW_RELAY_CLOSE_NOT_ALLOWED;
    }
  } else if (strcmp(m, "badauth") == 0) {
    tc_start(&g.cs[0], 0, 1);
    g.cs[0].mb = MB_SHORT_AUTH;
    g.cs[0].on_frame = expect_close;
    want_code = KW_RELAY_CLOSE_PROTOCOL;
  } else if (strcmp(m, "authtimeout") == 0) {
    tc_start(&g.cs[0], 0, 1);
    g.cs[0].mb = MB_SILENT;
    g.cs[0].on_frame = expect_close;
    want_code = KW_RELAY_CLOSE_TIMEOUT;
  } else if (strcmp(m, "auth") == 0) {
    tc_start(&g.cs[0], 0, arg ? strtoul(arg, NULL, 10) : 1);
    g.cs[0].on_ready = auth_ready;
  } else if (strcmp(m, "oversize") == 0 || strcmp(m, "badframe") == 0) {
    oversize = m[0] == 'o';
    tc_start(&g.cs[0], 0, arg ? strtoul(arg, NULL, 10) : 1);
    g.cs[0].on_ready = bad_ready;
    g.cs[0].on_frame = expect_close;
    want_code = KW_RELAY_CLOSE_PROTOCOL;
  } else if (strcmp(m, "badhttp") == 0 || strcmp(m, "ping") == 0) {
    tc_start(&g.cs[0], 0, 1);
    g.cs[0].mb = m[0] == 'b' ? MB_HTTP_GARBAGE : MB_PING_ONLY;
    g.cs[0].on_frame = http_frame;
  } else if (strcmp(m, "lookup") == 0 || strcmp(m, "lookup-evict") == 0) {
    lk_evict = m[6] == '-';
    tc_start(&g.cs[0], 0, 1);
    g.cs[0].mb = MB_LOOKUP;
    g.cs[0].on_frame = lk_frame;
  } else if (strcmp(m, "peergone") == 0) {
    g.n = 2;
    tc_start(&g.cs[0], 0, 1);
    g.cs[0].on_ready = pg_ready;
    g.cs[0].on_frame = pg_frame;
    /* B is started when the first PEER_GONE arrived; set its hooks now */
  } else if (strcmp(m, "many") == 0) {
    g.n = arg ? strtoul(arg, NULL, 10) : 1000;
    free(g.cs);
    g.cs = calloc(g.n, sizeof(tc));
    if (!g.cs)
      FAILF("memory");
    for (size_t i = 0; i < g.n; i++) {
      tc_start(&g.cs[i], (int)i, 1000 + i);
      g.cs[i].on_ready = many_ready;
      g.cs[i].on_frame = many_frame;
    }
    guard_ms = 60000;
  } else if (strcmp(m, "replace") == 0) {
    tc_start(&g.cs[0], 0, 1);
    g.cs[0].on_ready = replace_ready;
    g.cs[0].on_frame = replace_frame;
  } else if (strcmp(m, "wait-shutdown") == 0 || strcmp(m, "wait-close") == 0) {
    if (argc > 5)
      ws_code = atoi(argv[5]);
    tc_start(&g.cs[0], 0, arg ? strtoul(arg, NULL, 10) : 1);
    g.cs[0].on_ready = ws_ready;
    g.cs[0].on_frame = ws_frame;
  } else if (strcmp(m, "replay-v2") == 0 || strcmp(m, "replay-v1") == 0) {
    rp_v1 = m[8] == '1';
    tc_start(&g.cs[0], 0, 1);
    g.cs[0].on_challenge = rp_challenge_cb;
    g.cs[0].on_frame = rp_frame;
    g.cs[0].on_ready = rp_ready;
  } else if (strcmp(m, "v1refused") == 0) {
    tc_start(&g.cs[0], 0, 1);
    g.cs[0].v1 = true;
    g.cs[0].on_frame = expect_close;
    want_code = -2; /* any close is a failure: 426 finishes */
  } else if (strcmp(m, "auth-v1") == 0) {
    tc_start(&g.cs[0], 0, arg ? strtoul(arg, NULL, 10) : 1);
    g.cs[0].v1 = true;
    g.cs[0].on_ready = auth_ready;
  } else if (strcmp(m, "lookup-attack") == 0) {
    lk_mode = 2;
    g.n = 2;
    tc_start(&g.cs[0], 0, 50);
    g.cs[0].on_ready = la_ready;
  } else if (strcmp(m, "lookup-flood") == 0) {
    g.n = arg ? strtoul(arg, NULL, 10) : 15;
    free(g.cs);
    g.cs = calloc(g.n, sizeof(tc));
    if (!g.cs)
      FAILF("memory");
    for (size_t i = 0; i < g.n; i++) {
      tc_start(&g.cs[i], (int)i, 1);
      g.cs[i].mb = MB_LOOKUP;
      g.cs[i].on_frame = lf_frame;
    }
  } else if (strcmp(m, "fair") == 0) {
    g.n = 3;
    free(g.cs);
    g.cs = calloc(3, sizeof(tc));
    if (!g.cs)
      FAILF("memory");
    for (int i = 0; i < 3; i++) {
      tc_start(&g.cs[i], i, 71 + (unsigned long)i);
      g.cs[i].on_ready = fair_ready;
      g.cs[i].on_frame = fair_frame;
    }
  } else if (strcmp(m, "unknownflood") == 0) {
    tc_start(&g.cs[0], 0, 80);
    g.cs[0].on_ready = uf_ready;
    g.cs[0].on_frame = uf_frame;
  } else if (strcmp(m, "flood-stuck") == 0 || strcmp(m, "flood-unknown") == 0) {
    fl_secs = arg ? atof(arg) : 10;
    fl_unknown = m[6] == 'u';
    g.n = fl_unknown ? 1 : 2;
    for (size_t i = 0; i < g.n; i++) {
      tc_start(&g.cs[i], (int)i, 90 + i);
      g.cs[i].on_ready = fl_ready;
      g.cs[i].on_frame = fl_frame;
    }
    guard_ms = (uint64_t)(fl_secs * 1000) + 20000;
  } else if (strcmp(m, "keepalive") == 0) {
    tc_start(&g.cs[0], 0, arg ? strtoul(arg, NULL, 10) : 1);
    g.cs[0].on_frame = ka_frame;
  } else {
    FAILF("unknown mode");
  }
  uv_timer_start(&g.guard, guard_cb, guard_ms, 0);
  for (;;) {
    uv_run(&g.loop, UV_RUN_ONCE);
    /* late hooks: B of peergone / replace are started by callbacks */
    if (strcmp(m, "peergone") == 0 && g.cs[1].s && !g.cs[1].on_ready) {
      g.cs[1].on_ready = pg_ready;
      g.cs[1].on_frame = pg_frame;
    }
    if (strcmp(m, "replace") == 0 && g.cs[1].s && !g.cs[1].on_frame) {
      g.cs[1].on_frame = replace_frame;
      g.cs[1].on_ready = replace_ready;
    }
  }
}
