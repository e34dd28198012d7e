/* SPDX-License-Identifier: MIT */
/*
 * Address filtering, sans-IO:
 *
 * 1. The punishment table. A source address that keeps sending packets
 *    keyway cannot decode (a disco packet that does not open, a datagram
 *    that is neither STUN, disco nor QUIC) is ignored for a while:
 *      - KW_ADDR_FILTER_STRIKES undecodable packets, each within
 *        KW_ADDR_FILTER_STRIKE_WINDOW_NS of the first of the series, ban
 *        the address for KW_ADDR_FILTER_BAN_NS (its packets are dropped
 *        without being decoded; they do not extend the ban).
 *      - A strike older than the window starts a new series (count 1).
 *      - An authenticated packet from the address (kw__addr_filter_trust:
 *        a disco message that opened, a completed handshake) forgets its
 *        strikes and ban, and the address is then never struck for
 *        KW_ADDR_FILTER_TRUST_NS after its last authenticated packet: the
 *        source of garbage is spoofable, so a spoofed flood must not ban a
 *        real peer. The trusted addresses are a second bounded table
 *        (KW_ADDR_FILTER_TRUST_CAP, least recently authenticated evicted).
 *      - The caller's predicate (kw__addr_filter_strike) spares an address
 *        the moment it would be banned, e.g. a known path of a remote: the
 *        series restarts and strikes are not counted for
 *        KW_ADDR_FILTER_STRIKE_WINDOW_NS (so the predicate runs at most
 *        once per window and address, not per packet).
 *      - kw__addr_filter_good / kw__addr_filter_lift forget an address
 *        (its ban too), e.g. when it becomes a path of a remote.
 *      - Bounded: at most KW_ADDR_FILTER_CAP addresses. An entry is evicted
 *        KW_ADDR_FILTER_EVICT_NS after its last strike; when the table is
 *        full the least recently struck address is evicted (drop oldest).
 *
 * 2. Candidate selection for the local addresses we advertise: interface
 *    and prefix allow/deny lists, and a rank that puts virtual interfaces
 *    (containers, VMs, VPN tunnels) behind the real LAN.
 */
#ifndef KW_CORE_ADDR_FILTER_H
#define KW_CORE_ADDR_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"
#include "core/addrlru.h"

#define KW_ADDR_FILTER_CAP 1024
#define KW_ADDR_FILTER_STRIKES 8
#define KW_ADDR_FILTER_STRIKE_WINDOW_NS (10ull * 1000000000ull)
#define KW_ADDR_FILTER_BAN_NS (60ull * 1000000000ull)
#define KW_ADDR_FILTER_EVICT_NS (300ull * 1000000000ull)

#define KW_ADDR_FILTER_TRUST_CAP 1024
#define KW_ADDR_FILTER_TRUST_NS (600ull * 1000000000ull)

typedef struct kw__addr_filter {
  kw__addrlru tab;
  kw__addrlru trusted;   /* addresses that authenticated (value: none) */
  uint64_t banned_total; /* bans imposed, for counters */
  uint64_t spared_total; /* bans the predicate prevented */
} kw__addr_filter;

/* True if `a` must not be banned (e.g. it is a known path of a remote). */
typedef bool (*kw__addr_spare_fn)(void *arg, const kw_sockaddr *a);

/* Allocates the table (KW_ADDR_FILTER_CAP entries). Errors: KW_ERR_NOMEM. */
kw_err kw__addr_filter_init(kw__addr_filter *f);
void kw__addr_filter_free(kw__addr_filter *f);
/* True if packets from `from` are to be dropped undecoded at `now`. */
bool kw__addr_filter_ignored(kw__addr_filter *f, const kw_sockaddr *from,
                             uint64_t now);
/* Records an undecodable packet from `from`; returns true if this strike
 * banned the address. */
bool kw__addr_filter_bad(kw__addr_filter *f, const kw_sockaddr *from,
                         uint64_t now);
/* As kw__addr_filter_bad, but when the strike would ban, `spare(arg,
 * from)` (if not NULL) is asked first: true spares the address (returns
 * false, *spared set if not NULL). Trusted addresses are never struck. */
bool kw__addr_filter_strike(kw__addr_filter *f, const kw_sockaddr *from,
                            uint64_t now, kw__addr_spare_fn spare, void *arg,
                            bool *spared);
/* Forgets `from` (strikes and ban). */
void kw__addr_filter_good(kw__addr_filter *f, const kw_sockaddr *from);
/* The same; returns true if `from` was banned at `now`. */
bool kw__addr_filter_lift(kw__addr_filter *f, const kw_sockaddr *from,
                          uint64_t now);
/* An authenticated packet came from `from` at `now`: forgets its strikes
 * and ban (returns true if it was banned) and trusts it for
 * KW_ADDR_FILTER_TRUST_NS. */
bool kw__addr_filter_trust(kw__addr_filter *f, const kw_sockaddr *from,
                           uint64_t now);
/* True if `from` authenticated within KW_ADDR_FILTER_TRUST_NS of `now`. */
bool kw__addr_filter_trusted(kw__addr_filter *f, const kw_sockaddr *from,
                             uint64_t now);
/* Addresses currently tracked (banned or with strikes). */
size_t kw__addr_filter_count(kw__addr_filter *f, uint64_t now);

/* ---- candidates ----------------------------------------------------------
 * Ranks, lower is advertised first. */
#define KW_CAND_RANK_LAN 0      /* real interface, private address */
#define KW_CAND_RANK_OTHER 1    /* real interface, any other address */
#define KW_CAND_RANK_VIRTUAL 2  /* virtual interface (docker0, wg0...) */
#define KW_CAND_RANK_LOOPBACK 3 /* loopback: last, for same-host peers */
#define KW_CAND_RANK_NEVER (-1) /* not a candidate at all */

/* True if interface `name` looks virtual: docker*, br-*, veth*, virbr*,
 * tun*, tap*, wg*, tailscale*, zt*, vmnet*, utun*, vboxnet*, lxcbr*,
 * cni*, flannel*, podman*. */
bool kw__iface_is_virtual(const char *name);

/* Rank of local address `addr` on interface `name` (NULL: unknown,
 * treated as real). Never: family not 4/6, unspecified, multicast,
 * broadcast, link-local (a kw_sockaddr has no scope id). Private LAN:
 * 10/8, 172.16/12, 192.168/16, fc00::/7. */
int kw__cand_rank(const char *name, const kw_sockaddr *addr);

#define KW_CAND_LIST_MAX 16 /* entries per list */
#define KW_IFNAME_MAX 32

typedef struct kw__prefix {
  uint8_t family; /* 4 or 6 */
  uint8_t ip[16];
  uint8_t len; /* prefix length in bits */
} kw__prefix;

/* Interface-name patterns (exact, or a prefix when ending in '*') and
 * address prefixes. Deny wins over allow; with any allow entry at all
 * (name or prefix), a candidate must match one. */
typedef struct kw__cand_filter {
  size_t n_allow_if, n_deny_if, n_allow_pfx, n_deny_pfx;
  char allow_if[KW_CAND_LIST_MAX][KW_IFNAME_MAX];
  char deny_if[KW_CAND_LIST_MAX][KW_IFNAME_MAX];
  kw__prefix allow_pfx[KW_CAND_LIST_MAX];
  kw__prefix deny_pfx[KW_CAND_LIST_MAX];
} kw__cand_filter;

/* Parses "10.0.0.0/8", "fd00::/8", or a bare address (full length).
 * Host bits past the length must be zero. Errors: KW_ERR_PARSE. */
kw_err kw__prefix_parse(const char *s, kw__prefix *out);
/* True if `a` (family 4/6) lies in `p`. */
bool kw__prefix_contains(const kw__prefix *p, const kw_sockaddr *a);

/* Adds an entry. `pattern` is an interface name (1..31 chars, '*' only as
 * the last character). Errors: KW_ERR_INVALID_ARG (bad pattern),
 * KW_ERR_PARSE (bad prefix), KW_ERR_FULL (KW_CAND_LIST_MAX reached). */
kw_err kw__cand_filter_allow_iface(kw__cand_filter *f, const char *pattern);
kw_err kw__cand_filter_deny_iface(kw__cand_filter *f, const char *pattern);
kw_err kw__cand_filter_allow_prefix(kw__cand_filter *f, const char *prefix);
kw_err kw__cand_filter_deny_prefix(kw__cand_filter *f, const char *prefix);

/* True if `addr` on interface `name` (NULL: unknown) may be advertised
 * under filter `f` (NULL: no lists). Does not look at the rank. */
bool kw__cand_allowed(const kw__cand_filter *f, const char *name,
                      const kw_sockaddr *addr);

/* The same for an address that is not on a local interface (learned by
 * STUN, from a port mapping or observed by a remote): only the deny
 * prefixes apply, as the allow lists name local interfaces and networks. */
bool kw__cand_allowed_external(const kw__cand_filter *f,
                               const kw_sockaddr *addr);

#endif /* KW_CORE_ADDR_FILTER_H */
