/*
 * keyway send PATH: serves a file or a directory tree over keyway/send/1
 * (xfer.h) to every receiver that holds the ticket, several at once. File
 * bytes are read from disk as the stream's send buffer drains (never a
 * whole file in memory) and hashed on the way out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common.h"
#include "xfer.h"

#define SEND_BUF (256 * 1024)

typedef enum { S_WAIT_REQ, S_SENDING, S_WAIT_ACK, S_FINISHED } serve_state;

typedef struct serve {
  kw_stream *s;
  serve_state st;
  uint8_t req[5];
  size_t reqlen;
  uint8_t *head;
  size_t headlen, headoff;
  size_t idx;
  int fd;
  uint64_t off;
  crypto_generichash_state h;
  uint8_t hash[XFER_HASH_LEN];
  size_t hashoff;
  bool hashing; /* the hash of entry idx is being written */
  uint8_t *buf;
  size_t buflen, bufoff;
  uint64_t sent;
  double t0;
} serve;

static cli *C;
static xfer_manifest M;
static uint8_t *manifest_bytes;
static size_t manifest_len;
static unsigned served;
static uint64_t total_sent;

static void exit_stats(cli *c) { cli_emit_stats(c, total_sent, 0); }

static void serve_free(serve *sv) {
  if (sv->fd >= 0)
    close(sv->fd);
  free(sv->head);
  free(sv->buf);
  free(sv);
}

static void serve_fail(serve *sv, const char *what) {
  cli_info(C, "send: %s", what);
  kw_stream_reset(sv->s, 1);
  sv->st = S_FINISHED;
}

/* Writes as much as the stream takes now. */
static void pump(serve *sv) {
  kw_stream *s = sv->s;
  size_t w;
  if (sv->st != S_SENDING)
    return;
  if (sv->headoff < sv->headlen) {
    kw_stream_write(s, sv->head + sv->headoff, sv->headlen - sv->headoff,
                    false, &w);
    sv->headoff += w;
    if (sv->headoff < sv->headlen)
      return;
  }
  while (sv->idx < M.n) {
    xfer_entry *e = &M.e[sv->idx];
    if (e->type == 1) {
      sv->idx++;
      continue;
    }
    if (sv->hashing) {
      kw_stream_write(s, sv->hash + sv->hashoff, XFER_HASH_LEN - sv->hashoff,
                      false, &w);
      sv->hashoff += w;
      if (sv->hashoff < XFER_HASH_LEN)
        return;
      sv->hashing = false;
      sv->idx++;
      continue;
    }
    if (sv->fd < 0) {
      sv->fd = open(e->src, O_RDONLY | O_CLOEXEC);
      if (sv->fd < 0) {
        serve_fail(sv, "cannot open a file to send");
        return;
      }
      sv->off = 0;
      crypto_generichash_init(&sv->h, NULL, 0, XFER_HASH_LEN);
    }
    if (sv->bufoff == sv->buflen) {
      if (sv->off == e->size) {
        crypto_generichash_final(&sv->h, sv->hash, XFER_HASH_LEN);
        close(sv->fd);
        sv->fd = -1;
        sv->hashing = true;
        sv->hashoff = 0;
        continue;
      }
      uint64_t left = e->size - sv->off;
      size_t want = left < SEND_BUF ? (size_t)left : SEND_BUF;
      ssize_t n = pread(sv->fd, sv->buf, want, (off_t)sv->off);
      if (n <= 0) {
        serve_fail(sv, "a file changed size while being sent");
        return;
      }
      crypto_generichash_update(&sv->h, sv->buf, (size_t)n);
      sv->off += (uint64_t)n;
      sv->buflen = (size_t)n;
      sv->bufoff = 0;
    }
    kw_stream_write(s, sv->buf + sv->bufoff, sv->buflen - sv->bufoff, false,
                    &w);
    sv->bufoff += w;
    sv->sent += w;
    if (sv->bufoff < sv->buflen)
      return; /* stream_writable resumes */
  }
  sv->st = S_WAIT_ACK;
}

static void on_opened(kw_stream *s, void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(kw_stream_conn(s)), CLI_ALPN_SEND) != 0) {
    kw_stream_reset(s, 1);
    return;
  }
  serve *sv = calloc(1, sizeof *sv);
  if (!sv) {
    kw_stream_reset(s, 1);
    return;
  }
  sv->s = s;
  sv->fd = -1;
  kw_stream_set_user(s, sv);
}

static void on_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  (void)u;
  (void)fin;
  serve *sv = kw_stream_get_user(s);
  if (!sv)
    return;
  if (sv->st == S_WAIT_REQ) {
    while (n && sv->reqlen < sizeof sv->req) {
      sv->req[sv->reqlen++] = *d++;
      n--;
    }
    if (sv->reqlen < sizeof sv->req)
      return;
    if (memcmp(sv->req, XFER_MAGIC, 4) != 0 || sv->req[4] != XFER_OP_GET) {
      serve_fail(sv, "a receiver sent an unknown request");
      return;
    }
    sv->headlen = 8 + manifest_len;
    sv->head = malloc(sv->headlen);
    sv->buf = malloc(SEND_BUF);
    if (!sv->head || !sv->buf) {
      serve_fail(sv, "out of memory");
      return;
    }
    memcpy(sv->head, XFER_MAGIC, 4);
    sv->head[4] = (uint8_t)(manifest_len >> 24);
    sv->head[5] = (uint8_t)(manifest_len >> 16);
    sv->head[6] = (uint8_t)(manifest_len >> 8);
    sv->head[7] = (uint8_t)manifest_len;
    memcpy(sv->head + 8, manifest_bytes, manifest_len);
    sv->st = S_SENDING;
    sv->t0 = cli_now();
    pump(sv);
  }
  if (sv->st == S_WAIT_ACK && n >= 1) {
    if (d[0] != XFER_ACK_OK) {
      serve_fail(sv, "the receiver reported a failure");
      return;
    }
    kw_stream_finish(s);
    sv->st = S_FINISHED;
    total_sent += sv->sent;
    uint8_t rid[KW_ID_LEN];
    kw_path_info pi;
    kw_conn_remote_id(kw_stream_conn(s), rid);
    kw_conn_path(kw_stream_conn(s), &pi);
    cli_emit_summary(C, "sent", rid, pi.kind, sv->sent, cli_now() - sv->t0);
    served++;
  }
}

static void on_writable(kw_stream *s, void *u) {
  (void)u;
  serve *sv = kw_stream_get_user(s);
  if (sv)
    pump(sv);
}

static void on_closed(kw_stream *s, kw_err err, uint64_t code, void *u) {
  (void)err;
  (void)code;
  (void)u;
  serve *sv = kw_stream_get_user(s);
  if (!sv)
    return;
  /* the receiver's acknowledgement is the success; a close racing our
   * fin's ACK does not undo it */
  bool ok = sv->st == S_FINISHED && sv->sent == M.total;
  kw_conn *conn = kw_stream_conn(s);
  serve_free(sv);
  kw_stream_set_user(s, NULL);
  if (ok) {
    kw_conn_close(conn, 0, "done");
    if (C->once)
      cli_done(C, 0);
  }
}

static void on_accepted(kw_conn *conn, void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(conn), CLI_ALPN_SEND) == 0)
    cli_emit_connected(C, conn);
}

static void on_path(kw_conn *conn, const kw_path_info *p, void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(conn), CLI_ALPN_SEND) == 0)
    cli_emit_path(C, conn, p);
}

static void on_dgram(kw_conn *conn, const uint8_t *d, size_t n, void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(conn), CLI_ALPN_PING) == 0)
    kw_conn_send_datagram(conn, d, n);
}

int cmd_send(cli *c) {
  if (c->npos != 1)
    return cli_usage_error(c, "send takes one PATH");
  C = c;
  c->exit_hook = exit_stats;
  /* each receiver may hold a 256 KiB read buffer and a stream send buffer */
  c->max_conns = 64;
  char bad[4096] = "";
  if (xfer_scan(c->pos[0], &M, bad, sizeof bad) != 0)
    return cli_fail(c, KW_ERR_IO, "send: %s: %s", bad[0] ? bad : c->pos[0],
                    strerror(errno));
  manifest_bytes = xfer_encode(&M, &manifest_len);
  if (!manifest_bytes || manifest_len > XFER_MAX_MANIFEST)
    return cli_fail(c, KW_ERR_NOMEM, "send: the file list is too large");
  const char *alpns[] = {CLI_ALPN_SEND, CLI_ALPN_PING, NULL};
  kw_callbacks cbs = {0};
  cbs.conn_accepted = on_accepted;
  cbs.stream_opened = on_opened;
  cbs.stream_data = on_data;
  cbs.stream_writable = on_writable;
  cbs.stream_closed = on_closed;
  cbs.path_changed = on_path;
  cbs.datagram = on_dgram;
  int rc = cli_start_endpoint(c, alpns, &cbs, NULL);
  if (rc == 0)
    rc = cli_emit_ticket(c);
  if (rc) {
    cli_done(c, rc);
    cli_wait(c);
  } else {
    cli_info(c, "serving %s: %zu entries, %llu bytes%s", c->pos[0], M.n,
             (unsigned long long)M.total,
             c->once ? " (until one receiver has it all)" : "");
    rc = cli_wait(c);
  }
  free(manifest_bytes);
  xfer_free(&M);
  return rc;
}
