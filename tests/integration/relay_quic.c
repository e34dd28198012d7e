/* SPDX-License-Identifier: MIT */
/*
 * QUIC through a keyway-relay: two endpoints on loopback that are told no
 * direct address of each other, so every packet crosses the relay.
 *
 *   relay_quic URL CA MODE [MIB]
 *     MODE relay   the dialer knows only the listener's relay URL
 *     MODE byid    the dialer knows only the id (resolved at the lookup
 *                  store of the home relay); the path may then be direct
 *     MODE unknown dial an id nobody published: KW_ERR_NOT_FOUND
 *
 * (The relay carries the handshake; hole punching may then move the
 * connection onto a direct loopback path mid-transfer, which the transfer
 * must survive.)
 *
 * The dialer sends MIB mebibytes of pseudo-random bytes on one stream, the
 * listener echoes them back; both directions are checked with BLAKE2b.
 * With KW_TEST_RETRY=always in the environment the listener validates
 * every client address with a Retry (kw_config_set_retry_threshold 0),
 * which then travels back through the relay; the run checks it was sent.
 * Prints "transferring" when the data starts flowing (a test script may
 * kill and restart the relay then), and "N passed, M failed" at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "keyway.h"

static int passed, failed;
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (cond) {                                                                \
      passed++;                                                                \
    } else {                                                                   \
      failed++;                                                                \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

typedef struct state {
  size_t total;
  size_t sent, echoed, received;
  crypto_generichash_state h_sent, h_recv, h_echo;
  uint8_t chunk[65536];
  uint64_t prng;
  kw_stream *cs;
  kw_conn *cc;
  kw_path_kind kind;
  kw_path_kind first_kind; /* when the connection came up */
  volatile int done;
  kw_err connect_err;
  kw_endpoint_addr target;
  kw_endpoint *dialer;
  kw_conn *sc; /* the listener's side */
} state;

static state S;

static void fill(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    S.prng = S.prng * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = (uint8_t)(S.prng >> 56);
  }
}

static size_t chunk_len, chunk_off;

static void pump(kw_stream *s) {
  for (;;) {
    if (S.sent == S.total)
      return;
    if (chunk_off == chunk_len) {
      size_t left = S.total - S.sent;
      chunk_len = left < sizeof S.chunk ? left : sizeof S.chunk;
      chunk_off = 0;
      fill(S.chunk, chunk_len);
    }
    size_t n = chunk_len - chunk_off;
    bool fin = S.sent + n == S.total;
    size_t w = 0;
    kw_stream_write(s, S.chunk + chunk_off, n, fin, &w);
    crypto_generichash_update(&S.h_sent, S.chunk + chunk_off, w);
    chunk_off += w;
    S.sent += w;
    if (w < n)
      return; /* the writable callback resumes */
  }
}

/* The listener echoes with back-pressure: what the send buffer does not
 * take waits here, and flow-control credit is returned only for bytes
 * echoed (manual consume), so this backlog stays within the window. The
 * bytes waiting are backlog[backlog_off, backlog_off + backlog_len): a
 * partial write advances the offset, and the buffer is compacted only
 * when the tail reaches its end (never a move of the whole backlog per
 * packet, which under ASan stalled the loop for seconds). */
static uint8_t *backlog;
static size_t backlog_off, backlog_len, backlog_cap;
static bool backlog_fin;

static void backlog_append(const uint8_t *d, size_t n) {
  if (backlog_off && backlog_off + backlog_len + n > backlog_cap) {
    memmove(backlog, backlog + backlog_off, backlog_len);
    backlog_off = 0;
  }
  if (backlog_len + n > backlog_cap / 2) {
    size_t cap = backlog_cap ? backlog_cap : 1 << 20;
    while (cap / 2 < backlog_len + n)
      cap *= 2;
    uint8_t *b = realloc(backlog, cap);
    if (!b) {
      fprintf(stderr, "relay_quic: out of memory\n");
      exit(1);
    }
    backlog = b;
    backlog_cap = cap;
  }
  memcpy(backlog + backlog_off + backlog_len, d, n);
  backlog_len += n;
}

static void echo_flush(kw_stream *s) {
  size_t w = 0;
  if (backlog_len == 0 && !backlog_fin)
    return;
  kw_stream_write(s, backlog + backlog_off, backlog_len, backlog_fin, &w);
  bool all = w == backlog_len; /* the fin, if any, went with the last byte */
  if (w) {
    crypto_generichash_update(&S.h_echo, backlog + backlog_off, w);
    S.echoed += w;
    backlog_off += w;
    backlog_len -= w;
    kw_stream_consume(s, w);
  }
  if (all) {
    backlog_off = 0;
    backlog_fin = false;
  }
}

static void on_opened(kw_stream *s, void *u) {
  (void)u;
  kw_stream_set_manual_consume(s, true);
}

static void on_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  (void)u;
  if (!kw_conn_is_client(kw_stream_conn(s))) {
    S.sc = kw_stream_conn(s);
    backlog_append(d, n);
    backlog_fin = fin;
    echo_flush(s);
    return;
  }
  crypto_generichash_update(&S.h_recv, d, n);
  S.received += n;
  if (fin)
    S.done = 1;
}

static void on_writable(kw_stream *s, void *u) {
  (void)u;
  if (s == S.cs)
    pump(s);
  else
    echo_flush(s);
}

static void on_closed(kw_conn *c, kw_err err, uint64_t code, void *u) {
  (void)u;
  (void)code;
  fprintf(stderr, "%s connection closed: %s\n",
          kw_conn_is_client(c) ? "dialer" : "listener", kw_errname(err));
  if (c == S.cc)
    S.cc = NULL;
  if (c == S.sc)
    S.sc = NULL;
}

static void on_path(kw_conn *c, const kw_path_info *p, void *u) {
  (void)u;
  if (kw_conn_is_client(c))
    S.kind = p->kind;
}

static void on_connected(kw_conn *c, kw_err err, void *arg) {
  (void)arg;
  S.connect_err = err;
  if (err) {
    S.done = 2;
    return;
  }
  S.cc = c;
  kw_path_info p;
  kw_conn_path(c, &p);
  S.kind = S.first_kind = p.kind;
  if (kw_conn_open_stream(c, true, &S.cs) != KW_OK) {
    S.done = 2;
    return;
  }
  printf("transferring\n");
  fflush(stdout);
  pump(S.cs);
}

static void dial(kw_endpoint *ep, void *arg) {
  (void)arg;
  kw_err e = kw_endpoint_connect(ep, &S.target, "relay-test", on_connected,
                                 NULL);
  if (e != KW_OK) {
    S.connect_err = e;
    S.done = 2;
  }
}

/* Progress, printed every 5 s to stderr so that a stall shows where it
 * sits: each side's congestion state, bytes held for sending, loss. */
static void trace_side(const char *who, kw_conn *c) {
  if (!c)
    return;
  kw_conn_stats st;
  kw_path_info p;
  kw_conn_stats_get(c, &st);
  kw_conn_path(c, &p);
  fprintf(stderr,
          "  %s: on %s rtt=%.1fms cwnd=%llu buffered=%llu sent=%llu "
          "recv=%llu lost=%llu\n",
          who, kw_path_kind_name(p.kind), st.rtt_ms,
          (unsigned long long)st.cwnd, (unsigned long long)st.send_buffered,
          (unsigned long long)st.pkts_sent, (unsigned long long)st.pkts_recv,
          (unsigned long long)st.pkts_lost);
}
static void trace_dialer(kw_endpoint *ep, void *arg) {
  (void)ep;
  (void)arg;
  fprintf(stderr, "progress: sent %zu echoed %zu received %zu backlog %zu\n",
          S.sent, S.echoed, S.received, backlog_len);
  trace_side("dialer", S.cc);
}
static void trace_listener(kw_endpoint *ep, void *arg) {
  (void)ep;
  (void)arg;
  trace_side("listener", S.sc);
}

static kw_endpoint *make(const char *url, const char *ca, bool listen) {
  kw_config *cfg;
  kw_endpoint *ep = NULL;
  kw_callbacks cbs = {0};
  cbs.stream_data = on_data;
  cbs.stream_opened = on_opened;
  cbs.stream_writable = on_writable;
  cbs.path_changed = on_path;
  cbs.conn_closed = on_closed;
  kw_config_new(&cfg);
  kw_config_set_callbacks(cfg, &cbs, NULL);
  kw_config_set_stream_send_buffer(cfg, 8u << 20);
  kw_config_set_idle_timeout(cfg, 60000);
  kw_config_set_keepalive(cfg, 2000);
  kw_sockaddr b;
  kw_sockaddr_parse("127.0.0.1:0", &b);
  kw_config_add_bind(cfg, &b);
  kw_config_add_relay(cfg, url);
  kw_config_set_relay_ca(cfg, ca);
  if (listen)
    kw_config_add_alpn(cfg, "relay-test");
  const char *retry = getenv("KW_TEST_RETRY");
  if (listen && retry && strcmp(retry, "always") == 0)
    kw_config_set_retry_threshold(cfg, 0);
  if (kw_endpoint_new(cfg, &ep) != KW_OK)
    ep = NULL;
  kw_config_free(cfg);
  return ep;
}

static bool wait_home(kw_endpoint *ep, int ms) {
  char url[KW_MAX_RELAY_URL + 1];
  for (int i = 0; i < ms / 10; i++) {
    kw_endpoint_home_relay(ep, url, sizeof url);
    if (url[0])
      return true;
    usleep(10000);
  }
  return false;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: relay_quic URL CA relay|byid|unknown [MIB]\n");
    return 2;
  }
  const char *url = argv[1], *ca = argv[2], *mode = argv[3];
  S.total = (argc > 4 ? strtoul(argv[4], NULL, 10) : 64) << 20;
  alarm(120);
  if (sodium_init() < 0)
    return 1;
  crypto_generichash_init(&S.h_sent, NULL, 0, 32);
  crypto_generichash_init(&S.h_recv, NULL, 0, 32);
  crypto_generichash_init(&S.h_echo, NULL, 0, 32);
  S.prng = 42;

  kw_endpoint *lis = make(url, ca, true);
  kw_endpoint *dia = make(url, ca, false);
  CHECK(lis && dia, "endpoints created");
  if (!lis || !dia)
    return 1;
  kw_endpoint_start(lis);
  kw_endpoint_start(dia);
  CHECK(wait_home(lis, 10000), "listener has a home relay");
  CHECK(wait_home(dia, 10000), "dialer has a home relay");

  kw_endpoint_get_addr(lis, &S.target);
  CHECK(strcmp(S.target.relay_url, url) == 0, "ticket names the relay: %s",
        S.target.relay_url);
  if (strcmp(mode, "relay") == 0) {
    S.target.n_addrs = 0; /* nothing direct: the relay must carry it */
  } else if (strcmp(mode, "byid") == 0) {
    usleep(500000); /* the listener publishes its record on home change */
    S.target.n_addrs = 0;
    S.target.relay_url[0] = 0;
  } else {
    uint8_t sk[KW_SECRET_KEY_LEN];
    kw_key_generate(sk);
    kw_key_id(sk, S.target.id);
    S.target.n_addrs = 0;
    S.target.relay_url[0] = 0;
  }
  kw_endpoint_post(dia, dial, NULL);
  for (int i = 0; i < 11000 && !S.done; i++) {
    usleep(10000);
    if (i % 500 == 499) {
      kw_endpoint_post(dia, trace_dialer, NULL);
      kw_endpoint_post(lis, trace_listener, NULL);
    }
  }

  if (strcmp(mode, "unknown") == 0) {
    CHECK(S.done == 2 && S.connect_err == KW_ERR_NOT_FOUND,
          "unknown id: %s", kw_errname(S.connect_err));
  } else {
    CHECK(S.done == 1, "transfer finished (connect: %s, received %zu of %zu)",
          kw_errname(S.connect_err), S.received, S.total);
    uint8_t a[32], b[32], c[32];
    crypto_generichash_final(&S.h_sent, a, 32);
    crypto_generichash_final(&S.h_echo, b, 32);
    crypto_generichash_final(&S.h_recv, c, 32);
    CHECK(S.received == S.total && memcmp(a, c, 32) == 0,
          "echo is byte-exact");
    CHECK(S.echoed == S.total && memcmp(a, b, 32) == 0,
          "listener saw every byte");
    /* with no direct address the relay carries the handshake; on
     * loopback hole punching may then move the connection to a direct
     * path (both are fine: the transfer must survive the move) */
    if (strcmp(mode, "relay") == 0)
      CHECK(S.first_kind == KW_PATH_RELAY, "connected through the relay (got %s)",
            kw_path_kind_name(S.first_kind));
    printf("path=%s then %s\n", kw_path_kind_name(S.first_kind),
           kw_path_kind_name(S.kind));
  }
  const char *retry = getenv("KW_TEST_RETRY");
  if (retry && strcmp(retry, "always") == 0) {
    kw_endpoint_stats st;
    kw_endpoint_stats_get(lis, &st); /* the loop is idle by now */
    CHECK(st.retries_sent > 0, "the listener validated the address with a "
          "Retry (%llu sent)", (unsigned long long)st.retries_sent);
  }
  kw_endpoint_close(dia);
  kw_endpoint_close(lis);
  kw_endpoint_free(dia);
  kw_endpoint_free(lis);
  free(backlog);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
