# SPDX-License-Identifier: MIT
"""Delivery: routes, retries, DSNs, the queue and log CLI, against real
downstream servers (a capturing server and Postfix's smtp-sink)."""
import json
import smtplib
import time

from harness import Capture, Daemon, SmtpSink, free_port, setup_domain, wait_for


def send(d, rcpts, subject, sender="sender@outside.test", body="hello"):
    s = smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20)
    s.sendmail(sender, rcpts, ("Subject: %s\r\n\r\n%s\r\n" % (subject, body)).encode())
    s.quit()


def test_delivery_to_smtp_sink_exact_bytes():
    sink = SmtpSink().start()
    d = Daemon().start()
    try:
        setup_domain(d, sink.port)
        body = "Subject: sink-bytes\r\nMessage-ID: <sink-bytes@t>\r\n\r\n" + \
               "".join("line %d of the body\r\n" % i for i in range(200))
        s = smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20)
        s.sendmail("x@outside.test", ["alice@example.test"], body.encode())
        s.quit()
        msgs = wait_for(lambda: [m for m in sink.messages() if b"sink-bytes@t" in m],
                        timeout=30, what="delivery to smtp-sink")
        got = msgs[0]
        # smtp-sink writes LF line ends; our Received header comes first
        assert got.startswith(b"Received: from "), got[:100]
        assert got[got.index(b"Subject: sink-bytes"):].rstrip(b"\n") == \
            body.replace("\r\n", "\n").encode().rstrip(b"\n")
        out = d.cli("log", "--rcpt", "alice@example.test").stdout
        assert "received" in out and "delivered" in out, out
    finally:
        d.cleanup()
        sink.cleanup()


def test_downstream_down_then_up():
    port = free_port()
    d = Daemon().start()
    try:
        setup_domain(d, port)
        send(d, ["alice@example.test"], "queued-while-down")
        wait_for(lambda: "deferred" in d.cli("log", "--rcpt", "alice@example.test").stdout,
                 timeout=20, what="a deferred attempt")
        out = d.cli("queue", "list").stdout
        assert "alice@example.test" in out, out
        cap = Capture(port=port).start()
        try:
            cap.wait_messages(1, timeout=30)
            assert b"queued-while-down" in cap.messages[0]["data"]
            wait_for(lambda: "alice@example.test" not in d.cli("queue", "list").stdout,
                     timeout=10, what="queue empty")
        finally:
            cap.stop()
    finally:
        d.cleanup()


def test_routes_tried_in_order():
    dead = free_port()
    cap = Capture().start()
    d = Daemon().start()
    try:
        d.cli("domain", "add", "example.test", "--route",
              "127.0.0.1:%d,127.0.0.1:%d" % (dead, cap.port))
        d.cli("mailbox", "add", "alice@example.test")
        send(d, ["alice@example.test"], "second-route")
        cap.wait_messages(1)
        out = d.cli("log", "--rcpt", "alice@example.test").stdout
        assert "delivered" in out, out
    finally:
        d.cleanup()
        cap.stop()


def test_permanent_failure_sends_dsn():
    cap = Capture(replies={"RCPT": lambda cmd: "550 5.1.1 no such user here"
                           if "alice" in cmd else None}).start()
    d = Daemon().start()
    try:
        setup_domain(d, cap.port)
        # the sender is a hosted mailbox, so its DSN is delivered to the capture too
        send(d, ["alice@example.test"], "will-bounce", sender="bob@example.test")
        msgs = cap.wait_messages(1, timeout=30)
        dsn = msgs[0]
        assert dsn["mail_from"] == "", dsn["mail_from"]  # null sender
        assert dsn["rcpts"] == ["bob@example.test"]
        data = dsn["data"]
        assert b"multipart/report" in data and b"report-type=delivery-status" in data, data
        assert b"Final-Recipient: rfc822;" in data and b"alice@example.test" in data
        assert b"Action: failed" in data and b"Status: 5.1.1" in data, data
        assert b"Subject: will-bounce" in data  # the original headers
        out = d.cli("log", "--rcpt", "alice@example.test").stdout
        assert "bounced" in out, out
        # a bounce of a DSN (null sender) never makes another DSN
        cap.replies["RCPT"] = lambda cmd: "550 5.1.1 gone"
        s = smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20)
        s.sendmail("", ["bob@example.test"], b"Subject: null-bounce\r\n\r\nx\r\n")
        s.quit()
        wait_for(lambda: "bounced" in d.cli("log", "--rcpt", "bob@example.test").stdout,
                 timeout=20, what="bounce of the null-sender message")
        time.sleep(2)
        assert len(cap.messages) == 1, [m["rcpts"] for m in cap.messages]
    finally:
        d.cleanup()
        cap.stop()


def test_expiry_bounces_after_lifetime():
    port = free_port()  # nothing listens: every attempt fails
    cap = Capture().start()
    d = Daemon(delivery__lifetime="60s").start()
    try:
        d.cli("domain", "add", "example.test", "--route", "127.0.0.1:%d" % port)
        d.cli("mailbox", "add", "alice@example.test")
        d.cli("domain", "add", "senders.test", "--route", "127.0.0.1:%d" % cap.port)
        d.cli("mailbox", "add", "carol@senders.test")
        send(d, ["alice@example.test"], "will-expire", sender="carol@senders.test")
        msgs = cap.wait_messages(1, timeout=120)
        assert b"Action: failed" in msgs[0]["data"]
        assert b"expired" in msgs[0]["data"].lower()
    finally:
        d.cleanup()
        cap.stop()


def test_queue_cli_show_retry_delete():
    port = free_port()
    d = Daemon(delivery__retry_min="1h", delivery__retry_max="2h").start()
    try:
        setup_domain(d, port)
        send(d, ["alice@example.test", "bob@example.test"], "cli-queue")
        wait_for(lambda: "deferred" in d.cli("log", "--rcpt", "bob@example.test").stdout,
                 timeout=20, what="first attempt")
        j = json.loads(d.cli("queue", "list", "--json").stdout)
        entries = j if isinstance(j, list) else j.get("queue", j.get("entries", []))
        qids = {e["queue_id"] for e in entries}
        assert len(qids) == 1, j
        qid = qids.pop()
        show = d.cli("queue", "show", qid).stdout
        assert "alice@example.test" in show and "bob@example.test" in show, show
        cap = Capture(port=port).start()
        try:
            d.cli("queue", "retry", qid)
            cap.wait_messages(1, timeout=20)
        finally:
            cap.stop()
        # delete: queue another one (to a route where nothing listens) and remove it
        d.cli("domain", "route", "example.test", "127.0.0.1:%d" % free_port())
        send(d, ["alice@example.test"], "cli-delete")
        time.sleep(1)
        j = json.loads(d.cli("queue", "list", "--json").stdout)
        entries = j if isinstance(j, list) else j.get("queue", j.get("entries", []))
        assert entries, j
        qid2 = entries[0]["queue_id"]
        d.cli("queue", "delete", qid2)
        out = d.cli("queue", "list").stdout
        assert qid2 not in out, out
        assert "deleted" in d.cli("log", "--qid", qid2).stdout
        p = d.cli("queue", "show", "NOSUCHQUEUEID000", check=False)
        assert p.returncode != 0
    finally:
        d.cleanup()
