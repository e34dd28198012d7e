/* SPDX-License-Identifier: MIT */
/*
 * The lookup store client (docs/protocol/relay.md, "Lookup store";
 * docs/ARCHITECTURE.md section 4): publishes this endpoint's signed record
 * to its home relay and resolves other ids there.
 *
 * The record is published when a home relay is chosen, again every 10
 * minutes, and at once whenever the connection to the home relay comes back
 * (a restarted relay's store starts empty).
 *
 * With each record goes a BEP 44 item for the Mainline DHT (PUT
 * /pkarr/<id>, docs/protocol/dht.md), unless kw_config_set_dht_publish
 * says KW_DHT_PUBLISH_NONE: a record of its own, naming only the home
 * relay by default. A relay not on the DHT answers 404; nothing retries.
 *
 * Each request is a one-shot HTTPS exchange (net/http_exchange.h) on its
 * own TLS connection to the relay (the relay connection itself carries
 * only frames after its upgrade). Records are verified here too: a relay
 * cannot forge one.
 */
#include "endpoint/lookup_client.h"

#include "endpoint/relay_client.h"
#include <uv.h>

#include "endpoint/endpoint.h"
#include "endpoint/config.h"
#include "endpoint/magicsock.h"
#include "net/clock.h"

#include <stdlib.h>
#include <string.h>

#include "core/http.h"
#include "core/pkarr.h"
#include "core/record.h"
#include "net/http_exchange.h"

#define KW_RECORD_TTL_S 3600
#define KW_REPUBLISH_MS (10 * 60 * 1000)
#define KW_REPUBLISH_RETRY_MS 2000 /* after a failed publish, doubling */
#define KW_LOOKUP_WAIT_STEP_MS 50

/* Sends METHOD path (with an optional body) to relay `relay`: one
 * kw__http_exchange on its own TLS connection. */
static kw_err https_request(kw_endpoint *ep, int relay, const char *method,
                            const char *path, const uint8_t *body,
                            size_t bodylen, kw__http_exchange_cb cb,
                            void *arg) {
  kw_sockaddr to;
  const char *host;
  if (!kw__relay_tls_target(ep, relay, &to, &host))
    return KW_ERR_NO_PATH;
  const char *ca =
      kw__ep_cfg(ep)->relay_ca[0] ? kw__ep_cfg(ep)->relay_ca : NULL;
  return kw__http_exchange(kw__ep_loop(ep), &to, host, ca, method, path, body,
                           bodylen, KW_HTTP_MAX_HEADER + KW_RECORD_MAX_LEN + 64,
                           cb, arg);
}

/* ---- publishing
 * --------------------------------------------------------------- */

/* The publisher's state (kw__ep_publisher). */
struct kw__publisher {
  kw_endpoint *ep;
  uv_timer_t timer; /* republishes our record */
  bool timer_init;
  unsigned failures; /* in a row: the retry backs off */
};

kw_err kw__publisher_new(kw_endpoint *ep, struct kw__publisher **out) {
  struct kw__publisher *p = calloc(1, sizeof *p);
  if (!p)
    return KW_ERR_NOMEM;
  p->ep = ep;
  *out = p;
  return KW_OK;
}

void kw__publisher_free(struct kw__publisher *p) {
  free(p);
}

static void republish_cb(uv_timer_t *t);

/* A failed publish is tried again KW_REPUBLISH_RETRY_MS later, doubling up
 * to the regular interval: a record must not stay unknown for 10 minutes
 * because one PUT met a relay still starting. */
static void publish_retry(kw_endpoint *ep) {
  struct kw__publisher *p = kw__ep_publisher(ep);
  if (kw__ep_closing(ep) || !p->timer_init)
    return;
  uint64_t d = KW_REPUBLISH_RETRY_MS;
  for (unsigned i = 0; i < p->failures && d < KW_REPUBLISH_MS; i++)
    d *= 2;
  if (d > KW_REPUBLISH_MS)
    d = KW_REPUBLISH_MS;
  if (p->failures < 32)
    p->failures++;
  uv_timer_start(&p->timer, republish_cb, d, KW_REPUBLISH_MS);
}

static void published(kw_err err, int status, const uint8_t *body, size_t len,
                      void *arg) {
  kw_endpoint *ep = arg;
  (void)body;
  (void)len;
  if (err == KW_OK && status >= 200 && status < 300) {
    kw__ep_publisher(ep)->failures = 0;
    kw__log(ep, KW_LOG_INFO, "lookup", "lookup.published status=%d", status);
  } else {
    kw__log(ep, KW_LOG_WARN, "lookup", "lookup.publish_failed err=%s status=%d",
            kw_errname(err), status);
    publish_retry(ep);
  }
}

static void dht_published(kw_err err, int status, const uint8_t *body,
                          size_t len, void *arg) {
  kw_endpoint *ep = arg;
  (void)body;
  (void)len;
  if (err == KW_OK && status == 204)
    kw__log(ep, KW_LOG_INFO, "lookup", "lookup.dht_published");
  else if (err == KW_OK && status == 404)
    kw__log(ep, KW_LOG_DEBUG, "lookup", "lookup.dht_unavailable");
  else
    kw__log(ep, KW_LOG_WARN, "lookup",
            "lookup.dht_publish_failed err=%s status=%d", kw_errname(err),
            status);
}

/* The DHT copy of the record: the home relay only unless the application
 * allows the addresses; addresses dropped from the end until the pkarr
 * packet fits its 1000 bytes. */
static void publish_dht(kw_endpoint *ep, int home, const kw__record *full) {
  if (kw__ep_cfg(ep)->dht_publish == KW_DHT_PUBLISH_NONE)
    return;
  kw__record rec = *full;
  if (kw__ep_cfg(ep)->dht_publish != KW_DHT_PUBLISH_ADDRS)
    rec.addr.n_addrs = 0;
  uint8_t buf[KW_RECORD_MAX_LEN], body[KW_PKARR_MAX_BODY];
  size_t n, bl;
  for (;;) {
    if (kw__record_encode(&rec, kw__ep_cfg(ep)->sk, buf, sizeof buf, &n) !=
        KW_OK)
      return;
    kw_err e =
        kw__pkarr_body(buf, n, kw__ep_cfg(ep)->sk, body, sizeof body, &bl);
    if (e == KW_OK)
      break;
    if (e != KW_ERR_BUFFER || rec.addr.n_addrs == 0)
      return;
    rec.addr.n_addrs--;
  }
  char path[16 + KW_ID_STRLEN];
  char idt[KW_ID_STRLEN + 1];
  kw_id_to_string(kw__ep_id(ep), idt, sizeof idt);
  snprintf(path, sizeof path, "/pkarr/%s", idt);
  if (https_request(ep, home, "PUT", path, body, bl, dht_published, ep) !=
      KW_OK)
    kw__log(ep, KW_LOG_WARN, "lookup", "lookup.dht_publish_failed err=connect");
}

static void publish(kw_endpoint *ep) {
  int home = kw__relay_home(ep);
  if (home < 0 || kw__ep_closing(ep))
    return;
  kw__record rec;
  memset(&rec, 0, sizeof rec);
  if (kw_endpoint_get_addr(ep, &rec.addr) != KW_OK)
    return;
  rec.timestamp_us = kw__unix_us();
  rec.ttl_s = KW_RECORD_TTL_S;
  uint8_t buf[KW_RECORD_MAX_LEN];
  size_t n;
  if (kw__record_encode(&rec, kw__ep_cfg(ep)->sk, buf, sizeof buf, &n) != KW_OK)
    return;
  char path[16 + KW_ID_STRLEN];
  char idt[KW_ID_STRLEN + 1];
  kw_id_to_string(kw__ep_id(ep), idt, sizeof idt);
  snprintf(path, sizeof path, "/lookup/%s", idt);
  if (https_request(ep, home, "PUT", path, buf, n, published, ep) != KW_OK) {
    kw__log(ep, KW_LOG_WARN, "lookup", "lookup.publish_failed err=connect");
    publish_retry(ep);
  }
  publish_dht(ep, home, &rec);
}

static void republish_cb(uv_timer_t *t) {
  struct kw__publisher *p = t->data;
  publish(p->ep);
}

void kw__endpoint_home_changed(kw_endpoint *ep) {
  struct kw__publisher *p = kw__ep_publisher(ep);
  if (!p->timer_init) {
    uv_timer_init(kw__ep_loop(ep), &p->timer);
    p->timer.data = p;
    p->timer_init = true;
  }
  uv_timer_start(&p->timer, republish_cb, KW_REPUBLISH_MS, KW_REPUBLISH_MS);
  publish(ep); /* a failure re-arms the timer for a retry */
}

void kw__lookup_home_reconnected(kw_endpoint *ep) {
  if (kw__ep_closing(ep) || kw__relay_home(ep) < 0)
    return;
  kw__log(ep, KW_LOG_INFO, "lookup",
          "lookup.republish reason=home_reconnected");
  kw__endpoint_home_changed(ep); /* publishes now, restarts the 10 min timer */
}

void kw__lookup_stop(kw_endpoint *ep) {
  struct kw__publisher *p = kw__ep_publisher(ep);
  if (p && p->timer_init) {
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, NULL);
    p->timer_init = false;
  }
}

/* ---- resolving
 * ------------------------------------------------------------------ */

/* One GET /lookup/<id> at one relay: a source of resolve.c. */
typedef struct lookup_req {
  kw_endpoint *ep;
  int relay;
  uint8_t id[KW_ID_LEN];
  void (*cb)(kw_endpoint *ep, kw_err err, const kw_endpoint_addr *addr,
             void *arg);
  void *arg;
  uv_timer_t wait;
  uint64_t deadline_ns;
} lookup_req;

static void lookup_free(uv_handle_t *h) {
  free(h->data);
}

static void lookup_done(lookup_req *q, kw_err err, const kw_endpoint_addr *a) {
  q->cb(q->ep, err, a, q->arg);
  uv_close((uv_handle_t *)&q->wait, lookup_free);
}

static void got_record(kw_err err, int status, const uint8_t *body, size_t len,
                       void *arg) {
  lookup_req *q = arg;
  kw_endpoint *ep = q->ep;
  char idb[KW_ID_SHORTLEN + 1];
  kw_id_to_short(q->id, idb, sizeof idb);
  if (err != KW_OK) {
    lookup_done(q, err, NULL);
    return;
  }
  if (status == 404) {
    kw__log(ep, KW_LOG_INFO, "lookup", "lookup.not_found id=%s relay=%d", idb,
            q->relay);
    lookup_done(q, KW_ERR_NOT_FOUND, NULL);
    return;
  }
  kw__record rec;
  uint64_t now = kw__unix_us();
  kw_err de =
      status == 200 ? kw__record_decode_at(body, len, now, &rec) : KW_ERR_PARSE;
  if (de == KW_ERR_STATE) {
    /* signed by the id, but expired (a relay kept or replays an old one)
     * or dated beyond the skew: no answer, not a wrong one */
    kw__record tmp;
    bool future = kw__record_decode(body, len, &tmp) == KW_OK &&
                  kw__record_from_future(&tmp, now);
    kw__log(ep, KW_LOG_INFO, "lookup", "lookup.%s id=%s relay=%d",
            future ? "from_future" : "expired", idb, q->relay);
    lookup_done(q, KW_ERR_NOT_FOUND, NULL);
    return;
  }
  if (de != KW_OK || memcmp(rec.addr.id, q->id, KW_ID_LEN) != 0) {
    kw__log(ep, KW_LOG_WARN, "lookup",
            "lookup.bad_record id=%s relay=%d status=%d", idb, q->relay,
            status);
    lookup_done(q, status == 200 ? KW_ERR_KEY_MISMATCH : KW_ERR_NOT_FOUND,
                NULL);
    return;
  }
  kw__log(ep, KW_LOG_INFO, "lookup",
          "lookup.resolved id=%s relay=%d addrs=%zu relay_url=%s", idb,
          q->relay, rec.addr.n_addrs,
          rec.addr.relay_url[0] ? rec.addr.relay_url : "-");
  lookup_done(q, KW_OK, &rec.addr);
}

static void try_lookup(uv_timer_t *t) {
  lookup_req *q = t->data;
  kw_endpoint *ep = q->ep;
  if (kw__ep_closing(ep)) {
    lookup_done(q, KW_ERR_CLOSED, NULL);
    return;
  }
  kw_sockaddr to;
  const char *host;
  bool ready = kw__relay_tls_target(ep, q->relay, &to, &host);
  /* the relay's name may still be being resolved: wait for it */
  if (!ready && kw__now(ep) < q->deadline_ns) {
    uv_timer_start(&q->wait, try_lookup, KW_LOOKUP_WAIT_STEP_MS, 0);
    return;
  }
  char path[16 + KW_ID_STRLEN];
  char idt[KW_ID_STRLEN + 1];
  kw_id_to_string(q->id, idt, sizeof idt);
  snprintf(path, sizeof path, "/lookup/%s", idt);
  kw_err e =
      !ready ? KW_ERR_NO_PATH
             : https_request(ep, q->relay, "GET", path, NULL, 0, got_record, q);
  if (e != KW_OK)
    lookup_done(q, e, NULL);
}

kw_err kw__relay_lookup(kw_endpoint *ep, int relay, const uint8_t id[KW_ID_LEN],
                        uint64_t deadline_ns,
                        void (*cb)(kw_endpoint *ep, kw_err err,
                                   const kw_endpoint_addr *addr, void *arg),
                        void *arg) {
  if (relay < 0 || (size_t)relay >= kw__relay_count(ep))
    return KW_ERR_NO_PATH;
  lookup_req *q = calloc(1, sizeof *q);
  if (!q)
    return KW_ERR_NOMEM;
  q->ep = ep;
  q->relay = relay;
  memcpy(q->id, id, KW_ID_LEN);
  q->cb = cb;
  q->arg = arg;
  q->deadline_ns = deadline_ns;
  uv_timer_init(kw__ep_loop(ep), &q->wait);
  q->wait.data = q;
  uv_timer_start(&q->wait, try_lookup, 0, 0);
  return KW_OK;
}
