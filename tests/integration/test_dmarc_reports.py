# SPDX-License-Identifier: MIT
"""DMARC aggregate reports (RFC 7489 7.2, appendix C): rows collected in
the store are turned by `mxguard dmarc report --now` (the daemon's daily
job, run at once) into one report per policy domain and day, queued, and
delivered by the daemon to the rua address; the test reads it back from
the capturing server: headers, the gzip'd attachment and its XML."""
import email
import email.policy
import gzip
import sqlite3
import time
import xml.etree.ElementTree as ET

from harness import Capture, Daemon, setup_domain, wait_for

DAY = 86400


def setup_module():
    cap = Capture().start()
    d = Daemon(dmarc__report_org="Test Receiver & Co",
               dmarc__report_from="dmarc-reports@mx.test.example").start()
    setup_domain(d, cap.port, mailboxes=("alice", "dmarc"))   # example.test -> capture
    return {"d": d, "cap": cap}


def teardown_module(ctx):
    ctx["d"].cleanup()
    ctx["cap"].stop()


def add_row(db, ts, domain, rua, ip, disposition="none", dkim=("pass", "pass"),
            spf=("fail", "softfail"), p="reject"):
    """One evaluated message, as dmarc_report_record() stores it."""
    with sqlite3.connect(db, timeout=10) as c:
        c.execute("INSERT INTO dmarc_records (ts, day, policy_domain, header_from, rua,"
                  " source_ip, disposition, reason, dkim_eval, spf_eval, dkim_domain,"
                  " dkim_selector, dkim_result, spf_domain, spf_scope, spf_result, p, sp, pct,"
                  " adkim, aspf, fo) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, 'sel', ?, ?,"
                  " 'mfrom', ?, ?, ?, 100, 'r', 'r', '0')",
                  (ts, ts // DAY, domain, domain, rua, ip, disposition, dkim[0], spf[0],
                   domain, dkim[1], domain, spf[1], p, p))


def test_report_sent_once_with_rfc7489_xml(ctx):
    d = ctx["d"]
    today = int(time.time()) // DAY * DAY
    y = today - DAY
    rua = "mailto:dmarc@example.test!10m"
    for i in range(3):
        add_row(d.db, y + 100 + i, "example.test", rua, "192.0.2.1")
    add_row(d.db, y + 200, "example.test", rua, "2001:db8::7", disposition="reject",
            dkim=("fail", "fail"))
    add_row(d.db, today + 5, "example.test", rua, "192.0.2.1")   # today: not yet due
    # reports asked for elsewhere, not authorized by DNS: never sent
    add_row(d.db, y + 300, "other.test", "mailto:agg@reports.example.net", "192.0.2.9")

    out = d.cli("dmarc", "report", "--now").stdout
    assert "reports=1 records=2 skipped=1 failed=0" in out, out
    # the job is idempotent: a second run (another node) sends nothing
    out = d.cli("dmarc", "report", "--now").stdout
    assert "reports=0" in out, out

    m = wait_for(lambda: [x for x in ctx["cap"].messages if b"Report Domain:" in x["data"]],
                 what="the report")
    assert len(m) == 1
    assert m[0]["rcpts"] == ["dmarc@example.test"]
    assert m[0]["mail_from"] == "dmarc-reports@mx.test.example"
    msg = email.message_from_bytes(m[0]["data"], policy=email.policy.default)
    report_id = "%s.example.test@mx.test.example" % time.strftime("%Y%m%d", time.gmtime(y))
    assert msg["Subject"] == ("Report Domain: example.test Submitter: mx.test.example "
                              "Report-ID: <%s>" % report_id)
    assert msg["To"] == "dmarc@example.test"
    assert "dmarc-reports@mx.test.example" in msg["From"]
    parts = [p for p in msg.iter_attachments()]
    assert len(parts) == 1
    att = parts[0]
    assert att.get_content_type() == "application/gzip"
    assert att.get_filename() == "mx.test.example!example.test!%d!%d.xml.gz" % (y, y + DAY - 1)
    root = ET.fromstring(gzip.decompress(att.get_content()))

    assert root.tag == "feedback"
    assert root.findtext("version") == "1.0"
    meta = root.find("report_metadata")
    assert meta.findtext("org_name") == "Test Receiver & Co"
    assert meta.findtext("email") == "dmarc-reports@mx.test.example"
    assert meta.findtext("report_id") == report_id
    assert int(meta.findtext("date_range/begin")) == y
    assert int(meta.findtext("date_range/end")) == y + DAY - 1
    pol = root.find("policy_published")
    assert [pol.findtext(k) for k in ("domain", "adkim", "aspf", "p", "sp", "pct")] == \
        ["example.test", "r", "r", "reject", "reject", "100"]
    recs = {r.findtext("row/source_ip"): r for r in root.findall("record")}
    assert set(recs) == {"192.0.2.1", "2001:db8::7"}
    a = recs["192.0.2.1"]
    assert a.findtext("row/count") == "3"
    assert a.findtext("row/policy_evaluated/disposition") == "none"
    assert a.findtext("row/policy_evaluated/dkim") == "pass"
    assert a.findtext("row/policy_evaluated/spf") == "fail"
    assert a.findtext("identifiers/header_from") == "example.test"
    assert a.findtext("auth_results/dkim/domain") == "example.test"
    assert a.findtext("auth_results/dkim/selector") == "sel"
    assert a.findtext("auth_results/dkim/result") == "pass"
    assert a.findtext("auth_results/spf/scope") == "mfrom"
    assert a.findtext("auth_results/spf/result") == "softfail"
    b = recs["2001:db8::7"]
    assert b.findtext("row/count") == "1"
    assert b.findtext("row/policy_evaluated/disposition") == "reject"
    assert b.findtext("auth_results/dkim/result") == "fail"

    # rows are marked, the claim is recorded with the queue id
    with sqlite3.connect(d.db, timeout=10) as c:
        left = c.execute("SELECT count(*) FROM dmarc_records WHERE reported = 0").fetchone()[0]
        claims = c.execute("SELECT report_id, queue_id FROM dmarc_reports"
                           " WHERE queue_id <> ''").fetchall()
    assert left == 1   # today's row
    assert [r[0] for r in claims] == [report_id]
