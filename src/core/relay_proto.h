/* SPDX-License-Identifier: MIT */
/*
 * The relay protocol after the HTTP/1.1 Upgrade (docs/protocol/relay.md):
 * frames of type u8 | length u32 (big-endian) | payload, a streaming
 * decoder, encoders into caller buffers, the challenge-signature
 * authentication, and the relay's own HTTP upgrade request and response.
 * Sans-IO: bytes in, bytes out.
 */
#ifndef KW_CORE_RELAY_PROTO_H
#define KW_CORE_RELAY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

/* Protocol version 2 binds the authentication to the TLS session (the
 * signature covers a TLS exporter value and the relay's name); version 1
 * signs the challenge alone and is accepted by relays only with
 * --allow-v1-auth. */
#define KW_RELAY_VERSION 2
#define KW_RELAY_VERSION_V1 1
#define KW_RELAY_FRAME_HDR 5
/* Largest frame payload; a longer length field fails the decoder before
 * anything is allocated. */
#define KW_RELAY_MAX_FRAME (65536 + 64)
#define KW_RELAY_CHALLENGE_LEN 32
#define KW_RELAY_SIG_LEN 64
#define KW_RELAY_NONCE_LEN 8
#define KW_RELAY_MAX_TEXT 255 /* HEALTH and CLOSE text, bytes */
/* SEND_PACKET / RECV_PACKET: the id, then opaque bytes. */
#define KW_RELAY_PACKET_HDR (KW_RELAY_FRAME_HDR + KW_ID_LEN)
#define KW_RELAY_MAX_PACKET (KW_RELAY_MAX_FRAME - KW_ID_LEN)
#define KW_RELAY_INFO_LEN 20
/* Domain separation of the authentication signature, per version. */
#define KW_RELAY_AUTH_CONTEXT "keyway-relay-auth-v1"
#define KW_RELAY_AUTH_CONTEXT_V2 "keyway-relay-auth-v2"
/* Version 2: the TLS exporter (RFC 8446 section 7.5 / RFC 5705) with this
 * label and an empty context, 32 bytes. */
#define KW_RELAY_EXPORTER_LABEL "EXPORTER-keyway-relay-auth"
#define KW_RELAY_EXPORTER_LEN 32
#define KW_RELAY_NAME_MAX 255 /* the relay name signed in version 2 */
/* HTTP upgrade: path and protocol token (one per version). */
#define KW_RELAY_HTTP_PATH "/keyway-relay"
#define KW_RELAY_HTTP_TOKEN "keyway-relay-v2"
#define KW_RELAY_HTTP_TOKEN_V1 "keyway-relay-v1"

typedef enum kw__relay_type {
  KW_RELAY_SERVER_CHALLENGE = 1, /* server -> client, first frame */
  KW_RELAY_CLIENT_AUTH = 2,      /* client -> server, answer */
  KW_RELAY_SERVER_INFO = 3,      /* server -> client: authenticated */
  KW_RELAY_SEND_PACKET = 4,      /* client -> server: to id */
  KW_RELAY_RECV_PACKET = 5,      /* server -> client: from id */
  KW_RELAY_PING = 6,             /* either way */
  KW_RELAY_PONG = 7,             /* either way, echoes the nonce */
  KW_RELAY_PEER_GONE = 8,        /* server -> client */
  KW_RELAY_HEALTH = 9,           /* server -> client */
  KW_RELAY_CLOSE = 10,           /* either way, then the TCP close */
} kw__relay_type;

/* PEER_GONE reasons. */
#define KW_RELAY_GONE_DISCONNECTED 0 /* it was connected and left */
#define KW_RELAY_GONE_NOT_HERE 1     /* no such client on this relay */

/* CLOSE reasons. */
#define KW_RELAY_CLOSE_NORMAL 0
#define KW_RELAY_CLOSE_PROTOCOL 1    /* malformed or unexpected frame */
#define KW_RELAY_CLOSE_AUTH 2        /* bad signature */
#define KW_RELAY_CLOSE_NOT_ALLOWED 3 /* id not on the allowlist */
#define KW_RELAY_CLOSE_SHUTDOWN 4    /* server stopping */
#define KW_RELAY_CLOSE_REPLACED 5    /* same id connected again */
#define KW_RELAY_CLOSE_TIMEOUT 6     /* no keep-alive answer */

/* SERVER_INFO: the limits the client must respect. */
typedef struct kw__relay_info {
  uint32_t max_frame;   /* largest frame payload accepted */
  uint64_t rate_bytes;  /* sustained bytes/s per client, 0 = unlimited */
  uint32_t burst_bytes; /* token bucket depth */
  uint16_t keepalive_s; /* the server pings this often; 0 = never */
  uint16_t queue_pkts;  /* per-client send queue, packets */
} kw__relay_info;

/* One frame as the decoder delivers it; payload points into the caller's
 * input or the decoder's buffer, valid until the next kw__relay_dec_next. */
typedef struct kw__relay_frame {
  uint8_t type;
  uint32_t len;
  const uint8_t *payload;
} kw__relay_frame;

/* A frame's fields. Only those of `type` are meaningful. */
typedef struct kw__relay_msg {
  uint8_t type;
  uint8_t version; /* SERVER_CHALLENGE: 1 or 2 (0 encodes as 2) */
  uint8_t challenge[KW_RELAY_CHALLENGE_LEN]; /* SERVER_CHALLENGE */
  uint64_t time_us; /* SERVER_CHALLENGE: server's unix time, microseconds */
  uint8_t id[KW_ID_LEN];         /* CLIENT_AUTH, SEND/RECV_PACKET, PEER_GONE */
  uint8_t sig[KW_RELAY_SIG_LEN]; /* CLIENT_AUTH */
  kw__relay_info info;           /* SERVER_INFO */
  const uint8_t *data;           /* SEND/RECV_PACKET bytes (borrowed) */
  size_t data_len;
  uint8_t nonce[KW_RELAY_NONCE_LEN]; /* PING, PONG */
  uint8_t code; /* PEER_GONE reason, HEALTH code (0 = healthy), CLOSE reason */
  const char *text; /* HEALTH, CLOSE: UTF-8, not NUL-terminated (borrowed) */
  size_t text_len;
} kw__relay_msg;

/* Streaming decoder. Feed TCP bytes in chunks of any size; frames come out
 * one at a time. A frame wholly inside one chunk is delivered without a
 * copy; a frame split across chunks is gathered in an internal buffer of
 * at most max_frame bytes. */
typedef struct kw__relay_dec {
  uint32_t max_frame;
  uint8_t hdr[KW_RELAY_FRAME_HDR];
  uint8_t hdr_have;
  uint32_t need; /* payload length of the frame being read */
  uint32_t have; /* payload bytes gathered in buf */
  uint8_t *buf;
  size_t cap;
  bool failed;
} kw__relay_dec;

/* Initialises a decoder accepting payloads up to max_frame (0 or more than
 * KW_RELAY_MAX_FRAME: KW_RELAY_MAX_FRAME). */
void kw__relay_dec_init(kw__relay_dec *d, uint32_t max_frame);
/* Frees the decoder's buffer. */
void kw__relay_dec_free(kw__relay_dec *d);
/* Consumes bytes from (*in, *inlen), advancing both. KW_OK: `f` holds a
 * complete frame (call again for the rest of the input). KW_ERR_AGAIN: all
 * input consumed, no frame complete yet. KW_ERR_PARSE: unknown type, a
 * length above max_frame or invalid for the type; the decoder stays failed
 * and consumes nothing more. KW_ERR_NOMEM. */
kw_err kw__relay_dec_next(kw__relay_dec *d, const uint8_t **in, size_t *inlen,
                          kw__relay_frame *f);

/* Checks the payload length of a frame header: known type, len within
 * [min, max] for the type and at most max_frame. */
bool kw__relay_len_ok(uint8_t type, uint32_t len, uint32_t max_frame);

/* Decodes a frame's payload into `m` (pointers borrow the payload).
 * Errors: KW_ERR_PARSE (unknown type, wrong length, text not UTF-8, SERVER_
 * CHALLENGE with a version other than 1 or 2). */
kw_err kw__relay_parse(const kw__relay_frame *f, kw__relay_msg *m);

/* Writes the frame for `m` (header and payload). Errors: KW_ERR_INVALID_ARG
 * (unknown type, data or text too long, text not UTF-8), KW_ERR_BUFFER. */
kw_err kw__relay_encode(const kw__relay_msg *m, uint8_t *out, size_t cap,
                        size_t *outlen);

/* Writes only the 37-byte head of a SEND_PACKET or RECV_PACKET frame that
 * carries `datalen` bytes, so the bytes can follow without a copy (a relay
 * turns a SEND_PACKET head into a RECV_PACKET head in place). Errors:
 * KW_ERR_INVALID_ARG (other type, datalen > KW_RELAY_MAX_PACKET). */
kw_err kw__relay_packet_hdr(uint8_t out[KW_RELAY_PACKET_HDR], uint8_t type,
                            const uint8_t id[KW_ID_LEN], size_t datalen);

/* Version 1: signs "keyway-relay-auth-v1" || challenge with secret key
 * `sk`. Such an answer proves nothing about which relay asked: a relay the
 * client trusts can replay it to another relay. */
kw_err kw__relay_auth_sign(const uint8_t sk[KW_SECRET_KEY_LEN],
                           const uint8_t challenge[KW_RELAY_CHALLENGE_LEN],
                           uint8_t sig[KW_RELAY_SIG_LEN]);
/* Verifies a CLIENT_AUTH signature of `id` over the challenge. Errors:
 * KW_ERR_KEY_MISMATCH (the signature is not id's over this challenge). */
kw_err kw__relay_auth_verify(const uint8_t id[KW_ID_LEN],
                             const uint8_t challenge[KW_RELAY_CHALLENGE_LEN],
                             const uint8_t sig[KW_RELAY_SIG_LEN]);

/* Version 2: signs "keyway-relay-auth-v2" || challenge (32) || exporter
 * (32) || u8 len(name) || name, where `exporter` is the TLS exporter value
 * of the session the answer travels on (KW_RELAY_EXPORTER_LABEL) and
 * `name` the Host value of the upgrade request ("host:port", 1..255
 * bytes). Errors: KW_ERR_INVALID_ARG. */
kw_err kw__relay_auth2_sign(const uint8_t sk[KW_SECRET_KEY_LEN],
                            const uint8_t challenge[KW_RELAY_CHALLENGE_LEN],
                            const uint8_t exporter[KW_RELAY_EXPORTER_LEN],
                            const char *name, uint8_t sig[KW_RELAY_SIG_LEN]);
/* Verifies a version 2 answer against the server's own exporter value and
 * the name it received. Errors: KW_ERR_KEY_MISMATCH, KW_ERR_INVALID_ARG. */
kw_err kw__relay_auth2_verify(const uint8_t id[KW_ID_LEN],
                              const uint8_t challenge[KW_RELAY_CHALLENGE_LEN],
                              const uint8_t exporter[KW_RELAY_EXPORTER_LEN],
                              const char *name,
                              const uint8_t sig[KW_RELAY_SIG_LEN]);

/* True if p[0..len) is valid UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF). */
bool kw__utf8_valid(const uint8_t *p, size_t len);

/* Writes the client's upgrade request:
 * "GET /keyway-relay HTTP/1.1\r\nHost: HOST\r\nConnection: Upgrade\r\n"
 * "Upgrade: keyway-relay-v2\r\n\r\n". `host` is "name" or "name:port"
 * (visible ASCII, 1..255 bytes). Errors: KW_ERR_INVALID_ARG, KW_ERR_BUFFER. */
kw_err kw__relay_http_req_build(const char *host, char *out, size_t cap,
                                size_t *outlen);
/* The same for protocol `version` 1 ("keyway-relay-v1") or 2. */
kw_err kw__relay_http_req_build_version(const char *host, int version,
                                        char *out, size_t cap, size_t *outlen);
/* Writes the server's "HTTP/1.1 101 Switching Protocols" answer (v2). */
kw_err kw__relay_http_resp_build(char *out, size_t cap, size_t *outlen);
/* The same for protocol `version` 1 or 2. */
kw_err kw__relay_http_resp_build_version(int version, char *out, size_t cap,
                                         size_t *outlen);
/* Client side: parses the server's answer to the upgrade request. KW_OK: a
 * 101 with "Upgrade: keyway-relay-v2" and "Connection: upgrade";
 * *consumed bytes were the header block, the rest are frame bytes.
 * KW_ERR_AGAIN: incomplete. KW_ERR_STATE: a well-formed answer with
 * another status (in *status) or without the upgrade headers.
 * KW_ERR_PARSE: malformed or longer than KW_HTTP_MAX_HEADER. */
kw_err kw__relay_http_resp_parse(const uint8_t *p, size_t len, size_t *consumed,
                                 int *status);

#endif /* KW_CORE_RELAY_PROTO_H */
