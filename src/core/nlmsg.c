/* SPDX-License-Identifier: MIT */
#include "core/nlmsg.h"

#include <string.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

unsigned kw__nl_classify(const uint8_t *buf, size_t len) {
  unsigned out = 0;
  size_t off = 0;
  while (off < len) {
    struct nlmsghdr h;
    if (len - off < sizeof h)
      return out | KW_NL_MALFORMED;
    memcpy(&h, buf + off, sizeof h); /* the buffer may be unaligned */
    if (h.nlmsg_len < sizeof h || h.nlmsg_len > len - off)
      return out | KW_NL_MALFORMED;
    const uint8_t *body = buf + off + sizeof h;
    size_t blen = h.nlmsg_len - sizeof h;
    switch (h.nlmsg_type) {
    case RTM_NEWADDR:
    case RTM_DELADDR:
      out |= KW_NL_ADDR;
      break;
    case RTM_NEWLINK:
    case RTM_DELLINK:
      out |= KW_NL_LINK;
      break;
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      struct rtmsg rt;
      if (blen < sizeof rt)
        return out | KW_NL_MALFORMED;
      memcpy(&rt, body, sizeof rt);
      if (rt.rtm_dst_len == 0 && rt.rtm_table == RT_TABLE_MAIN)
        out |= KW_NL_DEFAULT_ROUTE;
      break;
    }
    case NLMSG_ERROR:
    case NLMSG_OVERRUN:
      out |= KW_NL_OVERRUN;
      break;
    default:
      break;
    }
    /* messages are padded to 4 bytes; the last one may end unpadded */
    size_t step = NLMSG_ALIGN(h.nlmsg_len);
    if (step > len - off)
      break;
    off += step;
  }
  return out;
}
