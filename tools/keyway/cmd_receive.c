/*
 * keyway receive TICKET [-o DIR]: fetches what a `keyway send` offers over
 * keyway/send/1 (xfer.h). Every file is written to a temporary file beside
 * its destination, hashed as it arrives, and renamed into place only when
 * its BLAKE2b-256 matches the sender's: a file is either whole or absent.
 * A progress bar (rate, ETA) is drawn when stderr is a terminal.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common.h"
#include "xfer.h"

typedef enum { R_HEAD, R_MANIFEST, R_DATA, R_HASH, R_DONE } recv_state;

static cli *C;
static kw_endpoint_addr target;
static struct {
  kw_stream *s;
  recv_state st;
  uint8_t head[8];
  size_t headlen;
  uint8_t *man;
  size_t manlen, mangot;
  xfer_manifest m;
  size_t idx;
  int fd;
  char tmp[4200];
  char final[4200];
  uint64_t off;
  crypto_generichash_state h;
  uint8_t hash[XFER_HASH_LEN];
  size_t hashgot;
  uint64_t received;
  double t0, t_end, last_draw;
  bool tty;
  bool failed;
  bool summarized;
  uint8_t remote[KW_ID_LEN];
  uint8_t *wbuf; /* file bytes not yet written */
  size_t wlen;
} R;

#define WBUF_SIZE (1u << 20)

static bool write_all(const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(R.fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      if (w == 0)
        errno = EIO;
      return false;
    }
    p += w;
    n -= (size_t)w;
  }
  return true;
}

static bool flush(void) {
  bool ok = write_all(R.wbuf, R.wlen);
  R.wlen = 0;
  return ok;
}

static void progress(bool final);

/* Loop thread: every file is in place; the summary line, once. */
static void summarize(void) {
  if (R.summarized)
    return;
  R.summarized = true;
  progress(true);
  cli_emit_summary(C, "received", R.remote, C->path_known ? C->path.kind
                                                          : KW_PATH_NONE,
                   R.received, R.t_end - R.t0);
}

static void exit_stats(cli *c) {
  if (R.st == R_DONE && !R.failed)
    summarize();
  cli_emit_stats(c, 0, R.received);
}

/* Once everything is verified and acknowledged, the sender's end of the
 * stream is a courtesy: a sender that never sends it cannot hold the
 * receiver longer than this. */
#define ACK_GRACE_S 5.0

static void *ack_grace(void *arg) {
  cli *c = arg;
  double until = cli_now() + ACK_GRACE_S;
  while (cli_now() < until) {
    pthread_mutex_lock(&c->mu);
    bool fin = c->finished;
    pthread_mutex_unlock(&c->mu);
    if (fin)
      return NULL;
    usleep(50000);
  }
  cli_done(c, 0);
  return NULL;
}

static void progress(bool final) {
  if (!R.tty || C->json || C->verbosity < 0)
    return;
  double now = cli_now();
  if (!final && now - R.last_draw < 0.1)
    return;
  R.last_draw = now;
  double secs = now - R.t0;
  double rate = secs > 0 ? (double)R.received / secs : 0;
  double total = (double)R.m.total;
  double frac = total > 0 ? (double)R.received / total : 1;
  int bars = (int)(frac * 30);
  char bar[31];
  for (int i = 0; i < 30; i++)
    bar[i] = i < bars ? '#' : '.';
  bar[30] = 0;
  double eta = rate > 0 ? (total - (double)R.received) / rate : 0;
  fprintf(stderr, "\r[%s] %5.1f%% %9.1f/%.1f MB %7.1f MB/s ETA %4.0fs", bar,
          frac * 100, (double)R.received / 1e6, total / 1e6, rate / 1e6, eta);
  if (final)
    fputc('\n', stderr);
}

static void fail(kw_err e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(kw_err e, const char *fmt, ...) {
  if (R.failed)
    return;
  R.failed = true;
  R.wlen = 0;
  if (R.fd >= 0) {
    close(R.fd);
    R.fd = -1;
    unlink(R.tmp); /* nothing partial stays */
  }
  progress(true);
  char msg[4400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cli_fail(C, e, "receive: %s", msg);
  if (R.s)
    kw_stream_reset(R.s, 1);
  cli_done(C, 1);
}

static int dest(const char *rel, char *out, size_t n) {
  const char *dir = C->out_dir ? C->out_dir : ".";
  return snprintf(out, n, "%s/%s", dir, rel) < (int)n ? 0 : -1;
}

/* Starts the next entry; directories are made at once. */
static void next_entry(void) {
  while (R.idx < R.m.n) {
    xfer_entry *e = &R.m.e[R.idx];
    if (dest(e->path, R.final, sizeof R.final) != 0) {
      fail(KW_ERR_IO, "path too long: %s", e->path);
      return;
    }
    if (e->type == 1) {
      if (mkdir(R.final, 0700) != 0 && errno != EEXIST) {
        fail(KW_ERR_IO, "cannot create directory %s", R.final);
        return;
      }
      R.idx++;
      continue;
    }
    char *slash = strrchr(R.final, '/');
    snprintf(R.tmp, sizeof R.tmp, "%.*s/.%s.kwtmp.XXXXXX",
             (int)(slash - R.final), R.final, slash + 1);
    R.fd = mkstemp(R.tmp);
    if (R.fd < 0) {
      fail(KW_ERR_IO, "cannot create %s", R.tmp);
      return;
    }
    R.off = 0;
    crypto_generichash_init(&R.h, NULL, 0, XFER_HASH_LEN);
    R.st = e->size ? R_DATA : R_HASH;
    R.hashgot = 0;
    return;
  }
  /* every file verified: directory modes last, then tell the sender */
  for (size_t i = R.m.n; i-- > 0;) {
    if (R.m.e[i].type == 1 && dest(R.m.e[i].path, R.final, sizeof R.final) == 0)
      chmod(R.final, R.m.e[i].mode | 0700);
  }
  R.st = R_DONE;
  R.t_end = cli_now();
  uint8_t ok = XFER_ACK_OK;
  kw_stream_write(R.s, &ok, 1, true, NULL);
  pthread_t th;
  if (pthread_create(&th, NULL, ack_grace, C) == 0)
    pthread_detach(th);
}

static void file_done(void) {
  uint8_t got[XFER_HASH_LEN];
  crypto_generichash_final(&R.h, got, XFER_HASH_LEN);
  xfer_entry *e = &R.m.e[R.idx];
  if (sodium_memcmp(got, R.hash, XFER_HASH_LEN) != 0) {
    fail(KW_ERR_PARSE, "integrity check failed for %s (hash mismatch)",
         e->path);
    return;
  }
  if (fchmod(R.fd, e->mode) != 0 || close(R.fd) != 0) {
    R.fd = -1;
    unlink(R.tmp);
    fail(KW_ERR_IO, "cannot finish %s", e->path);
    return;
  }
  R.fd = -1;
  if (rename(R.tmp, R.final) != 0) {
    unlink(R.tmp);
    fail(KW_ERR_IO, "cannot rename into %s", R.final);
    return;
  }
  R.idx++;
  next_entry();
}

static void on_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  (void)u;
  if (s != R.s || R.failed)
    return;
  while (n && !R.failed) {
    switch (R.st) {
    case R_HEAD: {
      size_t take = 8 - R.headlen < n ? 8 - R.headlen : n;
      memcpy(R.head + R.headlen, d, take);
      R.headlen += take;
      d += take;
      n -= take;
      if (R.headlen < 8)
        break;
      if (memcmp(R.head, XFER_MAGIC, 4) != 0) {
        fail(KW_ERR_PARSE, "the sender speaks another protocol");
        return;
      }
      R.manlen = (size_t)R.head[4] << 24 | (size_t)R.head[5] << 16 |
                 (size_t)R.head[6] << 8 | R.head[7];
      if (R.manlen > XFER_MAX_MANIFEST || !(R.man = malloc(R.manlen + 1))) {
        fail(KW_ERR_PARSE, "the file list is too large");
        return;
      }
      R.st = R_MANIFEST;
      break;
    }
    case R_MANIFEST: {
      size_t take = R.manlen - R.mangot < n ? R.manlen - R.mangot : n;
      memcpy(R.man + R.mangot, d, take);
      R.mangot += take;
      d += take;
      n -= take;
      if (R.mangot < R.manlen)
        break;
      const char *why;
      if (xfer_decode(R.man, R.manlen, &R.m, &why) != 0) {
        fail(KW_ERR_PARSE, "bad file list: %s", why);
        return;
      }
      free(R.man);
      R.man = NULL;
      const char *dir = C->out_dir ? C->out_dir : ".";
      if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fail(KW_ERR_IO, "cannot create %s", dir);
        return;
      }
      R.t0 = cli_now();
      next_entry();
      break;
    }
    case R_DATA: {
      xfer_entry *e = &R.m.e[R.idx];
      uint64_t left = e->size - R.off;
      size_t take = left < n ? (size_t)left : n;
      crypto_generichash_update(&R.h, d, take);
      /* gather packet-sized pieces into large writes */
      if (R.wlen + take > WBUF_SIZE && !flush()) {
        fail(KW_ERR_IO, "cannot write %s: %s", R.final, strerror(errno));
        return;
      }
      if (take >= WBUF_SIZE) {
        if (!write_all(d, take)) {
          fail(KW_ERR_IO, "cannot write %s: %s", R.final, strerror(errno));
          return;
        }
      } else {
        memcpy(R.wbuf + R.wlen, d, take);
        R.wlen += take;
      }
      if (R.off + take == e->size && !flush()) {
        fail(KW_ERR_IO, "cannot write %s: %s", R.final, strerror(errno));
        return;
      }
      R.off += take;
      R.received += take;
      d += take;
      n -= take;
      progress(false);
      if (R.off == e->size)
        R.st = R_HASH;
      break;
    }
    case R_HASH: {
      size_t take = XFER_HASH_LEN - R.hashgot < n ? XFER_HASH_LEN - R.hashgot
                                                  : n;
      memcpy(R.hash + R.hashgot, d, take);
      R.hashgot += take;
      d += take;
      n -= take;
      if (R.hashgot == XFER_HASH_LEN)
        file_done();
      break;
    }
    case R_DONE:
      fail(KW_ERR_PARSE, "the sender sent more than it announced");
      return;
    }
  }
  /* a zero-size last file has no data bytes: its hash may complete here */
  if (fin && R.st != R_DONE && !R.failed)
    fail(KW_ERR_PARSE, "the sender stopped early");
}

static void on_closed(kw_stream *s, kw_err err, uint64_t code, void *u) {
  (void)u;
  (void)code;
  if (s != R.s)
    return;
  R.s = NULL;
  if (R.failed)
    return;
  if (R.st != R_DONE) {
    fail(err ? err : KW_ERR_PEER, "the transfer was cut off");
    return;
  }
  /* every file verified and in place: how the stream ended no longer
   * matters */
  summarize();
  kw_conn_close(kw_stream_conn(s), 0, "done");
  cli_done(C, 0);
}

static void on_conn_closed(kw_conn *conn, kw_err err, uint64_t code,
                           void *u) {
  (void)conn;
  (void)code;
  (void)u;
  R.s = NULL; /* its stream_closed follows: nothing more to do there */
  if (R.failed)
    return;
  if (R.st != R_DONE) {
    fail(err, "connection lost: %s", kw_strerror(err));
    return;
  }
  summarize();
  cli_done(C, 0);
}

static void on_path(kw_conn *conn, const kw_path_info *p, void *u) {
  (void)u;
  cli_emit_path(C, conn, p);
}

static void connected(kw_conn *conn, kw_err err, void *arg) {
  (void)arg;
  if (err != KW_OK) {
    cli_fail_connect(C, target.id, CLI_ALPN_SEND, err);
    cli_done(C, 1);
    return;
  }
  kw_conn_remote_id(conn, R.remote);
  cli_emit_connected(C, conn);
  kw_path_info pi;
  kw_conn_path(conn, &pi);
  cli_emit_path(C, conn, &pi);
  if (kw_conn_open_stream(conn, true, &R.s) != KW_OK) {
    cli_fail(C, KW_ERR_STREAM_LIMIT, "receive: cannot open a stream");
    cli_done(C, 1);
    return;
  }
  uint8_t req[5] = {'K', 'W', 'S', '1', XFER_OP_GET};
  kw_stream_write(R.s, req, sizeof req, false, NULL);
}

static void dial(kw_endpoint *ep, void *arg) {
  (void)arg;
  kw_err e = kw_endpoint_connect(ep, &target, CLI_ALPN_SEND, connected, NULL);
  if (e != KW_OK) {
    cli_fail(C, e, "receive: %s",
             e == KW_ERR_NO_PATH ? "the target has no address and no relay "
                                   "to resolve it (pass --relay)"
                                 : kw_strerror(e));
    cli_done(C, 1);
  }
}

int cmd_receive(cli *c) {
  if (c->npos != 1)
    return cli_usage_error(c, "receive takes one TICKET");
  C = c;
  c->exit_hook = exit_stats;
  R.fd = -1;
  R.tty = isatty(2);
  R.wbuf = malloc(WBUF_SIZE);
  if (!R.wbuf)
    return cli_fail(c, KW_ERR_NOMEM, "receive: out of memory");
  int rc = cli_parse_target(c, c->pos[0], &target);
  if (rc)
    return rc;
  kw_callbacks cbs = {0};
  cbs.stream_data = on_data;
  cbs.stream_closed = on_closed;
  cbs.conn_closed = on_conn_closed;
  cbs.path_changed = on_path;
  rc = cli_start_endpoint(c, NULL, &cbs, NULL);
  if (rc)
    return rc;
  kw_endpoint_post(c->ep, dial, NULL);
  rc = cli_wait(c);
  if (R.fd >= 0) {
    close(R.fd);
    unlink(R.tmp);
  }
  free(R.man);
  free(R.wbuf);
  xfer_free(&R.m);
  return rc;
}
