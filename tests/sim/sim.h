/* SPDX-License-Identifier: MIT */
/*
 * A deterministic in-process network simulator for keyway's NAT-traversal
 * logic (core/disco, core/paths, core/holepunch, core/addr_filter).
 *
 *  - Virtual clock (ns); every random choice (delay jitter, loss,
 *    duplication, NAT port allocation, tx ids) comes from one seeded PRNG,
 *    so a seed replays exactly.
 *  - Links with a base delay, jitter (which reorders), loss and duplication.
 *  - NATs after RFC 4787: endpoint-independent, address-dependent or
 *    address-and-port-dependent mapping and filtering, idle mapping timeouts
 *    refreshed by outbound traffic, no hairpinning.
 *  - Two peers, each on its own LAN behind its own NAT (or on the same LAN,
 *    or public), two STUN servers and one relay on the "internet"
 *    (198.18.0.0/15 addresses only; nothing leaves the process).
 *  - Each peer runs the shipped path policy, core/remote (kw__rp), fed
 *    the way src/endpoint feeds it: a relay connection from the start
 *    (its packets confirm the relay path), STUN (the real codec,
 *    core/stun) for its reflexive address (a new one is a local-candidate
 *    change), disco Ping/Pong/CallMeMaybe sealed with core/disco and acted
 *    on through kw__rp_ping_received / _pong_received / _call_me_maybe,
 *    transfer packets as authenticated connection packets (kw__rp_packet),
 *    and kw__rp_next_deadline / kw__rp_handle_timeout on the virtual
 *    clock. Rounds, re-pings, settling, liveness and the fall back to the
 *    relay are therefore the endpoint's own rules (docs/ARCHITECTURE.md
 *    section 4), not a copy.
 *  - The NAT lab's routers: MASQUERADE (EIM, port preserved when free,
 *    conntrack's address-and-port-dependent filtering), MASQUERADE
 *    --random-fully (a random port per destination), UDP blocked, a
 *    conntrack flush, UDP dropped and restored at run time, a static port
 *    forward (what miniupnpd installs for a UPnP/NAT-PMP mapping).
 *  - A transfer: a stream of numbered packets from one peer to the other on
 *    the sender's selected path, acknowledged on the receiver's, resent on
 *    the current path when unacknowledged (QUIC's loss recovery, simply).
 *  - netcheck: Binding requests to two STUN servers, the mapped addresses
 *    compared as src/endpoint/netcheck.c does; with cfg.netcheck_at_start
 *    its verdict goes to the policy and a NatHint with every CallMeMaybe.
 *  - Birthday probing: up to SIM_MAX_SOCKS extra sockets per peer (the
 *    policy's bday_send / bday_close callbacks).
 *
 * Built as the library kwsim (tests/CMakeLists.txt; links kwcore only),
 * linked by tests/unit/test_sim.c, test_sim_twins.c and test_sim_birthday.c.
 */
#ifndef KW_TEST_SIM_H
#define KW_TEST_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "keyway.h"
#include "core/addr_filter.h"
#include "core/disco.h"
#include "core/holepunch.h"
#include "core/paths.h"
#include "core/remote.h"
#include "core/sockaddr.h"

#define SIM_MS 1000000ull
#define SIM_S 1000000000ull
#define SIM_MAX_PKTS 2048
/* A NAT's mappings (the EDM side of birthday probing holds 256 + a few)
 * and the destinations one mapping remembers (conntrack keeps one entry
 * per flow: a spray of 2048 Pings needs that many). */
#define SIM_MAX_MAPPINGS 320
#define SIM_MAX_PERMS 4096
/* Extra sockets a peer may open (birthday probing); socket k is the
 * peer's local address with port + k. */
#define SIM_MAX_SOCKS KW_RP_BDAY_SOCKETS
#define SIM_PKT_MAX 1500
#define SIM_UNIX_BASE_MS 1700000000000ull
#define SIM_PING_RETRY_NS (1 * SIM_S) /* STUN retries */
#define SIM_STUN_REFRESH_NS (20 * SIM_S)
/* The shipped direct-path liveness policy (core/remote.h): a selected
 * direct path silent for SIM_QUIET_NS gets a Ping every SIM_LIVE_PING_NS;
 * silent for SIM_DEAD_NS it is given up for the relay and hole punching
 * starts again. SIM_TICK_NS is the polling tick the endpoint had before
 * core/remote composed deadlines: bounds in the twins still allow it. */
#define SIM_TICK_NS (250 * SIM_MS)
#define SIM_QUIET_NS KW_RP_DIRECT_QUIET_NS
#define SIM_LIVE_PING_NS KW_RP_DIRECT_PING_EVERY_NS
#define SIM_DEAD_NS KW_RP_DIRECT_DEAD_NS
/* netcheck: each STUN server asked up to this many times, this far apart. */
#define SIM_NC_SENDS 3
#define SIM_NC_EVERY_NS (500 * SIM_MS)
/* transfer: at most this many packets unacknowledged, resent after RTO. */
#define SIM_XFER_WINDOW 64
#define SIM_XFER_RTO_NS (300 * SIM_MS)
#define SIM_XFER_RESEND_PER_TICK 2

/* ---- PRNG (splitmix64) -------------------------------------------------- */
typedef struct sim_rng {
  uint64_t s;
} sim_rng;
uint64_t sim_rand(sim_rng *r);
/* Uniform in [0, 1). */
double sim_uniform(sim_rng *r);

/* ---- NAT ------------------------------------------------------------ */
typedef enum sim_behavior {
  SIM_EI = 0,  /* endpoint-independent */
  SIM_AD = 1,  /* address-dependent */
  SIM_APD = 2, /* address-and-port-dependent */
} sim_behavior;

typedef struct sim_nat_cfg {
  sim_behavior mapping;
  sim_behavior filtering;
  uint64_t timeout_ns; /* idle mapping lifetime */
  bool preserve_port;  /* a new mapping keeps the inside port if free */
  bool random_port;    /* else a random free port (else sequential) */
  bool udp_blocked;    /* the router drops UDP from the start */
} sim_nat_cfg;

/* The NAT lab's routers (tests/natlab/lib.sh) as RFC 4787 behaviours:
 * MASQUERADE: endpoint-independent mapping, the source port kept when
 * free, conntrack filtering (address-and-port dependent).
 * MASQUERADE --random-fully: address-and-port-dependent mapping with a
 * random port each, same filtering. */
sim_nat_cfg sim_nat_masquerade(void);
sim_nat_cfg sim_nat_random_fully(void);

typedef struct sim_mapping {
  bool used;
  kw_sockaddr inside;
  kw_sockaddr dest; /* the destination that created it (AD/APD keys) */
  uint16_t ext_port;
  uint64_t last_out;
  size_t n_perms, cap_perms;
  kw_sockaddr *perms; /* destinations sent to (heap, up to SIM_MAX_PERMS) */
} sim_mapping;

typedef struct sim_nat {
  sim_nat_cfg cfg;
  kw_sockaddr pub; /* public IP, port 0 */
  sim_mapping m[SIM_MAX_MAPPINGS];
  uint16_t next_port;
  uint64_t next_expire; /* no mapping expires before this */
  sim_rng rng;          /* random ports */
  bool udp_down;        /* every UDP packet through the router is dropped */
  /* A static port forward (DNAT pub:fwd_port -> fwd_inside, open to
   * anyone); replies from the inside host to a source that came in through
   * it leave from fwd_port (conntrack's reply direction). */
  bool fwd;
  uint16_t fwd_port;
  kw_sockaddr fwd_inside;
  size_t n_fwd_peers;
  kw_sockaddr fwd_peers[SIM_MAX_PERMS];
  uint64_t mappings_made;
  uint64_t dropped_in;  /* inbound without mapping or filtered */
  uint64_t dropped_udp; /* dropped while UDP was down */
  uint64_t flushes;
} sim_nat;

void sim_nat_init(sim_nat *n, const sim_nat_cfg *cfg, const char *pub_ip,
                  uint16_t first_port);
/* Translates an outbound packet; writes the public source. */
bool sim_nat_out(sim_nat *n, const kw_sockaddr *src, const kw_sockaddr *dst,
                 uint64_t now, kw_sockaddr *ext_src);
/* Translates an inbound packet to the public address `ext_dst`; false if
 * the NAT drops it. */
bool sim_nat_in(sim_nat *n, const kw_sockaddr *src, const kw_sockaddr *ext_dst,
                uint64_t now, kw_sockaddr *inside_dst);
/* Frees what the mappings hold (call when done with a NAT). */
void sim_nat_free(sim_nat *n);
/* conntrack -F: every dynamic mapping (and forward reply state) is gone. */
void sim_nat_flush(sim_nat *n);
/* Installs a static port forward pub:ext_port -> inside. */
void sim_nat_forward(sim_nat *n, const kw_sockaddr *inside, uint16_t ext_port);

/* ---- world ---------------------------------------------------------- */
typedef struct sim_link {
  uint64_t delay_ns;
  uint64_t jitter_ns;
  double loss;
  double dup;
} sim_link;

typedef enum sim_pkt_kind {
  SIM_PK_WAN = 0,   /* routed at arrival: STUN server, NAT, public host */
  SIM_PK_LAN = 1,   /* straight to peer `to_peer` */
  SIM_PK_RELAY = 2, /* through the relay to peer `to_peer` */
} sim_pkt_kind;

typedef struct sim_pkt {
  uint64_t at, seq;
  sim_pkt_kind kind;
  int to_peer;
  kw_sockaddr src, dst;
  size_t len;
  uint8_t data[SIM_PKT_MAX];
} sim_pkt;

typedef struct sim_stats {
  uint64_t rounds, pings_sent, pongs_sent, pongs_recv, cmm_sent, cmm_recv;
  uint64_t dup_dropped, stale_dropped, relay_dropped, pong_limited;
  uint64_t undecodable, ignored, path_changes;
  uint64_t live_pings, fallbacks, stun_sent, stun_recv;
  uint64_t rechecks;     /* cbs.recheck: STUN at once */
  uint64_t failed_paths; /* validation failed: made inactive */
  /* birthday probing */
  uint64_t bday_pkts, bday_socks, bday_max_open, bday_starts, bday_hits;
  uint64_t nat_hints_sent, nat_hints_recv;
  uint64_t paths_full; /* kw__paths_add refused a path (KW_ERR_FULL) */
} sim_stats;

struct sim_world;

typedef struct sim_peer {
  struct sim_world *world;
  uint8_t sk[KW_SECRET_KEY_LEN], id[KW_ID_LEN];
  kw_sockaddr local;
  int nat; /* index into world nats, -1: public */
  int lan; /* peers on the same LAN reach each other directly */
  kw_sockaddr cands[KW_MAX_DIRECT_ADDRS];
  size_t n_cands;
  /* state for the other peer: the shipped path policy (core/remote) and
   * its table, `paths` (the same object, read-only) */
  union {
    kw__rp rp;
    kw__paths paths;
  };
  kw__disco_key key;
  kw__disco_replay replay;
  kw__disco_pong_limiter lim;
  kw__addr_filter filter;
  uint64_t next_retry; /* STUN retries, every second */
  bool have_refl;      /* STUN answered */
  kw_sockaddr refl;
  uint8_t stun_tx[12];
  uint64_t next_stun;
  /* netcheck */
  bool nc_on;
  uint64_t nc_next;
  struct {
    uint8_t tx[12];
    int sends;
    bool answered;
    kw_sockaddr mapped;
  } nc[2];
  bool sock_open[SIM_MAX_SOCKS + 1]; /* extra sockets, 1.. */
  unsigned n_open;
  int nat_kind;             /* KW_RP_NAT_* fed to core/remote (netcheck) */
  uint64_t first_direct_at; /* UINT64_MAX: never */
  uint64_t direct_since;    /* when the current direct selection began */
  sim_stats st;
} sim_peer;

/* A one-way stream of numbered packets from peer `from` to the other. */
typedef struct sim_xfer {
  bool on;
  int from;
  uint32_t n, next_new, low_unacked;
  uint64_t interval_ns, next_tick, started, done_at; /* done_at 0: not yet */
  uint64_t resend_due; /* no packet times out before this */
  uint64_t *sent_at;
  uint8_t *acked, *delivered;
  uint32_t n_delivered;
  uint64_t last_progress, max_gap; /* longest time without a new packet */
  uint64_t sent_direct, sent_relay, resent, recv_direct, recv_relay;
} sim_xfer;

typedef struct sim_cfg {
  uint64_t seed;
  bool nat[2]; /* peer i behind a NAT */
  sim_nat_cfg natcfg[2];
  bool same_lan; /* both peers behind NAT 0 on one LAN */
  sim_link wan, lan;
  uint64_t relay_ns; /* one way through the relay */
  /* A port forward on peer i's NAT to its socket (a UPnP/NAT-PMP mapping),
   * advertised by the peer as a candidate. 0: none. */
  uint16_t portmap[2];
  /* Each peer runs netcheck at the start and tells its policy its mapping
   * behaviour (kw__rp_local_nat); its CallMeMaybe then goes with a
   * NatHint (as src/endpoint does with kw_netcheck_report). */
  bool netcheck_at_start;
  /* kw_config_set_birthday_probing(cfg, false) on both peers. */
  bool no_birthday;
} sim_cfg;

typedef struct sim_world {
  sim_cfg cfg;
  uint64_t now, seq;
  sim_rng rng;
  sim_nat nats[2];
  sim_peer peers[2];
  kw_sockaddr stun;  /* the STUN server peers use */
  kw_sockaddr stun2; /* netcheck's second one */
  sim_xfer xfer;
  /* Packets in flight: a pool of SIM_MAX_PKTS slots and a binary heap of
   * small keys (arrival time, send order, slot) over it. */
  sim_pkt *pool;
  struct sim_key {
    uint64_t at, seq;
    uint32_t slot;
  } * heap;
  uint32_t *free_slots; /* a stack of n_free free slots */
  size_t npkts, n_free;
  uint64_t pkts_dropped_full, pkts_lost, events;
} sim_world;

/* A configuration with sensible links: WAN 20 ms +-5, LAN 0.5 ms, relay
 * 30 ms one way, no loss; both peers behind EIM/EIF NATs with 30 s
 * mapping timeouts. */
void sim_cfg_default(sim_cfg *c, uint64_t seed);
/* Builds the world (allocates); false on failure. */
bool sim_world_init(sim_world *w, const sim_cfg *cfg);
void sim_world_free(sim_world *w);
/* Connects the peers through the relay at the current time and starts
 * STUN; then runs until `until` (virtual ns). False if the event budget
 * ran out (a livelock). */
bool sim_start(sim_world *w);
bool sim_run(sim_world *w, uint64_t until);
/* The kind of the path peer i has selected. */
kw_path_kind sim_selected_kind(const sim_world *w, int i);
const kw__path *sim_selected(const sim_world *w, int i);
/* Sends raw bytes from `src` (a public address) to `dst` over the WAN, as
 * an outsider would. */
void sim_inject(sim_world *w, const kw_sockaddr *src, const kw_sockaddr *dst,
                const uint8_t *data, size_t len);
/* Delivers raw bytes to peer i as if they came through the relay. */
void sim_inject_relay(sim_world *w, int i, const uint8_t *data, size_t len);

/* Starts a transfer of `n` packets from peer `from`, one every
 * `interval_ns` (fewer while SIM_XFER_WINDOW are unacknowledged). False if
 * out of memory. The world frees it. */
bool sim_xfer_start(sim_world *w, int from, uint32_t n, uint64_t interval_ns);
/* Every packet delivered at least once. */
bool sim_xfer_complete(const sim_world *w);

/* netcheck on peer i: Binding requests to both STUN servers (up to
 * SIM_NC_SENDS each). sim_netcheck_result: 1 the mapping varies by
 * destination, 0 it does not, -1 unknown (fewer than two answered) -- as
 * kw_netcheck_report.mapping_varies_by_dest. */
void sim_netcheck_start(sim_world *w, int i);
int sim_netcheck_result(const sim_world *w, int i, kw_sockaddr *first);

/* Helpers the tests share with the simulator. */
static inline bool same_ip(const kw_sockaddr *a, const kw_sockaddr *b) {
  return a->family == b->family &&
         memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16) == 0;
}

/* The simulated wall clock (disco timestamps), ms. */
static inline uint64_t unix_ms(const sim_world *w) {
  return SIM_UNIX_BASE_MS + w->now / SIM_MS;
}

#endif /* KW_TEST_SIM_H */
