/* SPDX-License-Identifier: MIT */
/*
 * Loopback tests of kw__tls_stream (driven by test_tls_stream.sh):
 *   tls_stream_echo CASE DIR
 * CASE: echo, wrongca, wrongname, dnsname, refused, close, full, garbage.
 * DIR receives the generated certificates. Prints "ok CASE" and exits 0,
 * or prints the failed check and exits 1.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "net/osaddr.h"
#include "net/tls_cred.h"
#include "net/tls_stream.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);             \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#define BIG (8u << 20)

typedef struct side {
  kw__tls_stream *s;
  int opened, closed;
  kw_err err;
  size_t got;
  crypto_generichash_state h;
  /* echo server: bytes it could not write yet */
  uint8_t *pend;
  size_t pend_len;
  bool echo;
  size_t writable_calls;
} side;

typedef struct T {
  uv_loop_t loop;
  uv_tcp_t listener;
  void *cred;
  side srv, cli;
  const char *name;
  size_t sent;
  uint8_t *data;
  size_t data_len;
  int full_seen;
  uv_timer_t guard;
} T;

static T t;

static void srv_open(kw__tls_stream *s, void *ud) {
  side *d = ud;
  (void)s;
  d->opened++;
}

static void srv_data(kw__tls_stream *s, const uint8_t *p, size_t n, void *ud) {
  side *d = ud;
  d->got += n;
  crypto_generichash_update(&d->h, p, n);
  if (!d->echo)
    return;
  if (d->pend_len == 0 && kw__tls_stream_write(s, p, n) == KW_OK)
    return;
  /* back-pressure: keep the bytes and stop reading until writable */
  uint8_t *np = realloc(d->pend, d->pend_len + n);
  CHECK(np);
  d->pend = np;
  memcpy(d->pend + d->pend_len, p, n);
  d->pend_len += n;
  kw__tls_stream_pause(s, true);
}

static void srv_writable(kw__tls_stream *s, void *ud) {
  side *d = ud;
  d->writable_calls++;
  if (d->pend_len) {
    kw_err e = kw__tls_stream_write(s, d->pend, d->pend_len);
    if (e == KW_ERR_FULL)
      return;
    CHECK(e == KW_OK);
    d->pend_len = 0;
  }
  kw__tls_stream_pause(s, false);
}

static void any_close(kw__tls_stream *s, kw_err err, void *ud) {
  side *d = ud;
  (void)s;
  d->closed++;
  d->err = err;
  d->s = NULL;
  if (d == &t.srv && !uv_is_closing((uv_handle_t *)&t.listener))
    uv_close((uv_handle_t *)&t.listener, NULL);
  if (t.srv.closed && t.cli.closed && !uv_is_closing((uv_handle_t *)&t.guard))
    uv_close((uv_handle_t *)&t.guard, NULL);
}

static const kw__tls_stream_cbs srv_cbs = {srv_open, srv_data, srv_writable,
                                           any_close};

static void on_conn(uv_stream_t *l, int status) {
  CHECK(status == 0);
  uv_tcp_t *c = malloc(sizeof *c);
  CHECK(c);
  uv_tcp_init(&t.loop, c);
  CHECK(uv_accept(l, (uv_stream_t *)c) == 0);
  CHECK(t.srv.s == NULL && t.srv.closed == 0); /* one connection per case */
  CHECK(kw__tls_stream_accept(&t.loop, c, t.cred, &srv_cbs, &t.srv, &t.srv.s) ==
        KW_OK);
}

/* ---- client behaviours ------------------------------------------------ */

static void cli_pump(kw__tls_stream *s) {
  while (t.sent < t.data_len) {
    size_t n = t.data_len - t.sent;
    if (n > 100000)
      n = 100000; /* odd size: records do not line up with writes */
    kw_err e = kw__tls_stream_write(s, t.data + t.sent, n);
    if (e == KW_ERR_FULL) {
      t.full_seen++;
      return;
    }
    CHECK(e == KW_OK);
    t.sent += n;
  }
}

static void cli_open(kw__tls_stream *s, void *ud) {
  side *d = ud;
  d->opened++;
  char buf[64];
  kw__tls_stream_cipher(s, buf, sizeof buf);
  CHECK(strncmp(buf, "TLS1.3 ", 7) == 0);
  kw_sockaddr pa;
  CHECK(kw__tls_stream_peer_addr(s, &pa) && pa.family == 4 && pa.ip[0] == 127);
  if (strcmp(t.name, "echo") == 0)
    cli_pump(s);
  if (strcmp(t.name, "dnsname") == 0)
    kw__tls_stream_close(s); /* the early write is still delivered */
}

static void cli_writable(kw__tls_stream *s, void *ud) {
  side *d = ud;
  d->writable_calls++;
  cli_pump(s);
}

static void cli_data(kw__tls_stream *s, const uint8_t *p, size_t n, void *ud) {
  side *d = ud;
  d->got += n;
  crypto_generichash_update(&d->h, p, n);
  if (strcmp(t.name, "echo") == 0 && d->got == t.data_len) {
    kw__tls_stream_close(s);
    kw__tls_stream_close(s); /* idempotent */
    CHECK(kw__tls_stream_write(s, p, 1) == KW_ERR_CLOSED);
  }
}

static const kw__tls_stream_cbs cli_cbs = {cli_open, cli_data, cli_writable,
                                           any_close};

static void guard_cb(uv_timer_t *h) {
  (void)h;
  fprintf(stderr,
          "FAIL %s: timed out (srv opened=%d closed=%d got=%zu; "
          "cli opened=%d closed=%d got=%zu)\n",
          t.name, t.srv.opened, t.srv.closed, t.srv.got, t.cli.opened,
          t.cli.closed, t.cli.got);
  exit(1);
}

static kw_sockaddr listen_any(void) {
  uv_tcp_init(&t.loop, &t.listener);
  struct sockaddr_in sin;
  uv_ip4_addr("127.0.0.1", 0, &sin);
  CHECK(uv_tcp_bind(&t.listener, (struct sockaddr *)&sin, 0) == 0);
  CHECK(uv_listen((uv_stream_t *)&t.listener, 16, on_conn) == 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&t.listener, (struct sockaddr *)&ss, &len);
  kw_sockaddr a;
  kw__sockaddr_from_os((struct sockaddr *)&ss, &a);
  return a;
}

static void hash_final(crypto_generichash_state *h, uint8_t out[32]) {
  crypto_generichash_final(h, out, 32);
}

static void run(void) {
  uv_timer_init(&t.loop, &t.guard);
  uv_timer_start(&t.guard, guard_cb, 20000, 0);
  uv_run(&t.loop, UV_RUN_DEFAULT);
}

/* ---- raw TCP peer for the garbage case -------------------------------- */

static uv_tcp_t raw;
static uv_connect_t raw_req;
static uv_write_t raw_w;

static void raw_read_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  static char buf[4096];
  (void)h, (void)sz;
  *b = uv_buf_init(buf, sizeof buf);
}

static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0)
    uv_close((uv_handle_t *)st, NULL);
}

static void raw_connected(uv_connect_t *r, int status) {
  CHECK(status == 0);
  static char msg[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  uv_buf_t b = uv_buf_init(msg, sizeof msg - 1);
  uv_write(&raw_w, r->handle, &b, 1, NULL);
  uv_read_start(r->handle, raw_read_alloc, raw_read);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s CASE DIR\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  CHECK(sodium_init() >= 0);
  t.name = argv[1];
  char ca[512], wrong[512];
  snprintf(ca, sizeof ca, "%s/ca-%s.pem", argv[2], t.name);
  snprintf(wrong, sizeof wrong, "%s/wrong-%s.pem", argv[2], t.name);
  uv_loop_init(&t.loop);
  kw_sockaddr lo;
  CHECK(kw_sockaddr_parse("127.0.0.1:1", &lo) == KW_OK);
  CHECK(kw__tls_cred_server_selfsigned(&lo, ca, &t.cred) == KW_OK);
  void *wcred = NULL;
  CHECK(kw__tls_cred_server_selfsigned(&lo, wrong, &wcred) == KW_OK);
  kw__tls_cred_free(wcred);
  crypto_generichash_init(&t.srv.h, NULL, 0, 32);
  crypto_generichash_init(&t.cli.h, NULL, 0, 32);
  kw_sockaddr to = listen_any();
  const char *name = t.name;

  if (strcmp(name, "echo") == 0) {
    t.data_len = BIG;
    t.data = malloc(BIG);
    CHECK(t.data);
    randombytes_buf(t.data, BIG);
    t.srv.echo = true;
    CHECK(kw__tls_stream_connect(&t.loop, &to, "127.0.0.1", ca, &cli_cbs,
                                 &t.cli, &t.cli.s) == KW_OK);
    run();
    uint8_t want[32], a[32], b[32];
    crypto_generichash(want, 32, t.data, BIG, NULL, 0);
    hash_final(&t.srv.h, a);
    hash_final(&t.cli.h, b);
    CHECK(t.cli.opened == 1 && t.srv.opened == 1);
    CHECK(t.srv.got == BIG && t.cli.got == BIG);
    CHECK(memcmp(a, want, 32) == 0 && memcmp(b, want, 32) == 0);
    CHECK(t.cli.closed == 1 && t.cli.err == KW_OK);
    CHECK(t.srv.closed == 1 && t.srv.err == KW_ERR_CLOSED);
    /* 8 MiB through a 1 MiB window: back-pressure must have engaged */
    CHECK(t.full_seen > 0 && t.cli.writable_calls > 0);
    free(t.data);
  } else if (strcmp(name, "wrongca") == 0 || strcmp(name, "wrongname") == 0) {
    const char *host =
        strcmp(name, "wrongca") == 0 ? "127.0.0.1" : "keyway.invalid";
    const char *file = strcmp(name, "wrongca") == 0 ? wrong : ca;
    CHECK(kw__tls_stream_connect(&t.loop, &to, host, file, &cli_cbs, &t.cli,
                                 &t.cli.s) == KW_OK);
    run();
    CHECK(t.cli.opened == 0 && t.cli.closed == 1 && t.cli.err == KW_ERR_CERT);
    CHECK(t.srv.closed == 1 && t.srv.err != KW_OK);
  } else if (strcmp(name, "dnsname") == 0) {
    /* SNI + name check against the "localhost" SAN; then close at once */
    static const char hello[] = "hello before the handshake";
    CHECK(kw__tls_stream_connect(&t.loop, &to, "localhost", ca, &cli_cbs,
                                 &t.cli, &t.cli.s) == KW_OK);
    CHECK(kw__tls_stream_write(t.cli.s, (const uint8_t *)hello, sizeof hello) ==
          KW_OK);
    CHECK(kw__tls_stream_queued(t.cli.s) == sizeof hello);
    run();
    CHECK(t.cli.opened == 1 && t.srv.got == sizeof hello);
    CHECK(t.srv.closed == 1 && t.cli.closed == 1);
  } else if (strcmp(name, "refused") == 0) {
    uv_close((uv_handle_t *)&t.listener, NULL);
    uv_run(&t.loop, UV_RUN_NOWAIT);
    t.srv.closed = 1;
    CHECK(kw__tls_stream_connect(&t.loop, &to, "127.0.0.1", ca, &cli_cbs,
                                 &t.cli, &t.cli.s) == KW_OK);
    run();
    CHECK(t.cli.opened == 0 && t.cli.closed == 1 && t.cli.err == KW_ERR_IO);
  } else if (strcmp(name, "close") == 0) {
    /* write 1 MiB + close before the handshake is even done: all bytes
     * arrive, then the server sees the peer's close */
    t.data_len = 1u << 20;
    t.data = malloc(t.data_len);
    CHECK(t.data);
    randombytes_buf(t.data, t.data_len);
    CHECK(kw__tls_stream_connect(&t.loop, &to, "127.0.0.1", ca, &cli_cbs,
                                 &t.cli, &t.cli.s) == KW_OK);
    CHECK(kw__tls_stream_write(t.cli.s, t.data, t.data_len) == KW_OK);
    uv_run(&t.loop, UV_RUN_ONCE);
    while (!t.cli.opened)
      uv_run(&t.loop, UV_RUN_ONCE);
    kw__tls_stream_close(t.cli.s);
    run();
    uint8_t want[32], a[32];
    crypto_generichash(want, 32, t.data, t.data_len, NULL, 0);
    hash_final(&t.srv.h, a);
    CHECK(t.srv.got == t.data_len && memcmp(a, want, 32) == 0);
    CHECK(t.cli.closed == 1 && t.cli.err == KW_OK);
    CHECK(t.srv.closed == 1 && t.srv.err == KW_ERR_CLOSED);
    free(t.data);
  } else if (strcmp(name, "full") == 0) {
    static uint8_t chunk[48 * 1024];
    CHECK(kw__tls_stream_connect(&t.loop, &to, "127.0.0.1", ca, &cli_cbs,
                                 &t.cli, &t.cli.s) == KW_OK);
    kw__tls_stream_set_hwm(t.cli.s, 64 * 1024);
    CHECK(kw__tls_stream_write(t.cli.s, chunk, sizeof chunk) == KW_OK);
    CHECK(kw__tls_stream_write(t.cli.s, chunk, sizeof chunk) == KW_ERR_FULL);
    CHECK(kw__tls_stream_queued(t.cli.s) == sizeof chunk); /* nothing taken */
    while (t.cli.writable_calls == 0 && !t.cli.closed)
      uv_run(&t.loop, UV_RUN_ONCE);
    CHECK(t.cli.writable_calls == 1);
    kw__tls_stream_close(t.cli.s);
    run();
    CHECK(t.srv.got == sizeof chunk);
  } else if (strcmp(name, "garbage") == 0) {
    t.cli.closed = 1;
    uv_tcp_init(&t.loop, &raw);
    struct sockaddr_storage ss;
    socklen_t sl;
    kw__sockaddr_to_os(&to, &ss, &sl);
    uv_tcp_connect(&raw_req, &raw, (struct sockaddr *)&ss, raw_connected);
    run();
    CHECK(t.srv.opened == 0 && t.srv.closed == 1 && t.srv.err == KW_ERR_TLS);
  } else {
    fprintf(stderr, "unknown case %s\n", name);
    return 2;
  }
  uv_run(&t.loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&t.loop) == 0);
  kw__tls_cred_free(t.cred);
  free(t.srv.pend);
  printf("ok %s\n", name);
  return 0;
}
