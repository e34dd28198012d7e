/* SPDX-License-Identifier: MIT */
/*
 * cli_bad_sender: a keyway/send/1 sender that misbehaves on purpose, to
 * test that `keyway receive` refuses it (docs/protocol/send.md).
 *
 *   cli_bad_sender MODE TICKET_FILE
 *
 * Binds 127.0.0.1 only, writes its ticket to TICKET_FILE, answers the first
 * request with the bytes MODE names, then waits for the receiver to go
 * (at most 30 s). MODEs:
 *   good       one 1 MiB file "f.bin", correct hash (the control case)
 *   badhash    "f.bin" whose hash does not match its bytes
 *   secondbad  a tree "t" with a good "t/a.bin" and a bad-hash "t/b.bin"
 *   dotdot     a tree "t" with an entry "t/../escape"
 *   absolute   a single entry "/tmp/escape"
 *   outside    an entry "u/x" whose directory "u" was never listed
 *   short      announces 1 MiB, sends 1000 bytes and ends the stream
 *   extra      a correct file followed by bytes nobody announced
 *   badmagic   an answer that does not start with "KWS1"
 *   nofin      like good, but never ends its direction after the ack
 *   suid       "s" (directory, mode 07777) with "s/x" (file, mode 06777)
 *   docs       "docs" (directory) with "docs/planted"
 *   dotssh     ".ssh" with ".ssh/authorized_keys"
 *   ctrl       a file whose name holds an ESC sequence
 *   dupfile    "t" with the file "t/a" listed twice
 *   longname   one file with a valid 250-byte name
 *   many       "t" and 250,000 empty files in it (above the entry bound)
 *   dirsbad    "t", 500 directories each with a file, the last file's hash
 *              wrong
 *   stall      announces 1 MiB, sends 1000 bytes, then nothing (the
 *              connection stays up)
 *   huge       one file of 1 PiB (more than any disk here)
 * Except for nofin, short and stall, the sender ends its direction when the
 * receiver's ack arrives, as the protocol says. The request is accepted
 * with any capability (this sender has none).
 */
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyway.h"

#define FILE_SIZE (1u << 20)

typedef struct blob {
  uint8_t *p;
  size_t len, cap;
} blob;

typedef struct state {
  const char *mode;
  blob out;
  size_t off;
  bool fin; /* end the stream after the blob */
  uint8_t req[6 + 16];
  size_t reqlen;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
} state;

static void put(blob *b, const void *d, size_t n) {
  if (n == 0)
    return;
  if (b->len + n > b->cap) {
    size_t cap = (b->len + n) * 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
      fprintf(stderr, "cli_bad_sender: out of memory\n");
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

static void put_u8(blob *b, uint8_t v) { put(b, &v, 1); }

static void put_u16(blob *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  put(b, x, 2);
}

static void put_u32(blob *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                  (uint8_t)v};
  put(b, x, 4);
}

static void put_u64(blob *b, uint64_t v) {
  put_u32(b, (uint32_t)(v >> 32));
  put_u32(b, (uint32_t)v);
}

static void entry(blob *m, uint8_t type, uint32_t mode, uint64_t size,
                  const char *path) {
  put_u8(m, type);
  put_u32(m, mode);
  put_u64(m, size);
  put_u16(m, (uint16_t)strlen(path));
  put(m, path, strlen(path));
}

/* File bytes and their hash (flipped when `bad`). */
static void content(blob *b, size_t n, uint8_t seed, bool bad) {
  uint8_t *d = calloc(1, n ? n : 1);
  if (!d)
    exit(1);
  for (size_t i = 0; i < n; i++)
    d[i] = (uint8_t)(i * 31u + seed);
  uint8_t h[32];
  crypto_generichash(h, sizeof h, d, n, NULL, 0);
  if (bad)
    h[0] ^= 1;
  put(b, d, n);
  put(b, h, sizeof h);
  free(d);
}

/* The whole answer for `mode`: "KWS1" | manifest length | manifest | data. */
static bool build(state *st) {
  blob m = {0}, data = {0};
  const char *mode = st->mode;
  if (!strcmp(mode, "good") || !strcmp(mode, "badhash") ||
      !strcmp(mode, "extra") || !strcmp(mode, "nofin")) {
    put_u32(&m, 1);
    entry(&m, 0, 0644, FILE_SIZE, "f.bin");
    content(&data, FILE_SIZE, 7, !strcmp(mode, "badhash"));
    if (!strcmp(mode, "extra"))
      put(&data, "surplus", 7);
  } else if (!strcmp(mode, "secondbad")) {
    put_u32(&m, 3);
    entry(&m, 1, 0755, 0, "t");
    entry(&m, 0, 0644, FILE_SIZE, "t/a.bin");
    entry(&m, 0, 0644, FILE_SIZE, "t/b.bin");
    content(&data, FILE_SIZE, 1, false);
    content(&data, FILE_SIZE, 2, true);
  } else if (!strcmp(mode, "dotdot")) {
    put_u32(&m, 2);
    entry(&m, 1, 0755, 0, "t");
    entry(&m, 0, 0644, 4, "t/../escape");
    content(&data, 4, 3, false);
  } else if (!strcmp(mode, "absolute")) {
    put_u32(&m, 1);
    entry(&m, 0, 0644, 4, "/tmp/escape");
    content(&data, 4, 3, false);
  } else if (!strcmp(mode, "outside")) {
    put_u32(&m, 2);
    entry(&m, 1, 0755, 0, "t");
    entry(&m, 0, 0644, 4, "u/x");
    content(&data, 4, 3, false);
  } else if (!strcmp(mode, "short")) {
    put_u32(&m, 1);
    entry(&m, 0, 0644, FILE_SIZE, "f.bin");
    uint8_t d[1000];
    memset(d, 'x', sizeof d);
    put(&data, d, sizeof d);
    st->fin = true;
  } else if (!strcmp(mode, "suid")) {
    put_u32(&m, 2);
    entry(&m, 1, 07777, 0, "s");
    entry(&m, 0, 06777, 4, "s/x");
    content(&data, 4, 3, false);
  } else if (!strcmp(mode, "docs") || !strcmp(mode, "dotssh")) {
    bool ssh = !strcmp(mode, "dotssh");
    put_u32(&m, 2);
    entry(&m, 1, 0777, 0, ssh ? ".ssh" : "docs");
    entry(&m, 0, 0644, 4, ssh ? ".ssh/authorized_keys" : "docs/planted");
    content(&data, 4, 3, false);
  } else if (!strcmp(mode, "ctrl")) {
    put_u32(&m, 1);
    entry(&m, 0, 0644, 4, "x\x1b]0;pwned\x07\x1b[2J");
    content(&data, 4, 3, false);
  } else if (!strcmp(mode, "dupfile")) {
    put_u32(&m, 3);
    entry(&m, 1, 0755, 0, "t");
    entry(&m, 0, 0644, 4, "t/a");
    entry(&m, 0, 0644, 4, "t/a");
    content(&data, 4, 3, false);
    content(&data, 4, 4, false);
  } else if (!strcmp(mode, "longname")) {
    char name[251];
    memset(name, 'n', 250);
    name[250] = 0;
    put_u32(&m, 1);
    entry(&m, 0, 0644, 4, name);
    content(&data, 4, 3, false);
  } else if (!strcmp(mode, "many")) {
    put_u32(&m, 250001);
    entry(&m, 1, 0755, 0, "t");
    for (unsigned i = 0; i < 250000; i++) {
      char p[16];
      snprintf(p, sizeof p, "t/%06u", i);
      entry(&m, 0, 0644, 0, p);
      content(&data, 0, 0, false);
    }
  } else if (!strcmp(mode, "dirsbad")) {
    put_u32(&m, 1 + 500 * 2);
    entry(&m, 1, 0755, 0, "t");
    for (unsigned i = 0; i < 500; i++) {
      char p[32];
      snprintf(p, sizeof p, "t/d%03u", i);
      entry(&m, 1, 0755, 0, p);
      snprintf(p, sizeof p, "t/d%03u/f", i);
      entry(&m, 0, 0644, 4, p);
      content(&data, 4, (uint8_t)i, i == 499);
    }
  } else if (!strcmp(mode, "stall")) {
    put_u32(&m, 1);
    entry(&m, 0, 0644, FILE_SIZE, "f.bin");
    uint8_t d[1000];
    memset(d, 'x', sizeof d);
    put(&data, d, sizeof d);
  } else if (!strcmp(mode, "huge")) {
    put_u32(&m, 1);
    entry(&m, 0, 0644, (uint64_t)1 << 50, "f.bin");
  } else if (!strcmp(mode, "badmagic")) {
    put(&st->out, "HTTP/1.1 200 OK\r\n\r\n", 19);
    return true;
  } else {
    return false;
  }
  put(&st->out, "KWS1", 4);
  put_u32(&st->out, (uint32_t)m.len);
  put(&st->out, m.p, m.len);
  put(&st->out, data.p, data.len);
  free(m.p);
  free(data.p);
  return true;
}

static void pump(kw_stream *s, state *st) {
  while (st->off < st->out.len) {
    size_t w = 0;
    kw_err e = kw_stream_write(s, st->out.p + st->off, st->out.len - st->off,
                               false, &w);
    st->off += w;
    if (e != KW_OK || w == 0)
      return; /* stream_writable resumes */
  }
  if (st->fin)
    kw_stream_finish(s);
}

static void on_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  state *st = u;
  (void)fin;
  /* "KWS1" | 2 | length | capability */
  size_t before = st->reqlen, want = 6;
  for (;;) {
    if (st->reqlen >= 6)
      want = 6 + (st->req[5] <= 16 ? st->req[5] : 0);
    if (!n || st->reqlen >= want)
      break;
    st->req[st->reqlen++] = *d++;
    n--;
  }
  if (before < want && st->reqlen == want) {
    if (memcmp(st->req, "KWS1\x02", 5) != 0) {
      fprintf(stderr, "cli_bad_sender: unexpected request\n");
      kw_stream_reset(s, 1);
      return;
    }
    pump(s, st);
  }
  /* the ack (or anything after the request) */
  if (n && st->off == st->out.len && !st->fin && strcmp(st->mode, "nofin") &&
      strcmp(st->mode, "stall")) {
    st->fin = true;
    kw_stream_finish(s);
  }
}

static void on_writable(kw_stream *s, void *u) {
  state *st = u;
  if (st->reqlen >= 6 && st->reqlen == 6 + (size_t)st->req[5])
    pump(s, st);
}

static void on_conn_closed(kw_conn *c, kw_err err, uint64_t code, void *u) {
  state *st = u;
  (void)c;
  (void)err;
  (void)code;
  pthread_mutex_lock(&st->mu);
  st->done = true;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: cli_bad_sender MODE TICKET_FILE\n");
    return 2;
  }
  if (sodium_init() < 0)
    return 1;
  static state st;
  st.mode = argv[1];
  pthread_mutex_init(&st.mu, NULL);
  pthread_cond_init(&st.cv, NULL);
  if (!build(&st)) {
    fprintf(stderr, "cli_bad_sender: unknown mode %s\n", argv[1]);
    return 2;
  }
  kw_config *cfg;
  kw_endpoint *ep;
  kw_sockaddr lo;
  kw_callbacks cbs = {0};
  cbs.stream_data = on_data;
  cbs.stream_writable = on_writable;
  cbs.conn_closed = on_conn_closed;
  if (kw_config_new(&cfg) != KW_OK || kw_sockaddr_parse("127.0.0.1:0", &lo) ||
      kw_config_add_bind(cfg, &lo) || kw_config_add_alpn(cfg, "keyway/send/1") ||
      kw_config_set_callbacks(cfg, &cbs, &st) ||
      kw_endpoint_new(cfg, &ep) != KW_OK) {
    fprintf(stderr, "cli_bad_sender: cannot make an endpoint\n");
    return 1;
  }
  kw_config_free(cfg);
  kw_endpoint_addr a;
  char t[KW_TICKET_MAX];
  if (kw_endpoint_start(ep) || kw_endpoint_get_addr(ep, &a) ||
      kw_ticket_encode(&a, t, sizeof t)) {
    fprintf(stderr, "cli_bad_sender: no ticket\n");
    return 1;
  }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
  FILE *f = fopen(tmp, "w");
  if (!f || fprintf(f, "%s\n", t) < 0 || fclose(f) != 0 ||
      rename(tmp, argv[2]) != 0) {
    fprintf(stderr, "cli_bad_sender: cannot write %s\n", argv[2]);
    return 1;
  }
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 30;
  pthread_mutex_lock(&st.mu);
  while (!st.done)
    if (pthread_cond_timedwait(&st.cv, &st.mu, &dl) != 0)
      break;
  bool done = st.done;
  pthread_mutex_unlock(&st.mu);
  kw_endpoint_close(ep);
  kw_endpoint_free(ep);
  free(st.out.p);
  return done ? 0 : 1;
}
