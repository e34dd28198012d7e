/* SPDX-License-Identifier: MIT */
/*
 * One remote's path policy, sans-IO (docs/ARCHITECTURE.md section 4).
 *
 * A kw__rp owns the remote's path table (core/paths), its hole-punch
 * schedule (core/holepunch), its probe budget, the ring of outstanding
 * Pings, the re-pings and settling of a round, the liveness watch on the
 * selected direct path, the NAT-rebinding rule and the RTT slots of its
 * connections. Its caller feeds it events with the time (monotonic ns) and
 * carries out its actions, which come out through a kw__rp_cbs table.
 *
 * Rules:
 *  - A round (when core/holepunch says so; only once `keyed`): CallMeMaybe
 *    through the caller's relay + a Ping to every direct candidate that is
 *    not unusable (unknown ones become validating). Candidates still not
 *    validated are pinged again KW_RP_PUNCH_RETRY_NS later, KW_RP_PUNCH_TRIES
 *    in all, while no direct path is selected; KW_RP_PUNCH_RETRY_NS after
 *    the last re-ping those still validating become inactive (so the
 *    table's limits prune them and a table of dead candidates cannot
 *    refuse a live one).
 *  - A CallMeMaybe with new candidates asks for a round and runs it now if
 *    the schedule allows; otherwise (at most every KW_HP_ANSWER_MIN_NS) it
 *    is answered by Pings to every candidate but the validated paths that
 *    answered a Ping of ours already (the simultaneous open) with the same
 *    re-pings; the selected direct path is pinged too when it has been
 *    quiet KW_RP_ANSWER_QUIET_NS but not yet KW_RP_DIRECT_QUIET_NS (a
 *    remote that asks while we hear nothing may not get through to us).
 *  - A Ping from an address that is not a validated path: the address
 *    becomes a candidate (a new one asks for a round) and is pinged back.
 *  - A Pong must match a Ping of the ring by tx id and address: the path
 *    is validated (also from inactive) with an RTT sample in
 *    KW_RP_RTT_SLOT_DISCO.
 *  - An authenticated packet validates the path it came by. A packet from
 *    another address while the selected direct path has been quiet
 *    KW_RP_REBIND_QUIET_NS is a NAT rebinding: the old path goes inactive.
 *  - Liveness: the selected direct path silent KW_RP_DIRECT_QUIET_NS gets
 *    a Ping every KW_RP_DIRECT_PING_EVERY_NS; silent KW_RP_DIRECT_DEAD_NS
 *    it becomes inactive, selection falls back and a round runs. An
 *    authenticated packet, a Pong or a Ping by the path is hearing it.
 *  - Liveness under load (the caller reports each send on the selected
 *    direct path, kw__rp_sent): our sends on it unanswered for
 *    busy_quiet = max(KW_RP_BUSY_QUIET_NS, KW_RP_BUSY_QUIET_RTTS x its
 *    RTT), when they went on for KW_RP_BUSY_SPAN_NS or more, make it
 *    suspect: a Ping at once and every KW_RP_BUSY_PING_EVERY_NS, a
 *    CallMeMaybe through the relay (the remote's NAT may have lost its
 *    state for us: its answer pings us, below) and cbs.recheck (our own
 *    NAT may have rebound: the caller re-learns its reflexive address, a
 *    change comes back as kw__rp_local_candidates and its round tells the
 *    remote the new address, which its NAT lets in once it pinged it).
 *    Nothing heard for busy_grace = max(KW_RP_BUSY_GRACE_NS,
 *    KW_RP_BUSY_GRACE_RTTS x RTT) after that: it becomes inactive as
 *    above (the relay takes over; its Pings, below, and rounds bring it
 *    back). Sends that needed no answer (the last ACKs of a transfer, all
 *    within a few ms) are forgotten: the idle rule applies. Anything
 *    heard clears it all, so random loss never counts: under load a path
 *    that delivers anything is heard every few ms. Only for a path the
 *    remote's connection packets came by since it was selected (one a
 *    Pong validated may not carry the remote's side yet: it may still
 *    be switching; the idle rule covers it).
 *  - A Pong by another direct path while the selected one is suspect:
 *    the selected one goes inactive and selection moves (as a rebinding:
 *    a remote whose NAT rebound answers from its new address first).
 *  - A connection packet by the relay while the selected direct path (one
 *    the remote's connection packets came by) has been quiet
 *    KW_RP_REBIND_QUIET_NS: the remote gave the path up; it is
 *    given up here too, as by liveness (a receiver that only sends ACKs
 *    would otherwise send them into a dead path until its own rule).
 *  - A direct path given up by liveness gets a Ping every
 *    KW_RP_LOST_PING_EVERY_NS for KW_RP_LOST_PING_FOR_NS while no direct
 *    path is selected: its Pong revives it (a blocked path that comes
 *    back is used again within a second, not at the next recovery round).
 *  - RTT: each connection holds a slot; its RTT is credited to the
 *    selected path once that has been selected KW_RP_RTT_SETTLE_NS, at
 *    most one sample per slot every KW_RP_RTT_EVERY_NS.
 *  - Selection after every change: redundant direct paths go inactive,
 *    the schedule learns whether a good direct path exists, a new direct
 *    selection stops recovery rounds.
 *  - Idle: with no connection, `idle_since` + KW_RP_IDLE_NS is a
 *    deadline; at it `idle_expired` is called (last: it may free).
 *  - Birthday probing (docs/protocol/disco.md, "Birthday probing"): between
 *    an endpoint-dependent mapping (EDM: a new public port per
 *    destination, e.g. MASQUERADE --random-fully) and an
 *    endpoint-independent one (EIM), plain punching cannot meet: the EIM
 *    side never learns the port the EDM side's NAT chose toward it. Each
 *    side learns its own mapping behaviour (kw__rp_local_nat, from
 *    netcheck) and the remote's (kw__rp_remote_nat, from its NatHint).
 *    While no direct path is selected and the remote has a connection, an
 *    attempt runs at most every KW_RP_BDAY_EVERY_NS:
 *      we EDM, remote EIM: KW_RP_BDAY_SOCKETS extra sockets (cbs.bday_send
 *        with sock 1..; the caller opens them on first use), each sending
 *        one Ping to the remote's reflexive address, KW_RP_BDAY_OPEN_PER_TICK
 *        every KW_RP_BDAY_TICK_NS; each such send maps one random public port
 *        that lets the remote's packets in;
 *      we EIM, remote EDM: KW_RP_BDAY_SPRAY Pings from our own socket to
 *        random ports (KW_RP_BDAY_PORT_MIN..65535) of the remote's public
 *        IP, KW_RP_BDAY_SPRAY_PER_TICK every KW_RP_BDAY_TICK_NS.
 *    A spray Ping that lands on one of the remote's mapped ports is
 *    answered from that extra socket; the EDM side pings back from it. The
 *    first Pong that matches an attempt's tx id (its random prefix, the
 *    socket and, for the spray, the port are in it) validates a path with
 *    that socket (kw__path.sock); the attempt stops and every other extra
 *    socket is closed at once (cbs.bday_close). At KW_RP_BDAY_ATTEMPT_NS
 *    an attempt without a hit closes them all, and so does the last
 *    connection going; a chosen socket closes when its path is no longer
 *    selected (kw__rp_free calls nothing: the caller closes what is still
 *    open). kw__rp_set_birthday(false)
 *    turns all of it off; the relay carries the connection meanwhile.
 *    These Pings bypass the probe budget (their bounds are these
 *    constants; every target is the remote's own public address, which
 *    it named in an authenticated NatHint).
 *
 * One kw__rp_next_deadline / kw__rp_handle_timeout pair composes every
 * deadline; nothing polls. Randomness (Ping tx ids) comes from cbs.random.
 */
#ifndef KW_CORE_REMOTE_H
#define KW_CORE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"
#include "core/disco.h"
#include "core/holepunch.h"
#include "core/paths.h"

#define KW_RP_MS 1000000ull
#define KW_RP_PINGS 32 /* outstanding Pings; a ring, the oldest overwritten */
#define KW_RP_PUNCH_RETRY_NS (1000 * KW_RP_MS)
#define KW_RP_PUNCH_TRIES 3
#define KW_RP_DIRECT_QUIET_NS (2000 * KW_RP_MS)
#define KW_RP_DIRECT_PING_EVERY_NS (1000 * KW_RP_MS)
#define KW_RP_DIRECT_DEAD_NS (5000 * KW_RP_MS)
#define KW_RP_REBIND_QUIET_NS (1000 * KW_RP_MS)
/* Liveness under load (the rule above):
 * KW_RP_BUSY_QUIET_NS, _QUIET_RTTS: a flowing connection hears its path
 *   every few ms (ACKs at least every other packet); 1 s, and at least 4
 *   RTTs (a slow path's ACK clock), of unanswered sending is no loss
 *   pattern. Capped at KW_RP_DIRECT_QUIET_NS: never slower than idle.
 * KW_RP_BUSY_SPAN_NS: unanswered sends that went on this long are
 *   QUIC's loss recovery at work (its probe timeouts, >= 25 ms and
 *   doubling, resend what goes unanswered: the third comes >= ~175 ms
 *   after the first even on a LAN), so something is waiting for an
 *   answer; the last ACKs of a finished transfer go out within a few ms
 *   of the packets they acknowledge and wait for nothing.
 * KW_RP_BUSY_PING_EVERY_NS: Pings of a suspect path; 3-4 of them in the
 *   grace time, so 5% loss each way loses all with p < 1e-3 and any
 *   answer (or any other packet) keeps the path.
 * KW_RP_BUSY_GRACE_NS, _GRACE_RTTS: how long the Pings get to be
 *   answered (several round trips); with busy_quiet ~1.75 s of silence
 *   in all at usual RTTs. Capped so busy_quiet + grace stays under
 *   KW_RP_DIRECT_DEAD_NS. */
/* KW_RP_LOST_PING_EVERY_NS, _FOR_NS: an outage (a firewall flap, a
 *   roam) often ends within seconds or tens of seconds; one 133-byte Ping
 *   a second to the one lost address finds its end within a second where
 *   a round (a CallMeMaybe and a Ping to every candidate) each second
 *   would be heavy; 30 s bridges the recovery rounds of core/holepunch
 *   until the one at 35 s. */
/* KW_RP_ANSWER_QUIET_NS: a flowing path is heard every few ms; 200 ms
 *   of quiet and a CallMeMaybe mean the remote's packets are not getting
 *   through (e.g. our NAT forgot its mapping: our Ping re-creates it).
 *   Quieter than KW_RP_DIRECT_QUIET_NS the liveness Pings cover it. */
#define KW_RP_ANSWER_QUIET_NS (200 * KW_RP_MS)
#define KW_RP_LOST_PING_EVERY_NS (1000 * KW_RP_MS)
#define KW_RP_LOST_PING_FOR_NS (30000 * KW_RP_MS)
#define KW_RP_BUSY_QUIET_NS (1000 * KW_RP_MS)
#define KW_RP_BUSY_QUIET_RTTS 4
#define KW_RP_BUSY_SPAN_NS (100 * KW_RP_MS)
#define KW_RP_BUSY_PING_EVERY_NS (200 * KW_RP_MS)
#define KW_RP_BUSY_GRACE_NS (750 * KW_RP_MS)
#define KW_RP_BUSY_GRACE_RTTS 3
#define KW_RP_RTT_SETTLE_NS (1000 * KW_RP_MS)
#define KW_RP_RTT_EVERY_NS (250 * KW_RP_MS)
#define KW_RP_IDLE_NS (60000 * KW_RP_MS)
/* RTT slot fed by Pongs; connections get the slots below it (one past
 * them contributes no RTT). */
#define KW_RP_RTT_SLOT_DISCO (KW_PATHS_MAX_CONNS - 1)
#define KW_RP_NEVER UINT64_MAX

/* Birthday probing, the bounds (per remote):
 * KW_RP_BDAY_SOCKETS: extra sockets of the EDM side; with the EIM side's
 *   KW_RP_BDAY_SPRAY random ports of ~64512 the chance that no spray Ping
 *   lands on one of them is (1 - 256/64512)^2048 ~ 3e-4 per attempt, and
 *   256 descriptors stay well under the usual ulimit of 1024.
 * KW_RP_BDAY_SPRAY: Pings of the EIM side per attempt (2048 x 133 bytes
 *   = 272 KB).
 * KW_RP_BDAY_TICK_NS, _OPEN_PER_TICK, _SPRAY_PER_TICK: pacing; sockets
 *   open at most 3200 per second (all 256 in 80 ms), spray Pings go at
 *   most 2000 per second (KW_RP_BDAY_BYTES_S), so an attempt takes ~1 s
 *   and no burst fills a home router's queue.
 * KW_RP_BDAY_ATTEMPT_NS: an attempt's life (its sends plus the round
 *   trips of late answers); then its sockets close.
 * KW_RP_BDAY_EVERY_NS: at most 2 attempts a minute per remote (a NAT that
 *   defeats it is not hammered; the relay works meanwhile). */
#define KW_RP_BDAY_SOCKETS 256
#define KW_RP_BDAY_SPRAY 2048
#define KW_RP_BDAY_TICK_NS (10 * KW_RP_MS)
#define KW_RP_BDAY_OPEN_PER_TICK 32
#define KW_RP_BDAY_SPRAY_PER_TICK 20
#define KW_RP_BDAY_PING_BYTES 133 /* KW_DISCO_PING_MIN_LEN */
#define KW_RP_BDAY_BYTES_S                                                     \
  (KW_RP_BDAY_SPRAY_PER_TICK * KW_RP_BDAY_PING_BYTES *                         \
   (1000 * KW_RP_MS / KW_RP_BDAY_TICK_NS)) /* 266 000 */
#define KW_RP_BDAY_ATTEMPT_NS (3000 * KW_RP_MS)
#define KW_RP_BDAY_EVERY_NS (30000 * KW_RP_MS)
#define KW_RP_BDAY_PORT_MIN 1024

/* A mapping behaviour (RFC 4787), as netcheck saw it. */
typedef enum kw__rp_nat {
  KW_RP_NAT_UNKNOWN = 0,
  KW_RP_NAT_EIM = 1, /* endpoint-independent: one public port for all */
  KW_RP_NAT_EDM = 2, /* endpoint-dependent: a public port per destination */
} kw__rp_nat;

/* What happened, for the caller's logs (cbs.note). */
typedef enum kw__rp_note {
  KW_RP_NOTE_ROUND,         /* a round ran: a = pinged, b = CallMeMaybe ok */
  KW_RP_NOTE_PROBE_LIMITED, /* a = Pings refused by the probe budget */
  KW_RP_NOTE_REBIND,        /* addr: the new source; a: the old path slot;
                             * b: 1 if by a Pong while suspect */
  KW_RP_NOTE_DIRECT_LOST,   /* addr: the path; a: silence, ns; b: why
                             * (KW_RP_LOST_*) */
  KW_RP_NOTE_SELECTED,      /* a = slot selected, b = redundant closed */
  KW_RP_NOTE_ANSWER,        /* a CallMeMaybe answered by Pings: a = pinged */
  KW_RP_NOTE_BDAY_START,    /* a = 1 extra sockets (we EDM), 0 spray */
  KW_RP_NOTE_BDAY_HIT,      /* addr: the path; a = socket; b = packets sent */
  KW_RP_NOTE_BDAY_MISS,     /* attempt over without a hit: a = packets */
} kw__rp_note;

/* Why a direct path was given up (KW_RP_NOTE_DIRECT_LOST's b). */
enum {
  KW_RP_LOST_IDLE = 0,         /* silent KW_RP_DIRECT_DEAD_NS */
  KW_RP_LOST_LOAD = 1,         /* liveness under load */
  KW_RP_LOST_REMOTE_RELAY = 2, /* the remote came by the relay */
};

typedef struct kw__rp_cbs {
  /* Seals and sends a Ping with `tx_id` to `to`. `probe`: `to` is not a
   * validated path (the caller applies its probe budget, this object's
   * `probes` included). False if nothing was sent. */
  bool (*send_ping)(void *user, const kw_sockaddr *to,
                    const uint8_t tx_id[KW_DISCO_TXID_LEN], bool probe);
  /* CallMeMaybe with our candidates; false on a transient failure (the
   * schedule retries soon). */
  bool (*send_call_me_maybe)(void *user);
  /* The selection changed (cbs.note SELECTED came first). */
  void (*path_changed)(void *user);
  /* A direct path was added to the table (NULL allowed). */
  void (*path_known)(void *user, const kw_sockaddr *a);
  /* Idle for KW_RP_IDLE_NS; called last in kw__rp_handle_timeout, may
   * free the object. */
  void (*idle_expired)(void *user);
  /* Fills `buf` with random bytes. */
  void (*random)(void *user, uint8_t *buf, size_t n);
  /* Optional: something worth a log line. */
  void (*note)(void *user, kw__rp_note what, const kw_sockaddr *addr,
               uint64_t a, uint64_t b);
  /* Birthday probing (NULL: never runs). Sends a Ping with `tx_id` to
   * `to` from socket `sock` (0 our own, 1..KW_RP_BDAY_SOCKETS an extra
   * one, opened on its first use); no probe budget applies. False if
   * nothing was sent (e.g. no socket could be opened). */
  bool (*bday_send)(void *user, unsigned sock, const kw_sockaddr *to,
                    const uint8_t tx_id[KW_DISCO_TXID_LEN]);
  /* Closes every extra socket but `keep` (0: all of them). */
  void (*bday_close)(void *user, unsigned keep);
  /* Optional: the selected direct path fell silent under load, perhaps
   * because our own NAT rebound (a new public port the remote's NAT
   * filters): re-learn the reflexive address now (a change comes back as
   * kw__rp_local_candidates). */
  void (*recheck)(void *user);
} kw__rp_cbs;

typedef struct kw__rp_ping {
  bool used;
  uint16_t sock; /* sent from (kw__path.sock) */
  uint8_t tx_id[KW_DISCO_TXID_LEN];
  kw_sockaddr to;
  uint64_t sent_ns;
} kw__rp_ping;

typedef struct kw__rp {
  /* first: a pointer to a kw__rp is also one to its table (the simulator,
   * tests/sim, shows it to its tests that way) */
  kw__paths pt; /* direct paths + the relay slot (read-only) */
  const kw__rp_cbs *cbs;
  void *user;
  kw__holepunch hp;        /* when rounds run (read-only) */
  kw__probe_budget probes; /* Pings toward unvalidated addresses */
  bool keyed;              /* disco can run (the remote's key is known) */
  unsigned nconns;         /* connections of the remote */
  uint64_t idle_since;     /* when the last went (0: has one, or never) */
  uint32_t rtt_slots;      /* bit per RTT slot held by a connection */
  uint64_t rtt_at[KW_PATHS_MAX_CONNS]; /* last sample credited, per slot */
  kw__rp_ping pings[KW_RP_PINGS];
  unsigned next_ping;
  int punch_tries_left;     /* re-pings of the current round */
  uint64_t punch_next_ns;   /* ... due then */
  bool punch_settle;        /* after the last re-ping: retire the silent */
  uint64_t selected_ns;     /* when the current selection was made */
  uint64_t direct_rx_ns;    /* last authenticated packet on the selected path */
  uint64_t direct_ping_ns;  /* last liveness Ping on the selected path */
  uint64_t direct_tx_ns;    /* last send on it (kw__rp_sent) */
  uint64_t unanswered_ns;   /* first send since it was last heard (0: none) */
  uint64_t suspect_ns;      /* liveness under load: suspect since (0: not) */
  uint64_t suspect_ping_ns; /* ... its last Ping */
  uint64_t watched_ns;      /* the liveness watch last ran */
  bool direct_by_conn;      /* the remote's connection packets came by it */
  kw_sockaddr lost;         /* the direct path liveness gave up ... */
  uint64_t lost_ns;         /* ... then (0: none) */
  uint64_t lost_ping_ns;    /* ... its last Ping */
  /* birthday probing */
  bool bday_off;     /* kw__rp_set_birthday(false) */
  uint8_t nat_local; /* kw__rp_nat */
  uint8_t nat_remote;
  kw_sockaddr remote_refl; /* the remote's reflexive address (its hint) */
  struct {
    bool active; /* sending, or waiting for late answers */
    bool spray;  /* we EIM (random ports) / we EDM (sockets) */
    bool have_last;
    uint8_t key[8]; /* tx id prefix of this attempt */
    kw_sockaddr target;
    unsigned sent;   /* Pings sent (== sockets used when !spray) */
    uint16_t chosen; /* the socket of the hit (0: ours / none) */
    uint64_t start_ns, next_ns;
    uint64_t attempts, hits;
  } bday;
} kw__rp;

void kw__rp_init(kw__rp *r, const kw__rp_cbs *cbs, void *user);
void kw__rp_free(kw__rp *r);
/* The remote's disco key is known: rounds and Pings may run. */
void kw__rp_set_keyed(kw__rp *r, uint64_t now);

/* A connection opened (RTT slot returned, -1 if none is free) / closed. */
int kw__rp_conn_open(kw__rp *r);
void kw__rp_conn_close(kw__rp *r, int slot, uint64_t now);
/* A connection of the remote came up / went away after coming up: the
 * hole-punch schedule counts it (only keyed remotes run rounds). */
void kw__rp_conn_up(kw__rp *r, uint64_t now);
void kw__rp_conn_down(kw__rp *r, uint64_t now);
/* Without a connection now: the idle deadline starts (again). */
void kw__rp_idle(kw__rp *r, uint64_t now);
/* An idle remote is used again: validated paths are demoted (direct ones
 * inactive, the relay unknown) so the next connection races them. */
void kw__rp_rerace(kw__rp *r, uint64_t now);

/* A candidate (NULL: the relay) from `source` (KW_PSRC_*); true if new. */
bool kw__rp_candidate(kw__rp *r, const kw_sockaddr *a, uint8_t source,
                      uint64_t now);
/* An authenticated connection packet from `from` (NULL: a relay). */
void kw__rp_packet(kw__rp *r, const kw_sockaddr *from, uint64_t now);
/* The same, arrived on socket `sock` (as kw__path.sock; 0 is
 * kw__rp_packet). On an extra socket it counts only for a path already
 * known on that socket: a birthday path is made by its Pong (which names
 * the socket), so a QUIC packet that overtakes the Pong cannot make a path
 * on our own socket, where the remote's NAT would not let it through. */
void kw__rp_packet_on(kw__rp *r, const kw_sockaddr *from, unsigned sock,
                      uint64_t now);
/* Connection packets went out on the selected direct path (once per
 * batch is enough): liveness under load. */
void kw__rp_sent(kw__rp *r, uint64_t now);
/* A connection's smoothed RTT on the selected path, from its slot.
 * kw__rp_rtt_due: whether a sample from `slot` would be credited now (the
 * caller may skip reading the RTT otherwise). */
bool kw__rp_rtt_due(const kw__rp *r, int slot, uint64_t now);
void kw__rp_rtt_sample(kw__rp *r, int slot, uint64_t rtt_ns, uint64_t now);
/* An authenticated Ping from `from` (UDP; the caller sent the Pong). */
void kw__rp_ping_received(kw__rp *r, const kw_sockaddr *from, uint64_t now);
/* A Pong from `from` answering `tx_id`: true if it matched a Ping of
 * ours to that address (then *rtt_ns is its round trip). */
bool kw__rp_pong_received(kw__rp *r, const uint8_t tx_id[KW_DISCO_TXID_LEN],
                          const kw_sockaddr *from, uint64_t now,
                          uint64_t *rtt_ns);
/* A CallMeMaybe listing the remote's candidates. */
void kw__rp_call_me_maybe(kw__rp *r, const kw_sockaddr *addrs, size_t n,
                          uint64_t now);
/* Our candidates changed / a major network change (a round, pinging every
 * path including the selected one). */
void kw__rp_local_candidates(kw__rp *r, uint64_t now);
void kw__rp_network_change(kw__rp *r, uint64_t now);

/* Birthday probing on (the default) / off; off stops a running attempt
 * and closes its sockets. */
void kw__rp_set_birthday(kw__rp *r, bool on);
/* Our mapping behaviour (netcheck): a change asks for a round, so the
 * remote hears of it (the caller's NatHint goes with the CallMeMaybe). */
void kw__rp_local_nat(kw__rp *r, kw__rp_nat nat, uint64_t now);
/* The remote's NatHint: its mapping behaviour and reflexive address
 * (NULL: none). May start an attempt. */
void kw__rp_remote_nat(kw__rp *r, kw__rp_nat nat, const kw_sockaddr *refl,
                       uint64_t now);
/* A Ping / Pong that arrived on socket `sock` (as kw__path.sock); the
 * plain kw__rp_ping_received / _pong_received are these with sock 0. */
void kw__rp_ping_received_on(kw__rp *r, const kw_sockaddr *from, unsigned sock,
                             uint64_t now);
bool kw__rp_pong_received_on(kw__rp *r, const uint8_t tx_id[KW_DISCO_TXID_LEN],
                             const kw_sockaddr *from, unsigned sock,
                             uint64_t now, uint64_t *rtt_ns);
/* The socket of the selected direct path (0 when none or our own). */
unsigned kw__rp_direct_sock(const kw__rp *r);

/* The earliest time kw__rp_handle_timeout has work (KW_RP_NEVER: none). */
uint64_t kw__rp_next_deadline(const kw__rp *r);
void kw__rp_handle_timeout(kw__rp *r, uint64_t now);

/* The selected direct address, or NULL. */
const kw_sockaddr *kw__rp_direct(const kw__rp *r);
bool kw__rp_on_relay(const kw__rp *r);

#endif /* KW_CORE_REMOTE_H */
