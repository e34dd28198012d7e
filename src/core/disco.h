/* SPDX-License-Identifier: MIT */
/*
 * Disco: sealed path-discovery messages (wire format and rules in
 * docs/protocol/disco.md).
 *
 *   magic "KWdisco" 0x01 (8) | sender endpoint id (32) | nonce (24) |
 *   crypto_box_easy(plaintext)            (16-byte MAC + plaintext)
 *   plaintext = type u8 | timestamp u64 (unix ms) | body
 *
 *   Ping         tx_id (12) | sender id (32) | zero padding
 *   Pong         tx_id (12) | observed source address (19)
 *   CallMeMaybe  count u8 (0..KW_MAX_DIRECT_ADDRS) | count x address (19)
 *   address    = family u8 (4|6) | ip (16, IPv4 in the first 4, rest 0)
 *                | port u16 (non-zero)
 *
 * The box keys are X25519 keys converted from the Ed25519 identities; the
 * caller computes the shared key once per remote (kw__disco_key_derive) and
 * keeps it in the remote's state. All parsing goes through kw__rbuf.
 *
 * Rules the caller applies (each has a helper here):
 *  - Replay: kw__disco_replay drops messages whose timestamp is outside
 *    +-KW_DISCO_REPLAY_WINDOW_MS of now, and duplicates.
 *  - No amplification: a Pong is never larger than the Ping it answers
 *    (KW_DISCO_PONG_LEN <= KW_DISCO_PING_MIN_LEN; kw__disco_seal_pong
 *    refuses otherwise), and pongs are rate limited per source address
 *    (kw__disco_pong_limiter).
 *  - Via the relay only CallMeMaybe and NatHint are acted on
 *    (kw__disco_act_via).
 */
#ifndef KW_CORE_DISCO_H
#define KW_CORE_DISCO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"
#include "core/addrlru.h"

#define KW_DISCO_MAGIC_LEN 8
#define KW_DISCO_NONCE_LEN 24
#define KW_DISCO_MAC_LEN 16
#define KW_DISCO_TXID_LEN 12
#define KW_DISCO_ADDR_LEN 19
/* magic + sender id + nonce */
#define KW_DISCO_HEADER_LEN                                                    \
  (KW_DISCO_MAGIC_LEN + KW_ID_LEN + KW_DISCO_NONCE_LEN)
/* type + timestamp */
#define KW_DISCO_PLAIN_HEADER_LEN 9
/* Bytes every message has besides its body. */
#define KW_DISCO_OVERHEAD                                                      \
  (KW_DISCO_HEADER_LEN + KW_DISCO_MAC_LEN + KW_DISCO_PLAIN_HEADER_LEN)

#define KW_DISCO_PING 1
#define KW_DISCO_PONG 2
#define KW_DISCO_CALL_ME_MAYBE 3
/* The sender's NAT mapping behaviour and reflexive address, sent with a
 * CallMeMaybe (birthday probing; docs/protocol/disco.md). Decoders before
 * it refuse type 4 and drop just that message: the CallMeMaybe beside it
 * is unchanged, so older endpoints keep punching as before. */
#define KW_DISCO_NAT_HINT 4
/* NatHint flags: bits 0-1 the mapping (0 unknown, 1 endpoint-independent,
 * 2 endpoint-dependent, 3 read as unknown), bit 2 a reflexive address
 * follows; other bits are ignored, and so are bytes after the body (room
 * for later fields). */
#define KW_DISCO_NAT_UNKNOWN 0
#define KW_DISCO_NAT_EIM 1
#define KW_DISCO_NAT_EDM 2
#define KW_DISCO_NAT_MASK 0x03
#define KW_DISCO_NAT_HAS_ADDR 0x04

/* Sizes on the wire. */
#define KW_DISCO_PING_MIN_LEN                                                  \
  (KW_DISCO_OVERHEAD + KW_DISCO_TXID_LEN + KW_ID_LEN) /* 133 */
#define KW_DISCO_PONG_LEN                                                      \
  (KW_DISCO_OVERHEAD + KW_DISCO_TXID_LEN + KW_DISCO_ADDR_LEN) /* 120 */
#define KW_DISCO_CMM_MAX_LEN                                                   \
  (KW_DISCO_OVERHEAD + 1 + KW_MAX_DIRECT_ADDRS * KW_DISCO_ADDR_LEN) /* 394 */
/* Largest disco datagram accepted or built (a padded Ping, e.g. a path MTU
 * probe). */
#define KW_DISCO_MAX_LEN 1400
/* Most padding a Ping can carry. */
#define KW_DISCO_MAX_PAD (KW_DISCO_MAX_LEN - KW_DISCO_PING_MIN_LEN)

/* Replay window and the bound of the seen-message set. */
#define KW_DISCO_REPLAY_WINDOW_MS 30000
#define KW_DISCO_REPLAY_CAP 4096

/* Pong rate limit per source address: a token bucket of
 * KW_DISCO_PONG_BURST tokens refilled at KW_DISCO_PONG_RATE per second, in
 * a table of KW_DISCO_PONG_TABLE addresses (least recently used evicted). */
#define KW_DISCO_PONG_BURST 10
#define KW_DISCO_PONG_RATE 5
#define KW_DISCO_PONG_TABLE 1024

/* True if data[0..len) starts with the disco magic (the demux test). */
bool kw__disco_is(const uint8_t *data, size_t len);

/* The precomputed box key between us and one remote. */
typedef struct kw__disco_key {
  uint8_t k[32];
} kw__disco_key;

/* Derives the shared key between our Ed25519 secret key `our_sk` and the
 * remote endpoint id `their_id`. Errors: KW_ERR_BAD_ID (not a usable
 * Ed25519 point, or a low-order one), KW_ERR_INVALID_ARG. */
kw_err kw__disco_key_derive(const uint8_t our_sk[KW_SECRET_KEY_LEN],
                            const uint8_t their_id[KW_ID_LEN],
                            kw__disco_key *out);
/* Wipes a key. */
void kw__disco_key_wipe(kw__disco_key *k);

typedef struct kw__disco_msg {
  uint8_t type;                     /* KW_DISCO_* */
  uint64_t ts_ms;                   /* sender's unix time, ms */
  uint8_t tx_id[KW_DISCO_TXID_LEN]; /* Ping, Pong */
  uint8_t sender[KW_ID_LEN];        /* Ping: the sender's id (boxed) */
  size_t pad;                       /* Ping: padding bytes */
  kw_sockaddr addr;                 /* Pong: observed source address;
                                     * NatHint: reflexive (if has_addr) */
  uint8_t nat;                      /* NatHint: KW_DISCO_NAT_* mapping */
  bool has_addr;                    /* NatHint */
  size_t n_addrs;                   /* CallMeMaybe */
  kw_sockaddr addrs[KW_MAX_DIRECT_ADDRS];
  uint8_t nonce[KW_DISCO_NONCE_LEN]; /* set by open */
} kw__disco_msg;

/* Seals `m` (type, ts_ms and its body fields; a Ping carries `our_id` as
 * its sender, m->sender is ignored, and m->pad zero bytes) into
 * out[0..cap), with a fresh random nonce. Errors: KW_ERR_INVALID_ARG
 * (unknown type, bad address, too many addresses, pad > KW_DISCO_MAX_PAD),
 * KW_ERR_BUFFER (cap too small). */
kw_err kw__disco_seal(const kw__disco_key *k, const uint8_t our_id[KW_ID_LEN],
                      const kw__disco_msg *m, uint8_t *out, size_t cap,
                      size_t *outlen);

/* Seals the Pong answering a Ping that was `ping_len` bytes long: tx_id and
 * the observed source `observed`. Refuses (KW_ERR_STATE) if the Pong would
 * be larger than the Ping; other errors as kw__disco_seal. */
kw_err kw__disco_seal_pong(const kw__disco_key *k,
                           const uint8_t our_id[KW_ID_LEN], size_t ping_len,
                           const uint8_t tx_id[KW_DISCO_TXID_LEN],
                           const kw_sockaddr *observed, uint64_t ts_ms,
                           uint8_t *out, size_t cap, size_t *outlen);

/* Reads the sender's id from a disco datagram without opening it (to find
 * the key). Errors: KW_ERR_PARSE (no magic, shorter than a header plus
 * MAC, longer than KW_DISCO_MAX_LEN). */
kw_err kw__disco_peek_sender(const uint8_t *data, size_t len,
                             uint8_t sender[KW_ID_LEN]);

/* Opens a disco datagram with the shared key of its sender. Errors:
 * KW_ERR_PARSE (bad framing, wrong key or tampered box, unknown type,
 * malformed body, non-zero padding, trailing bytes, a Ping whose boxed
 * sender differs from the header's). `m` is zeroed on error. */
kw_err kw__disco_open(const kw__disco_key *k, const uint8_t *data, size_t len,
                      kw__disco_msg *m);

/* Opens with our secret key alone: derives the key for the sender named in
 * the header (costly: cache keys and use kw__disco_open on hot paths).
 * Writes the sender's id. Errors: as kw__disco_open, KW_ERR_BAD_ID (the
 * sender id is not a usable key). */
kw_err kw__disco_open_sk(const uint8_t our_sk[KW_SECRET_KEY_LEN],
                         const uint8_t *data, size_t len,
                         uint8_t sender[KW_ID_LEN], kw__disco_msg *m);

/* The relay rule: true if a message of `type` that arrived via the relay
 * (`via_relay`) or directly over UDP is to be acted on; false means drop.
 * Relayed Pings and Pongs are dropped (no real UDP source to answer or to
 * validate); only CallMeMaybe is acted on via the relay. */
bool kw__disco_act_via(uint8_t type, bool via_relay);

/* "disco.ping", "disco.pong", "disco.call_me_maybe", "disco.unknown". */
const char *kw__disco_type_name(uint8_t type);

/* ---- replay protection -------------------------------------------------
 * A message is identified by (sender, type, key12), key12 being the tx_id
 * of a Ping or Pong and the first 12 nonce bytes of a CallMeMaybe (which
 * has no tx_id; the nonce is random per message). At most `cap` ids are
 * remembered, in arrival order; when full the oldest is dropped and its
 * timestamp becomes a floor: later messages dated at or before it are
 * rejected as stale, so an evicted id can never be replayed. */
typedef enum kw__disco_verdict {
  KW_DISCO_FRESH = 0, /* accepted and remembered */
  KW_DISCO_STALE = 1, /* outside the window or at/below the floor */
  KW_DISCO_DUP = 2,   /* seen before */
} kw__disco_verdict;

typedef struct kw__disco_replay_ent {
  uint8_t digest[16];
  uint64_t ts_ms;
  uint32_t hnext;
} kw__disco_replay_ent;

typedef struct kw__disco_replay {
  size_t cap, n, head; /* ring: head is the oldest */
  kw__disco_replay_ent *ents;
  uint32_t *buckets;
  uint64_t floor_ms;
  bool has_floor;
} kw__disco_replay;

/* Allocates a set of `cap` (1..2^20) ids; 0 means KW_DISCO_REPLAY_CAP.
 * Errors: KW_ERR_INVALID_ARG, KW_ERR_NOMEM. */
kw_err kw__disco_replay_init(kw__disco_replay *r, size_t cap);
void kw__disco_replay_free(kw__disco_replay *r);
/* Checks message `m` from `sender` at unix time `now_ms` and remembers it
 * when fresh. */
kw__disco_verdict kw__disco_replay_check(kw__disco_replay *r,
                                         const uint8_t sender[KW_ID_LEN],
                                         const kw__disco_msg *m,
                                         uint64_t now_ms);

/* ---- pong rate limit ---------------------------------------------------- */
typedef struct kw__disco_pong_limiter {
  kw__addrlru tab;
} kw__disco_pong_limiter;

/* Errors: KW_ERR_NOMEM. */
kw_err kw__disco_pong_limiter_init(kw__disco_pong_limiter *l);
void kw__disco_pong_limiter_free(kw__disco_pong_limiter *l);
/* True (and a token taken) if a Pong may be sent to `to` at `now` (ns). */
bool kw__disco_pong_allow(kw__disco_pong_limiter *l, const kw_sockaddr *to,
                          uint64_t now);

#endif /* KW_CORE_DISCO_H */
