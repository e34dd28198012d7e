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
  m->total += size;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(xfer_manifest *m, const char *src, const char *rel, int depth,
                char *bad, size_t badlen) {
  struct stat st;
  if (lstat(src, &st) != 0 || depth > 64) {
    snprintf(bad, badlen, "%s", src);
    if (depth > 64)
      errno = ELOOP;
    return -1;
  }
  if (S_ISREG(st.st_mode)) {
    /* refuse at start rather than fail a receiver half-way */
    if (access(src, R_OK) != 0) {
      snprintf(bad, badlen, "%s", src);
      return -1;
    }
    return add(m, 0, st.st_mode, (uint64_t)st.st_size, rel, src);
  }
  if (!S_ISDIR(st.st_mode))
    return 0; /* links, devices, sockets: not sent */
  if (add(m, 1, st.st_mode, 0, rel, NULL) != 0)
    return -1;
  DIR *d = opendir(src);
  if (!d) {
    snprintf(bad, badlen, "%s", src);
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
      if (snprintf(s2, sizeof s2, "%s/%s", src, names[i]) >= (int)sizeof s2 ||
          snprintf(r2, sizeof r2, "%s/%s", rel, names[i]) >= (int)sizeof r2) {
        snprintf(bad, badlen, "%s/%s", src, names[i]);
        errno = ENAMETOOLONG;
        rc = -1;
        break;
      }
      rc = walk(m, s2, r2, depth + 1, bad, badlen);
    }
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return rc;
}

int xfer_scan(const char *path, xfer_manifest *m, char *bad, size_t badlen) {
  memset(m, 0, sizeof *m);
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", path);
  size_t l = strlen(tmp);
  while (l > 1 && tmp[l - 1] == '/')
    tmp[--l] = 0;
  const char *base = strrchr(tmp, '/');
  base = base ? base + 1 : tmp;
  if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
    /* "." or "/": name the tree after the current directory */
    char cwd[PATH_MAX];
    if (!realpath(tmp, cwd)) {
      snprintf(bad, badlen, "%s", path);
      return -1;
    }
    const char *b2 = strrchr(cwd, '/');
    b2 = b2 && b2[1] ? b2 + 1 : "root";
    char name[NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", b2);
    return walk(m, tmp, name, 0, bad, badlen);
  }
  return walk(m, tmp, base, 0, bad, badlen);
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

bool xfer_path_ok(const char *path, size_t len) {
  if (len == 0 || len > XFER_MAX_PATH || path[0] == '/' ||
      memchr(path, 0, len) || path[len - 1] == '/')
    return false;
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || path[i] == '/') {
      size_t cl = i - start;
      if (cl == 0 || (cl == 1 && path[start] == '.') ||
          (cl == 2 && path[start] == '.' && path[start + 1] == '.'))
        return false;
      start = i + 1;
    }
  }
  return true;
}

/* The directories seen so far, for the "inside the tree" check. */
typedef struct dirset {
  UT_hash_handle hh;
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
    *why = "too many entries";
    return -1;
  }
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
    if (type > 1 || (type == 1 && size) || mode > 07777 ||
        !xfer_path_ok((const char *)p + off, pl)) {
      *why = "unsafe or malformed entry";
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
      if (!d) {
        *why = "entry outside the transferred tree";
        goto fail;
      }
    }
    if (type == 1) {
      dirset *d = NULL;
      HASH_FIND(hh, dirs, path, (unsigned)pl, d);
      if (d) {
        *why = "duplicate entry";
        goto fail;
      }
      d = malloc(sizeof *d + pl + 1);
      if (!d)
        goto fail;
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
