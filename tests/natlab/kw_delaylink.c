/* SPDX-License-Identifier: MIT */
/* kw_delaylink: a user-space WAN link for the NAT lab.
 *
 * This kernel has no netem, so delay and loss on a lab link come from here.
 * Two TAP devices, each created inside its own network namespace, are joined:
 * every Ethernet frame read from one TAP is written to the other after a
 * fixed delay (per direction), or dropped at random (--loss, seeded).
 *
 *   kw_delaylink --ns-a NS --if-a NAME --ns-b NS --if-b NAME --delay-ms MS
 *                [--delay-ba-ms MS] [--loss PCT] [--seed N] [--queue FRAMES]
 *
 * --delay-ms applies to both directions; --delay-ba-ms overrides b -> a.
 * The TAPs are brought up here; "ready" is printed on stdout once both are.
 * SIGTERM/SIGINT end the program; the TAPs disappear with it. Counters go to
 * stderr at exit.
 *
 * Queueing: one preallocated ring of frame slots per direction. A fixed
 * delay keeps arrival order, so the ring is a FIFO ordered by due time and
 * only its head is ever due. When a ring is full the newest frame (the one
 * just read) is dropped. The link has no rate limit of its own: it forwards
 * as fast as the CPU allows; the ring only has to hold one delay's worth of
 * frames (16384 slots by default: ~1.2 Gbit/s of full-size frames at
 * 160 ms, ~10 Gbit/s at 20 ms).
 *
 * Frames larger than a slot (2048 bytes) cannot come from a TAP at its
 * default 1500-byte MTU; a truncated read is counted and dropped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLOT_BYTES 2048
#define DEFAULT_QUEUE 16384
#define MAX_QUEUE (1u << 20)

struct slot {
  uint64_t due_ns;
  uint32_t len;
};

/* One direction: frames read from `in` wait in the ring, then go to `out`. */
struct dir {
  const char *name;
  int in;
  int out;
  uint64_t delay_ns;
  uint32_t cap; /* slots, a power of two */
  uint32_t head;
  uint32_t count;
  struct slot *slots;
  unsigned char *data; /* cap * SLOT_BYTES */
  int out_blocked;     /* last write said EAGAIN: wait for POLLOUT */
  uint64_t forwarded, lost, full, oversize, write_errors;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: a seeded, reproducible loss pattern */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545f4914f6cdd1du;
}

static int usage(void) {
  fprintf(stderr,
          "usage: kw_delaylink --ns-a NS --if-a NAME --ns-b NS --if-b NAME\n"
          "                    --delay-ms MS [--delay-ba-ms MS] [--loss PCT]\n"
          "                    [--seed N] [--queue FRAMES]\n");
  return 2;
}

/* Enter network namespace `ns` (a name under /var/run/netns). */
static int enter_netns(const char *ns) {
  char path[512];
  int fd, rc;
  snprintf(path, sizeof path, "/var/run/netns/%s", ns);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "kw_delaylink: open %s: %s\n", path, strerror(errno));
    return -1;
  }
  rc = setns(fd, CLONE_NEWNET);
  if (rc != 0)
    fprintf(stderr, "kw_delaylink: setns %s: %s\n", ns, strerror(errno));
  close(fd);
  return rc;
}

/* Create TAP `ifname` in the current namespace and set it up; returns the fd. */
static int open_tap(const char *ifname) {
  struct ifreq ifr;
  int fd, s;
  if (strlen(ifname) >= IFNAMSIZ) {
    fprintf(stderr, "kw_delaylink: interface name too long: %s\n", ifname);
    return -1;
  }
  fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "kw_delaylink: open /dev/net/tun: %s\n", strerror(errno));
    return -1;
  }
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  memcpy(ifr.ifr_name, ifname, strlen(ifname));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fprintf(stderr, "kw_delaylink: TUNSETIFF %s: %s\n", ifname, strerror(errno));
    close(fd);
    return -1;
  }
  s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
    fprintf(stderr, "kw_delaylink: SIOCGIFFLAGS %s: %s\n", ifname, strerror(errno));
    goto fail;
  }
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
    fprintf(stderr, "kw_delaylink: SIOCSIFFLAGS %s: %s\n", ifname, strerror(errno));
    goto fail;
  }
  close(s);
  return fd;
fail:
  if (s >= 0)
    close(s);
  close(fd);
  return -1;
}

static int dir_init(struct dir *d, const char *name, int in, int out, uint64_t delay_ns,
                    uint32_t cap) {
  memset(d, 0, sizeof *d);
  d->name = name;
  d->in = in;
  d->out = out;
  d->delay_ns = delay_ns;
  d->cap = cap;
  d->slots = calloc(cap, sizeof *d->slots);
  d->data = malloc((size_t)cap * SLOT_BYTES);
  if (!d->slots || !d->data) {
    fprintf(stderr, "kw_delaylink: out of memory for %u slots\n", cap);
    return -1;
  }
  return 0;
}

static void dir_free(struct dir *d) {
  free(d->slots);
  free(d->data);
}

/* Read every frame waiting on d->in (until EAGAIN); queue or drop each. */
static int dir_read(struct dir *d, uint64_t now, uint64_t loss_threshold) {
  static unsigned char scratch[SLOT_BYTES];
  for (int budget = 4096; budget > 0; budget--) {
    uint32_t tail = (d->head + d->count) & (d->cap - 1);
    int full = d->count == d->cap;
    unsigned char *buf = full ? scratch : d->data + (size_t)tail * SLOT_BYTES;
    ssize_t n = read(d->in, buf, SLOT_BYTES);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      fprintf(stderr, "kw_delaylink: read (%s): %s\n", d->name, strerror(errno));
      return -1;
    }
    if (n == 0)
      return 0;
    if (full) {
      d->full++; /* the ring is full: drop the newest frame */
      continue;
    }
    if (n >= SLOT_BYTES) {
      d->oversize++;
      continue;
    }
    if (loss_threshold && rng_next() < loss_threshold) {
      d->lost++;
      continue;
    }
    d->slots[tail].due_ns = now + d->delay_ns;
    d->slots[tail].len = (uint32_t)n;
    d->count++;
  }
  return 0;
}

/* Write every due frame at the head of the ring, without blocking. */
static void dir_flush(struct dir *d, uint64_t now) {
  d->out_blocked = 0;
  while (d->count > 0) {
    struct slot *s = &d->slots[d->head];
    if (s->due_ns > now)
      return;
    ssize_t n = write(d->out, d->data + (size_t)d->head * SLOT_BYTES, s->len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      d->out_blocked = 1;
      return;
    }
    if (n < 0)
      d->write_errors++; /* e.g. the other side is down: the frame is lost */
    else
      d->forwarded++;
    d->head = (d->head + 1) & (d->cap - 1);
    d->count--;
  }
}

static void dir_report(const struct dir *d) {
  fprintf(stderr,
          "kw_delaylink %s: forwarded %llu, lost %llu, queue full %llu, oversize %llu, "
          "write errors %llu, queued at exit %u\n",
          d->name, (unsigned long long)d->forwarded, (unsigned long long)d->lost,
          (unsigned long long)d->full, (unsigned long long)d->oversize,
          (unsigned long long)d->write_errors, d->count);
}

static int parse_num(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  const char *ns_a = NULL, *if_a = NULL, *ns_b = NULL, *if_b = NULL;
  double delay_ms = -1, delay_ba_ms = -1, loss = 0, seed = 1, queue = DEFAULT_QUEUE;
  int fd_a = -1, fd_b = -1, rc = 1;
  struct dir ab, ba;
  memset(&ab, 0, sizeof ab);
  memset(&ba, 0, sizeof ba);

  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v)
      return usage();
    i++;
    if (!strcmp(o, "--ns-a"))
      ns_a = v;
    else if (!strcmp(o, "--if-a"))
      if_a = v;
    else if (!strcmp(o, "--ns-b"))
      ns_b = v;
    else if (!strcmp(o, "--if-b"))
      if_b = v;
    else if (!strcmp(o, "--delay-ms")) {
      if (parse_num(v, 0, 60000, &delay_ms))
        return usage();
    } else if (!strcmp(o, "--delay-ba-ms")) {
      if (parse_num(v, 0, 60000, &delay_ba_ms))
        return usage();
    } else if (!strcmp(o, "--loss")) {
      if (parse_num(v, 0, 100, &loss))
        return usage();
    } else if (!strcmp(o, "--seed")) {
      if (parse_num(v, 0, 1e18, &seed))
        return usage();
    } else if (!strcmp(o, "--queue")) {
      if (parse_num(v, 1, MAX_QUEUE, &queue))
        return usage();
    } else
      return usage();
  }
  if (!ns_a || !if_a || !ns_b || !if_b || delay_ms < 0)
    return usage();
  if (delay_ba_ms < 0)
    delay_ba_ms = delay_ms;

  uint32_t cap = 1;
  while (cap < (uint32_t)queue)
    cap <<= 1;
  if (seed != 0)
    rng_state = (uint64_t)seed * 0x9e3779b97f4a7c15u + 1;
  uint64_t loss_threshold = 0;
  if (loss >= 100)
    loss_threshold = UINT64_MAX;
  else if (loss > 0)
    loss_threshold = (uint64_t)(loss / 100.0 * 18446744073709551615.0);

  /* Signals are blocked except while waiting in ppoll: no lost wake-up. */
  sigset_t block, wait_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &wait_mask);
  sigdelset(&wait_mask, SIGTERM);
  sigdelset(&wait_mask, SIGINT);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (enter_netns(ns_a) || (fd_a = open_tap(if_a)) < 0)
    goto out;
  if (enter_netns(ns_b) || (fd_b = open_tap(if_b)) < 0)
    goto out;
  if (dir_init(&ab, "a->b", fd_a, fd_b, (uint64_t)(delay_ms * 1e6), cap) ||
      dir_init(&ba, "b->a", fd_b, fd_a, (uint64_t)(delay_ba_ms * 1e6), cap))
    goto out;

  printf("ready\n");
  fflush(stdout);

  struct dir *dirs[2] = {&ab, &ba};
  while (!stop_requested) {
    struct pollfd pfd[2] = {{.fd = fd_a}, {.fd = fd_b}};
    /* POLLIN on a side's input; POLLOUT on its output while a write blocked */
    pfd[0].events = POLLIN | (ba.out_blocked ? POLLOUT : 0);
    pfd[1].events = POLLIN | (ab.out_blocked ? POLLOUT : 0);

    uint64_t now = now_ns(), next = UINT64_MAX;
    for (int k = 0; k < 2; k++) {
      struct dir *d = dirs[k];
      if (d->count > 0 && !d->out_blocked && d->slots[d->head].due_ns < next)
        next = d->slots[d->head].due_ns;
    }
    struct timespec ts, *tsp = NULL;
    if (next != UINT64_MAX) {
      uint64_t wait = next > now ? next - now : 0;
      ts.tv_sec = (time_t)(wait / 1000000000u);
      ts.tv_nsec = (long)(wait % 1000000000u);
      tsp = &ts;
    }
    int n = ppoll(pfd, 2, tsp, &wait_mask);
    if (n < 0 && errno != EINTR) {
      fprintf(stderr, "kw_delaylink: ppoll: %s\n", strerror(errno));
      goto out;
    }
    now = now_ns();
    if (n > 0) {
      if ((pfd[0].revents & (POLLERR | POLLNVAL)) || (pfd[1].revents & (POLLERR | POLLNVAL))) {
        fprintf(stderr, "kw_delaylink: a TAP device failed\n");
        goto out;
      }
      if ((pfd[0].revents & POLLIN) && dir_read(&ab, now, loss_threshold))
        goto out;
      if ((pfd[1].revents & POLLIN) && dir_read(&ba, now, loss_threshold))
        goto out;
    }
    dir_flush(&ab, now);
    dir_flush(&ba, now);
  }
  rc = 0;
out:
  if (ab.slots)
    dir_report(&ab);
  if (ba.slots)
    dir_report(&ba);
  dir_free(&ab);
  dir_free(&ba);
  if (fd_a >= 0)
    close(fd_a);
  if (fd_b >= 0)
    close(fd_b);
  return rc;
}
