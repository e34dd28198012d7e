/* SPDX-License-Identifier: MIT */
/*
 * The PCP (RFC 6887) client of the port mapper: MAP requests for our IPv4
 * UDP port to the default gateway's port 5351, on a libuv UDP socket of
 * its own, one transaction at a time, retransmitted per RFC 6887 section
 * 8.1.1 a bounded number of times. The codec is core/pcp; the policy
 * (when to map, renew, fall back to UPnP/NAT-PMP) is portmap.c's; what is
 * sent and trusted is docs/protocol/portmap.md. Loop thread only.
 */
#ifndef KW_IO_PCP_CLIENT_H
#define KW_IO_PCP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "keyway.h"

struct kw_endpoint;
typedef struct kw__pcp kw__pcp;

typedef enum kw__pcp_outcome {
  KW__PCP_GRANTED,   /* a mapping is held: external, lifetime_s */
  KW__PCP_REFUSED,   /* a PCP server answered with an error (result) or a
                        grant that cannot be used */
  KW__PCP_NO_SERVER, /* no PCP server: no answer after the last try, the
                        port unreachable, a NAT-PMP-only gateway, another
                        PCP version, no default gateway */
} kw__pcp_outcome;

typedef struct kw__pcp_answer {
  kw__pcp_outcome outcome;
  bool answered;        /* a PCP server answered (whatever it said) */
  int result;           /* its result code; -1 without one */
  kw_sockaddr external; /* GRANTED: the assigned address and port */
  uint32_t lifetime_s;  /* GRANTED: granted; REFUSED: how long it holds */
  bool epoch_reset;     /* the server lost its state since its last answer */
  unsigned tries;       /* requests sent */
  char reason[48];      /* REFUSED / NO_SERVER: "NO_RESOURCES",
                           "no-answer", "natpmp-only", ... */
} kw__pcp_answer;

typedef void (*kw__pcp_cb)(void *arg, const kw__pcp_answer *a);

/* A client for our UDP port `internal_port` (bound to `bind_ip4`, 4
 * bytes, or NULL for the wildcard). Nothing is sent until kw__pcp_map.
 * NULL on allocation failure. */
kw__pcp *kw__pcp_new(struct kw_endpoint *ep, uint16_t internal_port,
                     const uint8_t *bind_ip4, kw__pcp_cb cb, void *arg);
/* Asks for (or renews: same nonce, the held port and address suggested)
 * a UDP mapping of `lifetime_s`; `cb` gets the answer once.
 * KW_ERR_STATE: a request is already out, or closing. */
kw_err kw__pcp_map(kw__pcp *pc, uint32_t lifetime_s);
/* A request is out. */
bool kw__pcp_busy(const kw__pcp *pc);
/* Deletes the mapping held, if any (a request with lifetime 0; the answer
 * is only logged). For a mapping given up while the endpoint runs. */
void kw__pcp_delete(kw__pcp *pc);
/* The network changed: forgets the gateway, the mapping (without deleting
 * it: that gateway may be gone), the nonce and the epoch; a request out
 * is abandoned without its callback. */
void kw__pcp_reset(kw__pcp *pc);
/* What the first request found: false while it is out and its first
 * retransmission time has not passed; then *answered says whether a PCP
 * server answered; *external is the mapping held (family 0: none). */
bool kw__pcp_probe_state(const kw__pcp *pc, bool *answered, int *result,
                         kw_sockaddr *external);
/* Stops: a request out is abandoned (no callback), a mapping held is
 * deleted (one request, its answer awaited at most `wait_ms`), then the
 * socket is closed. The handles are closed when kw__pcp_closed is true. */
void kw__pcp_close(kw__pcp *pc, unsigned wait_ms);
bool kw__pcp_closed(const kw__pcp *pc);
/* After kw__pcp_closed (or if kw__pcp_map was never called). */
void kw__pcp_free(kw__pcp *pc);

#endif
