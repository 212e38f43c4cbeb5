/* SPDX-License-Identifier: MIT */
#include "core/metrics.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"
#include "core/util.h"

struct metric_desc {
	const char *name;
	const char *type;
	const char *help;
};

static const struct metric_desc metric_descs[M_COUNT] = {
    [M_SMTP_CONNECTIONS] = {"mxguard_smtp_connections_total", "counter",
			    "SMTP connections accepted"},
    [M_SMTP_SESSIONS_ACTIVE] = {"mxguard_smtp_sessions_active", "gauge", "SMTP sessions open now"},
    [M_SMTP_SESSIONS_REFUSED] = {"mxguard_smtp_sessions_refused_total", "counter",
				 "SMTP connections refused over a limit"},
    [M_SMTP_PREGREET] = {"mxguard_smtp_pregreet_total", "counter",
			 "clients that talked before the greeting"},
    [M_SMTP_MESSAGES_ACCEPTED] = {"mxguard_smtp_messages_accepted_total", "counter",
				  "messages accepted (250 after commit)"},
    [M_SMTP_MESSAGES_REJECTED] = {"mxguard_smtp_messages_rejected_total", "counter",
				  "messages refused with 5xx at DATA/BDAT"},
    [M_SMTP_RCPTS_ACCEPTED] = {"mxguard_smtp_recipients_accepted_total", "counter",
			       "RCPT TO accepted"},
    [M_SMTP_RCPTS_REJECTED] = {"mxguard_smtp_recipients_rejected_total", "counter",
			       "RCPT TO refused"},
    [M_SMTP_TEMPFAILS] = {"mxguard_smtp_tempfails_total", "counter",
			  "4xx replies for internal failures"},
    [M_SMTP_BYTES_ACCEPTED] = {"mxguard_smtp_bytes_accepted_total", "counter",
			       "message bytes accepted"},
    [M_SMTP_PROTOCOL_ERRORS] = {"mxguard_smtp_protocol_errors_total", "counter",
				"syntax and sequence errors from clients"},
    [M_SMTP_TIMEOUTS] = {"mxguard_smtp_timeouts_total", "counter",
			 "sessions closed for a time-out"},
    [M_STORE_COMMITS] = {"mxguard_store_commits_total", "counter",
			 "group commits (one fsync each)"},
    [M_STORE_COMMITTED_MESSAGES] = {"mxguard_store_committed_messages_total", "counter",
				    "messages made durable"},
    [M_STORE_ERRORS] = {"mxguard_store_errors_total", "counter", "store operations failed"},
    [M_DELIVERY_ATTEMPTS] = {"mxguard_delivery_attempts_total", "counter",
			     "delivery attempts per recipient"},
    [M_DELIVERY_DELIVERED] = {"mxguard_delivery_delivered_total", "counter",
			      "recipients delivered"},
    [M_DELIVERY_DEFERRED] = {"mxguard_delivery_deferred_total", "counter",
			     "recipients deferred for a retry"},
    [M_DELIVERY_BOUNCED] = {"mxguard_delivery_bounced_total", "counter",
			    "recipients failed permanently or expired"},
    [M_DELIVERY_DSN_CREATED] = {"mxguard_delivery_dsn_created_total", "counter",
				"delivery status notifications queued"},
    [M_DELIVERY_QUEUE_SIZE] = {"mxguard_queue_recipients", "gauge",
			       "recipients waiting for delivery"},
    [M_SCAN_MESSAGES] = {"mxguard_scan_messages_total", "counter",
			 "messages through the content checks"},
    [M_SCAN_REJECTED] = {"mxguard_scan_rejected_total", "counter",
			 "messages refused by a content check"},
    [M_SCAN_TEMPFAILED] = {"mxguard_scan_tempfailed_total", "counter",
			   "messages deferred because a check could not answer"},
    [M_SCAN_TIMEOUTS] = {"mxguard_scan_timeouts_total", "counter",
			 "messages whose scan missed its deadline"},
    [M_WORKER_RESTARTS] = {"mxguard_worker_restarts_total", "counter",
			   "workers restarted after an abnormal exit"},
    [M_DNS_QUERIES] = {"mxguard_dns_queries_total", "counter", "DNS look-ups requested"},
    [M_DNS_CACHE_HITS] = {"mxguard_dns_cache_hits_total", "counter",
			  "DNS look-ups answered from the cache"},
    [M_DNS_CACHE_MISSES] = {"mxguard_dns_cache_misses_total", "counter",
			    "DNS look-ups not in the cache"},
    [M_DNS_TIMEOUTS] = {"mxguard_dns_timeouts_total", "counter", "DNS look-ups that timed out"},
    [M_DNSBL_CHECKS] = {"mxguard_dnsbl_checks_total", "counter",
			"client addresses checked against the DNS lists"},
    [M_DNSBL_QUERIES] = {"mxguard_dnsbl_queries_total", "counter", "DNS list zone look-ups"},
    [M_DNSBL_HITS] = {"mxguard_dnsbl_hits_total", "counter", "DNS list zones that listed a client"},
    [M_DNSBL_TIMEOUTS] = {"mxguard_dnsbl_timeouts_total", "counter",
			  "DNS list zones skipped: no answer within the budget"},
    [M_DNSBL_REJECTS] = {"mxguard_dnsbl_rejects_total", "counter",
			 "checks whose score reached dnsbl.reject_score"},
    [M_AV_CLAMD_SCANS] = {"mxguard_av_clamd_scans_total", "counter",
			  "buffers scanned by clamd (INSTREAM answered)"},
    [M_AV_CLAMD_FOUND] = {"mxguard_av_clamd_found_total", "counter",
			  "clamd answers that named a threat"},
    [M_AV_CLAMD_ERRORS] = {"mxguard_av_clamd_errors_total", "counter",
			   "clamd unreachable, ERROR replies, garbage, lost connections"},
    [M_AV_CLAMD_TIMEOUTS] = {"mxguard_av_clamd_timeouts_total", "counter",
			     "clamd operations that ran out of time"},
    [M_AV_CLAMD_SKIPPED] = {"mxguard_av_clamd_skipped_total", "counter",
			    "parts larger than av.clamd_max_stream, not sent to clamd"},
    [M_AV_YARA_SCANS] = {"mxguard_av_yara_scans_total", "counter",
			 "buffers scanned by YARA and the hash lists"},
    [M_AV_YARA_FOUND] = {"mxguard_av_yara_found_total", "counter", "YARA rule matches"},
    [M_AV_YARA_ERRORS] = {"mxguard_av_yara_errors_total", "counter", "YARA scans that failed"},
    [M_AV_YARA_TIMEOUTS] = {"mxguard_av_yara_timeouts_total", "counter",
			    "YARA scans that ran out of time"},
    [M_AV_HASH_FOUND] = {"mxguard_av_hash_found_total", "counter", "hash list matches"},
    [M_AV_FILETYPE_HITS] = {"mxguard_av_filetype_hits_total", "counter",
			    "executables, macros and encrypted archives found"},
    [M_AV_REJECTS] = {"mxguard_av_rejects_total", "counter",
		      "messages refused by the antivirus layer"},
    [M_AV_TEMPFAILS] = {"mxguard_av_tempfails_total", "counter",
			"messages deferred because an antivirus engine failed"},
    [M_AV_FAILURES_PASSED] = {"mxguard_av_failures_passed_total", "counter",
			      "engine failures let through with a symbol (av.on_failure = pass)"},
    [M_POLICY_BLOCKED] = {"mxguard_policy_blocked_total", "counter",
			  "recipients refused at RCPT by a block list"},
    [M_POLICY_TAGGED] = {"mxguard_policy_tagged_total", "counter",
			 "recipients given the tagged copy (subject prefix)"},
    [M_POLICY_QUARANTINED] = {"mxguard_policy_quarantined_total", "counter",
			      "recipients whose copy went to the quarantine"},
    [M_POLICY_REJECTED] = {"mxguard_policy_rejected_total", "counter",
			   "messages refused at DATA for their SpamScore"},
    [M_QUARANTINE_EXPIRED] = {"mxguard_quarantine_expired_total", "counter",
			      "quarantine entries removed at the end of their retention"},
    [M_QUARANTINE_HELD] = {"mxguard_quarantine_held", "gauge",
			   "quarantine entries held (not released)"},
};

struct metrics *metrics_new(void)
{
	void *p = mmap(NULL, sizeof(struct metrics), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fatal("mmap of the metrics page failed");
	memset(p, 0, sizeof(struct metrics));
	return p;
}

void metrics_free(struct metrics *m)
{
	if (m)
		munmap(m, sizeof(*m));
}

int64_t metrics_sessions_active(const struct metrics *m)
{
	int64_t n = 0;

	for (int i = 0; i < METRICS_MAX_WORKERS; i++)
		n += __atomic_load_n(&m->smtp_active[i], __ATOMIC_RELAXED);
	return n;
}

size_t metrics_render(const struct metrics *m, char *buf, size_t len)
{
	size_t o = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	for (int i = 0; i < M_COUNT; i++) {
		int r = snprintf(buf + o, len - o, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n",
				 metric_descs[i].name, metric_descs[i].help, metric_descs[i].name,
				 metric_descs[i].type, metric_descs[i].name,
				 (long long)(i == M_SMTP_SESSIONS_ACTIVE
						 ? metrics_sessions_active(m)
						 : metrics_get(m, (enum metric_id)i)));
		if (r < 0 || (size_t)r >= len - o)
			return o;
		o += (size_t)r;
	}
	return o;
}
