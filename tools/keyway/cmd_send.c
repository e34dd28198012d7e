/* SPDX-License-Identifier: MIT */
/*
 * keyway send PATH: serves a file or a directory tree over keyway/send/1
 * (xfer.h) to every receiver that holds the ticket, several at once. File
 * bytes are read from disk as the stream's send buffer drains (never a
 * whole file in memory) and hashed on the way out.
 *
 * Access: each run draws a random capability that only its ticket carries;
 * a request is served only when it presents it (constant-time compare),
 * unless --public: then every receiver that finds this endpoint (by its
 * bare id too) is served.
 * Bounds: at most SEND_MAX_PER_CONN requests in progress per connection,
 * SEND_MAX_PER_PEER per remote id and SEND_MAX_SERVES in all; a request
 * beyond them is reset at once (XFER_CODE_BUSY) before it costs a buffer.
 * SIGINT/SIGTERM close every connection with XFER_CODE_STOPPED, so
 * receivers learn at once, and the run exits 130.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <uthash.h>

#include "common.h"
#include "xfer.h"

#define SEND_BUF (256 * 1024)
/* Each request in progress may hold SEND_BUF here plus the library's stream
 * send buffer (4 MiB): these keep a sender's memory to tens of MB whatever
 * receivers do (docs/protocol/send.md). */
#define SEND_MAX_PER_CONN 4
#define SEND_MAX_PER_PEER 8
#define SEND_MAX_SERVES 32
#define SEND_MAX_SKIP_LINES 20

/* A remote id with requests in progress. */
typedef struct peer {
  uint8_t id[KW_ID_LEN];
  unsigned active;
  UT_hash_handle hh;
} peer;

/* One accepted keyway/send/1 connection; freed once it is closed and none
 * of its requests remain (the library may report either first). */
typedef struct sconn {
  kw_conn *conn;
  unsigned active;
  bool closed;
  struct sconn *prev, *next; /* the open ones */
} sconn;

typedef enum { S_WAIT_REQ, S_SENDING, S_WAIT_ACK, S_FINISHED } serve_state;

typedef struct serve {
  kw_stream *s;
  sconn *sc;
  peer *pr;
  serve_state st;
  uint8_t req[6 + XFER_CAP_LEN]; /* "KWS1" op len capability */
  size_t reqlen;
  uint8_t head[8];
  size_t headoff; /* of the 8-byte head, then of the shared manifest */
  size_t idx;
  int fd;
  uint64_t off;
  crypto_generichash_state h;
  uint8_t hash[XFER_HASH_LEN];
  size_t hashoff;
  bool hashing; /* the hash of entry idx is being written */
  bool acked;   /* the receiver verified everything */
  uint8_t *buf;
  size_t buflen, bufoff;
  uint64_t sent;
  double t0;
} serve;

static cli *C;
static xfer_manifest M;
static uint8_t *manifest_bytes;
static size_t manifest_len;
static uint8_t capability[XFER_CAP_LEN];
static unsigned served, skipped;
static uint64_t total_sent;
static peer *peers;
static sconn *open_conns;
static unsigned n_serves, refused;
static bool serving;     /* the ticket is out: only a signal or --once ends */
static bool completed;   /* --once: a receiver got it all */
static bool interrupted; /* ended by SIGINT/SIGTERM */

static void sconn_unref(sconn *sc) {
  if (sc->closed && sc->active == 0)
    free(sc);
}

/* Loop thread, once at the end of the run: a run that ends while serving
 * without having completed was interrupted; every receiver hears so at once
 * (not after an idle timeout). */
static void exit_stats(cli *c) {
  /* receivers still in progress (other than one that just completed,
   * already closed with code 0) hear that the sender stopped */
  for (sconn *sc = open_conns; sc; sc = sc->next)
    kw_conn_close(sc->conn, XFER_CODE_STOPPED, "the sender stopped");
  if (serving && !completed) {
    interrupted = true;
    if (c->json)
      cli_fail(c, KW_ERR_CLOSED,
               "send: interrupted; stopped serving (%u receiver%s got it all)",
               served, served == 1 ? "" : "s");
    else
      cli_info(c, "send: interrupted; stopped serving (%u receiver%s got it "
                  "all)",
               served, served == 1 ? "" : "s");
  }
  cli_emit_stats(c, total_sent, 0);
}

static void serve_free(serve *sv) {
  if (sv->fd >= 0)
    close(sv->fd);
  free(sv->buf);
  if (sv->pr && --sv->pr->active == 0) {
    HASH_DEL(peers, sv->pr);
    free(sv->pr);
  }
  if (sv->sc) {
    sv->sc->active--;
    sconn_unref(sv->sc);
  }
  n_serves--;
  free(sv);
}

static void serve_fail(serve *sv, const char *what) {
  cli_info(C, "send: %s", what);
  kw_stream_reset(sv->s, XFER_CODE_FAIL);
  sv->st = S_FINISHED;
}

/* Writes as much as the stream takes now. */
static void pump(serve *sv) {
  kw_stream *s = sv->s;
  size_t w;
  if (sv->st != S_SENDING)
    return;
  /* the head, then the manifest straight from the one shared copy */
  while (sv->headoff < 8 + manifest_len) {
    const uint8_t *p = sv->headoff < 8 ? sv->head + sv->headoff
                                       : manifest_bytes + (sv->headoff - 8);
    size_t left = sv->headoff < 8 ? 8 - sv->headoff
                                  : manifest_len - (sv->headoff - 8);
    w = 0;
    kw_stream_write(s, p, left, false, &w);
    sv->headoff += w;
    if (w < left)
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
  kw_conn *conn = kw_stream_conn(s);
  sconn *sc = kw_conn_get_user(conn);
  if (!sc || strcmp(kw_conn_alpn(conn), CLI_ALPN_SEND) != 0) {
    kw_stream_reset(s, XFER_CODE_FAIL);
    return;
  }
  uint8_t rid[KW_ID_LEN];
  kw_conn_remote_id(conn, rid);
  peer *pr = NULL;
  HASH_FIND(hh, peers, rid, KW_ID_LEN, pr);
  const char *limit = NULL;
  if (sc->active >= SEND_MAX_PER_CONN)
    limit = "per connection";
  else if (pr && pr->active >= SEND_MAX_PER_PEER)
    limit = "per peer";
  else if (n_serves >= SEND_MAX_SERVES)
    limit = "in all";
  if (limit) {
    /* refused at once: no buffer, no manifest, nothing queued */
    refused++;
    if (C->verbosity > 0) {
      char idt[KW_ID_STRLEN + 1];
      cli_info(C, "send: refused a request from %.10s: too many at once (%s)",
               cli_id(rid, idt), limit);
    }
    kw_stream_reset(s, XFER_CODE_BUSY);
    return;
  }
  serve *sv = calloc(1, sizeof *sv);
  if (!pr && sv) {
    pr = calloc(1, sizeof *pr);
    if (pr) {
      memcpy(pr->id, rid, KW_ID_LEN);
      HASH_ADD(hh, peers, id, KW_ID_LEN, pr);
    }
  }
  if (!sv || !pr) {
    free(sv);
    kw_stream_reset(s, XFER_CODE_FAIL);
    return;
  }
  sv->s = s;
  sv->fd = -1;
  sv->sc = sc;
  sv->pr = pr;
  sc->active++;
  pr->active++;
  n_serves++;
  kw_stream_set_user(s, sv);
}

/* The request: "KWS1" | op | capability length | capability. Anything but
 * this share's capability gets nothing but a reset and a close. */
static void on_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  (void)u;
  (void)fin;
  serve *sv = kw_stream_get_user(s);
  if (!sv)
    return;
  if (sv->st == S_WAIT_REQ) {
    size_t want = 6;
    for (;;) {
      if (sv->reqlen >= 6)
        want = 6 + (sv->req[5] <= XFER_CAP_LEN ? sv->req[5] : 0);
      if (!n || sv->reqlen >= want)
        break;
      sv->req[sv->reqlen++] = *d++;
      n--;
    }
    if (sv->reqlen >= 5 && (memcmp(sv->req, XFER_MAGIC, 4) != 0 ||
                            (sv->req[4] != XFER_OP_GET_CAP &&
                             sv->req[4] != XFER_OP_GET))) {
      serve_fail(sv, "a receiver sent an unknown request");
      return;
    }
    bool denied = sv->reqlen >= 5 && sv->req[4] == XFER_OP_GET;
    if (!denied && sv->reqlen < want)
      return;
    /* --public: the capability a request carries (or not) does not matter */
    denied = denied ||
             (!C->public_share &&
              (sv->req[5] != XFER_CAP_LEN ||
               sodium_memcmp(sv->req + 6, capability, XFER_CAP_LEN) != 0));
    if (denied) {
      uint8_t rid[KW_ID_LEN];
      char idt[KW_ID_STRLEN + 1];
      kw_conn *conn = kw_stream_conn(s);
      kw_conn_remote_id(conn, rid);
      cli_info(C, "send: refused %.10s: its ticket is not the one of this "
                  "share",
               cli_id(rid, idt));
      kw_stream_reset(s, XFER_CODE_DENIED);
      sv->st = S_FINISHED;
      kw_conn_close(conn, XFER_CODE_DENIED,
                    "this ticket is not valid for the share");
      return;
    }
    sv->buf = malloc(SEND_BUF);
    if (!sv->buf) {
      serve_fail(sv, "out of memory");
      return;
    }
    memcpy(sv->head, XFER_MAGIC, 4);
    sv->head[4] = (uint8_t)(manifest_len >> 24);
    sv->head[5] = (uint8_t)(manifest_len >> 16);
    sv->head[6] = (uint8_t)(manifest_len >> 8);
    sv->head[7] = (uint8_t)manifest_len;
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
    sv->acked = true;
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
  bool ok = sv->acked && sv->sent == M.total;
  kw_conn *conn = kw_stream_conn(s);
  serve_free(sv);
  kw_stream_set_user(s, NULL);
  if (ok) {
    kw_conn_close(conn, 0, "done");
    if (C->once) {
      completed = true;
      cli_done(C, 0);
    }
  }
}

static void on_accepted(kw_conn *conn, void *u) {
  (void)u;
  if (strcmp(kw_conn_alpn(conn), CLI_ALPN_SEND) != 0)
    return;
  sconn *sc = calloc(1, sizeof *sc);
  if (!sc) {
    kw_conn_close(conn, XFER_CODE_FAIL, "out of memory");
    return;
  }
  sc->conn = conn;
  sc->next = open_conns;
  if (open_conns)
    open_conns->prev = sc;
  open_conns = sc;
  kw_conn_set_user(conn, sc);
  cli_emit_connected(C, conn);
}

static void on_conn_closed(kw_conn *conn, kw_err err, uint64_t code,
                           void *u) {
  (void)err;
  (void)code;
  (void)u;
  sconn *sc = kw_conn_get_user(conn);
  if (!sc)
    return;
  kw_conn_set_user(conn, NULL);
  if (sc->prev)
    sc->prev->next = sc->next;
  else
    open_conns = sc->next;
  if (sc->next)
    sc->next->prev = sc->prev;
  sc->closed = true;
  sconn_unref(sc);
}

static void on_skip(const char *path, const char *why, void *arg) {
  cli *c = arg;
  if (skipped++ < SEND_MAX_SKIP_LINES)
    cli_info(c, "send: skipped %s: %s", path, why);
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
  const char *why = NULL;
  errno = 0;
  if (xfer_scan(c->pos[0], &M, bad, sizeof bad, &why, on_skip, c) != 0) {
    int err = errno;
    xfer_free(&M);
    return cli_fail(c, KW_ERR_IO, "send: %s: %s", bad[0] ? bad : c->pos[0],
                    why ? why : strerror(err ? err : EIO));
  }
  if (skipped > SEND_MAX_SKIP_LINES)
    cli_info(c, "send: skipped %u more", skipped - SEND_MAX_SKIP_LINES);
  randombytes_buf(capability, sizeof capability);
  c->ticket_token = capability;
  c->ticket_token_len = sizeof capability;
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
  cbs.conn_closed = on_conn_closed;
  cbs.path_changed = on_path;
  cbs.datagram = on_dgram;
  int rc = cli_start_endpoint(c, alpns, &cbs, NULL);
  if (rc == 0)
    rc = cli_emit_ticket(c);
  if (rc) {
    cli_done(c, rc);
    cli_wait(c);
  } else {
    cli_info(c, "serving %s: %zu entr%s, %llu byte%s%s", c->pos[0], M.n,
             M.n == 1 ? "y" : "ies", (unsigned long long)M.total,
             M.total == 1 ? "" : "s",
             c->once ? " (until one receiver has it all)" : "");
    serving = true;
    rc = cli_wait(c);
    if (interrupted)
      rc = 130; /* as shells expect of an interrupt */
    if (refused && c->verbosity > 0)
      cli_info(c, "send: %u request%s refused as too many at once", refused,
               refused == 1 ? "" : "s");
  }
  sodium_memzero(capability, sizeof capability);
  free(manifest_bytes);
  xfer_free(&M);
  return rc;
}
