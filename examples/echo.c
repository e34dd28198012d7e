/* SPDX-License-Identifier: MIT */
/*
 * echo — a keyway server that echoes every stream back, and a client that
 * sends the lines of stdin and prints the replies.
 *
 *   echo server           prints a ticket, then echoes until killed
 *   echo client TICKET    sends stdin line by line, prints each reply
 *
 * Shows: creating an endpoint, printing its ticket, accepting connections,
 * streams with back-pressure (manual consume), dialing by ticket, and
 * driving an endpoint from another thread with kw_endpoint_post.
 */
#define _POSIX_C_SOURCE 200809L /* getline, strdup */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyway.h>

#define ALPN "keyway-example/echo"

static int fail(const char *what, kw_err err) {
  fprintf(stderr, "echo: %s: %s\n", what, kw_strerror(err));
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Server                                                                    */

/* Bytes received but not yet echoed. With manual consume, the remote may
 * only send as much as we have echoed plus one flow-control window, so this
 * buffer stays bounded however fast the client is. */
typedef struct pending {
  uint8_t *buf;
  size_t len, cap;
  bool fin_in, fin_out;
} pending;

static void echo_flush(kw_stream *s) {
  pending *p = kw_stream_get_user(s);
  if (p->fin_out || (p->len == 0 && !p->fin_in))
    return;
  size_t n = 0;
  kw_err err = kw_stream_write(s, p->buf, p->len, p->fin_in, &n);
  if (err != KW_OK && err != KW_ERR_AGAIN) {
    kw_stream_reset(s, 1);
    return;
  }
  if (n)
    memmove(p->buf, p->buf + n, p->len - n);
  p->len -= n;
  p->fin_out = p->fin_in && p->len == 0;
  kw_stream_consume(s, n); /* the remote may send n more bytes */
}

static void on_stream_opened(kw_stream *s, void *user) {
  kw_stream_set_user(s, calloc(1, sizeof(pending)));
  kw_stream_set_manual_consume(s, true);
}

static void on_stream_data(kw_stream *s, const uint8_t *data, size_t len,
                           bool fin, void *user) {
  pending *p = kw_stream_get_user(s);
  if (p->len + len > p->cap) {
    size_t cap = (p->len + len) * 2;
    uint8_t *buf = realloc(p->buf, cap);
    if (!buf) {
      kw_stream_reset(s, 2);
      return;
    }
    p->buf = buf;
    p->cap = cap;
  }
  if (len) /* data may be NULL when len is 0 */
    memcpy(p->buf + p->len, data, len);
  p->len += len;
  p->fin_in = p->fin_in || fin;
  echo_flush(s);
}

static void on_stream_writable(kw_stream *s, void *user) { echo_flush(s); }

static void on_stream_closed(kw_stream *s, kw_err err, uint64_t code,
                             void *user) {
  pending *p = kw_stream_get_user(s);
  free(p->buf);
  free(p);
}

static void on_conn_accepted(kw_conn *c, void *user) {
  uint8_t id[KW_ID_LEN];
  char name[KW_ID_STRLEN + 1];
  kw_conn_remote_id(c, id);
  kw_id_to_string(id, name, sizeof name);
  fprintf(stderr, "connection from %s\n", name);
}

static int run_server(void) {
  kw_callbacks cbs = {
      .conn_accepted = on_conn_accepted,
      .stream_opened = on_stream_opened,
      .stream_data = on_stream_data,
      .stream_writable = on_stream_writable,
      .stream_closed = on_stream_closed,
  };
  kw_config *cfg;
  kw_endpoint *ep;
  kw_err err = kw_config_new(&cfg);
  if (err)
    return fail("config", err);
  kw_config_add_alpn(cfg, ALPN);
  kw_config_set_callbacks(cfg, &cbs, NULL);
  err = kw_endpoint_new(cfg, &ep); /* a fresh key: a new identity each run */
  kw_config_free(cfg);
  if (err)
    return fail("endpoint", err);

  kw_endpoint_addr addr;
  char ticket[KW_TICKET_MAX];
  kw_endpoint_get_addr(ep, &addr);
  kw_ticket_encode(&addr, ticket, sizeof ticket);
  printf("%s\n", ticket);
  fflush(stdout);

  err = kw_endpoint_run(ep); /* serves until the process is killed */
  kw_endpoint_free(ep);
  return err ? fail("loop", err) : 0;
}

/* ------------------------------------------------------------------------ */
/* Client                                                                    */

/* What the main thread waits for; callbacks on the loop thread update it. */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool connected, done;
  kw_err err;
  size_t sent, echoed;
} st = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void update(bool *flag, kw_err err, size_t echoed) {
  pthread_mutex_lock(&st.mu);
  if (flag)
    *flag = true;
  if (err && !st.err)
    st.err = err;
  st.echoed += echoed;
  pthread_cond_broadcast(&st.cv);
  pthread_mutex_unlock(&st.mu);
}

/* Main thread: waits until `*flag` is set, or `sent` bytes came back, or
 * the connection ended. */
static kw_err wait_for(const bool *flag, size_t sent) {
  pthread_mutex_lock(&st.mu);
  st.sent += sent;
  bool ok;
  while (!(ok = flag ? *flag : st.echoed >= st.sent) && !st.done)
    pthread_cond_wait(&st.cv, &st.mu);
  kw_err err = st.err ? st.err : ok ? KW_OK : KW_ERR_CLOSED;
  pthread_mutex_unlock(&st.mu);
  return err;
}

/* Loop-thread state: the stream (NULL once gone), the line being sent. */
static kw_stream *stream;
static kw_endpoint_addr server;
static char *out;
static size_t out_len, out_off;

static void pump(void) {
  size_t n = 0;
  kw_err err = kw_stream_write(stream, (const uint8_t *)out + out_off,
                               out_len - out_off, false, &n);
  out_off += n;
  if (err && err != KW_ERR_AGAIN)
    update(&st.done, err, 0);
  /* a short write: on_writable continues */
}

static void on_writable(kw_stream *s, void *user) {
  if (out_off < out_len)
    pump();
}

static void on_gone(kw_stream *s, kw_err err, uint64_t code, void *user) {
  stream = NULL;
  update(&st.done, err, 0);
}

static void on_reply(kw_stream *s, const uint8_t *data, size_t len, bool fin,
                     void *user) {
  if (len)
    fwrite(data, 1, len, stdout);
  fflush(stdout);
  update(fin ? &st.done : NULL, KW_OK, len);
}

static void on_closed(kw_conn *c, kw_err err, uint64_t code, void *user) {
  stream = NULL;
  update(&st.done, err == KW_ERR_APP_CLOSED && code == 0 ? KW_OK : err, 0);
}

static void on_connected(kw_conn *c, kw_err err, void *arg) {
  if (err == KW_OK)
    err = kw_conn_open_stream(c, true, &stream);
  update(&st.connected, err, 0);
}

/* Posted from the main thread: these run on the loop thread. */
static void dial(kw_endpoint *ep, void *arg) {
  kw_err err = kw_endpoint_connect(ep, &server, ALPN, on_connected, NULL);
  if (err)
    update(&st.connected, err, 0);
}

static void send_line(kw_endpoint *ep, void *line) {
  free(out);
  out = line;
  out_len = strlen(out);
  out_off = 0;
  if (stream)
    pump();
}

static void finish(kw_endpoint *ep, void *arg) {
  if (stream)
    kw_stream_finish(stream);
}

static int run_client(const char *ticket) {
  const char *why = NULL;
  kw_err err = kw_ticket_decode(ticket, &server, &why);
  if (err) {
    fprintf(stderr, "echo: bad ticket: %s\n", why);
    return 2;
  }
  kw_callbacks cbs = {
      .conn_closed = on_closed,
      .stream_data = on_reply,
      .stream_writable = on_writable,
      .stream_closed = on_gone,
  };
  kw_config *cfg;
  kw_endpoint *ep;
  err = kw_config_new(&cfg);
  if (err)
    return fail("config", err);
  kw_config_set_callbacks(cfg, &cbs, NULL);
  err = kw_endpoint_new(cfg, &ep);
  kw_config_free(cfg);
  if (err)
    return fail("endpoint", err);
  kw_endpoint_start(ep); /* the loop runs on a library thread */
  kw_endpoint_post(ep, dial, NULL);
  err = wait_for(&st.connected, 0);

  /* one line at a time: send it, wait for its echo */
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while (!err && (n = getline(&line, &cap, stdin)) > 0) {
    kw_endpoint_post(ep, send_line, strdup(line));
    err = wait_for(NULL, (size_t)n);
  }
  free(line);

  /* end of input: finish our direction, wait for the server to finish its */
  if (!err) {
    kw_endpoint_post(ep, finish, NULL);
    err = wait_for(&st.done, 0);
  }

  kw_endpoint_close(ep); /* closes the connection, joins the loop thread */
  kw_endpoint_free(ep);
  free(out);
  return err ? fail("connection", err) : 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "server") == 0)
    return run_server();
  if (argc == 3 && strcmp(argv[1], "client") == 0)
    return run_client(argv[2]);
  fprintf(stderr, "usage: echo server\n       echo client TICKET\n");
  return 2;
}
