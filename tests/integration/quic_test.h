/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the QUIC integration tests (tests/integration/quic_*.c).
 * Header-only because every .c file in this folder becomes its own binary.
 *
 * Endpoints run on library threads (kw_endpoint_start); the main thread
 * drives a test by posting work to a loop (qt_call) and waiting for counters
 * that callbacks bump (QT_WAIT). Counters shared between threads are atomic.
 * Every binary arms a watchdog, binds loopback only and ends with the line
 * "N passed, M failed"; the exit status is 0 only when M is 0.
 */
#ifndef KW_QUIC_TEST_H
#define KW_QUIC_TEST_H

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyway.h"

static atomic_int qt_passed, qt_failed;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (cond) {                                                                \
      atomic_fetch_add(&qt_passed, 1);                                         \
    } else {                                                                   \
      atomic_fetch_add(&qt_failed, 1);                                         \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

/* An error counted without bumping "passed" for every success: for checks
 * made once per byte, datagram or stream. */
#define EXPECT(cond, ...)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      atomic_fetch_add(&qt_failed, 1);                                         \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

static inline double qt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void qt_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Polls `cond` every millisecond until it holds or `ms` have passed (then
 * the caller's CHECK of `cond` reports the failure). */
#define QT_WAIT(cond, ms)                                                      \
  do {                                                                         \
    double qt_deadline_ = qt_now_ms() + (ms);                                  \
    while (!(cond) && qt_now_ms() < qt_deadline_)                              \
      qt_sleep_ms(1);                                                          \
  } while (0)

static inline void qt_on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "FAIL watchdog: the test took too long\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  _exit(1);
}

/* Starts a test: line-buffered output, and a watchdog that kills the
 * process with a clear message after `seconds`. */
static inline void qt_begin(unsigned seconds) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGALRM, qt_on_alarm);
  alarm(seconds);
}

/* Prints the summary line; the exit status for main. */
static inline int qt_report(void) {
  int p = atomic_load(&qt_passed), f = atomic_load(&qt_failed);
  printf("%d passed, %d failed\n", p, f);
  fflush(stdout);
  return f == 0 ? 0 : 1;
}

/* Settings of a test endpoint beyond the defaults (zero: default). */
typedef struct qt_opts {
  const char *alpn; /* accept this ALPN; NULL: dial only */
  kw_log_fn log;    /* log sink at DEBUG level */
  void *log_user;
  uint32_t idle_ms, connect_timeout_ms;
  uint64_t max_streams_uni; /* streams the remote may open at once */
  uint32_t max_conns;
  size_t send_budget_conn, send_budget_endpoint; /* both or neither */
} qt_opts;

/* Creates and starts an endpoint bound to 127.0.0.1:0 and [::1]:0. Exits on
 * failure: nothing can be tested then. */
static inline kw_endpoint *qt_endpoint_ex(const qt_opts *o, const kw_callbacks *cbs,
                                          void *user) {
  kw_config *cfg = NULL;
  kw_sockaddr b4, b6;
  kw_err e = kw_config_new(&cfg);
  if (!e && o->alpn)
    e = kw_config_add_alpn(cfg, o->alpn);
  if (!e)
    e = kw_sockaddr_parse("127.0.0.1:0", &b4);
  if (!e)
    e = kw_config_add_bind(cfg, &b4);
  if (!e)
    e = kw_sockaddr_parse("[::1]:0", &b6);
  if (!e)
    e = kw_config_add_bind(cfg, &b6);
  if (!e && cbs)
    e = kw_config_set_callbacks(cfg, cbs, user);
  if (!e && o->log)
    e = kw_config_set_log(cfg, o->log, o->log_user, KW_LOG_DEBUG);
  if (!e && o->idle_ms)
    e = kw_config_set_idle_timeout(cfg, o->idle_ms);
  if (!e && o->connect_timeout_ms)
    e = kw_config_set_connect_timeout(cfg, o->connect_timeout_ms);
  if (!e && o->max_streams_uni)
    e = kw_config_set_max_streams(cfg, 1024, o->max_streams_uni);
  if (!e && o->max_conns)
    e = kw_config_set_max_conns(cfg, o->max_conns);
  if (!e && o->send_budget_conn)
    e = kw_config_set_send_budget(cfg, o->send_budget_conn,
                                  o->send_budget_endpoint);
  kw_endpoint *ep = NULL;
  if (!e)
    e = kw_endpoint_new(cfg, &ep);
  kw_config_free(cfg);
  if (!e)
    e = kw_endpoint_start(ep);
  if (e) {
    fprintf(stderr, "FAIL endpoint set-up: %s\n", kw_strerror(e));
    exit(1);
  }
  return ep;
}

/* The common case: an endpoint with callbacks, accepting `alpn` (or none). */
static inline kw_endpoint *qt_endpoint(const char *alpn, const kw_callbacks *cbs,
                                       void *user) {
  qt_opts o = {.alpn = alpn};
  return qt_endpoint_ex(&o, cbs, user);
}

/* The endpoint's dialable address, keeping only the IPv4 or IPv6 loopback
 * address (`family` 4 or 6), so a test knows which path it exercises. */
static inline kw_endpoint_addr qt_addr(kw_endpoint *ep, int family) {
  kw_endpoint_addr a;
  if (kw_endpoint_get_addr(ep, &a) != KW_OK) {
    fprintf(stderr, "FAIL kw_endpoint_get_addr\n");
    exit(1);
  }
  size_t n = 0;
  for (size_t i = 0; i < a.n_addrs; i++)
    if (a.addrs[i].family == family)
      a.addrs[n++] = a.addrs[i];
  a.n_addrs = n;
  if (n == 0) {
    fprintf(stderr, "FAIL no IPv%d address bound\n", family);
    exit(1);
  }
  return a;
}

/* Dials `to` with `alpn` from `client`'s loop thread and waits up to `ms`
 * for the connect callback. *out is set on the loop thread by the callback
 * itself (before any other callback of the connection can run), so loop
 * callbacks may use it. Returns the callback's result, the dial's own
 * error, or KW_ERR_TIMEOUT when no answer came (the context is then left
 * to the callback that may still come). */
typedef struct qt_dial_ctx {
  kw_endpoint_addr to;
  const char *alpn;
  kw_conn **out;
  atomic_int err; /* -1 until the dial ended */
} qt_dial_ctx;

static inline void qt_dial_done(kw_conn *c, kw_err e, void *arg) {
  qt_dial_ctx *d = arg;
  if (d->out)
    *d->out = c;
  atomic_store(&d->err, (int)e);
}

static inline void qt_dial_start(kw_endpoint *ep, void *arg) {
  qt_dial_ctx *d = arg;
  kw_err e = kw_endpoint_connect(ep, &d->to, d->alpn, qt_dial_done, d);
  if (e)
    atomic_store(&d->err, (int)e);
}

static inline kw_err qt_dial(kw_endpoint *client, const kw_endpoint_addr *to,
                             const char *alpn, kw_conn **out, unsigned ms) {
  qt_dial_ctx *d = calloc(1, sizeof *d);
  if (!d)
    return KW_ERR_NOMEM;
  d->to = *to;
  d->alpn = alpn;
  d->out = out;
  atomic_store(&d->err, -1);
  kw_err e = kw_endpoint_post(client, qt_dial_start, d);
  if (e) {
    free(d);
    return e;
  }
  QT_WAIT(atomic_load(&d->err) != -1, ms);
  int r = atomic_load(&d->err);
  if (r == -1)
    return KW_ERR_TIMEOUT;
  free(d);
  return (kw_err)r;
}

/* Runs fn(ep, arg) on the loop thread of `ep` and waits until it returned. */
typedef struct qt_call_ctx {
  void (*fn)(kw_endpoint *ep, void *arg);
  void *arg;
  atomic_int done;
} qt_call_ctx;

static inline void qt_call_trampoline(kw_endpoint *ep, void *arg) {
  qt_call_ctx *c = arg;
  c->fn(ep, c->arg);
  atomic_store(&c->done, 1);
}

static inline kw_err qt_call(kw_endpoint *ep,
                             void (*fn)(kw_endpoint *ep, void *arg),
                             void *arg) {
  qt_call_ctx c = {fn, arg, 0};
  kw_err e = kw_endpoint_post(ep, qt_call_trampoline, &c);
  if (e)
    return e;
  QT_WAIT(atomic_load(&c.done), 30000);
  if (!atomic_load(&c.done)) {
    fprintf(stderr, "FAIL posted work never ran\n");
    exit(1);
  }
  return KW_OK;
}

/* Deterministic bytes: payload byte `i` of message `tag`. */
static inline uint8_t qt_byte(uint64_t tag, size_t i) {
  uint64_t x = (tag + 1) * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
  x ^= x >> 31;
  x *= 0x94d049bb133111ebull;
  return (uint8_t)(x >> 56);
}

static inline void qt_fill(uint8_t *p, size_t n, uint64_t tag, size_t off) {
  for (size_t i = 0; i < n; i++)
    p[i] = qt_byte(tag, off + i);
}

/* Index of the first byte of p[0..n) that differs from qt_fill's, or n. */
static inline size_t qt_verify(const uint8_t *p, size_t n, uint64_t tag,
                               size_t off) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != qt_byte(tag, off + i))
      return i;
  return n;
}

static inline void qt_close_now(kw_endpoint *ep, void *arg) {
  (void)ep;
  kw_conn_close(arg, 0, NULL);
}

/* Closes connection `c` of `ep` (code 0) on the loop thread. */
static inline void qt_close_conn(kw_endpoint *ep, kw_conn *c) {
  qt_call(ep, qt_close_now, c);
}

/* ---- stream halves used by several tests ---- */

/* The sending half of a stream: `len` bytes of qt_fill(tag), then fin. */
typedef struct qt_tx {
  uint64_t tag;
  size_t len, sent;
} qt_tx;

/* The receiving half: expects `len` bytes of qt_fill(tag), then fin. */
typedef struct qt_rx {
  uint64_t tag;
  size_t len, got;
  bool fin, bad;
} qt_rx;

/* Writes what the stream takes; call again from stream_writable. */
static inline void qt_tx_pump(kw_stream *s, qt_tx *t) {
  uint8_t buf[16384];
  if (t->len == 0) {
    kw_err e = kw_stream_finish(s);
    EXPECT(e == KW_OK, "finish: %s", kw_errname(e));
    return;
  }
  while (t->sent < t->len) {
    size_t n = t->len - t->sent;
    if (n > sizeof buf)
      n = sizeof buf;
    qt_fill(buf, n, t->tag, t->sent);
    size_t w = 0;
    kw_err e = kw_stream_write(s, buf, n, t->sent + n == t->len, &w);
    EXPECT(e == KW_OK || e == KW_ERR_AGAIN, "write: %s", kw_errname(e));
    t->sent += w;
    if (w < n)
      return; /* stream_writable will call again */
  }
}

/* Checks arriving bytes against the expected ones. */
static inline void qt_rx_take(qt_rx *r, const uint8_t *d, size_t n, bool fin) {
  if (r->bad)
    return;
  if (r->got + n > r->len || qt_verify(d, n, r->tag, r->got) != n) {
    EXPECT(0, "stream with tag %llu: wrong bytes at offset %zu",
           (unsigned long long)r->tag, r->got);
    r->bad = true;
    return;
  }
  r->got += n;
  if (fin) {
    r->fin = true;
    EXPECT(r->got == r->len, "tag %llu: fin after %zu of %zu bytes",
           (unsigned long long)r->tag, r->got, r->len);
  }
}

static inline bool qt_rx_complete(const qt_rx *r) {
  return !r->bad && r->fin && r->got == r->len;
}

/* An echoing stream (server side): what arrives is written back, fin
 * included. Use qt_echo_new in stream_opened, qt_echo_data in stream_data,
 * qt_echo_flush in stream_writable and qt_echo_free in stream_closed. */
typedef struct qt_echo {
  uint8_t *buf;
  size_t len, cap;
  bool fin_in, fin_out;
} qt_echo;

static inline void qt_echo_flush(kw_stream *s, qt_echo *e) {
  if (e->fin_out || (e->len == 0 && !e->fin_in))
    return;
  size_t w = 0;
  kw_err err = kw_stream_write(s, e->buf, e->len, e->fin_in, &w);
  EXPECT(err == KW_OK || err == KW_ERR_AGAIN, "echo write: %s", kw_errname(err));
  if (w && e->len > w)
    memmove(e->buf, e->buf + w, e->len - w);
  e->len -= w;
  if (e->fin_in && e->len == 0)
    e->fin_out = true;
}

static inline void qt_echo_new(kw_stream *s) {
  kw_stream_set_user(s, calloc(1, sizeof(qt_echo)));
}

static inline void qt_echo_data(kw_stream *s, const uint8_t *d, size_t n,
                                bool fin) {
  qt_echo *e = kw_stream_get_user(s);
  if (!e)
    return;
  if (e->len + n > e->cap) {
    e->cap = (e->len + n) * 2;
    e->buf = realloc(e->buf, e->cap);
  }
  if (n)
    memcpy(e->buf + e->len, d, n);
  e->len += n;
  e->fin_in |= fin;
  qt_echo_flush(s, e);
}

static inline void qt_echo_free(kw_stream *s) {
  qt_echo *e = kw_stream_get_user(s);
  if (e) {
    free(e->buf);
    free(e);
  }
  kw_stream_set_user(s, NULL);
}

#endif
