/* SPDX-License-Identifier: MIT */
/*
 * Key files on disk: read with permission checks, write atomically
 * (temp file in the same directory, fsync, rename). The text format is
 * core/keyfile.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyway.h"
#include "core/keyfile.h"

kw_err kw_keyfile_read(const char *path, uint8_t sk[KW_SECRET_KEY_LEN]) {
  if (!path || !*path || !sk)
    return KW_ERR_INVALID_ARG;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return KW_ERR_KEYFILE;
  kw_err err = KW_OK;
  char buf[KW__KEYFILE_MAX + 1];
  size_t len = 0;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    err = KW_ERR_KEYFILE;
    goto out;
  }
  if (st.st_mode & 077) {
    err = KW_ERR_KEYFILE_PERM;
    goto out;
  }
  if (st.st_size > KW__KEYFILE_MAX) {
    err = KW_ERR_KEYFILE;
    goto out;
  }
  /* Read up to one byte more than allowed, in case the file grew. */
  while (len < sizeof(buf)) {
    ssize_t n = read(fd, buf + len, sizeof(buf) - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      err = KW_ERR_KEYFILE;
      goto out;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  if (len > KW__KEYFILE_MAX) {
    err = KW_ERR_KEYFILE;
    goto out;
  }
  err = kw__keyfile_parse(buf, len, sk);
out:
  sodium_memzero(buf, sizeof(buf));
  close(fd);
  return err;
}

/* Creates every missing parent directory of `path` with mode 0700. */
static kw_err make_parents(const char *path) {
  char dir[PATH_MAX];
  size_t len = strlen(path);
  if (len >= sizeof(dir))
    return KW_ERR_INVALID_ARG;
  memcpy(dir, path, len + 1);
  for (size_t i = 1; i < len; i++) {
    if (dir[i] != '/')
      continue;
    dir[i] = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
      return KW_ERR_IO;
    }
    dir[i] = '/';
  }
  return KW_OK;
}

static kw_err write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return KW_ERR_IO;
    p += n;
    len -= (size_t)n;
  }
  return KW_OK;
}

kw_err kw_keyfile_write(const char *path, const uint8_t sk[KW_SECRET_KEY_LEN]) {
  if (!path || !*path || !sk)
    return KW_ERR_INVALID_ARG;
  size_t plen = strlen(path);
  if (path[plen - 1] == '/')
    return KW_ERR_INVALID_ARG;
  char text[KW__KEYFILE_TEXTLEN + 1];
  kw_err err = kw__keyfile_format(sk, text, sizeof(text));
  if (err)
    return err;
  char tmp[PATH_MAX];
  char dir[PATH_MAX];
  int fd = -1;
  bool created = false;
  /* The temp file sits next to the target so rename() is atomic. */
  const char *slash = strrchr(path, '/');
  size_t dlen = slash ? (size_t)(slash - path) : 0;
  int n = snprintf(tmp, sizeof(tmp), "%.*s%s.%s.tmp-XXXXXX", (int)dlen, path,
                   slash ? "/" : "", slash ? slash + 1 : path);
  if (n < 0 || (size_t)n >= sizeof(tmp)) {
    err = KW_ERR_INVALID_ARG;
    goto out;
  }
  if (slash) {
    if (dlen == 0)
      memcpy(dir, "/", 2);
    else {
      memcpy(dir, path, dlen);
      dir[dlen] = '\0';
    }
  } else {
    memcpy(dir, ".", 2);
  }
  err = make_parents(path);
  if (err)
    goto out;
  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    err = KW_ERR_IO;
    goto out;
  }
  created = true;
  if (fchmod(fd, 0600) != 0 ||
      (err = write_all(fd, text, strlen(text))) != KW_OK || fsync(fd) != 0) {
    err = KW_ERR_IO;
    goto out;
  }
  if (close(fd) != 0) {
    fd = -1;
    err = KW_ERR_IO;
    goto out;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    err = KW_ERR_IO;
    goto out;
  }
  created = false;
  /* Make the rename itself durable. */
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
out:
  if (fd >= 0)
    close(fd);
  if (created)
    unlink(tmp);
  sodium_memzero(text, sizeof(text));
  return err;
}
