/* SPDX-License-Identifier: MIT */
/* Error codes and their explanations. */
#include "keyway.h"

#define KW_ERR_TABLE(X)                                                        \
  X(KW_OK, "OK", "success")                                                    \
  X(KW_ERR_INVALID_ARG, "INVALID_ARG", "invalid argument")                     \
  X(KW_ERR_NOMEM, "NOMEM", "out of memory")                                    \
  X(KW_ERR_PARSE, "PARSE", "malformed input")                                  \
  X(KW_ERR_BAD_ID, "BAD_ID", "not a valid endpoint id")                        \
  X(KW_ERR_BAD_TICKET, "BAD_TICKET", "not a valid ticket")                     \
  X(KW_ERR_KEYFILE, "KEYFILE", "key file missing, unreadable or malformed")    \
  X(KW_ERR_KEYFILE_PERM, "KEYFILE_PERM",                                       \
    "key file is accessible by group or others (chmod 600 it)")                \
  X(KW_ERR_IO, "IO", "operating-system I/O error")                             \
  X(KW_ERR_ADDR, "ADDR", "bad socket address or bind failed")                  \
  X(KW_ERR_TLS, "TLS", "TLS failure")                                          \
  X(KW_ERR_QUIC, "QUIC", "QUIC protocol failure")                              \
  X(KW_ERR_TIMEOUT, "TIMEOUT", "timed out")                                    \
  X(KW_ERR_KEY_MISMATCH, "KEY_MISMATCH",                                       \
    "remote presented another key than the one dialed")                        \
  X(KW_ERR_ALPN, "ALPN", "no common application protocol (ALPN)")              \
  X(KW_ERR_CLOSED, "CLOSED", "closed")                                         \
  X(KW_ERR_AGAIN, "AGAIN", "would block, retry when writable")                 \
  X(KW_ERR_STREAM_LIMIT, "STREAM_LIMIT", "remote allows no more streams now")  \
  X(KW_ERR_DGRAM_UNSUPPORTED, "DGRAM_UNSUPPORTED",                             \
    "remote does not accept datagrams")                                        \
  X(KW_ERR_DGRAM_TOO_LARGE, "DGRAM_TOO_LARGE",                                 \
    "datagram larger than the path allows")                                    \
  X(KW_ERR_STATE, "STATE", "not allowed in the current state")                 \
  X(KW_ERR_BUFFER, "BUFFER", "output buffer too small")                        \
  X(KW_ERR_FULL, "FULL", "queue or table full")                                \
  X(KW_ERR_NO_PATH, "NO_PATH", "no address to reach the remote")               \
  X(KW_ERR_APP_CLOSED, "APP_CLOSED",                                           \
    "the remote application closed the connection")                   \
  X(KW_ERR_IDLE, "IDLE", "connection idle timeout")                            \
  X(KW_ERR_UNSUPPORTED, "UNSUPPORTED", "not supported")                        \
  X(KW_ERR_NOT_FOUND, "NOT_FOUND", "not found")                                \
  X(KW_ERR_RESET, "RESET", "stream reset by the remote")                       \
  X(KW_ERR_PEER, "PEER", "remote closed the connection with an error")         \
  X(KW_ERR_CERT, "CERT", "remote presented no usable certificate")             \
  X(KW_ERR_LOOP, "LOOP", "event loop failure")                                 \
  X(KW_ERR_UNREACHABLE, "UNREACHABLE",                                         \
    "remote stopped answering: nothing acknowledged while data was in flight")

const char *kw_version_string(void) { return KW_VERSION; }

const char *kw_strerror(kw_err err) {
  switch (err) {
#define X(code, name, text)                                                    \
  case code:                                                                   \
    return text;
    KW_ERR_TABLE(X)
#undef X
  }
  return "unknown error";
}

const char *kw_errname(kw_err err) {
  switch (err) {
#define X(code, name, text)                                                    \
  case code:                                                                   \
    return name;
    KW_ERR_TABLE(X)
#undef X
  }
  return "UNKNOWN";
}

const char *kw_path_kind_name(kw_path_kind k) {
  switch (k) {
  case KW_PATH_NONE:
    return "none";
  case KW_PATH_DIRECT:
    return "direct";
  case KW_PATH_RELAY:
    return "relay";
  case KW_PATH_MIXED:
    return "mixed";
  }
  return "none";
}
