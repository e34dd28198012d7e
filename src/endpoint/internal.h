/* SPDX-License-Identifier: MIT */
/*
 * Internal structures of the endpoint: the endpoint, its magicsock (UDP
 * sockets and the per-remote path state), and the kw__ functions its files
 * call in each other. QUIC connections and streams are only named
 * (their module's interface is quic.h, its structs are in quic_conn.h;
 * TLS's interface is tls.h). ngtcp2 and GnuTLS appear
 * here only as opaque pointers; the transports
 * (UDP socket, TLS stream, clock, OS addresses) are src/net's.
 */
#ifndef KW_IO_INTERNAL_H
#define KW_IO_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <uv.h>

#include "keyway.h"
#include "core/cidmap.h"
#include "core/holepunch.h"
#include "core/paths.h"
#include "core/remote.h"
#include "core/sockaddr.h"
#include "net/clock.h"
#include "net/osaddr.h"
#include "net/udp.h"
#include "endpoint/config.h"

/* One header per module; included here until every file includes what it
 * uses. */
#include "endpoint/lan.h"
#include "endpoint/lookup_client.h"
#include "endpoint/netmon.h"
#include "endpoint/portmap.h"
#include "endpoint/relay_client.h"
#include "endpoint/resolve.h"

#include "endpoint/magicsock.h"

struct ngtcp2_conn;
struct kw__tls_ctx;
struct kw__tls_sess;

/* ---- logging ---------------------------------------------------------- */

void kw__log(kw_endpoint *ep, kw_log_level lvl, const char *module,
             const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
bool kw__log_enabled(const kw_endpoint *ep, kw_log_level lvl);

/* ---- what every module reads of the endpoint (endpoint.c) ------------- */

/* The endpoint's loop, its configuration (a copy made by kw_endpoint_new,
 * read-only), its id, whether it is closing (every handle is being
 * closed: nothing new starts), its TLS credentials. The lock guards what
 * other threads read: the home relay's URL, the reflexive and observed
 * addresses, the port mapping's external address. */
uv_loop_t *kw__ep_loop(kw_endpoint *ep);
const kw_config *kw__ep_cfg(const kw_endpoint *ep);
/* The QUIC module's state (kw__quic_new; quic*.c only know its fields). */
struct kw__quic *kw__ep_quic(const kw_endpoint *ep);
const uint8_t *kw__ep_id(const kw_endpoint *ep);
bool kw__ep_closing(const kw_endpoint *ep);
struct kw__tls_ctx *kw__ep_tls(const kw_endpoint *ep);
void kw__ep_lock(kw_endpoint *ep);
void kw__ep_unlock(kw_endpoint *ep);
/* The state of the modules kw_endpoint_new creates (kw__X_new), each
 * defined in its module's file: the relay map (relay_client.c), the
 * record publisher (lookup_client.c), the bare-id lookups (resolve.c), LAN
 * discovery (lan.c; NULL when off), port mapping (portmap.c; NULL when
 * off), the network monitor (netmon.c). */
struct kw__relay_map *kw__ep_relays(const kw_endpoint *ep);
struct kw__publisher *kw__ep_publisher(const kw_endpoint *ep);
struct kw__resolve *kw__ep_resolve(const kw_endpoint *ep);
struct kw__lan *kw__ep_lan(const kw_endpoint *ep);
struct kw__portmap *kw__ep_portmap(const kw_endpoint *ep);
struct kw__netmon *kw__ep_netmon(const kw_endpoint *ep);
/* The state of disco (disco_io.c) and of the STUN probes (stun_probe.c):
 * only their own files know what is in it. */
struct kw__disco *kw__ep_disco(const kw_endpoint *ep);
struct kw__stun *kw__ep_stun(const kw_endpoint *ep);
/* The endpoint's magicsock (magicsock.h; set by kw_endpoint_new). */
struct kw__magicsock *kw__ep_msock(const kw_endpoint *ep);

/* ---- streams and connections (quic.c): endpoint/quic.h ---------------- */

#include "endpoint/quic.h"

/* ---- TLS (tls.c): endpoint/tls.h ----------------------------------------- */

#include "endpoint/tls.h"

/* ---- disco and hole punching (disco_io.c) ------------------------------ */

#include "endpoint/disco_io.h"

/* ---- STUN probes (stun_probe.c) ----------------------------------------- */

#include "endpoint/stun_probe.h"

/* ---- the endpoint (endpoint.c) ----------------------------------------- */

typedef struct kw__post kw__post;
struct kw__post {
  kw__post *next;
  void (*fn)(kw_endpoint *ep, void *arg);
  void *arg;
};

struct kw_endpoint {
  kw_config cfg;
  uint8_t id[KW_ID_LEN];
  char id_short[KW_ID_SHORTLEN + 1];
  uv_loop_t loop;
  bool loop_init;
  uv_async_t async;
  uv_prepare_t prepare;
  uv_thread_t thread;
  bool thread_started;
  uv_thread_t loop_thread_id; /* set while running */
  bool running;
  uv_mutex_t mu; /* guards posts, closing_requested */
  kw__post *post_head, *post_tail;
  bool close_requested;        /* under mu */
  bool closing;                /* loop thread */
  bool closed;                 /* all handles closed */
  struct kw__magicsock *msock; /* magicsock.c */
  struct kw__tls_ctx *tls;
  struct kw__quic *quic; /* quic.c: connections, connection ids, Retry */
  kw_endpoint_stats stats;
  /* the modules' state (kw__ep_relays...): created by their kw__X_new,
   * freed by their kw__X_free */
  struct kw__relay_map *relays;    /* relay_client.c */
  struct kw__publisher *publisher; /* lookup_client.c */
  struct kw__resolve *resolve;     /* resolve.c */
  struct kw__lan *lan;             /* lan.c, NULL when LAN discovery is off */
  char home_url[KW_MAX_RELAY_URL + 1]; /* under mu: read from any thread */
  struct kw__portmap *portmap;         /* portmap.c, NULL when off */
  struct kw__netmon *netmon;           /* netmon.c */
  struct kw__disco *disco;             /* disco_io.c */
  struct kw__stun *stun;               /* stun_probe.c */
};

void kw__endpoint_set_home_url(kw_endpoint *ep, const char *url);

#endif /* KW_IO_INTERNAL_H */
