# SPDX-License-Identifier: MIT
"""SMTP protocol: real clients (swaks, smtplib, raw sockets) against the
real daemon, delivering to a real capturing server."""
import smtplib
import subprocess
import time

from harness import Capture, Client, Daemon, setup_domain, wait_for


def setup_module():
    cap = Capture().start()
    d = Daemon(smtp__max_recipients="5", smtp__max_message_size="64k",
               smtp__max_line_length="1000", smtp__max_errors="6").start()
    setup_domain(d, cap.port)
    d.cli("alias", "add", "sales@example.test", "alice@example.test")
    d.cli("domain", "add", "catchall.test", "--route", "127.0.0.1:%d" % cap.port)
    d.cli("mailbox", "add", "inbox@catchall.test")
    d.cli("domain", "catchall", "catchall.test", "inbox@catchall.test")
    return {"d": d, "cap": cap}


def teardown_module(ctx):
    if ctx:
        ctx["d"].cleanup()
        ctx["cap"].stop()


def msg_with(cap, needle, timeout=20):
    def find():
        for m in cap.messages:
            if needle.encode() in m["data"]:
                return m
        return None
    return wait_for(find, timeout=timeout, what="message containing %r" % needle)


def session(ctx, ehlo=True):
    c = Client(ctx["d"].smtp_port)
    code, text = c.reply()
    assert code == 220, text
    if ehlo:
        code, text = c.cmd("EHLO client.test")
        assert code == 250, text
    return c


def test_banner_and_ehlo_capabilities(ctx):
    c = Client(ctx["d"].smtp_port)
    code, text = c.reply()
    assert code == 220 and "mx.test.example" in text, text
    code, text = c.cmd("EHLO client.test")
    assert code == 250
    for cap in ("PIPELINING", "SIZE 65536", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                "CHUNKING"):
        assert cap in text, (cap, text)
    assert c.cmd("QUIT")[0] == 221
    assert c.closed()


def test_swaks_delivery_bytes_preserved(ctx):
    body = "Subject: swaks-bytes\r\nX-Test: 1\r\n\r\nline one\r\n..leading dot\r\n" + \
           "x" * 900 + "\r\nlast\r\n"
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % ctx["d"].smtp_port,
                        "--from", "sender@outside.test", "--to", "alice@example.test",
                        "--data", "-"], input=body, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "250 2.0.0 Ok: queued as" in p.stdout, p.stdout
    m = msg_with(ctx["cap"], "swaks-bytes")
    data = m["data"]
    # Our Received header is added in front; the rest is byte for byte.
    assert data.startswith(b"Received: from "), data[:200]
    hdr_end = data.index(b"Subject: swaks-bytes")
    assert b"by mx.test.example (mxguard)" in data[:hdr_end]
    # swaks dot-stuffs on the wire and ends the data with one more CRLF
    assert data[hdr_end:] == body.encode() + b"\r\n", data
    assert m["rcpts"] == ["alice@example.test"]
    assert m["mail_from"] == "sender@outside.test"


def test_smtplib_multiple_recipients_alias_catchall(ctx):
    s = smtplib.SMTP("127.0.0.1", ctx["d"].smtp_port, timeout=20)
    refused = s.sendmail("a@outside.test",
                         ["alice@example.test", "Bob@EXAMPLE.test", "sales@example.test",
                          "anything@catchall.test"],
                         b"Subject: smtplib-multi\r\n\r\nhello\r\n")
    s.quit()
    assert refused == {}, refused
    m = msg_with(ctx["cap"], "smtplib-multi")
    got = set()
    for msg in ctx["cap"].messages:
        if b"smtplib-multi" in msg["data"]:
            got.update(msg["rcpts"])
    wait_for(lambda: len(got.union(*[set(x["rcpts"]) for x in ctx["cap"].messages
                                     if b"smtplib-multi" in x["data"]])) >= 4, timeout=20,
             what="all four recipients")
    got = set()
    for msg in ctx["cap"].messages:
        if b"smtplib-multi" in msg["data"]:
            got.update(msg["rcpts"])
    assert got == {"alice@example.test", "Bob@example.test", "sales@example.test",
                   "anything@catchall.test"}, got
    assert m is not None


def test_unknown_mailbox_and_foreign_domain(ctx):
    c = session(ctx)
    assert c.cmd("MAIL FROM:<x@outside.test>")[0] == 250
    code, text = c.cmd("RCPT TO:<nobody@example.test>")
    assert code == 550 and "5.1.1" in text, text
    code, text = c.cmd("RCPT TO:<victim@gmail.example>")
    assert code == 554 and "5.7.1" in text, text
    code, text = c.cmd("DATA")
    assert code == 554, text  # no valid recipients
    c.cmd("QUIT")


def test_pipelining_all_at_once(ctx):
    c = session(ctx)
    c.send("MAIL FROM:<p@outside.test>\r\nRCPT TO:<alice@example.test>\r\n"
           "RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 550, 250, 354], codes
    c.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<p2@outside.test>\r\n"
           "RCPT TO:<alice@example.test>\r\nDATA\r\n")
    code, text = c.reply()
    assert code == 250 and "queued as" in text, text
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
    c.send("Subject: pipelined-2\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 221
    msg_with(ctx["cap"], "pipelined-2")
    m = msg_with(ctx["cap"], "Subject: pipelined\r\n")
    assert sorted(m["rcpts"]) == ["alice@example.test", "bob@example.test"]


def test_bdat_chunks(ctx):
    c = session(ctx)
    assert c.cmd("MAIL FROM:<b@outside.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    part1 = b"Subject: bdat-chunks\r\n\r\nfirst part "
    part2 = b"second part\r\n.not stuffed\r\n"
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    code, text = c.reply()
    assert code == 250, text
    c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    code, text = c.reply()
    assert code == 250 and "queued as" in text, text
    m = msg_with(ctx["cap"], "bdat-chunks")
    assert m["data"].endswith(part1[part1.index(b"Subject"):][-11:] + part2), m["data"]
    # DATA after BDAT in the same transaction is a sequence error
    assert c.cmd("MAIL FROM:<b@outside.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    c.send(b"BDAT 3\r\nabc")
    assert c.reply()[0] == 250
    assert c.cmd("DATA")[0] == 503
    assert c.cmd("RSET")[0] == 250
    c.cmd("QUIT")


def test_bdat_zero_last_and_pipelined(ctx):
    c = session(ctx)
    body = b"Subject: bdat-pipe\r\n\r\nx\r\n"
    c.send(b"MAIL FROM:<b@outside.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT %d\r\n" %
           len(body) + body + b"BDAT 0 LAST\r\n")
    codes = [c.reply()[0] for _ in range(4)]
    assert codes == [250, 250, 250, 250], codes
    msg_with(ctx["cap"], "bdat-pipe")
    c.cmd("QUIT")


def test_smtputf8_addresses(ctx):
    d = ctx["d"]
    d.cli("mailbox", "add", "jürgen@example.test")
    c = session(ctx)
    code, text = c.cmd("MAIL FROM:<sénder@outside.test>")
    assert code == 553 and "5.6.7" in text, text
    assert c.cmd("MAIL FROM:<sénder@outside.test> SMTPUTF8")[0] == 250
    code, text = c.cmd("RCPT TO:<jürgen@example.test>")
    assert code == 250, text
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: utf8-address\r\n\r\nGrüße\r\n.\r\n".encode())
    assert c.reply()[0] == 250
    m = msg_with(ctx["cap"], "utf8-address")
    assert m["rcpts"] == ["jürgen@example.test"]
    assert "SMTPUTF8" in m["mail_args"], m["mail_args"]
    c.cmd("QUIT")


def test_8bit_body(ctx):
    c = session(ctx)
    assert c.cmd("MAIL FROM:<e@outside.test> BODY=8BITMIME")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    body = "Subject: eightbit\r\n\r\nnaïve café\xa0\r\n".encode("latin-1")
    c.send(body + b".\r\n")
    assert c.reply()[0] == 250
    m = msg_with(ctx["cap"], "eightbit")
    assert m["data"].endswith(body)
    assert "BODY=8BITMIME" in m["mail_args"], m["mail_args"]
    c.cmd("QUIT")


def test_long_lines(ctx):
    c = session(ctx)
    c.send("NOOP " + "a" * 5000 + "\r\n")
    code, text = c.reply()
    assert code == 500 and "5.5.2" in text, text
    assert c.cmd("NOOP")[0] == 250  # still in step
    # long lines inside DATA are content, not commands
    assert c.cmd("MAIL FROM:<l@outside.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: longline\r\n\r\n" + "y" * 5000 + "\r\n.\r\n")
    assert c.reply()[0] == 250
    m = msg_with(ctx["cap"], "longline")
    assert b"y" * 5000 in m["data"]
    c.cmd("QUIT")


def test_too_many_recipients(ctx):
    c = session(ctx)
    assert c.cmd("MAIL FROM:<t@outside.test>")[0] == 250
    for i in range(5):
        d_ok = c.cmd("RCPT TO:<alice@example.test>")[0]
        assert d_ok == 250
    # five distinct slots are used up by duplicates too? use distinct names
    c.cmd("RSET")
    assert c.cmd("MAIL FROM:<t@outside.test>")[0] == 250
    addrs = ["alice", "bob", "sales", "a1@catchall.test", "a2@catchall.test"]
    for a in addrs:
        a = a if "@" in a else a + "@example.test"
        assert c.cmd("RCPT TO:<%s>" % a)[0] == 250
    code, text = c.cmd("RCPT TO:<a3@catchall.test>")
    assert code == 452 and "4.5.3" in text, text
    c.cmd("QUIT")


def test_oversize_message(ctx):
    c = session(ctx)
    code, text = c.cmd("MAIL FROM:<o@outside.test> SIZE=100000")
    assert code == 552 and "5.3.4" in text, text
    assert c.cmd("MAIL FROM:<o@outside.test> SIZE=1000")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: oversize\r\n\r\n" + ("z" * 998 + "\r\n") * 80 + ".\r\n")
    code, text = c.reply()
    assert code == 552 and "5.3.4" in text, text
    assert c.cmd("NOOP")[0] == 250  # in step after the refused data
    c.cmd("QUIT")
    time.sleep(0.5)
    assert not any(b"oversize" in m["data"] for m in ctx["cap"].messages)


def test_unknown_command_and_error_limit(ctx):
    c = session(ctx)
    code, text = c.cmd("FOOBAR")
    assert code == 500 and "5.5.2" in text
    for _ in range(5):
        assert c.cmd("FOOBAR")[0] == 500
    # the sixth error (max_errors = 6) is answered, then the session ends
    # with an unsolicited 421, as Postfix does at its hard error limit
    code, text = c.reply()
    assert code == 421 and "4.7.0" in text, text
    assert c.closed()


def test_sequence_errors(ctx):
    c = session(ctx, ehlo=False)
    code, text = c.cmd("MAIL FROM:<s@outside.test>")
    assert code == 503 and "5.5.1" in text
    c.cmd("EHLO client.test")
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 503
    assert c.cmd("DATA")[0] == 503
    assert c.cmd("MAIL FROM:<s@outside.test>")[0] == 250
    assert c.cmd("MAIL FROM:<s@outside.test>")[0] == 503
    assert c.cmd("VRFY alice")[0] == 252
    assert c.cmd("HELP")[0] == 214
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:<s@outside.test>")[0] == 250
    c.cmd("QUIT")


def test_bare_lf_smuggling_refused(ctx):
    c = session(ctx)
    assert c.cmd("MAIL FROM:<attacker@outside.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    # "\n.\n" then a smuggled transaction, then the real end
    c.send("Subject: smuggle-outer\r\n\r\nhi\n.\nMAIL FROM:<ceo@example.test>\r\n"
           "RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled-inner\r\n\r\nx\r\n.\r\n")
    code, text = c.reply()
    assert code == 550 and "bare" in text.lower(), text
    # and the "\r\n.\n" variant
    assert c.cmd("MAIL FROM:<attacker@outside.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: smuggle-outer2\r\n\r\nhi\r\n.\nMAIL FROM:<x@y>\r\n.\r\n")
    code, text = c.reply()
    assert code == 550, text
    assert c.cmd("NOOP")[0] == 250
    c.cmd("QUIT")
    time.sleep(1)
    for m in ctx["cap"].messages:
        assert b"smuggle" not in m["data"], m


def test_disconnect_mid_data_stores_nothing(ctx):
    d = ctx["d"]
    c = session(ctx)
    assert c.cmd("MAIL FROM:<cut@outside.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: cut-off\r\n\r\npartial body without the end")
    c.close()
    wait_for(lambda: "lost_connection" in d.log(), timeout=10, what="lost_connection log")
    time.sleep(0.5)
    out = d.cli("log", "--sender", "cut@outside.test").stdout
    assert "received" not in out, out
    assert not any(b"cut-off" in m["data"] for m in ctx["cap"].messages)


def test_null_sender_accepted(ctx):
    c = session(ctx)
    assert c.cmd("MAIL FROM:<>")[0] == 250
    assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: null-sender\r\n\r\nbounce\r\n.\r\n")
    assert c.reply()[0] == 250
    m = msg_with(ctx["cap"], "null-sender")
    assert m["mail_from"] == ""
    c.cmd("QUIT")


def test_syntax_errors(ctx):
    c = session(ctx)
    assert c.cmd("MAIL FROM:alice@example.test")[0] == 501
    assert c.cmd("MAIL FROM:<a@b> FOO=BAR")[0] == 555
    assert c.cmd("MAIL FROM:<a@b>")[0] == 250
    assert c.cmd("RCPT TO:<bad address@example.test>")[0] == 501
    assert c.cmd("RCPT TO:<alice@example.test> NOTIFY=NEVER")[0] == 555
    c.cmd("QUIT")
