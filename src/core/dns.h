/* SPDX-License-Identifier: MIT */
/*
 * DNS messages (RFC 1035 section 4), sans-IO: a strict decoder and an
 * encoder, shared by LAN discovery (mDNS, RFC 6762 / DNS-SD, RFC 6763:
 * core/mdns.h) and by signed DNS packets of TXT records.
 *
 * Decoding (kw__dns_decode) checks the whole message before anything is
 * returned: the 12-byte header, every question and resource record of the
 * four counts, nothing after the last one. Names: labels of 1..63 bytes,
 * at most KW_DNS_MAX_NAME bytes in wire form (with the root byte), the
 * label types 01 and 10 (RFC 6891 extended labels) refused; a compression
 * pointer must point strictly before the label that holds it (so no loop
 * can be built) and at most KW_DNS_MAX_HOPS pointers are followed per
 * name. RDATA is checked for the known types: A (4 bytes), AAAA (16),
 * PTR / CNAME / NS (one name, exactly filling RDATA), SRV (6 bytes then a
 * name), TXT (one or more <length><bytes> strings, exactly filling
 * RDATA). Other types are handed over raw.
 *
 * Iteration: after kw__dns_decode, kw__dns_next_question returns the
 * questions, then kw__dns_next_rr the answer, authority and additional
 * records in order (each tagged with its section).
 *
 * Encoding (kw__dns_writer): questions first, then records section by
 * section (answers, authority, additional; a section cannot be reopened).
 * Owner names and PTR/CNAME/NS targets are compressed against names
 * already written (up to KW_DNS_COMP_MAX suffixes remembered); SRV targets
 * are written whole (RFC 2782).
 *
 * Names are kept in wire form, uncompressed, in kw__dns_name; text form
 * (kw__dns_name_from_text / _to_text) is dotted labels without escapes,
 * for names whose labels hold no dot and only visible ASCII.
 */
#ifndef KW_CORE_DNS_H
#define KW_CORE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "keyway.h"

#define KW_DNS_HEADER_LEN 12
#define KW_DNS_MAX_NAME 255 /* wire length, root byte included */
#define KW_DNS_MAX_LABEL 63
#define KW_DNS_MAX_TEXT 254  /* dotted text form, without the NUL */
#define KW_DNS_MAX_HOPS 32   /* compression pointers followed per name */
#define KW_DNS_MAX_MSG 65535 /* longer input is refused */
#define KW_DNS_TXT_CHUNK 255 /* longest TXT character-string */
#define KW_DNS_COMP_MAX 64   /* suffixes the encoder remembers */

#define KW_DNS_TYPE_A 1
#define KW_DNS_TYPE_NS 2
#define KW_DNS_TYPE_CNAME 5
#define KW_DNS_TYPE_PTR 12
#define KW_DNS_TYPE_TXT 16
#define KW_DNS_TYPE_AAAA 28
#define KW_DNS_TYPE_SRV 33
#define KW_DNS_TYPE_OPT 41
#define KW_DNS_TYPE_NSEC 47
#define KW_DNS_TYPE_ANY 255

#define KW_DNS_CLASS_IN 1
/* mDNS: in a question the unicast-response bit, in a record the
 * cache-flush bit (RFC 6762 sections 5.4 and 10.2). */
#define KW_DNS_CLASS_TOP 0x8000u

/* Header flags (the 16 bits after the id). */
#define KW_DNS_FLAG_QR 0x8000u /* response */
#define KW_DNS_FLAG_AA 0x0400u /* authoritative answer */
#define KW_DNS_FLAG_TC 0x0200u /* truncated */
#define KW_DNS_FLAG_RD 0x0100u
#define KW_DNS_FLAG_RA 0x0080u
#define KW_DNS_OPCODE(flags) (((flags) >> 11) & 0xf)
#define KW_DNS_RCODE(flags) ((flags)&0xf)

typedef enum kw__dns_section {
  KW_DNS_SEC_QUESTION = 0,
  KW_DNS_SEC_ANSWER = 1,
  KW_DNS_SEC_AUTHORITY = 2,
  KW_DNS_SEC_ADDITIONAL = 3,
} kw__dns_section;

/* A name in wire form without compression: labels, each a length byte
 * then its bytes, ending with the root byte 0. len counts it all (1 for
 * the root name). */
typedef struct kw__dns_name {
  uint8_t len;
  uint8_t b[KW_DNS_MAX_NAME];
} kw__dns_name;

typedef struct kw__dns_header {
  uint16_t id;
  uint16_t flags;
  uint16_t qdcount, ancount, nscount, arcount;
} kw__dns_header;

typedef struct kw__dns_question {
  kw__dns_name name;
  uint16_t type;
  uint16_t qclass; /* with KW_DNS_CLASS_TOP as sent */
} kw__dns_question;

typedef struct kw__dns_srv {
  uint16_t priority, weight, port;
  kw__dns_name target;
} kw__dns_srv;

typedef struct kw__dns_rr {
  kw__dns_section section; /* set by the decoder; ignored by the writer */
  kw__dns_name name;
  uint16_t type;
  uint16_t rclass; /* with KW_DNS_CLASS_TOP as sent */
  uint32_t ttl;
  /* Decoder: the RDATA bytes inside the message (names in it may be
   * compressed; use the fields below). Writer: the RDATA of a type this
   * module does not encode itself (not A, AAAA, PTR, CNAME, NS, SRV). */
  const uint8_t *rdata;
  uint16_t rdlen;
  union {
    uint8_t a[4];
    uint8_t aaaa[16];
    kw__dns_name target; /* PTR, CNAME, NS: decompressed */
    kw__dns_srv srv;
  } u;
} kw__dns_rr;

/* A decoded message. It points into the caller's bytes, which must stay
 * unchanged while it is used. */
typedef struct kw__dns_msg {
  kw__dns_header h;
  const uint8_t *p;
  size_t len;
  size_t off;    /* next entry to return */
  uint32_t next; /* index of that entry: questions, then records */
} kw__dns_msg;

/* Checks the whole message (see the head of this file) and readies the
 * iteration. Errors: KW_ERR_PARSE (malformed in any way, or longer than
 * KW_DNS_MAX_MSG); `m` is zeroed then. */
kw_err kw__dns_decode(const uint8_t *p, size_t len, kw__dns_msg *m);
/* The next question. KW_ERR_NOT_FOUND when none is left. */
kw_err kw__dns_next_question(kw__dns_msg *m, kw__dns_question *q);
/* The next record of the answer, authority or additional section, in that
 * order (questions not yet read are skipped). KW_ERR_NOT_FOUND at the end. */
kw_err kw__dns_next_rr(kw__dns_msg *m, kw__dns_rr *rr);

/* TXT RDATA: walks the character-strings of `rr` (a TXT record from
 * kw__dns_next_rr). Start with *off = 0; each call gives one string and
 * returns true, false when none is left. */
bool kw__dns_txt_next(const kw__dns_rr *rr, size_t *off, const uint8_t **s,
                      size_t *n);
/* Copies the strings of TXT record `rr`, concatenated, to `out`; *outlen
 * their total length. KW_ERR_BUFFER if `cap` is too small, KW_ERR_INVALID_ARG
 * if `rr` is not TXT. (The writer's kw__dns_add_txt splits a value the same
 * way, so a value round-trips.) */
kw_err kw__dns_txt_join(const kw__dns_rr *rr, uint8_t *out, size_t cap,
                        size_t *outlen);

/* Names. Text: "a.b.c" or "a.b.c." (same name), "." or "" the root name;
 * labels 1..63 bytes of visible ASCII but '.', '\\'. KW_ERR_PARSE else. */
kw_err kw__dns_name_from_text(const char *text, kw__dns_name *out);
/* Dotted text without the trailing dot ("" for the root). KW_ERR_PARSE if
 * a label holds a byte the text form cannot carry, KW_ERR_BUFFER if `cap`
 * is short (KW_DNS_MAX_TEXT + 1 always suffices). */
kw_err kw__dns_name_to_text(const kw__dns_name *n, char *out, size_t cap);
/* Equal names, ASCII letters compared without case (RFC 4343). */
bool kw__dns_name_equal(const kw__dns_name *a, const kw__dns_name *b);
/* Number of labels (0 for the root). */
unsigned kw__dns_name_labels(const kw__dns_name *n);
/* The first label of `n` (pointer into n->b, length in *len); NULL for the
 * root name. */
const uint8_t *kw__dns_name_first(const kw__dns_name *n, size_t *len);
/* `out` = one label `label` (1..63 bytes, any bytes) then `parent`.
 * KW_ERR_PARSE if too long or the label is empty. */
kw_err kw__dns_name_prepend(const uint8_t *label, size_t len,
                            const kw__dns_name *parent, kw__dns_name *out);
/* True if `n` is `parent` or a name below it. */
bool kw__dns_name_under(const kw__dns_name *n, const kw__dns_name *parent);

/* Writer. */
typedef struct kw__dns_writer {
  kw__wbuf w;
  kw__dns_header h;
  kw__dns_section sec; /* the section now open */
  kw_err err;          /* sticky: first error of an add */
  unsigned ncomp;
  uint16_t
      comp[KW_DNS_COMP_MAX]; /* offsets where a written name suffix starts */
} kw__dns_writer;

/* Starts a message in `buf` (the header is written by kw__dns_finish). */
void kw__dns_writer_init(kw__dns_writer *wr, uint8_t *buf, size_t cap,
                         uint16_t id, uint16_t flags);
/* Adds a question; only before any record. */
kw_err kw__dns_add_question(kw__dns_writer *wr, const kw__dns_name *name,
                            uint16_t type, uint16_t qclass);
/* Adds a record to `sec` (ANSWER, AUTHORITY, ADDITIONAL; not one before the
 * section last written). A, AAAA, PTR, CNAME, NS, SRV are encoded from
 * rr->u; other types from rr->rdata/rdlen (TXT: see kw__dns_add_txt).
 * Errors: KW_ERR_INVALID_ARG (bad section order, RDATA over 65535 bytes),
 * KW_ERR_BUFFER (does not fit; the writer then refuses everything). */
kw_err kw__dns_add_rr(kw__dns_writer *wr, kw__dns_section sec,
                      const kw__dns_rr *rr);
/* Adds one TXT record holding `val`, split into character-strings of
 * KW_DNS_TXT_CHUNK bytes (one empty string if len is 0). */
kw_err kw__dns_add_txt(kw__dns_writer *wr, kw__dns_section sec,
                       const kw__dns_name *name, uint16_t rclass, uint32_t ttl,
                       const void *val, size_t len);
/* Writes the header with the counts; *outlen the message length. Returns
 * the first error any add returned (nothing usable then). */
kw_err kw__dns_finish(kw__dns_writer *wr, size_t *outlen);

/* One value of kw__dns_encode_txt_response. */
typedef struct kw__dns_txt {
  const void *p;
  size_t len;
} kw__dns_txt;

/* A response (QR and AA set, id 0, no question) holding n TXT answers
 * under one name, class IN, each value split as kw__dns_add_txt does. */
kw_err kw__dns_encode_txt_response(const kw__dns_name *name, uint32_t ttl,
                                   const kw__dns_txt *vals, size_t n,
                                   uint8_t *out, size_t cap, size_t *outlen);

#endif /* KW_CORE_DNS_H */
