/* SPDX-License-Identifier: MIT */
/*
 * The relay proper: a TLS listener whose connections start as HTTP/1.1
 * (GET /keyway-relay with Upgrade, GET /ping, PUT/GET /lookup/<id>) and,
 * after the upgrade, carry relay frames (core/relay_proto.h).
 *
 * A relay connection: the server sends SERVER_CHALLENGE (fresh random
 * bytes) right after the 101 answer; the client must answer with
 * CLIENT_AUTH (its id and an Ed25519 signature over the challenge and, in
 * version 2, over this TLS session's exporter value and the Host it sent)
 * within 10 s of connecting; the server answers SERVER_INFO with its
 * limits. From then on SEND_PACKET frames are forwarded as RECV_PACKET
 * frames to the client with the destination id, without looking at the
 * bytes. A version 1 upgrade is refused (426) unless --allow-v1-auth.
 *
 * Bounds and policies:
 *  - connections: at most --max-pending connections that are not
 *    authenticated yet (TLS handshake, plain HTTP, upgrade, auth): more are
 *    accepted and closed at once (counted max_pending); at most
 *    --max-clients authenticated clients: one more gets CLOSE(protocol,
 *    "server full") after its auth (counted max_clients);
 *  - deadlines: handshake + upgrade + auth within 10 s of accept, a plain
 *    HTTP request within 10 s of accept or of the previous answer; both
 *    absolute (trickling bytes does not extend them; counted deadline);
 *    and a connection not authenticated 30 s after accept is closed
 *    however many requests it completed;
 *  - send queue per client: 2 MiB of TLS stream queue; a packet that does
 *    not fit is dropped (the newest one: drops{reason="queue_full"}); the
 *    sender is never slowed down by a slow receiver; once a queue is half
 *    full, packets of senders above an equal share of the recent bytes
 *    toward that client are dropped first (drops{reason="fair_share"});
 *  - rate limit per client: token bucket of --rate bytes/s on what the
 *    client sends (depth max(rate/4, 256 KiB)); when empty, the server
 *    stops reading that client until the bucket refills (TCP back-pressure,
 *    nothing dropped);
 *  - frames above KW_RELAY_MAX_FRAME, unknown types and bad lengths close
 *    the connection with CLOSE(protocol);
 *  - keep-alive: a PING every 15 s; a client silent for 45 s is closed;
 *  - PEER_GONE: to a client that sends to an id that is not connected
 *    (at most one per id per second and KW_RS_GONE_PER_S per second in
 *    all; such packets are dropped without allocation and counted), and to
 *    the recent senders of a client that leaves;
 *  - lookup PUTs: token buckets per connection and per source address
 *    (429 beyond).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/http.h"
#include "core/relay_proto.h"
#include "net/osaddr.h"
#include "net/http_exchange.h"
#include "net/tls_stream.h"
#include "relay/relay.h"

#define SENDERS 16
#define HBUF_MAX (KW_HTTP_MAX_HEADER + KW_HTTP_MAX_BODY)

typedef enum cstate {
  C_HTTP,    /* TLS handshake, then HTTP requests */
  C_AUTH,    /* upgraded, challenge sent, waiting for CLIENT_AUTH */
  C_CLIENT,  /* authenticated relay client */
  C_CLOSING, /* close decided */
} cstate;

typedef struct kw__rs_bucket {
  double tokens;
  uint64_t ms;
} kw__rs_bucket;

/* A sender's recent bytes toward one destination (fairness). */
typedef struct fair_slot {
  uint64_t serial; /* the sender connection's serial; 0 = free */
  double bytes;    /* offered, decayed */
} fair_slot;

struct kw__rs_conn {
  kw__rs_conn *prev, *next;
  kw__rs *rs;
  kw__tls_stream *s;
  cstate state;
  bool tls_open;
  bool registered; /* in rs->by_id */
  bool throttled;
  bool pending;    /* counted in m.pending */
  uint8_t version; /* relay protocol version of the upgrade */
  uint64_t serial;
  char addr[KW_SOCKADDR_STRLEN];
  kw_sockaddr peer;
  char host[256]; /* Host of the upgrade request (version 2 auth) */
  uint64_t t_open, t_rx, t_ping, t_auth; /* uv_now milliseconds */
  uint64_t t_req;     /* start of the current HTTP request's deadline */
  bool http_wait;     /* a GET /lookup/ waits for the DHT (dht.c) */
  kw__rs_bucket put;  /* lookup PUTs on this connection */
  kw__rs_bucket gone; /* PEER_GONE(not here) answers */
  fair_slot fair[KW_RS_FAIR_SLOTS];
  uint64_t fair_ms;
  /* HTTP */
  kw__http_rx hrx; /* HTTP requests until the upgrade */
  /* frames */
  kw__relay_dec dec;
  uint8_t challenge[KW_RELAY_CHALLENGE_LEN];
  uint8_t id[KW_ID_LEN];
  char id_short[KW_ID_SHORTLEN + 1];
  /* rate limit */
  double tokens;
  uint64_t tok_ms;
  uv_timer_t timer; /* throttle wake-up */
  /* who sent to this client lately (ring), for PEER_GONE on departure */
  uint8_t senders[SENDERS][KW_ID_LEN];
  unsigned n_senders, senders_next;
  /* last PEER_GONE(not here) sent to this client */
  uint8_t gone_id[KW_ID_LEN];
  uint64_t gone_ms;
  uint64_t frames_in, bytes_in, frames_out;
};

static void conn_close(kw__rs_conn *c, uint8_t code, const char *why);
static void handle_frames(kw__rs_conn *c, const uint8_t *p, size_t n);

/* ---- helpers ---------------------------------------------------------- */

static uint64_t now_ms(const kw__rs *rs) {
  return uv_now(rs->loop);
}

static void not_pending(kw__rs_conn *c) {
  if (!c->pending)
    return;
  c->pending = false;
  c->rs->m.pending--;
}

/* Token bucket: refills at `rate` per second up to `burst`; takes one
 * token if there is one. */
static bool bucket_take(kw__rs_bucket *b, double rate, double burst,
                        uint64_t now) {
  if (b->ms == 0) {
    b->tokens = burst;
  } else {
    b->tokens += (double)(now - b->ms) * rate / 1000.0;
    if (b->tokens > burst)
      b->tokens = burst;
  }
  b->ms = now;
  if (b->tokens < 1.0)
    return false;
  b->tokens -= 1.0;
  return true;
}

/* Per source address PUT bucket: IPv4 /32, IPv6 /64, hashed into a fixed
 * table (colliding addresses share a bucket: the limit only tightens). */
static bool put_allowed(kw__rs_conn *c) {
  kw__rs *rs = c->rs;
  uint64_t now = now_ms(rs);
  if (!bucket_take(&c->put, KW_RS_PUT_CONN_RATE, KW_RS_PUT_CONN_BURST, now))
    return false;
  if (rs->cfg.lookup_rate == 0 || !rs->put_addr)
    return true;
  uint8_t key[17];
  key[0] = c->peer.family;
  memcpy(key + 1, c->peer.ip, 16);
  if (c->peer.family == 6)
    memset(key + 9, 0, 8);
  else
    memset(key + 5, 0, 12);
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, key, sizeof key, rs->put_key);
  size_t i = ((size_t)h[0] | (size_t)h[1] << 8) % KW_RS_PUT_ADDR_SLOTS;
  double rate = (double)rs->cfg.lookup_rate;
  return bucket_take(&rs->put_addr[i], rate, rate * KW_RS_PUT_ADDR_BURST_S,
                     now);
}

static kw__rs_conn *find_client(kw__rs *rs, const uint8_t id[KW_ID_LEN]) {
  kw__rs_conn *c = kw__cidmap_get(&rs->by_id, id, KW_CID_MAXLEN);
  if (c && memcmp(c->id, id, KW_ID_LEN) == 0)
    return c;
  return NULL;
}

static int cmp_id(const void *a, const void *b) {
  return memcmp(a, b, KW_ID_LEN);
}

bool kw__rs_allowed(const kw__rs *rs, const uint8_t id[KW_ID_LEN]) {
  if (!rs->allow)
    return true;
  return bsearch(id, rs->allow, rs->n_allow, KW_ID_LEN, cmp_id) != NULL;
}

static void write_msg(kw__rs_conn *c, const kw__relay_msg *m) {
  uint8_t buf[KW_RELAY_FRAME_HDR + 1 + KW_RELAY_MAX_TEXT + KW_ID_LEN];
  size_t n = 0;
  if (!c->s || kw__relay_encode(m, buf, sizeof buf, &n) != KW_OK)
    return;
  (void)kw__tls_stream_write(c->s, buf, n); /* a full queue drops it */
}

static void send_peer_gone(kw__rs_conn *c, const uint8_t id[KW_ID_LEN],
                           uint8_t code) {
  kw__relay_msg m;
  memset(&m, 0, sizeof m);
  m.type = KW_RELAY_PEER_GONE;
  memcpy(m.id, id, KW_ID_LEN);
  m.code = code;
  write_msg(c, &m);
  c->rs->m.peer_gone_sent++;
}

static void http_respond(kw__rs_conn *c, int status, const char *ctype,
                         const uint8_t *body, size_t blen, bool close) {
  if (kw__http_respond(c->s, status, ctype, body, blen, close) == KW_OK &&
      close)
    c->state = C_CLOSING;
}

/* Drops the client from the id table and tells its recent senders. */
static void unregister(kw__rs_conn *c, bool tell) {
  kw__rs *rs = c->rs;
  if (!c->registered)
    return;
  c->registered = false;
  if (kw__cidmap_get(&rs->by_id, c->id, KW_CID_MAXLEN) == c) {
    kw__cidmap_del(&rs->by_id, c->id, KW_CID_MAXLEN);
    kw__rs_lookup_connected(rs, c->id, false);
    kw__rs_dht_client_gone(rs, c->id);
  }
  rs->m.clients--;
  if (!tell || rs->stopping)
    return;
  for (unsigned i = 0; i < c->n_senders; i++) {
    kw__rs_conn *s = find_client(rs, c->senders[i]);
    if (s && s->state == C_CLIENT)
      send_peer_gone(s, c->id, KW_RELAY_GONE_DISCONNECTED);
  }
}

static void note_sender(kw__rs_conn *dst, const uint8_t id[KW_ID_LEN]) {
  unsigned last = (dst->senders_next + SENDERS - 1) % SENDERS;
  if (dst->n_senders && memcmp(dst->senders[last], id, KW_ID_LEN) == 0)
    return; /* the usual case: the same sender again */
  for (unsigned i = 0; i < dst->n_senders; i++)
    if (memcmp(dst->senders[i], id, KW_ID_LEN) == 0)
      return;
  memcpy(dst->senders[dst->senders_next], id, KW_ID_LEN);
  dst->senders_next = (dst->senders_next + 1) % SENDERS;
  if (dst->n_senders < SENDERS)
    dst->n_senders++;
}

static void conn_close(kw__rs_conn *c, uint8_t code, const char *why) {
  if (c->state == C_CLOSING || !c->s)
    return;
  bool framed = c->state == C_AUTH || c->state == C_CLIENT;
  unregister(c, true);
  if (framed) {
    kw__relay_msg m;
    memset(&m, 0, sizeof m);
    m.type = KW_RELAY_CLOSE;
    m.code = code;
    m.text = why;
    m.text_len = why ? strlen(why) : 0;
    write_msg(c, &m);
  }
  c->state = C_CLOSING;
  uv_timer_stop(&c->timer);
  kw__tls_stream_close(c->s);
}

/* ---- rate limit ------------------------------------------------------- */

static double burst_of(const kw__rs *rs) {
  double b = (double)rs->cfg.rate * KW_RS_BURST_SECONDS;
  return b < (double)KW_RS_MIN_BURST ? (double)KW_RS_MIN_BURST : b;
}

static void refill(kw__rs_conn *c) {
  kw__rs *rs = c->rs;
  uint64_t now = now_ms(rs);
  c->tokens += (double)(now - c->tok_ms) * (double)rs->cfg.rate / 1000.0;
  c->tok_ms = now;
  double b = burst_of(rs);
  if (c->tokens > b)
    c->tokens = b;
}

static void throttle_done(uv_timer_t *t) {
  kw__rs_conn *c = t->data;
  if (c->state != C_CLIENT || !c->s)
    return;
  refill(c);
  c->throttled = false;
  kw__tls_stream_pause(c->s, false);
}

static void rate_consume(kw__rs_conn *c, size_t n) {
  kw__rs *rs = c->rs;
  if (rs->cfg.rate == 0 || c->state != C_CLIENT)
    return;
  refill(c);
  c->tokens -= (double)n;
  if (c->tokens >= 0 || c->throttled)
    return;
  uint64_t wait = (uint64_t)(-c->tokens * 1000.0 / (double)rs->cfg.rate) + 1;
  c->throttled = true;
  rs->m.rate_limited++;
  kw__tls_stream_pause(c->s, true);
  uv_timer_start(&c->timer, throttle_done, wait, 0);
}

/* ---- frames ----------------------------------------------------------- */

static void send_challenge(kw__rs_conn *c) {
  kw__relay_msg m;
  memset(&m, 0, sizeof m);
  m.type = KW_RELAY_SERVER_CHALLENGE;
  m.version = c->version;
  randombytes_buf(c->challenge, sizeof c->challenge);
  memcpy(m.challenge, c->challenge, sizeof c->challenge);
  m.time_us = kw__rs_unix_ms() * 1000;
  write_msg(c, &m);
}

static void auth_fail(kw__rs_conn *c, kw__rs_authfail why, uint8_t code,
                      const char *text) {
  static const char *names[KW_RS_AUTH_N] = {
      "no_auth", "bad_signature", "not_allowed", "timeout", "malformed"};
  c->rs->m.auth_fail[why]++;
  kw__rs_log(c->rs, KW_RS_WARN, "auth.failed", "addr=%s reason=%s", c->addr,
             names[why]);
  conn_close(c, code, text);
}

static void handle_auth(kw__rs_conn *c, const kw__relay_frame *f) {
  kw__rs *rs = c->rs;
  kw__relay_msg m;
  if (f->type != KW_RELAY_CLIENT_AUTH) {
    auth_fail(c, KW_RS_AUTH_NO_AUTH, KW_RELAY_CLOSE_PROTOCOL,
              "authenticate first");
    return;
  }
  if (kw__relay_parse(f, &m) != KW_OK) {
    auth_fail(c, KW_RS_AUTH_MALFORMED, KW_RELAY_CLOSE_PROTOCOL,
              "malformed auth");
    return;
  }
  kw_err ve = KW_ERR_KEY_MISMATCH;
  if (c->version == KW_RELAY_VERSION_V1) {
    ve = kw__relay_auth_verify(m.id, c->challenge, m.sig);
  } else {
    uint8_t ex[KW_RELAY_EXPORTER_LEN];
    if (kw__tls_stream_exporter(c->s, KW_RELAY_EXPORTER_LABEL, ex, sizeof ex) ==
        KW_OK)
      ve = kw__relay_auth2_verify(m.id, c->challenge, ex, c->host, m.sig);
  }
  if (ve != KW_OK) {
    auth_fail(c, KW_RS_AUTH_BAD_SIGNATURE, KW_RELAY_CLOSE_AUTH,
              "bad signature");
    return;
  }
  if (!kw__rs_allowed(rs, m.id)) {
    memcpy(c->id, m.id, KW_ID_LEN);
    auth_fail(c, KW_RS_AUTH_NOT_ALLOWED, KW_RELAY_CLOSE_NOT_ALLOWED,
              "not on the allowlist");
    return;
  }
  memcpy(c->id, m.id, KW_ID_LEN);
  kw_id_to_short(c->id, c->id_short, sizeof c->id_short);
  kw__rs_conn *old = find_client(rs, c->id);
  if (!old && rs->m.clients >= rs->cfg.max_clients) {
    rs->m.proto_err[KW_RS_PROTO_MAX_CLIENTS]++;
    kw__rs_log(rs, KW_RS_INFO, "client.rejected",
               "id=%s addr=%s reason=max_clients", c->id_short, c->addr);
    conn_close(c, KW_RELAY_CLOSE_PROTOCOL, "server full");
    return;
  }
  if (old) {
    rs->m.replaced++;
    kw__rs_log(rs, KW_RS_INFO, "client.replaced", "id=%s old=%s new=%s",
               c->id_short, old->addr, c->addr);
    unregister(old, false);
    conn_close(old, KW_RELAY_CLOSE_REPLACED, "connected again elsewhere");
  }
  if (kw__cidmap_put(&rs->by_id, c->id, KW_CID_MAXLEN, c) != KW_OK) {
    conn_close(c, KW_RELAY_CLOSE_PROTOCOL, "server full");
    return;
  }
  c->registered = true;
  kw__rs_lookup_connected(rs, c->id, true);
  not_pending(c);
  c->state = C_CLIENT;
  c->t_auth = c->t_ping = now_ms(rs);
  c->tokens = burst_of(rs);
  c->tok_ms = c->t_auth;
  rs->m.clients++;
  rs->m.auth_ok++;
  kw__tls_stream_set_hwm(c->s, KW_RS_SEND_QUEUE);
  memset(&m, 0, sizeof m);
  m.type = KW_RELAY_SERVER_INFO;
  m.info.max_frame = KW_RELAY_MAX_FRAME;
  m.info.rate_bytes = rs->cfg.rate;
  double b = rs->cfg.rate ? burst_of(rs) : 0;
  m.info.burst_bytes = b > 4294967295.0 ? UINT32_MAX : (uint32_t)b;
  m.info.keepalive_s = KW_RS_KEEPALIVE_MS / 1000;
  m.info.queue_pkts = 512;
  write_msg(c, &m);
  kw__rs_log(rs, KW_RS_INFO, "client.connected", "id=%s addr=%s", c->id_short,
             c->addr);
}

/* Fairness toward destination d: notes `len` bytes offered by c and
 * tells whether to drop the packet because d's queue is more than half
 * full and c offered at least an equal share of the recent bytes toward d
 * (so the upper half of every queue stays for the lighter senders). */
static bool fair_drop(kw__rs_conn *d, const kw__rs_conn *c, size_t len) {
  uint64_t now = now_ms(d->rs);
  if (now - d->fair_ms >= KW_RS_FAIR_HALFLIFE_MS) {
    uint64_t k = (now - d->fair_ms) / KW_RS_FAIR_HALFLIFE_MS;
    double f = k >= 32 ? 0.0 : 1.0 / (double)(1ull << k);
    for (int i = 0; i < KW_RS_FAIR_SLOTS; i++) {
      d->fair[i].bytes *= f;
      if (d->fair[i].bytes < 1.0)
        d->fair[i].bytes = 0;
    }
    d->fair_ms += k * KW_RS_FAIR_HALFLIFE_MS;
  }
  fair_slot *me = NULL, *low = &d->fair[0];
  double total = 0;
  int active = 0;
  for (int i = 0; i < KW_RS_FAIR_SLOTS; i++) {
    fair_slot *f = &d->fair[i];
    if (f->serial == c->serial)
      me = f;
    if (f->bytes < low->bytes)
      low = f;
    if (f->bytes > 0) {
      total += f->bytes;
      active++;
    }
  }
  if (!me) { /* take the quietest slot */
    if (low->bytes > 0) {
      total -= low->bytes;
      active--;
    }
    me = low;
    me->serial = c->serial;
    me->bytes = 0;
  }
  if (me->bytes == 0)
    active++;
  me->bytes += (double)len;
  total += (double)len;
  if (kw__tls_stream_queued(d->s) <= KW_RS_SEND_QUEUE / 2)
    return false;
  /* the upper half is for senders below an equal share (a lone sender is
   * not: the room stays free for a newcomer) */
  return me->bytes * (double)active >= total;
}

static void forward(kw__rs_conn *c, const kw__relay_msg *m) {
  kw__rs *rs = c->rs;
  kw__rs_conn *d = find_client(rs, m->id);
  if (!d || d->state != C_CLIENT) {
    /* no allocation on this path: count, and answer PEER_GONE within
     * per-id and per-client limits */
    rs->m.drops[KW_RS_DROP_UNKNOWN_DEST]++;
    uint64_t now = now_ms(rs);
    if (memcmp(c->gone_id, m->id, KW_ID_LEN) != 0 || now - c->gone_ms >= 1000) {
      if (!bucket_take(&c->gone, KW_RS_GONE_PER_S, KW_RS_GONE_PER_S, now)) {
        rs->m.peer_gone_suppressed++;
        return;
      }
      memcpy(c->gone_id, m->id, KW_ID_LEN);
      c->gone_ms = now;
      send_peer_gone(c, m->id, KW_RELAY_GONE_NOT_HERE);
    }
    return;
  }
  if (d == c) {
    rs->m.drops[KW_RS_DROP_SELF]++;
    return;
  }
  if (fair_drop(d, c, m->data_len + KW_RELAY_PACKET_HDR)) {
    rs->m.drops[KW_RS_DROP_FAIR_SHARE]++;
    return;
  }
  uint8_t hdr[KW_RELAY_PACKET_HDR];
  kw__relay_packet_hdr(hdr, KW_RELAY_RECV_PACKET, c->id, m->data_len);
  uv_buf_t b[2] = {uv_buf_init((char *)hdr, sizeof hdr),
                   uv_buf_init((char *)m->data, (unsigned)m->data_len)};
  kw_err e = kw__tls_stream_writev(d->s, b, m->data_len ? 2 : 1);
  if (e == KW_ERR_FULL) {
    rs->m.drops[KW_RS_DROP_QUEUE_FULL]++;
    return;
  }
  if (e != KW_OK) {
    rs->m.drops[KW_RS_DROP_UNKNOWN_DEST]++;
    return;
  }
  rs->m.frames_fwd++;
  rs->m.bytes_fwd += m->data_len;
  d->frames_out++;
  note_sender(d, c->id);
}

static void handle_client_frame(kw__rs_conn *c, const kw__relay_frame *f) {
  kw__rs *rs = c->rs;
  kw__relay_msg m;
  if (kw__relay_parse(f, &m) != KW_OK) {
    rs->m.proto_err[KW_RS_PROTO_BAD_FRAME]++;
    kw__rs_log(rs, KW_RS_WARN, "client.protocol_error",
               "id=%s reason=bad_frame type=%u", c->id_short, f->type);
    conn_close(c, KW_RELAY_CLOSE_PROTOCOL, "malformed frame");
    return;
  }
  switch (m.type) {
  case KW_RELAY_SEND_PACKET:
    forward(c, &m);
    break;
  case KW_RELAY_PING: {
    kw__relay_msg r;
    memset(&r, 0, sizeof r);
    r.type = KW_RELAY_PONG;
    memcpy(r.nonce, m.nonce, KW_RELAY_NONCE_LEN);
    write_msg(c, &r);
    break;
  }
  case KW_RELAY_PONG:
    break; /* liveness is noted for every frame */
  case KW_RELAY_CLOSE:
    conn_close(c, KW_RELAY_CLOSE_NORMAL, NULL);
    break;
  default: /* server-to-client types, or a second auth */
    rs->m.proto_err[KW_RS_PROTO_BAD_FRAME]++;
    kw__rs_log(rs, KW_RS_WARN, "client.protocol_error",
               "id=%s reason=unexpected_frame type=%u", c->id_short, m.type);
    conn_close(c, KW_RELAY_CLOSE_PROTOCOL, "unexpected frame");
  }
}

static void handle_frames(kw__rs_conn *c, const uint8_t *p, size_t n) {
  kw__rs *rs = c->rs;
  size_t total = n;
  while (c->state == C_AUTH || c->state == C_CLIENT) {
    kw__relay_frame f;
    kw_err e = kw__relay_dec_next(&c->dec, &p, &n, &f);
    if (e == KW_ERR_AGAIN)
      break;
    if (e == KW_ERR_NOMEM) {
      kw__tls_stream_abort(c->s, KW_ERR_NOMEM);
      return;
    }
    if (e != KW_OK) {
      uint32_t len = ((uint32_t)c->dec.hdr[1] << 24) |
                     ((uint32_t)c->dec.hdr[2] << 16) |
                     ((uint32_t)c->dec.hdr[3] << 8) | c->dec.hdr[4];
      bool big = len > c->dec.max_frame;
      if (c->state == C_AUTH && !big) {
        auth_fail(c, KW_RS_AUTH_MALFORMED, KW_RELAY_CLOSE_PROTOCOL,
                  "malformed frame");
        return;
      }
      rs->m.proto_err[big ? KW_RS_PROTO_OVERSIZE : KW_RS_PROTO_BAD_FRAME]++;
      kw__rs_log(rs, KW_RS_WARN, "client.protocol_error",
                 "addr=%s id=%s reason=%s type=%u len=%u", c->addr,
                 c->id_short[0] ? c->id_short : "-",
                 big ? "oversize_frame" : "bad_frame", c->dec.hdr[0], len);
      conn_close(c, KW_RELAY_CLOSE_PROTOCOL,
                 big ? "frame too large" : "malformed frame");
      return;
    }
    if (c->state == C_AUTH) {
      handle_auth(c, &f);
      continue;
    }
    c->frames_in++;
    c->bytes_in += KW_RELAY_FRAME_HDR + f.len;
    rs->m.frames_in++;
    rs->m.bytes_in += KW_RELAY_FRAME_HDR + f.len;
    handle_client_frame(c, &f);
  }
  rate_consume(c, total);
}

/* ---- HTTP ------------------------------------------------------------- */

static void start_relay(kw__rs_conn *c, const uint8_t *rest, size_t n) {
  char resp[256];
  size_t rn = 0;
  if (kw__relay_http_resp_build_version(c->version, resp, sizeof resp, &rn) !=
      KW_OK) {
    kw__tls_stream_abort(c->s, KW_ERR_STATE);
    return;
  }
  (void)kw__tls_stream_write(c->s, (const uint8_t *)resp, rn);
  c->state = C_AUTH;
  kw__relay_dec_init(&c->dec, KW_RELAY_MAX_FRAME);
  send_challenge(c);
  if (n)
    handle_frames(c, rest, n);
}

static void handle_http(kw__rs_conn *c) {
  kw__rs *rs = c->rs;
  while (c->state == C_HTTP && c->hrx.len > 0 && !c->http_wait) {
    kw__http_req r;
    kw_err e = kw__http_req_parse(c->hrx.buf, c->hrx.len, &r);
    if (e == KW_ERR_AGAIN) {
      if (c->hrx.len >= KW_HTTP_MAX_HEADER) {
        rs->m.proto_err[KW_RS_PROTO_BAD_HTTP]++;
        http_respond(c, 431, NULL, NULL, 0, true);
      }
      return;
    }
    if (e != KW_OK) {
      rs->m.proto_err[KW_RS_PROTO_BAD_HTTP]++;
      kw__rs_log(rs, KW_RS_WARN, "http.bad_request", "addr=%s status=%d",
                 c->addr, r.status);
      http_respond(c, r.status ? r.status : 400, NULL, NULL, 0, true);
      return;
    }
    size_t body = r.has_length ? r.content_length : 0;
    if (c->hrx.len < r.header_len + body)
      return; /* wait for the body */
    uint8_t id[KW_ID_LEN];
    int status = 400;
    kw__http_route route = kw__http_route_req(&r, id, &status);
    const uint8_t *bp = c->hrx.buf + r.header_len;
    size_t used = r.header_len + body;
    switch (route) {
    case KW_ROUTE_RELAY: {
      if (rs->stopping) {
        http_respond(c, 503, NULL, NULL, 0, true);
        return;
      }
      if (r.upgrade_version == KW_RELAY_VERSION_V1 && !rs->cfg.allow_v1_auth) {
        rs->m.auth_fail[KW_RS_AUTH_V1_REFUSED]++;
        kw__rs_log(rs, KW_RS_WARN, "auth.failed", "addr=%s reason=v1_refused",
                   c->addr);
        static const char v1msg[] = "relay protocol version 1 is not "
                                    "accepted: upgrade to keyway-relay-v2\n";
        http_respond(c, 426, "text/plain", (const uint8_t *)v1msg,
                     sizeof v1msg - 1, true);
        return;
      }
      c->version = r.upgrade_version;
      snprintf(c->host, sizeof c->host, "%s", r.host);
      kw__http_rx head;
      kw__http_rx_take(&c->hrx, &head);
      start_relay(c, head.buf + used, head.len - used);
      kw__http_rx_free(&head);
      return;
    }
    case KW_ROUTE_PING:
      rs->m.http_pings++;
      http_respond(c, 200, "text/plain", (const uint8_t *)"pong\n", 5, false);
      break;
    case KW_ROUTE_LOOKUP_GET:
    case KW_ROUTE_LOOKUP_PUT: {
      uint8_t *resp = NULL;
      size_t rlen = 0;
      const char *ctype = NULL;
      int st = 500;
      bool put = route == KW_ROUTE_LOOKUP_PUT;
      if (put && !put_allowed(c)) {
        rs->m.lookup_put[KW_RS_LK_RATE_LIMITED]++;
        static const char tm[] = "too many PUTs\n";
        http_respond(c, 429, "text/plain", (const uint8_t *)tm, sizeof tm - 1,
                     false);
        break;
      }
      kw__rs_conn *owner = put ? find_client(rs, id) : NULL;
      kw__rs_lookup_handle(rs, put, owner && owner->state == C_CLIENT, id, bp,
                           body, c, &st, &resp, &rlen, &ctype);
      if (st == 0) { /* the DHT answers later: kw__rs_server_deferred */
        c->http_wait = true;
        kw__http_rx_consume(&c->hrx, used);
        return;
      }
      http_respond(c, st, ctype, resp, rlen, false);
      free(resp);
      break;
    }
    case KW_ROUTE_PKARR_PUT: {
      if (!put_allowed(c)) {
        rs->m.dht_publish[KW_RS_LK_RATE_LIMITED]++;
        static const char tm[] = "too many PUTs\n";
        http_respond(c, 429, "text/plain", (const uint8_t *)tm, sizeof tm - 1,
                     false);
        break;
      }
      kw__rs_conn *owner = find_client(rs, id);
      const char *why = "";
      int st = 403;
      if (owner && owner->state == C_CLIENT)
        st = kw__rs_dht_publish(rs, id, bp, body, &why);
      else
        why = "only a connected client publishes its own item";
      char msg[96];
      int ml = snprintf(msg, sizeof msg, "%s\n", why);
      http_respond(c, st, st == 204 ? NULL : "text/plain",
                   st == 204 ? NULL : (const uint8_t *)msg,
                   st == 204 ? 0 : (size_t)ml, false);
      break;
    }
    case KW_ROUTE_METRICS: /* only on --metrics-listen */
    case KW_ROUTE_NONE:
    default:
      if (route == KW_ROUTE_METRICS)
        status = 404;
      rs->m.http_other[status == 404 ? 0 : 1]++;
      http_respond(c, status, NULL, NULL, 0, status != 404);
      if (c->state != C_HTTP)
        return;
      break;
    }
    if (c->state != C_HTTP)
      return;
    kw__http_rx_consume(&c->hrx, used);
    c->t_req = now_ms(rs); /* the next request's deadline starts now */
  }
}

void kw__rs_server_deferred(kw__rs *rs, void *conn, int status,
                            const uint8_t *body, size_t len) {
  kw__rs_conn *c = conn;
  if (!c->http_wait || c->state != C_HTTP || !c->s)
    return;
  c->http_wait = false;
  if (status == 200) {
    rs->m.lookup_get[KW_RS_LK_OK]++;
    http_respond(c, 200, "application/octet-stream", body, len, false);
  } else {
    rs->m.lookup_get[KW_RS_LK_NOT_FOUND]++;
    static const char nf[] = "not found\n";
    http_respond(c, 404, "text/plain", (const uint8_t *)nf, sizeof nf - 1,
                 false);
  }
  c->t_req = now_ms(rs);
  handle_http(c); /* requests that came in meanwhile */
}

/* ---- stream callbacks ------------------------------------------------- */

static void on_open(kw__tls_stream *s, void *ud) {
  kw__rs_conn *c = ud;
  (void)s;
  c->tls_open = true;
  c->t_rx = now_ms(c->rs);
}

static void on_data(kw__tls_stream *s, const uint8_t *p, size_t n, void *ud) {
  kw__rs_conn *c = ud;
  (void)s;
  c->t_rx = now_ms(c->rs);
  switch (c->state) {
  case C_HTTP: {
    size_t take = 0;
    if (kw__http_rx_append(&c->hrx, p, n, &take) != KW_OK) {
      kw__tls_stream_abort(c->s, KW_ERR_NOMEM);
      return;
    }
    const uint8_t *rest = p + take;
    size_t nrest = n - take;
    handle_http(c);
    if (nrest == 0)
      return;
    if (c->state == C_AUTH || c->state == C_CLIENT) {
      handle_frames(c, rest, nrest);
    } else if (c->state == C_HTTP) {
      /* more than a full head + body buffered: pipelining abuse */
      c->rs->m.proto_err[KW_RS_PROTO_BAD_HTTP]++;
      http_respond(c, 431, NULL, NULL, 0, true);
    }
    return;
  }
  case C_AUTH:
  case C_CLIENT:
    handle_frames(c, p, n);
    return;
  case C_CLOSING:
    return;
  }
}

static void conn_free_cb(uv_handle_t *h) {
  free(h->data);
}

static void on_close(kw__tls_stream *s, kw_err err, void *ud) {
  kw__rs_conn *c = ud;
  kw__rs *rs = c->rs;
  (void)s;
  c->s = NULL;
  kw__rs_dht_cancel(rs, c);
  if (!c->tls_open && (err == KW_ERR_TLS || err == KW_ERR_CERT)) {
    rs->m.proto_err[KW_RS_PROTO_TLS]++;
    kw__rs_log(rs, KW_RS_DEBUG, "conn.tls_failed", "addr=%s", c->addr);
  }
  if (c->id_short[0] && c->t_auth)
    kw__rs_log(rs, KW_RS_INFO, "client.disconnected",
               "id=%s addr=%s reason=%s frames_in=%llu bytes_in=%llu "
               "frames_out=%llu seconds=%.1f",
               c->id_short, c->addr, err == KW_OK ? "local" : kw_errname(err),
               (unsigned long long)c->frames_in,
               (unsigned long long)c->bytes_in,
               (unsigned long long)c->frames_out,
               (double)(now_ms(rs) - c->t_auth) / 1000.0);
  unregister(c, true);
  if (c->prev)
    c->prev->next = c->next;
  else
    rs->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  rs->m.conns_open--;
  not_pending(c);
  kw__http_rx_free(&c->hrx);
  kw__relay_dec_free(&c->dec);
  uv_close((uv_handle_t *)&c->timer, conn_free_cb);
}

static const kw__tls_stream_cbs conn_cbs = {on_open, on_data, NULL, on_close};

static void free_handle_cb(uv_handle_t *h) {
  free(h);
}

static void on_accept(uv_stream_t *l, int status) {
  kw__rs *rs = l->data;
  if (status < 0)
    return;
  uv_tcp_t *tcp = malloc(sizeof *tcp);
  if (!tcp)
    return;
  uv_tcp_init(rs->loop, tcp);
  if (uv_accept(l, (uv_stream_t *)tcp) != 0) {
    uv_close((uv_handle_t *)tcp, free_handle_cb);
    return;
  }
  if (rs->stopping || rs->m.pending >= rs->cfg.max_pending) {
    rs->m.proto_err[KW_RS_PROTO_MAX_PENDING]++;
    kw__rs_log(rs, KW_RS_DEBUG, "conn.rejected", "reason=max_pending");
    uv_close((uv_handle_t *)tcp, free_handle_cb);
    return;
  }
  kw__rs_conn *c = calloc(1, sizeof *c);
  if (!c) {
    uv_close((uv_handle_t *)tcp, free_handle_cb);
    return;
  }
  static uint64_t serials;
  c->rs = rs;
  c->state = C_HTTP;
  kw__http_rx_init(&c->hrx, HBUF_MAX);
  c->serial = ++serials;
  c->version = KW_RELAY_VERSION;
  c->t_open = c->t_rx = c->t_req = now_ms(rs);
  uv_timer_init(rs->loop, &c->timer);
  c->timer.data = c;
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  kw_sockaddr pa;
  memset(&pa, 0, sizeof pa);
  if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &sl) == 0)
    kw__sockaddr_from_os((struct sockaddr *)&ss, &pa);
  c->peer = pa;
  if (kw_sockaddr_format(&pa, c->addr, sizeof c->addr) != KW_OK)
    snprintf(c->addr, sizeof c->addr, "?");
  if (kw__tls_stream_accept(rs->loop, tcp, rs->cred, &conn_cbs, c, &c->s) !=
      KW_OK) {
    uv_close((uv_handle_t *)&c->timer, conn_free_cb);
    return;
  }
  c->next = rs->conns;
  if (rs->conns)
    rs->conns->prev = c;
  rs->conns = c;
  rs->m.conns_accepted++;
  rs->m.conns_open++;
  rs->m.pending++;
  c->pending = true;
}

/* ---- periodic checks -------------------------------------------------- */

static void tick_cb(uv_timer_t *t) {
  kw__rs *rs = t->data;
  uint64_t now = now_ms(rs);
  kw__rs_conn *next;
  for (kw__rs_conn *c = rs->conns; c; c = next) {
    next = c->next;
    switch (c->state) {
    case C_HTTP:
      /* absolute: from accept (TLS handshake included) or from the
       * previous answer, however bytes trickle in */
      if (now - c->t_req > KW_RS_HTTP_MS ||
          now - c->t_open > KW_RS_PENDING_MAX_MS) {
        rs->m.proto_err[KW_RS_PROTO_DEADLINE]++;
        kw__rs_log(rs, KW_RS_DEBUG, "conn.deadline", "addr=%s tls=%s", c->addr,
                   c->tls_open ? "open" : "handshake");
        c->state = C_CLOSING;
        kw__tls_stream_close(c->s);
      }
      break;
    case C_AUTH:
      if (now - c->t_req > KW_RS_AUTH_MS ||
          now - c->t_open > KW_RS_PENDING_MAX_MS)
        auth_fail(c, KW_RS_AUTH_TIMEOUT, KW_RELAY_CLOSE_TIMEOUT,
                  "no authentication in time");
      break;
    case C_CLIENT:
      if (now - c->t_rx > KW_RS_SILENT_MS) {
        rs->m.proto_err[KW_RS_PROTO_SILENT]++;
        kw__rs_log(rs, KW_RS_INFO, "client.silent", "id=%s addr=%s",
                   c->id_short, c->addr);
        conn_close(c, KW_RELAY_CLOSE_TIMEOUT, "silent for too long");
      } else if (now - c->t_ping >= KW_RS_KEEPALIVE_MS) {
        kw__relay_msg m;
        memset(&m, 0, sizeof m);
        m.type = KW_RELAY_PING;
        randombytes_buf(m.nonce, sizeof m.nonce);
        write_msg(c, &m);
        c->t_ping = now;
        rs->m.keepalives_sent++;
      }
      break;
    case C_CLOSING:
      break;
    }
  }
}

/* ---- start and stop --------------------------------------------------- */

kw_err kw__rs_server_start(kw__rs *rs) {
  kw_err e = kw__cidmap_init(&rs->by_id, rs->cfg.max_clients);
  if (e != KW_OK)
    return e;
  rs->put_addr = calloc(KW_RS_PUT_ADDR_SLOTS, sizeof *rs->put_addr);
  if (!rs->put_addr)
    return KW_ERR_NOMEM;
  randombytes_buf(rs->put_key, sizeof rs->put_key);
  uv_tcp_init(rs->loop, &rs->listener);
  rs->listener.data = rs;
  rs->listener_open = true;
  struct sockaddr_storage ss;
  socklen_t sl;
  kw__sockaddr_to_os(&rs->cfg.listen, &ss, &sl);
  if (uv_tcp_bind(&rs->listener, (struct sockaddr *)&ss,
                  rs->cfg.listen.family == 6 ? UV_TCP_IPV6ONLY : 0) != 0 ||
      uv_listen((uv_stream_t *)&rs->listener, 4096, on_accept) != 0)
    return KW_ERR_ADDR;
  int nl = sizeof ss;
  if (uv_tcp_getsockname(&rs->listener, (struct sockaddr *)&ss, &nl) == 0)
    kw__sockaddr_from_os((struct sockaddr *)&ss, &rs->cfg.listen);
  uv_timer_init(rs->loop, &rs->tick);
  rs->tick.data = rs;
  rs->tick_open = true;
  uv_timer_start(&rs->tick, tick_cb, 1000, 1000);
  char a[KW_SOCKADDR_STRLEN];
  kw_sockaddr_format(&rs->cfg.listen, a, sizeof a);
  kw__rs_log(rs, KW_RS_INFO, "relay.listening",
             "addr=%s max_clients=%u max_pending=%u rate=%llu v1_auth=%s", a,
             rs->cfg.max_clients, rs->cfg.max_pending,
             (unsigned long long)rs->cfg.rate,
             rs->cfg.allow_v1_auth ? "allowed" : "refused");
  return KW_OK;
}

void kw__rs_server_stop(kw__rs *rs) {
  if (rs->listener_open) {
    uv_close((uv_handle_t *)&rs->listener, NULL);
    rs->listener_open = false;
  }
  if (rs->tick_open) {
    uv_close((uv_handle_t *)&rs->tick, NULL);
    rs->tick_open = false;
  }
  kw__rs_conn *next;
  for (kw__rs_conn *c = rs->conns; c; c = next) {
    next = c->next;
    if (c->state == C_AUTH || c->state == C_CLIENT) {
      kw__relay_msg m;
      memset(&m, 0, sizeof m);
      m.type = KW_RELAY_HEALTH;
      m.code = 1;
      m.text = "relay stopping";
      m.text_len = strlen(m.text);
      write_msg(c, &m);
      conn_close(c, KW_RELAY_CLOSE_SHUTDOWN, "relay stopping");
    } else if (c->state == C_HTTP && c->s) {
      c->state = C_CLOSING;
      kw__tls_stream_close(c->s);
    }
  }
}

size_t kw__rs_server_recheck_allow(kw__rs *rs) {
  size_t n = 0;
  kw__rs_conn *next;
  for (kw__rs_conn *c = rs->conns; c; c = next) {
    next = c->next;
    if (c->state == C_CLIENT && !kw__rs_allowed(rs, c->id)) {
      kw__rs_log(rs, KW_RS_INFO, "client.disallowed", "id=%s addr=%s",
                 c->id_short, c->addr);
      conn_close(c, KW_RELAY_CLOSE_NOT_ALLOWED, "no longer allowed");
      n++;
    }
  }
  return n;
}

void kw__rs_server_kill(kw__rs *rs) {
  for (kw__rs_conn *c = rs->conns; c; c = c->next)
    if (c->s)
      kw__tls_stream_abort(c->s, KW_ERR_CLOSED);
}

void kw__rs_server_free(kw__rs *rs) {
  kw__cidmap_free(&rs->by_id);
  free(rs->put_addr);
  rs->put_addr = NULL;
}
