/* SPDX-License-Identifier: MIT */
/*
 * Counters in the Prometheus text format (version 0.0.4), served over
 * plain HTTP on --metrics-listen: GET /metrics (or /). At most 32
 * scrapers at once, each with 5 s to send its request.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/osaddr.h"
#include "relay/relay.h"

#define MAX_SCRAPERS 32
#define SCRAPE_MS 5000
#define REQ_MAX 4096

typedef struct scraper scraper;
struct kw__rs_metrics_srv {
  kw__rs *rs;
  uv_tcp_t tcp;
  scraper *list;
  unsigned n;
  bool tcp_closed; /* freed when this and every scraper are closed */
};

struct scraper {
  scraper *next;
  kw__rs_metrics_srv *ms;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wr;
  int handles;
  bool done;
  char *resp;
  size_t got;
  char req[REQ_MAX];
};

typedef struct sbuf {
  char *p;
  size_t len, cap;
  bool err;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->err)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->err = true;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap * 2 + (size_t)n;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->err = true;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
}

static void metric(sbuf *b, const char *name, const char *type,
                   const char *help) {
  sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *kw__rs_metrics_render(const kw__rs *rs, size_t *len) {
  const kw__rs_metrics *m = &rs->m;
  sbuf b = {malloc(4096), 0, 4096, false};
  if (!b.p)
    return NULL;
  b.p[0] = 0;
  static const char *drop_names[KW_RS_DROP_N] = {"queue_full", "unknown_dest",
                                                 "self", "fair_share"};
  static const char *auth_names[KW_RS_AUTH_N] = {"no_auth",     "bad_signature",
                                                 "not_allowed", "timeout",
                                                 "malformed",   "v1_refused"};
  static const char *proto_names[KW_RS_PROTO_N] = {
      "bad_http", "bad_frame",   "oversize_frame", "tls",
      "silent",   "max_clients", "max_pending",    "deadline"};
  static const char *lk_names[KW_RS_LK_N] = {
      "ok",          "not_found", "stale",       "bad_signature",
      "bad_request", "full",      "rate_limited"};

  metric(&b, "keyway_relay_clients", "gauge",
         "Authenticated relay clients connected now.");
  sb_printf(&b, "keyway_relay_clients %llu\n", (unsigned long long)m->clients);
  metric(&b, "keyway_relay_connections", "gauge",
         "TCP connections open now (any state).");
  sb_printf(&b, "keyway_relay_connections %llu\n",
            (unsigned long long)m->conns_open);
  metric(&b, "keyway_relay_pending_connections", "gauge",
         "Connections not authenticated yet (TLS, HTTP, upgrade, auth).");
  sb_printf(&b, "keyway_relay_pending_connections %llu\n",
            (unsigned long long)m->pending);
  metric(&b, "keyway_relay_connections_total", "counter",
         "TCP connections accepted.");
  sb_printf(&b, "keyway_relay_connections_total %llu\n",
            (unsigned long long)m->conns_accepted);
  metric(&b, "keyway_relay_auth_total", "counter",
         "Successful client authentications.");
  sb_printf(&b, "keyway_relay_auth_total %llu\n",
            (unsigned long long)m->auth_ok);
  metric(&b, "keyway_relay_auth_failures_total", "counter",
         "Failed client authentications by reason.");
  for (int i = 0; i < KW_RS_AUTH_N; i++)
    sb_printf(&b, "keyway_relay_auth_failures_total{reason=\"%s\"} %llu\n",
              auth_names[i], (unsigned long long)m->auth_fail[i]);
  metric(&b, "keyway_relay_protocol_errors_total", "counter",
         "Connections closed for a protocol violation, by reason.");
  for (int i = 0; i < KW_RS_PROTO_N; i++)
    sb_printf(&b, "keyway_relay_protocol_errors_total{reason=\"%s\"} %llu\n",
              proto_names[i], (unsigned long long)m->proto_err[i]);
  metric(&b, "keyway_relay_frames_received_total", "counter",
         "Frames received from authenticated clients.");
  sb_printf(&b, "keyway_relay_frames_received_total %llu\n",
            (unsigned long long)m->frames_in);
  metric(&b, "keyway_relay_bytes_received_total", "counter",
         "Frame bytes received from authenticated clients.");
  sb_printf(&b, "keyway_relay_bytes_received_total %llu\n",
            (unsigned long long)m->bytes_in);
  metric(&b, "keyway_relay_frames_forwarded_total", "counter",
         "Packets queued to their destination client.");
  sb_printf(&b, "keyway_relay_frames_forwarded_total %llu\n",
            (unsigned long long)m->frames_fwd);
  metric(&b, "keyway_relay_bytes_forwarded_total", "counter",
         "Packet payload bytes queued to their destination client.");
  sb_printf(&b, "keyway_relay_bytes_forwarded_total %llu\n",
            (unsigned long long)m->bytes_fwd);
  metric(&b, "keyway_relay_drops_total", "counter",
         "Packets dropped by reason.");
  for (int i = 0; i < KW_RS_DROP_N; i++)
    sb_printf(&b, "keyway_relay_drops_total{reason=\"%s\"} %llu\n",
              drop_names[i], (unsigned long long)m->drops[i]);
  metric(&b, "keyway_relay_peer_gone_total", "counter",
         "PEER_GONE frames sent.");
  sb_printf(&b, "keyway_relay_peer_gone_total %llu\n",
            (unsigned long long)m->peer_gone_sent);
  metric(&b, "keyway_relay_peer_gone_suppressed_total", "counter",
         "PEER_GONE(not here) answers not sent: over the per-client rate.");
  sb_printf(&b, "keyway_relay_peer_gone_suppressed_total %llu\n",
            (unsigned long long)m->peer_gone_suppressed);
  metric(&b, "keyway_relay_keepalives_total", "counter",
         "Keep-alive pings sent to clients.");
  sb_printf(&b, "keyway_relay_keepalives_total %llu\n",
            (unsigned long long)m->keepalives_sent);
  metric(&b, "keyway_relay_rate_limited_total", "counter",
         "Times a client was paused by its rate limit.");
  sb_printf(&b, "keyway_relay_rate_limited_total %llu\n",
            (unsigned long long)m->rate_limited);
  metric(&b, "keyway_relay_replaced_total", "counter",
         "Connections closed because the same id connected again.");
  sb_printf(&b, "keyway_relay_replaced_total %llu\n",
            (unsigned long long)m->replaced);
  metric(&b, "keyway_relay_http_requests_total", "counter",
         "Plain HTTPS requests on the relay port by result.");
  sb_printf(&b, "keyway_relay_http_requests_total{result=\"ping\"} %llu\n",
            (unsigned long long)m->http_pings);
  sb_printf(&b, "keyway_relay_http_requests_total{result=\"not_found\"} %llu\n",
            (unsigned long long)m->http_other[0]);
  sb_printf(&b,
            "keyway_relay_http_requests_total{result=\"bad_request\"} %llu\n",
            (unsigned long long)m->http_other[1]);
  metric(&b, "keyway_relay_stun_requests_total", "counter",
         "STUN Binding requests answered.");
  sb_printf(&b, "keyway_relay_stun_requests_total %llu\n",
            (unsigned long long)m->stun_requests);
  metric(&b, "keyway_relay_stun_errors_total", "counter",
         "STUN requests answered with an error response (400/420).");
  sb_printf(&b, "keyway_relay_stun_errors_total %llu\n",
            (unsigned long long)m->stun_errors);
  metric(&b, "keyway_relay_stun_dropped_total", "counter",
         "UDP datagrams on the STUN port dropped (not STUN, or unsendable "
         "answer).");
  sb_printf(&b, "keyway_relay_stun_dropped_total %llu\n",
            (unsigned long long)m->stun_dropped);
  metric(&b, "keyway_relay_lookup_puts_total", "counter",
         "Lookup record writes by result.");
  for (int i = 0; i < KW_RS_LK_N; i++)
    if (i != KW_RS_LK_NOT_FOUND)
      sb_printf(&b, "keyway_relay_lookup_puts_total{result=\"%s\"} %llu\n",
                lk_names[i], (unsigned long long)m->lookup_put[i]);
  metric(&b, "keyway_relay_lookup_gets_total", "counter",
         "Lookup record reads by result.");
  for (int i = 0; i < KW_RS_LK_N; i++)
    if (i == KW_RS_LK_OK || i == KW_RS_LK_NOT_FOUND ||
        i == KW_RS_LK_BAD_SIGNATURE)
      sb_printf(&b, "keyway_relay_lookup_gets_total{result=\"%s\"} %llu\n",
                lk_names[i], (unsigned long long)m->lookup_get[i]);
  metric(&b, "keyway_relay_lookup_records", "gauge",
         "Records in the lookup store.");
  sb_printf(&b, "keyway_relay_lookup_records %llu\n",
            (unsigned long long)m->lookup_records);
  if (rs->cfg.dht_listen.family) {
    static const char *dht_names[KW_RS_DHT_N] = {
        "found", "cached", "not_found", "bad_item", "stale", "busy"};
    metric(&b, "keyway_relay_dht_publish_total", "counter",
           "PUT /pkarr items by result.");
    for (int i = 0; i < KW_RS_LK_N; i++)
      if (i != KW_RS_LK_NOT_FOUND)
        sb_printf(&b, "keyway_relay_dht_publish_total{result=\"%s\"} %llu\n",
                  lk_names[i], (unsigned long long)m->dht_publish[i]);
    metric(&b, "keyway_relay_dht_lookups_total", "counter",
           "Lookup misses asked of the DHT, by result.");
    for (int i = 0; i < KW_RS_DHT_N; i++)
      sb_printf(&b, "keyway_relay_dht_lookups_total{result=\"%s\"} %llu\n",
                dht_names[i], (unsigned long long)m->dht_get[i]);
    metric(&b, "keyway_relay_dht_puts_total", "counter",
           "Items put into the DHT (first puts and republishing).");
    sb_printf(&b, "keyway_relay_dht_puts_total %llu\n",
              (unsigned long long)m->dht_puts);
    metric(&b, "keyway_relay_dht_datagrams_total", "counter",
           "DHT datagrams by direction.");
    sb_printf(&b, "keyway_relay_dht_datagrams_total{dir=\"sent\"} %llu\n",
              (unsigned long long)m->dht_sent);
    sb_printf(&b, "keyway_relay_dht_datagrams_total{dir=\"received\"} %llu\n",
              (unsigned long long)m->dht_received);
    sb_printf(&b, "keyway_relay_dht_datagrams_total{dir=\"dropped\"} %llu\n",
              (unsigned long long)m->dht_send_dropped);
    metric(&b, "keyway_relay_dht_nodes", "gauge", "Nodes in the routing table.");
    sb_printf(&b, "keyway_relay_dht_nodes %llu\n",
              (unsigned long long)m->dht_nodes);
    metric(&b, "keyway_relay_dht_items", "gauge", "BEP 44 items stored.");
    sb_printf(&b, "keyway_relay_dht_items %llu\n",
              (unsigned long long)m->dht_items);
  }
  metric(&b, "keyway_relay_uptime_seconds", "gauge",
         "Seconds since the relay started.");
  sb_printf(&b, "keyway_relay_uptime_seconds %.3f\n",
            (double)(kw__rs_now_ns() - rs->started_ns) / 1e9);
  if (b.err) {
    free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}

/* ---- the plain HTTP endpoint ------------------------------------------ */

static void scraper_closed(uv_handle_t *h) {
  scraper *s = h->data;
  if (--s->handles > 0)
    return;
  kw__rs_metrics_srv *ms = s->ms;
  for (scraper **pp = &ms->list; *pp; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  ms->n--;
  free(s->resp);
  free(s);
  if (ms->tcp_closed && ms->n == 0)
    free(ms);
}

static void scraper_end(scraper *s) {
  if (s->done)
    return;
  s->done = true;
  s->handles = 2;
  uv_close((uv_handle_t *)&s->tcp, scraper_closed);
  uv_close((uv_handle_t *)&s->timer, scraper_closed);
}

static void wrote(uv_write_t *w, int status) {
  scraper *s = w->data;
  (void)status;
  scraper_end(s);
}

static void respond(scraper *s, int status, const char *reason,
                    const char *body, size_t blen) {
  char hdr[256];
  int hn = snprintf(hdr, sizeof hdr,
                    "HTTP/1.1 %d %s\r\nContent-Type: text/plain; "
                    "version=0.0.4; charset=utf-8\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n",
                    status, reason, blen);
  s->resp = malloc((size_t)hn + blen);
  if (!s->resp) {
    scraper_end(s);
    return;
  }
  memcpy(s->resp, hdr, (size_t)hn);
  if (blen)
    memcpy(s->resp + hn, body, blen);
  uv_buf_t b = uv_buf_init(s->resp, (unsigned)((size_t)hn + blen));
  s->wr.data = s;
  uv_read_stop((uv_stream_t *)&s->tcp);
  if (uv_write(&s->wr, (uv_stream_t *)&s->tcp, &b, 1, wrote) != 0)
    scraper_end(s);
}

static void handle(scraper *s) {
  kw__rs *rs = s->ms->rs;
  /* request line: METHOD SP PATH SP VERSION */
  const char *p = s->req;
  bool get = strncmp(p, "GET ", 4) == 0;
  bool head = strncmp(p, "HEAD ", 5) == 0;
  if (!get && !head) {
    respond(s, 405, "Method Not Allowed", "", 0);
    return;
  }
  p += get ? 4 : 5;
  const char *sp = strchr(p, ' ');
  size_t plen = sp ? (size_t)(sp - p) : 0;
  bool ok = (plen == 8 && strncmp(p, "/metrics", 8) == 0) ||
            (plen == 1 && p[0] == '/');
  if (!ok) {
    respond(s, 404, "Not Found", "not found\n", 10);
    return;
  }
  rs->m.metrics_scrapes++;
  size_t len = 0;
  char *body = kw__rs_metrics_render(rs, &len);
  if (!body) {
    respond(s, 500, "Internal Server Error", "", 0);
    return;
  }
  /* HEAD: same headers, no body */
  if (head) {
    char hdr[256];
    int hn = snprintf(hdr, sizeof hdr,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; "
                      "version=0.0.4; charset=utf-8\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      len);
    free(body);
    s->resp = malloc((size_t)hn);
    if (!s->resp) {
      scraper_end(s);
      return;
    }
    memcpy(s->resp, hdr, (size_t)hn);
    uv_buf_t b = uv_buf_init(s->resp, (unsigned)hn);
    s->wr.data = s;
    uv_read_stop((uv_stream_t *)&s->tcp);
    if (uv_write(&s->wr, (uv_stream_t *)&s->tcp, &b, 1, wrote) != 0)
      scraper_end(s);
    return;
  }
  respond(s, 200, "OK", body, len);
  free(body);
}

static void s_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  scraper *s = h->data;
  (void)sz;
  b->base = s->req + s->got;
  b->len = REQ_MAX - 1 - s->got;
}

static void s_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  scraper *s = st->data;
  (void)b;
  if (n == 0 || s->done || s->resp)
    return;
  if (n < 0) {
    scraper_end(s);
    return;
  }
  s->got += (size_t)n;
  s->req[s->got] = 0;
  if (strstr(s->req, "\r\n\r\n") || strstr(s->req, "\n\n")) {
    handle(s);
    return;
  }
  if (s->got >= REQ_MAX - 1)
    respond(s, 431, "Request Header Fields Too Large", "", 0);
}

static void s_timeout(uv_timer_t *t) {
  scraper_end(t->data);
}

static void on_conn(uv_stream_t *l, int status) {
  kw__rs_metrics_srv *ms = l->data;
  if (status < 0)
    return;
  scraper *s = calloc(1, sizeof *s);
  if (!s)
    return;
  s->ms = ms;
  uv_tcp_init(ms->rs->loop, &s->tcp);
  uv_timer_init(ms->rs->loop, &s->timer);
  s->tcp.data = s;
  s->timer.data = s;
  s->next = ms->list;
  ms->list = s;
  ms->n++;
  if (uv_accept(l, (uv_stream_t *)&s->tcp) != 0 || ms->n > MAX_SCRAPERS ||
      ms->rs->stopping) {
    scraper_end(s);
    return;
  }
  uv_timer_start(&s->timer, s_timeout, SCRAPE_MS, 0);
  if (uv_read_start((uv_stream_t *)&s->tcp, s_alloc, s_read) != 0)
    scraper_end(s);
}

kw_err kw__rs_metrics_start(kw__rs *rs) {
  if (rs->cfg.metrics_listen.family == 0)
    return KW_OK;
  kw__rs_metrics_srv *ms = calloc(1, sizeof *ms);
  if (!ms)
    return KW_ERR_NOMEM;
  ms->rs = rs;
  uv_tcp_init(rs->loop, &ms->tcp);
  ms->tcp.data = ms;
  rs->metrics = ms;
  struct sockaddr_storage ss;
  socklen_t sl;
  kw__sockaddr_to_os(&rs->cfg.metrics_listen, &ss, &sl);
  if (uv_tcp_bind(&ms->tcp, (struct sockaddr *)&ss,
                  rs->cfg.metrics_listen.family == 6 ? UV_TCP_IPV6ONLY : 0) !=
          0 ||
      uv_listen((uv_stream_t *)&ms->tcp, 64, on_conn) != 0)
    return KW_ERR_ADDR;
  int nl = sizeof ss;
  if (uv_tcp_getsockname(&ms->tcp, (struct sockaddr *)&ss, &nl) == 0)
    kw__sockaddr_from_os((struct sockaddr *)&ss, &rs->cfg.metrics_listen);
  char a[KW_SOCKADDR_STRLEN];
  kw_sockaddr_format(&rs->cfg.metrics_listen, a, sizeof a);
  kw__rs_log(rs, KW_RS_INFO, "metrics.listening", "addr=%s", a);
  return KW_OK;
}

static void ms_closed(uv_handle_t *h) {
  kw__rs_metrics_srv *ms = h->data;
  ms->tcp_closed = true;
  if (ms->n == 0)
    free(ms);
}

void kw__rs_metrics_stop(kw__rs *rs) {
  kw__rs_metrics_srv *ms = rs->metrics;
  if (!ms)
    return;
  for (scraper *s = ms->list; s; s = s->next)
    scraper_end(s);
  rs->metrics = NULL;
  uv_close((uv_handle_t *)&ms->tcp, ms_closed);
}
