/* SPDX-License-Identifier: MIT */
/*
 * One remote per id: B dials A, then A dials B directly over UDP. B's
 * inbound connection starts on a remote of unknown id; once its handshake
 * names A, that remote merges into the one B already holds for A
 * ("remote.merged" in B's log, once), and the moved connection keeps
 * working: a 64 KiB echo on it, both ways, and a second echo on B's own
 * connection afterwards.
 */
#include "quic_test.h"

#define ALPN "kw-test-merge"
#define PAYLOAD (64u << 10)

static atomic_int merged, accepted_b;

static void log_b(void *u, kw_log_level lvl, const char *module,
                  const char *msg) {
  (void)u;
  (void)lvl;
  (void)module;
  if (strncmp(msg, "remote.merged ", 14) == 0)
    atomic_fetch_add(&merged, 1);
}

/* both sides echo every stream opened to them */
static void srv_accepted(kw_conn *c, void *u) {
  (void)c;
  if (u)
    atomic_fetch_add(&accepted_b, 1);
}
static void srv_opened(kw_stream *s, void *u) {
  qt_echo_new(s);
}

typedef struct exchange {
  qt_tx t;
  qt_rx r;
  atomic_int done;
} exchange;

/* the exchange running (one at a time): a stream whose user is it is ours,
 * any other one is the peer's, echoed */
static exchange *_Atomic cur;

static bool is_ours(kw_stream *s) {
  return kw_stream_get_user(s) == (void *)atomic_load(&cur);
}

static void on_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  void *x = kw_stream_get_user(s);
  if (is_ours(s))
    qt_rx_take(&((exchange *)x)->r, d, n, fin);
  else
    qt_echo_data(s, d, n, fin);
}
static void on_writable(kw_stream *s, void *u) {
  void *x = kw_stream_get_user(s);
  if (is_ours(s))
    qt_tx_pump(s, &((exchange *)x)->t);
  else
    qt_echo_flush(s, x);
}
static void on_stream_closed(kw_stream *s, kw_err e, uint64_t code, void *u) {
  void *x = kw_stream_get_user(s);
  if (is_ours(s)) {
    exchange *ex = x;
    EXPECT(e == KW_OK && qt_rx_complete(&ex->r), "echo: %s, %zu of %zu bytes",
           kw_errname(e), ex->r.got, ex->r.len);
    atomic_store(&ex->done, 1);
  } else {
    qt_echo_free(s);
  }
}

typedef struct start_arg {
  kw_conn *c;
  exchange *x;
} start_arg;

static void start_echo(kw_endpoint *ep, void *arg) {
  (void)ep;
  start_arg *a = arg;
  kw_stream *s;
  kw_err e = kw_conn_open_stream(a->c, true, &s);
  EXPECT(e == KW_OK, "open stream: %s", kw_errname(e));
  if (e) {
    atomic_store(&a->x->done, 1);
    return;
  }
  kw_stream_set_user(s, a->x);
  qt_tx_pump(s, &a->x->t);
}

static void echo(kw_endpoint *ep, kw_conn *c, uint64_t tag, const char *what) {
  exchange x = {.t = {tag, PAYLOAD, 0}, .r = {tag, PAYLOAD, 0, false, false}};
  atomic_store(&x.done, 0);
  atomic_store(&cur, &x);
  start_arg a = {c, &x};
  qt_call(ep, start_echo, &a);
  QT_WAIT(atomic_load(&x.done), 20000);
  CHECK(atomic_load(&x.done) && qt_rx_complete(&x.r), "%s: echo complete",
        what);
  atomic_store(&cur, NULL);
}

int main(void) {
  qt_begin(60);
  kw_callbacks cb = {.conn_accepted = srv_accepted,
                     .stream_opened = srv_opened,
                     .stream_data = on_data,
                     .stream_writable = on_writable,
                     .stream_closed = on_stream_closed};
  kw_endpoint *a = qt_endpoint(ALPN, &cb, NULL);
  qt_opts ob = {.alpn = ALPN, .log = log_b};
  kw_endpoint *b = qt_endpoint_ex(&ob, &cb, (void *)1);

  kw_endpoint_addr to_a = qt_addr(a, 4), to_b = qt_addr(b, 4);
  kw_conn *ba = NULL, *ab = NULL;
  CHECK(qt_dial(b, &to_a, ALPN, &ba, 10000) == KW_OK && ba, "B dials A");
  CHECK(atomic_load(&merged) == 0, "no merge for an outbound connection");
  CHECK(qt_dial(a, &to_b, ALPN, &ab, 10000) == KW_OK && ab, "A dials B");
  QT_WAIT(atomic_load(&accepted_b) == 1 && atomic_load(&merged) >= 1, 5000);
  CHECK(atomic_load(&accepted_b) == 1, "B accepted A's connection");
  CHECK(atomic_load(&merged) == 1,
        "B merged its inbound remote into A's (%d remote.merged)",
        atomic_load(&merged));
  if (ab)
    echo(a, ab, 1, "A's connection, moved on B");
  if (ba)
    echo(b, ba, 2, "B's own connection");
  kw_endpoint_close(a);
  kw_endpoint_close(b);
  kw_endpoint_free(a);
  kw_endpoint_free(b);
  return qt_report();
}
