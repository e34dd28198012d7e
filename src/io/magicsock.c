/*
 * The magicsock: the endpoint's UDP sockets and the per-remote path state
 * that lets QUIC run over whichever real path works.
 *
 * Every datagram received is demultiplexed by its first bytes: STUN (magic
 * cookie at offset 4, top two bits zero), disco (a fixed 8-byte magic), and
 * everything else is QUIC, routed by destination connection id. QUIC sees
 * only mapped addresses: a remote's packets go out on its selected path,
 * or to every known path while none is selected (the handshake races them
 * and the first to answer wins).
 */
#include "io/internal.h"

#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2.h>

#include "core/disco.h"
#include "core/stun.h"

#define KW_RX_BATCHES_PER_WAKE 8 /* fairness between sockets */

uint64_t kw__now(kw_endpoint *ep) {
  (void)ep;
  return uv_hrtime();
}

uint64_t kw__unix_us(void) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* ---- remotes ------------------------------------------------------------ */

kw__remote *kw__remote_new(kw_endpoint *ep, const uint8_t *id) {
  kw__remote *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->ep = ep;
  if (id) {
    memcpy(r->id, id, KW_ID_LEN);
    r->id_known = true;
  }
  r->selected = -1;
  r->relay = -1;
  r->mapped_idx = ++ep->next_mapped;
  r->mapped.sin6_family = AF_INET6;
  r->mapped.sin6_port = htons(1);
  /* fd7a:6b77:7900::/48 with the index in the low 64 bits: never routed */
  uint8_t *a = (uint8_t *)&r->mapped.sin6_addr;
  a[0] = 0xfd;
  a[1] = 0x7a;
  a[2] = 0x6b;
  a[3] = 0x77;
  a[4] = 0x79;
  for (int i = 0; i < 8; i++)
    a[8 + i] = (uint8_t)(r->mapped_idx >> (56 - 8 * i));
  r->next = ep->remotes;
  ep->remotes = r;
  return r;
}

void kw__remote_unref(kw__remote *r) {
  if (r->nconns > 0)
    return;
  kw_endpoint *ep = r->ep;
  for (kw__remote **pp = &ep->remotes; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  }
  free(r);
}

void kw__remote_add_path(kw__remote *r, const kw_sockaddr *a) {
  for (size_t i = 0; i < r->n_paths; i++)
    if (kw__sockaddr_equal(&r->paths[i], a))
      return;
  if (r->n_paths >= KW_REMOTE_MAX_PATHS) {
    /* overflow policy: replace the oldest path that is not selected */
    size_t victim = r->selected == 0 ? 1 : 0;
    memmove(&r->paths[victim], &r->paths[victim + 1],
            (r->n_paths - victim - 1) * sizeof r->paths[0]);
    if (r->selected > (int)victim)
      r->selected--;
    r->n_paths--;
  }
  r->paths[r->n_paths++] = *a;
}

void kw__remote_path_changed(kw__remote *r) {
  for (kw_conn *c = r->ep->conns; c; c = c->next)
    if (c->remote == r)
      kw__conn_mark_dirty(c); /* its flush sends on the new path, tells the app */
}

bool kw__remote_confirm_path(kw__remote *r, const kw__src *from) {
  if (from->relay >= 0) {
    r->relay = from->relay; /* observed route */
    if (r->selected >= 0 || r->relay_selected)
      return false;
    r->relay_selected = true;
    return true;
  }
  if (r->selected >= 0 && kw__sockaddr_equal(&r->paths[r->selected], &from->addr))
    return false;
  kw__remote_add_path(r, &from->addr);
  for (size_t i = 0; i < r->n_paths; i++) {
    if (kw__sockaddr_equal(&r->paths[i], &from->addr)) {
      r->selected = (int)i;
      r->relay_selected = false;
      return true;
    }
  }
  return false;
}

/* ---- sending -------------------------------------------------------------- */

static kw__udp *sock_for(kw_endpoint *ep, const kw_sockaddr *to) {
  kw__udp *u = to->family == 4 ? &ep->udp4 : &ep->udp6;
  return u->fd >= 0 ? u : NULL;
}

kw_err kw__magicsock_send(kw_conn *c, const uint8_t *data, size_t len,
                          size_t seg, size_t *sent_segs) {
  kw_endpoint *ep = c->ep;
  kw__remote *r = c->remote;
  *sent_segs = 0;
  size_t nseg = seg ? (len + seg - 1) / seg : 1;
  if (r->selected >= 0) {
    const kw_sockaddr *to = &r->paths[r->selected];
    kw__udp *u = sock_for(ep, to);
    if (!u)
      return KW_ERR_NO_PATH;
    kw_err e = kw__udp_send(u, to, data, len, seg, sent_segs);
    ep->stats.udp_pkts_sent += *sent_segs;
    ep->stats.udp_bytes_sent += e == KW_OK ? len : *sent_segs * seg;
    return e;
  }
  if (r->relay_selected && r->relay >= 0)
    return kw__relay_send_batch(ep, r->relay, r->id, data, len, seg,
                                sent_segs);
  /* racing: every path gets every packet; a full socket buffer on one path
   * is not worth holding the others for (QUIC resends) */
  bool any = false;
  if (r->relay >= 0 && r->id_known) {
    size_t s = 0;
    if (kw__relay_send_batch(ep, r->relay, r->id, data, len, seg, &s) ==
        KW_OK)
      any = true;
  }
  for (size_t i = 0; i < r->n_paths; i++) {
    kw__udp *u = sock_for(ep, &r->paths[i]);
    if (!u)
      continue;
    size_t s = 0;
    if (kw__udp_send(u, &r->paths[i], data, len, seg, &s) == KW_OK)
      any = true;
    ep->stats.udp_pkts_sent += s;
  }
  *sent_segs = nseg;
  return any || (r->n_paths == 0 && r->relay < 0) ? KW_OK : KW_ERR_IO;
}

static void poll_cb(uv_poll_t *h, int status, int events);

static void update_poll(kw_endpoint *ep, kw__udp *u) {
  if (!u->poll_init || ep->closing)
    return;
  int ev = UV_READABLE;
  if (ep->nblocked)
    ev |= UV_WRITABLE;
  if (ev != u->poll_events) {
    u->poll_events = ev;
    uv_poll_start(&u->poll, ev, poll_cb);
  }
}

void kw__magicsock_watch_writable(kw_endpoint *ep, kw_conn *c) {
  for (size_t i = 0; i < ep->nblocked; i++)
    if (ep->blocked[i] == c)
      return;
  if (ep->nblocked < sizeof ep->blocked / sizeof ep->blocked[0]) {
    ep->blocked[ep->nblocked++] = c;
  } else {
    /* table full: drop the pending batch, loss recovery resends it */
    free(c->pend);
    c->pend = NULL;
    c->pend_len = 0;
    kw__conn_mark_dirty(c);
    return;
  }
  update_poll(ep, &ep->udp4);
  update_poll(ep, &ep->udp6);
}

/* ---- receiving ------------------------------------------------------------ */

static void on_datagram(void *arg, kw__udp *u, const kw_sockaddr *from,
                        const uint8_t *data, size_t len) {
  (void)u;
  kw_endpoint *ep = arg;
  ep->stats.udp_pkts_recv++;
  ep->stats.udp_bytes_recv += len;
  kw__src src = {*from, -1};
  kw__magicsock_input(ep, &src, NULL, data, len);
}

void kw__magicsock_input(kw_endpoint *ep, const kw__src *from,
                         const uint8_t *from_id, const uint8_t *data,
                         size_t len) {
  if (len == 0)
    return;
  if (kw__stun_is(data, len)) {
    if (from->relay < 0)
      kw__stun_input(ep, &from->addr, data, len);
    else
      ep->stats.drops_unknown++;
    return;
  }
  if (kw__disco_is(data, len)) {
    kw__disco_input(ep, from, data, len);
    return;
  }
  ngtcp2_version_cid vc;
  int rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, 16);
  if (rv != 0) {
    ep->stats.drops_unknown++;
    return;
  }
  kw_conn *c = kw__cidmap_get(&ep->cids, vc.dcid, vc.dcidlen);
  if (c) {
    kw__conn_recv(c, from, data, len);
    return;
  }
  if (data[0] & 0x80) /* long header: maybe an Initial */
    kw__conn_accept(ep, from, from_id, data, len);
  else
    ep->stats.drops_unknown++;
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  kw__udp *u = h->data;
  kw_endpoint *owner = (kw_endpoint *)h->loop->data;
  if (status < 0)
    return;
  if (events & UV_WRITABLE) {
    size_t n = owner->nblocked;
    kw_conn *list[64];
    memcpy(list, owner->blocked, n * sizeof list[0]);
    owner->nblocked = 0;
    for (size_t i = 0; i < n; i++)
      kw__conn_retry_pending(list[i]);
    update_poll(owner, &owner->udp4);
    update_poll(owner, &owner->udp6);
  }
  if (events & UV_READABLE) {
    for (int i = 0; i < KW_RX_BATCHES_PER_WAKE; i++) {
      int r = kw__udp_recv_batch(u, on_datagram, owner);
      if (r <= 0)
        break;
    }
  }
}

void kw__magicsock_start(kw_endpoint *ep) {
  kw__udp *socks[2] = {&ep->udp4, &ep->udp6};
  for (int i = 0; i < 2; i++) {
    kw__udp *u = socks[i];
    if (u->fd < 0 || u->poll_init)
      continue;
    if (uv_poll_init_socket(&ep->loop, &u->poll, u->fd) != 0)
      continue;
    u->poll.data = u;
    u->poll_init = true;
    u->poll_events = UV_READABLE;
    uv_poll_start(&u->poll, UV_READABLE, poll_cb);
  }
}
