/* SPDX-License-Identifier: MIT */
/*
 * The endpoint module (endpoint.c): the endpoint's life cycle and loop,
 * and what every other module of src/endpoint reads of it. struct
 * kw_endpoint is defined in endpoint.c only: it holds the loop, the
 * configuration's copy, the id, the lock and one pointer to each module's
 * state (docs/ARCHITECTURE.md section 2). kw_endpoint_new creates each
 * module with its kw__X_new and kw_endpoint_free frees it with kw__X_free;
 * a module reaches its own state with kw__ep_X(ep), and another module's
 * only through that module's functions.
 */
#ifndef KW_ENDPOINT_ENDPOINT_H
#define KW_ENDPOINT_ENDPOINT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "keyway.h"
#include "endpoint/config.h"

struct kw__tls_ctx;
struct kw__quic;
struct kw__magicsock;
struct kw__relay_map;
struct kw__publisher;
struct kw__resolve;
struct kw__lan;
struct kw__portmap;
struct kw__netmon;
struct kw__disco;
struct kw__stun;

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

/* The home relay's URL, read by kw_endpoint_home_relay from any thread
 * (under the lock; the relay client sets it). */
void kw__endpoint_set_home_url(kw_endpoint *ep, const char *url);

#endif /* KW_ENDPOINT_ENDPOINT_H */
