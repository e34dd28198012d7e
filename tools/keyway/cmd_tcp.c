/* SPDX-License-Identifier: MIT */
/*
 * keyway listen-tcp --to HOST:PORT / keyway connect-tcp --from ADDR:PORT
 * TARGET: TCP forwarding over one QUIC connection, as dumbpipe does.
 * connect-tcp accepts TCP connections on ADDR:PORT; each becomes one
 * bidirectional stream (ALPN keyway/tcp/1 unless --alpn) to the
 * listen-tcp endpoint, which opens a TCP connection to HOST:PORT for it.
 * The dialer's first byte on a stream is a version byte (0x01), so the
 * listener sees the stream at once even for services that speak first.
 *
 * Half-close: a TCP end of stream becomes the stream's fin, and a fin
 * becomes shutdown(SHUT_WR) on the other TCP connection; the TCP
 * connections close once both directions are done. A TCP error resets the
 * stream, and a reset closes the TCP connection.
 *
 * Back-pressure: one thread owns the TCP sockets (poll on non-blocking
 * sockets; a pipe wakes it). It stops reading a socket while more than
 * TCP_UP_MAX bytes wait for the stream's send buffer, and the stream is
 * in manual-consume mode: flow-control credit goes back to the remote only
 * for bytes the TCP socket took, so a slow TCP reader slows the remote.
 *
 * Threads: the endpoint's loop thread owns the streams, the TCP thread
 * the sockets; each connection's queues are shared under T.mu. Only the
 * TCP thread frees a connection, once the loop has let go of its stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define TCP_VERSION 0x01
#define TCP_CHUNK (64 * 1024)
#define TCP_UP_MAX (1u << 20) /* TCP -> stream bytes queued before we stop */
#define TCP_MAX_CONNS 1024

typedef struct chunk {
  struct chunk *next;
  size_t len, off;
  uint8_t data[];
} chunk;

typedef struct tconn {
  struct tconn *next;
  unsigned n; /* a number for the log */
  int fd;     /* TCP thread; -1 once closed */
  bool connecting; /* listen-tcp: the connect to --to is under way */
  /* loop thread (under T.mu for the TCP thread to see) */
  kw_stream *s; /* NULL once the loop let go of it */
  kw_conn *conn;
  bool need_open;   /* connect-tcp: a stream is to be opened */
  bool got_version; /* listen-tcp: the dialer's version byte was seen */
  bool stream_gone; /* the stream ended (closed, reset, its conn went) */
  bool reset;       /* ... by a reset: drop what is queued */
  bool fin_sent;
  /* TCP -> stream */
  chunk *up_head, *up_tail;
  size_t up_bytes;
  bool up_eof;
  bool tcp_error; /* reading or writing the socket failed */
  int tcp_errno;
  bool refused;   /* listen-tcp: the connect to --to failed */
  /* stream -> TCP */
  chunk *down_head, *down_tail;
  size_t down_bytes;
  bool down_fin;
  bool wr_shut;
  size_t to_consume; /* bytes the socket took: credit for the remote */
} tconn;

static struct {
  cli *c;
  bool listener;
  pthread_mutex_t mu;
  tconn *conns;
  unsigned nconns, next_n;
  int wake[2];
  bool posted;
  bool stopping;
  int lfd;                    /* connect-tcp: the TCP listening socket */
  struct sockaddr_storage to; /* listen-tcp: --to */
  socklen_t to_len;
  kw_conn *conn;              /* connect-tcp: the one QUIC connection */
  bool interrupted;           /* loop thread: Ctrl-C closed the conns */
  kw_endpoint_addr target;
  const char *alpn;
} T = {.lfd = -1, .wake = {-1, -1}};

static void wake_tcp(void) {
  char b = 1;
  ssize_t r = write(T.wake[1], &b, 1);
  (void)r; /* a full pipe is awake already */
}

static void loop_drain(kw_endpoint *ep, void *arg);

/* Under T.mu: have the loop look at the connections. */
static void post_loop(void) {
  if (T.posted || T.stopping)
    return;
  T.posted = true;
  if (cli_post(T.c, loop_drain, NULL) != KW_OK)
    T.posted = false;
}

static void push(chunk **head, chunk **tail, chunk *ch) {
  ch->next = NULL;
  if (*tail)
    (*tail)->next = ch;
  else
    *head = ch;
  *tail = ch;
}

static void free_chunks(chunk *ch) {
  while (ch) {
    chunk *n = ch->next;
    free(ch);
    ch = n;
  }
}

static tconn *tconn_new(int fd) {
  tconn *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->fd = fd;
  t->n = ++T.next_n;
  t->next = T.conns;
  T.conns = t;
  T.nconns++;
  return t;
}

/* ---- the loop thread ------------------------------------------------------ */

static void let_go(tconn *t) { /* under T.mu */
  t->s = NULL;
  t->stream_gone = true;
}

static void stream_reset_for_tcp(tconn *t) {
  uint64_t code = t->refused ? CLI_CODE_REFUSED : CLI_CODE_ERROR;
  kw_stream_reset(t->s, code);
  if (T.c->verbosity > 0 || t->refused) /* an operator wants to know that */
    cli_info(T.c, "tcp #%u: %s%s%s: stream reset", t->n,
             t->refused ? "connecting to the service failed" : "TCP error",
             t->tcp_errno ? ": " : "",
             t->tcp_errno ? strerror(t->tcp_errno) : "");
  kw_stream_set_user(t->s, NULL);
  t->reset = true;
  let_go(t);
}

static void open_stream(tconn *t) {
  kw_stream *s;
  if (!T.conn || kw_conn_open_stream(T.conn, true, &s) != KW_OK)
    return; /* retried on the next round (stream credit comes back) */
  t->need_open = false;
  t->s = s;
  t->conn = T.conn;
  kw_stream_set_user(s, t);
  kw_stream_set_manual_consume(s, true);
  uint8_t v = TCP_VERSION;
  kw_stream_write(s, &v, 1, false, NULL);
}

/* Moves queued TCP bytes into streams, sends fins, returns credit. */
static void loop_drain(kw_endpoint *ep, void *arg) {
  (void)ep;
  (void)arg;
  bool wake = false;
  pthread_mutex_lock(&T.mu);
  T.posted = false;
  for (tconn *t = T.conns; t; t = t->next) {
    if (t->need_open && !t->stream_gone)
      open_stream(t);
    if (!t->s)
      continue;
    if (t->tcp_error) {
      stream_reset_for_tcp(t);
      wake = true;
      continue;
    }
    while (t->up_head) {
      chunk *ch = t->up_head;
      size_t w = 0;
      kw_err e = kw_stream_write(t->s, ch->data + ch->off, ch->len - ch->off,
                                 false, &w);
      ch->off += w;
      t->up_bytes -= w;
      if (w)
        wake = true; /* the socket may be read again */
      if (ch->off < ch->len || (e != KW_OK && e != KW_ERR_AGAIN))
        break; /* the stream is full: stream_writable brings us back */
      t->up_head = ch->next;
      if (!t->up_head)
        t->up_tail = NULL;
      free(ch);
    }
    if (t->up_eof && !t->up_head && !t->fin_sent &&
        kw_stream_finish(t->s) == KW_OK)
      t->fin_sent = true;
    if (t->to_consume) {
      kw_stream_consume(t->s, t->to_consume);
      t->to_consume = 0;
    }
  }
  pthread_mutex_unlock(&T.mu);
  if (wake)
    wake_tcp();
}

static void on_writable(kw_stream *s, void *u) {
  (void)u;
  if (kw_stream_get_user(s))
    loop_drain(NULL, NULL);
}

static void on_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  (void)u;
  tconn *t = kw_stream_get_user(s);
  if (!t)
    return;
  pthread_mutex_lock(&T.mu);
  if (T.listener && !t->got_version && n > 0) {
    if (d[0] != TCP_VERSION) {
      kw_stream_reset(s, CLI_CODE_PROTOCOL);
      kw_stream_set_user(s, NULL);
      t->reset = true;
      let_go(t);
      pthread_mutex_unlock(&T.mu);
      wake_tcp();
      return;
    }
    t->got_version = true;
    d++;
    n--;
    kw_stream_consume(s, 1);
  }
  if (n) {
    chunk *ch = malloc(sizeof *ch + n);
    if (ch) {
      memcpy(ch->data, d, n);
      ch->len = n;
      ch->off = 0;
      push(&t->down_head, &t->down_tail, ch);
      t->down_bytes += n;
    }
  }
  if (fin)
    t->down_fin = true;
  pthread_mutex_unlock(&T.mu);
  wake_tcp();
}

static void on_stream_closed(kw_stream *s, kw_err err, uint64_t code,
                             void *u) {
  (void)u;
  tconn *t = kw_stream_get_user(s);
  if (!t)
    return;
  pthread_mutex_lock(&T.mu);
  if (err != KW_OK) {
    t->reset = true;
    if (T.c->verbosity > 0) {
      char b[96];
      cli_info(T.c, "tcp #%u: the other side reset the stream: %s", t->n,
               cli_code_reason(code, b, sizeof b));
    }
  }
  let_go(t);
  pthread_mutex_unlock(&T.mu);
  wake_tcp();
}

/* listen-tcp: a dialer opened a stream: connect to --to for it. */
static void on_stream_opened(kw_stream *s, void *u) {
  (void)u;
  if (!T.listener) {
    kw_stream_reset(s, CLI_CODE_PROTOCOL);
    return;
  }
  int fd = socket(T.to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  pthread_mutex_lock(&T.mu);
  tconn *t = fd >= 0 && T.nconns < TCP_MAX_CONNS ? tconn_new(fd) : NULL;
  if (!t) {
    pthread_mutex_unlock(&T.mu);
    if (fd >= 0)
      close(fd);
    kw_stream_reset(s, CLI_CODE_BUSY);
    return;
  }
  t->s = s;
  t->conn = kw_stream_conn(s);
  kw_stream_set_user(s, t);
  kw_stream_set_manual_consume(s, true);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&T.to, T.to_len) != 0 &&
      errno != EINPROGRESS) {
    t->tcp_error = t->refused = true;
    t->tcp_errno = errno;
    post_loop();
  } else {
    t->connecting = true;
  }
  unsigned n = t->n;
  pthread_mutex_unlock(&T.mu);
  if (T.c->verbosity > 0)
    cli_info(T.c, "tcp #%u: new stream, connecting to the service", n);
  wake_tcp();
}

static void conn_gone(kw_conn *conn) {
  pthread_mutex_lock(&T.mu);
  for (tconn *t = T.conns; t; t = t->next)
    if (t->conn == conn || (t->need_open && conn == T.conn)) {
      if (t->s)
        kw_stream_set_user(t->s, NULL);
      t->reset = true;
      t->need_open = false;
      let_go(t);
    }
  pthread_mutex_unlock(&T.mu);
  wake_tcp();
}

/* listen-tcp's connections (loop thread), to close them on Ctrl-C */
static kw_conn *accepted[64];

static void on_accepted(kw_conn *conn, void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(conn), CLI_ALPN_PING) == 0)
    return;
  for (size_t i = 0; i < 64; i++)
    if (!accepted[i]) {
      accepted[i] = conn;
      break;
    }
  cli_emit_connected(T.c, conn);
  kw_path_info pi;
  kw_conn_path(conn, &pi);
  cli_emit_path(T.c, conn, &pi);
}

static void on_conn_closed(kw_conn *conn, kw_err err, uint64_t code,
                           void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(conn), CLI_ALPN_PING) == 0)
    return;
  conn_gone(conn);
  for (size_t i = 0; i < 64; i++)
    if (accepted[i] == conn)
      accepted[i] = NULL;
  if (T.listener) {
    cli_emit_disconnected(T.c, conn, err, code);
    return;
  }
  if (conn == T.conn && T.interrupted) {
    pthread_mutex_lock(&T.mu);
    T.conn = NULL;
    pthread_mutex_unlock(&T.mu);
  } else if (conn == T.conn) {
    pthread_mutex_lock(&T.mu);
    T.conn = NULL;
    pthread_mutex_unlock(&T.mu);
    char b[160];
    cli_fail(T.c, err, "connect-tcp: %s",
             cli_close_reason(err, code, b, sizeof b));
    cli_done(T.c, 1);
  }
}

static void on_path(kw_conn *conn, const kw_path_info *p, void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(conn), CLI_ALPN_PING) != 0)
    cli_emit_path(T.c, conn, p);
}

static void on_dgram(kw_conn *conn, const uint8_t *d, size_t n, void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(conn), CLI_ALPN_PING) == 0)
    kw_conn_send_datagram(conn, d, n); /* ping echo */
}

/* Loop thread, on Ctrl-C: the other side learns this one stopped. */
static void on_interrupt(cli *c) {
  T.interrupted = true;
  for (size_t i = 0; i < 64; i++)
    if (accepted[i])
      kw_conn_close(accepted[i], CLI_CODE_INTERRUPTED, "interrupted");
  if (T.conn)
    kw_conn_close(T.conn, CLI_CODE_INTERRUPTED, "interrupted");
  cli_fail(c, KW_ERR_CLOSED, "%s: interrupted", c->cmd);
}

/* ---- the TCP thread ------------------------------------------------------- */

static void close_tcp(tconn *t) {
  if (t->fd >= 0) {
    if (t->reset) { /* an abortive close: the peer sees the failure */
      struct linger l = {1, 0};
      setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(t->fd);
    t->fd = -1;
  }
}

/* Under T.mu. True when t is done and was freed. */
static bool reap(tconn **pp) {
  tconn *t = *pp;
  bool flushed = !t->down_head && (t->wr_shut || t->fd < 0);
  if (!t->stream_gone || t->need_open || (!t->reset && !flushed))
    return false;
  close_tcp(t);
  *pp = t->next;
  T.nconns--;
  free_chunks(t->up_head);
  free_chunks(t->down_head);
  if (T.c->verbosity > 0)
    cli_info(T.c, "tcp #%u: closed", t->n);
  free(t);
  return true;
}

static void tcp_read(tconn *t) {
  chunk *ch = malloc(sizeof *ch + TCP_CHUNK);
  if (!ch)
    return;
  ssize_t n = read(t->fd, ch->data, TCP_CHUNK);
  if (n > 0) {
    ch->len = (size_t)n;
    ch->off = 0;
    push(&t->up_head, &t->up_tail, ch);
    t->up_bytes += (size_t)n;
    post_loop();
    return;
  }
  free(ch);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n < 0) {
    t->tcp_error = true;
    t->tcp_errno = errno;
  }
  t->up_eof = true; /* end of stream: the fin follows the queued bytes */
  post_loop();
}

static void tcp_write(tconn *t) {
  while (t->down_head) {
    chunk *ch = t->down_head;
    ssize_t n = send(t->fd, ch->data + ch->off, ch->len - ch->off,
                     MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return;
      t->tcp_error = true;
      t->tcp_errno = errno;
      free_chunks(t->down_head);
      t->down_head = t->down_tail = NULL;
      t->down_bytes = 0;
      post_loop();
      return;
    }
    ch->off += (size_t)n;
    t->down_bytes -= (size_t)n;
    t->to_consume += (size_t)n;
    if (ch->off == ch->len) {
      t->down_head = ch->next;
      if (!t->down_head)
        t->down_tail = NULL;
      free(ch);
    }
  }
  post_loop(); /* the credit */
}

static void tcp_accept(void) {
  for (;;) {
    int fd = accept4(T.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    if (T.nconns >= TCP_MAX_CONNS || !T.conn) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    tconn *t = tconn_new(fd);
    if (!t) {
      close(fd);
      continue;
    }
    t->need_open = true;
    if (T.c->verbosity > 0)
      cli_info(T.c, "tcp #%u: accepted, opening a stream", t->n);
    post_loop();
  }
}

static void *tcp_thread(void *arg) {
  (void)arg;
  struct pollfd *pf = NULL;
  tconn **who = NULL;
  size_t cap = 0;
  pthread_mutex_lock(&T.mu);
  while (!T.stopping) {
    size_t need = T.nconns + 2;
    if (need > cap) {
      cap = need * 2;
      pf = realloc(pf, cap * sizeof *pf);
      who = realloc(who, cap * sizeof *who);
      if (!pf || !who)
        break;
    }
    size_t n = 0;
    pf[n] = (struct pollfd){.fd = T.wake[0], .events = POLLIN};
    who[n++] = NULL;
    if (T.lfd >= 0 && T.conn) {
      pf[n] = (struct pollfd){.fd = T.lfd, .events = POLLIN};
      who[n++] = NULL;
    }
    bool pending_open = false;
    for (tconn **pp = &T.conns; *pp;) {
      tconn *t = *pp;
      if (t->fd >= 0 && !t->wr_shut && t->down_fin && !t->down_head &&
          !t->connecting) {
        shutdown(t->fd, SHUT_WR); /* the stream's fin: a TCP half-close */
        t->wr_shut = true;
      }
      if (reap(pp))
        continue;
      pp = &t->next;
      pending_open = pending_open || t->need_open;
      if (t->fd < 0)
        continue;
      short ev = 0;
      if (t->connecting)
        ev = POLLOUT;
      else {
        if (!t->up_eof && !t->stream_gone && t->up_bytes < TCP_UP_MAX)
          ev |= POLLIN;
        if (t->down_head && !t->tcp_error)
          ev |= POLLOUT;
      }
      /* nothing wanted: leave it out (a hung-up socket would wake us) */
      pf[n] = (struct pollfd){.fd = ev ? t->fd : -1, .events = ev};
      who[n++] = t;
    }
    pthread_mutex_unlock(&T.mu);
    int r = poll(pf, n, pending_open ? 50 : 1000);
    pthread_mutex_lock(&T.mu);
    if (r < 0)
      continue;
    if (pending_open)
      post_loop(); /* retry opening streams the remote had no credit for */
    for (size_t i = 0; i < n; i++) {
      if (!pf[i].revents)
        continue;
      if (pf[i].fd == T.wake[0] && !who[i]) {
        char b[256];
        while (read(T.wake[0], b, sizeof b) > 0) {
        }
        continue;
      }
      if (!who[i]) {
        tcp_accept();
        continue;
      }
      tconn *t = who[i]; /* not freed: only this thread frees */
      if (t->connecting) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        t->connecting = false;
        if (err) {
          t->tcp_error = t->refused = true;
          t->tcp_errno = err;
          t->up_eof = true;
          post_loop();
        }
        continue;
      }
      if ((pf[i].revents & (POLLOUT | POLLERR | POLLHUP)) && !t->tcp_error)
        tcp_write(t);
      if (pf[i].revents & (POLLIN | POLLERR | POLLHUP))
        if (!t->up_eof && !t->stream_gone)
          tcp_read(t);
    }
  }
  pthread_mutex_unlock(&T.mu);
  free(pf);
  free(who);
  return NULL;
}

/* ---- set-up ---------------------------------------------------------------- */

static int resolve(cli *c, const char *opt, const char *s,
                   struct sockaddr_storage *out, socklen_t *len,
                   bool passive) {
  char host[256], port[16];
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || !colon[1] ||
      (size_t)(colon - s) >= sizeof host || strlen(colon + 1) >= sizeof port)
    return cli_usage_error(c, "%s %s: not HOST:PORT", opt, s);
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  snprintf(port, sizeof port, "%s", colon + 1);
  if (host[0] == '[' && host[strlen(host) - 1] == ']') {
    memmove(host, host + 1, strlen(host));
    host[strlen(host) - 1] = 0;
  }
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  int e = getaddrinfo(host, port, &hints, &ai);
  if (e != 0 || !ai)
    return cli_fail(c, KW_ERR_ADDR, "%s %s: %s", opt, s,
                    e ? gai_strerror(e) : "no address");
  memcpy(out, ai->ai_addr, ai->ai_addrlen);
  *len = ai->ai_addrlen;
  freeaddrinfo(ai);
  return 0;
}

static int start_common(cli *c, bool listener) {
  T.c = c;
  T.listener = listener;
  T.alpn = c->alpn ? c->alpn : CLI_ALPN_TCP;
  pthread_mutex_init(&T.mu, NULL);
  if (pipe2(T.wake, O_NONBLOCK | O_CLOEXEC) != 0)
    return cli_fail(c, KW_ERR_IO, "pipe: %s", strerror(errno));
  c->interrupt_hook = on_interrupt;
  return 0;
}

static kw_callbacks callbacks(void) {
  kw_callbacks cbs = {0};
  cbs.conn_accepted = on_accepted;
  cbs.conn_closed = on_conn_closed;
  cbs.stream_opened = on_stream_opened;
  cbs.stream_data = on_data;
  cbs.stream_writable = on_writable;
  cbs.stream_closed = on_stream_closed;
  cbs.datagram = on_dgram;
  cbs.path_changed = on_path;
  return cbs;
}

static int run(cli *c) {
  pthread_t th;
  if (pthread_create(&th, NULL, tcp_thread, NULL) != 0) {
    cli_done(c, 1);
    cli_wait(c);
    return cli_fail(c, KW_ERR_IO, "cannot start the TCP thread");
  }
  /* the run's end: stop the TCP thread first, while the endpoint it
   * posts to still exists; cli_wait then closes and frees it */
  pthread_mutex_lock(&c->mu);
  while (!c->finished)
    pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
  pthread_mutex_lock(&T.mu);
  T.stopping = true;
  pthread_mutex_unlock(&T.mu);
  wake_tcp();
  pthread_join(th, NULL);
  int code = cli_wait(c);
  for (tconn *t = T.conns; t; t = t->next)
    if (t->fd >= 0)
      close(t->fd);
  if (T.lfd >= 0)
    close(T.lfd);
  return code;
}

int cmd_listen_tcp(cli *c) {
  if (c->npos)
    return cli_usage_error(c, "listen-tcp takes no arguments (the service "
                              "is --to HOST:PORT)");
  if (!c->to)
    return cli_usage_error(c, "listen-tcp needs --to HOST:PORT (the TCP "
                              "service to expose)");
  int rc = resolve(c, "--to", c->to, &T.to, &T.to_len, false);
  if (rc)
    return rc;
  if ((rc = start_common(c, true)))
    return rc;
  const char *alpns[] = {T.alpn, CLI_ALPN_PING, NULL};
  kw_callbacks cbs = callbacks();
  rc = cli_start_endpoint(c, alpns, &cbs, NULL);
  if (rc)
    return rc;
  rc = cli_emit_ticket(c);
  if (rc) {
    cli_done(c, rc);
    cli_wait(c);
    return rc;
  }
  cli_info(c, "forwarding streams to TCP %s", c->to);
  return run(c);
}

static void connected(kw_conn *conn, kw_err err, void *arg) {
  cli *c = arg;
  if (err != KW_OK) {
    cli_fail_connect(c, T.target.id, T.alpn, err);
    cli_done(c, 1);
    return;
  }
  pthread_mutex_lock(&T.mu);
  T.conn = conn;
  pthread_mutex_unlock(&T.mu);
  cli_emit_connected(c, conn);
  kw_path_info pi;
  kw_conn_path(conn, &pi);
  cli_emit_path(c, conn, &pi);
  cli_info(c, "accepting TCP on %s", c->from);
  wake_tcp(); /* the TCP thread accepts from now on */
}

static void dial(kw_endpoint *ep, void *arg) {
  cli *c = arg;
  kw_err e = kw_endpoint_connect(ep, &T.target, T.alpn, connected, c);
  if (e != KW_OK) {
    cli_fail(c, e, "connect-tcp: %s",
             e == KW_ERR_NO_PATH ? cli_no_path_reason(c) : kw_strerror(e));
    cli_done(c, 1);
  }
}

int cmd_connect_tcp(cli *c) {
  if (c->npos != 1)
    return cli_usage_error(c, "connect-tcp takes one TARGET (a ticket or an "
                              "id)");
  if (!c->from)
    return cli_usage_error(c, "connect-tcp needs --from ADDR:PORT (where to "
                              "accept TCP connections)");
  int rc = cli_parse_target(c, c->pos[0], &T.target);
  if (rc)
    return rc;
  struct sockaddr_storage ss;
  socklen_t sl;
  if ((rc = resolve(c, "--from", c->from, &ss, &sl, true)))
    return rc;
  T.lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (T.lfd >= 0)
    setsockopt(T.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (T.lfd < 0 || bind(T.lfd, (struct sockaddr *)&ss, sl) != 0 ||
      listen(T.lfd, 128) != 0)
    return cli_fail(c, KW_ERR_ADDR, "--from %s: %s", c->from,
                    strerror(errno));
  if ((rc = start_common(c, false)))
    return rc;
  kw_callbacks cbs = callbacks();
  rc = cli_start_endpoint(c, NULL, &cbs, NULL);
  if (rc)
    return rc;
  cli_post(c, dial, c);
  return run(c);
}
