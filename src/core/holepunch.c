/* SPDX-License-Identifier: MIT */
/* Hole-punching scheduler (see holepunch.h). */
#include <string.h>

#include "core/holepunch.h"

void kw__holepunch_init(kw__holepunch *hp) {
  if (!hp)
    return;
  memset(hp, 0, sizeof(*hp));
  hp->next_upgrade = KW_HP_NEVER;
  hp->recover_at = KW_HP_NEVER;
}

/* Time never goes backwards here. */
static uint64_t clamp(kw__holepunch *hp, uint64_t now) {
  if (now < hp->now)
    now = hp->now;
  hp->now = now;
  return now;
}

static void want(kw__holepunch *hp, uint64_t now, bool fresh) {
  if (fresh)
    hp->fresh = true;
  if (hp->n_conns == 0)
    return; /* remembered: the next connection starts a round */
  uint64_t at = now;
  if (!hp->fresh && hp->have_last && now - hp->last < KW_HP_MIN_INTERVAL_NS)
    at = hp->last + KW_HP_MIN_INTERVAL_NS;
  if (!hp->pending || at < hp->due) {
    hp->pending = true;
    hp->due = at;
  }
}

void kw__holepunch_conn_added(kw__holepunch *hp, uint64_t now) {
  if (!hp)
    return;
  now = clamp(hp, now);
  hp->n_conns++;
  want(hp, now, false);
}

void kw__holepunch_conn_removed(kw__holepunch *hp, uint64_t now) {
  if (!hp)
    return;
  clamp(hp, now);
  if (hp->n_conns > 0)
    hp->n_conns--;
  if (hp->n_conns == 0) {
    hp->pending = false;
    hp->next_upgrade = KW_HP_NEVER;
    kw__holepunch_direct_again(hp); /* nothing left to recover */
  }
}

void kw__holepunch_local_candidates(kw__holepunch *hp, uint64_t now) {
  if (hp)
    want(hp, clamp(hp, now), true);
}

void kw__holepunch_remote_candidates(kw__holepunch *hp, uint64_t now) {
  if (hp)
    want(hp, clamp(hp, now), true);
}

void kw__holepunch_network_change(kw__holepunch *hp, uint64_t now) {
  if (hp)
    want(hp, clamp(hp, now), true);
}

void kw__holepunch_path_lost(kw__holepunch *hp, uint64_t now) {
  if (!hp)
    return;
  now = clamp(hp, now);
  want(hp, now, true);
  if (hp->n_conns == 0)
    return;
  hp->recover_left = KW_HP_RECOVER_ROUNDS;
  hp->recover_step = KW_HP_RECOVER_FIRST_NS;
  hp->recover_at = now + KW_HP_RECOVER_FIRST_NS;
}

void kw__holepunch_direct_again(kw__holepunch *hp) {
  if (!hp)
    return;
  hp->recover_left = 0;
  hp->recover_at = KW_HP_NEVER;
}

void kw__holepunch_round_failed(kw__holepunch *hp, uint64_t now) {
  if (!hp)
    return;
  now = clamp(hp, now);
  if (hp->n_conns == 0)
    return;
  uint64_t at = now + KW_HP_RETRY_NS;
  if (!hp->pending || at < hp->due) {
    hp->pending = true;
    hp->due = at;
  }
}

void kw__holepunch_set_good_direct(kw__holepunch *hp, bool good) {
  if (hp)
    hp->good_direct = good;
}

uint64_t kw__holepunch_next_deadline(const kw__holepunch *hp) {
  if (!hp || hp->n_conns == 0)
    return KW_HP_NEVER;
  uint64_t d = hp->pending ? hp->due : KW_HP_NEVER;
  if (hp->next_upgrade < d)
    d = hp->next_upgrade;
  if (hp->recover_left > 0 && hp->recover_at < d)
    d = hp->recover_at;
  return d;
}

bool kw__holepunch_poll(kw__holepunch *hp, uint64_t now) {
  if (!hp)
    return false;
  now = clamp(hp, now);
  if (hp->n_conns == 0)
    return false;
  bool run = false;
  if (hp->recover_left > 0 && now >= hp->recover_at) {
    run = true; /* a recovery round (a pending trigger is served by it) */
    hp->recover_left--;
    hp->recover_step *= 2;
    hp->recover_at =
        hp->recover_left > 0 ? now + hp->recover_step : KW_HP_NEVER;
  } else if (hp->pending && now >= hp->due) {
    run = true;
  } else if (hp->next_upgrade != KW_HP_NEVER && now >= hp->next_upgrade) {
    if (hp->good_direct)
      hp->next_upgrade = now + KW_HP_UPGRADE_NS;
    else
      run = true;
  }
  if (!run)
    return false;
  hp->have_last = true;
  hp->last = now;
  hp->pending = false;
  hp->fresh = false;
  hp->next_upgrade = now + KW_HP_UPGRADE_NS;
  hp->rounds++;
  return true;
}

bool kw__holepunch_answer(kw__holepunch *hp, uint64_t now) {
  if (!hp)
    return false;
  now = clamp(hp, now);
  /* no connection counted yet is no reason to stay silent: the remote's
   * CallMeMaybe can arrive before our side of the handshake is done, and
   * its simultaneous open is now; nor is a round of ours just before (it
   * may have pinged before the remote's NAT was open) */
  if (hp->have_answer && now - hp->last_answer < KW_HP_ANSWER_MIN_NS)
    return false;
  hp->have_answer = true;
  hp->last_answer = now;
  return true;
}

/* ---- token buckets --------------------------------------------------------- */

#define NS_PER_S 1000000000ull

void kw__tbucket_init(kw__tbucket *b, uint64_t burst, uint64_t rate) {
  if (!b)
    return;
  memset(b, 0, sizeof(*b));
  /* keep level (burst x 1e9) and the refill product within 64 bits */
  if (burst > UINT64_MAX / NS_PER_S / 2)
    burst = UINT64_MAX / NS_PER_S / 2;
  if (rate > burst * 1000u)
    rate = burst * 1000u;
  b->burst = burst;
  b->rate = rate;
  b->level = burst * NS_PER_S;
}

static void refill(kw__tbucket *b, uint64_t now) {
  if (!b->started) {
    b->started = true;
    b->last = now;
    return;
  }
  if (now <= b->last)
    return; /* time never goes backwards here */
  uint64_t cap = b->burst * NS_PER_S;
  uint64_t dt = now - b->last;
  b->last = now;
  if (b->level >= cap || b->rate == 0)
    return;
  /* dt * rate could overflow: past the time to fill up it is full anyway */
  uint64_t to_full = (cap - b->level + b->rate - 1) / b->rate;
  if (dt >= to_full) {
    b->level = cap;
    return;
  }
  b->level += dt * b->rate;
  if (b->level > cap)
    b->level = cap;
}

uint64_t kw__tbucket_avail(kw__tbucket *b, uint64_t now) {
  if (!b)
    return 0;
  refill(b, now);
  return b->level / NS_PER_S;
}

bool kw__tbucket_take(kw__tbucket *b, uint64_t now, uint64_t n) {
  if (!b)
    return false;
  refill(b, now);
  if (n > b->burst || b->level < n * NS_PER_S)
    return false;
  b->level -= n * NS_PER_S;
  return true;
}

void kw__probe_budget_init_remote(kw__probe_budget *b) {
  if (!b)
    return;
  kw__tbucket_init(&b->pkts, KW_PROBE_REMOTE_BURST_PKTS,
                   KW_PROBE_REMOTE_PKTS_S);
  kw__tbucket_init(&b->bytes, KW_PROBE_REMOTE_BURST_BYTES,
                   KW_PROBE_REMOTE_BYTES_S);
  b->refused = 0;
}

void kw__probe_budget_init_endpoint(kw__probe_budget *b) {
  if (!b)
    return;
  kw__tbucket_init(&b->pkts, KW_PROBE_EP_BURST_PKTS, KW_PROBE_EP_PKTS_S);
  kw__tbucket_init(&b->bytes, KW_PROBE_EP_BURST_BYTES, KW_PROBE_EP_BYTES_S);
  b->refused = 0;
}

static bool budget_room(kw__probe_budget *b, uint64_t now, size_t bytes) {
  return kw__tbucket_avail(&b->pkts, now) >= 1 &&
         kw__tbucket_avail(&b->bytes, now) >= bytes;
}

bool kw__probe_allow(kw__probe_budget *remote, kw__probe_budget *ep,
                     uint64_t now, size_t bytes) {
  if (!remote)
    return false;
  if (!budget_room(remote, now, bytes) || (ep && !budget_room(ep, now, bytes))) {
    remote->refused++;
    if (ep)
      ep->refused++;
    return false;
  }
  (void)kw__tbucket_take(&remote->pkts, now, 1);
  (void)kw__tbucket_take(&remote->bytes, now, bytes);
  if (ep) {
    (void)kw__tbucket_take(&ep->pkts, now, 1);
    (void)kw__tbucket_take(&ep->bytes, now, bytes);
  }
  return true;
}
