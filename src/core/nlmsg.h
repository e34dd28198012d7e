/* SPDX-License-Identifier: MIT */
/*
 * Classifies a batch of rtnetlink notifications (Linux NETLINK_ROUTE) for
 * the network change monitor, sans-IO: the io layer reads the socket and
 * passes the bytes here. Only what decides "re-gather candidates?" is
 * looked at:
 *  - RTM_NEWADDR / RTM_DELADDR              -> KW_NL_ADDR
 *  - RTM_NEWROUTE / RTM_DELROUTE of a default route (destination length
 *    0) in the main table                    -> KW_NL_DEFAULT_ROUTE
 *  - RTM_NEWLINK / RTM_DELLINK               -> KW_NL_LINK
 * Truncated or malformed messages end the walk (what came before them
 * counts) and set KW_NL_MALFORMED; NLMSG_ERROR and NLMSG_OVERRUN set
 * KW_NL_OVERRUN (the caller then assumes anything may have changed).
 */
#ifndef KW_CORE_NLMSG_H
#define KW_CORE_NLMSG_H

#include <stddef.h>
#include <stdint.h>

#define KW_NL_ADDR 0x01u
#define KW_NL_DEFAULT_ROUTE 0x02u
#define KW_NL_LINK 0x04u
#define KW_NL_OVERRUN 0x08u
#define KW_NL_MALFORMED 0x10u

/* Returns the KW_NL_* bits of the messages in buf[0..len). */
unsigned kw__nl_classify(const uint8_t *buf, size_t len);

#endif /* KW_CORE_NLMSG_H */
