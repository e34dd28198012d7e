/* SPDX-License-Identifier: MIT */
/*
 * The endpoint's changes, fanned out from one place (docs/ARCHITECTURE.md
 * section 4). A producer says what changed and why; kw__endpoint_changed
 * logs it once ("change what=... why=...") and tells every consumer, in
 * a fixed order. Producers call no consumer themselves.
 *
 *   what              producer                 consumers, in order
 *   network           netmon (addresses, the   STUN (ask again), port
 *                     default route)           mapping (renew), lookup
 *                                              record (republish), LAN
 *                                              (rejoin, announce), disco
 *                                              (every remote: a round)
 *   local candidates  STUN (reflexive address  lookup record (republish),
 *                     changed), port mapping   LAN (announce), disco
 *                     (new external address)   (every remote: punch
 *                                              again with the new ones)
 *   home relay        relay client (chosen or  lookup record (publish at
 *                     replaced)                the new home), LAN
 *                                              (announce), STUN (probe
 *                                              through it)
 */
#ifndef KW_ENDPOINT_CHANGES_H
#define KW_ENDPOINT_CHANGES_H

typedef struct kw_endpoint kw_endpoint;

typedef enum kw__change {
  KW__CHANGE_NETWORK,
  KW__CHANGE_LOCAL_CANDIDATES,
  KW__CHANGE_HOME_RELAY,
} kw__change;

/* Loop thread. `why` names the producer's reason in the log (a short
 * word: "netmon", "reflexive", "portmap", "relay"). Does nothing while the
 * endpoint closes. */
void kw__endpoint_changed(kw_endpoint *ep, kw__change what, const char *why);

#endif
