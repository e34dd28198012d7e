/* SPDX-License-Identifier: MIT */
/*
 * QUIC connections on the ngtcp2 1.x API: life cycle, handshake, accept,
 * receive, the write loop, timers and close. Streams, send budgets and
 * datagrams are quic_stream.c, fake paths and migration quic_path.c; the
 * three (with tls.c) are the only files that know ngtcp2 (the magicsock
 * asks kw__quic_dcid for a packet's connection id; tests/layers checks).
 * What the three share is quic_conn.h, with the struct kw_conn and the
 * module's state struct kw__quic (the endpoint keeps only its pointer);
 * the rest of the endpoint reaches a connection through the kw__conn_*
 * functions of quic.h (the "what the rest of the endpoint reads" part
 * below).
 *
 * QUIC never sees real addresses: every connection's path is a fake
 * local address and the remote's mapped address, with a path generation
 * in one of them (quic_path.c); the magicsock carries its packets over
 * whatever real path the remote has now.
 *
 * Nothing that can free a connection runs inside an ngtcp2 call: errors
 * found in callbacks mark the connection, and kw__conn_flush (called from
 * the loop's prepare step) acts on them; kw__conn_reap frees.
 */
#include "endpoint/quic_conn.h"
#include "endpoint/quic_path.h"
#include "endpoint/disco_io.h"
#include "endpoint/relay_client.h"
#include "core/sockaddr.h"

#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sodium.h>

/* ---- the module's state ------------------------------------------------ */

kw_err kw__quic_new(kw_endpoint *ep, struct kw__quic **out) {
  *out = NULL;
  struct kw__quic *q = calloc(1, sizeof *q);
  if (!q)
    return KW_ERR_NOMEM;
  q->ep = ep;
  q->cfg = kw__ep_cfg(ep);
  randombytes_buf(q->retry_secret, sizeof q->retry_secret);
  /* an established connection registers up to 10 ids, a handshake 2 */
  kw_err err = kw__cidmap_init(&q->cids, (size_t)q->cfg->max_conns * 10 +
                                             KW_HALFOPEN_MAX * 2 + 64);
  if (err != KW_OK) {
    sodium_memzero(q->retry_secret, sizeof q->retry_secret);
    free(q);
    return err;
  }
  *out = q;
  return KW_OK;
}

void kw__quic_free(struct kw__quic *q) {
  if (!q)
    return;
  kw__cidmap_free(&q->cids);
  free(q->txbuf);
  sodium_memzero(q->retry_secret, sizeof q->retry_secret);
  free(q);
}

void kw__quic_stats(const kw_endpoint *ep, kw_endpoint_stats *out) {
  const struct kw__quic *q = kw__ep_quic(ep);
  out->conns_opened += q->stats.conns_opened;
  out->conns_closed += q->stats.conns_closed;
  out->conns_direct += q->stats.conns_direct;
  out->drops_unknown += q->stats.drops_unknown;
  out->drops_refused += q->stats.drops_refused;
  out->retries_sent += q->stats.retries_sent;
  out->path_migrations += q->stats.path_migrations;
  out->handshakes_in_progress = q->nhalfopen;
  out->send_buffered = q->buffered;
}

unsigned kw__quic_nconns(const kw_endpoint *ep) {
  return kw__ep_quic(ep)->nconns;
}

/* ------------------------------------------------------------------------ */

static ngtcp2_conn *get_conn_ref(ngtcp2_crypto_conn_ref *ref) {
  kw_conn *c = ref->user_data;
  return c->qc;
}

static void cid_register(kw_conn *c, const uint8_t *cid, size_t len) {
  if (c->ncids >= sizeof c->cids / sizeof c->cids[0])
    return;
  if (kw__cidmap_put(&c->q->cids, cid, len, c) != KW_OK)
    return;
  memcpy(c->cids[c->ncids].cid, cid, len);
  c->cids[c->ncids].len = len;
  c->cids[c->ncids].gen = 0;
  c->cids[c->ncids].used = false;
  c->ncids++;
}

static void cid_unregister(kw_conn *c, const uint8_t *cid, size_t len) {
  for (size_t i = 0; i < c->ncids; i++) {
    if (c->cids[i].len == len && memcmp(c->cids[i].cid, cid, len) == 0) {
      kw__cidmap_del(&c->q->cids, cid, len);
      c->q->rx_last_conn = NULL;
      if (c->rx_cid == i) /* the last packet's (quic_path.c) */
        c->rx_fresh = false;
      else if (c->rx_cid == c->ncids - 1)
        c->rx_cid = (uint8_t)i; /* it moves into the hole */
      c->cids[i] = c->cids[--c->ncids];
      return;
    }
  }
}

/* Marks the connection to close; kw__conn_flush sends CONNECTION_CLOSE
 * (when `send` and the connection is not draining) and reaps it. */
void kw__qc_fail(kw_conn *c, kw_err err, uint64_t app_code) {
  if (c->state == KW_CONN_CLOSING || c->close_local)
    return;
  if (c->close_err == KW_OK)
    c->close_err = err;
  c->close_app_code = app_code;
  c->state = KW_CONN_CLOSING;
  kw__conn_mark_dirty(c);
}

/* ---- ngtcp2 callbacks --------------------------------------------------- */

static void rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *ctx) {
  (void)ctx;
  randombytes_buf(dest, destlen);
}

static int get_new_cid_cb(ngtcp2_conn *qc, ngtcp2_cid *cid, uint8_t *token,
                          size_t cidlen, void *user_data) {
  kw_conn *c = kw__qc_conn_of(qc, user_data);
  randombytes_buf(cid->data, cidlen);
  cid->datalen = cidlen;
  randombytes_buf(token, NGTCP2_STATELESS_RESET_TOKENLEN);
  cid_register(c, cid->data, cid->datalen);
  return 0;
}

static int remove_cid_cb(ngtcp2_conn *qc, const ngtcp2_cid *cid,
                         void *user_data) {
  cid_unregister(kw__qc_conn_of(qc, user_data), cid->data, cid->datalen);
  return 0;
}

/* The incoming handshake of `c` completed or ended. */
static void halfopen_end(kw_conn *c) {
  if (!c->halfopen)
    return;
  c->halfopen = false;
  c->q->nhalfopen--;
}

static int handshake_completed_cb(ngtcp2_conn *qc, void *user_data) {
  kw_conn *c = kw__qc_conn_of(qc, user_data);
  if (!c->is_client) {
    kw_endpoint *ep = c->ep;
    struct kw__quic *q = c->q;
    halfopen_end(c);
    if (q->nconns - q->nhalfopen > kw__ep_cfg(ep)->max_conns) {
      /* established connections are at their limit: refuse this one
       * (it is no longer counted as a handshake in progress) */
      q->stats.drops_refused++;
      c->close_err = KW_ERR_FULL;
      c->close_local = true;
      kw__conn_mark_dirty(c);
      return 0;
    }
  }
  c->handshake_done = true;
  kw__tls_sess_alpn(c->tls, c->alpn, sizeof c->alpn);
  if (!c->is_client) {
    /* The server verified the client's certificate before completing. */
    if (!c->remote_id_known)
      return NGTCP2_ERR_CALLBACK_FAILURE;
    c->state = KW_CONN_ESTABLISHED;
    c->notify_ready = true;
  } else if (c->state == KW_CONN_HANDSHAKE) {
    /* The client has verified the server's key and holds 1-RTT keys: it
     * may send now (its Finished and the first data leave together), so
     * "connected" does not wait another round trip for HANDSHAKE_DONE.
     * The server could still refuse our certificate; it then closes the
     * connection and the application hears conn_closed. */
    c->state = KW_CONN_ESTABLISHED;
    c->notify_ready = true;
  }
  return 0;
}

static int handshake_confirmed_cb(ngtcp2_conn *qc, void *user_data) {
  kw_conn *c = kw__qc_conn_of(qc, user_data);
  c->confirmed = true;
  if (c->is_client && c->state == KW_CONN_HANDSHAKE) {
    c->state = KW_CONN_ESTABLISHED;
    c->notify_ready = true;
  }
  return 0;
}

static void notify_ready(kw_conn *c);

void kw__qc_ready_before_streams(kw_conn *c) {
  if (c->is_client && c->state == KW_CONN_HANDSHAKE && c->handshake_done) {
    c->state = KW_CONN_ESTABLISHED;
    c->notify_ready = true;
  }
  if (c->notify_ready)
    notify_ready(c);
}

static int path_challenge_cb(ngtcp2_conn *qc, uint8_t *data, void *ud) {
  (void)qc;
  (void)ud;
  randombytes_buf(data, NGTCP2_PATH_CHALLENGE_DATALEN);
  return 0;
}

static void fill_callbacks(ngtcp2_callbacks *cb, bool client) {
  memset(cb, 0, sizeof *cb);
  if (client) {
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
    cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  } else {
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  }
  cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb->encrypt = ngtcp2_crypto_encrypt_cb;
  cb->decrypt = ngtcp2_crypto_decrypt_cb;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb->get_path_challenge_data = path_challenge_cb;
  cb->rand = rand_cb;
  cb->get_new_connection_id = get_new_cid_cb;
  cb->remove_connection_id = remove_cid_cb;
  cb->handshake_completed = handshake_completed_cb;
  cb->handshake_confirmed = handshake_confirmed_cb;
  kw__qs_fill_callbacks(cb);
}

/* The largest UDP payload keyway sends when PMTUD finds a path that
 * carries it (loopback, some virtual links): a quarter of a GSO send. */
#define KW_MAX_UDP_PAYLOAD 16384

static void fill_settings(kw_endpoint *ep, ngtcp2_settings *st,
                          ngtcp2_transport_params *tp, bool client) {
  const kw_config *cfg = kw__ep_cfg(ep);
  ngtcp2_settings_default(st);
  st->initial_ts = kw__now(ep);
  switch (cfg->cc) {
  case KW_CC_BBR:
    st->cc_algo = NGTCP2_CC_ALGO_BBR;
    break;
  case KW_CC_RENO:
    st->cc_algo = NGTCP2_CC_ALGO_RENO;
    break;
  default:
    st->cc_algo = NGTCP2_CC_ALGO_CUBIC;
    break;
  }
  /* PMTUD probes: ngtcp2's own sizes for Internet paths first (1406,
   * 1342, 1232, 1444), then jumbo frames (9000-byte MTU) and loopback-
   * class links. A probe larger than the interface's MTU fails at the
   * socket (udp.c sets IP_PMTUDISC_PROBE) and one lost beyond it stops
   * the climb, so Internet paths pay at most three small lost probes. */
  static const uint16_t probes[] = {1454 - 48, 1390 - 48, 1280 - 48,
                                    1492 - 48, 9000 - 48, KW_MAX_UDP_PAYLOAD};
  st->pmtud_probes = probes;
  st->pmtud_probeslen = sizeof probes / sizeof probes[0];
  st->max_tx_udp_payload_size = KW_MAX_UDP_PAYLOAD;
  st->max_window = 64u << 20;
  st->max_stream_window = 16u << 20;
  if (client)
    st->handshake_timeout =
        (ngtcp2_duration)cfg->connect_timeout_ms * NGTCP2_MILLISECONDS;
  ngtcp2_transport_params_default(tp);
  tp->initial_max_stream_data_bidi_local = 4u << 20;
  tp->initial_max_stream_data_bidi_remote = 4u << 20;
  tp->initial_max_stream_data_uni = 4u << 20;
  tp->initial_max_data = 16u << 20;
  tp->initial_max_streams_bidi = cfg->max_streams_bidi;
  tp->initial_max_streams_uni = cfg->max_streams_uni;
  tp->max_idle_timeout =
      (ngtcp2_duration)cfg->idle_timeout_ms * NGTCP2_MILLISECONDS;
  tp->max_datagram_frame_size = 65535;
  tp->active_connection_id_limit = 7;
}

/* ---- life cycle --------------------------------------------------------- */

static void timer_cb(uv_timer_t *t);
static void connect_timer_cb(uv_timer_t *t);

/* `c` becomes a connection of `r`: counted there, in the ring of its other
 * connections (c is in no ring: alone). */
static void conn_join_remote(kw_conn *c, kw__remote *r) {
  c->remote = r;
  c->rtt_slot = kw__remote_conn_attach(r);
  if (kw__remote_nconns(r) > 1) {
    for (kw_conn *o = c->q->conns; o; o = o->next) {
      if (o != c && o->remote == r) {
        c->rnext = o->rnext;
        c->rprev = o;
        o->rnext->rprev = c;
        o->rnext = c;
        break;
      }
    }
  }
}

void kw__conn_move_remote(kw__remote *from, kw__remote *to) {
  kw_endpoint *ep = kw__remote_ep(from);
  for (kw_conn *c = kw__ep_quic(ep)->conns; c; c = c->next) {
    if (c->remote != from)
      continue;
    if (c->hp_counted) {
      c->hp_counted = false;
      kw__disco_conn_down(ep, from);
    }
    c->rprev->rnext = c->rnext;
    c->rnext->rprev = c->rprev;
    c->rnext = c->rprev = c;
    kw__remote_conn_detach(from, c->rtt_slot);
    conn_join_remote(c, to);
  }
}

static kw_conn *conn_alloc(kw_endpoint *ep, kw__remote *r, bool client) {
  struct kw__quic *q = kw__ep_quic(ep);
  kw_conn *c = calloc(1, sizeof *c);
  ngtcp2_crypto_conn_ref *ref = calloc(1, sizeof *ref);
  if (!c || !ref) {
    free(c);
    free(ref);
    return NULL;
  }
  ref->get_conn = get_conn_ref;
  ref->user_data = c;
  c->conn_ref = ref;
  c->ep = ep;
  c->q = q;
  c->mapped = *kw__remote_mapped(r);
  c->rnext = c->rprev = c;
  conn_join_remote(c, r);
  c->is_client = client;
  c->last_rx_ns = kw__now(ep);
  uv_timer_init(kw__ep_loop(ep), &c->timer);
  uv_timer_init(kw__ep_loop(ep), &c->connect_timer);
  c->timer.data = c;
  c->connect_timer.data = c;
  c->next = q->conns;
  q->conns = c;
  q->nconns++;
  return c;
}

static void handle_closed(uv_handle_t *h) {
  kw_conn *c = h->data;
  /* both timers point here; free after the second */
  if (h == (uv_handle_t *)&c->timer) {
    c->timer.data = NULL;
  } else {
    c->connect_timer.data = NULL;
  }
  if (!c->timer.data && !c->connect_timer.data)
    free(c);
}

static void conn_destroy(kw_conn *c) {
  kw_endpoint *ep = c->ep;
  struct kw__quic *q = c->q;
  halfopen_end(c);
  while (c->streams)
    kw__qs_stream_closed_notify(c, c->streams, KW_ERR_CLOSED, 0);
  while (c->dg_head) {
    kw__dgram *d = c->dg_head;
    c->dg_head = d->next;
    free(d);
  }
  c->rprev->rnext = c->rnext;
  c->rnext->rprev = c->rprev;
  c->rnext = c->rprev = c;
  for (size_t i = 0; i < c->ncids; i++)
    kw__cidmap_del(&q->cids, c->cids[i].cid, c->cids[i].len);
  q->rx_last_conn = NULL;
  c->ncids = 0;
  for (kw_conn **pp = &q->conns; *pp; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  }
  q->nconns--;
  kw__magicsock_forget_conn(ep, c);
  if (c->qc)
    ngtcp2_conn_del(c->qc);
  kw__tls_sess_free(c->tls);
  free(c->conn_ref);
  free(c->pend);
  if (c->remote) {
    if (c->hp_counted) {
      c->hp_counted = false;
      kw__disco_conn_down(ep, c->remote);
    }
    kw__remote_conn_detach(c->remote, c->rtt_slot);
    kw__remote_unref(c->remote);
  }
  uv_close((uv_handle_t *)&c->timer, handle_closed);
  uv_close((uv_handle_t *)&c->connect_timer, handle_closed);
}

kw_err kw__conn_client_new(kw_endpoint *ep, kw__remote *r, const char *alpn,
                           kw_connect_cb cb, void *arg, kw_conn **out) {
  kw_conn *c = conn_alloc(ep, r, true);
  if (!c) {
    kw__remote_unref(r);
    return KW_ERR_NOMEM;
  }
  c->connect_cb = cb;
  c->connect_arg = arg;
  memcpy(c->remote_id, kw__remote_id(r), KW_ID_LEN);
  kw_err err = kw__tls_sess_new(kw__ep_tls(ep), c->conn_ref, true,
                                kw__remote_id(r), alpn, NULL, 0, &c->tls);
  if (err != KW_OK)
    goto fail;
  ngtcp2_cid dcid, scid;
  dcid.datalen = KW_CIDLEN;
  scid.datalen = KW_CIDLEN;
  randombytes_buf(dcid.data, KW_CIDLEN);
  randombytes_buf(scid.data, KW_CIDLEN);
  ngtcp2_callbacks cbs;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  fill_callbacks(&cbs, true);
  fill_settings(ep, &st, &tp, true);
  kw__qpath qp;
  kw__qpath_build(c, 0, &qp);
  if (ngtcp2_conn_client_new(&c->qc, &dcid, &scid, &qp.path,
                             NGTCP2_PROTO_VER_V1, &cbs, &st, &tp, NULL,
                             c) != 0) {
    err = KW_ERR_QUIC;
    goto fail;
  }
  ngtcp2_conn_set_tls_native_handle(c->qc, kw__tls_sess_native(c->tls));
  if (kw__ep_cfg(ep)->keepalive_ms)
    ngtcp2_conn_set_keep_alive_timeout(
        c->qc,
        (ngtcp2_duration)kw__ep_cfg(ep)->keepalive_ms * NGTCP2_MILLISECONDS);
  cid_register(c, scid.data, scid.datalen);
  uv_timer_start(&c->connect_timer, connect_timer_cb,
                 kw__ep_cfg(ep)->connect_timeout_ms, 0);
  c->q->stats.conns_opened++;
  kw__conn_mark_dirty(c);
  if (out)
    *out = c;
  return KW_OK;
fail:
  c->connect_cb = NULL;
  conn_destroy(c);
  return err;
}

/* A stable 16-byte key for where a datagram came from: its UDP address, or
 * the relay and the id that relay vouches for. Retry tokens are bound to
 * it, and handshakes in progress are counted per key. */
static void src_key(const kw__src *from, const uint8_t *from_id,
                    uint8_t key[16]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, 16);
  if (from->relay < 0 || !from_id) {
    uint8_t a[19] = {from->addr.family, (uint8_t)(from->addr.port >> 8),
                     (uint8_t)from->addr.port};
    memcpy(a + 3, from->addr.ip, 16);
    crypto_generichash_update(&st, a, sizeof a);
  } else {
    uint8_t r[2] = {0xff, (uint8_t)from->relay};
    crypto_generichash_update(&st, r, sizeof r);
    crypto_generichash_update(&st, from_id, KW_ID_LEN);
  }
  crypto_generichash_final(&st, key, 16);
}

/* The key as the socket address ngtcp2's token functions bind to. */
static void src_sockaddr(const uint8_t key[16], struct sockaddr_in6 *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sin6_family = AF_INET6;
  memcpy(&sa->sin6_addr, key, 16);
}

kw_conn *kw__quic_conn_by_dcid(kw_endpoint *ep, const uint8_t *dcid,
                               size_t dcidlen) {
  struct kw__quic *q = kw__ep_quic(ep);
  /* a batch is mostly one connection's packets: one hash lookup */
  if (q->rx_last_conn && dcidlen == q->rx_last_cidlen &&
      !memcmp(dcid, q->rx_last_cid, dcidlen))
    return q->rx_last_conn;
  kw_conn *c = kw__cidmap_get(&q->cids, dcid, dcidlen);
  if (c && dcidlen <= sizeof q->rx_last_cid) {
    q->rx_last_conn = c;
    memcpy(q->rx_last_cid, dcid, dcidlen);
    q->rx_last_cidlen = dcidlen;
  }
  return c;
}

/* Sends a packet outside any connection back where `from` came from. */
static void send_raw(kw_endpoint *ep, const kw__src *from,
                     const uint8_t *from_id, const uint8_t *p, size_t n) {
  size_t sent = 0;
  if (from->relay >= 0) {
    if (from_id)
      (void)kw__relay_send_batch(ep, from->relay, from_id, p, n, 0, &sent);
    return;
  }
  (void)kw__magicsock_send_raw(ep, &from->addr, p, n);
}

/* Answers an Initial with a Retry carrying a token bound to its source. */
static void send_retry(kw_endpoint *ep, const kw__src *from,
                       const uint8_t *from_id, const ngtcp2_pkt_hd *hd,
                       const uint8_t key[16]) {
  struct kw__quic *q = kw__ep_quic(ep);
  ngtcp2_cid scid;
  scid.datalen = KW_CIDLEN;
  randombytes_buf(scid.data, KW_CIDLEN);
  struct sockaddr_in6 sa;
  src_sockaddr(key, &sa);
  uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
  ngtcp2_ssize tl = ngtcp2_crypto_generate_retry_token(
      token, q->retry_secret, sizeof q->retry_secret, hd->version,
      (const ngtcp2_sockaddr *)&sa, sizeof sa, &scid, &hd->dcid, kw__now(ep));
  if (tl < 0)
    return;
  uint8_t buf[256];
  ngtcp2_ssize n =
      ngtcp2_crypto_write_retry(buf, sizeof buf, hd->version, &hd->scid, &scid,
                                &hd->dcid, token, (size_t)tl);
  if (n <= 0)
    return;
  send_raw(ep, from, from_id, buf, (size_t)n);
  q->stats.retries_sent++;
}

static unsigned halfopen_from(kw_endpoint *ep, const uint8_t key[16]) {
  struct kw__quic *q = kw__ep_quic(ep);
  unsigned n = 0;
  for (kw_conn *c = q->conns; c; c = c->next)
    if (c->halfopen && memcmp(c->src_key, key, 16) == 0)
      n++;
  return n;
}

bool kw__quic_dcid(const uint8_t *data, size_t len, const uint8_t **dcid,
                   size_t *dcidlen) {
  ngtcp2_version_cid vc;
  if (ngtcp2_pkt_decode_version_cid(&vc, data, len, 16) != 0)
    return false;
  *dcid = vc.dcid;
  *dcidlen = vc.dcidlen;
  return true;
}

void kw__conn_accept(kw_endpoint *ep, const kw__src *from,
                     const uint8_t *from_id, const uint8_t *data, size_t len) {
  struct kw__quic *q = kw__ep_quic(ep);
  ngtcp2_pkt_hd hd;
  if (ngtcp2_accept(&hd, data, len) != 0 || hd.type != NGTCP2_PKT_INITIAL) {
    q->stats.drops_unknown++;
    return;
  }
  if (kw__ep_cfg(ep)->n_alpns == 0 || kw__ep_closing(ep) ||
      q->nconns - q->nhalfopen >= kw__ep_cfg(ep)->max_conns ||
      q->nhalfopen >= KW_HALFOPEN_MAX) {
    q->stats.drops_refused++;
    return;
  }
  uint8_t key[16];
  src_key(from, from_id, key);
  /* address validation: a token from our Retry proves the source can
   * receive what we send it */
  ngtcp2_cid odcid;
  bool validated = false;
  if (hd.tokenlen && hd.token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
    struct sockaddr_in6 sa;
    src_sockaddr(key, &sa);
    if (ngtcp2_crypto_verify_retry_token(
            &odcid, hd.token, hd.tokenlen, q->retry_secret,
            sizeof q->retry_secret, hd.version, (const ngtcp2_sockaddr *)&sa,
            sizeof sa, &hd.dcid,
            (ngtcp2_duration)KW_RETRY_TOKEN_TIMEOUT_MS * NGTCP2_MILLISECONDS,
            kw__now(ep)) != 0) {
      q->stats.drops_unknown++; /* forged, stale, or from elsewhere */
      return;
    }
    validated = true;
  }
  if (!validated && q->nhalfopen >= kw__ep_cfg(ep)->retry_threshold) {
    send_retry(ep, from, from_id, &hd, key);
    return;
  }
  if (q->nhalfopen >= KW_HALFOPEN_MAX / 2 &&
      halfopen_from(ep, key) >= KW_HALFOPEN_PER_SRC) {
    q->stats.drops_refused++;
    return;
  }
  /* a relay vouches for the sender's id; TLS checks it again */
  kw__remote *r = kw__remote_new(ep, from_id);
  if (!r)
    return;
  kw__remote_confirm_path(r, from, kw__now(ep));
  kw_conn *c = conn_alloc(ep, r, false);
  if (!c) {
    kw__remote_unref(r);
    return;
  }
  c->halfopen = true;
  q->nhalfopen++;
  memcpy(c->src_key, key, 16);
  if (kw__tls_sess_new(kw__ep_tls(ep), c->conn_ref, false, NULL, NULL,
                       kw__ep_cfg(ep)->alpns, kw__ep_cfg(ep)->n_alpns,
                       &c->tls) != KW_OK)
    goto fail;
  ngtcp2_cid scid;
  scid.datalen = KW_CIDLEN;
  randombytes_buf(scid.data, KW_CIDLEN);
  ngtcp2_callbacks cbs;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  fill_callbacks(&cbs, false);
  fill_settings(ep, &st, &tp, false);
  if (validated) {
    st.token = hd.token;
    st.tokenlen = hd.tokenlen;
    st.token_type = NGTCP2_TOKEN_TYPE_RETRY;
    tp.original_dcid = odcid;
    tp.retry_scid = hd.dcid;
    tp.retry_scid_present = 1;
  } else {
    tp.original_dcid = hd.dcid;
  }
  tp.original_dcid_present = 1;
  kw__qpath qp;
  kw__qpath_build(c, 0, &qp);
  if (ngtcp2_conn_server_new(&c->qc, &hd.scid, &scid, &qp.path, hd.version,
                             &cbs, &st, &tp, NULL, c) != 0)
    goto fail;
  ngtcp2_conn_set_tls_native_handle(c->qc, kw__tls_sess_native(c->tls));
  if (kw__ep_cfg(ep)->keepalive_ms)
    ngtcp2_conn_set_keep_alive_timeout(
        c->qc,
        (ngtcp2_duration)kw__ep_cfg(ep)->keepalive_ms * NGTCP2_MILLISECONDS);
  cid_register(c, scid.data, scid.datalen);
  cid_register(c, hd.dcid.data, hd.dcid.datalen);
  /* an unauthenticated handshake gets little time (and never more than a
   * dial) */
  uint32_t hs_ms = kw__ep_cfg(ep)->connect_timeout_ms < KW_HALFOPEN_TIMEOUT_MS
                       ? kw__ep_cfg(ep)->connect_timeout_ms
                       : KW_HALFOPEN_TIMEOUT_MS;
  uv_timer_start(&c->connect_timer, connect_timer_cb, hs_ms, 0);
  kw__conn_recv(c, from, data, len);
  return;
fail:
  conn_destroy(c);
}

static kw_err map_close_error(kw_conn *c, uint64_t *app_code) {
  const ngtcp2_ccerr *ce = ngtcp2_conn_get_ccerr(c->qc);
  *app_code = 0;
  switch (ce->type) {
  case NGTCP2_CCERR_TYPE_APPLICATION:
    *app_code = ce->error_code;
    return KW_ERR_APP_CLOSED;
  case NGTCP2_CCERR_TYPE_IDLE_CLOSE:
    return KW_ERR_IDLE;
  default:
    break;
  }
  if (ce->error_code == NGTCP2_NO_ERROR)
    return KW_ERR_APP_CLOSED;
  if ((ce->error_code & 0xff00) == NGTCP2_CRYPTO_ERROR) {
    uint8_t alert = (uint8_t)(ce->error_code & 0xff);
    if (alert == 120) /* no_application_protocol */
      return KW_ERR_ALPN;
    if (alert == 116 || alert == 42 || alert == 43 || alert == 46)
      return KW_ERR_CERT;
    return KW_ERR_TLS;
  }
  return KW_ERR_PEER;
}

void kw__conn_recv(kw_conn *c, const kw__src *from, const uint8_t *data,
                   size_t len) {
  if (c->state == KW_CONN_CLOSING)
    return;
  kw__qpath qp;
  kw__qpath_build(c, kw__qpath_rx_gen(c, data, len), &qp);
  ngtcp2_pkt_info pi = {0};
  uint64_t now = kw__now(c->ep);
  int rv = ngtcp2_conn_read_pkt(c->qc, &qp.path, &pi, data, len, now);
  c->pkts_recv++;
  c->bytes_recv += len;
  if (rv == 0) {
    c->last_rx_ns = now;
    kw__qpath_after_read(c);
    if (kw__remote_confirm_path(c->remote, from, now))
      kw__remote_path_changed(c->remote);
    kw__remote_conn_rtt(c, now);
    kw__conn_mark_dirty(c);
    return;
  }
  uint64_t code = 0;
  switch (rv) {
  case NGTCP2_ERR_DRAINING: {
    kw_err why = map_close_error(c, &code); /* sets code: call it first */
    kw__qc_fail(c, why, code);
    /* the remote closed: nothing to send back */
    c->close_local = false;
    break;
  }
  case NGTCP2_ERR_DROP_CONN:
    kw__qc_fail(c, KW_ERR_QUIC, 0);
    break;
  case NGTCP2_ERR_DISCARD_PKT:
  case NGTCP2_ERR_RETRY:
    break;
  case NGTCP2_ERR_CRYPTO: {
    kw_err e = c->close_err != KW_OK ? c->close_err : KW_ERR_TLS;
    uint8_t alert = ngtcp2_conn_get_tls_alert(c->qc);
    if (e == KW_ERR_TLS && alert == 120)
      e = KW_ERR_ALPN;
    if (e == KW_ERR_TLS && alert == 116)
      e = KW_ERR_CERT;
    c->close_err = e;
    c->local_app_code = 0;
    c->close_local = true; /* send the alert in a CONNECTION_CLOSE */
    kw__conn_mark_dirty(c);
    break;
  }
  default:
    kw__log(c->ep, KW_LOG_WARN, "quic", "quic.read_error err=%s",
            ngtcp2_strerror(rv));
    c->close_err = c->close_err != KW_OK ? c->close_err : KW_ERR_QUIC;
    c->close_local = true;
    kw__conn_mark_dirty(c);
    break;
  }
}

void kw__conn_mark_dirty(kw_conn *c) {
  if (c->dirty)
    return;
  c->dirty = true;
  c->next_dirty = c->q->dirty_head;
  c->q->dirty_head = c;
}

void kw__conn_mark_dirty_remote(kw__remote *r) {
  for (kw_conn *c = kw__ep_quic(kw__remote_ep(r))->conns; c; c = c->next)
    if (c->remote == r)
      kw__conn_mark_dirty(c);
}

void kw__conn_flush_dirty(kw_endpoint *ep) {
  struct kw__quic *q = kw__ep_quic(ep);
  for (int rounds = 0; q->dirty_head && rounds < 4; rounds++) {
    kw_conn *list = q->dirty_head;
    q->dirty_head = NULL;
    while (list) {
      kw_conn *c = list;
      list = c->next_dirty;
      c->dirty = false;
      c->next_dirty = NULL;
      kw__conn_flush(c);
    }
  }
}

/* ---- what the rest of the endpoint reads of a connection ---- */

kw_endpoint *kw__conn_ep(const kw_conn *c) {
  return c->ep;
}

kw__remote *kw__conn_remote(const kw_conn *c) {
  return c->remote;
}

bool kw__conn_established(const kw_conn *c) {
  return c->handshake_done && c->state == KW_CONN_ESTABLISHED;
}

int kw__conn_rtt_slot(const kw_conn *c) {
  return c->rtt_slot;
}

void kw__conn_drop_pending(kw_conn *c) {
  free(c->pend);
  c->pend = NULL;
  c->pend_len = 0;
}

struct kw__tls_sess *kw__conn_tls(const kw_conn *c) {
  return c->tls;
}

void kw__conn_peer_key(kw_conn *c, kw_err err, const uint8_t *id) {
  if (err != KW_OK)
    c->close_err = err;
  if (id)
    memcpy(c->remote_id, id, KW_ID_LEN);
  if (err == KW_OK && id)
    c->remote_id_known = true;
}

/* Sends CONNECTION_CLOSE (once: not in the closing or draining period)
 * with the error the connection is closing for. */
static void send_close(kw_conn *c) {
  if (!c->qc || ngtcp2_conn_in_closing_period(c->qc) ||
      ngtcp2_conn_in_draining_period(c->qc))
    return;
  ngtcp2_ccerr ce;
  ngtcp2_ccerr_default(&ce);
  if (c->close_err == KW_ERR_TLS || c->close_err == KW_ERR_KEY_MISMATCH ||
      c->close_err == KW_ERR_CERT || c->close_err == KW_ERR_ALPN) {
    uint8_t alert = ngtcp2_conn_get_tls_alert(c->qc);
    ngtcp2_ccerr_set_tls_alert(&ce, alert ? alert : 42, NULL, 0);
  } else if (c->close_err == KW_ERR_QUIC) {
    ngtcp2_ccerr_set_transport_error(&ce, NGTCP2_INTERNAL_ERROR, NULL, 0);
  } else if (c->close_err == KW_ERR_FULL) {
    ngtcp2_ccerr_set_transport_error(&ce, NGTCP2_CONNECTION_REFUSED, NULL, 0);
  } else {
    ngtcp2_ccerr_set_application_error(&ce, c->local_app_code,
                                       (const uint8_t *)c->local_reason,
                                       strlen(c->local_reason));
  }
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi;
  uint8_t buf[1500];
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
      c->qc, &ps.path, &pi, buf, sizeof buf, &ce, kw__now(c->ep));
  if (n > 0) {
    size_t sent = 0;
    (void)kw__magicsock_send(c, buf, (size_t)n, 0, &sent);
  }
}

/* Into KW_CONN_CLOSING after a local close: tell the remote, then the
 * reaper (kw__conn_reap) frees the connection. conn_fail is the silent
 * way in (idle, unreachable, the remote closed: nothing to send). */
static void enter_closing(kw_conn *c) {
  send_close(c);
  c->state = KW_CONN_CLOSING;
}

static void notify_path(kw_conn *c) {
  kw_path_info pi;
  kw_conn_path(c, &pi);
  if (pi.kind == c->last_path.kind &&
      kw__sockaddr_equal(&pi.addr, &c->last_path.addr))
    return;
  c->last_path = pi;
  if (pi.kind == KW_PATH_DIRECT)
    c->q->stats.conns_direct++;
  char a[KW_SOCKADDR_STRLEN] = "-";
  if (pi.addr.family)
    kw_sockaddr_format(&pi.addr, a, sizeof a);
  kw__log(c->ep, KW_LOG_INFO, "path", "path.selected kind=%s addr=%s",
          kw_path_kind_name(pi.kind), a);
  kw__qpath_changed(c, &pi); /* a new path: the client migrates */
  app_path_changed(c->q, c, &pi);
}

static void notify_ready(kw_conn *c) {
  kw_endpoint *ep = c->ep;
  struct kw__quic *q = c->q;
  c->notify_ready = false;
  uv_timer_stop(&c->connect_timer);
  char idb[KW_ID_SHORTLEN + 1];
  kw_id_to_short(c->remote_id, idb, sizeof idb);
  kw__log(ep, KW_LOG_INFO, "conn",
          "conn.opened remote=%s alpn=%s dir=%s cipher=%s", idb, c->alpn,
          c->is_client ? "out" : "in", kw__tls_sess_cipher(c->tls));
  if (c->remote)
    kw__remote_set_id(c->remote, c->remote_id);
  if (c->remote && !c->hp_counted) /* the hole-punch schedule counts it */
    c->hp_counted = kw__disco_conn_up(ep, c->remote);
  if (c->is_client) {
    kw_connect_cb cb = c->connect_cb;
    c->connect_cb = NULL;
    if (cb)
      cb(c, KW_OK, c->connect_arg);
  } else {
    q->stats.conns_opened++;
    app_conn_accepted(q, c);
  }
}

/* When the remote counts as gone (see KW_DEAD_PEER_MS), UINT64_MAX while
 * nothing ack-eliciting is in flight. Keeps inflight_since_ns current. */
static uint64_t dead_deadline(kw_conn *c, uint64_t now) {
  if (c->state != KW_CONN_ESTABLISHED || !c->handshake_done) {
    c->inflight_since_ns = 0;
    return UINT64_MAX;
  }
  ngtcp2_conn_info ci;
  ngtcp2_conn_get_conn_info(c->qc, &ci);
  if (ci.bytes_in_flight == 0) {
    c->inflight_since_ns = 0;
    return UINT64_MAX;
  }
  if (c->inflight_since_ns == 0)
    c->inflight_since_ns = now;
  uint64_t span = (uint64_t)KW_DEAD_PEER_MS * 1000000ull;
  uint64_t ptos = KW_DEAD_PEER_PTOS * (uint64_t)ngtcp2_conn_get_pto(c->qc);
  if (ptos > span)
    span = ptos;
  /* silence counts from the last packet heard; data that only now went
   * in flight (after an idle spell) gets at least half the span */
  uint64_t a = c->last_rx_ns + span, b = c->inflight_since_ns + span / 2;
  return a > b ? a : b;
}

static void arm_timer(kw_conn *c) {
  ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(c->qc);
  uint64_t now = kw__now(c->ep);
  uint64_t dead = dead_deadline(c, now);
  if (dead < exp)
    exp = dead;
  uint64_t ms = 0;
  if (exp == UINT64_MAX) {
    uv_timer_stop(&c->timer);
    return;
  }
  if (exp > now)
    ms = (exp - now + 999999) / 1000000;
  uv_timer_start(&c->timer, timer_cb, ms, 0);
}

static bool send_batch(kw_conn *c, const uint8_t *buf, size_t len, size_t seg) {
  size_t sent = 0;
  kw_err e = kw__magicsock_send(c, buf, len, seg, &sent);
  c->pkts_sent += seg ? (len + seg - 1) / seg : 1;
  c->bytes_sent += len;
  if (e != KW_ERR_AGAIN)
    return true;
  /* keep what did not go out; resume when the socket drains */
  size_t off = sent * seg;
  size_t rest = len - off;
  uint8_t *p = realloc(c->pend, rest);
  if (!p)
    return true; /* dropped: QUIC's loss recovery resends */
  memcpy(p, buf + off, rest);
  c->pend = p;
  c->pend_len = rest;
  c->pend_seg = seg;
  kw__magicsock_watch_writable(c->ep, c);
  return false;
}

void kw__conn_retry_pending(kw_conn *c) {
  if (!c->pend)
    return;
  size_t sent = 0;
  kw_err e = kw__magicsock_send(c, c->pend, c->pend_len, c->pend_seg, &sent);
  if (e == KW_ERR_AGAIN) {
    size_t off = sent * c->pend_seg;
    memmove(c->pend, c->pend + off, c->pend_len - off);
    c->pend_len -= off;
    kw__magicsock_watch_writable(c->ep, c);
    return;
  }
  free(c->pend);
  c->pend = NULL;
  c->pend_len = 0;
  kw__conn_mark_dirty(c);
}

void kw__conn_flush(kw_conn *c) {
  kw_endpoint *ep = c->ep;
  struct kw__quic *q = c->q;
  if (c->state == KW_CONN_CLOSING)
    return;
  if (c->close_local) {
    enter_closing(c);
    return;
  }
  if (c->notify_ready)
    notify_ready(c);
  if (c->state == KW_CONN_CLOSING || c->close_local) {
    if (c->close_local) {
      enter_closing(c);
    }
    return;
  }
  if (c->state == KW_CONN_ESTABLISHED)
    notify_path(c);
  if (c->budget_notify && c->state == KW_CONN_ESTABLISHED && !c->close_local)
    kw__qs_budget_notify(c);
  if (c->state == KW_CONN_CLOSING)
    return;
  if (c->pend)
    return; /* still blocked on the socket */
  kw__qpath_retry(c);
  /* GSO batching is ours: ngtcp2_conn_write_aggregate_pkt only exists
   * from ngtcp2 1.15 on, and Debian ships 1.11. The buffer is sized for
   * the largest packet ngtcp2 may write (PMTU probes), not the current
   * path maximum, or probing never runs. */
  size_t maxpkt = ngtcp2_conn_get_max_tx_udp_payload_size(c->qc);
  size_t need = maxpkt * KW_GSO_MAX_SEGS;
  if (q->txbuf_cap < need) {
    uint8_t *b = realloc(q->txbuf, need);
    if (!b)
      return;
    q->txbuf = b;
    q->txbuf_cap = need;
  }
  ngtcp2_tstamp ts = kw__now(ep);
  /* the current path's packet size (what PMTUD has confirmed): the send
   * quantum counts packets of that size, and a larger packet is a probe */
  size_t pmax = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->qc);
  size_t max_pkts = KW_GSO_MAX_SEGS;
  if (c->handshake_done) {
    size_t quantum = ngtcp2_conn_get_send_quantum(c->qc) / pmax;
    if (quantum < max_pkts)
      max_pkts = quantum < 2 ? 2 : quantum;
  }
  uint8_t *buf = q->txbuf;
  size_t off = 0, seg = 0, npkts = 0;
  bool ok = true;
  while (npkts < max_pkts) {
    ngtcp2_ssize n = kw__qs_write_pkt(c, buf + off, maxpkt, ts);
    if (n < 0) {
      kw__log(ep, KW_LOG_WARN, "quic", "quic.write_error err=%s",
              ngtcp2_strerror((int)n));
      c->close_err = KW_ERR_QUIC;
      c->close_local = true;
      break;
    }
    if (n == 0)
      break;
    npkts++;
    if ((size_t)n > pmax) {
      /* a PMTU probe goes alone: one larger than the link fails at the
       * socket, and in a GSO batch it would take the batch's other
       * packets with it (real losses: the congestion controller backs
       * off) */
      if (off)
        ok = send_batch(c, buf, off, seg);
      if (ok)
        ok = send_batch(c, buf + off, (size_t)n, (size_t)n);
      off = 0;
      if (!ok)
        break;
      continue;
    }
    if (off == 0) {
      seg = (size_t)n;
      off = (size_t)n;
    } else if ((size_t)n == seg) {
      off += (size_t)n;
    } else if ((size_t)n < seg) {
      off += (size_t)n; /* a shorter packet ends a GSO batch */
      ok = send_batch(c, buf, off, seg);
      off = 0;
      if (!ok)
        break;
      continue;
    } else {
      /* larger (PMTUD confirmed a larger size): the batch before it goes
       * first, then a new one starts */
      ok = send_batch(c, buf, off, seg);
      if (!ok)
        break;
      memmove(buf, buf + off, (size_t)n);
      seg = off = (size_t)n;
    }
    /* a GSO send carries at most 64 KiB of UDP payload */
    if (off + seg > KW_GSO_MAX_BYTES) {
      ok = send_batch(c, buf, off, seg);
      off = 0;
      if (!ok)
        break;
    }
  }
  if (ok && off)
    send_batch(c, buf, off, seg);
  if (c->handshake_done)
    ngtcp2_conn_update_pkt_tx_time(c->qc, ts);
  if (c->close_local) {
    enter_closing(c);
    return;
  }
  arm_timer(c);
  if (npkts >= max_pkts && !c->pend)
    kw__conn_mark_dirty(c); /* more to write on the next turn */
}

static void timer_cb(uv_timer_t *t) {
  kw_conn *c = t->data;
  if (!c || c->state == KW_CONN_CLOSING)
    return;
  uint64_t now = kw__now(c->ep);
  if (dead_deadline(c, now) <= now) {
    char idb[KW_ID_SHORTLEN + 1];
    kw_id_to_short(c->remote_id, idb, sizeof idb);
    kw__log(c->ep, KW_LOG_INFO, "conn",
            "conn.unreachable remote=%s silent_ms=%llu", idb,
            (unsigned long long)((now - c->last_rx_ns) / 1000000ull));
    kw__qc_fail(c, KW_ERR_UNREACHABLE, 0);
    kw__conn_reap(c->ep);
    return;
  }
  int rv = ngtcp2_conn_handle_expiry(c->qc, now);
  if (rv != 0) {
    kw_err e = KW_ERR_QUIC;
    if (rv == NGTCP2_ERR_IDLE_CLOSE)
      e = c->state == KW_CONN_HANDSHAKE ? KW_ERR_TIMEOUT : KW_ERR_IDLE;
    else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT)
      e = KW_ERR_TIMEOUT;
    kw__qc_fail(c, e, 0);
    kw__conn_reap(c->ep);
    return;
  }
  kw__conn_flush(c);
  kw__conn_reap(c->ep);
}

static void connect_timer_cb(uv_timer_t *t) {
  kw_conn *c = t->data;
  if (!c || c->state != KW_CONN_HANDSHAKE)
    return;
  kw__log(c->ep, KW_LOG_INFO, "conn", "conn.timeout phase=handshake");
  kw__qc_fail(c, KW_ERR_TIMEOUT, 0);
  kw__conn_reap(c->ep);
}

void kw__conn_reap(kw_endpoint *ep) {
  struct kw__quic *q = kw__ep_quic(ep);
  /* a callback below may close the endpoint or other connections: the
   * outermost reap finishes the job, nested calls return at once */
  if (q->reaping)
    return;
  q->reaping = true;
  kw_conn **pp = &q->conns;
  while (*pp) {
    kw_conn *c = *pp;
    if (c->state != KW_CONN_CLOSING) {
      pp = &c->next;
      continue;
    }
    /* take it off the dirty list if it is there */
    if (c->dirty) {
      for (kw_conn **d = &q->dirty_head; *d; d = &(*d)->next_dirty) {
        if (*d == c) {
          *d = c->next_dirty;
          break;
        }
      }
      c->dirty = false;
    }
    char idb[KW_ID_SHORTLEN + 1];
    kw_id_to_short(c->remote_id, idb, sizeof idb);
    kw__log(ep, KW_LOG_INFO, "conn",
            "conn.closed remote=%s reason=%s code=%llu", idb,
            kw_errname(c->close_err), (unsigned long long)c->close_app_code);
    if (c->is_client && c->connect_cb) {
      kw_connect_cb cb = c->connect_cb;
      c->connect_cb = NULL;
      cb(NULL, c->close_err != KW_OK ? c->close_err : KW_ERR_CLOSED,
         c->connect_arg);
    } else if (c->state == KW_CONN_CLOSING &&
               (c->handshake_done || c->is_client)) {
      q->stats.conns_closed++;
      if ((c->is_client || c->remote_id_known) && !c->notify_ready)
        app_conn_closed(q, c, c->close_err, c->close_app_code);
    }
    conn_destroy(c); /* unlinks c from q->conns */
    pp = &q->conns;
  }
  q->reaping = false;
}

void kw__conn_shutdown_all(kw_endpoint *ep) {
  struct kw__quic *q = kw__ep_quic(ep);
  for (kw_conn *c = q->conns; c; c = c->next) {
    if (c->state == KW_CONN_CLOSING)
      continue;
    if (c->close_err == KW_OK && c->state == KW_CONN_HANDSHAKE)
      c->close_err = KW_ERR_CLOSED;
    c->close_local = true;
    enter_closing(c);
  }
  kw__conn_reap(ep);
}

/* ---- public: connections ---------------------------------------------------
 */

void kw_conn_remote_id(const kw_conn *c, uint8_t id[KW_ID_LEN]) {
  memcpy(id, c->remote_id, KW_ID_LEN);
}

const char *kw_conn_alpn(const kw_conn *c) {
  return c->alpn;
}
bool kw_conn_is_client(const kw_conn *c) {
  return c->is_client;
}
void kw_conn_set_user(kw_conn *c, void *user) {
  c->user = user;
}
void *kw_conn_get_user(const kw_conn *c) {
  return c->user;
}

void kw_conn_stats_get(kw_conn *c, kw_conn_stats *out) {
  memset(out, 0, sizeof *out);
  out->bytes_sent = c->bytes_sent;
  out->bytes_recv = c->bytes_recv;
  out->pkts_sent = c->pkts_sent;
  out->pkts_recv = c->pkts_recv;
  if (!c->qc)
    return;
  ngtcp2_conn_info st;
  ngtcp2_conn_get_conn_info(c->qc, &st);
  out->rtt_ms = (double)st.smoothed_rtt / 1e6;
  out->min_rtt_ms = st.min_rtt == UINT64_MAX ? 0 : (double)st.min_rtt / 1e6;
  out->cwnd = st.cwnd;
  out->max_datagram = kw_conn_max_datagram(c);
  out->send_buffered = c->buffered;
}

void kw_conn_path(kw_conn *c, kw_path_info *out) {
  memset(out, 0, sizeof *out);
  kw__remote *r = c->remote;
  const kw_sockaddr *d = r ? kw__remote_direct(r) : NULL;
  size_t npaths = r ? kw__paths_count_ip(&kw__remote_policy(r)->pt) +
                          (kw__remote_relay(r) >= 0)
                    : 0;
  if (d) {
    out->kind = KW_PATH_DIRECT;
    out->addr = *d;
  } else if (r && kw__remote_on_relay(r)) {
    out->kind = KW_PATH_RELAY;
  } else if (npaths > 1) {
    out->kind = KW_PATH_MIXED; /* racing: packets go on every path */
  }
  if (c->qc && c->handshake_done) {
    ngtcp2_conn_info st;
    ngtcp2_conn_get_conn_info(c->qc, &st);
    out->rtt_ms = (double)st.smoothed_rtt / 1e6;
  }
}

kw_err kw_conn_close(kw_conn *c, uint64_t app_code, const char *reason) {
  if (!c)
    return KW_ERR_INVALID_ARG;
  if (c->state == KW_CONN_CLOSING || c->close_local)
    return KW_OK;
  c->close_local = true;
  c->close_err = KW_OK;
  c->close_app_code = app_code;
  c->local_app_code = app_code;
  if (reason) {
    size_t l = strlen(reason);
    if (l >= sizeof c->local_reason)
      l = sizeof c->local_reason - 1;
    memcpy(c->local_reason, reason, l);
    c->local_reason[l] = 0;
  }
  kw__conn_mark_dirty(c);
  return KW_OK;
}
