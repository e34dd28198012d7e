/* SPDX-License-Identifier: MIT */
/*
 * The configuration module (config.c): struct kw_config is what the
 * kw_config_* functions of keyway.h set. The endpoint keeps its own copy
 * (kw__config_copy, in kw_endpoint_new); every module reads that copy
 * through kw__ep_cfg(), a const pointer, so no file but config.c writes a
 * configuration.
 */
#ifndef KW_ENDPOINT_CONFIG_H
#define KW_ENDPOINT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

struct kw__cand_filter;

#define KW_MAX_ALPNS 16
#define KW_MAX_RELAYS 8

struct kw_config {
  uint8_t sk[KW_SECRET_KEY_LEN];
  bool has_key;
  char alpns[KW_MAX_ALPNS][256];
  size_t n_alpns;
  kw_sockaddr bind4, bind6;
  uint32_t idle_timeout_ms;
  uint32_t keepalive_ms;
  uint32_t connect_timeout_ms;
  uint64_t max_streams_bidi, max_streams_uni;
  uint32_t max_conns;
  uint32_t retry_threshold; /* kw_config_set_retry_threshold */
  size_t stream_send_buffer;
  size_t conn_send_budget, endpoint_send_budget;
  kw_cc cc;
  kw_log_fn log_fn;
  void *log_user;
  kw_log_level log_level;
  kw_callbacks cbs;
  void *cb_user;
  char relays[KW_MAX_RELAYS][KW_MAX_RELAY_URL + 1];
  size_t n_relays;
  char relay_ca[1024];
  kw_dht_publish dht_publish;   /* kw_config_set_dht_publish */
  bool port_mapping;            /* UPnP IGD / NAT-PMP on the default gateway */
  bool no_birthday;             /* kw_config_set_birthday_probing(cfg, false) */
  bool no4, no6;                /* kw_config_set_families */
  int path_policy;              /* kw_path_policy */
  struct kw__cand_filter *cand; /* allow/deny lists, NULL: none */
  struct {
    kw_resolver_fn fn;
    void *user;
  } resolvers[KW_MAX_RESOLVERS]; /* kw_config_add_resolver */
  size_t n_resolvers;
  bool lan; /* kw_config_set_lan_discovery */
};

/* A deep copy of `src` into `dst` (its own allow/deny lists); a secret key
 * is generated when `src` has none. KW_ERR_NOMEM leaves nothing to free
 * but what kw__config_clear frees. */
kw_err kw__config_copy(kw_config *dst, const kw_config *src);
/* Frees what a copy holds and wipes its secret key. */
void kw__config_clear(kw_config *c);

#endif /* KW_ENDPOINT_CONFIG_H */
