/* SPDX-License-Identifier: MIT */
/*
 * kw_stream_write_owned: the stream takes the caller's buffer without a
 * copy and gives it back through the release function exactly once.
 *  - errors leave the buffer with the caller (release never called):
 *    len 0, no release function, a buffer larger than the stream's send
 *    buffer (KW_ERR_INVALID_ARG), a write after fin (KW_ERR_STATE);
 *  - NBUF buffers of BUFLEN bytes, interleaved with copied writes, arrive
 *    byte-exact and in order; every buffer is released once, and only once
 *    the remote acknowledged it (all released when the remote has read
 *    everything and the sender saw its acknowledgements);
 *  - a write that does not fit whole returns KW_ERR_AGAIN and stream_writable
 *    follows (the sender meets it while the remote holds back credit);
 *  - buffers still unacknowledged when the connection closes are released
 *    when the connection is freed.
 */
#include "quic_test.h"

#define ALPN "kw-test-write-owned"
#define NBUF 96 /* 24 MiB: more than the 16 MiB stream send buffer */
#define BUFLEN (256u * 1024)
#define SMALL 1000 /* a copied write between two owned ones */
#define TOTAL ((size_t)NBUF * (BUFLEN + SMALL))

/* ---- server: checks the bytes; stream 0 is the ordered one ---- */

static qt_rx srx = {.tag = 7, .len = TOTAL};
static atomic_size_t srv_hold_got;

static void srv_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                     void *u) {
  if (kw_stream_id(s) == 0)
    qt_rx_take(&srx, d, n, fin);
  else
    atomic_fetch_add(&srv_hold_got, n);
}

static const kw_callbacks srv_cbs = {.stream_data = srv_data};

/* ---- client ---- */

typedef struct owned {
  uint8_t *data;
  atomic_int released;
} owned;

static owned bufs[NBUF];
static atomic_int releases, double_release;
static kw_conn *conn;
static kw_stream *st;
static int next_buf; /* loop thread */
static bool small_pending;
static size_t small_off; /* bytes of the copied part taken */
static size_t written; /* stream offset reached, loop thread */
static atomic_int again_seen, writable_seen, fin_done;

static void release_cb(void *user, uint8_t *data) {
  owned *o = user;
  if (data != o->data || atomic_fetch_add(&o->released, 1) != 0)
    atomic_fetch_add(&double_release, 1);
  atomic_fetch_add(&releases, 1);
}

/* owned buffer k, then SMALL copied bytes; the last copy carries fin */
static void pump(kw_stream *s) {
  while (next_buf < NBUF) {
    if (!small_pending) {
      owned *o = &bufs[next_buf];
      kw_err e = kw_stream_write_owned(s, o->data, BUFLEN, false, release_cb, o);
      if (e == KW_ERR_AGAIN) {
        atomic_store(&again_seen, 1);
        return; /* stream_writable resumes */
      }
      EXPECT(e == KW_OK, "owned write %d: %s", next_buf, kw_errname(e));
      if (e != KW_OK)
        return;
      written += BUFLEN;
      small_pending = true;
    }
    /* the copied part may be taken in pieces */
    uint8_t b[SMALL];
    size_t n = SMALL - small_off;
    qt_fill(b, n, 7, written);
    size_t w = 0;
    bool last = next_buf == NBUF - 1;
    kw_err e = kw_stream_write(s, b, n, last, &w);
    EXPECT(e == KW_OK || e == KW_ERR_AGAIN, "copied write: %s", kw_errname(e));
    written += w;
    small_off += w;
    if (w < n)
      return;
    small_off = 0;
    small_pending = false;
    next_buf++;
    if (last)
      atomic_store(&fin_done, 1);
  }
}

static void cli_writable(kw_stream *s, void *u) {
  if (s == st) {
    atomic_store(&writable_seen, 1);
    pump(s);
  }
}

static const kw_callbacks cli_cbs = {.stream_writable = cli_writable};

static atomic_int err_len0, err_norel, err_big, err_after_fin, big_released;
static uint8_t *big;

static void big_release(void *user, uint8_t *data) {
  atomic_fetch_add(&big_released, 1);
}

static void start(kw_endpoint *ep, void *arg) {
  uint8_t one = 1;
  kw_err e = kw_conn_open_stream(conn, true, &st);
  EXPECT(e == KW_OK, "open: %s", kw_errname(e));
  if (e)
    return;
  atomic_store(&err_len0, kw_stream_write_owned(st, &one, 0, false, big_release, NULL));
  atomic_store(&err_norel, kw_stream_write_owned(st, &one, 1, false, NULL, NULL));
  /* larger than the default 16 MiB stream send buffer: can never fit */
  atomic_store(&err_big, kw_stream_write_owned(st, big, (16u << 20) + 1, false,
                                               big_release, NULL));
  pump(st);
}

static void after_fin(kw_endpoint *ep, void *arg) {
  uint8_t one = 1;
  atomic_store(&err_after_fin,
               kw_stream_write_owned(st, &one, 1, false, big_release, NULL));
}

/* a second stream whose owned bytes are still in flight at close */
static owned late[4];
static atomic_int late_releases;
static void late_release(void *user, uint8_t *data) {
  owned *o = user;
  atomic_fetch_add(&o->released, 1);
  atomic_fetch_add(&late_releases, 1);
}
static atomic_int late_ok;
static void late_writes(kw_endpoint *ep, void *arg) {
  kw_stream *s2 = NULL;
  if (kw_conn_open_stream(conn, true, &s2) != KW_OK)
    return;
  int ok = 0;
  for (int i = 0; i < 4; i++)
    if (kw_stream_write_owned(s2, late[i].data, BUFLEN, false, late_release,
                              &late[i]) == KW_OK)
      ok++;
  atomic_store(&late_ok, ok);
  kw_conn_close(conn, 0, NULL); /* at once: nothing acknowledged yet */
}

int main(void) {
  qt_begin(60);
  for (int k = 0; k < NBUF; k++) {
    bufs[k].data = malloc(BUFLEN);
    /* the stream offset of buffer k: k whole rounds of BUFLEN + SMALL */
    qt_fill(bufs[k].data, BUFLEN, 7, (size_t)k * (BUFLEN + SMALL));
  }
  for (int k = 0; k < 4; k++)
    late[k].data = calloc(1, BUFLEN);
  big = malloc((16u << 20) + 1);

  kw_endpoint *srv = qt_endpoint(ALPN, &srv_cbs, NULL);
  kw_endpoint *cli = qt_endpoint(NULL, &cli_cbs, NULL);
  kw_endpoint_addr to = qt_addr(srv, 4);
  kw_err e = qt_dial(cli, &to, ALPN, &conn, 10000);
  CHECK(e == KW_OK, "connect: %s", kw_errname(e));
  if (e)
    return qt_report();

  qt_call(cli, start, NULL);
  CHECK(atomic_load(&err_len0) == KW_ERR_INVALID_ARG, "len 0: %s",
        kw_errname(atomic_load(&err_len0)));
  CHECK(atomic_load(&err_norel) == KW_ERR_INVALID_ARG, "no release: %s",
        kw_errname(atomic_load(&err_norel)));
  CHECK(atomic_load(&err_big) == KW_ERR_INVALID_ARG, "larger than the buffer: %s",
        kw_errname(atomic_load(&err_big)));

  QT_WAIT(srx.fin, 30000);
  CHECK(srx.fin && !srx.bad && srx.got == TOTAL, "%zu of %zu bytes, in order",
        srx.got, TOTAL);
  CHECK(atomic_load(&fin_done), "every write was taken");
  CHECK(atomic_load(&again_seen) && atomic_load(&writable_seen),
        "a write that did not fit got KW_ERR_AGAIN, then stream_writable");
  /* acknowledgements follow the last bytes by a round trip */
  QT_WAIT(atomic_load(&releases) == NBUF, 10000);
  CHECK(atomic_load(&releases) == NBUF, "%d of %d buffers released",
        atomic_load(&releases), NBUF);
  CHECK(atomic_load(&double_release) == 0, "each buffer released once, as given");
  qt_call(cli, after_fin, NULL);
  CHECK(atomic_load(&err_after_fin) == KW_ERR_STATE, "after fin: %s",
        kw_errname(atomic_load(&err_after_fin)));
  CHECK(atomic_load(&big_released) == 0, "refused buffers were never released");

  qt_call(cli, late_writes, NULL);
  CHECK(atomic_load(&late_ok) == 4, "4 owned writes before the close (%d)",
        atomic_load(&late_ok));
  QT_WAIT(atomic_load(&late_releases) == 4, 10000);
  CHECK(atomic_load(&late_releases) == 4,
        "buffers in flight at the close released (%d of 4)",
        atomic_load(&late_releases));
  int once = 1;
  for (int k = 0; k < 4; k++)
    once &= atomic_load(&late[k].released) == 1;
  CHECK(once, "each in-flight buffer released once");

  kw_endpoint_close(cli);
  kw_endpoint_close(srv);
  kw_endpoint_free(cli);
  kw_endpoint_free(srv);
  for (int k = 0; k < NBUF; k++)
    free(bufs[k].data);
  for (int k = 0; k < 4; k++)
    free(late[k].data);
  free(big);
  return qt_report();
}
