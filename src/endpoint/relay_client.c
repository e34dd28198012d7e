/* SPDX-License-Identifier: MIT */
/*
 * The relay client: the endpoint's connections to keyway-relay servers
 * (docs/protocol/relay.md; docs/ARCHITECTURE.md section 4, "Home relay").
 *
 * Each relay of the map is one kw__relay: TLS over TCP, the HTTP/1.1
 * upgrade, the signed challenge, then frames. At start every relay is
 * dialled to measure its latency (a PING round trip once authenticated);
 * the lowest becomes the home relay, kept connected always and redialled
 * with back-off. Other relays connect on demand (a packet to send through
 * them) and close after 10 s without traffic.
 *
 * Sending never blocks: a relay whose TLS queue is full drops the packet
 * and counts it (QUIC's loss recovery and congestion control answer), and
 * while a relay connects, packets wait in a small bounded queue.
 */
#include "endpoint/relay_client.h"

#include "endpoint/changes.h"
#include "endpoint/lookup_client.h"
#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/magicsock.h"
#include "net/osaddr.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/relay_proto.h"
#include "core/relay_url.h"
#include "net/http_exchange.h"
#include "net/tls_stream.h"

#define KW_RELAY_IDLE_MS 10000
#define KW_RELAY_TICK_MS 1000
#define KW_RELAY_BACKOFF_MIN_MS 100
#define KW_RELAY_BACKOFF_MAX_MS 10000
#define KW_RELAY_PING_EVERY_MS 15000
#define KW_RELAY_PENDING_MAX 64 /* packets held while connecting */
#define KW_RELAY_HOME_BETTER_MS 10.0

typedef enum relay_state {
  R_IDLE,
  R_RESOLVING,
  R_CONNECTING, /* TCP + TLS */
  R_UPGRADING,  /* HTTP request sent, waiting for 101 */
  R_AUTH,       /* waiting for the challenge, then SERVER_INFO */
  R_READY,
} relay_state;

typedef struct pending_pkt {
  struct pending_pkt *next;
  uint8_t dst[KW_ID_LEN];
  size_t len;
  uint8_t data[];
} pending_pkt;

struct kw__relay {
  kw_endpoint *ep;
  int idx;
  char url[KW_MAX_RELAY_URL + 1];
  kw__relay_url u;
  relay_state state;
  bool want; /* keep (or get) connected */
  kw__tls_stream *ts;
  kw__relay_dec dec;
  kw__http_rx hrx;  /* the HTTP answer while upgrading */
  kw_sockaddr addr; /* the IP the TLS connection reached (STUN target) */
  bool have_addr;
  uv_getaddrinfo_t gai;
  bool gai_busy;
  uv_timer_t timer;
  uint64_t backoff_ms;
  uint64_t next_dial_ns;
  uint64_t last_traffic_ns;
  uint64_t last_ping_ns;
  uint8_t ping_nonce[KW_RELAY_NONCE_LEN];
  bool ping_out;
  double latency_ms; /* < 0: not measured */
  kw__relay_info info;
  pending_pkt *pend_head, *pend_tail;
  size_t npend;
  uint64_t drops;
};

/* The endpoint's relay map: what kw__relay_index hands out indexes into
 * (relays are only added, never removed, until kw__relays_free). */
struct kw__relay_map {
  kw__relay *relays[KW_MAX_RELAYS];
  size_t n;
  int home; /* the home relay's index, -1 while none */
};

static struct kw__relay_map *relays_of(const kw_endpoint *ep) {
  return kw__ep_relays(ep);
}

/* Relay `relay` of the map, NULL for an index out of it. */
static kw__relay *relay_at(const kw_endpoint *ep, int relay) {
  const struct kw__relay_map *m = relays_of(ep);
  return relay >= 0 && (size_t)relay < m->n ? m->relays[relay] : NULL;
}

static void relay_dial(kw__relay *r);

/* ---- helpers --------------------------------------------------------------
 */

static void relay_log_state(kw__relay *r, const char *ev, const char *extra) {
  kw__log(r->ep, KW_LOG_INFO, "relay", "relay.%s url=%s%s%s", ev, r->url,
          extra ? " " : "", extra ? extra : "");
}

static void pending_clear(kw__relay *r) {
  while (r->pend_head) {
    pending_pkt *p = r->pend_head;
    r->pend_head = p->next;
    free(p);
  }
  r->pend_tail = NULL;
  r->npend = 0;
}

static kw_err write_packet(kw__relay *r, const uint8_t *dst,
                           const uint8_t *data, size_t len) {
  uint8_t hdr[KW_RELAY_PACKET_HDR];
  if (kw__relay_packet_hdr(hdr, KW_RELAY_SEND_PACKET, dst, len) != KW_OK)
    return KW_ERR_INVALID_ARG;
  uv_buf_t b[2] = {uv_buf_init((char *)hdr, sizeof hdr),
                   uv_buf_init((char *)data, (unsigned)len)};
  kw_err e = kw__tls_stream_writev(r->ts, b, 2);
  if (e == KW_OK)
    r->last_traffic_ns = kw__now(r->ep);
  return e;
}

static kw_err write_msg(kw__relay *r, const kw__relay_msg *m) {
  uint8_t buf[512];
  size_t n;
  kw_err e = kw__relay_encode(m, buf, sizeof buf, &n);
  if (e != KW_OK)
    return e;
  return kw__tls_stream_write(r->ts, buf, n);
}

static void send_ping(kw__relay *r) {
  kw__relay_msg m;
  memset(&m, 0, sizeof m);
  m.type = KW_RELAY_PING;
  randombytes_buf(r->ping_nonce, sizeof r->ping_nonce);
  memcpy(m.nonce, r->ping_nonce, sizeof m.nonce);
  if (write_msg(r, &m) == KW_OK) {
    r->ping_out = true;
    r->last_ping_ns = kw__now(r->ep);
  }
}

/* Home relay choice with hysteresis: keep the current home unless another
 * is at least 10 ms better and better than 2/3 of the current latency. */
static void choose_home(kw_endpoint *ep) {
  struct kw__relay_map *m = relays_of(ep);
  int best = -1;
  for (size_t i = 0; i < m->n; i++) {
    kw__relay *r = m->relays[i];
    if (r->state != R_READY || r->latency_ms < 0)
      continue;
    if (best < 0 || r->latency_ms < m->relays[best]->latency_ms)
      best = (int)i;
  }
  int cur = m->home;
  if (best < 0 || best == cur)
    return;
  if (cur >= 0 && m->relays[cur]->state == R_READY &&
      m->relays[cur]->latency_ms >= 0) {
    double c = m->relays[cur]->latency_ms, b = m->relays[best]->latency_ms;
    if (!(c - b >= KW_RELAY_HOME_BETTER_MS && b < c * 2.0 / 3.0))
      return;
  }
  m->home = best;
  /* remotes dialled before we had a home can now be reached through it */
  kw__remotes_set_home(ep, best);
  kw__relay *h = m->relays[best];
  h->want = true;
  kw__endpoint_set_home_url(ep, h->url);
  char extra[64];
  snprintf(extra, sizeof extra, "latency_ms=%.2f", h->latency_ms);
  relay_log_state(h, "home", extra);
  kw__endpoint_changed(ep, KW__CHANGE_HOME_RELAY, "relay");
}

/* ---- the connection ---------------------------------------------------------
 */

static void schedule_redial(kw__relay *r) {
  if (!r->want || kw__ep_closing(r->ep))
    return;
  uint64_t b = r->backoff_ms ? r->backoff_ms : KW_RELAY_BACKOFF_MIN_MS;
  /* jitter: 75-125 % */
  uint64_t j = b * (75 + randombytes_uniform(51)) / 100;
  r->next_dial_ns = kw__now(r->ep) + j * 1000000ull;
  r->backoff_ms =
      b * 2 > KW_RELAY_BACKOFF_MAX_MS ? KW_RELAY_BACKOFF_MAX_MS : b * 2;
}

/* Every change of r->state goes through here. Entering R_IDLE means the
 * connection (or the attempt) ended: what waited for it is dropped and,
 * while the relay is wanted, the next dial is scheduled with backoff.
 * `ev` (with `extra`) names the transition in the log ("relay.<ev>"). */
static void relay_enter(kw__relay *r, relay_state s, const char *ev,
                        const char *extra) {
  r->state = s;
  if (ev)
    relay_log_state(r, ev, extra);
  if (s != R_IDLE)
    return;
  r->ping_out = false;
  pending_clear(r);
  if (!kw__ep_closing(r->ep))
    schedule_redial(r);
}

static void on_ready(kw__relay *r) {
  r->backoff_ms = 0;
  r->last_traffic_ns = kw__now(r->ep);
  char extra[96];
  char cbuf[64];
  snprintf(extra, sizeof extra, "tls=\"%s\"",
           kw__tls_stream_cipher(r->ts, cbuf, sizeof cbuf));
  relay_enter(r, R_READY, "connected", extra);
  if (relays_of(r->ep)->home == r->idx)
    kw__lookup_home_reconnected(
        r->ep); /* a restarted relay forgot our record */
  send_ping(r);
  /* flush what waited for the connection */
  while (r->pend_head) {
    pending_pkt *p = r->pend_head;
    r->pend_head = p->next;
    if (write_packet(r, p->dst, p->data, p->len) != KW_OK)
      r->drops++;
    free(p);
  }
  r->pend_tail = NULL;
  r->npend = 0;
}

/* The Host value of the upgrade request; version 2 signs it too. */
static void host_value(const kw__relay *r, char *host, size_t cap) {
  if (strchr(r->u.host, ':'))
    snprintf(host, cap, "[%s]:%u", r->u.host, r->u.port);
  else
    snprintf(host, cap, "%s:%u", r->u.host, r->u.port);
}

static void handle_frame(kw__relay *r, const kw__relay_frame *f) {
  kw__relay_msg m;
  if (kw__relay_parse(f, &m) != KW_OK) {
    kw__log(r->ep, KW_LOG_WARN, "relay", "relay.bad_frame url=%s type=%u",
            r->url, f->type);
    kw__tls_stream_abort(r->ts, KW_ERR_PARSE);
    return;
  }
  switch (m.type) {
  case KW_RELAY_SERVER_CHALLENGE: {
    if (r->state != R_AUTH)
      break;
    /* version 2 only: the signature covers this TLS session's exporter
     * value and the relay's name, so the relay cannot replay it elsewhere;
     * never fall back to version 1 */
    char host[KW_RELAY_HOST_MAX + 16];
    uint8_t ex[KW_RELAY_EXPORTER_LEN];
    kw__relay_msg a;
    memset(&a, 0, sizeof a);
    a.type = KW_RELAY_CLIENT_AUTH;
    memcpy(a.id, kw__ep_id(r->ep), KW_ID_LEN);
    host_value(r, host, sizeof host);
    if (m.version != KW_RELAY_VERSION ||
        kw__tls_stream_exporter(r->ts, KW_RELAY_EXPORTER_LABEL, ex,
                                sizeof ex) != KW_OK ||
        kw__relay_auth2_sign(kw__ep_cfg(r->ep)->sk, m.challenge, ex, host,
                             a.sig) != KW_OK) {
      kw__log(r->ep, KW_LOG_WARN, "relay",
              "relay.auth_failed url=%s version=%u", r->url, m.version);
      kw__tls_stream_abort(r->ts, KW_ERR_PARSE);
      return;
    }
    write_msg(r, &a);
    break;
  }
  case KW_RELAY_SERVER_INFO:
    if (r->state != R_AUTH)
      break;
    r->info = m.info;
    on_ready(r);
    break;
  case KW_RELAY_RECV_PACKET: {
    if (r->state != R_READY)
      break;
    r->last_traffic_ns = kw__now(r->ep);
    kw__src src;
    memset(&src, 0, sizeof src);
    src.relay = r->idx;
    kw__magicsock_input(r->ep, &src, m.id, m.data, m.data_len);
    break;
  }
  case KW_RELAY_PING: {
    kw__relay_msg p;
    memset(&p, 0, sizeof p);
    p.type = KW_RELAY_PONG;
    memcpy(p.nonce, m.nonce, sizeof p.nonce);
    write_msg(r, &p);
    break;
  }
  case KW_RELAY_PONG:
    if (r->ping_out && memcmp(m.nonce, r->ping_nonce, sizeof m.nonce) == 0) {
      r->ping_out = false;
      double ms = (double)(kw__now(r->ep) - r->last_ping_ns) / 1e6;
      r->latency_ms = r->latency_ms < 0 ? ms : 0.7 * r->latency_ms + 0.3 * ms;
      choose_home(r->ep);
    }
    break;
  case KW_RELAY_PEER_GONE: {
    char idb[KW_ID_SHORTLEN + 1];
    kw_id_to_short(m.id, idb, sizeof idb);
    kw__log(r->ep, KW_LOG_DEBUG, "relay", "relay.peer_gone url=%s peer=%s",
            r->url, idb);
    break;
  }
  case KW_RELAY_HEALTH:
    kw__log(r->ep, m.code ? KW_LOG_WARN : KW_LOG_DEBUG, "relay",
            "relay.health url=%s code=%u text=\"%.*s\"", r->url, m.code,
            (int)m.text_len, m.text ? m.text : "");
    break;
  case KW_RELAY_CLOSE:
    kw__log(r->ep, KW_LOG_INFO, "relay", "relay.server_close url=%s code=%u",
            r->url, m.code);
    kw__tls_stream_close(r->ts);
    break;
  default:
    break;
  }
}

static void feed_frames(kw__relay *r, const uint8_t *p, size_t n) {
  while (r->ts && n > 0) {
    kw__relay_frame f;
    kw_err e = kw__relay_dec_next(&r->dec, &p, &n, &f);
    if (e == KW_ERR_AGAIN)
      return;
    if (e != KW_OK) {
      kw__log(r->ep, KW_LOG_WARN, "relay", "relay.bad_stream url=%s", r->url);
      kw__tls_stream_abort(r->ts, KW_ERR_PARSE);
      return;
    }
    handle_frame(r, &f);
    if (r->state == R_IDLE)
      return;
  }
}

static void ts_open(kw__tls_stream *s, void *ud) {
  kw__relay *r = ud;
  char host[KW_RELAY_HOST_MAX + 16];
  host_value(r, host, sizeof host);
  char req[512];
  size_t n;
  if (kw__relay_http_req_build(host, req, sizeof req, &n) != KW_OK ||
      kw__tls_stream_write(s, (const uint8_t *)req, n) != KW_OK) {
    kw__tls_stream_abort(s, KW_ERR_INVALID_ARG);
    return;
  }
  relay_enter(r, R_UPGRADING, NULL, NULL);
  kw__http_rx_free(&r->hrx);
  kw__http_rx_init(&r->hrx, 8192);
}

static void ts_data(kw__tls_stream *s, const uint8_t *p, size_t n, void *ud) {
  kw__relay *r = ud;
  if (r->state == R_UPGRADING) {
    size_t take = 0;
    if (kw__http_rx_append(&r->hrx, p, n, &take) != KW_OK ||
        (take == 0 && n > 0)) {
      kw__tls_stream_abort(s, KW_ERR_PARSE);
      return;
    }
    size_t consumed = 0;
    int status = 0;
    kw_err e =
        kw__relay_http_resp_parse(r->hrx.buf, r->hrx.len, &consumed, &status);
    if (e == KW_ERR_AGAIN)
      return;
    if (e != KW_OK) {
      kw__log(r->ep, KW_LOG_WARN, "relay",
              "relay.upgrade_refused url=%s status=%d", r->url, status);
      kw__tls_stream_abort(s, KW_ERR_STATE);
      return;
    }
    relay_enter(r, R_AUTH, NULL, NULL);
    /* bytes after the head (already in the buffer) and the rest of this
     * chunk are frames */
    kw__http_rx head;
    kw__http_rx_take(&r->hrx, &head);
    if (head.len > consumed)
      feed_frames(r, head.buf + consumed, head.len - consumed);
    kw__http_rx_free(&head);
    if (take < n)
      feed_frames(r, p + take, n - take);
    return;
  }
  feed_frames(r, p, n);
}

static void ts_writable(kw__tls_stream *s, void *ud) {
  (void)s;
  (void)ud;
}

static void ts_close(kw__tls_stream *s, kw_err err, void *ud) {
  (void)s;
  kw__relay *r = ud;
  bool was_ready = r->state == R_READY;
  r->ts = NULL;
  kw__relay_dec_free(&r->dec);
  kw__http_rx_free(&r->hrx);
  char extra[64];
  snprintf(extra, sizeof extra, "reason=%s", kw_errname(err));
  /* the home stays the home while it comes back (no flapping) */
  relay_enter(r, R_IDLE, was_ready ? "disconnected" : "connect_failed", extra);
}

static const kw__tls_stream_cbs ts_cbs = {ts_open, ts_data, ts_writable,
                                          ts_close};

static void start_tls(kw__relay *r) {
  kw__relay_dec_init(&r->dec, 0);
  const char *ca =
      kw__ep_cfg(r->ep)->relay_ca[0] ? kw__ep_cfg(r->ep)->relay_ca : NULL;
  relay_enter(r, R_CONNECTING, NULL, NULL);
  kw_err e = kw__tls_stream_connect(kw__ep_loop(r->ep), &r->addr, r->u.host, ca,
                                    &ts_cbs, r, &r->ts);
  if (e != KW_OK) {
    kw__relay_dec_free(&r->dec);
    char extra[64];
    snprintf(extra, sizeof extra, "reason=%s", kw_errname(e));
    relay_enter(r, R_IDLE, "connect_failed", extra);
  }
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  kw__relay *r = req->data;
  r->gai_busy = false;
  if (kw__ep_closing(r->ep) || r->state != R_RESOLVING) {
    if (res)
      uv_freeaddrinfo(res);
    return;
  }
  struct addrinfo *pick = NULL;
  for (struct addrinfo *a = res; status == 0 && a; a = a->ai_next) {
    if (a->ai_family == AF_INET && kw__magicsock_bound(r->ep, 4, NULL)) {
      pick = a;
      break;
    }
    if (a->ai_family == AF_INET6 && !pick)
      pick = a;
  }
  if (!pick) {
    if (res)
      uv_freeaddrinfo(res);
    relay_enter(r, R_IDLE, "resolve_failed", NULL);
    return;
  }
  kw__sockaddr_from_os(pick->ai_addr, &r->addr);
  r->addr.port = r->u.port;
  r->have_addr = true;
  uv_freeaddrinfo(res);
  start_tls(r);
}

static void relay_dial(kw__relay *r) {
  if (r->state != R_IDLE || kw__ep_closing(r->ep))
    return;
  r->next_dial_ns = 0;
  if (r->u.host_is_ip) {
    kw_sockaddr a;
    char tmp[KW_RELAY_HOST_MAX + 16];
    if (strchr(r->u.host, ':'))
      snprintf(tmp, sizeof tmp, "[%s]:%u", r->u.host, r->u.port);
    else
      snprintf(tmp, sizeof tmp, "%s:%u", r->u.host, r->u.port);
    if (kw_sockaddr_parse(tmp, &a) != KW_OK)
      return;
    r->addr = a;
    r->have_addr = true;
    start_tls(r);
    return;
  }
  relay_enter(r, R_RESOLVING, NULL, NULL);
  r->gai.data = r;
  char port[8];
  snprintf(port, sizeof port, "%u", r->u.port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  if (uv_getaddrinfo(kw__ep_loop(r->ep), &r->gai, gai_cb, r->u.host, port,
                     &hints) != 0) {
    relay_enter(r, R_IDLE, "resolve_failed", NULL);
    return;
  }
  r->gai_busy = true;
}

static void tick(uv_timer_t *t) {
  kw__relay *r = t->data;
  kw_endpoint *ep = r->ep;
  if (kw__ep_closing(ep))
    return;
  uint64_t now = kw__now(ep);
  if (r->state == R_IDLE && r->want && r->next_dial_ns &&
      now >= r->next_dial_ns)
    relay_dial(r);
  if (r->state == R_READY) {
    int home = relays_of(ep)->home;
    if (home != r->idx && home >= 0 &&
        now - r->last_traffic_ns > KW_RELAY_IDLE_MS * 1000000ull) {
      /* an on-demand relay with nothing to carry: let it go */
      r->want = false;
      relay_log_state(r, "idle_close", NULL);
      kw__tls_stream_close(r->ts);
      return;
    }
    if (now - r->last_ping_ns > KW_RELAY_PING_EVERY_MS * 1000000ull)
      send_ping(r);
  }
}

/* ---- interface to the rest of the endpoint ----------------------------------
 */

kw_err kw__relays_new(kw_endpoint *ep, struct kw__relay_map **out) {
  (void)ep;
  struct kw__relay_map *m = calloc(1, sizeof *m);
  if (!m)
    return KW_ERR_NOMEM;
  m->home = -1;
  *out = m;
  return KW_OK;
}

static kw__relay *relay_new(kw_endpoint *ep, const char *url) {
  struct kw__relay_map *m = relays_of(ep);
  if (m->n >= KW_MAX_RELAYS)
    return NULL;
  kw__relay *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  if (kw__relay_url_parse(url, &r->u) != KW_OK) {
    free(r);
    return NULL;
  }
  snprintf(r->url, sizeof r->url, "%s", url);
  r->ep = ep;
  r->idx = (int)m->n;
  r->latency_ms = -1;
  uv_timer_init(kw__ep_loop(ep), &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, tick, KW_RELAY_TICK_MS, KW_RELAY_TICK_MS);
  m->relays[m->n++] = r;
  return r;
}

int kw__relay_index(kw_endpoint *ep, const char *url, bool add) {
  struct kw__relay_map *m = relays_of(ep);
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->relays[i]->url, url) == 0)
      return (int)i;
  if (!add || kw__ep_closing(ep))
    return -1;
  kw__relay *r = relay_new(ep, url);
  return r ? r->idx : -1;
}

int kw__relay_home(kw_endpoint *ep) {
  return relays_of(ep)->home;
}

kw_err kw__relays_start(kw_endpoint *ep) {
  for (size_t i = 0; i < kw__ep_cfg(ep)->n_relays; i++) {
    kw__relay *r = relay_new(ep, kw__ep_cfg(ep)->relays[i]);
    if (!r)
      return KW_ERR_NOMEM;
    r->want = true; /* measure every relay once to pick the home */
    relay_dial(r);
  }
  return KW_OK;
}

kw_err kw__relay_send_batch(kw_endpoint *ep, int relay, const uint8_t *dst_id,
                            const uint8_t *data, size_t len, size_t seg,
                            size_t *sent_segs) {
  *sent_segs = 0;
  kw__relay *r = relay_at(ep, relay);
  if (!r || kw__ep_closing(ep))
    return KW_ERR_NO_PATH;
  if (seg == 0)
    seg = len;
  size_t nseg = seg ? (len + seg - 1) / seg : 0;
  if (r->state != R_READY) {
    if (r->state == R_IDLE) {
      r->want = true;
      relay_dial(r);
    }
    /* hold a few packets for the connection; drop the newest beyond */
    for (size_t off = 0; off < len; off += seg) {
      size_t l = len - off < seg ? len - off : seg;
      if (r->npend >= KW_RELAY_PENDING_MAX) {
        r->drops++;
        continue;
      }
      pending_pkt *p = malloc(sizeof *p + l);
      if (!p)
        break;
      p->next = NULL;
      memcpy(p->dst, dst_id, KW_ID_LEN);
      p->len = l;
      memcpy(p->data, data + off, l);
      if (r->pend_tail)
        r->pend_tail->next = p;
      else
        r->pend_head = p;
      r->pend_tail = p;
      r->npend++;
    }
    *sent_segs = nseg;
    return KW_OK;
  }
  for (size_t off = 0; off < len; off += seg) {
    size_t l = len - off < seg ? len - off : seg;
    if (write_packet(r, dst_id, data + off, l) != KW_OK)
      r->drops++; /* queue full: drop, QUIC recovers */
  }
  *sent_segs = nseg;
  return KW_OK;
}

void kw__relays_stop(kw_endpoint *ep) {
  struct kw__relay_map *map = relays_of(ep);
  for (size_t i = 0; map && i < map->n; i++) {
    kw__relay *r = map->relays[i];
    r->want = false;
    uv_timer_stop(&r->timer);
    if (r->gai_busy)
      uv_cancel((uv_req_t *)&r->gai);
    if (r->ts) {
      if (r->state == R_READY) {
        kw__relay_msg m;
        memset(&m, 0, sizeof m);
        m.type = KW_RELAY_CLOSE;
        m.code = KW_RELAY_CLOSE_NORMAL;
        write_msg(r, &m);
      }
      kw__tls_stream_close(r->ts);
    }
    pending_clear(r);
    uv_close((uv_handle_t *)&r->timer, NULL);
  }
}

void kw__relays_free(struct kw__relay_map *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->n; i++) {
    kw__relay *r = m->relays[i];
    kw__relay_dec_free(&r->dec);
    kw__http_rx_free(&r->hrx);
    pending_clear(r);
    free(r);
  }
  free(m);
}

size_t kw__relay_count(const kw_endpoint *ep) {
  const struct kw__relay_map *m = relays_of(ep);
  return m ? m->n : 0;
}

const char *kw__relay_url_of(kw_endpoint *ep, int relay) {
  kw__relay *r = relay_at(ep, relay);
  return r ? r->url : "";
}

bool kw__relay_stun_target(kw_endpoint *ep, int relay, kw_sockaddr *out) {
  kw__relay *r = relay_at(ep, relay);
  if (!r || !r->have_addr)
    return false;
  *out = r->addr;
  out->port = r->u.stun_port;
  return true;
}

double kw__relay_latency(kw_endpoint *ep, int relay) {
  kw__relay *r = relay_at(ep, relay);
  return r ? r->latency_ms : -1;
}

bool kw__relay_ready(kw_endpoint *ep, int relay) {
  kw__relay *r = relay_at(ep, relay);
  return r && r->state == R_READY;
}

bool kw__relay_tls_target(kw_endpoint *ep, int relay, kw_sockaddr *to,
                          const char **host) {
  kw__relay *r = relay_at(ep, relay);
  if (!r || !r->have_addr)
    return false;
  *to = r->addr;
  *host = r->u.host;
  return true;
}
