/* SPDX-License-Identifier: MIT */
/*
 * store_dmarc: the data of DMARC aggregate reports (RFC 7489 section 7.2;
 * issue 6).
 *
 * One row per evaluated message whose From domain publishes rua= (written
 * by the SMTP workers' store threads, auth/dmarc_report.h), grouped later
 * per policy domain and UTC day into one report. A report is claimed
 * under its report id before it is sent (dmarc_reports): the id is the
 * same on every node for one domain and day, so when several nodes run
 * the daily job only the first claim wins (STORE_EXISTS for the others).
 * After the report is queued its rows are marked reported; rows older than
 * the retention are purged, reported or not.
 *
 * Results as in store.h. Strings handed to callbacks live until they
 * return.
 */
#ifndef MXG_STORE_DMARC_H
#define MXG_STORE_DMARC_H

#include "store/store.h"

#define STORE_DMARC_IP_LEN 64
#define STORE_DMARC_RUA_LEN 1024
#define STORE_DMARC_WORD_LEN 16 /* "pass", "temperror", "quarantine" ... */
#define STORE_DMARC_SEL_LEN 64
#define STORE_DMARC_ID_LEN 320

/* One evaluated message. The policy fields are the record as published
 * (p/sp: "none", "quarantine", "reject", sp "" when absent; adkim/aspf "r"
 * or "s"). Results are the RFC 7489 appendix C words. */
struct store_dmarc_row {
	int64_t ts;
	char policy_domain[STORE_DOMAIN_LEN]; /* where the record was found */
	char header_from[STORE_DOMAIN_LEN];
	char rua[STORE_DMARC_RUA_LEN];
	char source_ip[STORE_DMARC_IP_LEN];
	char disposition[STORE_DMARC_WORD_LEN]; /* applied: none/quarantine/reject */
	char reason[STORE_DMARC_WORD_LEN];	/* PolicyOverrideType, "" for none */
	char dkim_eval[STORE_DMARC_WORD_LEN];	/* policy_evaluated: pass/fail */
	char spf_eval[STORE_DMARC_WORD_LEN];
	char dkim_domain[STORE_DOMAIN_LEN]; /* auth_results; "" when no signature */
	char dkim_selector[STORE_DMARC_SEL_LEN];
	char dkim_result[STORE_DMARC_WORD_LEN];
	char spf_domain[STORE_DOMAIN_LEN];
	char spf_scope[STORE_DMARC_WORD_LEN]; /* "mfrom" or "helo" */
	char spf_result[STORE_DMARC_WORD_LEN];
	char p[STORE_DMARC_WORD_LEN], sp[STORE_DMARC_WORD_LEN];
	int pct;
	char adkim[2], aspf[2];
	char fo[STORE_DMARC_WORD_LEN]; /* "0" when absent */
};

/* A (policy domain, day) with rows not yet reported. */
struct store_dmarc_period {
	char policy_domain[STORE_DOMAIN_LEN];
	int64_t begin, end; /* end is the last second of the day */
};

/* One <record> of a report: the rows that share every field but ts, with
 * their count. The policy fields and rua are those of the newest row of
 * the whole period (what the domain published last), the same in every
 * callback of one aggregate. */
struct store_dmarc_agg {
	struct store_dmarc_row r;
	int64_t count;
};

typedef int (*store_dmarc_period_cb)(const struct store_dmarc_period *p, void *arg);
typedef int (*store_dmarc_agg_cb)(const struct store_dmarc_agg *a, void *arg);

/* Stores one row (r->ts 0: now). */
int store_dmarc_record(struct store *st, const struct store_dmarc_row *r) MXG_WUR;
/* The UTC days with unreported rows that end before `before`, oldest
 * first. */
int store_dmarc_due(struct store *st, int64_t before, store_dmarc_period_cb cb, void *arg) MXG_WUR;
/* The unreported rows of a policy domain in [begin, end], grouped. */
int store_dmarc_aggregate(struct store *st, const char *policy_domain, int64_t begin, int64_t end,
			  store_dmarc_agg_cb cb, void *arg) MXG_WUR;
/* Claims report_id for (policy_domain, begin, end). STORE_EXISTS: it was
 * claimed before (by this node or another): do not send it. */
int store_dmarc_claim(struct store *st, const char *report_id, const char *policy_domain,
		      int64_t begin, int64_t end, int64_t now) MXG_WUR;
/* Gives up a claim whose report could not be queued (sent again later). */
int store_dmarc_unclaim(struct store *st, const char *report_id) MXG_WUR;
/* Marks the rows of (policy_domain, begin, end) reported and notes the
 * report's queue id ("" when none was sent) on the claim. */
int store_dmarc_mark(struct store *st, const char *report_id, const char *policy_domain,
		     int64_t begin, int64_t end, const char *queue_id) MXG_WUR;
/* Removes rows and claims older than `before`. *n (may be NULL) gets the
 * number of rows removed. */
int store_dmarc_purge(struct store *st, int64_t before, int64_t *n) MXG_WUR;

/* ---- for backends ------------------------------------------------------ */

struct store_dmarc_ops {
	int (*record)(struct store *st, const struct store_dmarc_row *r);
	int (*due)(struct store *st, int64_t before, store_dmarc_period_cb cb, void *arg);
	int (*aggregate)(struct store *st, const char *policy_domain, int64_t begin, int64_t end,
			 store_dmarc_agg_cb cb, void *arg);
	int (*claim)(struct store *st, const char *report_id, const char *policy_domain,
		     int64_t begin, int64_t end, int64_t now);
	int (*unclaim)(struct store *st, const char *report_id);
	int (*mark)(struct store *st, const char *report_id, const char *policy_domain,
		    int64_t begin, int64_t end, const char *queue_id);
	int (*purge)(struct store *st, int64_t before, int64_t *n);
};

#endif
