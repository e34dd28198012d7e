/* SPDX-License-Identifier: MIT */
/*
 * The path table of one remote endpoint and path selection, sans-IO
 * (docs/PROTOCOL.md, "Path discovery, selection and hole punching";
 * docs/ARCHITECTURE.md section 4). A path is a direct UDP address of the remote ("IP path", the
 * primary kind) or the relay (the backup kind, one per remote, slot
 * KW_PATHS_RELAY). Slots are stable: an index stays valid until its path
 * is removed or pruned.
 *
 * Rules (the constants are the contract):
 *  - Sources: application/ticket, address lookup, disco, connection; a path
 *    known from several sources keeps them all (a bit set).
 *  - States: unknown, validating, validated (with RTT), inactive, unusable.
 *    Only validated paths are selectable. An RTT sample marks a path
 *    validated (unless unusable).
 *  - Limits: at most KW_PATHS_MAX_IP IP paths and KW_PATHS_MAX_INACTIVE
 *    inactive ones. Over a limit the table prunes the oldest inactive path
 *    first (longest inactive), then the lowest-priority path. Priority
 *    order, lowest first: state (unusable < unknown < validating <
 *    validated), best source (lookup < disco < app < connection), age
 *    (added earlier < later), address bytes. The selected path is never
 *    pruned. If the path being added is itself the one pruned, the add
 *    fails with KW_ERR_FULL.
 *  - Selection: a validated direct path always beats the relay, whatever
 *    the RTT. Within a kind the lowest RTT wins, RTT being the minimum of
 *    the per-connection samples (a path without samples has infinite RTT);
 *    IPv6 paths count KW_PATHS_IPV6_BONUS_NS less. The current path is kept
 *    unless the best is at least KW_PATHS_SWITCH_NS better (exactly that
 *    much switches); a current path that is not selectable is replaced by
 *    the best; no current -> the best; nothing selectable -> none. Ties
 *    break on (family, address bytes, port), lower first.
 *  - Redundant paths: every validated direct path except the one kept —
 *    the selected path if direct, else the best direct — and never the
 *    last direct one or the relay.
 */
#ifndef KW_CORE_PATHS_H
#define KW_CORE_PATHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define KW_PATHS_MAX_IP 30
#define KW_PATHS_MAX_INACTIVE 10
#define KW_PATHS_MAX_CONNS 16 /* connection slots with RTT samples */
#define KW_PATHS_SLOTS (KW_PATHS_MAX_IP + 1)
#define KW_PATHS_RELAY 0 /* slot of the relay path */
#define KW_PATHS_NONE (-1)
#define KW_PATHS_SWITCH_NS (5ull * 1000000ull)
#define KW_PATHS_IPV6_BONUS_NS (3ull * 1000000ull)
#define KW_PATHS_RTT_UNKNOWN UINT64_MAX

/* Path sources (bits). */
#define KW_PSRC_APP 0x01    /* the application or a ticket */
#define KW_PSRC_LOOKUP 0x02 /* address lookup (a signed record) */
#define KW_PSRC_DISCO 0x04  /* disco: CallMeMaybe or an observed Pong */
#define KW_PSRC_CONN 0x08   /* a connection's packets came from it */
#define KW_PSRC_ALL 0x0f

typedef enum kw__path_state {
  KW_PST_UNKNOWN = 0,
  KW_PST_VALIDATING = 1,
  KW_PST_VALIDATED = 2,
  KW_PST_INACTIVE = 3,
  KW_PST_UNUSABLE = 4,
} kw__path_state;

typedef struct kw__path {
  bool used;
  bool relay;
  kw_sockaddr addr; /* family 0 for the relay */
  uint8_t sources;  /* KW_PSRC_* bits */
  kw__path_state state;
  bool ever_validated;     /* it has been validated at some time */
  uint64_t added;          /* when added, ns */
  uint64_t inactive_since; /* when it became inactive */
  uint64_t seq;            /* insertion order (tie-break of ages) */
  uint32_t has_rtt;        /* bit per connection slot */
  uint64_t rtt[KW_PATHS_MAX_CONNS];
  /* The local socket the path runs on: 0 the endpoint's own, 1.. an extra
   * socket of birthday probing (core/remote); the caller sends on it. */
  uint16_t sock;
} kw__path;

typedef struct kw__paths {
  kw__path p[KW_PATHS_SLOTS];
  int selected; /* slot or KW_PATHS_NONE */
  uint64_t seq;
} kw__paths;

/* Empties the table. */
void kw__paths_init(kw__paths *t);
/* Releases nothing today (the table owns no heap memory); clears it. */
void kw__paths_free(kw__paths *t);

/* Adds the direct path `addr` (NULL: the relay path) learned from `source`
 * (KW_PSRC_* bits), or adds the source to an existing one; writes its slot
 * to *idx and whether it is new to *created (both may be NULL). Prunes as
 * the limits demand. Errors: KW_ERR_INVALID_ARG (family not 4/6, port 0,
 * no source), KW_ERR_FULL (the new path was the lowest priority). */
kw_err kw__paths_add(kw__paths *t, const kw_sockaddr *addr, uint8_t source,
                     uint64_t now, int *idx, bool *created);
/* The slot of direct path `addr` (NULL: the relay), or KW_PATHS_NONE. */
int kw__paths_find(const kw__paths *t, const kw_sockaddr *addr);
/* The path in slot `idx`, or NULL if none. */
const kw__path *kw__paths_get(const kw__paths *t, int idx);
/* Removes a path (deselecting it). Errors: KW_ERR_NOT_FOUND. */
kw_err kw__paths_remove(kw__paths *t, int idx);
/* Sets a path's state (inactive ones are counted against the limit and
 * may prune). Errors: KW_ERR_NOT_FOUND, KW_ERR_INVALID_ARG. */
kw_err kw__paths_set_state(kw__paths *t, int idx, kw__path_state st,
                           uint64_t now);
/* Sets the local socket a path runs on (kw__path.sock). Errors:
 * KW_ERR_NOT_FOUND. */
kw_err kw__paths_set_sock(kw__paths *t, int idx, uint16_t sock);
/* Records connection slot `conn`'s RTT on a path; marks it validated
 * unless unusable. Errors: KW_ERR_NOT_FOUND, KW_ERR_INVALID_ARG (conn
 * outside 0..KW_PATHS_MAX_CONNS-1). */
kw_err kw__paths_rtt_sample(kw__paths *t, int idx, size_t conn,
                            uint64_t rtt_ns);
/* Forgets connection slot `conn`'s samples on every path. */
void kw__paths_conn_gone(kw__paths *t, size_t conn);
/* Minimum RTT of a path over its connections, KW_PATHS_RTT_UNKNOWN if it
 * has no sample. */
uint64_t kw__paths_rtt(const kw__paths *t, int idx);

/* Runs selection; returns the selected slot (KW_PATHS_NONE if none) and
 * sets *changed if it differs from before. */
int kw__paths_select(kw__paths *t, uint64_t now, bool *changed);
/* The currently selected slot, without re-running selection. */
int kw__paths_selected(const kw__paths *t);
/* Writes up to `cap` redundant direct paths to close (slots, ascending)
 * and returns how many there are. */
size_t kw__paths_redundant(const kw__paths *t, int *out, size_t cap);

/* IP paths in the table, and how many of them are inactive. */
size_t kw__paths_count_ip(const kw__paths *t);
size_t kw__paths_count_inactive(const kw__paths *t);
/* True if a validated direct path has an RTT sample <= max_rtt_ns. */
bool kw__paths_has_direct_within(const kw__paths *t, uint64_t max_rtt_ns);
/* "unknown", "validating", "validated", "inactive", "unusable". */
const char *kw__path_state_name(kw__path_state st);

#endif /* KW_CORE_PATHS_H */
