/* SPDX-License-Identifier: MIT */
/*
 * Error paths of the public API, on loopback:
 *  - dialing a listener's address with another id: KW_ERR_KEY_MISMATCH, and
 *    the log names both keys ("tls.key_mismatch presented=X expected=Y");
 *  - an ALPN the listener does not accept: KW_ERR_ALPN;
 *  - nobody answering (a UDP socket that never reads) with a 500 ms connect
 *    timeout: KW_ERR_TIMEOUT after about 500 ms;
 *  - the listener accepted none of those connections;
 *  - application close codes both ways: the closer's conn_closed gets
 *    KW_OK, the remote's KW_ERR_APP_CLOSED with the code;
 *  - stream reset codes both ways: KW_ERR_RESET with the code;
 *  - invalid arguments: KW_ERR_INVALID_ARG (and KW_ERR_NO_PATH for an
 *    address without any way to reach it);
 *  - kw_strerror and kw_errname of every code: non-NULL and distinct.
 */
#include <netinet/in.h>
#include <sys/socket.h>

#include "quic_test.h"

#define ALPN "kw-test-api"

/* ---- listener: obeys a one-word command on the first stream ----
 *   "close42"  close the connection with code 42, reason "bye"
 *   "reset99"  reset the stream with code 99
 *   "hold"     answer "ok" and keep the stream open (the client resets it)
 *   anything else: nothing */

static atomic_int accepted;
static atomic_int srv_closed_err = -1, srv_reset_err = -1;
static atomic_ullong srv_closed_code, srv_reset_code;

static void srv_accepted(kw_conn *c, void *u) { atomic_fetch_add(&accepted, 1); }

static void srv_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {
  if (n == 7 && memcmp(d, "close42", 7) == 0) {
    CHECK(kw_conn_close(kw_stream_conn(s), 42, "bye") == KW_OK, "close 42");
    CHECK(kw_conn_close(kw_stream_conn(s), 43, "again") == KW_OK, "close is idempotent");
  } else if (n == 7 && memcmp(d, "reset99", 7) == 0) {
    CHECK(kw_stream_reset(s, 99) == KW_OK, "reset 99");
  } else if (n == 4 && memcmp(d, "hold", 4) == 0) {
    size_t w;
    CHECK(kw_stream_write(s, (const uint8_t *)"ok", 2, false, &w) == KW_OK && w == 2,
          "answer ok");
  }
}

static void srv_stream_closed(kw_stream *s, kw_err e, uint64_t code, void *u) {
  atomic_store(&srv_reset_code, code);
  atomic_store(&srv_reset_err, (int)e);
}

static void srv_conn_closed(kw_conn *c, kw_err e, uint64_t code, void *u) {
  atomic_store(&srv_closed_code, code);
  atomic_store(&srv_closed_err, (int)e);
}

/* ---- client ---- */

static atomic_int connect_err = -1;
static atomic_int cli_closed_err = -1, cli_reset_err = -1;
static atomic_ullong cli_closed_code, cli_reset_code;
static kw_conn *cconn;   /* client loop thread */
static kw_stream *cstream;
static const char *command; /* set by main before each dial */

static void on_connected(kw_conn *c, kw_err e, void *arg) {
  cconn = c;
  if (e == KW_OK && command) {
    e = kw_conn_open_stream(c, true, &cstream);
    size_t w;
    if (e == KW_OK)
      e = kw_stream_write(cstream, (const uint8_t *)command, strlen(command), false, &w);
  }
  atomic_store(&connect_err, (int)e);
}

static void cli_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {
  if (n == 2 && memcmp(d, "ok", 2) == 0)
    CHECK(kw_stream_reset(s, 5) == KW_OK, "client resets with 5");
}

static void cli_stream_closed(kw_stream *s, kw_err e, uint64_t code, void *u) {
  atomic_store(&cli_reset_code, code);
  atomic_store(&cli_reset_err, (int)e);
}

static void cli_conn_closed(kw_conn *c, kw_err e, uint64_t code, void *u) {
  atomic_store(&cli_closed_code, code);
  atomic_store(&cli_closed_err, (int)e);
}

/* The client's log: keeps the key-mismatch line. */
static char mismatch_line[512];
static atomic_int mismatch_logged;
static void cli_log(void *user, kw_log_level lvl, const char *module, const char *msg) {
  if (strncmp(msg, "tls.key_mismatch", 16) == 0 && !atomic_load(&mismatch_logged)) {
    snprintf(mismatch_line, sizeof mismatch_line, "%s", msg);
    atomic_store(&mismatch_logged, 1);
  }
}

typedef struct dial_req {
  kw_endpoint_addr to;
  const char *alpn;
} dial_req;

static void dial(kw_endpoint *ep, void *arg) {
  dial_req *d = arg;
  kw_err e = kw_endpoint_connect(ep, &d->to, d->alpn, on_connected, NULL);
  if (e)
    atomic_store(&connect_err, (int)e);
}

/* Dials and waits for the connect callback; returns its error. */
static kw_err dial_wait(kw_endpoint *client, const kw_endpoint_addr *to, const char *alpn) {
  static dial_req d;
  d.to = *to;
  d.alpn = alpn;
  atomic_store(&connect_err, -1);
  if (kw_endpoint_post(client, dial, &d) != KW_OK)
    return KW_ERR_LOOP;
  QT_WAIT(atomic_load(&connect_err) != -1, 15000);
  return atomic_load(&connect_err) == -1 ? KW_ERR_LOOP : (kw_err)atomic_load(&connect_err);
}

static void reset_outcomes(void) {
  atomic_store(&srv_closed_err, -1);
  atomic_store(&cli_closed_err, -1);
  atomic_store(&srv_reset_err, -1);
  atomic_store(&cli_reset_err, -1);
}

static void test_wrong_key(kw_endpoint *client, kw_endpoint_addr to) {
  uint8_t sk[KW_SECRET_KEY_LEN], real[KW_ID_LEN];
  char real_s[KW_ID_STRLEN + 1], other_s[KW_ID_STRLEN + 1], want[200];
  memcpy(real, to.id, KW_ID_LEN);
  kw_key_generate(sk);
  kw_key_id(sk, to.id);
  command = NULL;
  kw_err e = dial_wait(client, &to, ALPN);
  CHECK(e == KW_ERR_KEY_MISMATCH, "wrong key: %s", kw_errname(e));
  kw_id_to_string(real, real_s, sizeof real_s);
  kw_id_to_string(to.id, other_s, sizeof other_s);
  snprintf(want, sizeof want, "tls.key_mismatch presented=%s expected=%s", real_s, other_s);
  QT_WAIT(atomic_load(&mismatch_logged), 1000);
  CHECK(atomic_load(&mismatch_logged) && strstr(mismatch_line, want) == mismatch_line,
        "log line \"%s\", want \"%s\"", mismatch_line, want);
}

static void test_timeout(kw_endpoint *quick, kw_endpoint_addr to) {
  /* a socket that is bound but never read: datagrams vanish */
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &sl) == 0,
        "black-hole socket");
  to.n_addrs = 1;
  memset(&to.addrs[0], 0, sizeof to.addrs[0]);
  to.addrs[0].family = 4;
  memcpy(to.addrs[0].ip, "\x7f\x00\x00\x01", 4);
  to.addrs[0].port = ntohs(sa.sin_port);
  command = NULL;
  double t0 = qt_now_ms();
  kw_err e = dial_wait(quick, &to, ALPN);
  double took = qt_now_ms() - t0;
  printf("connect timeout: %s after %.0f ms\n", kw_errname(e), took);
  CHECK(e == KW_ERR_TIMEOUT, "nobody answering: %s", kw_errname(e));
  CHECK(took >= 450 && took < 3000, "timed out after %.0f ms (set: 500)", took);
  close(fd);
}

static void test_close_codes(kw_endpoint *client, const kw_endpoint_addr *to) {
  /* the listener closes with 42 */
  reset_outcomes();
  command = "close42";
  kw_err e = dial_wait(client, to, ALPN);
  CHECK(e == KW_OK, "connect: %s", kw_errname(e));
  QT_WAIT(atomic_load(&cli_closed_err) != -1 && atomic_load(&srv_closed_err) != -1, 5000);
  CHECK(atomic_load(&cli_closed_err) == KW_ERR_APP_CLOSED &&
            atomic_load(&cli_closed_code) == 42,
        "remote's close: %s code %llu", kw_errname((kw_err)atomic_load(&cli_closed_err)),
        atomic_load(&cli_closed_code));
  CHECK(atomic_load(&srv_closed_err) == KW_OK, "local close: %s",
        kw_errname((kw_err)atomic_load(&srv_closed_err)));
}

static void client_close7(kw_endpoint *ep, void *arg) {
  CHECK(kw_conn_close(cconn, 7, NULL) == KW_OK, "close 7");
}

static void test_client_close(kw_endpoint *client, const kw_endpoint_addr *to) {
  reset_outcomes();
  command = "nothing";
  kw_err e = dial_wait(client, to, ALPN);
  CHECK(e == KW_OK, "connect: %s", kw_errname(e));
  qt_call(client, client_close7, NULL);
  QT_WAIT(atomic_load(&cli_closed_err) != -1 && atomic_load(&srv_closed_err) != -1, 5000);
  CHECK(atomic_load(&srv_closed_err) == KW_ERR_APP_CLOSED &&
            atomic_load(&srv_closed_code) == 7,
        "listener sees: %s code %llu", kw_errname((kw_err)atomic_load(&srv_closed_err)),
        atomic_load(&srv_closed_code));
  CHECK(atomic_load(&cli_closed_err) == KW_OK, "client's own close: %s",
        kw_errname((kw_err)atomic_load(&cli_closed_err)));
}

static void close_cconn(kw_endpoint *ep, void *arg) { kw_conn_close(cconn, 0, NULL); }

static void test_resets(kw_endpoint *client, const kw_endpoint_addr *to) {
  /* the listener resets with 99 */
  reset_outcomes();
  command = "reset99";
  CHECK(dial_wait(client, to, ALPN) == KW_OK, "connect");
  QT_WAIT(atomic_load(&cli_reset_err) != -1, 5000);
  CHECK(atomic_load(&cli_reset_err) == KW_ERR_RESET && atomic_load(&cli_reset_code) == 99,
        "client stream: %s code %llu", kw_errname((kw_err)atomic_load(&cli_reset_err)),
        atomic_load(&cli_reset_code));
  qt_call(client, close_cconn, NULL);
  QT_WAIT(atomic_load(&srv_closed_err) != -1, 5000);

  /* the client resets with 5 */
  reset_outcomes();
  command = "hold";
  CHECK(dial_wait(client, to, ALPN) == KW_OK, "connect");
  QT_WAIT(atomic_load(&srv_reset_err) != -1, 5000);
  CHECK(atomic_load(&srv_reset_err) == KW_ERR_RESET && atomic_load(&srv_reset_code) == 5,
        "listener stream: %s code %llu", kw_errname((kw_err)atomic_load(&srv_reset_err)),
        atomic_load(&srv_reset_code));
  qt_call(client, close_cconn, NULL);
  QT_WAIT(atomic_load(&srv_closed_err) != -1, 5000);
}

/* ---- invalid arguments ---- */

static void dummy_cb(kw_conn *c, kw_err e, void *arg) {
  EXPECT(0, "connect callback after a refused dial: %s", kw_errname(e));
}

static void bad_dials(kw_endpoint *ep, void *arg) {
  const kw_endpoint_addr *good = arg;
  kw_endpoint_addr a = *good;
  char long_alpn[300];
  memset(long_alpn, 'a', sizeof long_alpn - 1);
  long_alpn[sizeof long_alpn - 1] = 0;
  CHECK(kw_endpoint_connect(NULL, &a, ALPN, dummy_cb, NULL) == KW_ERR_INVALID_ARG, "no ep");
  CHECK(kw_endpoint_connect(ep, NULL, ALPN, dummy_cb, NULL) == KW_ERR_INVALID_ARG, "no to");
  CHECK(kw_endpoint_connect(ep, &a, NULL, dummy_cb, NULL) == KW_ERR_INVALID_ARG, "no alpn");
  CHECK(kw_endpoint_connect(ep, &a, "", dummy_cb, NULL) == KW_ERR_INVALID_ARG, "empty alpn");
  CHECK(kw_endpoint_connect(ep, &a, long_alpn, dummy_cb, NULL) == KW_ERR_INVALID_ARG,
        "alpn > 255");
  CHECK(kw_endpoint_connect(ep, &a, ALPN, NULL, NULL) == KW_ERR_INVALID_ARG, "no cb");
  a.n_addrs = KW_MAX_DIRECT_ADDRS + 1;
  CHECK(kw_endpoint_connect(ep, &a, ALPN, dummy_cb, NULL) == KW_ERR_INVALID_ARG,
        "too many addrs");
  a.n_addrs = 0;
  CHECK(kw_endpoint_connect(ep, &a, ALPN, dummy_cb, NULL) == KW_ERR_NO_PATH,
        "no address and no relay");
}

static void bad_conn_args(kw_endpoint *ep, void *arg) {
  kw_stream *s = NULL;
  size_t w = 1;
  CHECK(kw_conn_open_stream(NULL, true, &s) == KW_ERR_INVALID_ARG, "open_stream(NULL)");
  CHECK(kw_conn_send_datagram(NULL, (const uint8_t *)"x", 1) == KW_ERR_INVALID_ARG,
        "send_datagram(NULL)");
  CHECK(kw_conn_close(NULL, 0, NULL) == KW_ERR_INVALID_ARG, "conn_close(NULL)");
  CHECK(kw_stream_write(NULL, (const uint8_t *)"x", 1, false, &w) == KW_ERR_INVALID_ARG &&
            w == 0,
        "stream_write(NULL)");
  CHECK(kw_stream_finish(NULL) == KW_ERR_INVALID_ARG, "finish(NULL)");
  CHECK(kw_stream_reset(NULL, 1) == KW_ERR_INVALID_ARG, "reset(NULL)");
  CHECK(kw_stream_consume(NULL, 1) == KW_ERR_INVALID_ARG, "consume(NULL)");
  /* on a live connection and stream */
  CHECK(kw_conn_open_stream(cconn, true, NULL) == KW_ERR_INVALID_ARG, "open_stream(c, NULL)");
  CHECK(kw_conn_send_datagram(cconn, NULL, 5) == KW_ERR_INVALID_ARG, "datagram NULL data");
  CHECK(kw_stream_write(cstream, NULL, 5, false, &w) == KW_ERR_INVALID_ARG,
        "write NULL data");
  kw_conn_close(cconn, 0, NULL);
}

static void never_runs(kw_endpoint *ep, void *arg) {}

static void test_invalid_args(kw_endpoint *client, const kw_endpoint_addr *to) {
  kw_config *cfg = NULL;
  kw_endpoint *ep = NULL;
  kw_sockaddr sa;
  uint8_t sk[KW_SECRET_KEY_LEN], id[KW_ID_LEN];
  char buf[KW_ID_STRLEN + 1];
  CHECK(kw_config_new(NULL) == KW_ERR_INVALID_ARG, "config_new(NULL)");
  CHECK(kw_config_new(&cfg) == KW_OK, "config_new");
  CHECK(kw_config_add_alpn(NULL, "x") == KW_ERR_INVALID_ARG, "add_alpn(NULL)");
  CHECK(kw_config_add_alpn(cfg, NULL) == KW_ERR_INVALID_ARG, "add_alpn(cfg, NULL)");
  CHECK(kw_config_add_alpn(cfg, "") == KW_ERR_INVALID_ARG, "empty alpn");
  char long_alpn[257];
  memset(long_alpn, 'b', 256);
  long_alpn[256] = 0;
  CHECK(kw_config_add_alpn(cfg, long_alpn) == KW_ERR_INVALID_ARG, "256-byte alpn");
  long_alpn[255] = 0;
  CHECK(kw_config_add_alpn(cfg, long_alpn) == KW_OK, "255-byte alpn");
  CHECK(kw_config_add_bind(cfg, NULL) == KW_ERR_INVALID_ARG, "add_bind(cfg, NULL)");
  kw_sockaddr_parse("127.0.0.1:0", &sa);
  CHECK(kw_config_add_bind(NULL, &sa) == KW_ERR_INVALID_ARG, "add_bind(NULL)");
  CHECK(kw_config_set_idle_timeout(cfg, 0) == KW_ERR_INVALID_ARG, "idle 0");
  CHECK(kw_config_set_dht_publish(NULL, KW_DHT_PUBLISH_RELAY) ==
            KW_ERR_INVALID_ARG, "dht_publish(NULL)");
  CHECK(kw_config_set_dht_publish(cfg, (kw_dht_publish)3) == KW_ERR_INVALID_ARG,
        "dht_publish(3)");
  CHECK(kw_config_set_dht_publish(cfg, KW_DHT_PUBLISH_ADDRS) == KW_OK,
        "dht_publish(ADDRS)");
  CHECK(kw_config_set_connect_timeout(cfg, 0) == KW_ERR_INVALID_ARG, "connect timeout 0");
  CHECK(kw_config_set_max_conns(cfg, 0) == KW_ERR_INVALID_ARG, "max conns 0");
  CHECK(kw_config_set_callbacks(NULL, NULL, NULL) == KW_ERR_INVALID_ARG, "callbacks(NULL)");
  CHECK(kw_config_set_secret_key(cfg, NULL) == KW_ERR_INVALID_ARG, "secret key NULL");
  kw_key_generate(sk);
  sk[40] ^= 1; /* the public half no longer matches the seed */
  CHECK(kw_config_set_secret_key(cfg, sk) == KW_ERR_INVALID_ARG, "inconsistent key");
  CHECK(kw_endpoint_new(NULL, &ep) == KW_ERR_INVALID_ARG, "endpoint_new(NULL)");
  CHECK(kw_endpoint_new(cfg, NULL) == KW_ERR_INVALID_ARG, "endpoint_new(cfg, NULL)");
  kw_config_free(cfg);
  kw_config_free(NULL); /* harmless */
  kw_endpoint_free(NULL);

  CHECK(kw_key_generate(NULL) == KW_ERR_INVALID_ARG, "key_generate(NULL)");
  CHECK(kw_key_id(NULL, id) == KW_ERR_INVALID_ARG, "key_id(NULL)");
  CHECK(kw_id_to_string(to->id, buf, 10) == KW_ERR_BUFFER, "id into 10 bytes");
  CHECK(kw_endpoint_post(NULL, never_runs, NULL) == KW_ERR_INVALID_ARG, "post(NULL)");
  CHECK(kw_endpoint_post(client, NULL, NULL) == KW_ERR_INVALID_ARG, "post(ep, NULL)");
  CHECK(kw_endpoint_close(NULL) == KW_ERR_INVALID_ARG, "close(NULL)");
  CHECK(kw_endpoint_get_addr(NULL, NULL) == KW_ERR_INVALID_ARG, "get_addr(NULL)");
  CHECK(kw_endpoint_run(NULL) == KW_ERR_INVALID_ARG, "run(NULL)");
  CHECK(kw_endpoint_start(NULL) == KW_ERR_INVALID_ARG, "start(NULL)");
  CHECK(kw_endpoint_start(client) == KW_ERR_STATE, "start twice");
  qt_call(client, bad_dials, (void *)to);

  /* with a live connection and stream */
  reset_outcomes();
  command = "nothing";
  CHECK(dial_wait(client, to, ALPN) == KW_OK, "connect");
  qt_call(client, bad_conn_args, NULL);
  QT_WAIT(atomic_load(&cli_closed_err) != -1, 5000);
}

static void test_error_strings(void) {
  int bad = 0;
  for (int a = KW_OK; a <= KW_ERR_UNREACHABLE; a++) {
    const char *s = kw_strerror((kw_err)a), *n = kw_errname((kw_err)a);
    if (!s || !n || !*s || !*n) {
      fprintf(stderr, "FAIL code %d has no text\n", a);
      bad++;
      continue;
    }
    for (int b = KW_OK; b < a; b++)
      if (!strcmp(s, kw_strerror((kw_err)b)) || !strcmp(n, kw_errname((kw_err)b))) {
        fprintf(stderr, "FAIL codes %d and %d share a text\n", a, b);
        bad++;
      }
  }
  CHECK(bad == 0, "%d problems with error texts", bad);
  CHECK(kw_strerror((kw_err)999) != NULL && kw_errname((kw_err)999) != NULL,
        "unknown code");
  CHECK(!strcmp(kw_errname(KW_ERR_KEY_MISMATCH), "KEY_MISMATCH"), "errname form");
}

int main(void) {
  qt_begin(120);
  kw_callbacks scb = {.conn_accepted = srv_accepted,
                      .conn_closed = srv_conn_closed,
                      .stream_data = srv_data,
                      .stream_closed = srv_stream_closed};
  kw_callbacks ccb = {.conn_closed = cli_conn_closed,
                      .stream_data = cli_data,
                      .stream_closed = cli_stream_closed};
  kw_endpoint *server = qt_endpoint(ALPN, &scb, NULL);
  qt_opts copts = {.log = cli_log};
  kw_endpoint *client = qt_endpoint_ex(&copts, &ccb, NULL);
  qt_opts qopts = {.connect_timeout_ms = 500};
  kw_endpoint *quick = qt_endpoint_ex(&qopts, &ccb, NULL);
  kw_endpoint_addr to = qt_addr(server, 4);

  test_wrong_key(client, to);
  command = NULL;
  kw_err e = dial_wait(client, &to, "not-" ALPN);
  CHECK(e == KW_ERR_ALPN, "wrong alpn: %s", kw_errname(e));
  test_timeout(quick, to);
  CHECK(atomic_load(&accepted) == 0, "the listener accepted %d failed dials",
        atomic_load(&accepted));

  test_close_codes(client, &to);
  test_client_close(client, &to);
  test_resets(client, &to);
  test_invalid_args(client, &to);
  test_error_strings();

  kw_endpoint_close(quick);
  kw_endpoint_close(client);
  kw_endpoint_close(server);
  kw_endpoint_free(quick);
  kw_endpoint_free(client);
  kw_endpoint_free(server);
  return qt_report();
}
