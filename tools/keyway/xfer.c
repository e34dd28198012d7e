/* SPDX-License-Identifier: MIT */
/* The keyway/send/1 manifest: scanning, encoding, validation (xfer.h). */
#include "xfer.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uthash.h>

static int add(xfer_manifest *m, uint8_t type, uint32_t mode, uint64_t size,
               const char *path, const char *src) {
  if (m->n >= XFER_MAX_ENTRIES) {
    errno = EFBIG;
    return -1;
  }
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    xfer_entry *e = realloc(m->e, cap * sizeof *e);
    if (!e)
      return -1;
    m->e = e;
    m->cap = cap;
  }
  xfer_entry *e = &m->e[m->n];
  e->type = type;
  e->mode = mode & 07777;
  e->size = size;
  e->path = strdup(path);
  e->src = src ? strdup(src) : NULL;
  if (!e->path || (src && !e->src)) {
    free(e->path);
    free(e->src);
    return -1;
  }
  m->n++;
  m->total = m->total > UINT64_MAX - size ? UINT64_MAX : m->total + size;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *kind_of(mode_t m) {
  if (S_ISLNK(m))
    return "a symbolic link (links are not followed)";
  if (S_ISCHR(m))
    return "a character device";
  if (S_ISBLK(m))
    return "a block device";
  if (S_ISFIFO(m))
    return "a FIFO";
  if (S_ISSOCK(m))
    return "a socket";
  return "not a regular file or directory";
}

typedef struct scan {
  xfer_manifest *m;
  char *bad;
  size_t badlen;
  const char **why;
  xfer_skip_fn on_skip;
  void *arg;
  uint64_t name_bytes;
} scan;

static int walk(scan *sc, const char *src, const char *rel, unsigned depth,
                bool root) {
  struct stat st;
  /* the root is what the user named: a link to it is followed; inside the
   * tree nothing is */
  if ((root ? stat(src, &st) : lstat(src, &st)) != 0) {
    snprintf(sc->bad, sc->badlen, "%s", src);
    return -1;
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    if (root) {
      snprintf(sc->bad, sc->badlen, "%s", src);
      *sc->why = kind_of(st.st_mode);
      return -1;
    }
    if (sc->on_skip)
      sc->on_skip(src, kind_of(st.st_mode), sc->arg);
    return 0;
  }
  if (depth >= XFER_MAX_DEPTH) {
    if (sc->on_skip)
      sc->on_skip(src, "deeper than 64 levels", sc->arg);
    return 0;
  }
  sc->name_bytes += strlen(rel);
  if (sc->m->n >= XFER_MAX_ENTRIES || sc->name_bytes > XFER_MAX_NAME_BYTES) {
    snprintf(sc->bad, sc->badlen, "%s", src);
    *sc->why = "more entries than a receiver accepts (200,000 entries, "
               "16 MiB of path names)";
    return -1;
  }
  if (S_ISREG(st.st_mode)) {
    /* refuse at start rather than fail a receiver half-way */
    if (access(src, R_OK) != 0) {
      snprintf(sc->bad, sc->badlen, "%s", src);
      return -1;
    }
    /* permission bits only: never setuid, setgid or sticky */
    return add(sc->m, 0, st.st_mode & 0777, (uint64_t)st.st_size, rel, src);
  }
  if (add(sc->m, 1, st.st_mode & 0777, 0, rel, NULL) != 0)
    return -1;
  DIR *d = opendir(src);
  if (!d) {
    snprintf(sc->bad, sc->badlen, "%s", src);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn) {
        rc = -1;
        break;
      }
      names = nn;
    }
    if (!(names[n] = strdup(de->d_name))) {
      rc = -1;
      break;
    }
    n++;
  }
  closedir(d);
  if (rc == 0) {
    if (n > 1)
      qsort(names, n, sizeof *names, cmp_names); /* a stable order */
    for (size_t i = 0; i < n && rc == 0; i++) {
      char s2[PATH_MAX], r2[XFER_MAX_PATH + 1];
      if (snprintf(s2, sizeof s2, "%s/%s", src, names[i]) >= (int)sizeof s2) {
        snprintf(sc->bad, sc->badlen, "%s/%s", src, names[i]);
        errno = ENAMETOOLONG;
        rc = -1;
        break;
      }
      const char *why = xfer_name_ok(names[i], strlen(names[i]));
      if (!why &&
          snprintf(r2, sizeof r2, "%s/%s", rel, names[i]) >= (int)sizeof r2)
        why = "a path longer than 4096 bytes";
      if (why) {
        if (sc->on_skip)
          sc->on_skip(s2, why, sc->arg);
        continue;
      }
      rc = walk(sc, s2, r2, depth + 1, false);
    }
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return rc;
}

int xfer_scan(const char *path, xfer_manifest *m, char *bad, size_t badlen,
              const char **why, xfer_skip_fn skip, void *arg) {
  memset(m, 0, sizeof *m);
  *why = NULL;
  scan sc = {m, bad, badlen, why, skip, arg, 0};
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
    snprintf(bad, badlen, "%s", path);
    errno = ENAMETOOLONG;
    return -1;
  }
  size_t l = strlen(tmp);
  while (l > 1 && tmp[l - 1] == '/')
    tmp[--l] = 0;
  const char *base = strrchr(tmp, '/');
  base = base ? base + 1 : tmp;
  char name[XFER_MAX_NAME + 1], cwd[PATH_MAX];
  if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
    /* "." or "/": name the tree after the current directory */
    if (!realpath(tmp, cwd)) {
      snprintf(bad, badlen, "%s", path);
      return -1;
    }
    const char *b2 = strrchr(cwd, '/');
    base = b2 && b2[1] ? b2 + 1 : "root";
  }
  size_t bl = strlen(base);
  const char *w = xfer_name_ok(base, bl);
  if (w) {
    snprintf(bad, badlen, "%s", path);
    *why = w;
    return -1;
  }
  memcpy(name, base, bl + 1); /* bl <= 255: checked */
  return walk(&sc, tmp, name, 0, true);
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

uint8_t *xfer_encode(const xfer_manifest *m, size_t *len) {
  size_t n = 4;
  for (size_t i = 0; i < m->n; i++)
    n += 1 + 4 + 8 + 2 + strlen(m->e[i].path);
  uint8_t *b = malloc(n), *p = b;
  if (!b)
    return NULL;
  put32(p, (uint32_t)m->n);
  p += 4;
  for (size_t i = 0; i < m->n; i++) {
    const xfer_entry *e = &m->e[i];
    size_t pl = strlen(e->path);
    *p++ = e->type;
    put32(p, e->mode);
    put32(p + 4, (uint32_t)(e->size >> 32));
    put32(p + 8, (uint32_t)e->size);
    p[12] = (uint8_t)(pl >> 8);
    p[13] = (uint8_t)pl;
    memcpy(p + 14, e->path, pl);
    p += 14 + pl;
  }
  *len = n;
  return b;
}

/* The next code point of valid UTF-8 (shortest form, no surrogates, at most
 * U+10FFFF) at p[*i], or -1. */
static long utf8_next(const unsigned char *p, size_t len, size_t *i) {
  unsigned char c = p[*i];
  if (c < 0x80) {
    (*i)++;
    return c;
  }
  size_t n;
  long cp, min;
  if ((c & 0xe0) == 0xc0) {
    n = 1, cp = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 2, cp = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 3, cp = c & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  if (len - *i <= n)
    return -1;
  for (size_t k = 1; k <= n; k++) {
    if ((p[*i + k] & 0xc0) != 0x80)
      return -1;
    cp = cp << 6 | (p[*i + k] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return -1;
  *i += n + 1;
  return cp;
}

const char *xfer_name_ok(const char *name, size_t len) {
  const unsigned char *p = (const unsigned char *)name;
  if (len == 0)
    return "an empty name";
  if (len > XFER_MAX_NAME)
    return "a name longer than 255 bytes";
  if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
    return "a name that means a directory (. or ..)";
  if (p[0] == '.')
    return "a hidden name (leading dot)";
  for (size_t i = 0; i < len;) {
    long cp = utf8_next(p, len, &i);
    if (cp < 0)
      return "a name that is not valid UTF-8";
    if (cp == '/')
      return "a name with a slash";
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
      return "a name with a control character";
    if (cp == 0x061c || cp == 0x200e || cp == 0x200f ||
        (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
      return "a name with a bidirectional formatting character";
  }
  return NULL;
}

bool xfer_path_ok(const char *path, size_t len) {
  if (len == 0 || len > XFER_MAX_PATH || path[0] == '/' ||
      path[len - 1] == '/')
    return false;
  size_t start = 0;
  unsigned depth = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || path[i] == '/') {
      if (++depth > XFER_MAX_DEPTH ||
          xfer_name_ok(path + start, i - start) != NULL)
        return false;
      start = i + 1;
    }
  }
  return true;
}

/* The entries seen so far: directories for the "inside the tree" check,
 * every path for the duplicate check. */
typedef struct dirset {
  UT_hash_handle hh;
  bool dir;
  char path[];
} dirset;

static void dirset_free(dirset **set) {
  dirset *d, *tmp;
  HASH_ITER(hh, *set, d, tmp) {
    HASH_DEL(*set, d);
    free(d);
  }
}

int xfer_decode(const uint8_t *p, size_t len, xfer_manifest *m,
                const char **why) {
  memset(m, 0, sizeof *m);
  dirset *dirs = NULL;
  *why = "truncated manifest";
  if (len < 4)
    return -1;
  uint32_t count = get32(p);
  size_t off = 4;
  if (count > XFER_MAX_ENTRIES) {
    *why = "too many entries (more than 200,000)";
    return -1;
  }
  uint64_t name_bytes = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (len - off < 15)
      goto fail;
    uint8_t type = p[off];
    uint32_t mode = get32(p + off + 1);
    uint64_t size = (uint64_t)get32(p + off + 5) << 32 | get32(p + off + 9);
    size_t pl = (size_t)p[off + 13] << 8 | p[off + 14];
    off += 15;
    if (len - off < pl)
      goto fail;
    char path[XFER_MAX_PATH + 1];
    if (type > 1 || (type == 1 && size) || mode > 07777) {
      *why = "unsafe or malformed entry";
      goto fail;
    }
    if (!xfer_path_ok((const char *)p + off, pl)) {
      /* name the defect of the first bad component */
      *why = "unsafe or malformed entry";
      size_t st = 0;
      for (size_t k = 0; k <= pl && pl <= XFER_MAX_PATH; k++)
        if (k == pl || p[off + k] == '/') {
          if (xfer_name_ok((const char *)p + off + st, k - st)) {
            *why = "unsafe or malformed entry: a refused name (hidden, "
                   "control or formatting characters, not UTF-8, . or ..)";
            break;
          }
          st = k + 1;
        }
      goto fail;
    }
    name_bytes += pl;
    if (name_bytes > XFER_MAX_NAME_BYTES) {
      *why = "too many path bytes (more than 16 MiB)";
      goto fail;
    }
    memcpy(path, p + off, pl);
    path[pl] = 0;
    off += pl;
    /* the first entry is the root; every other lives in a directory
     * listed before it */
    char *slash = strrchr(path, '/');
    if ((i == 0) != (slash == NULL)) {
      *why = "entry outside the transferred tree";
      goto fail;
    }
    if (slash) {
      dirset *d = NULL;
      HASH_FIND(hh, dirs, path, (unsigned)(slash - path), d);
      if (!d || !d->dir) {
        *why = "entry outside the transferred tree";
        goto fail;
      }
    }
    {
      dirset *d = NULL;
      HASH_FIND(hh, dirs, path, (unsigned)pl, d);
      if (d) {
        *why = "duplicate entry";
        goto fail;
      }
      d = malloc(sizeof *d + pl + 1);
      if (!d) {
        *why = "out of memory";
        goto fail;
      }
      d->dir = type == 1;
      memcpy(d->path, path, pl + 1);
      HASH_ADD(hh, dirs, path, (unsigned)pl, d);
    }
    if (add(m, type, mode, size, path, NULL) != 0) {
      *why = "out of memory";
      goto fail;
    }
  }
  if (off != len) {
    *why = "trailing bytes after the manifest";
    goto fail;
  }
  dirset_free(&dirs);
  return 0;
fail:
  dirset_free(&dirs);
  xfer_free(m);
  return -1;
}

void xfer_free(xfer_manifest *m) {
  for (size_t i = 0; i < m->n; i++) {
    free(m->e[i].path);
    free(m->e[i].src);
  }
  free(m->e);
  memset(m, 0, sizeof *m);
}
