/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 over a TLS stream (net/http_exchange.h).
 */
#include "net/http_exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http.h"

/* ---- receive buffer ----------------------------------------------------- */

void kw__http_rx_init(kw__http_rx *rx, size_t cap) {
  rx->buf = NULL;
  rx->len = 0;
  rx->cap = cap;
}

void kw__http_rx_free(kw__http_rx *rx) {
  free(rx->buf);
  rx->buf = NULL;
  rx->len = 0;
}

kw_err kw__http_rx_append(kw__http_rx *rx, const uint8_t *p, size_t n,
                          size_t *taken) {
  *taken = 0;
  if (!rx->buf) {
    rx->buf = malloc(rx->cap);
    if (!rx->buf)
      return KW_ERR_NOMEM;
    rx->len = 0;
  }
  size_t take = rx->cap - rx->len;
  if (take > n)
    take = n;
  memcpy(rx->buf + rx->len, p, take);
  rx->len += take;
  *taken = take;
  return KW_OK;
}

void kw__http_rx_consume(kw__http_rx *rx, size_t n) {
  if (n > rx->len)
    n = rx->len;
  memmove(rx->buf, rx->buf + n, rx->len - n);
  rx->len -= n;
}

void kw__http_rx_take(kw__http_rx *rx, kw__http_rx *out) {
  *out = *rx;
  rx->buf = NULL;
  rx->len = 0;
}

/* ---- server side -------------------------------------------------------- */

kw_err kw__http_respond(kw__tls_stream *s, int status, const char *ctype,
                        const uint8_t *body, size_t blen, bool close) {
  char head[512];
  size_t hn = 0;
  if (kw__http_resp_head(status, ctype, blen, close, head, sizeof head, &hn) !=
      KW_OK) {
    kw__tls_stream_abort(s, KW_ERR_STATE);
    return KW_ERR_STATE;
  }
  uv_buf_t b[2] = {uv_buf_init(head, (unsigned)hn),
                   uv_buf_init((char *)body, (unsigned)blen)};
  (void)kw__tls_stream_writev(s, b, blen ? 2 : 1);
  if (close)
    kw__tls_stream_close(s);
  return KW_OK;
}

/* ---- client side: one request, one response ----------------------------- */

typedef struct exchange {
  uint8_t *out; /* request bytes */
  size_t outlen;
  kw__http_rx rx;
  kw__http_exchange_cb cb;
  void *arg;
  bool done;
} exchange;

static void finish(exchange *x, kw_err err, int status, const uint8_t *body,
                   size_t len) {
  if (x->done)
    return;
  x->done = true;
  if (x->cb)
    x->cb(err, status, body, len, x->arg);
}

static void x_open(kw__tls_stream *s, void *ud) {
  exchange *x = ud;
  if (kw__tls_stream_write(s, x->out, x->outlen) != KW_OK)
    kw__tls_stream_abort(s, KW_ERR_IO);
}

static void x_data(kw__tls_stream *s, const uint8_t *p, size_t n, void *ud) {
  exchange *x = ud;
  if (x->done)
    return;
  size_t taken;
  if (kw__http_rx_append(&x->rx, p, n, &taken) != KW_OK || taken < n) {
    finish(x, KW_ERR_PARSE, 0, NULL, 0);
    kw__tls_stream_abort(s, KW_ERR_PARSE);
    return;
  }
  kw__http_resp r;
  kw_err e = kw__http_resp_parse(x->rx.buf, x->rx.len, &r);
  if (e == KW_ERR_AGAIN)
    return;
  if (e != KW_OK) {
    finish(x, KW_ERR_PARSE, 0, NULL, 0);
    kw__tls_stream_abort(s, KW_ERR_PARSE);
    return;
  }
  size_t body = r.has_length ? r.content_length : 0;
  if (x->rx.len < r.header_len + body)
    return;
  finish(x, KW_OK, r.status, x->rx.buf + r.header_len, body);
  kw__tls_stream_close(s);
}

static void x_writable(kw__tls_stream *s, void *ud) {
  (void)s;
  (void)ud;
}

static void x_close(kw__tls_stream *s, kw_err err, void *ud) {
  (void)s;
  exchange *x = ud;
  finish(x, err == KW_OK ? KW_ERR_CLOSED : err, 0, NULL, 0);
  kw__http_rx_free(&x->rx);
  free(x->out);
  free(x);
}

static const kw__tls_stream_cbs x_cbs = {x_open, x_data, x_writable, x_close};

kw_err kw__http_exchange(uv_loop_t *loop, const kw_sockaddr *to,
                         const char *host, const char *ca_file,
                         const char *method, const char *path,
                         const uint8_t *body, size_t bodylen, size_t max_resp,
                         kw__http_exchange_cb cb, void *arg) {
  char hh[300];
  if (strchr(host, ':'))
    snprintf(hh, sizeof hh, "[%s]:%u", host, to->port);
  else
    snprintf(hh, sizeof hh, "%s:%u", host, to->port);
  char head[640];
  int hl;
  if (strcmp(method, "GET") == 0)
    hl = snprintf(head, sizeof head,
                  "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                  path, hh);
  else
    hl = snprintf(head, sizeof head,
                  "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
                  "Connection: close\r\n\r\n",
                  method, path, hh, bodylen);
  if (hl < 0 || (size_t)hl >= sizeof head)
    return KW_ERR_INVALID_ARG;
  if (strcmp(method, "GET") == 0)
    bodylen = 0;
  exchange *x = calloc(1, sizeof *x);
  if (!x)
    return KW_ERR_NOMEM;
  x->cb = cb;
  x->arg = arg;
  kw__http_rx_init(&x->rx, max_resp);
  x->outlen = (size_t)hl + bodylen;
  x->out = malloc(x->outlen);
  if (!x->out) {
    free(x);
    return KW_ERR_NOMEM;
  }
  memcpy(x->out, head, (size_t)hl);
  if (bodylen)
    memcpy(x->out + hl, body, bodylen);
  kw__tls_stream *ts;
  kw_err e = kw__tls_stream_connect(loop, to, host, ca_file, &x_cbs, x, &ts);
  if (e != KW_OK) {
    free(x->out);
    free(x);
  }
  return e;
}
