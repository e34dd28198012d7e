/* SPDX-License-Identifier: MIT */
/* One fan-out point for the endpoint's changes: see changes.h. */
#include "endpoint/changes.h"

#include "endpoint/lan.h"
#include "endpoint/lookup_client.h"
#include "endpoint/portmap.h"
#include "endpoint/endpoint.h"
#include "endpoint/disco_io.h"
#include "endpoint/stun_probe.h"

static const char *change_name(kw__change what) {
  switch (what) {
  case KW__CHANGE_NETWORK:
    return "network";
  case KW__CHANGE_LOCAL_CANDIDATES:
    return "local_candidates";
  case KW__CHANGE_HOME_RELAY:
    return "home_relay";
  }
  return "?";
}

void kw__endpoint_changed(kw_endpoint *ep, kw__change what, const char *why) {
  if (kw__ep_closing(ep))
    return;
  kw__log(ep, KW_LOG_DEBUG, "endpoint", "change what=%s why=%s",
          change_name(what), why ? why : "-");
  switch (what) {
  case KW__CHANGE_NETWORK:
    kw__stun_refresh(ep);
    kw__portmap_network_changed(ep);
    kw__endpoint_home_changed(ep); /* republish our addresses */
    kw__lan_network_changed(ep);   /* rejoin the mDNS groups, announce */
    kw__disco_network_change(ep);
    break;
  case KW__CHANGE_LOCAL_CANDIDATES:
    kw__endpoint_home_changed(ep); /* republish our addresses */
    kw__lan_record_changed(ep);    /* and announce them on the LAN */
    kw__disco_local_candidates(ep);
    break;
  case KW__CHANGE_HOME_RELAY:
    kw__endpoint_home_changed(ep); /* publish at the new home */
    kw__lan_record_changed(ep);    /* the LAN hears the new relay URL */
    kw__stun_start(ep);
    kw__stun_nat_check(ep); /* our NAT's kind, for birthday probing */
    break;
  }
}
