/* SPDX-License-Identifier: MIT */
/*
 * dmarc_report: DMARC aggregate reports (RFC 7489 section 7.2 and
 * appendix C), collected per evaluated message and sent once a day.
 *
 * Collection, in two steps so that the SMTP worker's loop never touches
 * the store:
 *   - on the loop thread, dmarc_report_row() turns the DMARC outcome and
 *     the SPF/DKIM results of one message into a self-contained row (every
 *     string copied); it answers -ENOENT when nothing is to be recorded:
 *     no policy found, or the record has no usable rua= (mailto: only);
 *   - on the store thread, dmarc_report_record() stores the row.
 *
 * Sending, dmarc_report_run(): for every policy domain and UTC day that
 * has unreported rows and has ended, the rows are grouped into <record>s
 * (one per source IP, disposition, evaluated results, header From and
 * authentication results, with their count), written as the appendix C
 * XML, gzip'd, attached to a MIME message ("Report Domain: D Submitter: S
 * Report-ID: <ID>", attachment named per 7.2.1.1) and committed to the
 * queue for every rua address whose size limit ("!10m") the message fits.
 * The report id is the same on every node for one domain and day and is
 * claimed in the store before the message is queued, so a report goes out
 * at most once however many nodes run the job. Rows older than the
 * retention are purged. Destinations outside the policy domain's
 * organizational domain must authorize the reports (7.1: a "v=DMARC1" TXT
 * record at POLICY-DOMAIN._report._dmarc.DEST-DOMAIN); they are asked
 * through opts->verify, and skipped when it is NULL.
 *
 * The builders (rua parser, XML, MIME) are pure functions, exported for
 * the unit tests and the fuzzer. Buffers they return are malloc'd and the
 * caller frees them. Errors: -EINVAL, -ENOMEM, -E2BIG (past a limit), or
 * a negative store code from dmarc_report_run() / dmarc_report_record().
 */
#ifndef MXG_AUTH_DMARC_REPORT_H
#define MXG_AUTH_DMARC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/spf.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_dmarc.h"

#define DMARC_REPORT_MAX_RUA 4		    /* rua URIs honoured per record */
#define DMARC_REPORT_MAX_RECORDS 20000	    /* <record>s in one report */
#define DMARC_REPORT_MAX_XML (32 << 20)	    /* bytes of XML before gzip */
#define DMARC_REPORT_MAX_MSG (16 << 20)	    /* bytes of the whole message */
#define DMARC_REPORT_RETENTION (14 * 86400) /* default row retention */

/* ---- collection ---------------------------------------------------------- */

struct dmarc_report_sig {
	const char *domain;   /* d= */
	const char *selector; /* s= */
	enum dkim_result result;
};

struct dmarc_report_input {
	const struct dmarc_outcome *outcome; /* from dmarc_check() */
	const char *source_ip;		     /* the SMTP client */
	enum spf_result spf;
	const char *spf_domain; /* the domain SPF checked */
	bool spf_helo;		/* it was the HELO identity (no MAIL FROM domain) */
	const struct dmarc_report_sig *sigs;
	size_t nsigs;
	/* What was done with the message: DMARC_POLICY_NONE when delivered
	 * as usual, QUARANTINE, REJECT. DMARC_POLICY_UNSET: the outcome's
	 * disposition for a failing message, none otherwise. */
	enum dmarc_policy applied;
	const char *reason; /* PolicyOverrideType; NULL: "sampled_out" if pct did */
	int64_t now;	    /* 0: the clock */
};

/* Fills *row from in (loop thread; no I/O). 0: store it; -ENOENT: nothing
 * to record; -EINVAL: bad input. */
int dmarc_report_row(const struct dmarc_report_input *in, struct store_dmarc_row *row) MXG_WUR;
/* Stores a row made by dmarc_report_row() (store thread). */
int dmarc_report_record(struct store *st, const struct store_dmarc_row *row) MXG_WUR;

/* ---- builders -------------------------------------------------------------- */

struct dmarc_rua {
	char addr[STORE_ADDR_LEN]; /* the mailto: address, %-decoded */
	uint64_t limit;		   /* bytes; 0: no limit */
};

/* Parses a rua= value ("mailto:a@example.com!10m, mailto:b@x"): up to max
 * mailto: URIs into out (other schemes are skipped). 0 with *n >= 0;
 * -EINVAL for a malformed mailto: URI (the others are still returned). */
int dmarc_rua_parse(const char *rua, struct dmarc_rua *out, size_t max, size_t *n);

struct dmarc_report_meta {
	const char *org_name;
	const char *email;	   /* the reporter's contact address */
	const char *extra_contact; /* NULL: none */
	const char *report_id;
	int64_t begin, end;
};

/* The appendix C document for recs[0..n) (one policy domain: the policy
 * published is taken from recs[0]). */
int dmarc_report_xml(const struct dmarc_report_meta *m, const struct store_dmarc_agg *recs,
		     size_t n, char **out, size_t *outlen) MXG_WUR;

/* gzip (RFC 1952) of in[0..len). */
int dmarc_report_gzip(const char *in, size_t len, unsigned char **out, size_t *outlen) MXG_WUR;

/* RFC 7489 7.2.1.1: receiver!policy-domain!begin!end.xml.gz */
int dmarc_report_filename(const char *receiver, const char *policy_domain, int64_t begin,
			  int64_t end, char *out, size_t outlen) MXG_WUR;

struct dmarc_report_mail {
	const char *from;      /* report_from address */
	const char *org_name;  /* display name */
	const char *submitter; /* the domain named in Subject and file name */
	const char *policy_domain;
	const char *report_id;
	const char *message_id; /* without <> */
	int64_t begin, end, now;
	const char *const *to; /* the rua addresses */
	size_t nto;
};

/* The complete message (CRLF lines): a text part and the gzip'd XML as a
 * base64 application/gzip attachment. */
int dmarc_report_message(const struct dmarc_report_mail *m, const unsigned char *gz, size_t gzlen,
			 char **out, size_t *outlen) MXG_WUR;

/* ---- the daily job ----------------------------------------------------------- */

/* 1: dest_domain accepts reports about policy_domain, 0: it does not,
 * negative: could not tell (try again next run). */
typedef int (*dmarc_report_verify_fn)(void *arg, const char *policy_domain,
				      const char *dest_domain);

struct dmarc_report_opts {
	const char *org_name;
	const char *from;	       /* report_from; its domain is the submitter */
	const char *hostname;	       /* for Message-ID and the queue entry */
	int64_t now;		       /* 0: the clock */
	int64_t retention;	       /* seconds rows are kept; 0: DMARC_REPORT_RETENTION */
	const struct psl_ctx_st *psl;  /* organizational domains (NULL: exact match) */
	dmarc_report_verify_fn verify; /* external destinations; NULL: skipped */
	void *verify_arg;
};

struct dmarc_report_stats {
	size_t reports; /* reports queued */
	size_t records; /* <record>s in them */
	size_t skipped; /* periods claimed elsewhere or with no usable address */
	size_t failed;	/* periods left for the next run */
	int64_t purged; /* rows removed */
};

/* Sends every report that is due at opts->now (see above). */
int dmarc_report_run(struct store *st, const struct dmarc_report_opts *opts,
		     struct dmarc_report_stats *stats) MXG_WUR;

struct config;

/* dmarc_report_run() with the options of the [dmarc] section (report_org,
 * report_from or dmarc-reports@node.hostname, report_retention) and the
 * system's Public Suffix List; what the delivery worker's daily timer and
 * `mxguard dmarc report --now` call. Logs a summary line. */
int dmarc_report_daily(struct store *st, const struct config *cfg, int64_t now,
		       struct dmarc_report_stats *stats) MXG_WUR;

/* The first time >= now at offset seconds after midnight UTC. */
int64_t dmarc_report_next(int64_t now, int64_t offset);

#endif
