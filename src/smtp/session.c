/* SPDX-License-Identifier: MIT */
#include "smtp/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include <openssl/err.h>

#include "auth/arc.h"
#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/dmarc_report.h"
#include "auth/spf.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "net/proxy.h"
#include "policy/policy.h"
#include "policy/tag.h"
#include "scan/bayes.h"
#include "scan/fcrdns.h"
#include "scan/filetype.h"
#include "scan/pipeline.h"
#include "scan/relationship.h"
#include "smtp/addr.h"
#include "smtp/data.h"
#include "store/store_quarantine.h"

/* Room kept in front of the body for our trace header (Received:). */
#define TRACE_HEADROOM 24576
/* Stop reading while this much of our replies is unsent (a client that
 * pipelines without reading must not make us buffer without bound). */
#define OUTPUT_HIGH_WATER (256 * 1024)
/* Closing a TLS session waits up to 100 x 20 ms for its last bytes. */
#define LINGER_TICK_US (20 * 1000)
#define LINGER_TICKS_MAX 100
/* Reputation counts decay continuously; this much below a threshold
 * still counts as reaching it. */
#define REP_SLACK 0.05
/* BDAT chunk sizes are parsed as at most this many digits. */
#define BDAT_SIZE_DIGITS 12

enum smtp_state {
	ST_GREET = 1 << 0, /* banner sent, no HELO/EHLO yet */
	ST_IDLE = 1 << 1,  /* HELO/EHLO done, no transaction */
	ST_MAIL = 1 << 2,  /* MAIL accepted, no recipient yet */
	ST_RCPT = 1 << 3,  /* at least one recipient accepted */
	ST_DATA = 1 << 4,  /* reading DATA content */
	ST_BDAT = 1 << 5,  /* reading a BDAT chunk */
	ST_QUIT = 1 << 6,  /* closing */
};
#define ST_ANY_CMD (ST_GREET | ST_IDLE | ST_MAIL | ST_RCPT)

static const char *state_name(enum smtp_state st)
{
	switch (st) {
	case ST_GREET:
		return "greet";
	case ST_IDLE:
		return "idle";
	case ST_MAIL:
		return "mail";
	case ST_RCPT:
		return "rcpt";
	case ST_DATA:
		return "data";
	case ST_BDAT:
		return "bdat";
	case ST_QUIT:
		return "quit";
	}
	return "?";
}

struct smtp_tx_rcpt {
	char addr[STORE_ADDR_LEN];
	int64_t mailbox_id;
	int64_t domain_id;
	struct policy policy;	   /* resolved at RCPT */
	enum policy_action action; /* decided after the scan */
	enum policy_reason reason;
	char why[POLICY_WHY_LEN];
};

/* One RCPT's look-up on the store thread: the recipient, then its policy
 * with the lists matched against this sender and client. */
struct rcpt_job {
	struct smtp_session *s;
	char addr[STORE_ADDR_LEN];
	char sender[STORE_ADDR_LEN];
	char client[INET6_ADDRSTRLEN + 8];
	struct store_rcpt r;
	struct policy p;
};

/* One mail transaction: MAIL .. end of DATA/BDAT, or RSET. */
struct smtp_tx {
	char qid[QUEUE_ID_LEN + 1];
	struct smtp_path from;
	bool body_8bit;
	bool smtputf8;
	int64_t declared_size;
	struct smtp_tx_rcpt *rcpts;
	size_t nrcpts;
	char pending_rcpt[STORE_ADDR_LEN]; /* RCPT being looked up */
	bool bdat;			   /* BDAT used: DATA is no longer allowed */
	bool bdat_no_rcpt;		   /* BDAT without recipients: consume, refuse */
	struct buf body;
	struct smtp_data dec;
	struct store_message msg;
	struct store_msg_rcpt *mrcpts;
	const char **rcpt_list; /* for the scan request */
	/* sender authentication (issue 6): SPF from MAIL FROM on, DKIM after
	 * the end of data; both async on the loop, cancelled with the tx */
	struct spf_req *spf;
	bool spf_done, wait_spf;
	enum spf_result spf_result;
	char spf_domain[STORE_DOMAIN_LEN];
	char spf_detail[192];
	struct dkim_req *dkim;
	size_t ndkim;
	struct {
		enum dkim_result result;
		char domain[STORE_DOMAIN_LEN];
		char selector[64];
		char why[96];
	} dkim_sigs[DKIM_MAX_SIGNATURES];
	struct arc_req *arc; /* ARC (RFC 8617), after DKIM */
	bool arc_done;
	bool arc_tempfail; /* a key look-up failed: the chain is unknown */
	enum arc_result arc_result;
	char arc_detail[160];
	char ar[2048]; /* our Authentication-Results, unfolded (ARC reuses it) */
	struct dmarc_req *dmarc;
	bool dmarc_done;
	enum dmarc_result dmarc_result;
	enum dmarc_policy dmarc_disposition;
	char dmarc_from[STORE_DOMAIN_LEN];
	char dmarc_detail[160];
	struct scan_symbol pre[24]; /* connection findings for the scan */
	int64_t started_us;
	/* the verdict and the copies it makes (issue 7) */
	enum { VERDICT_URIBL, VERDICT_REL, VERDICT_DECIDE } stage;
	struct scan_result res; /* the scan's, kept, plus what the stages add */
	struct scan_symbol *syms;
	size_t syms_cap;
	char (*domains)[SCAN_DOMAIN_LEN];
	size_t ndomains;
	struct uribl_req *uribl;
	void *learn; /* Bayes tokens for autolearn */
	void (*learn_free)(void *learn);
	double learn_value;
	double score;
	bool virus;
	char *verdict; /* every symbol, one per line (quarantine, log) */
	char *trace;   /* our trace block (build_trace) */
	size_t trace_len;
	char *qcopy;  /* the quarantine's copy, or NULL */
	char *tagged; /* the tagged copy, or NULL */
	size_t tagged_len;
	struct store_quarantine_info qinfo;
	char subject[STORE_SUBJECT_LEN];
	char qreason[STORE_REASON_LEN];
};

struct smtp_session {
	struct smtp_env *env;
	struct smtp_session *prev, *next;
	struct bufferevent *bev;
	uint64_t sid;
	char client[INET6_ADDRSTRLEN + 8]; /* address as text */
	bool client_v6;
	uint16_t client_port;
	char helo[256];
	bool esmtp;
	bool tls;	    /* STARTTLS done (handshake may still run) */
	char tls_info[128]; /* "TLSv1.3 TLS_AES_256_GCM_SHA384" once up */
	enum smtp_state state;
	unsigned nerrors;
	unsigned ncommands;
	unsigned nmessages;
	bool waiting;	      /* an async store job is in flight */
	bool dead;	      /* connection gone; free when the job returns */
	bool discarding;      /* skipping the rest of an over-long line */
	bool drain;	      /* close at the next idle point */
	struct event *linger; /* waits for the last TLS bytes before closing */
	struct sockaddr_storage peer;
	bool allowlisted;	      /* limits.allow_networks: no limits, no delay */
	bool limited;		      /* counted by limits_connect */
	bool pregreet;		      /* the greeting has not been sent yet */
	bool proxy_wait;	      /* expecting the PROXY header */
	char rep_ip[64], rep_net[64]; /* reputation keys of the client */
	struct dnsbl_req *dnsbl;      /* DNS lists for the client, from connect */
	struct fcrdns_req *fcrdns;    /* forward-confirmed reverse DNS */
	bool wait_dnsbl;	      /* an RCPT waits for the DNS lists */
	double rep_spam, rep_ham;     /* its record at connect */
	struct event *greet_timer;    /* limits.greet_delay */
	double cmd_tokens;	      /* command rate bucket */
	int64_t cmd_refilled_ms;
	int linger_ticks;
	int64_t bdat_remaining;
	bool bdat_last;
	struct smtp_tx *tx;
};

static void session_process(struct smtp_session *s);
static bool proxy_header(struct smtp_session *s, struct evbuffer *in);
static void session_greet(struct smtp_session *s);
static void reputation_done(int rc, const struct store_reputation rep[2], void *arg);
static void reputation_spam(struct smtp_session *s);
static void rcpt_continue(struct smtp_session *s);
static void spf_start(struct smtp_session *s);
static void auth_continue(struct smtp_session *s);
static void dmarc_start(struct smtp_session *s);
static void arc_start(struct smtp_session *s);
static int start_scan(struct smtp_session *s);
static void scan_done(const struct scan_result *r, void *arg);
static void commit_message(struct smtp_session *s);
static void dnsbl_done(struct dnsbl_req *req, const struct dnsbl_result *r, void *arg);
static void fcrdns_done(struct fcrdns_req *req, const struct fcrdns_result *r, void *arg);
static void session_free(struct smtp_session *s);

/* An asynchronous step came back: unless the client went away meanwhile
 * (the session is then freed), run the next step, and read the next
 * command if nothing else is waited for. */
static void resume(struct smtp_session *s, void (*next)(struct smtp_session *s))
{
	s->waiting = false;
	if (s->dead) {
		session_free(s);
		return;
	}
	next(s);
	if (!s->waiting)
		session_process(s);
}

/* ---- replies and state ------------------------------------------------ */

static void reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void enter_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_debug("smtp_state", "sid=%d.%llu from=%s to=%s", s->env->worker,
		  (unsigned long long)s->sid, state_name(s->state), state_name(st));
	s->state = st;
}

/* Always called right after a reply: the session is freed by on_write once
 * that reply is sent, never synchronously, so callers may still touch s. */
static void close_after_flush(struct smtp_session *s)
{
	enter_state(s, ST_QUIT);
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_enable(s->bev, EV_WRITE);
}

/* Counts a client error; past the limit the session ends. Returns true if
 * the session is closing. */
static bool count_error(struct smtp_session *s)
{
	metrics_add(s->env->metrics, M_SMTP_PROTOCOL_ERRORS, 1);
	if (++s->nerrors < (unsigned)s->env->cfg->smtp.max_errors)
		return false;
	reply(s, "421 4.7.0 %s Error: too many errors", s->env->cfg->node.hostname);
	log_info("smtp_limit", "sid=%d.%llu client=%s limit=errors count=%u", s->env->worker,
		 (unsigned long long)s->sid, s->client, s->nerrors);
	close_after_flush(s);
	return true;
}

/* ---- transactions ----------------------------------------------------- */

static struct smtp_tx *smtp_tx_new(struct smtp_session *s)
{
	const struct config *cfg = s->env->cfg;
	struct smtp_tx *tx = calloc(1, sizeof(*tx));

	if (!tx)
		return NULL;
	tx->rcpts = calloc((size_t)cfg->smtp.max_recipients, sizeof(*tx->rcpts));
	if (!tx->rcpts) {
		free(tx);
		return NULL;
	}
	queue_id_new(tx->qid);
	buf_init(&tx->body, (size_t)cfg->smtp.max_message_size, TRACE_HEADROOM);
	tx->started_us = time_mono_us();
	return tx;
}

/* The one way a transaction ends: RSET, EHLO, end of DATA, errors, close. */
static void smtp_tx_free(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (!tx)
		return;
	buf_free(&tx->body);
	spf_cancel(tx->spf);
	dkim_cancel(tx->dkim);
	arc_cancel(tx->arc);
	dmarc_cancel(tx->dmarc);
	free(tx->mrcpts);
	free(tx->rcpt_list);
	free(tx->verdict);
	free(tx->tagged);
	free(tx->syms);
	free(tx->domains);
	uribl_req_free(tx->uribl);
	if (tx->learn && tx->learn_free)
		tx->learn_free(tx->learn);
	free(tx->trace);
	free(tx->qcopy);
	free(tx->rcpts);
	free(tx);
	s->tx = NULL;
	s->bdat_remaining = 0;
	s->bdat_last = false;
	if (s->state & (ST_MAIL | ST_RCPT | ST_DATA | ST_BDAT))
		enter_state(s, ST_IDLE);
}

/* ---- commands --------------------------------------------------------- */

struct smtp_cmd {
	const char *verb;
	unsigned states; /* where the command is allowed */
	const char *bad_sequence;
	void (*run)(struct smtp_session *s, const char *args);
};

static void cmd_helo_common(struct smtp_session *s, const char *args, bool esmtp)
{
	size_t n = strlen(args);

	if (n == 0 || strchr(args, ' ')) {
		reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		count_error(s);
		return;
	}
	smtp_tx_free(s);
	(void)str_copyn(s->helo, sizeof(s->helo), args, n);
	for (char *p = s->helo; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p >= 0x7f || *p == '(' || *p == ')')
			*p = '?';
	s->esmtp = esmtp;
	enter_state(s, ST_IDLE);
}

static void cmd_helo(struct smtp_session *s, const char *args)
{
	cmd_helo_common(s, args, false);
	if (s->state == ST_IDLE)
		reply(s, "250 %s", s->env->cfg->node.hostname);
}

static void cmd_ehlo(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->env->cfg;

	cmd_helo_common(s, args, true);
	if (s->state != ST_IDLE)
		return;
	reply(s, "250-%s", cfg->node.hostname);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %lld", (long long)cfg->smtp.max_message_size);
	reply(s, "250-8BITMIME");
	reply(s, "250-SMTPUTF8");
	reply(s, "250-ENHANCEDSTATUSCODES");
	if (s->env->tls && !s->tls)
		reply(s, "250-STARTTLS");
	reply(s, "250 CHUNKING");
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* RFC 3207. The 220 goes out in clear, then every byte is TLS. Input the
 * client pipelined after STARTTLS is thrown away, never read as commands
 * of the protected session (the CVE-2011-0411 class of injection). */
static void cmd_starttls(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->env->cfg;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *tlsbev;
	SSL *ssl;

	if (*args) {
		reply(s, "501 5.5.4 Syntax: STARTTLS");
		count_error(s);
		return;
	}
	if (!s->env->tls) {
		reply(s, "502 5.5.1 STARTTLS not available");
		count_error(s);
		return;
	}
	if (s->tls) {
		reply(s, "503 5.5.1 Error: TLS already active");
		count_error(s);
		return;
	}
	ssl = SSL_new(s->env->tls);
	if (!ssl) {
		reply(s, "454 4.7.0 TLS not available due to temporary reason");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	if (evbuffer_get_length(in) > 0) {
		log_info("starttls_injection", "sid=%d.%llu client=%s bytes=%zu", s->env->worker,
			 (unsigned long long)s->sid, s->client, evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	tlsbev = bufferevent_openssl_filter_new(s->env->base, s->bev, ssl,
						BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!tlsbev) {
		SSL_free(ssl);
		reply(s, "421 4.7.0 %s Error: TLS setup failed", cfg->node.hostname);
		close_after_flush(s);
		return;
	}
	s->bev = tlsbev;
	s->tls = true;
	/* A new session starts inside TLS: the client must EHLO again. */
	s->helo[0] = '\0';
	s->esmtp = false;
	enter_state(s, ST_GREET);
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_set_timeouts(s->bev, &(struct timeval){.tv_sec = cfg->smtp.timeout_command},
				 &(struct timeval){.tv_sec = cfg->smtp.timeout_command});
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void cmd_mail(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->env->cfg;
	struct smtp_path from;
	char key[32], val[64];
	bool smtputf8 = false, body8 = false;
	int64_t size = 0;
	int r;

	if (s->drain) {
		reply(s, "421 4.3.2 %s Service shutting down, try again later", cfg->node.hostname);
		close_after_flush(s);
		return;
	}
	if (!str_case_prefix(args, "FROM:")) {
		reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		count_error(s);
		return;
	}
	args += 5;
	while (*args == ' ')
		args++;
	r = smtp_path_parse(&args, true, &from);
	if (r < 0 || from.no_domain) {
		reply(s, "501 5.1.7 Bad sender address syntax");
		count_error(s);
		return;
	}
	if (*args && *args != ' ') {
		reply(s, "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
		count_error(s);
		return;
	}
	while ((r = smtp_param_next(&args, key, sizeof(key), val, sizeof(val))) > 0) {
		if (!s->esmtp) {
			reply(s, "555 5.5.4 Parameters need EHLO");
			count_error(s);
			return;
		}
		if (!strcasecmp(key, "SIZE")) {
			if (parse_int64(val, 0, INT64_MAX, &size) < 0) {
				reply(s, "501 5.5.4 Bad SIZE parameter");
				count_error(s);
				return;
			}
		} else if (!strcasecmp(key, "BODY")) {
			if (!strcasecmp(val, "8BITMIME"))
				body8 = true;
			else if (strcasecmp(val, "7BIT") != 0) {
				reply(s, "555 5.5.4 Unsupported BODY type");
				count_error(s);
				return;
			}
		} else if (!strcasecmp(key, "SMTPUTF8") && !val[0]) {
			smtputf8 = true;
		} else {
			reply(s, "555 5.5.4 Unsupported option: %.32s", key);
			count_error(s);
			return;
		}
	}
	if (r < 0) {
		reply(s, "501 5.5.4 Bad MAIL parameter syntax");
		count_error(s);
		return;
	}
	if (from.utf8 && !smtputf8) {
		reply(s, "553 5.6.7 Non-ASCII sender address needs SMTPUTF8");
		count_error(s);
		return;
	}
	if (size > cfg->smtp.max_message_size) {
		reply(s, "552 5.3.4 Message size exceeds fixed limit of %lld bytes",
		      (long long)cfg->smtp.max_message_size);
		return;
	}
	s->tx = smtp_tx_new(s);
	if (!s->tx) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 Error: out of memory, try again later");
		return;
	}
	s->tx->from = from;
	s->tx->smtputf8 = smtputf8;
	s->tx->body_8bit = body8;
	s->tx->declared_size = size;
	enter_state(s, ST_MAIL);
	reply(s, "250 2.1.0 Ok");
	spf_start(s);
}

/* Store thread. */
static int rcpt_job_run(struct store *st, void *arg)
{
	struct rcpt_job *j = arg;
	struct policy_subject subj = {.sender = j->sender, .client = j->client};
	int rc = store_rcpt_lookup(st, j->addr, &j->r);

	if (rc == STORE_OK && j->r.cls == STORE_RCPT_LOCAL)
		rc = policy_load(st, j->r.mailbox_id, j->r.domain_id, &subj, &j->p);
	return rc;
}

static void rcpt_done(struct smtp_session *s, int rc, const struct store_rcpt *r,
		      const struct policy *pol);

static void rcpt_job_done(int rc, void *arg)
{
	struct rcpt_job *j = arg;

	rcpt_done(j->s, rc, rc == STORE_OK ? &j->r : NULL, &j->p);
	free(j);
}

static int rcpt_lookup(struct smtp_session *s)
{
	struct rcpt_job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->s = s;
	(void)str_copy(j->addr, sizeof(j->addr), s->tx->pending_rcpt);
	(void)str_copy(j->sender, sizeof(j->sender), s->tx->from.addr);
	(void)str_copy(j->client, sizeof(j->client), s->client);
	if (store_async_call(s->env->store, rcpt_job_run, rcpt_job_done, j) < 0) {
		free(j);
		return -ENOMEM;
	}
	return 0;
}

static void rcpt_done(struct smtp_session *s, int rc, const struct store_rcpt *r,
		      const struct policy *pol)
{
	struct smtp_tx *tx = s->tx;
	char q[STORE_ADDR_LEN + 8];

	s->waiting = false;
	if (s->dead) {
		session_free(s);
		return;
	}
	log_quote(q, sizeof(q), tx->pending_rcpt);
	if (rc != STORE_OK) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 <%s>: Temporary lookup failure, try again later",
		      tx->pending_rcpt);
		log_warn("rcpt_tempfail", "qid=%s client=%s rcpt=%s", tx->qid, s->client, q);
	} else if (r->cls == STORE_RCPT_LOCAL && r->require_tls && !s->tls_info[0]) {
		/* RFC 3207 4: the domain's policy refuses mail sent in clear, so a
		 * stripped or downgraded STARTTLS cannot carry its mail. */
		metrics_add(s->env->metrics, M_SMTP_RCPTS_REJECTED, 1);
		reply(s,
		      "530 5.7.0 <%s>: Must issue a STARTTLS command first (TLS is required for "
		      "this domain)",
		      tx->pending_rcpt);
		log_info("rcpt_reject", "qid=%s client=%s rcpt=%s reason=tls_required", tx->qid,
			 s->client, q);
		if (count_error(s))
			return;
	} else if (r->cls == STORE_RCPT_LOCAL && pol->listed == POLICY_LISTED_BLOCK &&
		   !s->allowlisted) {
		char why[POLICY_WHY_LEN + 8];
		metrics_add(s->env->metrics, M_SMTP_RCPTS_REJECTED, 1);
		metrics_add(s->env->metrics, M_POLICY_BLOCKED, 1);
		reply(s, "550 5.7.1 <%s>: Sender rejected by the recipient's policy",
		      tx->pending_rcpt);
		log_info("rcpt_reject", "qid=%s client=%s rcpt=%s reason=policy_block list=%s",
			 tx->qid, s->client, q, log_quote(why, sizeof(why), pol->listed_why));
		if (count_error(s))
			return;
	} else if (r->cls == STORE_RCPT_LOCAL) {
		bool dup = false;
		for (size_t i = 0; i < tx->nrcpts; i++)
			if (!strcmp(tx->rcpts[i].addr, tx->pending_rcpt))
				dup = true;
		if (!dup) {
			struct smtp_tx_rcpt *slot = &tx->rcpts[tx->nrcpts++];
			(void)str_copy(slot->addr, sizeof(slot->addr), tx->pending_rcpt);
			slot->mailbox_id = r->mailbox_id;
			slot->domain_id = r->domain_id;
			slot->policy = *pol;
		}
		metrics_add(s->env->metrics, M_SMTP_RCPTS_ACCEPTED, 1);
		enter_state(s, ST_RCPT);
		reply(s, "250 2.1.5 Ok");
	} else {
		bool unknown = r->cls == STORE_RCPT_UNKNOWN_MAILBOX;
		metrics_add(s->env->metrics, M_SMTP_RCPTS_REJECTED, 1);
		if (unknown)
			reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown",
			      tx->pending_rcpt);
		else
			reply(s, "554 5.7.1 <%s>: Relay access denied", tx->pending_rcpt);
		log_info("rcpt_reject", "qid=%s client=%s rcpt=%s reason=%s", tx->qid, s->client, q,
			 unknown ? "unknown_mailbox" : "relay_denied");
		if (count_error(s))
			return;
	}
	session_process(s);
}

static void cmd_rcpt(struct smtp_session *s, const char *args)
{
	struct smtp_tx *tx = s->tx;
	struct smtp_path to;
	char key[32], val[64];
	int r;

	if (!str_case_prefix(args, "TO:")) {
		reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		count_error(s);
		return;
	}
	args += 3;
	while (*args == ' ')
		args++;
	r = smtp_path_parse(&args, false, &to);
	if (r < 0 || (*args && *args != ' ')) {
		reply(s, "501 5.1.3 Bad recipient address syntax");
		count_error(s);
		return;
	}
	r = smtp_param_next(&args, key, sizeof(key), val, sizeof(val));
	if (r != 0) {
		reply(s, r < 0 ? "501 5.5.4 Bad RCPT parameter syntax"
			       : "555 5.5.4 Unsupported RCPT option");
		count_error(s);
		return;
	}
	if (to.utf8 && !tx->smtputf8) {
		reply(s, "553 5.6.7 Non-ASCII recipient address needs SMTPUTF8");
		count_error(s);
		return;
	}
	if (to.no_domain) {
		reply(s, "550 5.1.1 <postmaster>: use postmaster@ a hosted domain");
		count_error(s);
		return;
	}
	if (tx->nrcpts >= (size_t)s->env->cfg->smtp.max_recipients) {
		reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	(void)str_copy(tx->pending_rcpt, sizeof(tx->pending_rcpt), to.addr);
	rcpt_continue(s);
}

/* RCPT, once its syntax is good: first the DNS lists' verdict on the client
 * (waiting for it, within dnsbl.budget of the connect), then the store's
 * verdict on the recipient. */
static void rcpt_continue(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const struct dnsbl_result *r = s->dnsbl ? dnsbl_req_result(s->dnsbl) : NULL;

	if (s->dnsbl && !r) {
		s->wait_dnsbl = true;
		s->waiting = true;
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	if (r && r->reject && !s->allowlisted) {
		char q[STORE_ADDR_LEN + 8];
		metrics_add(s->env->metrics, M_SMTP_RCPTS_REJECTED, 1);
		metrics_add(s->env->metrics, M_DNSBL_REJECTS, 1);
		reply(s, "554 5.7.1 Service unavailable; client [%s] blocked using %s", s->client,
		      r->reject_zone ? r->reject_zone : "a DNS blocklist");
		log_info("rcpt_reject", "qid=%s client=%s rcpt=%s reason=dnsbl zone=%s score=%.1f",
			 tx->qid, s->client, log_quote(q, sizeof(q), tx->pending_rcpt),
			 r->reject_zone ? r->reject_zone : "-", r->score);
		count_error(s);
		return;
	}
	if (rcpt_lookup(s) < 0) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 Error: out of memory, try again later");
		return;
	}
	s->waiting = true;
	bufferevent_disable(s->bev, EV_READ);
}

/* The DNS lists answered (or their budget ran out). */
static void dnsbl_done(struct dnsbl_req *req, const struct dnsbl_result *r, void *arg)
{
	struct smtp_session *s = arg;
	char hits[512] = "", skipped[256] = "";
	size_t o = 0;

	(void)req;
	for (size_t i = 0; i < r->nhits && o < sizeof(hits); i++) {
		if (str_fmt(hits + o, sizeof(hits) - o, "%s%s(%.1f)", i ? "," : "",
			    r->hits[i].symbol, r->hits[i].weight) < 0)
			break;
		o += strlen(hits + o);
	}
	o = 0;
	for (size_t i = 0; i < r->nskipped && o < sizeof(skipped); i++) {
		if (str_fmt(skipped + o, sizeof(skipped) - o, "%s%s:%s", i ? "," : "",
			    r->skipped[i].zone, r->skipped[i].why) < 0)
			break;
		o += strlen(skipped + o);
	}
	if (r->nhits || r->nskipped)
		log_info("dnsbl", "sid=%d.%llu client=%s score=%.1f hits=\"%s\" skipped=\"%s\"%s",
			 s->env->worker, (unsigned long long)s->sid, s->client, r->score, hits,
			 skipped, r->reject ? " verdict=reject" : "");
	if (!s->wait_dnsbl)
		return;
	s->wait_dnsbl = false;
	s->waiting = false;
	if (s->dead) {
		session_free(s);
		return;
	}
	rcpt_continue(s);
	if (!s->waiting)
		session_process(s);
}

static void fcrdns_done(struct fcrdns_req *req, const struct fcrdns_result *r, void *arg)
{
	struct smtp_session *s = arg;

	(void)req;
	log_debug("fcrdns", "sid=%d.%llu client=%s result=%s name=%s", s->env->worker,
		  (unsigned long long)s->sid, s->client, r->symbol, r->name);
}

static void start_content(struct smtp_session *s, bool dot_mode)
{
	smtp_data_init(&s->tx->dec, &s->tx->body, dot_mode);
	bufferevent_set_timeouts(s->bev,
				 &(struct timeval){.tv_sec = s->env->cfg->smtp.timeout_data},
				 &(struct timeval){.tv_sec = s->env->cfg->smtp.timeout_command});
}

static void cmd_data(struct smtp_session *s, const char *args)
{
	if (*args) {
		reply(s, "501 5.5.4 Syntax: DATA");
		count_error(s);
		return;
	}
	if (s->tx->bdat) {
		reply(s, "503 5.5.1 Error: DATA after BDAT");
		count_error(s);
		return;
	}
	if (s->state != ST_RCPT) {
		reply(s, "554 5.5.1 Error: no valid recipients");
		count_error(s);
		return;
	}
	start_content(s, true);
	enter_state(s, ST_DATA);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void cmd_bdat(struct smtp_session *s, const char *args)
{
	const char *p = args;
	char num[BDAT_SIZE_DIGITS + 1];
	size_t n = 0;
	int64_t size;

	while (*p >= '0' && *p <= '9' && n < BDAT_SIZE_DIGITS)
		num[n++] = *p++;
	num[n] = '\0';
	if (n == 0 || (*p && *p != ' ') || parse_int64(num, 0, INT64_MAX, &size) < 0) {
		/* We cannot know how many bytes follow: the session is lost. */
		reply(s, "501 5.5.4 Syntax: BDAT size [LAST]; closing connection");
		close_after_flush(s);
		return;
	}
	while (*p == ' ')
		p++;
	if (*p && strcasecmp(p, "LAST") != 0) {
		reply(s, "501 5.5.4 Syntax: BDAT size [LAST]; closing connection");
		close_after_flush(s);
		return;
	}
	s->bdat_last = *p != '\0';
	s->bdat_remaining = size;
	if (!s->tx->bdat) {
		s->tx->bdat = true;
		s->tx->bdat_no_rcpt = s->state != ST_RCPT;
		start_content(s, false);
	}
	enter_state(s, ST_BDAT);
}

static void cmd_rset(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_tx_free(s);
	reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtp_session *s, const char *args)
{
	(void)args;
	reply(s, "250 2.0.0 Ok");
}

static void cmd_vrfy(struct smtp_session *s, const char *args)
{
	(void)args;
	reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_help(struct smtp_session *s, const char *args)
{
	(void)args;
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT");
}

static void cmd_quit(struct smtp_session *s, const char *args)
{
	(void)args;
	reply(s, "221 2.0.0 Bye");
	close_after_flush(s);
}

static const struct smtp_cmd smtp_cmds[] = {
    {"EHLO", ST_ANY_CMD, NULL, cmd_ehlo},
    {"HELO", ST_ANY_CMD, NULL, cmd_helo},
    {"MAIL", ST_IDLE, NULL, cmd_mail},
    {"RCPT", ST_MAIL | ST_RCPT, "503 5.5.1 Error: need MAIL command", cmd_rcpt},
    {"DATA", ST_MAIL | ST_RCPT, "503 5.5.1 Error: need RCPT command", cmd_data},
    {"BDAT", ST_MAIL | ST_RCPT, "503 5.5.1 Error: need MAIL command", cmd_bdat},
    {"RSET", ST_ANY_CMD, NULL, cmd_rset},
    {"NOOP", ST_ANY_CMD, NULL, cmd_noop},
    {"VRFY", ST_ANY_CMD, NULL, cmd_vrfy},
    {"HELP", ST_ANY_CMD, NULL, cmd_help},
    {"STARTTLS", ST_GREET | ST_IDLE, "503 5.5.1 Error: STARTTLS inside a transaction",
     cmd_starttls},
    {"QUIT", ST_ANY_CMD, NULL, cmd_quit},
};

/* Commands per second, as a token bucket with one second of burst. */
static bool command_token(struct smtp_session *s)
{
	double cap = (double)s->env->cfg->limits.command_rate;
	int64_t now = time_now_ms();

	if (s->allowlisted)
		return true;
	s->cmd_tokens += (double)(now - s->cmd_refilled_ms) * cap / 1000.0;
	if (s->cmd_tokens > cap)
		s->cmd_tokens = cap;
	s->cmd_refilled_ms = now;
	if (s->cmd_tokens < 1.0)
		return false;
	s->cmd_tokens -= 1.0;
	return true;
}

static void dispatch(struct smtp_session *s, char *line)
{
	const struct smtp_cmd *cmd = NULL;
	size_t vlen = strcspn(line, " ");
	const char *args = line + vlen;

	while (*args == ' ')
		args++;
	s->ncommands++;
	if (!command_token(s)) {
		log_info("smtp_limit", "sid=%d.%llu client=%s limit=command_rate", s->env->worker,
			 (unsigned long long)s->sid, s->client);
		reply(s, "421 4.7.0 %s Error: too many commands, slow down",
		      s->env->cfg->node.hostname);
		close_after_flush(s);
		return;
	}
	if (s->ncommands > (unsigned)s->env->cfg->smtp.max_commands) {
		reply(s, "421 4.7.0 %s Error: too many commands", s->env->cfg->node.hostname);
		close_after_flush(s);
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(smtp_cmds); i++) {
		if (strlen(smtp_cmds[i].verb) == vlen &&
		    !strncasecmp(line, smtp_cmds[i].verb, vlen)) {
			cmd = &smtp_cmds[i];
			break;
		}
	}
	if (!cmd) {
		reply(s, "500 5.5.2 Error: command not recognized");
		count_error(s);
		return;
	}
	if (!(cmd->states & s->state)) {
		const char *why = cmd->bad_sequence;
		if (s->state == ST_GREET)
			why = "503 5.5.1 Error: send HELO/EHLO first";
		else if (!why)
			why = "503 5.5.1 Error: nested MAIL command";
		reply(s, "%s", why);
		count_error(s);
		return;
	}
	cmd->run(s, args);
}

/* ---- end of message ----------------------------------------------------- */

/* Bayes autolearn (bayes.autolearn): a message whose final score is sure
 * either way teaches the filter, on the store thread, after its commit. */
struct learn_job {
	const struct config *cfg;
	void *tokens;
	void (*free_fn)(void *);
	bool spam;
};

static int learn_job_run(struct store *st, void *arg)
{
	struct learn_job *j = arg;
	struct bayes_params p;

	bayes_params_from_config(j->cfg, &p);
	return bayes_learn_store(st, j->tokens, j->spam, &p, NULL) < 0 ? STORE_TEMPFAIL : STORE_OK;
}

static void learn_job_done(int rc, void *arg)
{
	struct learn_job *j = arg;

	(void)rc; /* a lost autolearn costs nothing but the lesson */
	j->free_fn(j->tokens);
	free(j);
}

static void autolearn(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct learn_job *j;
	enum bayes_autolearn a;

	if (!tx->learn || s->allowlisted)
		return;
	a = bayes_autolearn_decision(tx->res.score, tx->learn_value, s->env->cfg);
	if (a == BAYES_AUTOLEARN_NONE || !(j = calloc(1, sizeof(*j))))
		return;
	j->cfg = s->env->cfg;
	j->tokens = tx->learn;
	j->free_fn = tx->learn_free;
	j->spam = a == BAYES_AUTOLEARN_SPAM;
	if (store_async_call(s->env->store, learn_job_run, learn_job_done, j) < 0) {
		free(j);
		return;
	}
	tx->learn = NULL; /* the job has it now */
	log_debug("autolearn", "qid=%s class=%s score=%.2f", tx->qid, j->spam ? "spam" : "ham",
		  tx->res.score);
}

static void message_done(int rc, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_tx *tx = s->tx;
	struct smtp_env *env = s->env;
	char from[STORE_ADDR_LEN + 8];
	int64_t ms = (time_mono_us() - tx->started_us) / 1000;

	s->waiting = false;
	log_quote(from, sizeof(from), tx->from.addr);
	if (rc == STORE_OK) {
		size_t nt = 0, nq = 0;
		for (size_t i = 0; i < tx->nrcpts; i++) {
			nt += tx->rcpts[i].action == POLICY_TAG;
			nq += tx->rcpts[i].action == POLICY_QUARANTINE;
		}
		autolearn(s);
		metrics_add(env->metrics, M_POLICY_TAGGED, (int64_t)nt);
		metrics_add(env->metrics, M_POLICY_QUARANTINED, (int64_t)nq);
		metrics_add(env->metrics, M_SMTP_MESSAGES_ACCEPTED, 1);
		metrics_add(env->metrics, M_SMTP_BYTES_ACCEPTED, (int64_t)tx->body.len);
		if (env->nudge_wr >= 0 && write(env->nudge_wr, "", 1) < 0) {
			/* a full pipe means the delivery worker is already nudged */
		}
		log_info("accepted",
			 "qid=%s client=%s from=%s nrcpt=%zu size=%zu score=%.2f tagged=%zu%s%s "
			 "quarantined=%zu ms=%lld%s",
			 tx->qid, s->client, from, tx->nrcpts, tx->body.len, tx->score, nt,
			 nt ? " tagged_qid=" : "", nt ? tx->msg.tagged_queue_id : "", nq,
			 (long long)ms, s->dead ? " client_gone=yes" : "");
		if (!s->dead)
			reply(s, "250 2.0.0 Ok: queued as %s", tx->qid);
		s->nmessages++;
	} else {
		metrics_add(env->metrics, M_SMTP_TEMPFAILS, 1);
		log_warn("tempfail", "qid=%s client=%s from=%s reason=store rc=%d", tx->qid,
			 s->client, from, rc);
		if (!s->dead)
			reply(s, "451 4.3.0 Error: queue file write error, try again later");
	}
	smtp_tx_free(s);
	if (s->dead) {
		session_free(s);
		return;
	}
	if (s->drain) {
		reply(s, "421 4.3.2 %s Service shutting down", env->cfg->node.hostname);
		close_after_flush(s);
		return;
	}
	session_process(s);
}

/* Appends "k=v; " to buf at *o, dropping anything that could break a header
 * (a PTR name is the client's to choose). */
static void summary_add(char *buf, size_t len, size_t *o, const char *k, const char *v)
{
	if (*o >= len - 1)
		return;
	if (str_fmt(buf + *o, len - *o, "%s%s=", *o ? "; " : "", k) < 0)
		return;
	*o += strlen(buf + *o);
	for (; *v && *o < len - 1; v++)
		buf[(*o)++] =
		    ((unsigned char)*v > 0x20 && (unsigned char)*v < 0x7f && *v != ';') ? *v : '_';
	buf[*o] = '\0';
}

static void connection_summary(struct smtp_session *s, char *buf, size_t len)
{
	const struct dnsbl_result *r = s->dnsbl ? dnsbl_req_result(s->dnsbl) : NULL;
	const struct fcrdns_result *f = s->fcrdns ? fcrdns_req_result(s->fcrdns) : NULL;
	char tmp[512];
	size_t o = 0, t = 0;

	buf[0] = '\0';
	summary_add(buf, len, &o, "client", s->client);
	if (s->allowlisted)
		summary_add(buf, len, &o, "allowlisted", "yes");
	if (f) {
		if (f->name && f->name[0] &&
		    str_fmt(tmp, sizeof(tmp), "%s(%s)", f->symbol, f->name) == 0)
			summary_add(buf, len, &o, "fcrdns", tmp);
		else
			summary_add(buf, len, &o, "fcrdns", f->symbol);
	}
	if (r) {
		(void)str_fmt(tmp, sizeof(tmp), "%.1f", r->score);
		t = strlen(tmp);
		for (size_t i = 0; i < r->nhits && t < sizeof(tmp); i++) {
			if (str_fmt(tmp + t, sizeof(tmp) - t, "%s%s(%.1f)", i ? "," : " ",
				    r->hits[i].symbol, r->hits[i].weight) < 0)
				break;
			t += strlen(tmp + t);
		}
		summary_add(buf, len, &o, "dnsbl", tmp);
	}
	if (s->rep_spam > 0 || s->rep_ham > 0) {
		(void)str_fmt(tmp, sizeof(tmp), "spam:%.1f,ham:%.1f", s->rep_spam, s->rep_ham);
		summary_add(buf, len, &o, "reputation", tmp);
	}
}

/* Copies a DNS name for a header: only what a name may hold. */
static const char *hdr_name(char *dst, size_t len, const char *src)
{
	size_t o = 0;

	for (; src && *src && o + 1 < len; src++)
		if ((*src >= 'a' && *src <= 'z') || (*src >= 'A' && *src <= 'Z') ||
		    (*src >= '0' && *src <= '9') || strchr(".-_", *src))
			dst[o++] = *src;
	dst[o] = '\0';
	return o ? dst : "unknown";
}

/* What we verified as RFC 8601 resinfo, "; "-separated, unfolded: for
 * our Authentication-Results and ARC-Authentication-Results. */
static void auth_results_text(struct smtp_session *s, char *out, size_t len)
{
	struct smtp_tx *tx = s->tx;
	char a[STORE_DOMAIN_LEN], b[80];
	size_t o = 0;

#define AR_ADD(...)                                                                                \
	do {                                                                                       \
		if (o < len && str_fmt(out + o, len - o, "%s", o ? "; " : "") == 0)                \
			o += strlen(out + o);                                                      \
		if (o < len && str_fmt(out + o, len - o, __VA_ARGS__) == 0)                        \
			o += strlen(out + o);                                                      \
	} while (0)
	out[0] = '\0';
	if (tx->arc_done)
		AR_ADD("arc=%s", arc_result_name(tx->arc_result));
	if (tx->spf_done && !s->allowlisted)
		AR_ADD("spf=%s smtp.mailfrom=%s", spf_result_name(tx->spf_result),
		       hdr_name(a, sizeof(a), tx->spf_domain));
	if (tx->ndkim == 0 && !s->allowlisted)
		AR_ADD("dkim=none");
	for (size_t i = 0; i < tx->ndkim; i++)
		AR_ADD("dkim=%s header.d=%s header.s=%s", dkim_result_name(tx->dkim_sigs[i].result),
		       hdr_name(a, sizeof(a), tx->dkim_sigs[i].domain),
		       hdr_name(b, sizeof(b), tx->dkim_sigs[i].selector));
	if (tx->dmarc_done)
		AR_ADD("dmarc=%s header.from=%s", dmarc_result_name(tx->dmarc_result),
		       hdr_name(a, sizeof(a), tx->dmarc_from));
	if (o == 0)
		AR_ADD("none");
#undef AR_ADD
}

/* RFC 8601: what we verified, for the people and filters downstream.
 * Appended to out at *oo, one result per line. */
static int add_auth_results(struct smtp_session *s, char *out, size_t outlen, size_t *oo)
{
	struct smtp_tx *tx = s->tx;
	char a[STORE_DOMAIN_LEN];
	size_t o = *oo;

	auth_results_text(s, tx->ar, sizeof(tx->ar));
	if (str_fmt(out + o, outlen - o, "Authentication-Results: %s",
		    hdr_name(a, sizeof(a), s->env->cfg->node.hostname)) < 0)
		return -ENAMETOOLONG;
	o += strlen(out + o);
	for (const char *p = tx->ar, *e; *p; p = e) {
		size_t n;
		e = strstr(p, "; ");
		n = e ? (size_t)(e - p) : strlen(p);
		if (o + n + 8 >= outlen)
			return -ENAMETOOLONG;
		memcpy(out + o, ";\r\n\t", 4);
		memcpy(out + o + 4, p, n);
		o += 4 + n;
		e = e ? e + 2 : p + n;
	}
	if (o + 3 >= outlen)
		return -ENAMETOOLONG;
	memcpy(out + o, "\r\n", 3);
	*oo = o + 2;
	return 0;
}

/* Our trace block, top to bottom: Received, Authentication-Results and
 * X-Mxguard-Connection, into tx->trace (every copy of the message gets
 * it). */
static int build_trace(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const struct config *cfg = s->env->cfg;
	char date[64], forpart[STORE_ADDR_LEN + 16] = "";
	const char *proto = tx->smtputf8 ? (s->tls ? "UTF8SMTPS" : "UTF8SMTP")
			    : s->esmtp	 ? (s->tls ? "ESMTPS" : "ESMTP")
					 : "SMTP";
	char tlspart[160] = "", conn[1024];
	size_t cap = TRACE_HEADROOM / 2, o;
	int r;

	if (!(tx->trace = malloc(cap)))
		return -ENOMEM;
	rfc5322_date(time_now(), date, sizeof(date));
	if (tx->nrcpts == 1)
		(void)str_fmt(forpart, sizeof(forpart), "\r\n\tfor <%s>", tx->rcpts[0].addr);
	if (s->tls_info[0])
		(void)str_fmt(tlspart, sizeof(tlspart), "\r\n\t(using %s)", s->tls_info);
	if (str_fmt(
		tx->trace, cap,
		"Received: from %s ([%s%s])%s\r\n\tby %s (mxguard) with %s id %s%s;\r\n\t%s\r\n",
		s->helo, s->client_v6 ? "IPv6:" : "", s->client, tlspart, cfg->node.hostname, proto,
		tx->qid, forpart, date) < 0)
		return -ENAMETOOLONG;
	o = strlen(tx->trace);
	if ((r = add_auth_results(s, tx->trace, cap, &o)) < 0)
		return r;
	/* The connection layer's findings, for the scoring layers and for the
	 * people who read the headers. */
	connection_summary(s, conn, sizeof(conn));
	if (str_fmt(tx->trace + o, cap - o, "X-Mxguard-Connection: %s\r\n", conn) < 0)
		return -ENAMETOOLONG;
	tx->trace_len = o + strlen(tx->trace + o);
	return 0;
}

/* The message is complete: refuse it, or commit it and reply when durable. */
static void end_of_message(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const struct config *cfg = s->env->cfg;
	unsigned f = tx->dec.flags;

	bufferevent_set_timeouts(s->bev, &(struct timeval){.tv_sec = cfg->smtp.timeout_command},
				 &(struct timeval){.tv_sec = cfg->smtp.timeout_command});
	if (tx->bdat_no_rcpt || tx->nrcpts == 0) {
		reply(s, "554 5.5.1 Error: no valid recipients");
		smtp_tx_free(s);
		return;
	}
	if (f & SMTP_DATA_NOMEM) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 Error: out of memory, try again later");
		smtp_tx_free(s);
		return;
	}
	if (f & SMTP_DATA_TOO_BIG) {
		metrics_add(s->env->metrics, M_SMTP_MESSAGES_REJECTED, 1);
		log_info("reject", "qid=%s client=%s reason=too_big size=%zu", tx->qid, s->client,
			 tx->dec.total);
		reply(s, "552 5.3.4 Message size exceeds fixed limit of %lld bytes",
		      (long long)cfg->smtp.max_message_size);
		smtp_tx_free(s);
		return;
	}
	if ((f & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR)) && cfg->smtp.reject_bare_lf) {
		metrics_add(s->env->metrics, M_SMTP_MESSAGES_REJECTED, 1);
		log_info("reject", "qid=%s client=%s reason=bare_%s", tx->qid, s->client,
			 (f & SMTP_DATA_BARE_LF) ? "lf" : "cr");
		reputation_spam(s);
		reply(s,
		      "550 5.6.0 Message contains bare %s; lines must end with CRLF "
		      "(RFC 5321 2.3.8)",
		      (f & SMTP_DATA_BARE_LF) ? "LF" : "CR");
		smtp_tx_free(s);
		count_error(s);
		return;
	}
	auth_continue(s);
}

/* ---- sender authentication ------------------------------------------------ */

static void spf_done(const struct spf_outcome *o, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_tx *tx = s->tx;

	tx->spf = NULL; /* the request is gone after its callback */
	tx->spf_done = true;
	tx->spf_result = o->result;
	(void)str_copy(tx->spf_domain, sizeof(tx->spf_domain), o->domain ? o->domain : "");
	(void)str_fmt(tx->spf_detail, sizeof(tx->spf_detail), "%s%s%s",
		      o->mechanism && o->mechanism[0] ? o->mechanism : "",
		      o->problem && o->problem[0] ? " " : "", o->problem ? o->problem : "");
	log_debug("spf", "qid=%s result=%s domain=%s", tx->qid, spf_result_name(o->result),
		  tx->spf_domain);
	if (!tx->wait_spf)
		return;
	tx->wait_spf = false;
	resume(s, auth_continue);
}

/* SPF (RFC 7208) of the MAIL FROM identity, started as soon as MAIL is
 * accepted so that it runs while the client sends RCPT and DATA. */
static void spf_start(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct spf_opts o = {.receiver = s->env->cfg->node.hostname};

	if (s->allowlisted || spf_check(s->env->resolver, &o, (const struct sockaddr *)&s->peer,
					s->helo, tx->from.addr, spf_done, s, &tx->spf) < 0) {
		tx->spf = NULL;
		tx->spf_done = true;
		tx->spf_result = SPF_NONE;
	}
}

static void dkim_done(const struct dkim_outcome *o, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_tx *tx = s->tx;

	tx->dkim = NULL;
	tx->ndkim = o->n < DKIM_MAX_SIGNATURES ? o->n : DKIM_MAX_SIGNATURES;
	for (size_t i = 0; i < tx->ndkim; i++) {
		const struct dkim_sig *g = &o->sigs[i];
		tx->dkim_sigs[i].result = g->result;
		(void)str_copy(tx->dkim_sigs[i].domain, sizeof(tx->dkim_sigs[i].domain),
			       g->domain ? g->domain : "");
		(void)str_copy(tx->dkim_sigs[i].selector, sizeof(tx->dkim_sigs[i].selector),
			       g->selector ? g->selector : "");
		(void)str_copy(tx->dkim_sigs[i].why, sizeof(tx->dkim_sigs[i].why),
			       g->why ? g->why : "");
	}
	resume(s, arc_start);
}

static void arc_done(const struct arc_outcome *o, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_tx *tx = s->tx;

	tx->arc = NULL;
	tx->arc_done = true;
	tx->arc_result = o->result;
	tx->arc_tempfail = o->tempfail;
	(void)str_fmt(tx->arc_detail, sizeof(tx->arc_detail), "i=%d%s%s%s%s%s", o->n,
		      o->domain && o->domain[0] ? " d=" : "", o->domain ? o->domain : "",
		      o->why && o->why[0] ? " (" : "", o->why ? o->why : "",
		      o->why && o->why[0] ? ")" : "");
	resume(s, dmarc_start);
}

/* ARC: the chain of the gateways before us; then DMARC. */
static void arc_start(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (!s->allowlisted && arc_verify(s->env->resolver, NULL, buf_data(&tx->body), tx->body.len,
					  arc_done, s, &tx->arc) == 0) {
		s->waiting = true;
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	tx->arc = NULL;
	dmarc_start(s);
}

/* Store thread: one row for the DMARC aggregate report. */
static int dmarc_row_run(struct store *st, void *arg)
{
	return dmarc_report_record(st, arg);
}

static void dmarc_row_done(int rc, void *arg)
{
	(void)rc; /* logged by the store thread; a lost row is not worth a retry */
	free(arg);
}

/* Keeps what DMARC decided for the domain's aggregate report (rua). */
static void dmarc_report(struct smtp_session *s, const struct dmarc_outcome *o, bool rejected)
{
	struct smtp_tx *tx = s->tx;
	struct dmarc_report_sig sigs[DKIM_MAX_SIGNATURES];
	struct dmarc_report_input in = {
	    .outcome = o,
	    .source_ip = s->client,
	    .spf = tx->spf_result,
	    .spf_domain = tx->spf_domain,
	    .sigs = sigs,
	    .nsigs = tx->ndkim,
	    .now = time_now(),
	};
	struct store_dmarc_row *row;

	if (!s->env->cfg->dmarc.reports)
		return;
	for (size_t i = 0; i < tx->ndkim; i++) {
		sigs[i].domain = tx->dkim_sigs[i].domain;
		sigs[i].selector = tx->dkim_sigs[i].selector;
		sigs[i].result = tx->dkim_sigs[i].result;
	}
	/* a failing message of a p=quarantine domain is held by the default
	 * recipient policy (dmarc_quarantine), so the outcome's disposition
	 * is what was applied, unless we refused it here */
	in.applied = rejected ? DMARC_POLICY_REJECT : DMARC_POLICY_UNSET;
	if (!(row = calloc(1, sizeof(*row))))
		return;
	if (dmarc_report_row(&in, row) < 0 ||
	    store_async_call(s->env->store, dmarc_row_run, dmarc_row_done, row) < 0)
		free(row);
}

static void dmarc_done(const struct dmarc_outcome *o, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_tx *tx = s->tx;

	tx->dmarc = NULL;
	tx->dmarc_done = true;
	tx->dmarc_result = o->result;
	tx->dmarc_disposition = o->disposition;
	(void)str_copy(tx->dmarc_from, sizeof(tx->dmarc_from),
		       o->from_domain ? o->from_domain : "");
	(void)str_fmt(tx->dmarc_detail, sizeof(tx->dmarc_detail), "%s p=%s%s%s", tx->dmarc_from,
		      dmarc_policy_name(o->policy), o->problem && o->problem[0] ? " " : "",
		      o->problem ? o->problem : "");
	s->waiting = false;
	if (s->dead) {
		session_free(s);
		return;
	}
	dmarc_report(s, o, o->result == DMARC_FAIL && o->disposition == DMARC_POLICY_REJECT);
	if (o->result == DMARC_FAIL && o->disposition == DMARC_POLICY_REJECT) {
		/* RFC 7489 6.6.4: the domain owner asks for rejection; refused
		 * in the session, so nobody is bounced to. */
		char q[STORE_DOMAIN_LEN + 8];
		metrics_add(s->env->metrics, M_SMTP_MESSAGES_REJECTED, 1);
		log_info("reject", "qid=%s client=%s reason=dmarc from_domain=%s", tx->qid,
			 s->client, log_quote(q, sizeof(q), tx->dmarc_from));
		reply(s, "550 5.7.1 Rejected by the DMARC policy of %s", tx->dmarc_from);
		smtp_tx_free(s);
		session_process(s);
		return;
	}
	if (start_scan(s) < 0) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 Error: out of memory, try again later");
		smtp_tx_free(s);
	}
	if (!s->waiting)
		session_process(s);
}

/* DMARC (RFC 7489) from the SPF and DKIM results, then the scan. */
static void dmarc_start(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const char *passes[DKIM_MAX_SIGNATURES];
	struct dmarc_auth a = {.spf = tx->spf_result, .spf_domain = tx->spf_domain, .dkim = passes};
	struct dmarc_opts o = {.psl = s->env->psl};

	for (size_t i = 0; i < tx->ndkim; i++)
		if (tx->dkim_sigs[i].result == DKIM_PASS)
			passes[a.n_dkim++] = tx->dkim_sigs[i].domain;
	if (!s->allowlisted && s->env->psl &&
	    dmarc_check(s->env->resolver, &o, buf_data(&tx->body), tx->body.len, &a, dmarc_done, s,
			&tx->dmarc) == 0) {
		s->waiting = true;
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	tx->dmarc = NULL;
	if (start_scan(s) < 0) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 Error: out of memory, try again later");
		smtp_tx_free(s);
	}
}

/* After the end of data: wait for SPF if it is still running, verify DKIM,
 * then the content checks. */
static void auth_continue(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (!tx->spf_done) {
		tx->wait_spf = true;
		s->waiting = true;
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	if (!s->allowlisted && dkim_verify(s->env->resolver, NULL, buf_data(&tx->body),
					   tx->body.len, dkim_done, s, &tx->dkim) == 0) {
		s->waiting = true;
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	tx->dkim = NULL;
	dmarc_start(s);
}

/* Points for what the connection layer found. The rules layer will make
 * these configurable; until then they are named here, in one place. */
#define SCORE_FCRDNS_NO_PTR 1.0
#define SCORE_FCRDNS_MISMATCH 0.5
#define SCORE_REPUTATION_MAX 3.0
#define SCORE_SPF_FAIL 2.0
#define SCORE_DMARC_QUARANTINE 4.0

static void sym_set(struct scan_symbol *y, const char *name, double score, const char *detail)
{
	(void)str_copy(y->name, sizeof(y->name), name);
	y->score = score;
	(void)str_copy(y->detail, sizeof(y->detail), detail);
}

/* The connection layer's findings as symbols with scores, so that the
 * message's score explains them too. Returns how many were written. */
static size_t connection_symbols(struct smtp_session *s, struct scan_symbol *out, size_t max)
{
	const struct dnsbl_result *r = s->dnsbl ? dnsbl_req_result(s->dnsbl) : NULL;
	const struct fcrdns_result *f = s->fcrdns ? fcrdns_req_result(s->fcrdns) : NULL;
	size_t n = 0;
	char d[SCAN_DETAIL_LEN];

	for (size_t i = 0; r && i < r->nhits && n < max; i++) {
		uint32_t c = r->hits[i].code;
		(void)str_fmt(d, sizeof(d), "%s %u.%u.%u.%u", r->hits[i].zone, c >> 24,
			      (c >> 16) & 255, (c >> 8) & 255, c & 255);
		sym_set(&out[n++], r->hits[i].symbol, r->hits[i].weight, d);
	}
	if (f && n < max) {
		double sc = f->status == FCRDNS_NO_PTR	   ? SCORE_FCRDNS_NO_PTR
			    : f->status == FCRDNS_MISMATCH ? SCORE_FCRDNS_MISMATCH
							   : 0;
		if (f->status != FCRDNS_TEMPFAIL)
			sym_set(&out[n++], f->symbol, sc, f->name ? f->name : "");
	}
	if (s->tx && s->tx->spf_done && n < max) {
		static const struct {
			const char *name;
			double score;
		} spf_sym[] = {
		    [SPF_NONE] = {"SPF_NONE", 0},
		    [SPF_NEUTRAL] = {"SPF_NEUTRAL", 0},
		    [SPF_PASS] = {"SPF_PASS", -0.2},
		    [SPF_FAIL] = {"SPF_FAIL", SCORE_SPF_FAIL},
		    [SPF_SOFTFAIL] = {"SPF_SOFTFAIL", 0.7},
		    [SPF_TEMPERROR] = {"SPF_TEMPERROR", 0},
		    [SPF_PERMERROR] = {"SPF_PERMERROR", 0.5},
		};
		enum spf_result sr = s->tx->spf_result;
		(void)str_fmt(d, sizeof(d), "%s %s", s->tx->spf_domain, s->tx->spf_detail);
		sym_set(&out[n++], spf_sym[sr].name, spf_sym[sr].score, d);
	}
	for (size_t i = 0; s->tx && i < s->tx->ndkim && n < max; i++) {
		enum dkim_result dr = s->tx->dkim_sigs[i].result;
		char name[48];
		double sc = dr == DKIM_PASS	   ? -0.2
			    : dr == DKIM_FAIL	   ? 1.0
			    : dr == DKIM_PERMERROR ? 0.3
						   : 0;
		(void)str_fmt(name, sizeof(name), "DKIM_%s", dkim_result_name(dr));
		str_upper_ascii(name);
		(void)str_fmt(d, sizeof(d), "d=%s s=%s %s", s->tx->dkim_sigs[i].domain,
			      s->tx->dkim_sigs[i].selector, s->tx->dkim_sigs[i].why);
		sym_set(&out[n++], name, sc, d);
	}
	if (s->tx && s->tx->arc_done && s->tx->arc_result != ARC_NONE && n < max) {
		/* a chain that verifies says the gateways before us are who they
		 * claim; a broken one is a modified or forged hop */
		bool pass = s->tx->arc_result == ARC_PASS;
		sym_set(&out[n++], pass ? "ARC_PASS" : "ARC_FAIL", pass ? -0.1 : 0.5,
			s->tx->arc_detail);
	}
	if (s->tx && s->tx->dmarc_done && n < max) {
		enum dmarc_result dr = s->tx->dmarc_result;
		char name[48];
		double sc = dr == DMARC_PASS	    ? -0.2
			    : dr == DMARC_PERMERROR ? 1.0
			    : dr != DMARC_FAIL	    ? 0
			    : s->tx->dmarc_disposition == DMARC_POLICY_QUARANTINE
				? SCORE_DMARC_QUARANTINE
				: 0.5;
		(void)str_fmt(name, sizeof(name), "DMARC_%s", dmarc_result_name(dr));
		str_upper_ascii(name);
		sym_set(&out[n++], name, sc, s->tx->dmarc_detail);
	}
	if ((s->rep_spam > 0 || s->rep_ham > 0) && n < max) {
		double total = s->rep_spam + s->rep_ham + 2;
		(void)str_fmt(d, sizeof(d), "spam %.1f ham %.1f", s->rep_spam, s->rep_ham);
		if (s->rep_spam > s->rep_ham)
			sym_set(&out[n++], "IP_REPUTATION_BAD",
				SCORE_REPUTATION_MAX * s->rep_spam / total, d);
		else
			sym_set(&out[n++], "IP_REPUTATION_GOOD", -s->rep_ham / total, d);
	}
	return n;
}

/* The content checks, off the loop; commit_message or a refusal follows. */
static int start_scan(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct scan_request req = {0};

	tx->rcpt_list = calloc(tx->nrcpts, sizeof(*tx->rcpt_list));
	if (!tx->rcpt_list)
		return -ENOMEM;
	/* Only we write our verdict: what a sender put there in our name goes
	 * (after DKIM and DMARC have seen the message as it came). */
	if (tx->body.mem) {
		size_t n = tag_strip_ours(tx->body.mem + tx->body.start, &tx->body.len,
					  s->env->cfg->node.hostname);
		if (n)
			log_info("stripped", "qid=%s client=%s headers=%zu", tx->qid, s->client, n);
	}
	for (size_t i = 0; i < tx->nrcpts; i++)
		tx->rcpt_list[i] = tx->rcpts[i].addr;
	req.qid = tx->qid;
	req.client = s->client;
	req.helo = s->helo;
	req.sender = tx->from.addr;
	req.rcpts = tx->rcpt_list;
	req.nrcpts = tx->nrcpts;
	req.data = buf_data(&tx->body);
	req.len = tx->body.len;
	req.tls = s->tls_info[0] != '\0';
	req.npre = connection_symbols(s, tx->pre, ARRAY_LEN(tx->pre));
	req.pre = tx->pre;
	if (scan_submit(s->env->scan, &req, scan_done, s) < 0)
		return -ENOMEM;
	s->waiting = true;
	bufferevent_disable(s->bev, EV_READ);
	return 0;
}

/* Appends the symbols as an X-Mxguard-Scan header, folded, bounded. */
static int add_scan_header(struct smtp_session *s, const struct scan_result *r)
{
	char hdr[TRACE_HEADROOM / 4];
	size_t o = 0, line = 0;

	if (r->nsymbols == 0)
		return 0;
	if (str_fmt(hdr, sizeof(hdr), "X-Mxguard-Scan: score=%.1f", r->score) < 0)
		return -ENAMETOOLONG;
	o = line = strlen(hdr);
	for (size_t i = 0; i < r->nsymbols; i++) {
		char one[SCAN_NAME_LEN + 32];
		size_t n;
		(void)str_fmt(one, sizeof(one), " %s(%.1f)", r->symbols[i].name,
			      r->symbols[i].score);
		n = strlen(one);
		if (o + n + 8 >= sizeof(hdr))
			break;
		if (line + n > 76) {
			memcpy(hdr + o, "\r\n\t", 3);
			o += 3;
			line = 1;
		}
		memcpy(hdr + o, one, n);
		o += n;
		line += n;
	}
	memcpy(hdr + o, "\r\n", 3);
	for (char *c = hdr; *c; c++)
		if ((unsigned char)*c < 0x20 && *c != '\r' && *c != '\n' && *c != '\t')
			*c = '_';
	return buf_prepend(&s->tx->body, hdr, strlen(hdr));
}

/* Every symbol as "NAME score detail" lines (kept with a quarantined copy). */
static char *verdict_text(const struct scan_result *r)
{
	size_t cap = 64 + r->nsymbols * (SCAN_NAME_LEN + SCAN_DETAIL_LEN + 16), o = 0;
	char *t = malloc(cap);

	if (!t)
		return NULL;
	o += (size_t)snprintf(t, cap, "score %.2f\n", r->score);
	for (size_t i = 0; i < r->nsymbols && o < cap; i++)
		o += (size_t)snprintf(t + o, cap - o, "%s %.2f %s\n", r->symbols[i].name,
				      r->symbols[i].score, r->symbols[i].detail);
	return t;
}

/* Each recipient's action from its policy and the verdict. Returns how many
 * recipients would refuse the message. */
/* Is the envelope sender proven? SPF passed for it, or DMARC passed for a
 * From domain that is the sender's domain or its parent. */
static bool sender_authenticated(const struct smtp_tx *tx)
{
	const char *at = strrchr(tx->from.addr, '@');
	size_t dl, fl;

	if (!at)
		return false;
	if (tx->spf_done && tx->spf_result == SPF_PASS)
		return true;
	if (!tx->dmarc_done || tx->dmarc_result != DMARC_PASS || !tx->dmarc_from[0])
		return false;
	at++;
	dl = strlen(at);
	fl = strlen(tx->dmarc_from);
	return dl >= fl && !strcasecmp(at + dl - fl, tx->dmarc_from) &&
	       (dl == fl || at[dl - fl - 1] == '.');
}

static size_t decide(struct smtp_session *s, const struct scan_result *r)
{
	struct smtp_tx *tx = s->tx;
	struct policy_verdict v = {
	    .score = r->score,
	    .virus = r->action == SCAN_REJECT,
	    .dmarc_fail = tx->dmarc_done && tx->dmarc_result == DMARC_FAIL,
	};
	size_t nreject = 0;

	v.dmarc_quarantine = v.dmarc_fail && tx->dmarc_disposition == DMARC_POLICY_QUARANTINE;
	v.sender_authenticated = sender_authenticated(tx);
	filetype_verdict(r->filetypes, s->env->cfg, &v);
	tx->score = r->score;
	tx->virus = v.virus;
	for (size_t i = 0; i < tx->nrcpts; i++) {
		struct smtp_tx_rcpt *rc = &tx->rcpts[i];

		if (s->allowlisted) {
			/* limits.allow_networks: our own relays, trusted as a whole
			 * for spam; viruses and file kinds still count */
			struct policy p = rc->policy;
			p.tag_score = p.quarantine_score = p.reject_score = INFINITY;
			p.listed = POLICY_LISTED_NONE;
			v.dmarc_quarantine = false;
			rc->action = policy_decide(&p, &v, &rc->reason, rc->why, sizeof(rc->why));
		} else {
			rc->action =
			    policy_decide(&rc->policy, &v, &rc->reason, rc->why, sizeof(rc->why));
		}
		if (rc->action == POLICY_REJECT)
			nreject++;
	}
	return nreject;
}

/* ---- the verdict after the scan ---------------------------------------- */

/* Room for what the stages after the scan add (URI lists, relationships). */
#define VERDICT_EXTRA 48

/* Keeps the scan's result in the transaction: the stages after the scan
 * are asynchronous, the pipeline's result lives only for its callback. */
static int verdict_keep(struct smtp_tx *tx, const struct scan_result *r)
{
	size_t cap = r->nsymbols + VERDICT_EXTRA;

	tx->res = *r;
	tx->res.domains = NULL;
	tx->res.ndomains = 0;
	tx->res.learn = NULL;
	if (!(tx->syms = calloc(cap, sizeof(*tx->syms))))
		return -ENOMEM;
	if (r->nsymbols)
		memcpy(tx->syms, r->symbols, r->nsymbols * sizeof(*tx->syms));
	tx->res.symbols = tx->syms;
	tx->syms_cap = cap;
	if (r->ndomains) {
		if (!(tx->domains = malloc(r->ndomains * sizeof(*tx->domains))))
			return -ENOMEM;
		memcpy(tx->domains, r->domains, r->ndomains * sizeof(*tx->domains));
		tx->ndomains = r->ndomains;
	}
	tx->learn_free = r->learn_free;
	tx->learn_value = r->learn_value;
	tx->learn = scan_result_take_learn(r);
	return 0;
}

/* Adds what a stage after the scan found, with the scores folder's
 * override of each symbol's score (scan/scores.h), as the scan does. */
static void verdict_add(struct smtp_session *s, const struct scan_symbol *y, size_t n)
{
	struct smtp_tx *tx = s->tx;

	for (size_t i = 0; i < n && tx->res.nsymbols < tx->syms_cap; i++) {
		struct scan_symbol *d = &tx->syms[tx->res.nsymbols++];
		*d = y[i];
		d->score = scan_pipeline_score(s->env->scan, d->name, d->score);
		tx->res.score += d->score;
	}
}

static void verdict_continue(struct smtp_session *s);
static void verdict_finish(struct smtp_session *s);

static void uribl_done(struct uribl_req *req, const struct uribl_result *res, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_tx *tx = s->tx;
	struct scan_symbol y[32];

	tx->uribl = NULL;
	s->waiting = false;
	if (!s->dead)
		verdict_add(s, y, uribl_symbols(res, y, ARRAY_LEN(y)));
	uribl_req_free(req);
	resume(s, verdict_continue);
}

/* A relationship look-up on the store thread. */
struct rel_job {
	struct smtp_session *s;
	struct rel_query *q;
};

static int rel_job_run(struct store *st, void *arg)
{
	struct rel_job *j = arg;

	return rel_query_run(st, j->q);
}

static void rel_job_done(int rc, void *arg)
{
	struct rel_job *j = arg;
	struct smtp_session *s = j->s;
	struct smtp_tx *tx = s->tx;
	struct scan_symbol y[REL_MAX_SYMBOLS];

	(void)rc; /* a failed look-up gives REL_UNAVAILABLE, never a penalty */
	s->waiting = false;
	if (!s->dead) {
		bool authenticated = tx->dmarc_done && tx->dmarc_result == DMARC_PASS;
		verdict_add(s, y, rel_query_symbols(j->q, authenticated, y, ARRAY_LEN(y)));
	}
	rel_query_free(j->q);
	free(j);
	resume(s, verdict_continue);
}

/* The stages after the scan, in order, each asynchronous; a stage that
 * cannot start is skipped (its lists and look-ups only add points). */
static void verdict_continue(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const struct config *cfg = s->env->cfg;
	bool content_ok = tx->res.action == SCAN_ACCEPT && !s->allowlisted;

	if (tx->stage == VERDICT_URIBL) {
		tx->stage = VERDICT_REL;
		if (content_ok && s->env->uribl && tx->ndomains > 0) {
			const char *d[SCAN_MAX_DOMAINS];
			for (size_t i = 0; i < tx->ndomains; i++)
				d[i] = tx->domains[i];
			if (uribl_start(s->env->uribl, d, tx->ndomains, uribl_done, s,
					&tx->uribl) == 0) {
				s->waiting = true;
				bufferevent_disable(s->bev, EV_READ);
				return;
			}
			tx->uribl = NULL;
		}
	}
	if (tx->stage == VERDICT_REL) {
		tx->stage = VERDICT_DECIDE;
		if (content_ok && cfg->relationships.enabled) {
			struct rel_job *j = calloc(1, sizeof(*j));
			char from[STORE_ADDR_LEN];

			tag_from_address(buf_data(&tx->body), tx->body.len, from, sizeof(from));
			if (j &&
			    rel_query_new(cfg, s->env->psl, tx->from.addr, from[0] ? from : NULL,
					  tx->rcpt_list, tx->nrcpts, &j->q) == 0) {
				j->s = s;
				if (store_async_call(s->env->store, rel_job_run, rel_job_done, j) ==
				    0) {
					s->waiting = true;
					bufferevent_disable(s->bev, EV_READ);
					return;
				}
				rel_query_free(j->q);
			}
			free(j);
		}
	}
	verdict_finish(s);
}

static void scan_done(const struct scan_result *r, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_tx *tx = s->tx;

	s->waiting = false;
	if (s->dead) {
		session_free(s); /* nothing was stored: the client got no 250 */
		return;
	}
	if (verdict_keep(tx, r) < 0) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 Error: out of memory, try again later");
		smtp_tx_free(s);
		session_process(s);
		return;
	}
	tx->stage = VERDICT_URIBL;
	verdict_continue(s);
	if (!s->waiting)
		session_process(s);
}

/* Every recipient's action, the refusal or the commit. */
static void verdict_finish(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const struct scan_result *r = &tx->res;
	char syms[512] = "";
	size_t o = 0, nreject;

	for (size_t i = 0; i < r->nsymbols && o < sizeof(syms); i++) {
		if (str_fmt(syms + o, sizeof(syms) - o, "%s%s", i ? "," : "", r->symbols[i].name) <
		    0)
			break;
		o += strlen(syms + o);
	}
	if (r->action == SCAN_TEMPFAIL) {
		char why[SCAN_REPLY_LEN + 8];
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		log_info("tempfail", "qid=%s client=%s reason=scan reply=%s symbols=\"%s\" ms=%lld",
			 tx->qid, s->client, log_quote(why, sizeof(why), r->reply), syms,
			 (long long)r->ms);
		reply(s, "%s", r->reply);
		smtp_tx_free(s);
		return;
	}
	nreject = decide(s, r);
	for (size_t i = 0; i < tx->nrcpts; i++) {
		char q[STORE_ADDR_LEN + 8], w[POLICY_WHY_LEN + 8];
		log_info("verdict", "qid=%s rcpt=%s action=%s score=%.2f why=%s", tx->qid,
			 log_quote(q, sizeof(q), tx->rcpts[i].addr),
			 policy_action_name(tx->rcpts[i].action), r->score,
			 log_quote(w, sizeof(w), tx->rcpts[i].why));
	}
	if (nreject == tx->nrcpts) {
		char why[SCAN_REPLY_LEN + 8];
		metrics_add(s->env->metrics, M_SMTP_MESSAGES_REJECTED, 1);
		enum policy_reason rs = tx->rcpts[0].reason;
		for (size_t i = 1; i < tx->nrcpts; i++)
			if (tx->rcpts[i].reason == POLICY_REASON_VIRUS ||
			    (tx->rcpts[i].reason == POLICY_REASON_FILETYPE &&
			     rs != POLICY_REASON_VIRUS))
				rs = tx->rcpts[i].reason;
		if (rs == POLICY_REASON_VIRUS)
			(void)str_copy(why, sizeof(why), r->reply);
		else if (rs == POLICY_REASON_FILETYPE && r->filetype_reply[0])
			(void)str_copy(why, sizeof(why), r->filetype_reply);
		else
			(void)str_fmt(why, sizeof(why),
				      "550 5.7.1 Message refused as spam (SpamScore %.1f)",
				      r->score);
		if (rs != POLICY_REASON_VIRUS && rs != POLICY_REASON_FILETYPE)
			metrics_add(s->env->metrics, M_POLICY_REJECTED, 1);
		else
			metrics_add(s->env->metrics, M_AV_REJECTS, 1);
		log_info("reject", "qid=%s client=%s reason=%s score=%.2f symbols=\"%s\" ms=%lld",
			 tx->qid, s->client,
			 rs == POLICY_REASON_VIRUS	? "virus"
			 : rs == POLICY_REASON_FILETYPE ? "filetype"
							: "spam",
			 r->score, syms, (long long)r->ms);
		reply(s, "%s", why);
		reputation_spam(s);
		if (rs == POLICY_REASON_SCORE)
			autolearn(s);
		smtp_tx_free(s);
		return;
	}
	/* After DATA one reply covers every recipient: those whose policy says
	 * reject, while others accept, are held rather than dropped. */
	for (size_t i = 0; nreject && i < tx->nrcpts; i++) {
		struct smtp_tx_rcpt *rc = &tx->rcpts[i];
		size_t n = strlen(rc->why);
		if (rc->action != POLICY_REJECT)
			continue;
		rc->action = POLICY_QUARANTINE;
		(void)str_copy(rc->why + n, sizeof(rc->why) - n,
			       "; quarantined: other recipients accept");
	}
	log_debug("scanned", "qid=%s score=%.1f symbols=\"%s\" ms=%lld", tx->qid, r->score, syms,
		  (long long)r->ms);
	if (!(tx->verdict = verdict_text(r)) || add_scan_header(s, r) < 0) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 Error: cannot add the scan header, try again later");
		smtp_tx_free(s);
		return;
	}
	if (tx->virus)
		(void)str_fmt(tx->qreason, sizeof(tx->qreason), "virus: %s", r->reply);
	for (size_t i = 0; !tx->virus && r->filetype_reply[0] && i < tx->nrcpts; i++) {
		if (tx->rcpts[i].action == POLICY_QUARANTINE &&
		    tx->rcpts[i].reason == POLICY_REASON_FILETYPE) {
			(void)str_fmt(tx->qreason, sizeof(tx->qreason), "file: %s",
				      r->filetype_reply);
			break;
		}
	}
	commit_message(s);
}

/* ARC-seals what leaves here changed by us (RFC 8617): our trace and
 * verdict headers, and the tagged copy's subject, so that the next hop
 * (Microsoft 365, Google) can trust what the earlier hops said. The
 * quarantine's copy is not sealed: it is delivered as it was held. */
static int arc_seal_one(struct smtp_session *s, const char *msg, size_t len, char **out)
{
	const struct config *cfg = s->env->cfg;
	struct arc_seal_opts o = {
	    .key = s->env->arc_key,
	    .domain = cfg->arc.domain,
	    .selector = cfg->arc.selector,
	    .authserv_id = cfg->node.hostname,
	    .ar = s->tx->ar,
	    .chain = s->tx->arc_done ? s->tx->arc_result : ARC_NONE,
	};

	return arc_seal(&o, msg, len, out);
}

static int arc_seal_copies(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	char *seal = NULL;
	int r;

	/* only a chain we verified: sealing one we did not check (a trusted
	 * relay's session, a DNS failure) would break it for good (cv=fail) */
	if (!s->env->arc_key || !tx->arc_done || tx->arc_tempfail)
		return 0;
	/* the plain copy, if anyone gets it */
	for (size_t i = 0; i < tx->nrcpts; i++) {
		if (tx->rcpts[i].action != POLICY_DELIVER)
			continue;
		if ((r = arc_seal_one(s, buf_data(&tx->body), tx->body.len, &seal)) < 0)
			goto fail;
		if (seal && (r = buf_prepend(&tx->body, seal, strlen(seal))) < 0)
			goto fail;
		free(seal);
		seal = NULL;
		break;
	}
	if (tx->tagged) {
		char *n;
		size_t sl;
		if ((r = arc_seal_one(s, tx->tagged, tx->tagged_len, &seal)) < 0)
			goto fail;
		if (seal) {
			sl = strlen(seal);
			if (!(n = malloc(sl + tx->tagged_len))) {
				r = -ENOMEM;
				goto fail;
			}
			memcpy(n, seal, sl);
			memcpy(n + sl, tx->tagged, tx->tagged_len);
			free(tx->tagged);
			tx->tagged = n;
			tx->tagged_len += sl;
			tx->msg.tagged_data = tx->tagged;
			tx->msg.tagged_len = tx->tagged_len;
		}
	}
	r = 0;
fail:
	free(seal);
	if (r == -ENOMEM)
		return r;
	if (r < 0) /* the content (too many fields...): deliver unsealed */
		log_warn("arc", "qid=%s msg=\"not sealed: %s\"", tx->qid, strerror(-r));
	return 0;
}

/* The copies the recipients' actions need: the quarantine's (as received
 * plus trace headers), the tagged one (subject prefix, X-Spam-Status: Yes),
 * and the plain one (X-Spam-Status: No). 0 or -errno. */
static int make_copies(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const struct smtp_tx_rcpt *first_tag = NULL, *first_q = NULL;
	bool plain_headers = false;
	char hdr[256];
	int r;

	for (size_t i = 0; i < tx->nrcpts; i++) {
		const struct smtp_tx_rcpt *rc = &tx->rcpts[i];
		if (rc->action == POLICY_TAG && !first_tag)
			first_tag = rc;
		if (rc->action == POLICY_QUARANTINE && !first_q)
			first_q = rc;
		if (rc->action == POLICY_DELIVER && rc->policy.spam_headers)
			plain_headers = true;
	}
	tag_subject_get(buf_data(&tx->body), tx->body.len, tx->subject, sizeof(tx->subject));
	if (first_q) {
		size_t n = tx->trace_len + tx->body.len;
		if (!(tx->qcopy = malloc(n)))
			return -ENOMEM;
		memcpy(tx->qcopy, tx->trace, tx->trace_len);
		memcpy(tx->qcopy + tx->trace_len, buf_data(&tx->body), tx->body.len);
		if (!tx->qreason[0])
			(void)str_copy(tx->qreason, sizeof(tx->qreason), first_q->why);
		tx->qinfo.data = tx->qcopy;
		tx->qinfo.len = n;
		tx->qinfo.subject = tx->subject;
		tx->qinfo.score = tx->score;
		tx->qinfo.reason = tx->qreason;
		tx->qinfo.verdict = tx->verdict;
		tx->msg.quarantine = &tx->qinfo;
	}
	if (first_tag) {
		/* one tagged copy per message: its recipients share the tag of
		 * the first of them */
		char *extra;
		size_t hl;
		if ((r = tag_spam_headers(hdr, sizeof(hdr), tx->score, true)) < 0)
			return r;
		hl = strlen(hdr);
		if (!(extra = malloc(tx->trace_len + hl)))
			return -ENOMEM;
		memcpy(extra, tx->trace, tx->trace_len);
		memcpy(extra + tx->trace_len, hdr, hl);
		r = tag_subject_copy(buf_data(&tx->body), tx->body.len, extra, tx->trace_len + hl,
				     first_tag->policy.subject_tag, &tx->tagged, &tx->tagged_len);
		free(extra);
		if (r < 0)
			return r;
		queue_id_new(tx->msg.tagged_queue_id);
		tx->msg.tagged_data = tx->tagged;
		tx->msg.tagged_len = tx->tagged_len;
	}
	if (plain_headers) {
		if ((r = tag_spam_headers(hdr, sizeof(hdr), tx->score, false)) < 0 ||
		    (r = buf_prepend(&tx->body, hdr, strlen(hdr))) < 0)
			return r;
	}
	if ((r = buf_prepend(&tx->body, tx->trace, tx->trace_len)) < 0)
		return r;
	return arc_seal_copies(s);
}

/* The message passed its checks: trace headers, the copies, then the
 * durable commit; message_done replies. */
static void commit_message(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	unsigned f = tx->dec.flags;
	int64_t now = time_now();

	if (build_trace(s) < 0) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 Error: cannot add trace header, try again later");
		smtp_tx_free(s);
		return;
	}
	tx->mrcpts = calloc(tx->nrcpts, sizeof(*tx->mrcpts));
	if (!tx->mrcpts || make_copies(s) < 0) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 Error: out of memory, try again later");
		smtp_tx_free(s);
		return;
	}
	for (size_t i = 0; i < tx->nrcpts; i++) {
		tx->mrcpts[i].address = tx->rcpts[i].addr;
		tx->mrcpts[i].mailbox_id = tx->rcpts[i].mailbox_id;
		tx->mrcpts[i].tagged = tx->rcpts[i].action == POLICY_TAG;
		if (tx->rcpts[i].action == POLICY_QUARANTINE)
			tx->mrcpts[i].quarantine_until =
			    policy_quarantine_until(&tx->rcpts[i].policy, now);
	}
	(void)str_copy(tx->msg.queue_id, sizeof(tx->msg.queue_id), tx->qid);
	tx->msg.sender = tx->from.addr;
	tx->msg.client_addr = s->client;
	tx->msg.helo = s->helo;
	tx->msg.tls = s->tls_info;
	tx->msg.received_at = now;
	tx->msg.flags = (tx->body_8bit || (f & SMTP_DATA_8BIT) ? STORE_MSG_8BITMIME : 0) |
			(tx->smtputf8 ? STORE_MSG_SMTPUTF8 : 0) |
			(s->allowlisted ? STORE_MSG_OUTBOUND : 0);
	tx->msg.rcpts = tx->mrcpts;
	tx->msg.nrcpts = tx->nrcpts;
	tx->msg.data = buf_data(&tx->body);
	tx->msg.len = tx->body.len;
	if (store_async_commit(s->env->store, &tx->msg, message_done, s) < 0) {
		metrics_add(s->env->metrics, M_SMTP_TEMPFAILS, 1);
		reply(s, "451 4.3.0 Error: out of memory, try again later");
		smtp_tx_free(s);
		return;
	}
	s->waiting = true;
	bufferevent_disable(s->bev, EV_READ);
}

/* ---- input ------------------------------------------------------------ */

/* Feeds buffered content to the decoder. Returns true when the DATA end
 * marker or the end of the BDAT chunk was reached. */
static bool feed_content(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec vec[16];
	int nvec;
	bool done = false;

	while (!done && evbuffer_get_length(in) > 0) {
		size_t want = evbuffer_get_length(in), consumed = 0;

		if (s->state == ST_BDAT && (int64_t)want > s->bdat_remaining)
			want = (size_t)s->bdat_remaining;
		nvec = evbuffer_peek(in, (ev_ssize_t)want, NULL, vec, ARRAY_LEN(vec));
		if (nvec > (int)ARRAY_LEN(vec))
			nvec = ARRAY_LEN(vec);
		for (int i = 0; i < nvec && !done && consumed < want; i++) {
			size_t len = vec[i].iov_len, used = 0;
			if (len > want - consumed)
				len = want - consumed;
			if (smtp_data_feed(&s->tx->dec, vec[i].iov_base, len, &used) == 1)
				done = true;
			consumed += used;
		}
		evbuffer_drain(in, consumed);
		if (s->state == ST_BDAT) {
			s->bdat_remaining -= (int64_t)consumed;
			if (s->bdat_remaining == 0)
				done = true;
		}
		if (consumed == 0)
			break;
	}
	if (s->state == ST_BDAT && s->bdat_remaining == 0)
		done = true;
	return done;
}

static void content_complete(struct smtp_session *s)
{
	if (s->state == ST_DATA) {
		end_of_message(s);
		return;
	}
	/* a BDAT chunk */
	enter_state(s, s->tx->bdat_no_rcpt ? ST_MAIL : ST_RCPT);
	if (!s->bdat_last) {
		if (s->tx->bdat_no_rcpt)
			reply(s, "554 5.5.1 Error: no valid recipients");
		else
			reply(s, "250 2.0.0 %lld octets received", (long long)s->tx->dec.total);
		return;
	}
	smtp_data_finish(&s->tx->dec);
	end_of_message(s);
}

/* Runs every complete command (or content) that is buffered, until the
 * input runs dry or an async job makes us wait. */
static void session_process(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t maxline = (size_t)s->env->cfg->smtp.max_line_length;

	if (s->proxy_wait) {
		if (!proxy_header(s, in))
			return;
	}
	if (s->pregreet) {
		if (evbuffer_get_length(in) == 0)
			return;
		/* RFC 5321 4.3.1: the client waits for the greeting. A bot that
		 * does not is refused before it is told anything else. */
		metrics_add(s->env->metrics, M_SMTP_PREGREET, 1);
		log_info("pregreet", "sid=%d.%llu client=%s bytes=%zu", s->env->worker,
			 (unsigned long long)s->sid, s->client, evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
		s->pregreet = false;
		reputation_spam(s);
		reply(s, "554 5.5.1 %s Error: talked before the greeting",
		      s->env->cfg->node.hostname);
		close_after_flush(s);
		return;
	}
	while (!s->waiting && !s->dead && s->state != ST_QUIT) {
		struct evbuffer_ptr eol;
		size_t eol_len = 0, n;
		char *line;

		if (evbuffer_get_length(bufferevent_get_output(s->bev)) > OUTPUT_HIGH_WATER) {
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		if (s->state & (ST_DATA | ST_BDAT)) {
			if (s->state == ST_BDAT && s->bdat_remaining == 0) {
				content_complete(s);
				continue;
			}
			if (evbuffer_get_length(in) == 0)
				break;
			if (feed_content(s, in))
				content_complete(s);
			continue;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			size_t have = evbuffer_get_length(in);
			if (have > maxline) {
				/* Refuse now: never wait for the end of a hostile line. */
				evbuffer_drain(in, have);
				if (!s->discarding) {
					s->discarding = true;
					reply(s, "500 5.5.2 Error: line too long");
					if (count_error(s))
						return;
				}
			}
			break;
		}
		n = (size_t)eol.pos;
		if (s->discarding) {
			evbuffer_drain(in, n + eol_len);
			s->discarding = false;
			continue;
		}
		if (n > maxline) {
			evbuffer_drain(in, n + eol_len);
			reply(s, "500 5.5.2 Error: line too long");
			if (count_error(s))
				return;
			continue;
		}
		line = malloc(n + 1);
		if (!line) {
			reply(s, "421 4.3.0 %s Error: out of memory", s->env->cfg->node.hostname);
			close_after_flush(s);
			return;
		}
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, eol_len);
		line[n] = '\0';
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		if (memchr(line, '\0', n) || memchr(line, '\r', n)) {
			reply(s, "500 5.5.2 Error: bad character in command");
			free(line);
			if (count_error(s))
				return;
			continue;
		}
		dispatch(s, line);
		free(line);
	}
	if (s->state != ST_QUIT && !s->dead)
		bufferevent_enable(s->bev, EV_READ);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

/* Under TLS the filter's output drains into the socket's buffer first:
 * close only when that one is empty too, or the last reply is lost. */
static bool output_flushed(struct smtp_session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);

	return evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 &&
	       (!under || evbuffer_get_length(bufferevent_get_output(under)) == 0);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (s->waiting)
		return;
	if (output_flushed(s) || ++s->linger_ticks > LINGER_TICKS_MAX) {
		session_free(s);
		return;
	}
	event_add(s->linger, &(struct timeval){0, LINGER_TICK_US});
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (s->state == ST_QUIT) {
		if (s->waiting)
			return;
		if (output_flushed(s)) {
			session_free(s);
			return;
		}
		if (!s->linger)
			s->linger = evtimer_new(s->env->base, on_linger, s);
		if (!s->linger) {
			session_free(s);
			return;
		}
		event_add(s->linger, &(struct timeval){0, LINGER_TICK_US});
		return;
	}
	/* Output drained: resume a session paused for back-pressure. */
	session_process(s);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		if (ssl)
			(void)str_fmt(s->tls_info, sizeof(s->tls_info), "%s %s",
				      SSL_get_version(ssl), SSL_get_cipher_name(ssl));
		log_info("tls", "sid=%d.%llu client=%s tls=\"%s\"", s->env->worker,
			 (unsigned long long)s->sid, s->client, s->tls_info);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && s->tls && !s->tls_info[0]) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		char why[256] = "";
		if (e)
			ERR_error_string_n(e, why, sizeof(why));
		log_info("tls_failed", "sid=%d.%llu client=%s reason=\"%s\"", s->env->worker,
			 (unsigned long long)s->sid, s->client, why);
	}
	if (what & BEV_EVENT_TIMEOUT) {
		metrics_add(s->env->metrics, M_SMTP_TIMEOUTS, 1);
		log_info("timeout", "sid=%d.%llu client=%s state=%s%s%s", s->env->worker,
			 (unsigned long long)s->sid, s->client, state_name(s->state),
			 s->tx ? " qid=" : "", s->tx ? s->tx->qid : "");
		if ((s->state & (ST_DATA | ST_BDAT)) && !s->waiting)
			smtp_tx_free(s);
		reply(s, "421 4.4.2 %s Error: timeout exceeded", s->env->cfg->node.hostname);
		bufferevent_enable(s->bev, EV_WRITE);
		close_after_flush(s);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (s->tx && (s->state & (ST_DATA | ST_BDAT)))
			log_info("lost_connection", "qid=%s client=%s state=%s stored=no",
				 s->tx->qid, s->client, state_name(s->state));
		if (s->waiting) {
			/* the job's callback frees us */
			s->dead = true;
			bufferevent_disable(s->bev, EV_READ | EV_WRITE);
			return;
		}
		session_free(s);
	}
}

/* ---- life cycle ------------------------------------------------------- */

static void on_greet_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (!s->pregreet)
		return;
	s->pregreet = false;
	reply(s, "220 %s %s", s->env->cfg->node.hostname, s->env->cfg->smtp.banner);
	session_process(s);
}

/* Takes sa as the client of this session: text form, limits key, allowlist. */
static void set_client(struct smtp_session *s, const struct sockaddr *sa, socklen_t salen)
{
	memset(&s->peer, 0, sizeof(s->peer));
	if ((size_t)salen <= sizeof(s->peer))
		memcpy(&s->peer, sa, (size_t)salen);
	s->client_v6 = false;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &a6->sin6_addr, s->client, sizeof(s->client));
		s->client_port = ntohs(a6->sin6_port);
		s->client_v6 = true;
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a4->sin_addr, s->client, sizeof(s->client));
		s->client_port = ntohs(a4->sin_port);
	} else {
		(void)str_copy(s->client, sizeof(s->client), "unknown");
	}
	s->allowlisted = cidr_list_match(&s->env->allow, sa);
}

/* The client is known (after the PROXY header, if any): limits, then the
 * greeting, possibly after the greet delay. */
static void session_begin(struct smtp_session *s)
{
	struct smtp_env *env = s->env;
	const struct config *cfg = env->cfg;
	const struct sockaddr *sa = (const struct sockaddr *)&s->peer;

	if (env->draining || metrics_sessions_active(env->metrics) > cfg->smtp.max_sessions) {
		metrics_add(env->metrics, M_SMTP_SESSIONS_REFUSED, 1);
		reply(s, "421 4.7.0 %s Error: too many connections, try again later",
		      cfg->node.hostname);
		close_after_flush(s);
		return;
	}
	if (!s->allowlisted) {
		enum limits_verdict v = limits_connect(env->limits, cfg, env->worker, sa);
		if (v != LIMITS_OK) {
			metrics_add(env->metrics, M_SMTP_SESSIONS_REFUSED, 1);
			log_info("smtp_limit", "sid=%d.%llu client=%s limit=%s", env->worker,
				 (unsigned long long)s->sid, s->client, limits_verdict_name(v));
			reply(s,
			      "421 4.7.0 %s Error: too many connections from your %s, try "
			      "again later",
			      cfg->node.hostname, v == LIMITS_NET_RATE ? "network" : "address");
			close_after_flush(s);
			return;
		}
		s->limited = true;
	}
	if (!s->allowlisted) {
		/* In parallel, now: the lists have until the first RCPT. */
		if (dnsbl_check(env->dnsbl, sa, dnsbl_done, s, &s->dnsbl) < 0)
			s->dnsbl = NULL;
		if (fcrdns_check(env->base, env->resolver, sa, cfg->dnsbl.budget, fcrdns_done, s,
				 &s->fcrdns) < 0)
			s->fcrdns = NULL;
	}
	if (cfg->reputation.enabled && !s->allowlisted &&
	    cidr_rep_keys(sa, s->rep_ip, s->rep_net) == 0 &&
	    store_async_reputation(env->store, s->rep_ip, s->rep_net, cfg->reputation.half_life,
				   reputation_done, s) == 0) {
		s->waiting = true; /* the greeting waits for the answer */
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	session_greet(s);
}

/* Everything about the client is settled: greet it, perhaps after the
 * greet delay (pregreet detection). */
static void session_greet(struct smtp_session *s)
{
	struct smtp_env *env = s->env;
	const struct config *cfg = env->cfg;

	if (cfg->limits.greet_delay > 0 && !s->allowlisted) {
		/* Listen before the banner: a client that talks now is a bot. */
		int64_t ms = cfg->limits.greet_delay;
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		s->pregreet = true;
		s->greet_timer = evtimer_new(env->base, on_greet_timer, s);
		if (s->greet_timer && evtimer_add(s->greet_timer, &tv) == 0) {
			bufferevent_enable(s->bev, EV_READ | EV_WRITE);
			return;
		}
		s->pregreet = false;
	}
	reply(s, "220 %s %s", cfg->node.hostname, cfg->smtp.banner);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* The client's reputation: an operator's block or a record of spam and no
 * ham refuses it now; an operator's allow exempts it from later checks.
 * A store that does not answer costs the client nothing (TEMPFAIL: go on). */
static void reputation_done(int rc, const struct store_reputation rep[2], void *arg)
{
	struct smtp_session *s = arg;
	const struct config *cfg = s->env->cfg;
	const char *why = NULL;

	s->waiting = false;
	if (s->dead) {
		session_free(s);
		return;
	}
	if (rc == STORE_OK) {
		s->rep_spam = rep[0].spam;
		s->rep_ham = rep[0].ham;
		if (rep[0].action == STORE_REP_BLOCK || rep[1].action == STORE_REP_BLOCK)
			why = "blocked by local policy";
		else if (rep[0].action == STORE_REP_ALLOW || rep[1].action == STORE_REP_ALLOW)
			s->allowlisted = true;
		/* REP_SLACK: counts written a moment ago have decayed a hair */
		else if (rep[0].spam + REP_SLACK >= (double)cfg->reputation.reject_spam &&
			 rep[0].ham < 1.0)
			why = "poor reputation of your address";
		else if (rep[1].spam + REP_SLACK >= (double)cfg->reputation.reject_net_spam &&
			 rep[1].ham < 1.0)
			why = "poor reputation of your network";
		if (rep[0].spam > 0 || rep[0].ham > 0 || rep[1].spam > 0 || why)
			log_info("reputation",
				 "sid=%d.%llu client=%s spam=%.1f ham=%.1f net_spam=%.1f "
				 "net_ham=%.1f%s%s%s",
				 s->env->worker, (unsigned long long)s->sid, s->client, rep[0].spam,
				 rep[0].ham, rep[1].spam, rep[1].ham, why ? " refused=\"" : "",
				 why ? why : "", why ? "\"" : "");
	}
	if (why) {
		metrics_add(s->env->metrics, M_SMTP_SESSIONS_REFUSED, 1);
		reply(s, "554 5.7.1 %s Error: %s (%s)", cfg->node.hostname, why, s->client);
		close_after_flush(s);
		return;
	}
	session_greet(s);
}

/* Counts a spam verdict against the client (a bot's behaviour). */
static void reputation_spam(struct smtp_session *s)
{
	const struct config *cfg = s->env->cfg;

	if (cfg->reputation.enabled && !s->allowlisted && s->rep_ip[0] &&
	    store_async_reputation_record(s->env->store, s->rep_ip, s->rep_net, true,
					  cfg->reputation.half_life) < 0)
		log_warn("reputation", "sid=%d.%llu reason=\"out of memory\"", s->env->worker,
			 (unsigned long long)s->sid);
}

/* Reads the PROXY header. Returns true when the session goes on. */
static bool proxy_header(struct smtp_session *s, struct evbuffer *in)
{
	size_t have = evbuffer_get_length(in), used = 0;
	struct proxy_info pi;
	char via[sizeof(s->client)];
	int r;

	if (have > PROXY_HEADER_MAX)
		have = PROXY_HEADER_MAX;
	r = proxy_parse(evbuffer_pullup(in, (ev_ssize_t)have), have, &pi, &used);
	if (r == 0 && have < PROXY_HEADER_MAX)
		return false; /* wait for more */
	if (r <= 0) {
		log_info("proxy_refused", "sid=%d.%llu via=%s reason=bad_header", s->env->worker,
			 (unsigned long long)s->sid, s->client);
		reply(s, "421 4.7.0 %s Error: bad PROXY protocol header",
		      s->env->cfg->node.hostname);
		s->proxy_wait = false;
		close_after_flush(s);
		return false;
	}
	evbuffer_drain(in, used);
	s->proxy_wait = false;
	(void)str_copy(via, sizeof(via), s->client);
	if (pi.family != AF_UNSPEC)
		set_client(s, (const struct sockaddr *)&pi.src, pi.srclen);
	log_info("proxy", "sid=%d.%llu client=%s port=%u via=%s", s->env->worker,
		 (unsigned long long)s->sid, s->client, s->client_port, via);
	session_begin(s);
	return false;
}

int smtp_session_start(struct smtp_env *env, int fd, const struct sockaddr *sa, socklen_t salen,
		       bool proxy)
{
	const struct config *cfg = env->cfg;
	struct smtp_session *s;

	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->env = env;
	s->sid = ++env->next_sid;
	s->state = ST_GREET;
	set_client(s, sa, salen);
	s->cmd_tokens = (double)cfg->limits.command_rate;
	s->cmd_refilled_ms = time_now_ms();
	s->bev = bufferevent_socket_new(env->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev) {
		close(fd);
		free(s);
		return -ENOMEM;
	}
	s->next = env->sessions;
	if (env->sessions)
		env->sessions->prev = s;
	env->sessions = s;
	env->nsessions++;
	metrics_add(env->metrics, M_SMTP_CONNECTIONS, 1);
	metrics_session_add(env->metrics, env->worker, 1);
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_set_timeouts(s->bev, &(struct timeval){.tv_sec = cfg->smtp.timeout_command},
				 &(struct timeval){.tv_sec = cfg->smtp.timeout_command});
	log_info("connect", "sid=%d.%llu client=%s port=%u%s", env->worker,
		 (unsigned long long)s->sid, s->client, s->client_port, proxy ? " proxy=yes" : "");
	if (proxy) {
		if (!cidr_list_match(&env->proxy_trusted, sa)) {
			/* Only our own balancers may tell us who the client is. */
			log_info("proxy_refused", "sid=%d.%llu via=%s reason=untrusted",
				 env->worker, (unsigned long long)s->sid, s->client);
			reply(s, "421 4.7.0 %s Error: PROXY protocol not accepted from %s",
			      cfg->node.hostname, s->client);
			close_after_flush(s);
			return 0;
		}
		s->proxy_wait = true;
		bufferevent_enable(s->bev, EV_READ | EV_WRITE);
		return 0;
	}
	session_begin(s);
	return 0;
}

static void session_free(struct smtp_session *s)
{
	struct smtp_env *env = s->env;

	log_info("disconnect", "sid=%d.%llu client=%s commands=%u errors=%u messages=%u",
		 env->worker, (unsigned long long)s->sid, s->client, s->ncommands, s->nerrors,
		 s->nmessages);
	smtp_tx_free(s);
	if (s->prev)
		s->prev->next = s->next;
	else
		env->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	env->nsessions--;
	metrics_session_add(env->metrics, env->worker, -1);
	if (s->limited)
		limits_disconnect(env->limits, env->worker, (const struct sockaddr *)&s->peer);
	dnsbl_req_free(s->dnsbl);
	fcrdns_req_free(s->fcrdns);
	if (s->linger)
		event_free(s->linger);
	if (s->greet_timer)
		event_free(s->greet_timer);
	bufferevent_free(s->bev);
	free(s);
}

void smtp_env_drain(struct smtp_env *env)
{
	struct smtp_session *s, *next;

	env->draining = true;
	for (s = env->sessions; s; s = next) {
		next = s->next;
		s->drain = true;
		/* Idle sessions go now; the others after their transaction. */
		if (!s->waiting && !s->tx && s->state != ST_QUIT) {
			reply(s, "421 4.3.2 %s Service shutting down", env->cfg->node.hostname);
			close_after_flush(s);
		}
	}
}

void smtp_env_close_all(struct smtp_env *env)
{
	struct smtp_session *s, *next;

	for (s = env->sessions; s; s = next) {
		next = s->next;
		/* waiting on DNS (lists, SPF, DKIM, ARC, URI lists) can be
		 * cancelled; a store or
		 * scan job holds the session until its callback frees it */
		if (s->waiting && !s->wait_dnsbl &&
		    !(s->tx && (s->tx->wait_spf || s->tx->dkim || s->tx->dmarc || s->tx->arc ||
				s->tx->uribl))) {
			s->dead = true;
			bufferevent_disable(s->bev, EV_READ | EV_WRITE);
			continue;
		}
		session_free(s);
	}
}
