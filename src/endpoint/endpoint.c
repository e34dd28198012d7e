/* SPDX-License-Identifier: MIT */
/*
 * The endpoint: the loop (on the caller's thread or the
 * library's), work posted from other threads, graceful close, and the
 * public getters.
 */
#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/magicsock.h"
#include "endpoint/quic.h"
#include "endpoint/tls.h"
#include "endpoint/disco_io.h"
#include "endpoint/stun_probe.h"
#include "endpoint/relay_client.h"
#include "endpoint/lookup_client.h"
#include "endpoint/resolve.h"
#include "endpoint/lan.h"
#include "endpoint/portmap.h"
#include "endpoint/netmon.h"
#include "net/osaddr.h"
#include "core/sockaddr.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/addr_filter.h"

typedef struct kw__post kw__post;
struct kw__post {
  kw__post *next;
  void (*fn)(kw_endpoint *ep, void *arg);
  void *arg;
};

/* The endpoint: defined here only (tests/layers checks it). Its own
 * fields are the loop and its plumbing, the configuration's copy, the id,
 * the lock and the home relay's URL; the rest is one pointer to each
 * module's state, which kw_endpoint_new creates (kw__X_new) and
 * kw_endpoint_free frees (kw__X_free), each module reaching its own
 * through kw__ep_X. */
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

/* ---- logging ------------------------------------------------------------ */

bool kw__log_enabled(const kw_endpoint *ep, kw_log_level lvl) {
  return ep && ep->cfg.log_fn && lvl <= ep->cfg.log_level;
}

void kw__log(kw_endpoint *ep, kw_log_level lvl, const char *module,
             const char *fmt, ...) {
  if (!kw__log_enabled(ep, lvl))
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  ep->cfg.log_fn(ep->cfg.log_user, lvl, module, buf);
}

/* ---- what every module reads of the endpoint ----------------------------- */

uv_loop_t *kw__ep_loop(kw_endpoint *ep) {
  return &ep->loop;
}
const kw_config *kw__ep_cfg(const kw_endpoint *ep) {
  return &ep->cfg;
}
struct kw__quic *kw__ep_quic(const kw_endpoint *ep) {
  return ep->quic;
}
const uint8_t *kw__ep_id(const kw_endpoint *ep) {
  return ep->id;
}
bool kw__ep_closing(const kw_endpoint *ep) {
  return ep->closing;
}
struct kw__tls_ctx *kw__ep_tls(const kw_endpoint *ep) {
  return ep->tls;
}
void kw__ep_lock(kw_endpoint *ep) {
  uv_mutex_lock(&ep->mu);
}
void kw__ep_unlock(kw_endpoint *ep) {
  uv_mutex_unlock(&ep->mu);
}
struct kw__disco *kw__ep_disco(const kw_endpoint *ep) {
  return ep->disco;
}
struct kw__magicsock *kw__ep_msock(const kw_endpoint *ep) {
  return ep->msock;
}
struct kw__stun *kw__ep_stun(const kw_endpoint *ep) {
  return ep->stun;
}

/* ---- loop plumbing ---------------------------------------------------------
 */

static void run_posts(kw_endpoint *ep) {
  uv_mutex_lock(&ep->mu);
  kw__post *p = ep->post_head;
  ep->post_head = ep->post_tail = NULL;
  uv_mutex_unlock(&ep->mu);
  while (p) {
    kw__post *n = p->next;
    p->fn(ep, p->arg);
    free(p);
    p = n;
  }
}

static void handle_noop_close(uv_handle_t *h) {
  (void)h;
}

static void do_close(kw_endpoint *ep) {
  if (ep->closing)
    return;
  ep->closing = true;
  kw__log(ep, KW_LOG_INFO, "endpoint", "endpoint.closing conns=%u",
          kw__quic_nconns(ep));
  /* posted work accepted before the close still runs, connections alive */
  run_posts(ep);
  kw__conn_shutdown_all(ep);
  kw__portmap_stop(ep); /* first: its release has the longest way to go */
  kw__resolve_stop(ep); /* bare-id dials end with KW_ERR_CLOSED */
  kw__lan_stop(ep);
  kw__relays_stop(ep);
  kw__lookup_stop(ep);
  kw__stun_stop(ep);
  kw__disco_stop(ep);
  kw__magicsock_close_handles(ep); /* our sockets, birthday probing's */
  uv_close((uv_handle_t *)&ep->async, handle_noop_close);
  uv_close((uv_handle_t *)&ep->prepare, handle_noop_close);
}

static void async_cb(uv_async_t *a) {
  kw_endpoint *ep = a->data;
  run_posts(ep);
  uv_mutex_lock(&ep->mu);
  bool close = ep->close_requested;
  uv_mutex_unlock(&ep->mu);
  if (close)
    do_close(ep);
}

static void prepare_cb(uv_prepare_t *p) {
  kw_endpoint *ep = p->data;
  /* flush every connection touched this turn: ACKs and data coalesce */
  kw__conn_flush_dirty(ep);
  kw__conn_reap(ep);
}

/* ---- endpoint
 * ---------------------------------------------------------------- */

kw_err kw_endpoint_new(const kw_config *cfg, kw_endpoint **out) {
  if (!cfg || !out)
    return KW_ERR_INVALID_ARG;
  *out = NULL;
  if (sodium_init() < 0)
    return KW_ERR_NOMEM;
  kw_endpoint *ep = calloc(1, sizeof *ep);
  if (!ep)
    return KW_ERR_NOMEM;
  kw_err err;
  if ((err = kw__config_copy(&ep->cfg, cfg)) != KW_OK)
    goto fail;
  memcpy(ep->id, ep->cfg.sk + 32, KW_ID_LEN);
  kw_id_to_short(ep->id, ep->id_short, sizeof ep->id_short);
  if ((err = kw__quic_new(ep, &ep->quic)) != KW_OK)
    goto fail;
  if (uv_mutex_init(&ep->mu) != 0) {
    err = KW_ERR_NOMEM;
    goto fail_cids;
  }
  if (uv_loop_init(&ep->loop) != 0) {
    err = KW_ERR_LOOP;
    goto fail_mu;
  }
  ep->loop_init = true;
  ep->loop.data = ep;
  uv_async_init(&ep->loop, &ep->async, async_cb);
  ep->async.data = ep;
  uv_prepare_init(&ep->loop, &ep->prepare);
  ep->prepare.data = ep;
  uv_prepare_start(&ep->prepare, prepare_cb);
  if ((err = kw__tls_ctx_new(ep->cfg.sk, &ep->tls)) != KW_OK)
    goto fail_loop;
  if ((err = kw__magicsock_new(ep, &ep->msock)) != KW_OK)
    goto fail_sock;
  if ((err = kw__relays_new(ep, &ep->relays)) != KW_OK ||
      (err = kw__publisher_new(ep, &ep->publisher)) != KW_OK ||
      (err = kw__resolve_new(ep, &ep->resolve)) != KW_OK ||
      (err = kw__netmon_new(ep, &ep->netmon)) != KW_OK ||
      (err = kw__stun_new(ep, &ep->stun)) != KW_OK ||
      (err = kw__disco_new(ep, &ep->disco)) != KW_OK)
    goto fail_sock;
  if ((err = kw__disco_start(ep)) != KW_OK)
    goto fail_sock;
  if ((err = kw__relays_start(ep)) != KW_OK)
    goto fail_sock;
  /* off unless asked: it talks to the gateway (SSDP, NAT-PMP) */
  if ((err = kw__portmap_new(ep, &ep->portmap)) != KW_OK)
    goto fail_sock;
  /* off unless asked: it multicasts to the whole link */
  if ((err = kw__lan_new(ep, &ep->lan)) != KW_OK)
    goto fail_sock;
  char b4[KW_SOCKADDR_STRLEN] = "-", b6[KW_SOCKADDR_STRLEN] = "-";
  kw_sockaddr a;
  if (kw__magicsock_bound(ep, 4, &a))
    kw_sockaddr_format(&a, b4, sizeof b4);
  if (kw__magicsock_bound(ep, 6, &a))
    kw_sockaddr_format(&a, b6, sizeof b6);
  bool gso, gro;
  kw__magicsock_offload(ep, &gso, &gro);
  kw__log(ep, KW_LOG_INFO, "endpoint",
          "endpoint.bound id=%s v4=%s v6=%s gso=%d gro=%d", ep->id_short, b4,
          b6, gso, gro);
  *out = ep;
  return KW_OK;
fail_sock:
  kw__relays_stop(ep);
  kw__disco_stop(ep);
  kw__magicsock_close_handles(ep);
  kw__tls_ctx_free(ep->tls);
fail_loop:
  uv_close((uv_handle_t *)&ep->async, NULL);
  uv_close((uv_handle_t *)&ep->prepare, NULL);
  uv_run(&ep->loop, UV_RUN_DEFAULT);
  uv_loop_close(&ep->loop);
  kw__relays_free(ep->relays);
  kw__publisher_free(ep->publisher);
  kw__resolve_free(ep->resolve);
  kw__netmon_free(ep->netmon);
  kw__disco_free(ep->disco); /* after its timer's close */
  kw__stun_free(ep->stun);
  kw__magicsock_free(ep->msock);
fail_mu:
  uv_mutex_destroy(&ep->mu);
fail_cids:
  kw__quic_free(ep->quic);
fail:
  kw__config_clear(&ep->cfg);
  free(ep);
  return err;
}

kw_err kw_endpoint_run(kw_endpoint *ep) {
  if (!ep)
    return KW_ERR_INVALID_ARG;
  if (ep->closed)
    return KW_ERR_CLOSED;
  if (ep->running)
    return KW_ERR_STATE;
  ep->running = true;
  ep->loop_thread_id = uv_thread_self();
  /* A peer that resets a TCP connection (relay, lookup) must not kill the
   * process with SIGPIPE: block it on the loop thread while the loop runs,
   * and swallow one left pending before restoring the caller's mask. */
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  /* a close requested before the loop ran */
  uv_mutex_lock(&ep->mu);
  bool close = ep->close_requested;
  uv_mutex_unlock(&ep->mu);
  if (close)
    do_close(ep);
  int rv = uv_run(&ep->loop, UV_RUN_DEFAULT);
  ep->running = false;
  ep->closed = true;
  struct timespec zero = {0, 0};
  while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_set, NULL);
  return rv < 0 ? KW_ERR_LOOP : KW_OK;
}

static void thread_main(void *arg) {
  (void)kw_endpoint_run(arg);
}

kw_err kw_endpoint_start(kw_endpoint *ep) {
  if (!ep)
    return KW_ERR_INVALID_ARG;
  if (ep->thread_started || ep->running)
    return KW_ERR_STATE;
  if (uv_thread_create(&ep->thread, thread_main, ep) != 0)
    return KW_ERR_IO;
  ep->thread_started = true;
  return KW_OK;
}

kw_err kw_endpoint_post(kw_endpoint *ep, void (*fn)(kw_endpoint *, void *),
                        void *arg) {
  if (!ep || !fn)
    return KW_ERR_INVALID_ARG;
  kw__post *p = malloc(sizeof *p);
  if (!p)
    return KW_ERR_NOMEM;
  p->next = NULL;
  p->fn = fn;
  p->arg = arg;
  uv_mutex_lock(&ep->mu);
  if (ep->close_requested) {
    uv_mutex_unlock(&ep->mu);
    free(p);
    return KW_ERR_CLOSED;
  }
  if (ep->post_tail)
    ep->post_tail->next = p;
  else
    ep->post_head = p;
  ep->post_tail = p;
  uv_mutex_unlock(&ep->mu);
  uv_async_send(&ep->async);
  return KW_OK;
}

static bool on_loop_thread(kw_endpoint *ep) {
  if (!ep->running)
    return false;
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &ep->loop_thread_id) != 0;
}

kw_err kw_endpoint_close(kw_endpoint *ep) {
  if (!ep)
    return KW_ERR_INVALID_ARG;
  uv_mutex_lock(&ep->mu);
  bool already = ep->close_requested;
  ep->close_requested = true;
  uv_mutex_unlock(&ep->mu);
  if (on_loop_thread(ep)) {
    /* from a callback: the caller may be deep inside a connection's
     * processing, so the close runs at the top of the next loop turn */
    if (!already)
      uv_async_send(&ep->async);
    return KW_OK;
  }
  if (!already && !ep->closed)
    uv_async_send(&ep->async);
  if (ep->thread_started) {
    uv_thread_join(&ep->thread);
    ep->thread_started = false;
  }
  return KW_OK;
}

void kw_endpoint_free(kw_endpoint *ep) {
  if (!ep)
    return;
  if (ep->thread_started) {
    kw_endpoint_close(ep);
  }
  if (!ep->closed) {
    /* never ran, or ran and stopped without a close: close on this thread */
    uv_mutex_lock(&ep->mu);
    ep->close_requested = true;
    uv_mutex_unlock(&ep->mu);
    ep->running = true;
    ep->loop_thread_id = uv_thread_self();
    do_close(ep);
    uv_run(&ep->loop, UV_RUN_DEFAULT);
    ep->running = false;
    ep->closed = true;
  }
  /* anything posted that never ran: free the entries (callers own args) */
  kw__post *p = ep->post_head;
  while (p) {
    kw__post *n = p->next;
    free(p);
    p = n;
  }
  kw__resolve_free(ep->resolve);
  kw__lan_free(ep->lan);
  kw__relays_free(ep->relays);
  kw__publisher_free(ep->publisher);
  kw__netmon_free(ep->netmon);
  kw__portmap_free(ep->portmap);
  kw__remotes_free(ep);      /* through their owner: disco keys wiped */
  kw__disco_free(ep->disco); /* after the remotes, which may still call it */
  kw__stun_free(ep->stun);
  kw__magicsock_free(ep->msock);
  ep->msock = NULL;
  uv_loop_close(&ep->loop);
  kw__tls_ctx_free(ep->tls);
  kw__quic_free(ep->quic);
  uv_mutex_destroy(&ep->mu);
  kw__config_clear(&ep->cfg);
  free(ep);
}

struct kw__relay_map *kw__ep_relays(const kw_endpoint *ep) {
  return ep->relays;
}

struct kw__publisher *kw__ep_publisher(const kw_endpoint *ep) {
  return ep->publisher;
}

struct kw__resolve *kw__ep_resolve(const kw_endpoint *ep) {
  return ep->resolve;
}

struct kw__lan *kw__ep_lan(const kw_endpoint *ep) {
  return ep->lan;
}

struct kw__portmap *kw__ep_portmap(const kw_endpoint *ep) {
  return ep->portmap;
}

struct kw__netmon *kw__ep_netmon(const kw_endpoint *ep) {
  return ep->netmon;
}

void kw__endpoint_set_home_url(kw_endpoint *ep, const char *url) {
  uv_mutex_lock(&ep->mu);
  snprintf(ep->home_url, sizeof ep->home_url, "%s", url ? url : "");
  uv_mutex_unlock(&ep->mu);
}

kw_err kw_endpoint_home_relay(kw_endpoint *ep, char *out, size_t outlen) {
  if (!ep || !out || outlen == 0)
    return KW_ERR_INVALID_ARG;
  uv_mutex_lock(&ep->mu);
  size_t l = strlen(ep->home_url);
  kw_err e = KW_OK;
  if (l >= outlen) {
    e = KW_ERR_BUFFER;
    out[0] = 0;
  } else {
    memcpy(out, ep->home_url, l + 1);
  }
  uv_mutex_unlock(&ep->mu);
  return e;
}

void kw_endpoint_id(const kw_endpoint *ep, uint8_t id[KW_ID_LEN]) {
  memcpy(id, ep->id, KW_ID_LEN);
}

kw_err kw_endpoint_bound(const kw_endpoint *ep, kw_sockaddr *out, size_t cap,
                         size_t *n) {
  if (!ep || !n || (!out && cap))
    return KW_ERR_INVALID_ARG;
  *n = 0;
  kw_sockaddr a;
  if (kw__magicsock_bound(ep, 4, &a) && *n < cap)
    out[(*n)++] = a;
  if (kw__magicsock_bound(ep, 6, &a) && *n < cap)
    out[(*n)++] = a;
  return KW_OK;
}

static bool is_unspecified(const kw_sockaddr *a) {
  static const uint8_t z[16] = {0};
  return memcmp(a->ip, z, a->family == 4 ? 4 : 16) == 0;
}

static void add_addr(kw_endpoint_addr *out, const kw_sockaddr *a) {
  for (size_t i = 0; i < out->n_addrs; i++)
    if (kw__sockaddr_equal(&out->addrs[i], a))
      return;
  if (out->n_addrs < KW_MAX_DIRECT_ADDRS)
    out->addrs[out->n_addrs++] = *a;
}

kw_err kw_endpoint_get_addr(kw_endpoint *ep, kw_endpoint_addr *out) {
  if (!ep || !out)
    return KW_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  memcpy(out->id, ep->id, KW_ID_LEN);
  kw_endpoint_home_relay(ep, out->relay_url, sizeof out->relay_url);
  if (ep->cfg.path_policy == KW_PATH_POLICY_RELAY_ONLY)
    return KW_OK; /* the relay is the only way to us */
  /* our sockets' bound addresses (family 0: no socket) */
  kw_sockaddr bound[2] = {{0}, {0}};
  for (int i = 0; i < 2; i++)
    if (!kw__magicsock_bound(ep, i == 0 ? 4 : 6, &bound[i]))
      bound[i].family = 0;
  uv_interface_address_t *ifs = NULL;
  int nifs = 0;
  bool need_ifs = false;
  for (int i = 0; i < 2; i++)
    if (bound[i].family && is_unspecified(&bound[i]))
      need_ifs = true;
  if (need_ifs && uv_interface_addresses(&ifs, &nifs) != 0) {
    ifs = NULL;
    nifs = 0;
  }
  /* ranked passes: private LAN addresses of real interfaces, their other
   * addresses, virtual interfaces (containers, VMs, tunnels), loopback last
   * (for peers on this host); the application's lists filter them all */
  for (int pass = KW_CAND_RANK_LAN; pass <= KW_CAND_RANK_LOOPBACK; pass++) {
    for (int s = 0; s < 2; s++) {
      const kw_sockaddr *b = &bound[s];
      if (!b->family)
        continue;
      if (!is_unspecified(b)) {
        if (pass == KW_CAND_RANK_LAN)
          add_addr(out, b); /* bound there: that is the address */
        continue;
      }
      for (int i = 0; i < nifs; i++) {
        kw_sockaddr a;
        const struct sockaddr *sa = (const struct sockaddr *)&ifs[i].address;
        if ((b->family == 4) != (sa->sa_family == AF_INET))
          continue;
        kw__sockaddr_from_os(sa, &a);
        int rank = ifs[i].is_internal ? KW_CAND_RANK_LOOPBACK
                                      : kw__cand_rank(ifs[i].name, &a);
        if (rank != pass || !kw__cand_allowed(ep->cfg.cand, ifs[i].name, &a))
          continue; /* never (link-local, ...), another pass, or filtered */
        a.port = b->port;
        add_addr(out, &a);
      }
    }
  }
  if (ifs)
    uv_free_interface_addresses(ifs, nifs);
  /* the gateway's port mapping (UPnP / NAT-PMP), when one is held */
  kw_sockaddr mapped;
  if (kw__portmap_external(ep, &mapped) &&
      kw__cand_allowed_external(ep->cfg.cand, &mapped))
    add_addr(out, &mapped);
  /* server-reflexive addresses learned by STUN go last */
  kw_sockaddr refl[2 + KW_OBSERVED_MAX];
  kw__stun_reflexive(ep, &refl[0], &refl[1]);
  /* then our addresses as remotes saw them in Pongs, newest first */
  size_t nrefl = 2 + kw__disco_observed(ep, refl + 2, KW_OBSERVED_MAX);
  for (size_t i = 0; i < nrefl; i++)
    if (refl[i].family && kw__cand_allowed_external(ep->cfg.cand, &refl[i]))
      add_addr(out, &refl[i]);
  return KW_OK;
}

typedef struct dial_req {
  kw_connect_cb cb;
  void *arg;
  char alpn[256];
} dial_req;

static kw_err dial(kw_endpoint *ep, const kw_endpoint_addr *to,
                   const char *alpn, kw_connect_cb cb, void *arg) {
  kw__remote *r = kw__remote_new(ep, to->id);
  if (!r)
    return KW_ERR_NOMEM;
  size_t usable = 0;
  bool relay_only = ep->cfg.path_policy == KW_PATH_POLICY_RELAY_ONLY;
  bool direct_only = ep->cfg.path_policy == KW_PATH_POLICY_DIRECT_ONLY;
  for (size_t i = 0; !relay_only && i < to->n_addrs && i < KW_MAX_DIRECT_ADDRS;
       i++) {
    const kw_sockaddr *a = &to->addrs[i];
    if ((a->family == 4 || a->family == 6) &&
        kw__magicsock_bound(ep, a->family, NULL)) {
      kw__remote_add_path(r, a);
      usable++;
    }
  }
  /* the remote's relay, else our own home relay */
  if (to->relay_url[0])
    kw__remote_set_relay(r, kw__relay_index(ep, to->relay_url, true));
  if (kw__remote_relay(r) < 0)
    kw__remote_set_relay(r, kw__relay_home(ep));
  /* direct-only: the relay may carry disco, never the connection */
  if (direct_only && !usable) {
    kw__remote_unref(r);
    return KW_ERR_NO_PATH;
  }
  if (!usable && kw__remote_relay(r) < 0) {
    kw__remote_unref(r);
    return KW_ERR_NO_PATH;
  }
  char idb[KW_ID_SHORTLEN + 1];
  kw_id_to_short(to->id, idb, sizeof idb);
  kw__log(ep, KW_LOG_INFO, "conn",
          "conn.dial remote=%s alpn=%s direct=%zu relay=%d", idb, alpn, usable,
          kw__remote_relay(r));
  /* on failure the remote goes with the connection */
  return kw__conn_client_new(ep, r, alpn, cb, arg, NULL);
}

static void resolved(kw_endpoint *ep, kw_err err, const kw_endpoint_addr *addr,
                     void *arg) {
  dial_req *d = arg;
  if (err == KW_OK)
    err = dial(ep, addr, d->alpn, d->cb, d->arg);
  if (err != KW_OK)
    d->cb(NULL, err, d->arg);
  free(d);
}

kw_err kw_endpoint_connect(kw_endpoint *ep, const kw_endpoint_addr *to,
                           const char *alpn, kw_connect_cb cb, void *arg) {
  if (!ep || !to || !alpn || !cb)
    return KW_ERR_INVALID_ARG;
  size_t l = strlen(alpn);
  if (l == 0 || l > 255 || to->n_addrs > KW_MAX_DIRECT_ADDRS)
    return KW_ERR_INVALID_ARG;
  if (ep->closing)
    return KW_ERR_CLOSED;
  if (to->n_addrs > 0 || to->relay_url[0])
    return dial(ep, to, alpn, cb, arg);
  /* a bare id: ask the lookup sources first (resolve.c) */
  dial_req *d = calloc(1, sizeof *d);
  if (!d)
    return KW_ERR_NOMEM;
  d->cb = cb;
  d->arg = arg;
  memcpy(d->alpn, alpn, l + 1);
  kw_err e = kw__resolve(ep, to->id, resolved, d);
  if (e != KW_OK)
    free(d);
  return e;
}

void kw_endpoint_stats_get(kw_endpoint *ep, kw_endpoint_stats *out) {
  if (!ep || !out)
    return;
  memset(out, 0, sizeof *out);
  kw__quic_stats(ep, out);
  kw__disco_stats(ep, out);
  kw__stun_stats(ep, out);
  kw__magicsock_stats(ep, out);
}
