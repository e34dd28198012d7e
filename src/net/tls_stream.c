/* SPDX-License-Identifier: MIT */
/*
 * TLS over libuv TCP with GnuTLS memory transport functions.
 *
 * Receive: uv_read fills `rx` with ciphertext; the pull function hands it
 * to GnuTLS; decrypted records are gathered into `pt` (up to 64 KiB) and
 * delivered in one on_data call. Reading stops while paused and resumes
 * from an idle handle, which also finishes any ciphertext left in `rx`.
 *
 * Send: writes within one loop iteration go into the corked session
 * (GnuTLS joins them into full records); the idle handle uncorks at the
 * end of the iteration. The push function tries a direct write to the
 * socket when nothing is queued, so in the common case a record goes from
 * GnuTLS's buffer straight to the kernel; what the kernel does not take is
 * copied into a chunk and written by uv_write.
 */
#include "net/tls_stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <gnutls/gnutls.h>

#include "net/osaddr.h"

#define RX_CAP (64u * 1024)
#define PT_CAP (64u * 1024)
#define CHUNK_MIN (64u * 1024)
#define CORK_FLUSH (64u * 1024)

/* TLS 1.3 or 1.2; AES-128-GCM first (fastest with AES-NI). */
#define PRIORITY                                                               \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:"       \
  "+AES-256-GCM:+CHACHA20-POLY1305"

typedef struct txchunk txchunk;
struct txchunk {
  txchunk *next;
  kw__tls_stream *s;
  uv_write_t req;
  bool in_flight;
  size_t len, cap;
  uint8_t data[];
};

typedef enum sstate {
  ST_CONNECTING,
  ST_HANDSHAKE,
  ST_OPEN,
  ST_CLOSING, /* graceful close: draining writes, waiting for EOF */
  ST_DEAD,    /* handles closing; on_close pending */
} sstate;

struct kw__tls_stream {
  uv_loop_t *loop;
  uv_tcp_t *tcp;
  uv_timer_t timer; /* handshake deadline, then linger */
  uv_idle_t idle;   /* end-of-iteration flush and resume */
  uv_connect_t creq;
  uv_shutdown_t sreq;
  int open_handles;
  gnutls_session_t sess;
  gnutls_certificate_credentials_t own_cred; /* client only */
  kw__tls_stream_cbs cbs;
  void *ud;
  sstate state;
  kw_err close_err;
  kw_err io_err; /* set by the push function on a socket error */
  bool paused, reading, idle_on;
  bool want_writable;
  bool corked;
  bool got_eof;
  bool shutdown_done;
  size_t corked_bytes;
  size_t hwm;
  /* ciphertext received, not yet pulled by GnuTLS */
  uint8_t *rx;
  size_t rx_off, rx_len;
  uint8_t *pt; /* decrypted batch */
  /* plaintext written before the handshake finished */
  uint8_t *pre;
  size_t pre_len, pre_cap;
  txchunk *tx_head, *tx_tail;
  size_t tx_bytes;
};

static void teardown(kw__tls_stream *s);
static void process_rx(kw__tls_stream *s);
static void start_reading(kw__tls_stream *s);

/* ---- helpers ---------------------------------------------------------- */

static void fail(kw__tls_stream *s, kw_err err) {
  if (s->state == ST_DEAD)
    return;
  if (s->state != ST_CLOSING)
    s->close_err = err;
  teardown(s);
}

static void idle_start(kw__tls_stream *s);

size_t kw__tls_stream_queued(const kw__tls_stream *s) {
  return s->pre_len + s->corked_bytes + s->tx_bytes;
}

static void check_writable(kw__tls_stream *s) {
  if (s->want_writable && s->state == ST_OPEN &&
      kw__tls_stream_queued(s) <= s->hwm / 4) {
    s->want_writable = false;
    if (s->cbs.on_writable)
      s->cbs.on_writable(s, s->ud);
  }
}

/* ---- send path -------------------------------------------------------- */

static void shutdown_cb(uv_shutdown_t *req, int status) {
  kw__tls_stream *s = req->data;
  (void)status;
  if (s->state != ST_CLOSING)
    return;
  s->shutdown_done = true;
  if (s->got_eof)
    teardown(s);
}

static void write_cb(uv_write_t *req, int status) {
  txchunk *c = req->data;
  kw__tls_stream *s = c->s;
  /* writes complete in order: c is the head */
  txchunk **pp = &s->tx_head;
  txchunk *prev = NULL;
  while (*pp && *pp != c) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (*pp) {
    *pp = c->next;
    if (s->tx_tail == c)
      s->tx_tail = prev;
  }
  s->tx_bytes -= c->len;
  free(c);
  if (status < 0) {
    if (status != UV_ECANCELED)
      fail(s, KW_ERR_IO);
    return;
  }
  check_writable(s);
}

static void tx_submit(kw__tls_stream *s) {
  if (s->state == ST_DEAD)
    return;
  for (txchunk *c = s->tx_head; c; c = c->next) {
    if (c->in_flight)
      continue;
    uv_buf_t b = uv_buf_init((char *)c->data, (unsigned)c->len);
    c->req.data = c;
    if (uv_write(&c->req, (uv_stream_t *)s->tcp, &b, 1, write_cb) != 0) {
      fail(s, KW_ERR_IO);
      return;
    }
    c->in_flight = true;
  }
}

static bool tx_append(kw__tls_stream *s, const uint8_t *p, size_t n) {
  txchunk *t = s->tx_tail;
  if (t && !t->in_flight && t->cap - t->len >= n) {
    memcpy(t->data + t->len, p, n);
    t->len += n;
    s->tx_bytes += n;
    return true;
  }
  size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
  txchunk *c = malloc(sizeof *c + cap);
  if (!c)
    return false;
  c->next = NULL;
  c->s = s;
  c->in_flight = false;
  c->len = n;
  c->cap = cap;
  memcpy(c->data, p, n);
  if (s->tx_tail)
    s->tx_tail->next = c;
  else
    s->tx_head = c;
  s->tx_tail = c;
  s->tx_bytes += n;
  return true;
}

static ssize_t push_vec(gnutls_transport_ptr_t ptr, const giovec_t *iov,
                        int iovcnt) {
  kw__tls_stream *s = ptr;
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++)
    total += iov[i].iov_len;
  if (s->state == ST_DEAD || s->io_err)
    return (ssize_t)total; /* discarded */
  size_t done = 0;
  if (!s->tx_head && s->tcp->write_queue_size == 0) {
    uv_buf_t bufs[16] = {{0}}; /* GCC 14 + libuv 1.50: -Wmaybe-uninitialized otherwise */
    int nb = iovcnt < 16 ? iovcnt : 16;
    for (int i = 0; i < nb; i++)
      bufs[i] = uv_buf_init(iov[i].iov_base, (unsigned)iov[i].iov_len);
    int r = uv_try_write((uv_stream_t *)s->tcp, bufs, (unsigned)nb);
    if (r > 0) {
      done = (size_t)r;
    } else if (r != UV_EAGAIN && r != UV_ENOSYS) {
      s->io_err = KW_ERR_IO;
      return (ssize_t)total;
    }
  }
  size_t skip = done;
  for (int i = 0; i < iovcnt; i++) {
    const uint8_t *p = iov[i].iov_base;
    size_t n = iov[i].iov_len;
    if (skip >= n) {
      skip -= n;
      continue;
    }
    if (!tx_append(s, p + skip, n - skip)) {
      s->io_err = KW_ERR_NOMEM;
      return (ssize_t)total;
    }
    skip = 0;
  }
  return (ssize_t)total;
}

static ssize_t pull_fn(gnutls_transport_ptr_t ptr, void *data, size_t len) {
  kw__tls_stream *s = ptr;
  size_t avail = s->rx_len - s->rx_off;
  if (avail == 0) {
    if (s->got_eof)
      return 0;
    gnutls_transport_set_errno(s->sess, EAGAIN);
    return -1;
  }
  size_t n = len < avail ? len : avail;
  memcpy(data, s->rx + s->rx_off, n);
  s->rx_off += n;
  return (ssize_t)n;
}

/* Turns corked plaintext into records and hands them to the socket. */
static void uncork(kw__tls_stream *s) {
  if (s->corked) {
    s->corked = false;
    s->corked_bytes = 0;
    int rc = gnutls_record_uncork(s->sess, GNUTLS_RECORD_WAIT);
    if (rc < 0) {
      fail(s, KW_ERR_TLS);
      return;
    }
  }
  if (s->io_err) {
    fail(s, s->io_err);
    return;
  }
  tx_submit(s);
}

static kw_err send_plain(kw__tls_stream *s, const uint8_t *p, size_t n) {
  if (!s->corked) {
    gnutls_record_cork(s->sess);
    s->corked = true;
    idle_start(s);
  }
  while (n > 0) {
    ssize_t r = gnutls_record_send(s->sess, p, n);
    if (r < 0) {
      if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
        continue;
      return KW_ERR_TLS;
    }
    p += r;
    n -= (size_t)r;
    s->corked_bytes += (size_t)r;
  }
  return KW_OK;
}

kw_err kw__tls_stream_writev(kw__tls_stream *s, const uv_buf_t *bufs,
                             size_t nbufs) {
  if (!s || (nbufs && !bufs))
    return KW_ERR_INVALID_ARG;
  if (s->state >= ST_CLOSING)
    return KW_ERR_CLOSED;
  size_t total = 0;
  for (size_t i = 0; i < nbufs; i++)
    total += bufs[i].len;
  size_t q = kw__tls_stream_queued(s);
  if (q > 0 && q + total > s->hwm) {
    s->want_writable = true;
    return KW_ERR_FULL;
  }
  if (total == 0)
    return KW_OK;
  if (s->state != ST_OPEN) {
    if (s->pre_len + total > s->pre_cap) {
      size_t cap = s->pre_cap ? s->pre_cap : 4096;
      while (cap < s->pre_len + total)
        cap *= 2;
      uint8_t *np = realloc(s->pre, cap);
      if (!np)
        return KW_ERR_NOMEM;
      s->pre = np;
      s->pre_cap = cap;
    }
    for (size_t i = 0; i < nbufs; i++) {
      memcpy(s->pre + s->pre_len, bufs[i].base, bufs[i].len);
      s->pre_len += bufs[i].len;
    }
    return KW_OK;
  }
  for (size_t i = 0; i < nbufs; i++) {
    kw_err e = send_plain(s, (const uint8_t *)bufs[i].base, bufs[i].len);
    if (e != KW_OK) {
      fail(s, e);
      return e;
    }
  }
  if (s->corked_bytes >= CORK_FLUSH)
    uncork(s);
  return KW_OK;
}

kw_err kw__tls_stream_write(kw__tls_stream *s, const uint8_t *p, size_t n) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  if (n > UINT32_MAX)
    return KW_ERR_INVALID_ARG;
  return kw__tls_stream_writev(s, &b, 1);
}

void kw__tls_stream_set_hwm(kw__tls_stream *s, size_t hwm) {
  s->hwm = hwm ? hwm : KW_TLS_STREAM_HWM;
}

/* ---- handshake and receive path --------------------------------------- */

static void handshake_step(kw__tls_stream *s) {
  int rc;
  for (int tries = 0;; tries++) {
    rc = gnutls_handshake(s->sess);
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
      break;
    if (rc < 0 && !gnutls_error_is_fatal(rc) && tries < 8)
      continue;
    break;
  }
  if (s->io_err) {
    fail(s, s->io_err);
    return;
  }
  tx_submit(s);
  if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
    if (s->got_eof)
      fail(s, KW_ERR_CLOSED);
    return;
  }
  if (rc < 0) {
    kw_err e = KW_ERR_TLS;
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR ||
        rc == GNUTLS_E_CERTIFICATE_ERROR)
      e = KW_ERR_CERT;
    else if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PULL_ERROR)
      e = KW_ERR_CLOSED;
    fail(s, e);
    return;
  }
  s->state = ST_OPEN;
  uv_timer_stop(&s->timer);
  if (s->pre_len) {
    kw_err e = send_plain(s, s->pre, s->pre_len);
    free(s->pre);
    s->pre = NULL;
    s->pre_len = s->pre_cap = 0;
    if (e != KW_OK) {
      fail(s, e);
      return;
    }
  }
  if (s->cbs.on_open)
    s->cbs.on_open(s, s->ud);
}

static void process_rx_inner(kw__tls_stream *s) {
  if (s->state == ST_HANDSHAKE) {
    handshake_step(s);
    if (s->state != ST_OPEN)
      return;
  }
  while (s->state == ST_OPEN && !s->paused) {
    size_t n = 0;
    ssize_t rc = 0;
    if (!s->pt && !(s->pt = malloc(PT_CAP))) {
      fail(s, KW_ERR_NOMEM);
      return;
    }
    while (n < PT_CAP) {
      rc = gnutls_record_recv(s->sess, s->pt + n, PT_CAP - n);
      if (rc > 0)
        n += (size_t)rc;
      else
        break;
    }
    if (n > 0 && s->cbs.on_data)
      s->cbs.on_data(s, s->pt, n, s->ud);
    if (s->state != ST_OPEN)
      return;
    if (rc > 0)
      continue; /* the batch was full */
    if (rc == GNUTLS_E_AGAIN) {
      if (s->got_eof)
        fail(s, KW_ERR_CLOSED);
      break;
    }
    if (rc == GNUTLS_E_INTERRUPTED)
      continue;
    if (rc == 0 || rc == GNUTLS_E_PREMATURE_TERMINATION) {
      fail(s, KW_ERR_CLOSED);
      return;
    }
    if (!gnutls_error_is_fatal((int)rc))
      continue; /* e.g. a warning alert or a post-handshake message */
    fail(s, KW_ERR_TLS);
    return;
  }
  if (s->io_err)
    fail(s, s->io_err);
}

/* The receive buffers live only while there are bytes in them: an idle
 * connection holds none (thousands of relay clients sit idle). */
static void release_buffers(kw__tls_stream *s) {
  free(s->pt);
  s->pt = NULL;
  if (s->rx && s->rx_off == s->rx_len) {
    free(s->rx);
    s->rx = NULL;
    s->rx_off = s->rx_len = 0;
  }
}

static void process_rx(kw__tls_stream *s) {
  process_rx_inner(s);
  release_buffers(s);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  kw__tls_stream *s = h->data;
  (void)suggested;
  if (s->rx_off < s->rx_len) {
    /* must not happen: reading stops while ciphertext is left */
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  s->rx_off = s->rx_len = 0;
  if (!s->rx && !(s->rx = malloc(RX_CAP))) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  buf->base = (char *)s->rx;
  buf->len = RX_CAP;
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  kw__tls_stream *s = st->data;
  (void)buf;
  if (s->state == ST_DEAD)
    return;
  if (nread == UV_ENOBUFS) {
    fail(s, KW_ERR_NOMEM);
    return;
  }
  if (nread == 0) {
    release_buffers(s);
    return;
  }
  if (nread < 0) {
    s->got_eof = true;
    if (s->state == ST_CLOSING) {
      if (s->shutdown_done || nread != UV_EOF)
        teardown(s);
      return;
    }
    if (nread != UV_EOF) {
      fail(s, KW_ERR_IO);
      return;
    }
    if (s->reading) {
      uv_read_stop(st);
      s->reading = false;
    }
    if (s->state == ST_CONNECTING) {
      fail(s, KW_ERR_CLOSED);
      return;
    }
    process_rx(s);
    if (s->state == ST_OPEN && !s->paused)
      fail(s, KW_ERR_CLOSED);
    return;
  }
  if (s->state == ST_CLOSING) {
    s->rx_off = s->rx_len = 0; /* discarded */
    release_buffers(s);
    return;
  }
  s->rx_off = 0;
  s->rx_len = (size_t)nread;
  process_rx(s);
  if (s->state != ST_DEAD && s->rx_off < s->rx_len && s->reading) {
    uv_read_stop(st);
    s->reading = false;
  }
}

static void start_reading(kw__tls_stream *s) {
  if (s->reading || s->state == ST_DEAD || s->got_eof)
    return;
  if (uv_read_start((uv_stream_t *)s->tcp, alloc_cb, read_cb) != 0) {
    fail(s, KW_ERR_IO);
    return;
  }
  s->reading = true;
}

static void idle_cb(uv_idle_t *h) {
  kw__tls_stream *s = h->data;
  uv_idle_stop(h);
  s->idle_on = false;
  if (s->state == ST_OPEN) {
    uncork(s);
    check_writable(s);
  }
  if (s->state != ST_OPEN && s->state != ST_HANDSHAKE)
    return;
  if (s->paused)
    return;
  if (s->rx_off < s->rx_len || s->got_eof ||
      (s->state == ST_OPEN && gnutls_record_check_pending(s->sess) > 0)) {
    process_rx(s);
    if (s->state == ST_OPEN && !s->paused && s->got_eof &&
        s->rx_off == s->rx_len)
      fail(s, KW_ERR_CLOSED);
  }
  if ((s->state == ST_OPEN || s->state == ST_HANDSHAKE) && !s->paused &&
      s->rx_off == s->rx_len)
    start_reading(s);
}

static void idle_start(kw__tls_stream *s) {
  if (!s->idle_on && s->state != ST_DEAD) {
    uv_idle_start(&s->idle, idle_cb);
    s->idle_on = true;
  }
}

void kw__tls_stream_pause(kw__tls_stream *s, bool paused) {
  if (!s || s->state >= ST_CLOSING)
    return;
  s->paused = paused;
  if (paused) {
    if (s->reading) {
      uv_read_stop((uv_stream_t *)s->tcp);
      s->reading = false;
    }
  } else {
    idle_start(s); /* finishes what is buffered, then reads again */
  }
}

/* ---- closing ---------------------------------------------------------- */

static void handle_closed(uv_handle_t *h) {
  kw__tls_stream *s = h->data;
  if (--s->open_handles > 0)
    return;
  /* every write request has completed (cancelled) by now */
  txchunk *c = s->tx_head;
  while (c) {
    txchunk *n = c->next;
    free(c);
    c = n;
  }
  if (s->cbs.on_close)
    s->cbs.on_close(s, s->close_err, s->ud);
  if (s->sess)
    gnutls_deinit(s->sess);
  if (s->own_cred)
    gnutls_certificate_free_credentials(s->own_cred);
  free(s->tcp);
  free(s->rx);
  free(s->pt);
  free(s->pre);
  free(s);
}

static void teardown(kw__tls_stream *s) {
  if (s->state == ST_DEAD)
    return;
  s->state = ST_DEAD;
  s->open_handles = 3;
  uv_close((uv_handle_t *)&s->timer, handle_closed);
  uv_close((uv_handle_t *)&s->idle, handle_closed);
  uv_close((uv_handle_t *)s->tcp, handle_closed);
}

static void timer_cb(uv_timer_t *t) {
  kw__tls_stream *s = t->data;
  if (s->state == ST_CLOSING)
    teardown(s); /* linger over */
  else if (s->state != ST_OPEN)
    fail(s, KW_ERR_TIMEOUT);
}

void kw__tls_stream_close(kw__tls_stream *s) {
  if (!s || s->state >= ST_CLOSING)
    return;
  if (s->state != ST_OPEN) {
    s->close_err = KW_OK;
    teardown(s);
    return;
  }
  uncork(s);
  if (s->state != ST_OPEN)
    return; /* failed while flushing; on_close reports it */
  gnutls_bye(s->sess, GNUTLS_SHUT_WR);
  tx_submit(s);
  if (s->state == ST_DEAD)
    return;
  s->state = ST_CLOSING;
  s->close_err = KW_OK;
  s->want_writable = false;
  uv_timer_stop(&s->timer);
  uv_timer_start(&s->timer, timer_cb, KW_TLS_STREAM_LINGER_MS, 0);
  s->sreq.data = s;
  if (uv_shutdown(&s->sreq, (uv_stream_t *)s->tcp, shutdown_cb) != 0) {
    teardown(s);
    return;
  }
  /* keep reading (and discarding) to see the peer's FIN */
  if (s->got_eof)
    return;
  s->paused = false;
  start_reading(s);
}

void kw__tls_stream_abort(kw__tls_stream *s, kw_err err) {
  if (!s)
    return;
  if (s->state == ST_CLOSING)
    teardown(s);
  else
    fail(s, err);
}

bool kw__tls_stream_is_open(const kw__tls_stream *s) {
  return s && s->state == ST_OPEN;
}

/* ---- set-up ----------------------------------------------------------- */

static kw__tls_stream *stream_alloc(uv_loop_t *loop,
                                    const kw__tls_stream_cbs *cbs, void *ud) {
  kw__tls_stream *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->loop = loop;
  s->cbs = *cbs;
  s->ud = ud;
  s->hwm = KW_TLS_STREAM_HWM;
  return s;
}

static void stream_free_early(kw__tls_stream *s) {
  if (s->sess)
    gnutls_deinit(s->sess);
  if (s->own_cred)
    gnutls_certificate_free_credentials(s->own_cred);
  free(s->rx);
  free(s->pt);
  free(s);
}

static kw_err session_setup(kw__tls_stream *s, unsigned flags, void *cred) {
  if (gnutls_init(&s->sess, flags) < 0) {
    s->sess = NULL;
    return KW_ERR_TLS;
  }
  if (gnutls_priority_set_direct(s->sess, PRIORITY, NULL) < 0 ||
      gnutls_credentials_set(s->sess, GNUTLS_CRD_CERTIFICATE, cred) < 0)
    return KW_ERR_TLS;
  gnutls_transport_set_ptr(s->sess, s);
  gnutls_transport_set_vec_push_function(s->sess, push_vec);
  gnutls_transport_set_pull_function(s->sess, pull_fn);
  return KW_OK;
}

/* Timer, idle and the TCP handle are initialised: from here on every
 * failure goes through teardown. */
static void handles_init(kw__tls_stream *s) {
  uv_timer_init(s->loop, &s->timer);
  uv_idle_init(s->loop, &s->idle);
  s->timer.data = s;
  s->idle.data = s;
  s->tcp->data = s;
  uv_timer_start(&s->timer, timer_cb, KW_TLS_STREAM_HANDSHAKE_MS, 0);
}

static void connect_cb(uv_connect_t *req, int status) {
  kw__tls_stream *s = req->data;
  if (s->state != ST_CONNECTING)
    return;
  if (status < 0) {
    fail(s, status == UV_ECANCELED ? KW_ERR_CLOSED : KW_ERR_IO);
    return;
  }
  uv_tcp_nodelay(s->tcp, 1);
  s->state = ST_HANDSHAKE;
  start_reading(s);
  if (s->state == ST_HANDSHAKE)
    handshake_step(s);
}

static bool is_ip_literal(const char *h) {
  uint8_t b[16];
  return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

kw_err kw__tls_stream_connect(uv_loop_t *loop, const kw_sockaddr *to,
                              const char *host, const char *ca_file,
                              const kw__tls_stream_cbs *cbs, void *ud,
                              kw__tls_stream **out) {
  if (!loop || !to || !host || !cbs || !out ||
      (to->family != 4 && to->family != 6) || strlen(host) > 253)
    return KW_ERR_INVALID_ARG;
  kw__tls_stream *s = stream_alloc(loop, cbs, ud);
  if (!s)
    return KW_ERR_NOMEM;
  kw_err e = KW_ERR_TLS;
  if (gnutls_certificate_allocate_credentials(&s->own_cred) < 0) {
    s->own_cred = NULL;
    goto fail;
  }
  if (ca_file) {
    if (gnutls_certificate_set_x509_trust_file(s->own_cred, ca_file,
                                               GNUTLS_X509_FMT_PEM) <= 0) {
      e = KW_ERR_CERT;
      goto fail;
    }
  } else if (gnutls_certificate_set_x509_system_trust(s->own_cred) < 0) {
    goto fail;
  }
  e = session_setup(s, GNUTLS_CLIENT | GNUTLS_NONBLOCK, s->own_cred);
  if (e != KW_OK)
    goto fail;
  if (!is_ip_literal(host) && gnutls_server_name_set(s->sess, GNUTLS_NAME_DNS,
                                                     host, strlen(host)) < 0) {
    e = KW_ERR_TLS;
    goto fail;
  }
  gnutls_session_set_verify_cert(s->sess, host, 0);
  s->tcp = malloc(sizeof *s->tcp);
  if (!s->tcp) {
    e = KW_ERR_NOMEM;
    goto fail;
  }
  if (uv_tcp_init(loop, s->tcp) != 0) {
    free(s->tcp);
    e = KW_ERR_IO;
    goto fail;
  }
  s->state = ST_CONNECTING;
  handles_init(s);
  struct sockaddr_storage ss;
  socklen_t sl;
  kw__sockaddr_to_os(to, &ss, &sl);
  s->creq.data = s;
  if (uv_tcp_connect(&s->creq, s->tcp, (struct sockaddr *)&ss, connect_cb) !=
      0) {
    /* no callback for this stream: close quietly */
    s->cbs.on_close = NULL;
    teardown(s);
    return KW_ERR_ADDR;
  }
  *out = s;
  return KW_OK;
fail:
  stream_free_early(s);
  return e;
}

static void free_tcp_cb(uv_handle_t *h) {
  free(h);
}

kw_err kw__tls_stream_accept(uv_loop_t *loop, uv_tcp_t *tcp, void *server_cred,
                             const kw__tls_stream_cbs *cbs, void *ud,
                             kw__tls_stream **out) {
  if (!loop || !tcp || !server_cred || !cbs || !out) {
    if (tcp)
      uv_close((uv_handle_t *)tcp, free_tcp_cb);
    return KW_ERR_INVALID_ARG;
  }
  kw__tls_stream *s = stream_alloc(loop, cbs, ud);
  if (!s) {
    uv_close((uv_handle_t *)tcp, free_tcp_cb);
    return KW_ERR_NOMEM;
  }
  kw_err e = session_setup(s, GNUTLS_SERVER | GNUTLS_NONBLOCK, server_cred);
  if (e != KW_OK) {
    stream_free_early(s);
    uv_close((uv_handle_t *)tcp, free_tcp_cb);
    return e;
  }
  s->tcp = tcp;
  s->state = ST_HANDSHAKE;
  handles_init(s);
  uv_tcp_nodelay(tcp, 1);
  start_reading(s);
  if (s->state == ST_DEAD) {
    /* reading failed: the stream is going away; say nothing */
    s->cbs.on_close = NULL;
    return KW_ERR_IO;
  }
  *out = s;
  return KW_OK;
}

bool kw__tls_stream_peer_addr(const kw__tls_stream *s, kw_sockaddr *out) {
  if (!s || !out || s->state == ST_DEAD || s->state == ST_CONNECTING)
    return false;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(s->tcp, (struct sockaddr *)&ss, &len) != 0)
    return false;
  kw__sockaddr_from_os((struct sockaddr *)&ss, out);
  return out->family != 0;
}

const char *kw__tls_stream_cipher(const kw__tls_stream *s, char *buf,
                                  size_t buflen) {
  if (!buf || buflen == 0)
    return "";
  buf[0] = 0;
  if (!s || s->state != ST_OPEN)
    return buf;
  const char *v =
      gnutls_protocol_get_name(gnutls_protocol_get_version(s->sess));
  const char *c = gnutls_cipher_get_name(gnutls_cipher_get(s->sess));
  snprintf(buf, buflen, "%s %s", v ? v : "?", c ? c : "?");
  return buf;
}

kw_err kw__tls_stream_exporter(const kw__tls_stream *s, const char *label,
                               uint8_t *out, size_t n) {
  if (!s || !label || !out || n == 0)
    return KW_ERR_INVALID_ARG;
  if (s->state != ST_OPEN)
    return KW_ERR_STATE;
  /* Below TLS 1.3 the exporter identifies the session only with the
   * extended master secret (RFC 7627); without it, refuse. */
  if (gnutls_protocol_get_version(s->sess) != GNUTLS_TLS1_3 &&
      !gnutls_session_ext_master_secret_status(s->sess))
    return KW_ERR_TLS;
  if (gnutls_prf_rfc5705(s->sess, strlen(label), label, 0, NULL, n,
                         (char *)out) < 0)
    return KW_ERR_TLS;
  return KW_OK;
}
