/* SPDX-License-Identifier: MIT */
/*
 * UDP sockets on Linux: one non-blocking socket per address family
 * (IPv6 with IPV6_V6ONLY), recvmmsg with UDP_GRO, sendmsg with UDP_SEGMENT
 * (GSO). Each feature is probed at open time and falls back cleanly where
 * the kernel lacks it.
 */
#include "net/udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/osaddr.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

struct kw__udp {
  int fd;
  int family; /* AF_INET or AF_INET6 */
  bool gso;   /* UDP_SEGMENT works */
  bool gro;   /* UDP_GRO enabled */
  kw_sockaddr bound;
  uint8_t *rxbuf; /* KW_RX_BATCH * KW_RX_BUFSZ, allocated on first read */
};

static kw_err udp_open(kw__udp *u, const kw_sockaddr *bind_to, bool big) {
  int fam = bind_to->family == 4 ? AF_INET : AF_INET6;
  u->fd = -1;
  u->family = fam;
  int fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fam == AF_INET6 ? KW_ERR_UNSUPPORTED : KW_ERR_IO;
  int one = 1;
  if (fam == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    close(fd);
    return KW_ERR_IO;
  }
  u->fd = fd;
  if (big)
    kw__udp_grow_bufs(u);
  u->fd = -1;
  struct sockaddr_storage ss;
  socklen_t sl;
  kw__sockaddr_to_os(bind_to, &ss, &sl);
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
    close(fd);
    return KW_ERR_ADDR;
  }
  sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
    close(fd);
    return KW_ERR_IO;
  }
  kw__sockaddr_from_os((struct sockaddr *)&ss, &u->bound);
  /* Path MTU discovery is QUIC's (ngtcp2's probes, RFC 9000 section 14):
   * the kernel sets DF and never fragments, and sends larger than the
   * interface's MTU fail at once instead of leaving as IP fragments that
   * would let a probe succeed on a path that cannot carry it whole. */
  int pmtu = bind_to->family == 4 ? IP_PMTUDISC_PROBE : IPV6_PMTUDISC_PROBE;
  if (bind_to->family == 4)
    (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
  else
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof pmtu);
  /* GSO: the option is per-call (cmsg); probe that the kernel knows it. */
  int seg = 0;
  socklen_t segl = sizeof seg;
  u->gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, &segl) == 0;
  u->gro = big && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  u->fd = fd;
  return KW_OK;
}

static kw_err udp_new(const kw_sockaddr *bind_to, bool big, kw__udp **out) {
  *out = NULL;
  kw__udp *u = calloc(1, sizeof *u);
  if (!u)
    return KW_ERR_NOMEM;
  kw_err e = udp_open(u, bind_to, big);
  if (e != KW_OK) {
    free(u);
    return e;
  }
  *out = u;
  return KW_OK;
}

kw_err kw__udp_open(const kw_sockaddr *bind_to, kw__udp **out) {
  return udp_new(bind_to, true, out);
}

kw_err kw__udp_open_small(const kw_sockaddr *bind_to, kw__udp **out) {
  return udp_new(bind_to, false, out);
}

int kw__udp_fd(const kw__udp *u) {
  return u->fd;
}

const kw_sockaddr *kw__udp_bound(const kw__udp *u) {
  return &u->bound;
}

bool kw__udp_gso(const kw__udp *u) {
  return u->gso;
}

bool kw__udp_gro(const kw__udp *u) {
  return u->gro;
}

void kw__udp_grow_bufs(kw__udp *u) {
  /* Large buffers carry bursts at line rate; the *FORCE variants work as
   * root and fall back to the sysctl-capped ones otherwise. */
  int bufsz = 8 << 20;
  if (u->fd < 0)
    return;
  if (setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof bufsz) != 0)
    (void)setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
  if (setsockopt(u->fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof bufsz) != 0)
    (void)setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
}

int kw__udp_recv_one(kw__udp *u, uint8_t *buf, size_t cap, kw_sockaddr *from,
                     size_t *len) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  ssize_t n;
  do {
    n = recvfrom(u->fd, buf, cap, 0, (struct sockaddr *)&ss, &sl);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
  kw__sockaddr_from_os((struct sockaddr *)&ss, from);
  *len = (size_t)n;
  return 1;
}

void kw__udp_close(kw__udp *u) {
  if (!u)
    return;
  if (u->fd >= 0)
    close(u->fd);
  free(u->rxbuf);
  free(u);
}

static kw_err send_one(kw__udp *u, const struct sockaddr_storage *ss,
                       socklen_t sl, const uint8_t *data, size_t len,
                       size_t seg) {
  struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
  struct msghdr mh = {0};
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl;
  mh.msg_name = (void *)ss;
  mh.msg_namelen = sl;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (seg && seg < len) {
    memset(&ctl, 0, sizeof ctl);
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t s = (uint16_t)seg;
    memcpy(CMSG_DATA(cm), &s, sizeof s);
  }
  for (;;) {
    ssize_t n = sendmsg(u->fd, &mh, 0);
    if (n >= 0)
      return KW_OK;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
      return KW_ERR_AGAIN;
    if (seg && seg < len && (errno == EIO || errno == EINVAL)) {
      /* The device cannot segment (no checksum offload): stop using GSO. */
      u->gso = false;
      return KW_ERR_UNSUPPORTED;
    }
    return KW_ERR_IO;
  }
}

kw_err kw__udp_send(kw__udp *u, const kw_sockaddr *to, const uint8_t *data,
                    size_t len, size_t seg, size_t *sent_segs) {
  struct sockaddr_storage ss;
  socklen_t sl;
  kw__sockaddr_to_os(to, &ss, &sl);
  *sent_segs = 0;
  size_t nseg = seg ? (len + seg - 1) / seg : 1;
  if (nseg > 1 && u->gso) {
    kw_err e = send_one(u, &ss, sl, data, len, seg);
    if (e == KW_OK) {
      *sent_segs = nseg;
      return KW_OK;
    }
    if (e != KW_ERR_UNSUPPORTED)
      return e;
  }
  if (nseg == 1) {
    kw_err e = send_one(u, &ss, sl, data, len, 0);
    if (e == KW_OK)
      *sent_segs = 1;
    return e;
  }
  /* No GSO: sendmmsg the segments. */
  struct mmsghdr msgs[KW_GSO_MAX_SEGS];
  struct iovec iovs[KW_GSO_MAX_SEGS];
  size_t n = nseg > KW_GSO_MAX_SEGS ? KW_GSO_MAX_SEGS : nseg;
  memset(msgs, 0, sizeof msgs[0] * n);
  for (size_t i = 0; i < n; i++) {
    size_t off = i * seg;
    iovs[i].iov_base = (void *)(data + off);
    iovs[i].iov_len = len - off < seg ? len - off : seg;
    msgs[i].msg_hdr.msg_name = &ss;
    msgs[i].msg_hdr.msg_namelen = sl;
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  size_t done = 0;
  while (done < n) {
    int r = sendmmsg(u->fd, msgs + done, (unsigned)(n - done), 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      *sent_segs = done;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
        return KW_ERR_AGAIN;
      return KW_ERR_IO;
    }
    done += (size_t)r;
  }
  *sent_segs = done;
  return KW_OK;
}

int kw__udp_recv_batch(kw__udp *u,
                       void (*fn)(void *arg, kw__udp *u,
                                  const kw_sockaddr *from, const uint8_t *data,
                                  size_t len),
                       void *arg) {
  if (!u->rxbuf) {
    u->rxbuf = malloc((size_t)KW_RX_BATCH * KW_RX_BUFSZ);
    if (!u->rxbuf)
      return -1;
  }
  struct mmsghdr msgs[KW_RX_BATCH];
  struct iovec iovs[KW_RX_BATCH];
  struct sockaddr_storage names[KW_RX_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl[KW_RX_BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < KW_RX_BATCH; i++) {
    iovs[i].iov_base = u->rxbuf + (size_t)i * KW_RX_BUFSZ;
    iovs[i].iov_len = KW_RX_BUFSZ;
    msgs[i].msg_hdr.msg_name = &names[i];
    msgs[i].msg_hdr.msg_namelen = sizeof names[i];
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = ctl[i].buf;
    msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
  }
  int r;
  do {
    r = recvmmsg(u->fd, msgs, KW_RX_BATCH, 0, NULL);
  } while (r < 0 && errno == EINTR);
  if (r < 0)
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
  int count = 0;
  for (int i = 0; i < r; i++) {
    size_t len = msgs[i].msg_len;
    size_t gso = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm;
         cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
      if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
        int v;
        memcpy(&v, CMSG_DATA(cm), sizeof v);
        gso = (size_t)v;
      }
    }
    kw_sockaddr from;
    kw__sockaddr_from_os((struct sockaddr *)&names[i], &from);
    const uint8_t *p = iovs[i].iov_base;
    if (gso == 0 || gso >= len) {
      fn(arg, u, &from, p, len);
      count++;
      continue;
    }
    for (size_t off = 0; off < len; off += gso) {
      size_t l = len - off < gso ? len - off : gso;
      fn(arg, u, &from, p + off, l);
      count++;
    }
  }
  return count ? count : r;
}
