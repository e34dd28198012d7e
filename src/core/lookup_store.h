/* SPDX-License-Identifier: MIT */
/*
 * The relay's address lookup store: signed endpoint records (record.h) by
 * endpoint id, in memory, bounded.
 *
 *  - put verifies the record, refuses one that is expired or dated more
 *    than KW_LOOKUP_MAX_SKEW_US in the future, and one whose timestamp is
 *    not strictly newer than the stored record of the same id.
 *  - get drops an expired record (and answers "not found").
 *  - Records are "pinned" while their id is connected to the relay as an
 *    authenticated client (the relay says so: put_pinned, pin).
 *  - Overflow policy: at most `capacity` records. Expired records are
 *    always dropped first. When still full, the unpinned record stored
 *    longest ago (by put order on the relay's clock, never the record's own
 *    timestamp) is evicted; a pinned record is never evicted for another's.
 *    When every record is pinned, the new record is refused (KW_ERR_FULL).
 *    A record that becomes unpinned counts as stored at that moment.
 *
 * A uthash table (ids keyed through SipHash under a per-store random key,
 * so ids chosen by strangers cannot aim at one bucket), a binary min-heap
 * on expiry time and a list of unpinned records in put order: put, get
 * and eviction are O(log n).
 * Time is unix microseconds, passed in.
 */
#ifndef KW_CORE_LOOKUP_STORE_H
#define KW_CORE_LOOKUP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"
#include "core/record.h"

/* Records dated further ahead than this (clock skew) are refused. */
#define KW_LOOKUP_MAX_SKEW_US (30ull * 1000000ull)

typedef struct kw__lookup_store kw__lookup_store;

/* Creates a store of at most `capacity` (>= 1) records. Errors:
 * KW_ERR_INVALID_ARG, KW_ERR_NOMEM. */
kw_err kw__lookup_store_new(size_t capacity, kw__lookup_store **out);
void kw__lookup_store_free(kw__lookup_store *s);

/* Stores the encoded record rec[0..len). Errors: KW_ERR_PARSE and
 * KW_ERR_KEY_MISMATCH (from kw__record_decode), KW_ERR_INVALID_ARG
 * (expired at `now_us`, or dated too far in the future), KW_ERR_STATE (not
 * newer than the stored record of that id), KW_ERR_FULL (see the overflow
 * policy above), KW_ERR_NOMEM. `parsed`, if not NULL, receives the
 * decoded record whenever it decoded. */
kw_err kw__lookup_store_put(kw__lookup_store *s, const uint8_t *rec, size_t len,
                            uint64_t now_us, kw__record *parsed);
/* The same, with the record pinned (its id is connected) or not. */
kw_err kw__lookup_store_put_pinned(kw__lookup_store *s, const uint8_t *rec,
                                   size_t len, uint64_t now_us, bool pinned,
                                   kw__record *parsed);
/* Pins or unpins the stored record of `id` (nothing if there is none). */
void kw__lookup_store_pin(kw__lookup_store *s, const uint8_t id[KW_ID_LEN],
                          bool pinned);

/* Copies the stored, still valid record of `id` (the signed bytes as they
 * were put) into out. Errors: KW_ERR_NOT_FOUND (none, or it expired: then
 * it is dropped), KW_ERR_BUFFER (*outlen gets the size needed). */
kw_err kw__lookup_store_get(kw__lookup_store *s, const uint8_t id[KW_ID_LEN],
                            uint64_t now_us, uint8_t *out, size_t cap,
                            size_t *outlen);

/* Drops every record expired at `now_us`; returns how many. */
size_t kw__lookup_store_expire(kw__lookup_store *s, uint64_t now_us);

/* Number of records held (expired ones included until dropped). */
size_t kw__lookup_store_count(const kw__lookup_store *s);

#endif /* KW_CORE_LOOKUP_STORE_H */
