/*
 * The keyway/send/1 file transfer protocol (docs/protocol/send.md).
 *
 * The receiver opens one bidirectional stream and sends the request
 * "KWS1" | op u8 (1 = get). The sender answers
 *   "KWS1" | manifest length u32 | manifest
 * then, for every file of the manifest in order, its bytes followed by the
 * 32-byte BLAKE2b-256 of those bytes. The receiver checks each hash before
 * it renames the file into place, then sends one byte 0x01 (all verified)
 * and ends its direction; the sender ends its own.
 *
 * Manifest: count u32, then per entry: type u8 (0 file, 1 directory),
 * mode u32 (permission bits), size u64 (0 for a directory), path length u16,
 * path (UTF-8, '/'-separated, relative, no "." or ".." or empty components,
 * at most 4096 bytes). Directories come before what they contain.
 */
#ifndef KW_CLI_XFER_H
#define KW_CLI_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XFER_MAGIC "KWS1"
#define XFER_OP_GET 1
#define XFER_ACK_OK 1
#define XFER_HASH_LEN 32
#define XFER_MAX_ENTRIES 1000000u
#define XFER_MAX_PATH 4096u
#define XFER_MAX_MANIFEST (256u << 20)

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

/* Sender: walks PATH (a file or a directory tree). 0 or -1 (errno set;
 * *bad names the offending path). */
int xfer_scan(const char *path, xfer_manifest *m, char *bad, size_t badlen);
/* Serialises the manifest (malloc'd). */
uint8_t *xfer_encode(const xfer_manifest *m, size_t *len);
/* Receiver: parses and validates a manifest. 0 or -1 with *why set. */
int xfer_decode(const uint8_t *p, size_t len, xfer_manifest *m,
                const char **why);
/* True if `path` is a safe relative path. */
bool xfer_path_ok(const char *path, size_t len);
void xfer_free(xfer_manifest *m);

#endif
