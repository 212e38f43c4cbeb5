/* SPDX-License-Identifier: MIT */
/*
 * av_clamd: antivirus engine 1, a client of ClamAV's clamd.
 *
 * Protocol (clamd(8), "z" commands, replies end with a NUL byte): one
 * connection per scanning thread, opened lazily with IDSESSION so that
 * many INSTREAM requests share it; INSTREAM sends 4-byte big-endian
 * length-prefixed chunks and a zero-length chunk; the reply is
 * "<id>: stream: OK", "<id>: stream: NAME FOUND" or "<id>: ... ERROR".
 * Anything else is garbage. A reused connection that clamd closed while
 * idle (its IdleTimeout) is reopened once, transparently; every other
 * failure drops the connection and is reported.
 *
 * Time-outs: every connect, write and read waits at most the time given
 * (av.clamd_timeout, and never past the job's deadline).
 *
 * StreamMaxLength: the client knows clamd's limit from av.clamd_max_stream
 * and never sends a buffer over it (the caller is told the part was
 * skipped: clamd would have refused it). A clamd that answers "INSTREAM
 * size limit exceeded" anyway has a smaller limit than configured: that is
 * an engine failure (-EFBIG), logged with the fix, never a pass.
 *
 * What is scanned (av_clamd_scan_msg): the raw message, which clamd
 * parses and unpacks itself, and every leaf whose decoded bytes are not a
 * slice of the raw message (base64/QP/uu-decoded parts, archive members),
 * each distinct content (SHA-256) once.
 *
 * Results: 0 (clean), AV_CLAMD_FOUND, or a negative code, all TEMPFAIL
 * for the message: -ETIMEDOUT, -ECONNREFUSED/-ENOENT (and other connect
 * errors), -EPROTO (garbage), -EIO (clamd said ERROR), -EFBIG (clamd's
 * stream limit is below av.clamd_max_stream), -ENOMEM. `why` gets a
 * sentence for the log. Nothing here keeps pointers to the caller's data.
 */
#ifndef MXG_SCAN_AV_CLAMD_H
#define MXG_SCAN_AV_CLAMD_H

#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"
#include "core/util.h"
#include "mime/mime.h"
#include "scan/pipeline.h"

#define AV_CLAMD_FOUND 1
#define AV_CLAMD_NAME_LEN 128 /* signature names are cut to this */

struct av_clamd;

/* addr: "/path/to/clamd.ctl" or "host:port". metrics may be NULL. Only
 * stores the settings; the first scan connects. NULL on out of memory or
 * a bad address. */
struct av_clamd *av_clamd_new(const char *addr, int64_t timeout_ms, uint64_t max_stream,
			      struct metrics *metrics);
void av_clamd_free(struct av_clamd *c);

/* Scans one buffer. deadline_us (time_mono_us() clock, 0: none) caps
 * every wait. On AV_CLAMD_FOUND, name gets the signature. */
int av_clamd_scan(struct av_clamd *c, const void *data, size_t len, int64_t deadline_us, char *name,
		  size_t namelen, char *why, size_t whylen) MXG_WUR;

enum av_clamd_event {
	AV_CLAMD_EV_FOUND,   /* name: the signature */
	AV_CLAMD_EV_SKIPPED, /* the part is over av.clamd_max_stream */
};
/* part is NULL for the raw message. */
typedef void (*av_clamd_cb)(void *arg, enum av_clamd_event ev, const char *name,
			    const struct mime_part *part);

/* Scans the raw message and the decoded leaves of m (see above). Calls cb
 * for every finding, the most deeply nested first, then returns the number
 * of findings, or a negative code (findings made before a failure have
 * been reported). */
int av_clamd_scan_msg(struct av_clamd *c, const char *raw, size_t len, const struct mime_msg *m,
		      int64_t deadline_us, av_clamd_cb cb, void *arg, char *why,
		      size_t whylen) MXG_WUR;

/* PING on a fresh connection: 0 if clamd answered PONG. */
int av_clamd_ping(const char *addr, int64_t timeout_ms, char *why, size_t whylen) MXG_WUR;

/* Parses one reply (without its NUL). expect_id > 0: the reply must start
 * with "<expect_id>: ". Returns 0 (OK), AV_CLAMD_FOUND (name set), -EFBIG
 * (size limit exceeded), -EIO (an ERROR reply) or -EPROTO (anything else).
 * Exposed for tests and the fuzzer. */
int av_clamd_reply_parse(const char *reply, size_t len, unsigned expect_id, char *name,
			 size_t namelen) MXG_WUR;

/* The pipeline check "av_clamd": disabled when av.clamd is empty. */
extern const struct scan_check scan_check_av_clamd;

#endif
