/* SPDX-License-Identifier: MIT */
/*
 * The keyway/send/1 file transfer protocol (docs/protocol/send.md).
 *
 * The receiver opens one bidirectional stream and sends the request
 * "KWS1" | op u8 (2 = get with capability) | length u8 | capability (the
 * ticket's token; docs/protocol/tickets.md). The sender compares the
 * capability in constant time and resets the stream with XFER_CODE_DENIED
 * unless it is the share's (op 1, the request without one, is refused so).
 * The sender answers
 *   "KWS1" | manifest length u32 | manifest
 * then, for every file of the manifest in order, its bytes followed by the
 * 32-byte BLAKE2b-256 of those bytes. The receiver checks each hash before
 * it renames the file into place, then sends one byte 0x01 (all verified)
 * and ends its direction; the sender ends its own.
 *
 * Manifest: count u32, then per entry: type u8 (0 file, 1 directory),
 * mode u32 (permission bits), size u64 (0 for a directory), path length u16,
 * path (UTF-8, '/'-separated, relative, no "." or ".." or empty components,
 * at most 4096 bytes). Directories come before what they contain. Every
 * component is a name xfer_name_ok accepts.
 */
#ifndef KW_CLI_XFER_H
#define KW_CLI_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XFER_MAGIC "KWS1"
#define XFER_OP_GET 1       /* without a capability: always refused */
#define XFER_OP_GET_CAP 2   /* with the share's capability */
#define XFER_CAP_LEN 16     /* a share's capability (KW_TICKET_TOKEN_MAX) */
#define XFER_ACK_OK 1
#define XFER_HASH_LEN 32

/* Application codes (stream resets and connection closes). */
#define XFER_CODE_FAIL 1    /* a receiver found a problem / a sender failed */
#define XFER_CODE_DENIED 2  /* the request's capability is not the share's */
#define XFER_CODE_STOPPED 3 /* the sender was interrupted */
#define XFER_CODE_BUSY 4    /* too many requests at once from this peer */

/* Bounds of a manifest, so that what a sender announces costs a receiver a
 * known amount of memory and work before a byte of data arrives
 * (docs/protocol/send.md gives the reasons):
 * - entries: 200,000 (a large source tree such as Linux has ~90,000);
 *   parsed, about 100 bytes of memory each plus its path;
 * - total path bytes: 16 MiB (80 bytes a path on average at the limit);
 * - depth: 64 components (what `send` walks);
 * - a path: 4096 bytes (PATH_MAX), a component 255 (NAME_MAX);
 * - the encoded manifest: 20 MiB (it is read whole before it is checked;
 *   the largest valid one is 4 + 200,000 x 15 + 16 MiB < 20 MiB). */
#define XFER_MAX_ENTRIES 200000u
#define XFER_MAX_NAME_BYTES (16u << 20)
#define XFER_MAX_DEPTH 64u
#define XFER_MAX_PATH 4096u
#define XFER_MAX_NAME 255u
#define XFER_MAX_MANIFEST (20u << 20)

typedef struct xfer_entry {
  uint8_t type; /* 0 file, 1 dir */
  uint32_t mode;
  uint64_t size;
  char *path; /* relative, NUL-terminated */
  char *src;  /* sender: the file on disk */
} xfer_entry;

typedef struct xfer_manifest {
  xfer_entry *e;
  size_t n, cap;
  uint64_t total; /* bytes of all files */
} xfer_manifest;

/* Called for every entry the scan leaves out, with the reason. */
typedef void (*xfer_skip_fn)(const char *path, const char *why, void *arg);

/* Sender: walks PATH (a file or a directory tree). Symbolic links inside
 * the tree, devices, sockets, FIFOs and names a receiver refuses are left
 * out (skip() hears of each). 0 or -1 (errno set, or *why when not 0;
 * *bad names the offending path): PATH itself is none of a regular file or
 * a directory, or has a name a receiver refuses. */
int xfer_scan(const char *path, xfer_manifest *m, char *bad, size_t badlen,
              const char **why, xfer_skip_fn skip, void *arg);
/* Serialises the manifest (malloc'd). */
uint8_t *xfer_encode(const xfer_manifest *m, size_t *len);
/* Receiver: parses and validates a manifest. 0 or -1 with *why set. */
int xfer_decode(const uint8_t *p, size_t len, xfer_manifest *m,
                const char **why);
/* True if `path` is a safe relative path: components separated by one
 * '/', each one a name xfer_name_ok accepts, at most XFER_MAX_DEPTH of
 * them, at most XFER_MAX_PATH bytes. */
bool xfer_path_ok(const char *path, size_t len);
/* NULL if `name` (one path component) is acceptable, else why not: empty,
 * longer than 255 bytes, "." or "..", hidden (a leading '.'), invalid
 * UTF-8, or with a control character (C0, DEL, C1) or a bidirectional
 * formatting character a terminal would interpret. */
const char *xfer_name_ok(const char *name, size_t len);
void xfer_free(xfer_manifest *m);

#endif
