/* SPDX-License-Identifier: MIT */
/*
 * The configuration: what kw_config_* sets (keyway.h), and the endpoint's
 * own copy. kw_endpoint_new copies the application's kw_config with
 * kw__config_copy; from then on every module reads it through
 * kw__ep_cfg(), a const pointer: only this module writes a kw_config.
 */
#include "endpoint/config.h"
#include "endpoint/quic.h" /* KW_RETRY_THRESHOLD, KW_HALFOPEN_MAX */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/addr_filter.h"
#include "core/relay_url.h"

kw_err kw_config_new(kw_config **out) {
  if (!out)
    return KW_ERR_INVALID_ARG;
  kw_config *c = calloc(1, sizeof *c);
  if (!c)
    return KW_ERR_NOMEM;
  c->bind4.family = 4;
  c->bind6.family = 6;
  c->idle_timeout_ms = 30000;
  c->connect_timeout_ms = 10000;
  c->max_streams_bidi = 1024;
  c->max_streams_uni = 1024;
  c->max_conns = 4096;
  c->retry_threshold = KW_RETRY_THRESHOLD;
  c->stream_send_buffer = 16u << 20;
  c->conn_send_budget = 16u << 20;
  c->endpoint_send_budget = 256u << 20;
  c->log_level = KW_LOG_INFO;
  c->cc = KW_CC_BBR; /* see kw_config_set_congestion_control */
  *out = c;
  return KW_OK;
}

void kw_config_free(kw_config *cfg) {
  if (!cfg)
    return;
  sodium_memzero(cfg->sk, sizeof cfg->sk);
  free(cfg->cand);
  free(cfg);
}

kw_err kw_config_set_secret_key(kw_config *cfg,
                                const uint8_t sk[KW_SECRET_KEY_LEN]) {
  if (!cfg || !sk)
    return KW_ERR_INVALID_ARG;
  /* the public half must match the seed */
  uint8_t pk[32], sk2[64];
  if (sodium_init() < 0 || crypto_sign_seed_keypair(pk, sk2, sk) != 0 ||
      memcmp(pk, sk + 32, 32) != 0) {
    sodium_memzero(sk2, sizeof sk2);
    return KW_ERR_INVALID_ARG;
  }
  sodium_memzero(sk2, sizeof sk2);
  memcpy(cfg->sk, sk, KW_SECRET_KEY_LEN);
  cfg->has_key = true;
  return KW_OK;
}

kw_err kw_config_add_alpn(kw_config *cfg, const char *alpn) {
  if (!cfg || !alpn)
    return KW_ERR_INVALID_ARG;
  size_t l = strlen(alpn);
  if (l == 0 || l > 255)
    return KW_ERR_INVALID_ARG;
  for (size_t i = 0; i < cfg->n_alpns; i++)
    if (strcmp(cfg->alpns[i], alpn) == 0)
      return KW_OK;
  if (cfg->n_alpns >= KW_MAX_ALPNS)
    return KW_ERR_FULL;
  memcpy(cfg->alpns[cfg->n_alpns++], alpn, l + 1);
  return KW_OK;
}

kw_err kw_config_add_bind(kw_config *cfg, const kw_sockaddr *addr) {
  if (!cfg || !addr)
    return KW_ERR_INVALID_ARG;
  if (addr->family == 4)
    cfg->bind4 = *addr;
  else if (addr->family == 6)
    cfg->bind6 = *addr;
  else
    return KW_ERR_ADDR;
  return KW_OK;
}

kw_err kw_config_set_families(kw_config *cfg, bool ipv4, bool ipv6) {
  if (!cfg || (!ipv4 && !ipv6))
    return KW_ERR_INVALID_ARG;
  cfg->no4 = !ipv4;
  cfg->no6 = !ipv6;
  return KW_OK;
}

static kw__cand_filter *cand_filter(kw_config *cfg) {
  if (!cfg->cand)
    cfg->cand = calloc(1, sizeof *cfg->cand);
  return cfg->cand;
}

#define CAND_SETTER(fn, core_fn)                                               \
  kw_err fn(kw_config *cfg, const char *arg) {                                 \
    if (!cfg || !arg)                                                          \
      return KW_ERR_INVALID_ARG;                                               \
    kw__cand_filter *f = cand_filter(cfg);                                     \
    return f ? core_fn(f, arg) : KW_ERR_NOMEM;                                 \
  }
CAND_SETTER(kw_config_allow_interface, kw__cand_filter_allow_iface)
CAND_SETTER(kw_config_deny_interface, kw__cand_filter_deny_iface)
CAND_SETTER(kw_config_allow_prefix, kw__cand_filter_allow_prefix)
CAND_SETTER(kw_config_deny_prefix, kw__cand_filter_deny_prefix)
#undef CAND_SETTER

kw_err kw_config_set_idle_timeout(kw_config *cfg, uint32_t ms) {
  if (!cfg || ms == 0)
    return KW_ERR_INVALID_ARG;
  cfg->idle_timeout_ms = ms;
  return KW_OK;
}

kw_err kw_config_set_keepalive(kw_config *cfg, uint32_t ms) {
  if (!cfg)
    return KW_ERR_INVALID_ARG;
  cfg->keepalive_ms = ms;
  return KW_OK;
}

kw_err kw_config_set_connect_timeout(kw_config *cfg, uint32_t ms) {
  if (!cfg || ms == 0)
    return KW_ERR_INVALID_ARG;
  cfg->connect_timeout_ms = ms;
  return KW_OK;
}

kw_err kw_config_set_max_streams(kw_config *cfg, uint64_t bidi, uint64_t uni) {
  if (!cfg || bidi > (1ull << 60) || uni > (1ull << 60))
    return KW_ERR_INVALID_ARG;
  cfg->max_streams_bidi = bidi;
  cfg->max_streams_uni = uni;
  return KW_OK;
}

kw_err kw_config_set_max_conns(kw_config *cfg, uint32_t n) {
  if (!cfg || n == 0)
    return KW_ERR_INVALID_ARG;
  cfg->max_conns = n;
  return KW_OK;
}

kw_err kw_config_set_stream_send_buffer(kw_config *cfg, size_t n) {
  if (!cfg || n < 1024)
    return KW_ERR_INVALID_ARG;
  cfg->stream_send_buffer = n;
  return KW_OK;
}

kw_err kw_config_set_retry_threshold(kw_config *cfg, uint32_t n) {
  if (!cfg || n > KW_HALFOPEN_MAX)
    return KW_ERR_INVALID_ARG;
  cfg->retry_threshold = n;
  return KW_OK;
}

kw_err kw_config_set_send_budget(kw_config *cfg, size_t per_conn,
                                 size_t per_endpoint) {
  if (!cfg || per_conn < 1024 || per_endpoint < per_conn)
    return KW_ERR_INVALID_ARG;
  cfg->conn_send_budget = per_conn;
  cfg->endpoint_send_budget = per_endpoint;
  return KW_OK;
}

kw_err kw_config_set_congestion_control(kw_config *cfg, kw_cc cc) {
  if (!cfg || (cc != KW_CC_CUBIC && cc != KW_CC_BBR && cc != KW_CC_RENO))
    return KW_ERR_INVALID_ARG;
  cfg->cc = cc;
  return KW_OK;
}

kw_err kw_config_add_relay(kw_config *cfg, const char *url) {
  if (!cfg || !url)
    return KW_ERR_INVALID_ARG;
  kw__relay_url u;
  kw_err e = kw__relay_url_parse(url, &u);
  if (e != KW_OK)
    return e;
  for (size_t i = 0; i < cfg->n_relays; i++)
    if (strcmp(cfg->relays[i], url) == 0)
      return KW_OK;
  if (cfg->n_relays >= KW_MAX_RELAYS)
    return KW_ERR_FULL;
  snprintf(cfg->relays[cfg->n_relays++], sizeof cfg->relays[0], "%s", url);
  return KW_OK;
}

kw_err kw_config_set_relay_ca(kw_config *cfg, const char *path) {
  if (!cfg || !path || strlen(path) >= sizeof cfg->relay_ca)
    return KW_ERR_INVALID_ARG;
  snprintf(cfg->relay_ca, sizeof cfg->relay_ca, "%s", path);
  return KW_OK;
}

kw_err kw_config_set_dht_publish(kw_config *cfg, kw_dht_publish mode) {
  if (!cfg || (mode != KW_DHT_PUBLISH_RELAY && mode != KW_DHT_PUBLISH_ADDRS &&
               mode != KW_DHT_PUBLISH_NONE))
    return KW_ERR_INVALID_ARG;
  cfg->dht_publish = mode;
  return KW_OK;
}

kw_err kw_config_set_port_mapping(kw_config *cfg, bool enable) {
  if (!cfg)
    return KW_ERR_INVALID_ARG;
  cfg->port_mapping = enable;
  return KW_OK;
}

kw_err kw_config_set_lan_discovery(kw_config *cfg, bool enable) {
  if (!cfg)
    return KW_ERR_INVALID_ARG;
  cfg->lan = enable;
  return KW_OK;
}

kw_err kw_config_set_birthday_probing(kw_config *cfg, bool enable) {
  if (!cfg)
    return KW_ERR_INVALID_ARG;
  cfg->no_birthday = !enable;
  return KW_OK;
}

kw_err kw_config_set_path_policy(kw_config *cfg, kw_path_policy policy) {
  if (!cfg ||
      (policy != KW_PATH_POLICY_ANY && policy != KW_PATH_POLICY_RELAY_ONLY &&
       policy != KW_PATH_POLICY_DIRECT_ONLY))
    return KW_ERR_INVALID_ARG;
  cfg->path_policy = policy;
  return KW_OK;
}

kw_err kw_config_set_log(kw_config *cfg, kw_log_fn fn, void *user,
                         kw_log_level level) {
  if (!cfg)
    return KW_ERR_INVALID_ARG;
  cfg->log_fn = fn;
  cfg->log_user = user;
  cfg->log_level = level;
  return KW_OK;
}

kw_err kw_config_set_callbacks(kw_config *cfg, const kw_callbacks *cbs,
                               void *user) {
  if (!cfg)
    return KW_ERR_INVALID_ARG;
  if (cbs)
    cfg->cbs = *cbs;
  else
    memset(&cfg->cbs, 0, sizeof cfg->cbs);
  cfg->cb_user = user;
  return KW_OK;
}

kw_err kw__config_copy(kw_config *dst, const kw_config *src) {
  *dst = *src;
  dst->cand = NULL;
  if (src->cand) { /* the copy keeps its own allow/deny lists */
    dst->cand = malloc(sizeof *dst->cand);
    if (!dst->cand)
      return KW_ERR_NOMEM;
    *dst->cand = *src->cand;
  }
  if (!dst->has_key) {
    crypto_sign_keypair(dst->sk + 32, dst->sk);
    dst->has_key = true;
  }
  return KW_OK;
}

void kw__config_clear(kw_config *c) {
  free(c->cand);
  c->cand = NULL;
  sodium_memzero(c->sk, sizeof c->sk);
}
