/* SPDX-License-Identifier: MIT */
/*
 * What the two files of the QUIC module share, and nobody else:
 * quic.c (connections: life cycle, handshake, accept, receive, the write
 * loop, timers, close) and quic_stream.c (streams, send budgets and
 * datagrams: the stream callbacks of ngtcp2, writing stream data into
 * packets, the kw_stream_* API), with quic_path.c (the fake paths). The
 * module's structs (kw_conn, kw_stream, kw__chunk, kw__dgram, and its
 * state of the endpoint, struct kw__quic) are defined here and nowhere
 * else: only src/endpoint/quic*.c include this header (tests/layers checks
 * it); the magicsock, disco, TLS and the endpoint reach a connection
 * through the kw__conn_* functions of quic.h.
 */
#ifndef KW_ENDPOINT_QUIC_CONN_H
#define KW_ENDPOINT_QUIC_CONN_H

#include "core/cidmap.h"
#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/magicsock.h"
#include "endpoint/tls.h"
#include "net/udp.h"
#include "endpoint/quic.h"

#include <ngtcp2/ngtcp2.h>

/* ---- the module's own structs ---- */

/* The QUIC module's state of one endpoint (kw__quic_new, kw__quic_free):
 * the endpoint keeps only the pointer (kw__ep_quic); every connection
 * holds it too (c->q), so the packet paths reach it without a call. */
struct kw__quic {
  kw_endpoint *ep;
  const kw_config *cfg; /* kw__ep_cfg(ep): read-only, lives as long */
  kw__cidmap cids;      /* our connection ids -> kw_conn */
  /* the receive fast path: the connection of the last short-header
   * packet's CID (cleared whenever a CID leaves cids) */
  kw_conn *rx_last_conn;
  uint8_t rx_last_cid[20];
  size_t rx_last_cidlen;
  kw_conn *conns;
  unsigned nconns;
  unsigned nhalfopen;  /* incoming handshakes not yet completed */
  size_t buffered;     /* sum of every connection's `buffered` */
  bool budget_blocked; /* a write was cut short by endpoint_send_budget */
  uint64_t dg_seq;     /* quic_stream.c: the next queued datagram's number */
  uint8_t retry_secret[32]; /* Retry token key, random per endpoint */
  kw_conn *dirty_head;
  bool reaping;   /* kw__conn_reap is running */
  uint8_t *txbuf; /* KW_GSO_MAX_SEGS * max packet */
  size_t txbuf_cap;
  /* the module's counters, added into kw_endpoint_stats (kw__quic_stats) */
  struct {
    uint64_t conns_opened, conns_closed, conns_direct;
    uint64_t drops_unknown, drops_refused, retries_sent;
    uint64_t path_migrations;
  } stats;
};

struct kw__chunk {
  kw__chunk *next;
  uint64_t off;    /* stream offset of the chunk's first byte */
  size_t len, cap; /* an owned chunk has cap == len: never appended to */
  /* kw_stream_write_owned: the caller's bytes, released through `release`
   * when the chunk is freed; NULL: the bytes are data[] (a copy) */
  uint8_t *ext;
  kw_release_fn release;
  void *release_user;
  uint8_t data[];
};

struct kw_stream {
  kw_stream *next_all; /* conn->streams */
  kw_stream *next_tx;  /* conn->tx_head list of streams with data to send */
  bool in_tx;
  kw_conn *conn;
  int64_t id;
  void *user;
  kw__chunk *head, *tail;
  uint64_t write_off; /* bytes accepted from the application */
  uint64_t sent_off;  /* bytes handed to QUIC */
  uint64_t acked_off; /* bytes acknowledged: chunks below are freed */
  bool fin_queued, fin_sent;
  bool blocked; /* flow-control blocked */
  bool want_writable;
  bool manual_consume;
  /* bytes delivered while in manual consume that kw_stream_consume has not
   * credited yet: the connection's window gets them back when the stream
   * closes (the application cannot consume them after stream_closed) */
  uint64_t unconsumed;
  bool closed;
};

struct kw__dgram {
  kw__dgram *next;
  uint64_t seq; /* queue order across the endpoint (q->dg_seq) */
  size_t len;
  uint8_t data[];
};

/* Datagrams queued for sending (kw_conn_send_datagram, include/keyway.h):
 * at most KW_DGRAM_QUEUE_MAX per connection and KW_DGRAM_QUEUE_REMOTE_MAX
 * over all connections of one remote (kw__remote: they share its paths);
 * a datagram past either bound pushes out the oldest one queued (of the
 * connection, or of any connection of the remote). */
#define KW_DGRAM_QUEUE_MAX 256
#define KW_DGRAM_QUEUE_REMOTE_MAX 1024

typedef enum kw__conn_state {
  KW_CONN_HANDSHAKE,
  KW_CONN_ESTABLISHED,
  KW_CONN_CLOSING, /* close decided; freed on the next flush */
} kw__conn_state;

struct kw_conn {
  kw_conn *next; /* endpoint list */
  kw_conn *next_dirty;
  bool dirty;
  kw_endpoint *ep;
  struct kw__quic *q; /* the endpoint's QUIC state */
  kw__remote *remote;
  /* the remote's mapped address when the connection was made: QUIC's
   * label of the peer (quic_path.c), kept when the connection moves to
   * another remote (kw__conn_move_remote) */
  struct sockaddr_in6 mapped;
  struct ngtcp2_conn *qc;
  struct kw__tls_sess *tls;
  void *conn_ref; /* ngtcp2_crypto_conn_ref, owned */
  bool is_client;
  kw__conn_state state;
  uint8_t remote_id[KW_ID_LEN];
  bool remote_id_known;
  char alpn[256];
  void *user;
  kw_connect_cb connect_cb;
  void *connect_arg;
  uv_timer_t timer;
  uv_timer_t connect_timer;
  kw_stream *streams;
  kw_stream *tx_head, *tx_tail;
  kw__dgram *dg_head, *dg_tail;
  size_t dg_count;
  /* the connections of the same remote, a ring through every one of them
   * (alone: itself), for the remote's datagram bound */
  kw_conn *rnext, *rprev;
  /* pending GSO batch that hit EAGAIN */
  uint8_t *pend;
  size_t pend_len, pend_seg;
  kw_sockaddr pend_to;
  bool pend_all; /* send to every path (racing) */
  /* close bookkeeping */
  kw_err close_err;
  uint64_t close_app_code;
  bool close_local; /* we decided to close: send CONNECTION_CLOSE */
  uint64_t local_app_code;
  char local_reason[64];
  bool notify_ready; /* deferred accepted/connected notification */
  bool handshake_done, confirmed;
  bool halfopen;       /* an incoming handshake, counted in q->nhalfopen */
  uint64_t last_rx_ns; /* last packet the remote's keys opened */
  size_t buffered;     /* stream bytes held for sending (unacknowledged) */
  bool budget_blocked; /* a write was cut short by a send budget */
  bool budget_notify;  /* room again: kw__conn_flush tells waiting streams */
  int64_t budget_last; /* the stream budget_notify served last */
  bool budget_last_ok;
  uint64_t inflight_since_ns; /* ack-eliciting bytes in flight since, 0: none */
  uint8_t src_key[16];        /* who sent its first Initial (see src_key()) */
  int rtt_slot;    /* the remote's paths-table RTT slot, -1 for none */
  bool hp_counted; /* counted in the remote's hole-punch schedule */
  kw_path_info last_path;
  bool path_reported; /* last_path has been reported once */
  /* fake path generations (quic_path.c): a client's is in its fake local
   * address, a server's in the peer's fake remote address */
  uint16_t path_gen;     /* client: current; server: newest opened */
  uint16_t path_gen_cur; /* server: the one of ngtcp2's current path */
  bool migrate_pending;  /* client: waits for a spare connection id */
  uint8_t rx_cid;        /* server: cids[] index of the last packet's id */
  bool rx_fresh;         /* server: ... used for the first time, */
  uint16_t rx_fresh_gen; /* ... shown in this generation */
  uint64_t bytes_sent, bytes_recv, pkts_sent, pkts_recv;
  struct {
    uint8_t cid[20];
    size_t len;
    uint16_t gen; /* server: the path generation it was first used in */
    bool used;    /* server: the peer sent a packet to it */
  } cids[10];     /* our source connection ids registered in q->cids: the 8
                   * ngtcp2 holds at most (retired ones included) and a
                   * server's original destination id */
  size_t ncids;
};

static inline kw_conn *kw__qc_conn_of(ngtcp2_conn *qc, void *user_data) {
  (void)qc;
  return user_data;
}

/* ---- the application's callbacks --------------------------------------------
 * Every call into the application goes through one of these (a NULL
 * callback is a callback not wanted); each runs on the loop thread, and
 * the application may call keyway from it. */

static inline void app_stream_opened(const struct kw__quic *q, kw_stream *s) {
  if (q->cfg->cbs.stream_opened)
    q->cfg->cbs.stream_opened(s, q->cfg->cb_user);
}

static inline void app_stream_data(const struct kw__quic *q, kw_stream *s,
                                   const uint8_t *d, size_t n, bool fin) {
  static const uint8_t empty[1];
  if (q->cfg->cbs.stream_data) /* never a NULL pointer, even for 0 bytes */
    q->cfg->cbs.stream_data(s, d ? d : empty, n, fin, q->cfg->cb_user);
}

static inline void app_stream_writable(const struct kw__quic *q, kw_stream *s) {
  if (q->cfg->cbs.stream_writable)
    q->cfg->cbs.stream_writable(s, q->cfg->cb_user);
}

static inline void app_stream_closed(const struct kw__quic *q, kw_stream *s,
                                     kw_err err, uint64_t code) {
  if (q->cfg->cbs.stream_closed)
    q->cfg->cbs.stream_closed(s, err, code, q->cfg->cb_user);
}

static inline void app_datagram(const struct kw__quic *q, kw_conn *c,
                                const uint8_t *d, size_t n) {
  if (q->cfg->cbs.datagram)
    q->cfg->cbs.datagram(c, d, n, q->cfg->cb_user);
}

static inline void app_path_changed(const struct kw__quic *q, kw_conn *c,
                                    const kw_path_info *pi) {
  if (q->cfg->cbs.path_changed)
    q->cfg->cbs.path_changed(c, pi, q->cfg->cb_user);
}

static inline void app_conn_accepted(const struct kw__quic *q, kw_conn *c) {
  if (q->cfg->cbs.conn_accepted)
    q->cfg->cbs.conn_accepted(c, q->cfg->cb_user);
}

static inline void app_conn_closed(const struct kw__quic *q, kw_conn *c,
                                   kw_err err, uint64_t code) {
  if (q->cfg->cbs.conn_closed)
    q->cfg->cbs.conn_closed(c, err, code, q->cfg->cb_user);
}

/* ---- quic.c, for quic_stream.c ---- */

/* Marks the connection failed with `err`; the flush acts on it. */
void kw__qc_fail(kw_conn *c, kw_err err, uint64_t app_code);
/* Data from the remote proves it accepted us: the application hears
 * "connected" (or "accepted") before any stream of the connection. */
void kw__qc_ready_before_streams(kw_conn *c);

/* ---- quic_stream.c, for quic.c ---- */

/* Installs the stream and datagram callbacks of ngtcp2. */
void kw__qs_fill_callbacks(ngtcp2_callbacks *cb);
/* Writes one packet of stream data, datagrams or control frames into
 * dest; returns its length, 0 when nothing more can be sent now, or a
 * negative ngtcp2 error. */
ngtcp2_ssize kw__qs_write_pkt(kw_conn *c, uint8_t *dest, size_t destlen,
                              ngtcp2_tstamp ts);
/* Tells the application the stream ended (`err`, `code`), then frees it,
 * giving back its send budget and unconsumed credit. */
void kw__qs_stream_closed_notify(kw_conn *c, kw_stream *s, kw_err err,
                                 uint64_t code);
/* A send budget has room again: streams waiting for it hear writable. */
void kw__qs_budget_notify(kw_conn *c);

#endif
