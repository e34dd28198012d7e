/* SPDX-License-Identifier: MIT */
/*
 * Fake paths and connection migration (docs/ARCHITECTURE.md section 4).
 *
 * QUIC never sees real addresses; the magicsock carries a connection's
 * packets over whatever real path its remote has. When that path changes
 * (direct -> relay, relay -> direct, a NAT rebinding), the congestion
 * state and RTT of the old path no longer apply (RFC 9000 section 9.4).
 * To make ngtcp2 reset them, each connection has a path generation,
 * written into bytes 6-7 of one fake address:
 * - a client puts it in its fake local address, and on a path change with
 *   the handshake confirmed moves to the next one with
 *   ngtcp2_conn_initiate_immediate_migration (a new connection id of the
 *   server, path validation, congestion control and RTT reset);
 * - a server puts it in the peer's fake remote address, and presents each
 *   packet in the generation of its destination connection id: an id first
 *   used after the handshake opens a new generation, so ngtcp2 sees the
 *   peer migrate (its own path validation and reset), while packets that
 *   still carry an older id keep their older generation (reordered
 *   stragglers are not taken for a move back).
 */
#include "endpoint/quic_conn.h"
#include "endpoint/quic_path.h"

#include <string.h>

#define GEN_HI 6 /* byte offset of the generation in the fake address */

static void put_gen(struct sockaddr_in6 *sa, uint16_t gen) {
  uint8_t *a = (uint8_t *)&sa->sin6_addr;
  a[GEN_HI] = (uint8_t)(gen >> 8);
  a[GEN_HI + 1] = (uint8_t)gen;
}

static uint16_t get_gen(const ngtcp2_addr *addr) {
  if (addr->addrlen < sizeof(struct sockaddr_in6))
    return 0;
  const uint8_t *a =
      (const uint8_t *)&((const struct sockaddr_in6 *)addr->addr)->sin6_addr;
  return (uint16_t)(a[GEN_HI] << 8 | a[GEN_HI + 1]);
}

void kw__qpath_build(const kw_conn *c, uint16_t gen, kw__qpath *p) {
  /* local: fd7a:6b77:7900::1 port 1; remote: the remote's mapped address */
  static const uint8_t pfx[16] = {0xfd, 0x7a, 0x6b, 0x77, 0x79, 0, 0, 0,
                                  0,    0,    0,    0,    0,    0, 0, 1};
  memset(&p->local, 0, sizeof p->local);
  p->local.sin6_family = AF_INET6;
  p->local.sin6_port = htons(1);
  memcpy(&p->local.sin6_addr, pfx, 16);
  p->remote = c->mapped;
  put_gen(c->is_client ? &p->local : &p->remote, gen);
  memset(&p->path, 0, sizeof p->path);
  p->path.local.addr = (ngtcp2_sockaddr *)&p->local;
  p->path.local.addrlen = sizeof p->local;
  p->path.remote.addr = (ngtcp2_sockaddr *)&p->remote;
  p->path.remote.addrlen = sizeof p->remote;
}

static bool cid_at(const kw_conn *c, size_t i, const uint8_t *cid, size_t len) {
  return i < c->ncids && c->cids[i].len == len &&
         memcmp(c->cids[i].cid, cid, len) == 0;
}

uint16_t kw__qpath_rx_gen(kw_conn *c, const uint8_t *data, size_t len) {
  c->rx_fresh = false;
  if (c->is_client)
    return c->path_gen;
  ngtcp2_version_cid vc;
  if (ngtcp2_pkt_decode_version_cid(&vc, data, len, KW_CIDLEN) != 0)
    return c->path_gen_cur; /* ngtcp2 drops it */
  size_t i = c->rx_cid;
  if (!cid_at(c, i, vc.dcid, vc.dcidlen)) {
    for (i = 0; i < c->ncids && !cid_at(c, i, vc.dcid, vc.dcidlen); i++)
      ;
    if (i == c->ncids)
      return c->path_gen_cur;
    c->rx_cid = (uint8_t)i;
  }
  if (!c->cids[i].used) {
    /* a first use: kw__qpath_after_read keeps it once the packet proved
     * authentic */
    c->rx_fresh = true;
    c->rx_fresh_gen =
        c->handshake_done ? (uint16_t)(c->path_gen + 1) : c->path_gen;
    return c->rx_fresh_gen;
  }
  return c->cids[i].gen;
}

void kw__qpath_after_read(kw_conn *c) {
  if (c->rx_fresh && c->rx_cid < c->ncids) {
    c->rx_fresh = false;
    c->cids[c->rx_cid].used = true;
    c->cids[c->rx_cid].gen = c->rx_fresh_gen; /* the one it was shown in */
    c->path_gen = c->rx_fresh_gen;
  }
  if (c->is_client || c->path_gen == c->path_gen_cur)
    return; /* no generation ngtcp2 could have moved to */
  uint16_t g = get_gen(&ngtcp2_conn_get_path(c->qc)->remote);
  if (g == c->path_gen_cur)
    return;
  c->path_gen_cur = g;
  c->q->stats.path_migrations++;
  kw__log(c->ep, KW_LOG_INFO, "path", "path.migrated gen=%u by=peer",
          (unsigned)g);
}

void kw__qpath_changed(kw_conn *c, const kw_path_info *now) {
  bool first = !c->path_reported;
  c->path_reported = true;
  /* the first report is the path the connection started on; racing
   * (mixed) or no path is no place to move to */
  if (!c->is_client || first || !c->confirmed ||
      (now->kind != KW_PATH_DIRECT && now->kind != KW_PATH_RELAY))
    return;
  c->migrate_pending = true;
  kw__qpath_retry(c);
}

void kw__qpath_retry(kw_conn *c) {
  if (!c->migrate_pending || !c->qc)
    return;
  kw__qpath np;
  kw__qpath_build(c, (uint16_t)(c->path_gen + 1), &np);
  int rv =
      ngtcp2_conn_initiate_immediate_migration(c->qc, &np.path, kw__now(c->ep));
  if (rv == NGTCP2_ERR_CONN_ID_BLOCKED)
    return; /* no spare id of the server yet: its NEW_CONNECTION_ID will
               come (after it saw our RETIRE_CONNECTION_ID) */
  c->migrate_pending = false;
  if (rv != 0) {
    kw__log(c->ep, KW_LOG_DEBUG, "path", "path.migrate_failed err=%s",
            ngtcp2_strerror(rv));
    return;
  }
  c->path_gen++;
  c->q->stats.path_migrations++;
  kw__log(c->ep, KW_LOG_INFO, "path", "path.migrated gen=%u by=us",
          (unsigned)c->path_gen);
}
