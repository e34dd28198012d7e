/* SPDX-License-Identifier: MIT */
/*
 * keyway listen / keyway connect: stdin and stdout joined to one
 * bidirectional QUIC stream, like netcat (ALPN keyway/pipe/1 unless
 * --alpn). With the default ALPN the dialer opens the stream and sends one
 * version byte (0x01) first, so the listener sees the stream even before
 * the dialer has data; everything after it is raw bytes
 * (docs/protocol/send.md, "pipe"). With any other ALPN (--alpn my-app/1)
 * the stream carries only the raw bytes, both ways: the other end can be
 * any program that opens (or accepts) one bidirectional stream, such as
 * the library example in README.md.
 *
 * A reader thread reads stdin in 256 KiB chunks into a queue bounded at
 * 8 MiB (it blocks beyond), and hands them to the loop with
 * cli_post; the loop gives each chunk of 64 KiB or more to the stream
 * whole, without a copy (kw_stream_write_owned; the stream releases it
 * once acknowledged), and copies shorter ones, as the stream's send
 * buffer allows. The reader is woken only when it waits
 * for room. Released chunks go back to a free list for the reader to
 * fill again (no malloc, page faults or munmap per chunk); the list holds
 * at most PIPE_POOL_MAX chunks, a chunk released beyond that is freed.
 * Bytes from the remote go to stdout from the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define PIPE_VERSION 0x01
#define PIPE_CHUNK (256 * 1024)
#define PIPE_QUEUE_MAX (8u << 20)
/* a chunk with fewer bytes (a short read from a pipe or a terminal) is
 * copied into the stream's buffer, which packs such reads together, and
 * is reused at once: a whole chunk is not held for a few bytes */
#define PIPE_OWN_MIN (64 * 1024)
/* how long the reader waits for more input to fill a chunk while earlier
 * chunks are still queued (it never waits when the queue is empty) */
#define PIPE_FILL_WAIT_MS 2
/* free chunks kept for reuse (16 MiB); never more chunks are alive than
 * the most that were in flight at once (queue + stream buffer) */
#define PIPE_POOL_MAX 64

typedef struct chunk {
  struct chunk *next;
  size_t len, off;
  uint8_t data[];
} chunk;

typedef struct pipe_state {
  cli *c;
  bool listener;
  kw_conn *conn;
  kw_stream *s;
  bool got_version; /* listener: the dialer's version byte was seen */
  bool raw;         /* a non-default ALPN: no version byte either way */
  bool local_close; /* we closed P.conn and said why already */
  /* stdin queue, shared with the reader thread */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  chunk *head, *tail;
  size_t queued;
  bool eof, posted, stopping;
  bool reader_waiting; /* the reader sleeps on cv until the queue drains */
  bool fin_sent;
  int stdin_err;
  uint64_t sent, received;
  bool out_broken;
  /* free chunks, shared by the reader (takes) and the loop (gives back
   * from chunk_release); its own lock, never held while calling keyway */
  pthread_mutex_t pool_mu;
  chunk *pool;
  size_t pooled;
} pipe_state;

static pipe_state P;

/* ---- stdin -----------------------------------------------------------------
 */

static void drain(kw_endpoint *ep, void *arg);

static chunk *chunk_get(void) {
  pthread_mutex_lock(&P.pool_mu);
  chunk *ch = P.pool;
  if (ch) {
    P.pool = ch->next;
    P.pooled--;
  }
  pthread_mutex_unlock(&P.pool_mu);
  return ch ? ch : malloc(sizeof *ch + PIPE_CHUNK);
}

static void chunk_put(chunk *ch) {
  pthread_mutex_lock(&P.pool_mu);
  bool keep = P.pooled < PIPE_POOL_MAX;
  if (keep) {
    ch->next = P.pool;
    P.pool = ch;
    P.pooled++;
  }
  pthread_mutex_unlock(&P.pool_mu);
  if (!keep)
    free(ch);
}

static void *reader(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&P.mu);
    while (P.queued >= PIPE_QUEUE_MAX && !P.stopping) {
      P.reader_waiting = true;
      pthread_cond_wait(&P.cv, &P.mu);
    }
    P.reader_waiting = false;
    bool stop = P.stopping;
    pthread_mutex_unlock(&P.mu);
    if (stop)
      return NULL;
    chunk *ch = chunk_get();
    if (!ch)
      return NULL;
    /* fill the chunk while stdin has bytes ready: one hand-over to the
     * loop per chunk, not per pipe-buffer's worth. While earlier chunks
     * still wait in the queue (the stream is behind), this one would not
     * go out sooner, so the reader waits up to PIPE_FILL_WAIT_MS for more
     * input rather than hand over a short chunk; otherwise it does not
     * wait at all. */
    ssize_t n = 0;
    size_t got = 0;
    for (;;) {
      do {
        n = read(0, ch->data + got, PIPE_CHUNK - got);
      } while (n < 0 && errno == EINTR);
      if (n <= 0)
        break;
      got += (size_t)n;
      if (got == PIPE_CHUNK)
        break;
      pthread_mutex_lock(&P.mu);
      int wait_ms = P.queued > 0 ? PIPE_FILL_WAIT_MS : 0;
      pthread_mutex_unlock(&P.mu);
      struct pollfd pfd = {.fd = 0, .events = POLLIN};
      if (poll(&pfd, 1, wait_ms) != 1)
        break;
    }
    if (got)
      n = (ssize_t)got;
    pthread_mutex_lock(&P.mu);
    if (n > 0) {
      ch->len = (size_t)n;
      ch->off = 0;
      ch->next = NULL;
      if (P.tail)
        P.tail->next = ch;
      else
        P.head = ch;
      P.tail = ch;
      P.queued += (size_t)n;
    } else {
      chunk_put(ch);
      P.eof = true;
      if (n < 0)
        P.stdin_err = errno;
    }
    bool post = !P.posted;
    P.posted = true;
    bool done = P.eof;
    pthread_mutex_unlock(&P.mu);
    if (post && cli_post(P.c, drain, NULL) != KW_OK)
      return NULL;
    if (done)
      return NULL;
  }
}

static void chunk_release(void *user, uint8_t *data) {
  (void)data;
  chunk_put(user);
}

/* Loop thread: moves queued stdin chunks into the stream, each whole and
 * uncopied; a short chunk (under PIPE_OWN_MIN) or one the stream cannot
 * take whole (a send buffer smaller than a chunk, or a partly copied one)
 * is copied as far as it fits. */
static void drain(kw_endpoint *ep, void *arg) {
  (void)ep;
  (void)arg;
  pthread_mutex_lock(&P.mu);
  P.posted = false;
  while (P.s && P.head) {
    chunk *ch = P.head;
    size_t left = ch->len - ch->off;
    kw_err e = KW_ERR_INVALID_ARG;
    if (ch->off == 0 && ch->len >= PIPE_OWN_MIN)
      e = kw_stream_write_owned(P.s, ch->data, ch->len, false, chunk_release,
                                ch);
    if (e == KW_OK) {
      P.sent += left;
      P.queued -= left;
      P.head = ch->next;
      if (!P.head)
        P.tail = NULL;
      continue; /* the stream frees ch */
    }
    if (e != KW_ERR_INVALID_ARG)
      break; /* KW_ERR_AGAIN: stream_writable resumes; or closed */
    size_t w = 0;
    e = kw_stream_write(P.s, ch->data + ch->off, left, false, &w);
    ch->off += w;
    P.sent += w;
    P.queued -= w;
    if (ch->off < ch->len || (e != KW_OK && e != KW_ERR_AGAIN))
      break;
    P.head = ch->next;
    if (!P.head)
      P.tail = NULL;
    chunk_put(ch);
  }
  if (P.reader_waiting && P.queued < PIPE_QUEUE_MAX)
    pthread_cond_broadcast(&P.cv);
  bool finish = P.s && P.eof && !P.head && !P.fin_sent;
  pthread_mutex_unlock(&P.mu);
  if (finish && kw_stream_finish(P.s) == KW_OK)
    P.fin_sent = true;
}

/* ---- the stream
 * -------------------------------------------------------------- */

static void write_out(const uint8_t *d, size_t n) {
  while (n && !P.out_broken) {
    ssize_t w = write(1, d, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      P.out_broken = true; /* stdout closed (EPIPE): see on_data */
      return;
    }
    d += w;
    n -= (size_t)w;
  }
}

/* Received bytes wait in outbuf and go to stdout in one write per loop
 * turn (a posted flush) or per full buffer, not one write per packet. */
#define OUT_BUF (256 * 1024)
static uint8_t outbuf[OUT_BUF];
static size_t outlen;
static bool out_flush_posted;

static void out_flush(void) {
  size_t n = outlen;
  outlen = 0;
  write_out(outbuf, n);
}

static void out_broken_stop(void);

static void out_flush_cb(kw_endpoint *ep, void *arg) {
  (void)ep;
  (void)arg;
  out_flush_posted = false;
  out_flush();
  if (P.out_broken && P.s)
    out_broken_stop();
}

static void out_add(const uint8_t *d, size_t n) {
  if (outlen + n > OUT_BUF)
    out_flush();
  if (n >= OUT_BUF) {
    write_out(d, n);
    return;
  }
  memcpy(outbuf + outlen, d, n);
  outlen += n;
  if (!out_flush_posted && cli_post(P.c, out_flush_cb, NULL) == KW_OK)
    out_flush_posted = true;
  else if (!out_flush_posted)
    out_flush();
}

static void attach(kw_stream *s) {
  P.s = s;
  kw_stream_set_user(s, &P);
  drain(P.c->ep, NULL);
}

static void finish_run(int code);

static void on_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  (void)u;
  (void)fin;
  if (s != P.s)
    return;
  if (P.listener && !P.raw && !P.got_version && n > 0) {
    if (d[0] != PIPE_VERSION) {
      kw_conn *conn = kw_stream_conn(s);
      P.s = NULL;
      P.local_close = true;
      kw_conn_close(conn, CLI_CODE_PROTOCOL, "not a keyway pipe");
      char idt[KW_ID_STRLEN + 1];
      uint8_t id[KW_ID_LEN];
      kw_conn_remote_id(conn, id);
      if (!P.c->once) {
        cli_info(P.c,
                 "peer %.10s: not a keyway pipe (first byte 0x%02x); "
                 "a program with its own protocol needs --alpn on both "
                 "sides",
                 cli_id(id, idt), d[0]);
        return;
      }
      cli_fail(P.c, KW_ERR_PARSE,
               "listen: %.10s does not speak keyway's pipe (first byte "
               "0x%02x); a program with its own protocol needs --alpn on "
               "both sides",
               cli_id(id, idt), d[0]);
      finish_run(1);
      return;
    }
    P.got_version = true;
    d++;
    n--;
  }
  P.received += n;
  out_add(d, n);
  if (fin)
    out_flush();
  if (P.out_broken)
    out_broken_stop();
}

/* nobody reads our output any more (`keyway connect T | head`): stop the
 * remote instead of discarding what it sends */
static void out_broken_stop(void) {
  kw_stream *s = P.s;
  if (s) {
    kw_conn *conn = kw_stream_conn(s);
    P.s = NULL;
    P.local_close = true;
    kw_stream_reset(s, CLI_CODE_OUTPUT);
    kw_conn_close(conn, CLI_CODE_OUTPUT, "output closed");
    cli_fail(P.c, KW_ERR_IO, "%s: standard output closed", P.c->cmd);
    finish_run(1);
  }
}

static void on_writable(kw_stream *s, void *u) {
  (void)u;
  if (s == P.s)
    drain(P.c->ep, NULL);
}

static void finish_run(int code) {
  out_flush();
  if (P.c->verbosity > 0 && !P.c->json)
    cli_info(P.c, "sent %llu bytes, received %llu bytes",
             (unsigned long long)P.sent, (unsigned long long)P.received);
  cli_done(P.c, code);
}

/* Loop thread, once at exit. */
static void exit_stats(cli *c) {
  cli_emit_stats(c, P.sent, P.received);
}

static void on_stream_closed(kw_stream *s, kw_err err, uint64_t code, void *u) {
  (void)u;
  if (s != P.s)
    return;
  out_flush();
  P.s = NULL;
  kw_conn *conn = kw_stream_conn(s);
  if (err != KW_OK) {
    char b[160];
    const char *why = cli_code_reason(code, b, sizeof b);
    P.local_close = true;
    kw_conn_close(conn, CLI_CODE_ERROR, "reset");
    if (P.listener && !P.c->once) {
      uint8_t id[KW_ID_LEN];
      char idt[KW_ID_STRLEN + 1];
      kw_conn_remote_id(conn, id);
      cli_info(P.c, "peer %.10s went: it reset the stream: %s", cli_id(id, idt),
               why);
      return;
    }
    cli_fail(P.c, err, "%s: the other side reset the stream: %s", P.c->cmd,
             why);
    finish_run(1);
    return;
  }
  /* both directions ended cleanly */
  kw_conn_close(conn, 0, "done");
  if (!P.listener || P.c->once)
    finish_run(0);
}

static void on_stream_opened(kw_stream *s, void *u) {
  (void)u;
  kw_conn *conn = kw_stream_conn(s);
  if (conn != P.conn || P.s) {
    kw_stream_reset(s, 1);
    return;
  }
  attach(s);
}

static void on_path(kw_conn *conn, const kw_path_info *p, void *u) {
  (void)u;
  if (conn == P.conn) /* not the ping connections */
    cli_emit_path(P.c, conn, p);
}

static void on_accepted(kw_conn *conn, void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(conn), CLI_ALPN_PING) == 0)
    return; /* answered by the datagram echo */
  if (P.conn) {
    kw_conn_close(conn, CLI_CODE_BUSY, "busy");
    return;
  }
  P.conn = conn;
  P.got_version = false;
  P.local_close = false;
  /* stdin may have ended with an earlier connection: then this one gets
   * our end of stream at once */
  pthread_mutex_lock(&P.mu);
  P.fin_sent = false;
  pthread_mutex_unlock(&P.mu);
  cli_emit_connected(P.c, conn);
  kw_path_info pi;
  kw_conn_path(conn, &pi);
  cli_emit_path(P.c, conn, &pi);
}

static void on_conn_closed(kw_conn *conn, kw_err err, uint64_t code, void *u) {
  (void)u;
  if (conn != P.conn)
    return;
  out_flush();
  P.conn = NULL;
  bool had_stream = P.s != NULL;
  P.s = NULL;
  bool local = P.local_close;
  P.local_close = false;
  if (P.listener && !P.c->once) {
    /* a serving listener reports the peer that went and goes on */
    bool clean =
        err == KW_OK || (err == KW_ERR_APP_CLOSED && code == CLI_CODE_DONE);
    if (had_stream || !clean) {
      cli_emit_disconnected(P.c, conn, err, code);
    } else if (!local) {
      uint8_t id[KW_ID_LEN];
      char idt[KW_ID_STRLEN + 1];
      kw_conn_remote_id(conn, id);
      cli_info(P.c, "peer %.10s: finished", cli_id(id, idt));
    }
    return;
  }
  if (local || !had_stream)
    return; /* the run's end was decided (and said) where we closed it */
  if (err == KW_ERR_APP_CLOSED && code == CLI_CODE_DONE) {
    /* the remote finished and closed before our stream close arrived */
    finish_run(0);
    return;
  }
  char b[160];
  cli_fail(P.c, err, "%s: %s", P.c->cmd,
           cli_close_reason(err, code, b, sizeof b));
  finish_run(1);
}

/* Loop thread, on SIGINT/SIGTERM: the peer learns this side stopped. */
static void on_interrupt(cli *c) {
  if (P.conn) {
    P.local_close = true;
    P.s = NULL;
    kw_conn_close(P.conn, CLI_CODE_INTERRUPTED, "interrupted");
  }
  cli_fail(c, KW_ERR_CLOSED, "%s: interrupted", c->cmd);
}

static void on_dgram(kw_conn *conn, const uint8_t *d, size_t n, void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(conn), CLI_ALPN_PING) == 0)
    kw_conn_send_datagram(conn, d, n); /* ping echo */
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

static int start(cli *c, bool listener) {
  P.c = c;
  c->exit_hook = exit_stats;
  c->interrupt_hook = on_interrupt;
  c->interrupt_exit = 130;
  P.listener = listener;
  P.raw = c->alpn && strcmp(c->alpn, CLI_ALPN_PIPE) != 0;
  pthread_mutex_init(&P.mu, NULL);
  pthread_mutex_init(&P.pool_mu, NULL);
  pthread_cond_init(&P.cv, NULL);
  return 0;
}

static int run(cli *c) {
  /* larger pipe buffers (ignored where not a pipe, or above the
   * system's limit): each stdin read takes more, and a whole OUT_BUF
   * flush fits in stdout's pipe in one write */
  (void)fcntl(0, F_SETPIPE_SZ, 1 << 20);
  (void)fcntl(1, F_SETPIPE_SZ, 1 << 20);
  pthread_t th;
  if (pthread_create(&th, NULL, reader, NULL) != 0)
    return cli_fail(c, KW_ERR_IO, "cannot start the stdin reader");
  pthread_detach(th);
  int code = cli_wait(c);
  pthread_mutex_lock(&P.mu);
  P.stopping = true;
  pthread_cond_broadcast(&P.cv);
  pthread_mutex_unlock(&P.mu);
  return code;
}

int cmd_listen(cli *c) {
  if (c->npos)
    return cli_usage_error(c, "listen takes no arguments");
  start(c, true);
  c->max_conns = 16; /* one pipe at a time, plus pings */
  const char *alpns[] = {c->alpn ? c->alpn : CLI_ALPN_PIPE, CLI_ALPN_PING,
                         NULL};
  kw_callbacks cbs = callbacks();
  int rc = cli_start_endpoint(c, alpns, &cbs, NULL);
  if (rc)
    return rc;
  rc = cli_emit_ticket(c);
  if (rc) {
    cli_done(c, rc);
    cli_wait(c);
    return rc;
  }
  return run(c);
}

/* ---- connect
 * ----------------------------------------------------------------- */

static kw_endpoint_addr target;

static void connected(kw_conn *conn, kw_err err, void *arg) {
  cli *c = arg;
  if (err != KW_OK) {
    cli_fail_connect(c, target.id, c->alpn ? c->alpn : CLI_ALPN_PIPE, err);
    cli_done(c, 1);
    return;
  }
  P.conn = conn;
  cli_emit_connected(c, conn);
  kw_path_info pi;
  kw_conn_path(conn, &pi);
  cli_emit_path(c, conn, &pi);
  kw_stream *s;
  if (kw_conn_open_stream(conn, true, &s) != KW_OK) {
    cli_fail(c, KW_ERR_STREAM_LIMIT, "cannot open a stream");
    cli_done(c, 1);
    return;
  }
  if (!P.raw) {
    uint8_t v = PIPE_VERSION;
    kw_stream_write(s, &v, 1, false, NULL);
  }
  attach(s);
}

static void dial(kw_endpoint *ep, void *arg) {
  cli *c = arg;
  kw_err e = kw_endpoint_connect(ep, &target, c->alpn ? c->alpn : CLI_ALPN_PIPE,
                                 connected, c);
  if (e != KW_OK) {
    cli_fail(c, e, "connect: %s",
             e == KW_ERR_NO_PATH ? cli_no_path_reason(c) : kw_strerror(e));
    cli_done(c, 1);
  }
}

int cmd_connect(cli *c) {
  if (c->npos != 1)
    return cli_usage_error(c, "connect takes one TARGET (a ticket or an id)");
  int rc = cli_parse_target(c, c->pos[0], &target);
  if (rc)
    return rc;
  start(c, false);
  kw_callbacks cbs = callbacks();
  rc = cli_start_endpoint(c, NULL, &cbs, NULL);
  if (rc)
    return rc;
  cli_post(c, dial, c);
  return run(c);
}
