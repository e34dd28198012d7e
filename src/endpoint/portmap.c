/* SPDX-License-Identifier: MIT */
/*
 * Port mapping: asks the default gateway to forward a port of its external
 * address to our IPv4 UDP socket (UPnP IGD through libminiupnpc, else
 * NAT-PMP through libnatpmp), renews the lease at half its length, and
 * deletes the mapping when the endpoint closes. The mapped external
 * address is one more hole-punching candidate: a peer behind a NAT that
 * changes ports per destination can still reach us there.
 *
 * Off unless kw_config_set_port_mapping(cfg, true): mapping sends SSDP
 * multicast and requests to the gateway, which keyway never does unasked.
 *
 * Threads: libminiupnpc and libnatpmp block (SSDP waits, HTTP, UDP
 * retries), so they run on one worker thread per endpoint. The loop posts
 * one request at a time (map / quit) under the job's mutex; the worker
 * answers through a uv_async. The worker is detached and shares only the
 * refcounted job with the loop, so closing the endpoint waits for the
 * release at most KW_PM_RELEASE_WAIT_MS and then leaves the worker to
 * finish (or be killed with the process) on its own. libuv's thread pool
 * is not used: a queued work request keeps the loop alive until it ends,
 * so a gateway that stalls an HTTP call would hold kw_endpoint_close for
 * miniupnpc's socket timeouts, and the pool's 4 threads also resolve the
 * relays' names. See docs/protocol/portmap.md.
 */
#include "endpoint/changes.h"
#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/magicsock.h"
#include "core/sockaddr.h"
#include "endpoint/pcp_client.h"
#include "endpoint/portmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <sodium.h>

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <natpmp.h>

#define KW_PM_LEASE_S 7200u /* requested lease, both protocols */
#define KW_PM_PERMANENT_CHECK_S                                                \
  1200u                             /* re-add a permanent mapping this often */
#define KW_PM_MIN_RENEW_S 30u       /* never renew more often */
#define KW_PM_SSDP_MS 1000          /* SSDP discovery wait (MX 1) */
#define KW_PM_NATPMP_MS 1250        /* NAT-PMP: one request's budget */
#define KW_PM_RETRY_MS 15000u       /* first retry after a failure ... */
#define KW_PM_RETRY_MAX_MS 600000u  /* ... doubling up to 10 min */
#define KW_PM_RELEASE_WAIT_MS 1500u /* close waits this long at most */
#define KW_PM_DESC "keyway"

enum { PM_PROTO_NONE, PM_PROTO_UPNP, PM_PROTO_NATPMP, PM_PROTO_PCP };
typedef enum pm_op { PM_OP_NONE, PM_OP_MAP, PM_OP_QUIT } pm_op;

static const char *proto_name(int p) {
  return p == PM_PROTO_UPNP     ? "upnp"
         : p == PM_PROTO_NATPMP ? "natpmp"
         : p == PM_PROTO_PCP    ? "pcp"
                                : "-";
}

/* What one map request found. */
typedef struct pm_result {
  bool probed; /* upnp/natpmp below are fresh */
  bool upnp, natpmp;
  int proto; /* PM_PROTO_NONE: no mapping */
  kw_sockaddr ext;
  uint32_t lease_s; /* granted; 0: permanent */
  char reason[96];  /* why there is no mapping */
  bool deferred;    /* PCP holds a mapping: the worker only probed */
} pm_result;

/* Shared by the loop and the worker thread; freed by the last of them. */
typedef struct pm_job {
  uv_mutex_t mu;
  uv_cond_t cv;
  int refs;
  pm_op op;         /* the next request; the worker takes it */
  bool rediscover;  /* forget the gateway first (network changed) */
  bool have_result; /* res holds an answer the loop has not taken */
  pm_result res;
  bool done;     /* the worker released the mapping and quit */
  bool pcp_held; /* the loop holds a PCP mapping: probe, do not map */
  char release_note[96];
  uv_async_t *notify; /* NULL once the loop stopped listening */
  /* set before the thread starts, read-only afterwards */
  uint16_t local_port;
  char bind_ip[INET_ADDRSTRLEN]; /* "" when bound to 0.0.0.0 */
  /* the worker's own */
  struct UPNPUrls urls;
  struct IGDdatas igd;
  bool have_igd;
  char lanaddr[64];
  bool natpmp_seen;
  bool probed_once;
  int proto; /* the mapping held */
  uint16_t ext_port;
} pm_job;

struct kw__portmap {
  kw_endpoint *ep;
  pm_job *job;
  uv_async_t async;
  uv_timer_t timer;
  int open_handles;
  bool busy;         /* a map request is with the worker */
  bool again;        /* map again when it answers (network changed) */
  bool probed;       /* the first probe answered */
  bool upnp, natpmp; /* what it found */
  int proto;         /* mapping held; ext lives in ext (under ep->mu) */
  kw_sockaddr ext;   /* under ep->mu: read by kw_endpoint_get_addr */
  uint32_t lease_s;
  uint64_t expires_ns; /* the lease's end (0: permanent or none) */
  unsigned failures;
  bool stopping;
  bool finished; /* handles closing */
  kw__pcp *pcp;  /* PCP, on the loop (pcp_client.c) */
};

/* ---- the worker thread ------------------------------------------------- */

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void job_unref(pm_job *j) {
  uv_mutex_lock(&j->mu);
  bool last = --j->refs == 0;
  uv_mutex_unlock(&j->mu);
  if (!last)
    return;
  if (j->have_igd)
    FreeUPNPUrls(&j->urls);
  uv_cond_destroy(&j->cv);
  uv_mutex_destroy(&j->mu);
  free(j);
}

/* A write to a gateway that reset its TCP connection raises SIGPIPE on
 * this thread (where every signal is blocked): discard it. */
static void drain_sigpipe(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  struct timespec zero = {0, 0};
  while (sigtimedwait(&s, NULL, &zero) > 0) {
  }
}

/* Waits for the answer to the pending NAT-PMP request, letting libnatpmp
 * resend on its schedule, for at most budget_ms. 0 or a NATPMP_ERR_*. */
static int natpmp_wait(natpmp_t *np, natpmpresp_t *resp, unsigned budget_ms) {
  uint64_t deadline = mono_ms() + budget_ms;
  for (;;) {
    int r = readnatpmpresponseorretry(np, resp);
    if (r != NATPMP_TRYAGAIN)
      return r;
    uint64_t now = mono_ms();
    if (now >= deadline)
      return NATPMP_TRYAGAIN;
    struct timeval tv;
    long wait_ms = (long)(deadline - now);
    if (getnatpmprequesttimeout(np, &tv) == 0) {
      long t = (long)tv.tv_sec * 1000 + (long)tv.tv_usec / 1000;
      if (t < 0)
        t = 0;
      if (t < wait_ms)
        wait_ms = t + 1;
    }
    struct pollfd p = {.fd = np->s, .events = POLLIN};
    (void)poll(&p, 1, (int)wait_ms);
  }
}

static void forget_igd(pm_job *j) {
  if (j->have_igd)
    FreeUPNPUrls(&j->urls);
  memset(&j->urls, 0, sizeof j->urls);
  j->have_igd = false;
}

/* SSDP search for an Internet Gateway Device, then its description. */
static void upnp_discover(pm_job *j) {
  static const char *const types[] = {
      "urn:schemas-upnp-org:device:InternetGatewayDevice:1", NULL};
  int err = 0;
  /* "" : never ask a minissdpd daemon; search the LAN ourselves */
  struct UPNPDev *devs = upnpDiscoverDevices(
      types, KW_PM_SSDP_MS, j->bind_ip[0] ? j->bind_ip : NULL, "",
      UPNP_LOCAL_PORT_ANY, 0, 2, &err, 0);
  if (!devs)
    return;
  char lan[64] = "";
#if MINIUPNPC_API_VERSION >= 18
  /* miniupnpc 2.2.8 (API 18) also returns the WAN address, and 2 now means
   * "connected, but the WAN address is reserved" (a NAT behind a NAT, the
   * NAT lab's 198.18.0.0/15): the mapping still holds for the first hop */
  char wan[64] = "";
  int r = UPNP_GetValidIGD(devs, &j->urls, &j->igd, lan, sizeof lan, wan,
                           sizeof wan);
  bool usable = r == 1 || r == 2 || r == 3;
#else
  int r = UPNP_GetValidIGD(devs, &j->urls, &j->igd, lan, sizeof lan);
  bool usable = r == 1 || r == 2;
#endif
  freeUPNPDevlist(devs);
  if (usable) {
    /* link down (3 from API 18, 2 before): some IGDs say so wrongly, and
     * the AddPortMapping answer will tell */
    j->have_igd = true;
    snprintf(j->lanaddr, sizeof j->lanaddr, "%s",
             j->bind_ip[0] ? j->bind_ip : lan);
  } else if (r != 0) {
    FreeUPNPUrls(&j->urls);
    memset(&j->urls, 0, sizeof j->urls);
  }
}

static bool parse_ip4(const char *s, kw_sockaddr *out) {
  struct in_addr a;
  if (!s || inet_pton(AF_INET, s, &a) != 1 || a.s_addr == 0)
    return false;
  memset(out, 0, sizeof *out);
  out->family = 4;
  memcpy(out->ip, &a, 4);
  return true;
}

static bool upnp_map(pm_job *j, pm_result *res) {
  const char *ctl = j->urls.controlURL, *st = j->igd.first.servicetype;
  char in_port[8], ext_port[8], lease[16];
  snprintf(in_port, sizeof in_port, "%u", j->local_port);
  snprintf(lease, sizeof lease, "%u", KW_PM_LEASE_S);
  /* the port we hold, else the same as ours, else a few others */
  uint16_t want =
      j->proto == PM_PROTO_UPNP && j->ext_port ? j->ext_port : j->local_port;
  int r = -1;
  for (int attempt = 0; attempt < 4; attempt++) {
    snprintf(ext_port, sizeof ext_port, "%u", want);
    r = UPNP_AddPortMapping(ctl, st, ext_port, in_port, j->lanaddr, KW_PM_DESC,
                            "UDP", NULL, lease);
    if (r == 725) { /* OnlyPermanentLeasesSupported */
      snprintf(lease, sizeof lease, "0");
      r = UPNP_AddPortMapping(ctl, st, ext_port, in_port, j->lanaddr,
                              KW_PM_DESC, "UDP", NULL, lease);
    }
    if (r != 718) /* ConflictInMappingEntry: someone else has that port */
      break;
    want = (uint16_t)(20000u + randombytes_uniform(40000u));
  }
  if (r != UPNPCOMMAND_SUCCESS) {
    snprintf(res->reason, sizeof res->reason, "upnp-add-error-%d", r);
    return false;
  }
  char ip[40] = "";
  if (UPNP_GetExternalIPAddress(ctl, st, ip) != UPNPCOMMAND_SUCCESS ||
      !parse_ip4(ip, &res->ext)) {
    UPNP_DeletePortMapping(ctl, st, ext_port, "UDP", NULL);
    snprintf(res->reason, sizeof res->reason, "upnp-no-external-ip");
    return false;
  }
  res->ext.port = want;
  res->lease_s = (uint32_t)strtoul(lease, NULL, 10);
  /* the lease the IGD actually granted, if it says */
  char c[40], p[8], d[80], en[8], dur[16] = "";
  if (res->lease_s &&
      UPNP_GetSpecificPortMappingEntry(ctl, st, ext_port, "UDP", NULL, c, p, d,
                                       en, dur) == UPNPCOMMAND_SUCCESS) {
    unsigned long g = strtoul(dur, NULL, 10);
    if (g > 0 && g < res->lease_s)
      res->lease_s = (uint32_t)g;
  }
  res->proto = PM_PROTO_UPNP;
  j->proto = PM_PROTO_UPNP;
  j->ext_port = want;
  return true;
}

static bool natpmp_map(pm_job *j, pm_result *res) {
  natpmp_t np;
  natpmpresp_t resp;
  if (initnatpmp(&np, 0, 0) != 0) {
    snprintf(res->reason, sizeof res->reason, "natpmp-no-gateway");
    return false;
  }
  int r = sendpublicaddressrequest(&np);
  if (r >= 0)
    r = natpmp_wait(&np, &resp, KW_PM_NATPMP_MS);
  if (r != 0 || resp.type != NATPMP_RESPTYPE_PUBLICADDRESS) {
    closenatpmp(&np);
    snprintf(res->reason, sizeof res->reason, "natpmp-address-error-%d", r);
    return false;
  }
  kw_sockaddr ext = {.family = 4};
  memcpy(ext.ip, &resp.pnu.publicaddress.addr, 4);
  uint16_t want =
      j->proto == PM_PROTO_NATPMP && j->ext_port ? j->ext_port : j->local_port;
  r = sendnewportmappingrequest(&np, NATPMP_PROTOCOL_UDP, j->local_port, want,
                                KW_PM_LEASE_S);
  if (r >= 0)
    r = natpmp_wait(&np, &resp, KW_PM_NATPMP_MS);
  closenatpmp(&np);
  if (r != 0 || resp.type != NATPMP_RESPTYPE_UDPPORTMAPPING ||
      resp.pnu.newportmapping.mappedpublicport == 0 ||
      resp.pnu.newportmapping.lifetime == 0) {
    snprintf(res->reason, sizeof res->reason, "natpmp-map-error-%d", r);
    return false;
  }
  ext.port = resp.pnu.newportmapping.mappedpublicport;
  if (ext.ip[0] == 0 && ext.ip[1] == 0 && ext.ip[2] == 0 && ext.ip[3] == 0) {
    snprintf(res->reason, sizeof res->reason, "natpmp-no-external-ip");
    return false;
  }
  res->ext = ext;
  res->lease_s = resp.pnu.newportmapping.lifetime;
  res->proto = PM_PROTO_NATPMP;
  j->proto = PM_PROTO_NATPMP;
  j->ext_port = ext.port;
  return true;
}

static void do_map(pm_job *j, bool rediscover, pm_result *res) {
  if (rediscover) {
    forget_igd(j);
    j->probed_once = false;
    j->proto = PM_PROTO_NONE; /* that gateway and its mapping are gone */
    j->ext_port = 0;
  }
  /* probe both services while nothing is held: NAT-PMP's public-address
   * request goes out first and its answer waits in the socket during the
   * SSDP search */
  bool probe = !j->probed_once || j->proto == PM_PROTO_NONE;
  natpmp_t np;
  bool np_open = false;
  if (probe && initnatpmp(&np, 0, 0) == 0) {
    np_open = true;
    if (sendpublicaddressrequest(&np) < 0) {
      closenatpmp(&np);
      np_open = false;
    }
  }
  if (!j->have_igd && (probe || j->proto == PM_PROTO_UPNP))
    upnp_discover(j);
  if (probe) {
    bool pub = false;
    if (np_open) {
      natpmpresp_t resp;
      pub = natpmp_wait(&np, &resp, KW_PM_NATPMP_MS) == 0 &&
            resp.type == NATPMP_RESPTYPE_PUBLICADDRESS;
      closenatpmp(&np);
    }
    j->natpmp_seen = pub;
    j->probed_once = true;
    res->probed = true;
  }
  res->upnp = j->have_igd;
  res->natpmp = j->natpmp_seen;
  uv_mutex_lock(&j->mu);
  res->deferred = j->pcp_held && j->proto == PM_PROTO_NONE;
  uv_mutex_unlock(&j->mu);
  if (res->deferred)
    return;
  /* UPnP first (it names the lease and the mapping); NAT-PMP otherwise */
  char why[96] = "no-upnp-igd-no-natpmp";
  if (j->have_igd && j->proto != PM_PROTO_NATPMP) {
    if (upnp_map(j, res))
      return;
    snprintf(why, sizeof why, "%s", res->reason);
    /* the IGD may have gone: search again next time */
    forget_igd(j);
    if (j->proto == PM_PROTO_UPNP)
      j->proto = PM_PROTO_NONE;
  }
  if (j->natpmp_seen || j->proto == PM_PROTO_NATPMP) {
    if (natpmp_map(j, res))
      return;
    if (j->proto == PM_PROTO_NATPMP)
      j->proto = PM_PROTO_NONE;
    if (strcmp(why, "no-upnp-igd-no-natpmp") != 0) {
      char both[96];
      snprintf(both, sizeof both, "%.44s,%.44s", why, res->reason);
      snprintf(why, sizeof why, "%s", both);
    } else {
      snprintf(why, sizeof why, "%s", res->reason);
    }
  }
  res->proto = PM_PROTO_NONE;
  snprintf(res->reason, sizeof res->reason, "%s", why);
}

/* Deletes the mapping held (best effort); a note for the log. */
static void do_release(pm_job *j, char *note, size_t notelen) {
  char port[8];
  snprintf(port, sizeof port, "%u", j->ext_port);
  if (j->proto == PM_PROTO_UPNP && j->have_igd) {
    int r = UPNP_DeletePortMapping(j->urls.controlURL, j->igd.first.servicetype,
                                   port, "UDP", NULL);
    snprintf(note, notelen, "proto=upnp port=%s result=%d", port, r);
  } else if (j->proto == PM_PROTO_NATPMP) {
    natpmp_t np;
    natpmpresp_t resp;
    int r = initnatpmp(&np, 0, 0);
    if (r == 0) {
      /* lifetime 0 and external port 0 delete it (RFC 6886 3.4) */
      r = sendnewportmappingrequest(&np, NATPMP_PROTOCOL_UDP, j->local_port, 0,
                                    0);
      if (r >= 0)
        r = natpmp_wait(&np, &resp, 1000);
      closenatpmp(&np);
    }
    snprintf(note, notelen, "proto=natpmp port=%s result=%d", port, r);
  } else {
    note[0] = 0;
  }
  j->proto = PM_PROTO_NONE;
}

static void worker_main(void *arg) {
  pm_job *j = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  for (;;) {
    uv_mutex_lock(&j->mu);
    while (j->op == PM_OP_NONE)
      uv_cond_wait(&j->cv, &j->mu);
    pm_op op = j->op;
    bool rediscover = j->rediscover;
    j->op = PM_OP_NONE;
    j->rediscover = false;
    uv_mutex_unlock(&j->mu);
    if (op == PM_OP_QUIT)
      break;
    pm_result res;
    memset(&res, 0, sizeof res);
    do_map(j, rediscover, &res);
    drain_sigpipe();
    uv_mutex_lock(&j->mu);
    j->res = res;
    j->have_result = true;
    if (j->notify)
      uv_async_send(j->notify);
    uv_mutex_unlock(&j->mu);
  }
  char note[96];
  do_release(j, note, sizeof note);
  drain_sigpipe();
  uv_mutex_lock(&j->mu);
  snprintf(j->release_note, sizeof j->release_note, "%s", note);
  j->done = true;
  if (j->notify)
    uv_async_send(j->notify);
  uv_mutex_unlock(&j->mu);
  job_unref(j);
}

/* ---- the loop side ------------------------------------------------------ */

static void submit(struct kw__portmap *pm, pm_op op, bool rediscover) {
  pm_job *j = pm->job;
  uv_mutex_lock(&j->mu);
  j->op = op;
  if (rediscover)
    j->rediscover = true;
  uv_cond_signal(&j->cv);
  uv_mutex_unlock(&j->mu);
  if (op == PM_OP_MAP)
    pm->busy = true;
}

static void handle_closed(uv_handle_t *h) {
  struct kw__portmap *pm = h->data;
  pm->open_handles--;
}

static void set_external(struct kw__portmap *pm, int proto,
                         const kw_sockaddr *ext) {
  kw_endpoint *ep = pm->ep;
  kw__ep_lock(ep);
  if (ext)
    pm->ext = *ext;
  else
    memset(&pm->ext, 0, sizeof pm->ext);
  kw__ep_unlock(ep);
  pm->proto = proto;
}

/* Stops listening to the worker and closes our handles; the worker keeps
 * its own reference to the job. */
static void finish(struct kw__portmap *pm) {
  if (pm->finished)
    return;
  pm->finished = true;
  uv_mutex_lock(&pm->job->mu);
  pm->job->notify = NULL;
  uv_mutex_unlock(&pm->job->mu);
  uv_timer_stop(&pm->timer);
  uv_close((uv_handle_t *)&pm->async, handle_closed);
  uv_close((uv_handle_t *)&pm->timer, handle_closed);
}

static void timer_cb(uv_timer_t *t);

static void arm(struct kw__portmap *pm, uint64_t ms) {
  uv_timer_start(&pm->timer, timer_cb, ms, 0);
}

static uint64_t backoff_ms(struct kw__portmap *pm) {
  uint64_t ms = KW_PM_RETRY_MS;
  for (unsigned i = 1; i < pm->failures && ms < KW_PM_RETRY_MAX_MS; i++)
    ms *= 2;
  return ms < KW_PM_RETRY_MAX_MS ? ms : KW_PM_RETRY_MAX_MS;
}

static bool pcp_held(struct kw__portmap *pm) {
  uv_mutex_lock(&pm->job->mu);
  bool h = pm->job->pcp_held;
  uv_mutex_unlock(&pm->job->mu);
  return h;
}

static void set_pcp_held(struct kw__portmap *pm, bool held) {
  uv_mutex_lock(&pm->job->mu);
  pm->job->pcp_held = held;
  uv_mutex_unlock(&pm->job->mu);
}

static void apply(struct kw__portmap *pm, const pm_result *res) {
  kw_endpoint *ep = pm->ep;
  if (res->probed) {
    pm->probed = true;
    pm->upnp = res->upnp;
    pm->natpmp = res->natpmp;
  }
  /* while PCP holds the mapping the worker only probes (pcp_answer) */
  if (res->deferred || (res->proto == PM_PROTO_NONE && pcp_held(pm)))
    return;
  if (res->proto != PM_PROTO_PCP && res->proto != PM_PROTO_NONE &&
      pm->proto == PM_PROTO_PCP) {
    /* the worker mapped before PCP's answer held it back: keep one */
    set_pcp_held(pm, false);
    kw__pcp_delete(pm->pcp);
  }
  char ext[KW_SOCKADDR_STRLEN];
  if (res->proto != PM_PROTO_NONE) {
    kw_sockaddr old;
    kw__ep_lock(ep);
    old = pm->ext;
    kw__ep_unlock(ep);
    bool changed =
        pm->proto != res->proto || !kw__sockaddr_equal(&old, &res->ext);
    set_external(pm, res->proto, &res->ext);
    pm->lease_s = res->lease_s;
    pm->expires_ns =
        res->lease_s ? kw__now(ep) + (uint64_t)res->lease_s * 1000000000u : 0;
    pm->failures = 0;
    kw_sockaddr_format(&res->ext, ext, sizeof ext);
    if (changed) {
      kw__log(ep, KW_LOG_INFO, "portmap",
              "portmap.mapped proto=%s external=%s lease_s=%u",
              proto_name(res->proto), ext, res->lease_s);
      kw__endpoint_changed(ep, KW__CHANGE_LOCAL_CANDIDATES, "portmap");
    } else {
      kw__log(ep, KW_LOG_DEBUG, "portmap",
              "portmap.renewed proto=%s external=%s lease_s=%u",
              proto_name(res->proto), ext, res->lease_s);
    }
    uint64_t s = res->lease_s ? res->lease_s / 2 : KW_PM_PERMANENT_CHECK_S;
    if (s < KW_PM_MIN_RENEW_S)
      s = KW_PM_MIN_RENEW_S;
    arm(pm, s * 1000u);
    return;
  }
  pm->failures++;
  uint64_t retry = backoff_ms(pm);
  kw__log(ep, KW_LOG_INFO, "portmap",
          "portmap.failed reason=%s upnp=%d natpmp=%d retry_ms=%llu",
          res->reason, pm->upnp, pm->natpmp, (unsigned long long)retry);
  if (pm->proto != PM_PROTO_NONE) {
    /* keep the address while its lease lasts: the gateway may be busy */
    uint64_t now = kw__now(ep);
    if (pm->expires_ns && now >= pm->expires_ns) {
      set_external(pm, PM_PROTO_NONE, NULL);
      kw__log(ep, KW_LOG_INFO, "portmap", "portmap.expired");
    } else if (pm->expires_ns &&
               retry > (pm->expires_ns - now) / 1000000u + 1) {
      retry = (pm->expires_ns - now) / 1000000u + 1;
    }
  }
  arm(pm, retry);
}

/* One round of the methods: PCP from the loop while no UPnP/NAT-PMP
 * mapping is held, and the worker (UPnP, then NAT-PMP) unless PCP holds
 * one. Both run at once: a gateway without PCP costs the worker nothing. */
static void map_round(struct kw__portmap *pm, bool rediscover) {
  if (pm->pcp && !kw__pcp_busy(pm->pcp) &&
      (pm->proto == PM_PROTO_NONE || pm->proto == PM_PROTO_PCP))
    (void)kw__pcp_map(pm->pcp, KW_PM_LEASE_S);
  if (!pm->busy && !pcp_held(pm))
    submit(pm, PM_OP_MAP, rediscover);
}

/* The PCP client's answer (pcp_client.c). A grant is the mapping, unless
 * the worker got one first; when a held PCP mapping is lost (its renewal
 * failed) the worker's methods get their turn at once. */
static void pcp_answer(void *arg, const kw__pcp_answer *a) {
  struct kw__portmap *pm = arg;
  if (pm->stopping)
    return;
  if (a->epoch_reset)
    kw__log(pm->ep, KW_LOG_INFO, "portmap", "pcp.epoch-reset");
  if (a->outcome == KW__PCP_GRANTED) {
    if (pm->proto == PM_PROTO_UPNP || pm->proto == PM_PROTO_NATPMP) {
      kw__pcp_delete(pm->pcp);
      return;
    }
    set_pcp_held(pm, true);
    pm_result res;
    memset(&res, 0, sizeof res);
    res.proto = PM_PROTO_PCP;
    res.ext = a->external;
    res.lease_s = a->lifetime_s;
    apply(pm, &res);
    return;
  }
  kw__log(pm->ep, KW_LOG_INFO, "portmap",
          "pcp.failed reason=%s answered=%d result=%d tries=%u", a->reason,
          a->answered, a->result, a->tries);
  bool held = pcp_held(pm);
  set_pcp_held(pm, false);
  if (held && !pm->busy) {
    uv_timer_stop(&pm->timer);
    submit(pm, PM_OP_MAP, false);
  }
}

static void async_cb(uv_async_t *a) {
  struct kw__portmap *pm = a->data;
  pm_job *j = pm->job;
  uv_mutex_lock(&j->mu);
  bool have = j->have_result, done = j->done;
  pm_result res = j->res;
  char note[96];
  snprintf(note, sizeof note, "%s", j->release_note);
  j->have_result = false;
  uv_mutex_unlock(&j->mu);
  if (pm->finished)
    return;
  if (pm->stopping) {
    if (done) {
      if (note[0])
        kw__log(pm->ep, KW_LOG_INFO, "portmap", "portmap.released %s", note);
      finish(pm);
    }
    return;
  }
  if (!have)
    return;
  pm->busy = false;
  apply(pm, &res);
  if (pm->again) {
    pm->again = false;
    uv_timer_stop(&pm->timer);
    map_round(pm, true);
  }
}

static void timer_cb(uv_timer_t *t) {
  struct kw__portmap *pm = t->data;
  if (pm->stopping) {
    /* the release did not finish in time: leave it to the worker */
    kw__log(pm->ep, KW_LOG_INFO, "portmap",
            "portmap.failed reason=release-timeout");
    finish(pm);
    return;
  }
  map_round(pm, false);
}

kw_err kw__portmap_new(kw_endpoint *ep, struct kw__portmap **out) {
  *out = NULL;
  if (!kw__ep_cfg(ep)->port_mapping || !kw__magicsock_bound(ep, 4, NULL))
    return KW_OK;
  struct kw__portmap *pm = calloc(1, sizeof *pm);
  pm_job *j = calloc(1, sizeof *j);
  if (!pm || !j) {
    free(pm);
    free(j);
    return KW_ERR_NOMEM;
  }
  if (uv_mutex_init(&j->mu) != 0) {
    free(pm);
    free(j);
    return KW_ERR_NOMEM;
  }
  if (uv_cond_init(&j->cv) != 0) {
    uv_mutex_destroy(&j->mu);
    free(pm);
    free(j);
    return KW_ERR_NOMEM;
  }
  j->refs = 1; /* ours; the worker's is added when it starts */
  kw_sockaddr b4;
  memset(&b4, 0, sizeof b4);
  (void)kw__magicsock_bound(ep, 4, &b4);
  j->local_port = b4.port;
  static const uint8_t any[4] = {0};
  if (memcmp(b4.ip, any, 4) != 0)
    inet_ntop(AF_INET, b4.ip, j->bind_ip, sizeof j->bind_ip);
  pm->ep = ep;
  pm->job = j;
  uv_async_init(kw__ep_loop(ep), &pm->async, async_cb);
  uv_timer_init(kw__ep_loop(ep), &pm->timer);
  pm->async.data = pm;
  pm->timer.data = pm;
  pm->open_handles = 2;
  j->notify = &pm->async;
  *out = pm;
  j->refs++;
  j->op = PM_OP_MAP;
  pm->busy = true;
  uv_thread_t th;
  if (uv_thread_create(&th, worker_main, j) != 0) {
    j->refs--;
    pm->busy = false;
    kw__log(ep, KW_LOG_WARN, "portmap", "portmap.failed reason=no-thread");
    pm->stopping = true;
    pm->probed = true;
    finish(pm);
    return KW_OK; /* the endpoint works without it */
  }
  pthread_detach(th);
  kw__log(ep, KW_LOG_DEBUG, "portmap", "portmap.start port=%u", j->local_port);
  pm->pcp = kw__pcp_new(ep, j->local_port, b4.ip, pcp_answer, pm);
  if (pm->pcp)
    (void)kw__pcp_map(pm->pcp, KW_PM_LEASE_S); /* beside the worker's */
  return KW_OK;
}

void kw__portmap_stop(kw_endpoint *ep) {
  struct kw__portmap *pm = kw__ep_portmap(ep);
  if (!pm || pm->stopping)
    return;
  pm->stopping = true;
  uv_timer_stop(&pm->timer);
  kw__pcp_close(pm->pcp, KW_PM_RELEASE_WAIT_MS - 100); /* deletes its own */
  if (pm->finished)
    return;
  pm_job *j = pm->job;
  uv_mutex_lock(&j->mu);
  bool done = j->done;
  j->op = PM_OP_QUIT; /* replaces a map request not yet taken */
  uv_cond_signal(&j->cv);
  uv_mutex_unlock(&j->mu);
  set_external(pm, PM_PROTO_NONE, NULL);
  if (done) {
    finish(pm);
    return;
  }
  /* wait (without blocking the loop) for the release, bounded */
  arm(pm, KW_PM_RELEASE_WAIT_MS);
}

void kw__portmap_free(struct kw__portmap *pm) {
  if (!pm)
    return;
  kw__pcp_free(pm->pcp);
  job_unref(pm->job);
  free(pm);
}

bool kw__portmap_on(const kw_endpoint *ep) {
  return kw__ep_portmap(ep) != NULL;
}

bool kw__portmap_external(kw_endpoint *ep, kw_sockaddr *out) {
  struct kw__portmap *pm = kw__ep_portmap(ep);
  if (!pm)
    return false;
  kw__ep_lock(ep);
  *out = pm->ext;
  kw__ep_unlock(ep);
  return out->family != 0;
}

void kw__portmap_network_changed(kw_endpoint *ep) {
  struct kw__portmap *pm = kw__ep_portmap(ep);
  if (!pm || pm->stopping)
    return;
  if (pm->pcp) {
    kw__pcp_reset(pm->pcp);
    set_pcp_held(pm, false);
  }
  if (pm->busy) {
    pm->again = true;
    map_round(pm, true); /* PCP now; the worker when it answers */
    return;
  }
  uv_timer_stop(&pm->timer);
  pm->failures = 0;
  map_round(pm, true);
}

bool kw__portmap_probe_state(kw_endpoint *ep, bool *upnp, bool *natpmp) {
  struct kw__portmap *pm = kw__ep_portmap(ep);
  *upnp = *natpmp = false;
  if (!kw__ep_cfg(ep)->port_mapping || !pm)
    return true;
  if (!pm->probed)
    return false;
  *upnp = pm->upnp;
  *natpmp = pm->natpmp;
  return true;
}

bool kw__portmap_pcp_state(kw_endpoint *ep, bool *answered, int *result,
                           kw_sockaddr *external) {
  struct kw__portmap *pm = kw__ep_portmap(ep);
  *answered = false;
  *result = -1;
  memset(external, 0, sizeof *external);
  if (!kw__ep_cfg(ep)->port_mapping || !pm || !pm->pcp)
    return true;
  bool done = kw__pcp_probe_state(pm->pcp, answered, result, external);
  if (pm->proto != PM_PROTO_PCP)
    memset(external, 0, sizeof *external); /* not the candidate */
  return done;
}
