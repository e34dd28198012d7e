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
 *    or public), one STUN server and one relay on the "internet"
 *    (198.18.0.0/15 addresses only; nothing leaves the process).
 *  - Each peer runs what the io layer will run: a relay connection from the
 *    start, STUN for its reflexive address, hole-punching rounds as
 *    kw__holepunch says (CallMeMaybe through the relay + Pings to every
 *    remote candidate), Pongs, path validation and selection.
 *
 * Compiled into tests/unit/test_sim.c with #include "../sim/sim.c".
 */
#ifndef KW_TEST_SIM_H
#define KW_TEST_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"
#include "core/addr_filter.h"
#include "core/disco.h"
#include "core/holepunch.h"
#include "core/paths.h"

#define SIM_MS 1000000ull
#define SIM_S 1000000000ull
#define SIM_MAX_PKTS 4096
#define SIM_MAX_MAPPINGS 64
#define SIM_MAX_PERMS 32
#define SIM_MAX_PINGS 64
#define SIM_PKT_MAX 1500
#define SIM_UNIX_BASE_MS 1700000000000ull
#define SIM_PING_RETRY_NS (1 * SIM_S)
#define SIM_PING_TRIES 3
#define SIM_HEARTBEAT_NS (5 * SIM_S)
#define SIM_STUN_REFRESH_NS (20 * SIM_S)

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
} sim_nat_cfg;

typedef struct sim_mapping {
  bool used;
  kw_sockaddr inside;
  kw_sockaddr dest; /* the destination that created it (AD/APD keys) */
  uint16_t ext_port;
  uint64_t last_out;
  size_t n_perms;
  kw_sockaddr perms[SIM_MAX_PERMS]; /* destinations sent to */
} sim_mapping;

typedef struct sim_nat {
  sim_nat_cfg cfg;
  kw_sockaddr pub; /* public IP, port 0 */
  sim_mapping m[SIM_MAX_MAPPINGS];
  uint16_t next_port;
  uint64_t mappings_made;
  uint64_t dropped_in; /* inbound without mapping or filtered */
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
} sim_stats;

typedef struct sim_peer {
  uint8_t sk[KW_SECRET_KEY_LEN], id[KW_ID_LEN];
  kw_sockaddr local;
  int nat; /* index into world nats, -1: public */
  int lan; /* peers on the same LAN reach each other directly */
  kw_sockaddr cands[KW_MAX_DIRECT_ADDRS];
  size_t n_cands;
  /* state for the other peer */
  kw__disco_key key;
  kw__paths paths;
  kw__holepunch hp;
  kw__disco_replay replay;
  kw__disco_pong_limiter lim;
  kw__addr_filter filter;
  struct {
    bool used;
    uint8_t tx[KW_DISCO_TXID_LEN];
    kw_sockaddr to;
    uint64_t sent;
  } pings[SIM_MAX_PINGS];
  size_t ping_next;
  uint8_t tries[KW_PATHS_SLOTS];
  uint64_t last_ping[KW_PATHS_SLOTS];
  uint64_t next_retry; /* ping retries and STUN retries, every second */
  bool have_refl;      /* STUN answered */
  uint64_t next_heartbeat;
  uint64_t next_stun;
  sim_stats st;
} sim_peer;

typedef struct sim_cfg {
  uint64_t seed;
  bool nat[2]; /* peer i behind a NAT */
  sim_nat_cfg natcfg[2];
  bool same_lan; /* both peers behind NAT 0 on one LAN */
  sim_link wan, lan;
  uint64_t relay_ns; /* one way through the relay */
} sim_cfg;

typedef struct sim_world {
  sim_cfg cfg;
  uint64_t now, seq;
  sim_rng rng;
  sim_nat nats[2];
  sim_peer peers[2];
  kw_sockaddr stun;
  sim_pkt *heap;
  size_t npkts;
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

#endif /* KW_TEST_SIM_H */
