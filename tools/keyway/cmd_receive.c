/* SPDX-License-Identifier: MIT */
/*
 * keyway receive TICKET [-o DIR]: fetches what a `keyway send` offers over
 * keyway/send/1 (xfer.h), presenting the share's capability from the
 * ticket. The receiver is safe against its sender (docs/protocol/send.md,
 * "What the receiver guarantees"):
 *
 * - Every path below -o DIR is opened component by component from a
 *   directory descriptor with O_NOFOLLOW|O_DIRECTORY: a symbolic link is
 *   never followed, so nothing outside DIR is written or chmodded.
 * - Each file is written to a temporary file in DIR (".kwtmp." + 32 hex
 *   digits: fits NAME_MAX whatever the final name), locked with flock while
 *   it is written, hashed as it arrives and renamed into place (renameat,
 *   RENAME_NOREPLACE unless --force) only when its BLAKE2b-256 matches.
 *   The next receive into DIR removes unlocked temporaries of that naming,
 *   which only a receiver killed with -9 leaves.
 * - Modes: at most 0777, masked by the umask (fchmod on what was opened).
 * - Nothing existing is replaced without --force; directories are made as
 *   their files arrive; a receive that fails removes what it created.
 * - A sender that sends nothing for the progress deadline is given up.
 *
 * A progress line (rate, ETA) is drawn when stderr is a terminal; otherwise
 * only the summary line is printed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <uthash.h>

#include "common.h"
#include "xfer.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

typedef enum { R_HEAD, R_MANIFEST, R_DATA, R_HASH, R_DONE } recv_state;

/* What this receive made, to take back if it fails. */
typedef struct made {
  char *path; /* relative to DIR */
  bool dir;
} made;

/* The directories this receive created, by path (for their modes). */
typedef struct dirmade {
  UT_hash_handle hh;
  char path[];
} dirmade;

#define TMP_PREFIX ".kwtmp."
#define TMP_NAME_LEN (sizeof TMP_PREFIX - 1 + 32)

/* The progress deadline: a sender that sends nothing for this long while
 * the connection stays up (keep-alives) is given up. */
#define STALL_S 30.0

static cli *C;
static kw_endpoint_addr target;
static struct {
  kw_stream *s;
  recv_state st;
  uint8_t head[8];
  size_t headlen;
  uint8_t *man;
  size_t manlen, mangot;
  xfer_manifest m;
  size_t idx;
  /* the output directory */
  int dirfd;
  char dir[PATH_MAX]; /* as given, for messages */
  bool made_outdir;
  mode_t umask;
  /* the file being received */
  int fd;
  char tmp[TMP_NAME_LEN + 1];
  int pfd;              /* its destination directory */
  const char *leaf;     /* its name there */
  bool existed;         /* its destination existed (--force) */
  uint64_t off;
  crypto_generichash_state h;
  uint8_t hash[XFER_HASH_LEN];
  size_t hashgot;
  uint64_t received;
  double t0, t_end, last_draw;
  bool tty, bar, drawn;
  bool failed;
  bool summarized;
  uint8_t remote[KW_ID_LEN];
  uint8_t *wbuf; /* file bytes not yet written */
  size_t wlen;
  uint8_t cap[KW_TICKET_TOKEN_MAX];
  size_t caplen;
  made *made;
  size_t nmade, capmade;
  dirmade *dirs;
  /* shared with the watchdog thread (atomics) */
  uint64_t last_ms;
  bool watching;
  bool stalled;
  double stall_s;
} R;

#define WBUF_SIZE (1u << 20)

static uint64_t now_ms(void) { return (uint64_t)(cli_now() * 1000); }

static bool write_all(const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(R.fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      if (w == 0)
        errno = EIO;
      return false;
    }
    p += w;
    n -= (size_t)w;
  }
  return true;
}

static bool flush(void) {
  bool ok = write_all(R.wbuf, R.wlen);
  R.wlen = 0;
  return ok;
}

/* Where the share lands, for messages and the summary: DIR/NAME. */
static void where(const char *rel, char *out, size_t n) {
  if (!C->out_dir) {
    snprintf(out, n, "%s", rel);
    return;
  }
  size_t l = strlen(R.dir);
  while (l > 1 && R.dir[l - 1] == '/')
    l--;
  snprintf(out, n, "%.*s/%s", (int)l, R.dir, rel);
}

static void clear_bar(void) {
  if (R.drawn) {
    fputs("\r\033[K", stderr);
    R.drawn = false;
  }
}

static void progress(void) {
  if (!R.bar)
    return;
  double now = cli_now();
  if (now - R.last_draw < 0.1)
    return;
  R.last_draw = now;
  double secs = now - R.t0;
  double total = (double)R.m.total;
  double frac = total > 0 ? (double)R.received / total : 1;
  int bars = (int)(frac * 30);
  char bar[31];
  for (int i = 0; i < 30; i++)
    bar[i] = i < bars ? '#' : '.';
  bar[30] = 0;
  char rate_s[32] = "", eta_s[32] = "";
  /* a rate, and so an ETA, only once there is something to measure */
  if (secs >= 1.0 && R.received > 0) {
    double rate = (double)R.received / secs;
    snprintf(rate_s, sizeof rate_s, " %7.1f MB/s", rate / 1e6);
    snprintf(eta_s, sizeof eta_s, " ETA %.0fs",
             (total - (double)R.received) / rate);
  }
  fprintf(stderr, "\r\033[K[%s] %5.1f%% %.1f/%.1f MB%s%s", bar, frac * 100,
          (double)R.received / 1e6, total / 1e6, rate_s, eta_s);
  R.drawn = true;
}

/* The summary: "received N bytes in S s (R MB/s) path=KIND to DIR/NAME". */
static void summarize(void) {
  if (R.summarized)
    return;
  R.summarized = true;
  clear_bar();
  char idt[KW_ID_STRLEN + 1], to[PATH_MAX + 300];
  cli_id(R.remote, idt);
  where(R.m.n ? R.m.e[0].path : "", to, sizeof to);
  double secs = R.t_end - R.t0;
  double mbps = secs > 0 ? (double)R.received / secs / 1e6 : 0.0;
  const char *kind =
      kw_path_kind_name(C->path_known ? C->path.kind : KW_PATH_NONE);
  if (C->json) {
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s}", "event", "received",
                          "remote", idt, "bytes", (json_int_t)R.received,
                          "path", kind, "written", to);
    json_object_set_new(o, "seconds", json_real(secs));
    json_object_set_new(o, "mb_per_s", json_real(mbps));
    char *t = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (t)
      fprintf(stderr, "%s\n", t);
    free(t);
    json_decref(o);
  } else if (C->verbosity >= 0) {
    fprintf(stderr, "received %llu bytes in %.2f s (%.1f MB/s) path=%s to %s\n",
            (unsigned long long)R.received, secs, mbps, kind, to);
  }
}

static void exit_stats(cli *c) {
  if (R.st == R_DONE && !R.failed)
    summarize();
  cli_emit_stats(c, 0, R.received);
}

/* Once everything is verified and acknowledged, the sender's end of the
 * stream is a courtesy: a sender that never sends it cannot hold the
 * receiver longer than this. */
#define ACK_GRACE_S 5.0

static void *ack_grace(void *arg) {
  cli *c = arg;
  double until = cli_now() + ACK_GRACE_S;
  while (cli_now() < until) {
    pthread_mutex_lock(&c->mu);
    bool fin = c->finished;
    pthread_mutex_unlock(&c->mu);
    if (fin)
      return NULL;
    usleep(50000);
  }
  cli_done(c, 0);
  return NULL;
}

/* The progress deadline, on its own thread: it only reads atomics and ends
 * the run; main() says why and cleans up once the loop has stopped. */
static void *watchdog(void *arg) {
  cli *c = arg;
  for (;;) {
    usleep(200000);
    pthread_mutex_lock(&c->mu);
    bool fin = c->finished;
    pthread_mutex_unlock(&c->mu);
    if (fin)
      return NULL;
    if (!__atomic_load_n(&R.watching, __ATOMIC_ACQUIRE))
      continue;
    uint64_t last = __atomic_load_n(&R.last_ms, __ATOMIC_ACQUIRE);
    if (now_ms() - last > (uint64_t)(R.stall_s * 1000)) {
      __atomic_store_n(&R.stalled, true, __ATOMIC_RELEASE);
      cli_done(c, 1);
      return NULL;
    }
  }
}

static void fail(kw_err e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Loop thread. Ends the run; main() removes what this receive made. */
static void fail(kw_err e, const char *fmt, ...) {
  if (R.failed)
    return;
  pthread_mutex_lock(&C->mu);
  bool over = C->finished;
  pthread_mutex_unlock(&C->mu);
  if (over)
    return; /* the endpoint closing after the run ended (interrupt, progress
               deadline): main() says why */
  R.failed = true;
  __atomic_store_n(&R.watching, false, __ATOMIC_RELEASE);
  R.wlen = 0;
  clear_bar();
  char msg[4400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cli_fail(C, e, "receive: %s", msg);
  if (R.s)
    kw_stream_reset(R.s, XFER_CODE_FAIL);
  cli_done(C, 1);
}

static bool remember(const char *path, bool dir) {
  if (R.nmade == R.capmade) {
    size_t cap = R.capmade ? R.capmade * 2 : 64;
    made *m = realloc(R.made, cap * sizeof *m);
    if (!m)
      return false;
    R.made = m;
    R.capmade = cap;
  }
  char *p = strdup(path);
  if (!p)
    return false;
  R.made[R.nmade].path = p;
  R.made[R.nmade].dir = dir;
  R.nmade++;
  if (dir) {
    size_t l = strlen(path);
    dirmade *d = malloc(sizeof *d + l + 1);
    if (!d)
      return false;
    memcpy(d->path, path, l + 1);
    HASH_ADD(hh, R.dirs, path, (unsigned)l, d);
  }
  return true;
}

static bool made_dir(const char *path, size_t len) {
  dirmade *d = NULL;
  HASH_FIND(hh, R.dirs, path, (unsigned)len, d);
  return d != NULL;
}

/*
 * Opens the directory DIR/rel[0..len) one component at a time, never
 * following a symbolic link; with `create`, makes what is missing (mode
 * 0700 until the end). A directory that existed before is accepted only
 * with --force. Returns the descriptor, or -1 with *why set.
 */
static int open_dirs(const char *rel, size_t len, bool create,
                     char *why, size_t whylen) {
  int cur = dup(R.dirfd);
  if (cur < 0) {
    snprintf(why, whylen, "%s", strerror(errno));
    return -1;
  }
  size_t start = 0;
  char comp[XFER_MAX_NAME + 1];
  char shown[PATH_MAX + 300];
  for (size_t i = 0; i <= len && len; i++) {
    if (i < len && rel[i] != '/')
      continue;
    size_t cl = i - start;
    memcpy(comp, rel + start, cl);
    comp[cl] = 0;
    char prefix[XFER_MAX_PATH + 1];
    memcpy(prefix, rel, i);
    prefix[i] = 0;
    int fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (mkdirat(cur, comp, 0700) != 0) {
        where(prefix, shown, sizeof shown);
        snprintf(why, whylen, "cannot create directory %s: %s", shown,
                 strerror(errno));
        close(cur);
        return -1;
      }
      if (!remember(prefix, true)) {
        snprintf(why, whylen, "out of memory");
        close(cur);
        return -1;
      }
      fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } else if (fd >= 0 && create && !C->force && !made_dir(prefix, i)) {
      where(prefix, shown, sizeof shown);
      snprintf(why, whylen, "%s already exists (pass --force to write into it)",
               shown);
      close(fd);
      close(cur);
      return -1;
    }
    if (fd < 0) {
      int err = errno;
      where(prefix, shown, sizeof shown);
      if (err == ELOOP || err == ENOTDIR)
        snprintf(why, whylen,
                 "%s is not a directory (a symbolic link is never followed)",
                 shown);
      else
        snprintf(why, whylen, "cannot open directory %s: %s", shown,
                 strerror(err));
      close(cur);
      return -1;
    }
    close(cur);
    cur = fd;
    start = i + 1;
  }
  return cur;
}

/* A temporary file in DIR, locked while it is written (the lock tells the
 * next receive that it is not stale). */
static int make_tmp(void) {
  for (int tries = 0; tries < 8; tries++) {
    uint8_t r[16];
    randombytes_buf(r, sizeof r);
    memcpy(R.tmp, TMP_PREFIX, sizeof TMP_PREFIX - 1);
    sodium_bin2hex(R.tmp + sizeof TMP_PREFIX - 1, 33, r, sizeof r);
    int fd = openat(R.dirfd, R.tmp,
                    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST)
        continue;
      return -1;
    }
    struct stat st;
    if (flock(fd, LOCK_EX) != 0) {
      int err = errno; /* a file system without locks: not ours to use */
      unlinkat(R.dirfd, R.tmp, 0);
      close(fd);
      errno = err;
      return -1;
    }
    /* a cleaner that got there between create and lock unlinked it */
    if (fstat(fd, &st) != 0 || st.st_nlink == 0) {
      close(fd);
      continue;
    }
    return fd;
  }
  errno = EEXIST;
  return -1;
}

/* True for names a receive of this or an older keyway leaves while it
 * writes: ".kwtmp." + 32 hex digits, or ".NAME.kwtmp.XXXXXX". */
static bool is_our_tmp(const char *n) {
  size_t l = strlen(n);
  if (l == TMP_NAME_LEN && !strncmp(n, TMP_PREFIX, sizeof TMP_PREFIX - 1)) {
    for (size_t i = sizeof TMP_PREFIX - 1; i < l; i++)
      if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
        return false;
    return true;
  }
  return n[0] == '.' && l > 14 && !strncmp(n + l - 13, ".kwtmp.", 7);
}

/* Removes the stale temporaries in DIR: ours whose writer is gone (their
 * lock is free). */
static void remove_stale(void) {
  int fd = dup(R.dirfd);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0)
      close(fd);
    return;
  }
  unsigned n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!is_our_tmp(de->d_name))
      continue;
    int t = openat(R.dirfd, de->d_name,
                   O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (t < 0)
      continue;
    if (fstat(t, &st) == 0 && S_ISREG(st.st_mode) &&
        flock(t, LOCK_EX | LOCK_NB) == 0 &&
        unlinkat(R.dirfd, de->d_name, 0) == 0)
      n++;
    close(t);
  }
  closedir(d);
  if (n && C->verbosity > 0)
    cli_info(C, "receive: removed %u stale temporary file%s of an earlier "
                "receive",
             n, n == 1 ? "" : "s");
}

/* Starts the next file; directories are made as their files arrive. */
static void next_entry(void) {
  char why[PATH_MAX + 400];
  while (R.idx < R.m.n) {
    xfer_entry *e = &R.m.e[R.idx];
    if (e->type == 1) {
      R.idx++;
      continue;
    }
    const char *slash = strrchr(e->path, '/');
    size_t plen = slash ? (size_t)(slash - e->path) : 0;
    if (R.pfd >= 0)
      close(R.pfd);
    R.pfd = open_dirs(e->path, plen, true, why, sizeof why);
    if (R.pfd < 0) {
      fail(KW_ERR_IO, "%s", why);
      return;
    }
    R.leaf = slash ? slash + 1 : e->path;
    struct stat st;
    R.existed = fstatat(R.pfd, R.leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (R.existed && !C->force) {
      where(e->path, why, sizeof why);
      fail(KW_ERR_IO, "%s already exists (pass --force to replace it)", why);
      return;
    }
    R.fd = make_tmp();
    if (R.fd < 0) {
      fail(KW_ERR_IO, "cannot create a temporary file in %s: %s", R.dir,
           strerror(errno));
      return;
    }
    R.off = 0;
    crypto_generichash_init(&R.h, NULL, 0, XFER_HASH_LEN);
    R.st = e->size ? R_DATA : R_HASH;
    R.hashgot = 0;
    return;
  }
  if (R.pfd >= 0) {
    close(R.pfd);
    R.pfd = -1;
  }
  /* every file verified: the empty directories, then the modes of what
   * this receive created (deepest first), then tell the sender */
  for (size_t i = 0; i < R.m.n; i++) {
    if (R.m.e[i].type != 1)
      continue;
    int fd = open_dirs(R.m.e[i].path, strlen(R.m.e[i].path), true, why,
                       sizeof why);
    if (fd < 0) {
      fail(KW_ERR_IO, "%s", why);
      return;
    }
    close(fd);
  }
  for (size_t i = R.m.n; i-- > 0;) {
    const xfer_entry *e = &R.m.e[i];
    size_t pl = strlen(e->path);
    if (e->type != 1 || !made_dir(e->path, pl))
      continue; /* the modes of directories that existed stay */
    int fd = open_dirs(e->path, pl, false, why, sizeof why);
    /* at most 0777 under the umask, and u+rwx so that we could finish */
    if (fd < 0 ||
        fchmod(fd, (mode_t)((e->mode & 0777 & ~R.umask) | 0700)) != 0) {
      if (fd >= 0)
        close(fd);
      fail(KW_ERR_IO, "cannot set the mode of %s", e->path);
      return;
    }
    close(fd);
  }
  R.st = R_DONE;
  __atomic_store_n(&R.watching, false, __ATOMIC_RELEASE);
  R.t_end = cli_now();
  uint8_t ok = XFER_ACK_OK;
  kw_stream_write(R.s, &ok, 1, true, NULL);
  pthread_t th;
  if (pthread_create(&th, NULL, ack_grace, C) == 0)
    pthread_detach(th);
}

/* Renames the verified temporary file to its name: never over something
 * that exists unless --force. */
static int place(void) {
  if (C->force)
    return renameat(R.dirfd, R.tmp, R.pfd, R.leaf);
  int rc = renameat2(R.dirfd, R.tmp, R.pfd, R.leaf, RENAME_NOREPLACE);
  if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
    /* a file system without RENAME_NOREPLACE: link fails on EEXIST too */
    rc = linkat(R.dirfd, R.tmp, R.pfd, R.leaf, 0);
    if (rc == 0)
      unlinkat(R.dirfd, R.tmp, 0);
  }
  return rc;
}

static void file_done(void) {
  uint8_t got[XFER_HASH_LEN];
  crypto_generichash_final(&R.h, got, XFER_HASH_LEN);
  xfer_entry *e = &R.m.e[R.idx];
  char shown[PATH_MAX + 300];
  where(e->path, shown, sizeof shown);
  if (sodium_memcmp(got, R.hash, XFER_HASH_LEN) != 0) {
    fail(KW_ERR_PARSE, "integrity check failed for %s (hash mismatch)",
         e->path);
    return;
  }
  /* at most 0777 (never setuid, setgid or sticky), masked by the umask */
  if (fchmod(R.fd, (mode_t)(e->mode & 0777 & ~R.umask)) != 0 ||
      close(R.fd) != 0) {
    R.fd = -1;
    fail(KW_ERR_IO, "cannot finish %s: %s", shown, strerror(errno));
    return;
  }
  R.fd = -1;
  int rc = place();
  if (rc != 0) {
    int err = errno;
    if (err == EEXIST)
      fail(KW_ERR_IO, "%s already exists (pass --force to replace it)",
           shown);
    else
      fail(KW_ERR_IO, "cannot rename into %s: %s", shown, strerror(err));
    return;
  }
  R.tmp[0] = 0;
  if (!R.existed && !remember(e->path, false)) {
    fail(KW_ERR_NOMEM, "out of memory");
    return;
  }
  R.idx++;
  next_entry();
}

/* Checks made once the file list is known, before anything is written:
 * the share's name is free (or --force), and the file system has room. */
static bool preflight(void) {
  const xfer_entry *root = &R.m.e[0];
  char shown[PATH_MAX + 300];
  where(root->path, shown, sizeof shown);
  struct stat st;
  if (!C->force && fstatat(R.dirfd, root->path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    fail(KW_ERR_IO, "%s already exists (pass --force to replace it)", shown);
    return false;
  }
  struct statvfs vf;
  if (fstatvfs(R.dirfd, &vf) == 0 && vf.f_frsize) {
    uint64_t bs = vf.f_frsize, need = 0, inodes = 0;
    for (size_t i = 0; i < R.m.n; i++) {
      uint64_t sz = R.m.e[i].size, add;
      add = sz > UINT64_MAX - bs ? UINT64_MAX : (sz + bs - 1) / bs * bs;
      if (R.m.e[i].type == 1)
        add = bs;
      need = need > UINT64_MAX - add ? UINT64_MAX : need + add; /* saturate */
      inodes++;
    }
    uint64_t avail = (uint64_t)vf.f_bavail * bs;
    if (need > avail) {
      fail(KW_ERR_IO,
           "not enough free space in %s: the share needs %.1f MB, %.1f MB "
           "are free",
           R.dir, (double)need / 1e6, (double)avail / 1e6);
      return false;
    }
    if (vf.f_files && inodes + 1 > (uint64_t)vf.f_favail) {
      fail(KW_ERR_IO,
           "not enough free inodes in %s: the share has %llu entries, %llu "
           "inodes are free",
           R.dir, (unsigned long long)inodes,
           (unsigned long long)vf.f_favail);
      return false;
    }
  }
  return true;
}

static void on_data(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  (void)u;
  if (s != R.s || R.failed)
    return;
  if (n)
    __atomic_store_n(&R.last_ms, now_ms(), __ATOMIC_RELEASE);
  while (n && !R.failed) {
    switch (R.st) {
    case R_HEAD: {
      size_t take = 8 - R.headlen < n ? 8 - R.headlen : n;
      memcpy(R.head + R.headlen, d, take);
      R.headlen += take;
      d += take;
      n -= take;
      if (R.headlen < 8)
        break;
      if (memcmp(R.head, XFER_MAGIC, 4) != 0) {
        fail(KW_ERR_PARSE, "the sender speaks another protocol");
        return;
      }
      R.manlen = (size_t)R.head[4] << 24 | (size_t)R.head[5] << 16 |
                 (size_t)R.head[6] << 8 | R.head[7];
      if (R.manlen > XFER_MAX_MANIFEST) {
        fail(KW_ERR_PARSE, "the file list is too large (%zu bytes, at most "
                           "20 MiB)",
             R.manlen);
        return;
      }
      if (!(R.man = malloc(R.manlen + 1))) {
        fail(KW_ERR_NOMEM, "out of memory");
        return;
      }
      R.st = R_MANIFEST;
      break;
    }
    case R_MANIFEST: {
      size_t take = R.manlen - R.mangot < n ? R.manlen - R.mangot : n;
      memcpy(R.man + R.mangot, d, take);
      R.mangot += take;
      d += take;
      n -= take;
      /* the count is refused as soon as it is known */
      if (R.mangot >= 4 && R.mangot - take < 4 &&
          ((uint32_t)R.man[0] << 24 | (uint32_t)R.man[1] << 16 |
           (uint32_t)R.man[2] << 8 | R.man[3]) > XFER_MAX_ENTRIES) {
        fail(KW_ERR_PARSE, "bad file list: too many entries (more than "
                           "200,000)");
        return;
      }
      if (R.mangot < R.manlen)
        break;
      const char *why;
      if (xfer_decode(R.man, R.manlen, &R.m, &why) != 0) {
        fail(KW_ERR_PARSE, "bad file list: %s", why);
        return;
      }
      free(R.man);
      R.man = NULL;
      if (R.m.n == 0) {
        fail(KW_ERR_PARSE, "bad file list: no entries");
        return;
      }
      if (!preflight())
        return;
      R.t0 = cli_now();
      next_entry();
      break;
    }
    case R_DATA: {
      xfer_entry *e = &R.m.e[R.idx];
      uint64_t left = e->size - R.off;
      size_t take = left < n ? (size_t)left : n;
      crypto_generichash_update(&R.h, d, take);
      /* gather packet-sized pieces into large writes */
      if (R.wlen + take > WBUF_SIZE && !flush()) {
        fail(KW_ERR_IO, "cannot write %s: %s", e->path, strerror(errno));
        return;
      }
      if (take >= WBUF_SIZE) {
        if (!write_all(d, take)) {
          fail(KW_ERR_IO, "cannot write %s: %s", e->path, strerror(errno));
          return;
        }
      } else {
        memcpy(R.wbuf + R.wlen, d, take);
        R.wlen += take;
      }
      if (R.off + take == e->size && !flush()) {
        fail(KW_ERR_IO, "cannot write %s: %s", e->path, strerror(errno));
        return;
      }
      R.off += take;
      R.received += take;
      d += take;
      n -= take;
      progress();
      if (R.off == e->size)
        R.st = R_HASH;
      break;
    }
    case R_HASH: {
      size_t take = XFER_HASH_LEN - R.hashgot < n ? XFER_HASH_LEN - R.hashgot
                                                  : n;
      memcpy(R.hash + R.hashgot, d, take);
      R.hashgot += take;
      d += take;
      n -= take;
      if (R.hashgot == XFER_HASH_LEN)
        file_done();
      break;
    }
    case R_DONE:
      fail(KW_ERR_PARSE, "the sender sent more than it announced");
      return;
    }
  }
  /* a zero-size last file has no data bytes: its hash may complete here */
  if (fin && R.st != R_DONE && !R.failed)
    fail(KW_ERR_PARSE, "the sender stopped early");
}

/* What a sender's application code means (docs/protocol/send.md). */
static const char *code_meaning(uint64_t code) {
  switch (code) {
  case XFER_CODE_DENIED:
    return R.caplen ? "this ticket is not valid for the share (it is from "
                      "another or an earlier `keyway send`)"
                    : "this ticket is not valid for the share (it carries no "
                      "capability, as a bare id: use the ticket `keyway "
                      "send` printed)";
  case XFER_CODE_STOPPED:
    return "the sender stopped (interrupted)";
  case XFER_CODE_BUSY:
    return "the sender refused: too many requests at once from this peer";
  case XFER_CODE_FAIL:
    return "the sender ended the transfer with an error (a file it offers "
           "cannot be read or changed while being sent, or it is an older "
           "keyway that does not know share capabilities)";
  default:
    return NULL;
  }
}

static void on_closed(kw_stream *s, kw_err err, uint64_t code, void *u) {
  (void)u;
  if (s != R.s)
    return;
  R.s = NULL;
  if (R.failed)
    return;
  if (R.st != R_DONE) {
    const char *m = err == KW_ERR_RESET ? code_meaning(code) : NULL;
    if (m)
      fail(KW_ERR_PEER, "%s", m);
    else if (err == KW_ERR_RESET)
      fail(KW_ERR_PEER, "the sender cut the transfer off (code %llu)",
           (unsigned long long)code);
    else
      fail(err ? err : KW_ERR_PEER, "the transfer was cut off");
    return;
  }
  /* every file verified and in place: how the stream ended no longer
   * matters */
  summarize();
  kw_conn_close(kw_stream_conn(s), 0, "done");
  cli_done(C, 0);
}

static void on_conn_closed(kw_conn *conn, kw_err err, uint64_t code,
                           void *u) {
  (void)conn;
  (void)u;
  R.s = NULL; /* its stream_closed follows: nothing more to do there */
  if (R.failed)
    return;
  if (R.st != R_DONE) {
    const char *m = err == KW_ERR_APP_CLOSED ? code_meaning(code) : NULL;
    if (m)
      fail(KW_ERR_PEER, "%s", m);
    else if (err == KW_ERR_APP_CLOSED)
      fail(KW_ERR_PEER, "the sender closed the connection before the "
                        "transfer ended%s",
           code ? " (with an unknown code)" : "");
    else if (err == KW_OK)
      fail(KW_ERR_CLOSED, "the connection was closed before the transfer "
                          "ended");
    else
      fail(err, "connection lost: %s", kw_strerror(err));
    return;
  }
  summarize();
  cli_done(C, 0);
}

static bool show_events(void) {
  return C->json || C->verbosity > 0 || (R.tty && C->verbosity >= 0);
}

static void on_path(kw_conn *conn, const kw_path_info *p, void *u) {
  (void)u;
  if (show_events()) {
    bool drawn = R.drawn;
    clear_bar(); /* the line goes above the progress bar */
    cli_emit_path(C, conn, p);
    if (drawn) {
      R.last_draw = 0;
      progress();
    }
  } else {
    pthread_mutex_lock(&C->mu);
    C->path = *p; /* for the summary */
    C->path_known = true;
    pthread_mutex_unlock(&C->mu);
  }
}

static void connected(kw_conn *conn, kw_err err, void *arg) {
  (void)arg;
  if (err != KW_OK) {
    cli_fail_connect(C, target.id, CLI_ALPN_SEND, err);
    cli_done(C, 1);
    return;
  }
  kw_conn_remote_id(conn, R.remote);
  kw_path_info pi;
  kw_conn_path(conn, &pi);
  if (show_events())
    cli_emit_connected(C, conn);
  on_path(conn, &pi, NULL);
  if (kw_conn_open_stream(conn, true, &R.s) != KW_OK) {
    cli_fail(C, KW_ERR_STREAM_LIMIT, "receive: cannot open a stream");
    cli_done(C, 1);
    return;
  }
  /* the request, with the share's capability from the ticket */
  uint8_t req[6 + KW_TICKET_TOKEN_MAX] = {'K', 'W', 'S', '1',
                                          XFER_OP_GET_CAP, (uint8_t)R.caplen};
  memcpy(req + 6, R.cap, R.caplen);
  kw_stream_write(R.s, req, 6 + R.caplen, false, NULL);
  sodium_memzero(req, sizeof req);
  __atomic_store_n(&R.last_ms, now_ms(), __ATOMIC_RELEASE);
  __atomic_store_n(&R.watching, true, __ATOMIC_RELEASE);
}

static void dial(kw_endpoint *ep, void *arg) {
  (void)arg;
  kw_err e = kw_endpoint_connect(ep, &target, CLI_ALPN_SEND, connected, NULL);
  if (e != KW_OK) {
    cli_fail(C, e, "receive: %s",
             e == KW_ERR_NO_PATH ? "the target has no address and no relay "
                                   "to resolve it (pass --relay)"
                                 : kw_strerror(e));
    cli_done(C, 1);
  }
}

/* -o DIR, before connecting: opened (created when missing, its parent must
 * exist), a directory, writable. Returns 0 or an exit code. */
static int open_out(cli *c) {
  snprintf(R.dir, sizeof R.dir, "%s", c->out_dir ? c->out_dir : ".");
  R.dirfd = open(R.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (R.dirfd < 0 && errno == ENOENT) {
    if (mkdir(R.dir, 0777) != 0)
      return cli_fail(c, KW_ERR_IO, "receive: cannot create -o %s: %s%s",
                      R.dir, strerror(errno),
                      errno == ENOENT ? " (its parent directory is missing)"
                                      : "");
    R.made_outdir = true;
    R.dirfd = open(R.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  if (R.dirfd < 0)
    return cli_fail(c, KW_ERR_IO, "receive: -o %s: %s", R.dir,
                    strerror(errno));
  if (faccessat(R.dirfd, ".", W_OK | X_OK, AT_EACCESS) != 0)
    return cli_fail(c, KW_ERR_IO, "receive: cannot write into %s: %s", R.dir,
                    strerror(errno));
  return 0;
}

/* After a failed or interrupted receive (the loop has stopped): the
 * temporary file and everything this receive created go, newest first. */
static void roll_back(void) {
  if (R.fd >= 0) {
    close(R.fd);
    R.fd = -1;
  }
  if (R.tmp[0] && R.dirfd >= 0)
    unlinkat(R.dirfd, R.tmp, 0);
  R.tmp[0] = 0;
  char why[PATH_MAX + 400];
  for (size_t i = R.nmade; i-- > 0;) {
    const char *p = R.made[i].path;
    const char *slash = strrchr(p, '/');
    int pfd = open_dirs(p, slash ? (size_t)(slash - p) : 0, false, why,
                        sizeof why);
    if (pfd < 0)
      continue;
    unlinkat(pfd, slash ? slash + 1 : p, R.made[i].dir ? AT_REMOVEDIR : 0);
    close(pfd);
  }
  if (R.made_outdir) {
    close(R.dirfd);
    R.dirfd = -1;
    rmdir(R.dir); /* only if empty */
  }
}

int cmd_receive(cli *c) {
  if (c->npos != 1)
    return cli_usage_error(c, "receive takes one TICKET");
  C = c;
  c->exit_hook = exit_stats;
  R.fd = R.pfd = R.dirfd = -1;
  R.umask = umask(0);
  umask(R.umask);
  R.tty = isatty(2);
  R.bar = R.tty && !c->json && c->verbosity >= 0 && !c->no_progress;
  R.stall_s = STALL_S;
  const char *st = getenv("KEYWAY_STALL_TIMEOUT"); /* for tests */
  if (st && atof(st) > 0)
    R.stall_s = atof(st);
  int rc = cli_parse_target(c, c->pos[0], &target);
  if (rc)
    return rc;
  if (strncasecmp(c->pos[0], "kw1", 3) == 0)
    kw_ticket_decode_token(c->pos[0], &target, R.cap, &R.caplen, NULL);
  R.wbuf = malloc(WBUF_SIZE);
  if (!R.wbuf)
    return cli_fail(c, KW_ERR_NOMEM, "receive: out of memory");
  rc = open_out(c);
  if (rc) {
    roll_back();
    free(R.wbuf);
    return rc;
  }
  remove_stale();
  kw_callbacks cbs = {0};
  cbs.stream_data = on_data;
  cbs.stream_closed = on_closed;
  cbs.conn_closed = on_conn_closed;
  cbs.path_changed = on_path;
  rc = cli_start_endpoint(c, NULL, &cbs, NULL);
  if (rc == 0) {
    pthread_t wd;
    bool wd_ok = pthread_create(&wd, NULL, watchdog, c) == 0;
    cli_post(c, dial, NULL);
    rc = cli_wait(c);
    if (wd_ok)
      pthread_join(wd, NULL);
    if (__atomic_load_n(&R.stalled, __ATOMIC_ACQUIRE) && !R.failed &&
        R.st != R_DONE) {
      clear_bar();
      cli_fail(c, KW_ERR_TIMEOUT,
               "receive: the sender stopped sending (no data for %.0f s)",
               R.stall_s);
      rc = 1;
    }
  }
  bool ok = rc == 0 && R.st == R_DONE && !R.failed;
  if (!ok) {
    clear_bar();
    roll_back();
    if (rc == 0)
      rc = 1;
  }
  if (R.pfd >= 0)
    close(R.pfd);
  if (R.dirfd >= 0)
    close(R.dirfd);
  for (size_t i = 0; i < R.nmade; i++)
    free(R.made[i].path);
  free(R.made);
  dirmade *d, *tmp;
  HASH_ITER(hh, R.dirs, d, tmp) {
    HASH_DEL(R.dirs, d);
    free(d);
  }
  sodium_memzero(R.cap, sizeof R.cap);
  free(R.man);
  free(R.wbuf);
  xfer_free(&R.m);
  return rc;
}
