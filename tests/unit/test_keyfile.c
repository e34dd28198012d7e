/* SPDX-License-Identifier: MIT */
/* Unit tests of the key file: core text format and the file system part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyway.h"
#include "core/keyfile.h"

/* Key text of the seed 00..1f. */
#define SEED_TEXT "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq"
#define KEY_LINE "keyway-secret-key-v1 " SEED_TEXT
#define UPPER_LINE                                                             \
  "keyway-secret-key-v1 AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ"

static void seed_key(uint8_t sk[64]) {
  uint8_t seed[32], pk[32];
  for (int i = 0; i < 32; i++)
    seed[i] = (uint8_t)i;
  crypto_sign_seed_keypair(pk, sk, seed);
}

static kw_err parse(const char *text, uint8_t sk[64]) {
  return kw__keyfile_parse(text, strlen(text), sk);
}

static void test_format(void **state) {
  (void)state;
  uint8_t sk[64];
  char out[KW__KEYFILE_TEXTLEN + 1];
  seed_key(sk);
  assert_int_equal(kw__keyfile_format(sk, out, sizeof(out)), KW_OK);
  assert_string_equal(out,
                      "# keyway secret key: keep it private\n" KEY_LINE "\n");
  assert_int_equal(strlen(out), KW__KEYFILE_TEXTLEN);
  assert_int_equal(kw__keyfile_format(sk, out, sizeof(out) - 1), KW_ERR_BUFFER);
  assert_string_equal(out, "");
  assert_int_equal(kw__keyfile_format(sk, out, 0), KW_ERR_BUFFER);
  assert_int_equal(kw__keyfile_format(NULL, out, sizeof(out)),
                   KW_ERR_INVALID_ARG);
  assert_int_equal(kw__keyfile_format(sk, NULL, sizeof(out)),
                   KW_ERR_INVALID_ARG);
}

static void test_parse_round_trip(void **state) {
  (void)state;
  for (int i = 0; i < 50; i++) {
    uint8_t sk[64], back[64];
    char text[KW__KEYFILE_TEXTLEN + 1];
    assert_int_equal(kw_key_generate(sk), KW_OK);
    assert_int_equal(kw__keyfile_format(sk, text, sizeof(text)), KW_OK);
    memset(back, 0, sizeof(back));
    assert_int_equal(parse(text, back), KW_OK);
    /* The whole secret key, public half included, is derived again. */
    assert_memory_equal(back, sk, 64);
  }
}

static void test_parse_accepts(void **state) {
  (void)state;
  uint8_t want[64], sk[64];
  seed_key(want);
  static const char *good[] = {
      KEY_LINE,
      KEY_LINE "\n",
      KEY_LINE "\r\n",
      "# c\r\n" KEY_LINE "\r\n",
      "\n\n# comment\n  # indented comment\n\t\n   \n" KEY_LINE "\n\n",
      "#" KEY_LINE "x\n" KEY_LINE "\n# after\n",
      "# keyway secret key: keep it private\n" KEY_LINE "\n",
      /* Upper-case base32 is the same key. */
      UPPER_LINE,
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    memset(sk, 0, sizeof(sk));
    if (parse(good[i], sk) != KW_OK)
      fail_msg("rejected case %zu", i);
    assert_memory_equal(sk, want, 64);
  }
}

static void test_parse_rejects(void **state) {
  (void)state;
  uint8_t sk[64];
  static const char *bad[] = {
      "",
      "\n\n",
      "# only a comment\n",
      KEY_LINE "\n" KEY_LINE "\n", /* two key lines */
      KEY_LINE " \n",              /* trailing blank */
      KEY_LINE "\t",
      " " KEY_LINE "\n", /* leading blank */
      KEY_LINE "a\n",    /* 53 chars */
      "keyway-secret-key-v1 "
      "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dyp\n",
      "keyway-secret-key-v1  " SEED_TEXT "\n",
      "keyway-secret-key-v1\t" SEED_TEXT "\n",
      "keyway-secret-key-v2 " SEED_TEXT "\n",
      "KEYWAY-SECRET-KEY-V1 " SEED_TEXT "\n",
      "keyway-secret-key " SEED_TEXT "\n",
      SEED_TEXT "\n",
      /* non-canonical last character (trailing bits set) */
      "keyway-secret-key-v1 "
      "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypr\n",
      /* bad base32 character */
      "keyway-secret-key-v1 "
      "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dyp1\n",
      KEY_LINE "\ngarbage\n",
      "garbage\n" KEY_LINE "\n",
      KEY_LINE "\r\r\n",
      KEY_LINE "\r",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (parse(bad[i], sk) != KW_ERR_KEYFILE)
      fail_msg("accepted case %zu: \"%s\"", i, bad[i]);

  /* A NUL byte anywhere, even in a comment. */
  char withnul[] = "# a\0b\n" KEY_LINE "\n";
  assert_int_equal(kw__keyfile_parse(withnul, sizeof(withnul) - 1, sk),
                   KW_ERR_KEYFILE);
  /* The length given is what counts: a cut key line is rejected. */
  assert_int_equal(kw__keyfile_parse(KEY_LINE, strlen(KEY_LINE) - 1, sk),
                   KW_ERR_KEYFILE);
  /* Larger than KW__KEYFILE_MAX, even if well-formed. */
  char big[KW__KEYFILE_MAX + 2];
  memset(big, '\n', sizeof(big));
  memcpy(big, KEY_LINE, strlen(KEY_LINE));
  assert_int_equal(kw__keyfile_parse(big, KW__KEYFILE_MAX, sk), KW_OK);
  assert_int_equal(kw__keyfile_parse(big, KW__KEYFILE_MAX + 1, sk),
                   KW_ERR_KEYFILE);
  assert_int_equal(kw__keyfile_parse(NULL, 0, sk), KW_ERR_KEYFILE);
  assert_int_equal(kw__keyfile_parse(NULL, 5, sk), KW_ERR_INVALID_ARG);
  assert_int_equal(kw__keyfile_parse("x", 1, NULL), KW_ERR_INVALID_ARG);
}

/* ---- file system ---- */

typedef struct fixture {
  char dir[64];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  strcpy(f->dir, "/tmp/kw-test-keyfile-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  *state = f;
  return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int teardown(void **state) {
  fixture *f = *state;
  nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void path_in(const fixture *f, char *out, size_t len, const char *rel) {
  int n = snprintf(out, len, "%s/%s", f->dir, rel);
  assert_true(n > 0 && (size_t)n < len);
}

static void write_file(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  assert_true(fd >= 0);
  size_t len = strlen(text);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  close(fd);
  assert_int_equal(chmod(path, mode), 0);
}

static size_t count_entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

static void test_write_read(void **state) {
  fixture *f = *state;
  char path[256], sub[256];
  uint8_t sk[64], back[64];
  struct stat st;
  assert_int_equal(kw_key_generate(sk), KW_OK);
  path_in(f, path, sizeof(path), "a/b/secret.key");
  assert_int_equal(kw_keyfile_write(path, sk), KW_OK);
  assert_int_equal(stat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0600);
  path_in(f, sub, sizeof(sub), "a");
  assert_int_equal(stat(sub, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  path_in(f, sub, sizeof(sub), "a/b");
  assert_int_equal(stat(sub, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  /* No temp file is left behind. */
  assert_int_equal(count_entries(sub), 1);
  memset(back, 0, sizeof(back));
  assert_int_equal(kw_keyfile_read(path, back), KW_OK);
  assert_memory_equal(back, sk, 64);

  /* Overwrite atomically with another key. */
  uint8_t sk2[64];
  assert_int_equal(kw_key_generate(sk2), KW_OK);
  assert_int_equal(kw_keyfile_write(path, sk2), KW_OK);
  assert_int_equal(kw_keyfile_read(path, back), KW_OK);
  assert_memory_equal(back, sk2, 64);
  assert_int_equal(count_entries(sub), 1);

  /* A hand-written file in the documented format. */
  path_in(f, path, sizeof(path), "hand.key");
  write_file(path, "# mine\r\n" KEY_LINE "\r\n", 0600);
  uint8_t want[64];
  seed_key(want);
  assert_int_equal(kw_keyfile_read(path, back), KW_OK);
  assert_memory_equal(back, want, 64);
  /* 0400 is fine too. */
  assert_int_equal(chmod(path, 0400), 0);
  assert_int_equal(kw_keyfile_read(path, back), KW_OK);
}

static void test_write_relative(void **state) {
  fixture *f = *state;
  char cwd[512];
  uint8_t sk[64], back[64];
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  assert_int_equal(chdir(f->dir), 0);
  assert_int_equal(kw_key_generate(sk), KW_OK);
  kw_err e1 = kw_keyfile_write("plain.key", sk);
  kw_err e2 = kw_keyfile_read("plain.key", back);
  size_t n = count_entries(".");
  assert_int_equal(chdir(cwd), 0);
  assert_int_equal(e1, KW_OK);
  assert_int_equal(e2, KW_OK);
  assert_memory_equal(back, sk, 64);
  assert_int_equal(n, 1);
}

static void test_read_perm(void **state) {
  fixture *f = *state;
  char path[256];
  uint8_t sk[64];
  path_in(f, path, sizeof(path), "open.key");
  write_file(path, KEY_LINE "\n", 0644);
  assert_int_equal(kw_keyfile_read(path, sk), KW_ERR_KEYFILE_PERM);
  static const mode_t modes[] = {0640, 0604, 0620, 0602, 0610, 0601, 0660};
  for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
    assert_int_equal(chmod(path, modes[i]), 0);
    assert_int_equal(kw_keyfile_read(path, sk), KW_ERR_KEYFILE_PERM);
  }
  assert_int_equal(chmod(path, 0600), 0);
  assert_int_equal(kw_keyfile_read(path, sk), KW_OK);
}

static void test_read_rejects(void **state) {
  fixture *f = *state;
  char path[256], link[256];
  uint8_t sk[64];
  /* Missing. */
  path_in(f, path, sizeof(path), "missing.key");
  assert_int_equal(kw_keyfile_read(path, sk), KW_ERR_KEYFILE);
  /* A directory. */
  path_in(f, path, sizeof(path), "dir.key");
  assert_int_equal(mkdir(path, 0700), 0);
  assert_int_equal(kw_keyfile_read(path, sk), KW_ERR_KEYFILE);
  /* A symbolic link to a good key file. */
  path_in(f, path, sizeof(path), "good.key");
  write_file(path, KEY_LINE "\n", 0600);
  assert_int_equal(kw_keyfile_read(path, sk), KW_OK);
  path_in(f, link, sizeof(link), "link.key");
  assert_int_equal(symlink(path, link), 0);
  assert_int_equal(kw_keyfile_read(link, sk), KW_ERR_KEYFILE);
  /* Malformed content. */
  path_in(f, path, sizeof(path), "bad.key");
  write_file(path, "not a key\n", 0600);
  assert_int_equal(kw_keyfile_read(path, sk), KW_ERR_KEYFILE);
  /* Empty. */
  write_file(path, "", 0600);
  assert_int_equal(kw_keyfile_read(path, sk), KW_ERR_KEYFILE);
  /* Larger than 4096 bytes, even though the key line is fine. */
  char big[KW__KEYFILE_MAX + 2];
  memset(big, '\n', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  memcpy(big, KEY_LINE, strlen(KEY_LINE));
  write_file(path, big, 0600);
  assert_int_equal(kw_keyfile_read(path, sk), KW_ERR_KEYFILE);
  big[KW__KEYFILE_MAX] = '\0';
  write_file(path, big, 0600);
  assert_int_equal(kw_keyfile_read(path, sk), KW_OK);
  /* Arguments. */
  assert_int_equal(kw_keyfile_read(NULL, sk), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_keyfile_read("", sk), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_keyfile_read(path, NULL), KW_ERR_INVALID_ARG);
}

static void test_write_rejects(void **state) {
  fixture *f = *state;
  char path[256], file[256];
  uint8_t sk[64];
  seed_key(sk);
  /* A parent that is a regular file. */
  path_in(f, file, sizeof(file), "plain");
  write_file(file, "x", 0600);
  path_in(f, path, sizeof(path), "plain/secret.key");
  assert_int_equal(kw_keyfile_write(path, sk), KW_ERR_IO);
  path_in(f, path, sizeof(path), "plain/sub/secret.key");
  assert_int_equal(kw_keyfile_write(path, sk), KW_ERR_IO);
  /* The target is a directory: rename fails, no temp file stays. */
  path_in(f, path, sizeof(path), "d");
  assert_int_equal(mkdir(path, 0700), 0);
  path_in(f, file, sizeof(file), "d/x");
  write_file(file, "x", 0600);
  size_t before = count_entries(f->dir);
  assert_int_equal(kw_keyfile_write(path, sk), KW_ERR_IO);
  assert_int_equal(count_entries(f->dir), before);
  /* A path ending in '/' names no file. */
  path_in(f, path, sizeof(path), "e/");
  assert_int_equal(kw_keyfile_write(path, sk), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_keyfile_write(NULL, sk), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_keyfile_write("", sk), KW_ERR_INVALID_ARG);
  assert_int_equal(kw_keyfile_write(path, NULL), KW_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_parse_round_trip),
      cmocka_unit_test(test_parse_accepts),
      cmocka_unit_test(test_parse_rejects),
      cmocka_unit_test_setup_teardown(test_write_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_relative, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_perm, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_rejects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_rejects, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
