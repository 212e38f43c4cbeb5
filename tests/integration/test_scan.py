# SPDX-License-Identifier: MIT
"""The content pipeline in the SMTP session: every message is parsed by the
MIME engine on a scanning thread before it is committed, and what the
checks find travels with it as symbols."""
import smtplib

from harness import Capture, Daemon, setup_domain, wait_for


def setup_module():
    cap = Capture().start()
    d = Daemon(scan__threads="2").start()
    setup_domain(d, cap.port)
    return {"d": d, "cap": cap}


def teardown_module(ctx):
    ctx["d"].cleanup()
    ctx["cap"].stop()


def send(ctx, body):
    s = smtplib.SMTP("127.0.0.1", ctx["d"].smtp_port, timeout=30)
    s.sendmail("s@outside.test", ["alice@example.test"], body)
    s.quit()


def got(ctx, needle):
    return wait_for(lambda: [m for m in ctx["cap"].messages if needle in m["data"]],
                    what=needle)[0]["data"]


def test_findings_become_symbols_on_the_message(ctx):
    body = (b"Subject: scan-broken\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
            b"--XX\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            b"QUJD!!!RE*VG\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n")  # never closed
    send(ctx, body)
    data = got(ctx, b"scan-broken")
    hdr = data.split(b"\r\n\r\n")[0]
    assert b"X-Mxguard-Scan: score=" in hdr, hdr
    assert b"MIME_BAD_BASE64" in hdr and b"MIME_BOUNDARY_UNCLOSED" in hdr, hdr
    assert data.endswith(body), "the message itself is untouched"
    assert ctx["d"].metric("mxguard_scan_messages_total") >= 1


def test_clean_message_has_no_content_symbols(ctx):
    send(ctx, b"Subject: scan-clean\r\n\r\nnothing to see\r\n")
    data = got(ctx, b"scan-clean")
    hdr = data.split(b"\r\n\r\n")[0]
    # (the connection layer may add FCRDNS_* for 127.0.0.1, depending on
    # this machine's resolver; the content checks find nothing)
    assert b"MIME_" not in hdr and b"ARCHIVE_" not in hdr, hdr


def test_hostile_nesting_is_accepted_and_named(ctx):
    depth = 2000
    parts = [b"Subject: scan-deep\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
             b"boundary=b0\r\n\r\n"]
    for i in range(1, depth):
        parts.append(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i))
    parts.append(b"--b%d\r\n\r\ninner\r\n" % (depth - 1))
    for i in range(depth - 1, -1, -1):
        parts.append(b"--b%d--\r\n" % i)
    send(ctx, b"".join(parts))
    data = got(ctx, b"scan-deep")
    assert b"MIME_TOO_DEEP" in data.split(b"\r\n\r\n")[0]
