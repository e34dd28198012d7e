/*
 * Disco on the endpoint (DESIGN sections 6 and 7): sealed Ping, Pong and
 * CallMeMaybe on the magicsock's UDP sockets and through relays, and the
 * hole-punching rounds that turn a relayed connection into a direct one.
 *
 * A round, while a remote's connection has no direct path: CallMeMaybe
 * with our candidates (interface and server-reflexive addresses) through
 * the relay, and a Ping to every candidate of the remote at the same time.
 * The remote answers a CallMeMaybe by pinging our candidates, so both NATs
 * see outbound packets and open their mappings. A Pong validates the
 * address it came from: the remote's direct path is selected there and
 * QUIC moves onto it (a direct path always beats the relay).
 *
 * Rounds repeat every KW_PUNCH_EVERY_MS while no direct path is confirmed,
 * at most KW_PUNCH_ROUNDS times per trigger; a new connection or new
 * candidates from a CallMeMaybe trigger again.
 *
 * A selected direct path is watched: when nothing arrived on it for
 * KW_DIRECT_QUIET_MS it is pinged every second, and after KW_DIRECT_DEAD_MS
 * of silence the remote falls back to its relay (the QUIC connection is
 * untouched) and hole punching starts over.
 */
#include "io/internal.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/disco.h"

#define KW_PUNCH_EVERY_MS 1000
#define KW_PUNCH_ROUNDS 10
/* A selected direct path silent this long gets liveness Pings... */
#define KW_DIRECT_QUIET_MS 2000
#define KW_DIRECT_PING_EVERY_MS 1000
/* ...and is given up this long after its last packet, when a relay can
 * carry the connection instead (then hole punching starts again). */
#define KW_DIRECT_DEAD_MS 5000

static uint64_t unix_ms(void) { return kw__unix_us() / 1000u; }

static bool remote_key(kw_endpoint *ep, kw__remote *r) {
  if (r->disco_key_ok)
    return true;
  if (!r->id_known)
    return false;
  kw__disco_key k;
  if (kw__disco_key_derive(ep->cfg.sk, r->id, &k) != KW_OK)
    return false;
  memcpy(r->disco_key, k.k, sizeof r->disco_key);
  kw__disco_key_wipe(&k);
  r->disco_key_ok = true;
  return true;
}

static kw__remote *remote_by_id(kw_endpoint *ep, const uint8_t id[KW_ID_LEN]) {
  /* prefer a remote that has connections */
  kw__remote *any = NULL;
  for (kw__remote *r = ep->remotes; r; r = r->next) {
    if (!r->id_known || memcmp(r->id, id, KW_ID_LEN) != 0)
      continue;
    if (r->nconns)
      return r;
    any = r;
  }
  return any;
}

static void send_udp(kw_endpoint *ep, const kw_sockaddr *to,
                     const uint8_t *p, size_t n) {
  kw__udp *u = to->family == 4 ? &ep->udp4 : &ep->udp6;
  size_t sent;
  if (u->fd >= 0)
    (void)kw__udp_send(u, to, p, n, 0, &sent);
}

static void send_ping(kw_endpoint *ep, kw__remote *r, const kw_sockaddr *to) {
  kw__disco_msg m;
  memset(&m, 0, sizeof m);
  m.type = KW_DISCO_PING;
  m.ts_ms = unix_ms();
  randombytes_buf(m.tx_id, sizeof m.tx_id);
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n;
  kw__disco_key k;
  memcpy(k.k, r->disco_key, sizeof k.k);
  kw_err e = kw__disco_seal(&k, ep->id, &m, buf, sizeof buf, &n);
  kw__disco_key_wipe(&k);
  if (e != KW_OK)
    return;
  /* remember it: a Pong must answer a Ping we sent, to that address */
  kw__ping_tx *t = &r->pings[r->next_ping++ % KW_REMOTE_PINGS];
  memcpy(t->tx_id, m.tx_id, sizeof t->tx_id);
  t->to = *to;
  t->sent_ns = kw__now(ep);
  t->used = true;
  send_udp(ep, to, buf, n);
}

static void send_call_me_maybe(kw_endpoint *ep, kw__remote *r) {
  if (r->relay < 0)
    return;
  kw_endpoint_addr me;
  if (kw_endpoint_get_addr(ep, &me) != KW_OK)
    return;
  kw__disco_msg m;
  memset(&m, 0, sizeof m);
  m.type = KW_DISCO_CALL_ME_MAYBE;
  m.ts_ms = unix_ms();
  for (size_t i = 0; i < me.n_addrs && m.n_addrs < KW_MAX_DIRECT_ADDRS; i++)
    if (!kw__sockaddr_is_loopback(&me.addrs[i]))
      m.addrs[m.n_addrs++] = me.addrs[i];
  uint8_t buf[KW_DISCO_MAX_LEN];
  size_t n, sent;
  kw__disco_key k;
  memcpy(k.k, r->disco_key, sizeof k.k);
  kw_err e = kw__disco_seal(&k, ep->id, &m, buf, sizeof buf, &n);
  kw__disco_key_wipe(&k);
  if (e == KW_OK)
    (void)kw__relay_send_batch(ep, r->relay, r->id, buf, n, 0, &sent);
}

static void punch_round(kw_endpoint *ep, kw__remote *r) {
  if (!remote_key(ep, r))
    return;
  ep->stats.holepunch_attempts++;
  r->punch_last_ns = kw__now(ep);
  char idb[KW_ID_SHORTLEN + 1];
  kw_id_to_short(r->id, idb, sizeof idb);
  kw__log(ep, KW_LOG_DEBUG, "disco",
          "holepunch.round remote=%s candidates=%zu relay=%d", idb, r->n_paths,
          r->relay);
  send_call_me_maybe(ep, r);
  for (size_t i = 0; i < r->n_paths; i++)
    send_ping(ep, r, &r->paths[i]);
}

void kw__disco_trigger(kw_endpoint *ep, kw__remote *r) {
  if (!r->id_known || r->selected >= 0)
    return;
  r->punch_rounds_left = KW_PUNCH_ROUNDS;
  punch_round(ep, r);
  r->punch_rounds_left--;
}

/* Once a second: another round for every remote still without a direct
 * path and with rounds left. */
static void tick(uv_timer_t *t) {
  kw_endpoint *ep = t->data;
  if (ep->closing)
    return;
  uint64_t now = kw__now(ep);
  const uint64_t ms = 1000000u;
  for (kw__remote *r = ep->remotes; r; r = r->next) {
    if (r->selected >= 0 && r->nconns && r->disco_key_ok) {
      uint64_t quiet = now - r->direct_rx_ns;
      if (quiet > KW_DIRECT_DEAD_MS * ms && r->relay >= 0) {
        char idb[KW_ID_SHORTLEN + 1], a[KW_SOCKADDR_STRLEN];
        kw_id_to_short(r->id, idb, sizeof idb);
        kw_sockaddr_format(&r->paths[r->selected], a, sizeof a);
        kw__log(ep, KW_LOG_INFO, "disco",
                "path.direct_lost remote=%s addr=%s silent_ms=%llu", idb, a,
                (unsigned long long)(quiet / ms));
        r->selected = -1;
        r->relay_selected = true;
        kw__remote_path_changed(r);
        kw__disco_trigger(ep, r);
      } else if (quiet > KW_DIRECT_QUIET_MS * ms &&
                 now - r->direct_ping_ns > KW_DIRECT_PING_EVERY_MS * ms) {
        r->direct_ping_ns = now;
        send_ping(ep, r, &r->paths[r->selected]);
      }
      continue;
    }
    if (r->selected >= 0 || r->nconns == 0 || r->punch_rounds_left <= 0)
      continue;
    if (now - r->punch_last_ns < (uint64_t)KW_PUNCH_EVERY_MS * 1000000u)
      continue;
    punch_round(ep, r);
    r->punch_rounds_left--;
  }
}

kw_err kw__disco_start(kw_endpoint *ep) {
  kw__disco_replay *rp = calloc(1, sizeof *rp);
  kw__disco_pong_limiter *pl = calloc(1, sizeof *pl);
  if (!rp || !pl || kw__disco_replay_init(rp, 0) != KW_OK) {
    free(rp);
    free(pl);
    return KW_ERR_NOMEM;
  }
  if (kw__disco_pong_limiter_init(pl) != KW_OK) {
    kw__disco_replay_free(rp);
    free(rp);
    free(pl);
    return KW_ERR_NOMEM;
  }
  ep->disco_replay = rp;
  ep->disco_pongs = pl;
  uv_timer_init(&ep->loop, &ep->disco_timer);
  ep->disco_timer.data = ep;
  ep->disco_timer_init = true;
  uv_timer_start(&ep->disco_timer, tick, 250, 250);
  return KW_OK;
}

void kw__disco_stop(kw_endpoint *ep) {
  if (ep->disco_timer_init) {
    uv_timer_stop(&ep->disco_timer);
    uv_close((uv_handle_t *)&ep->disco_timer, NULL);
    ep->disco_timer_init = false;
  }
}

void kw__disco_free(kw_endpoint *ep) {
  if (ep->disco_replay) {
    kw__disco_replay_free(ep->disco_replay);
    free(ep->disco_replay);
    ep->disco_replay = NULL;
  }
  if (ep->disco_pongs) {
    kw__disco_pong_limiter_free(ep->disco_pongs);
    free(ep->disco_pongs);
    ep->disco_pongs = NULL;
  }
}

void kw__disco_input(kw_endpoint *ep, const kw__src *from,
                     const uint8_t *data, size_t len) {
  uint8_t sender[KW_ID_LEN];
  if (kw__disco_peek_sender(data, len, sender) != KW_OK) {
    ep->stats.drops_unknown++;
    return;
  }
  kw__remote *r = remote_by_id(ep, sender);
  if (!r || !remote_key(ep, r)) {
    /* disco only serves remotes we have a connection with */
    ep->stats.drops_unknown++;
    return;
  }
  kw__disco_key k;
  memcpy(k.k, r->disco_key, sizeof k.k);
  kw__disco_msg m;
  kw_err e = kw__disco_open(&k, data, len, &m);
  if (e != KW_OK ||
      !kw__disco_act_via(m.type, from->relay >= 0) ||
      kw__disco_replay_check(ep->disco_replay, sender, &m, unix_ms()) !=
          KW_DISCO_FRESH) {
    kw__disco_key_wipe(&k);
    ep->stats.drops_unknown++;
    return;
  }
  char idb[KW_ID_SHORTLEN + 1];
  kw_id_to_short(sender, idb, sizeof idb);
  switch (m.type) {
  case KW_DISCO_PING: {
    if (!kw__disco_pong_allow(ep->disco_pongs, &from->addr, kw__now(ep)))
      break;
    uint8_t buf[KW_DISCO_MAX_LEN];
    size_t n;
    if (kw__disco_seal_pong(&k, ep->id, len, m.tx_id, &from->addr, unix_ms(),
                            buf, sizeof buf, &n) == KW_OK)
      send_udp(ep, &from->addr, buf, n);
    /* an address the remote pings us from is worth pinging back */
    bool known = false;
    for (size_t i = 0; i < r->n_paths; i++)
      known = known || kw__sockaddr_equal(&r->paths[i], &from->addr);
    if (!known && r->selected < 0) {
      kw__remote_add_path(r, &from->addr);
      send_ping(ep, r, &from->addr);
    }
    break;
  }
  case KW_DISCO_PONG: {
    for (size_t i = 0; i < KW_REMOTE_PINGS; i++) {
      kw__ping_tx *t = &r->pings[i];
      if (!t->used || memcmp(t->tx_id, m.tx_id, sizeof t->tx_id) != 0 ||
          !kw__sockaddr_equal(&t->to, &from->addr))
        continue;
      t->used = false;
      r->direct_rx_ns = kw__now(ep);
      double rtt = (double)(kw__now(ep) - t->sent_ns) / 1e6;
      char a[KW_SOCKADDR_STRLEN];
      kw_sockaddr_format(&from->addr, a, sizeof a);
      kw__log(ep, KW_LOG_INFO, "disco",
              "disco.pong remote=%s addr=%s rtt_ms=%.2f", idb, a, rtt);
      if (kw__remote_confirm_path(r, from)) {
        kw__log(ep, KW_LOG_INFO, "disco", "holepunch.direct remote=%s addr=%s",
                idb, a);
        kw__remote_path_changed(r);
      }
      break;
    }
    break;
  }
  case KW_DISCO_CALL_ME_MAYBE: {
    kw__log(ep, KW_LOG_DEBUG, "disco", "disco.call_me_maybe remote=%s addrs=%zu",
            idb, m.n_addrs);
    if (from->relay >= 0)
      r->relay = from->relay; /* the route it reached us by */
    for (size_t i = 0; i < m.n_addrs; i++)
      kw__remote_add_path(r, &m.addrs[i]);
    if (r->selected < 0) {
      /* the simultaneous open: ping every candidate now */
      ep->stats.holepunch_attempts++;
      for (size_t i = 0; i < r->n_paths; i++)
        send_ping(ep, r, &r->paths[i]);
      r->punch_rounds_left = KW_PUNCH_ROUNDS;
      r->punch_last_ns = kw__now(ep);
    }
    break;
  }
  default:
    break;
  }
  kw__disco_key_wipe(&k);
}
