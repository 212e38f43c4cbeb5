# SPDX-License-Identifier: MIT
"""DNS blocklists, allowlists and FCrDNS through the real daemon, answered by
a real nsd (zones in tests/dns) and a name server that never answers.

Clients connect from chosen loopback addresses (tests/dns/bl.mxg.test.zone):
  127.0.0.2   listed, code 127.0.0.2 (TEST_SBL, weight 6): refused at RCPT
  127.0.0.10  listed twice (TEST_SBL + TEST_XBL); its PTR is confirmed
  127.0.0.11  listed once, 127.0.0.4 (TEST_XBL, weight 2): below the threshold
  127.0.0.13  listed, but on the allowlist too: accepted
  127.0.0.20  not listed anywhere"""
import socket
import time

import dnsserver
from harness import Capture, Daemon, setup_domain, wait_for


def setup_module():
    ns = dnsserver.NSD().start()
    hole = dnsserver.BlackHole()
    cap = Capture().start()
    extra = """
[dnsbl bl.mxg.test]
weight = 1
codes = 127.0.0.2:TEST_SBL:6, 127.0.0.4:TEST_XBL:2

[dnsbl wl.mxg.test]
allow = yes
weight = -10

[dnsbl never.mxg.test]
weight = 3
server = 127.0.0.1:%d
""" % hole.port
    d = Daemon(conf_extra=extra, dns__servers="127.0.0.1:%d" % ns.port,
               dnsbl__reject_score="5", dnsbl__budget="1s").start()
    setup_domain(d, cap.port)
    return {"d": d, "ns": ns, "hole": hole, "cap": cap}


def teardown_module(ctx):
    ctx["d"].cleanup()
    ctx["cap"].stop()
    ctx["hole"].close()
    ctx["ns"].stop()


def transaction(ctx, src, subject):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(15)
    t0 = time.time()
    s.connect(("127.0.0.1", ctx["d"].smtp_port))
    f = s.makefile("rb")

    def reply():
        while True:
            l = f.readline().decode()
            if len(l) < 4 or l[3] != "-":
                return int(l[:3]), l
    assert reply()[0] == 220
    s.sendall(b"EHLO client.test\r\n")
    reply()
    s.sendall(b"MAIL FROM:<x@outside.test>\r\nRCPT TO:<alice@example.test>\r\n")
    reply()
    code, text = reply()
    rcpt_after = time.time() - t0
    if code == 250:
        s.sendall(b"DATA\r\n")
        assert reply()[0] == 354
        s.sendall(("Subject: %s\r\n\r\nx\r\n.\r\n" % subject).encode())
        assert reply()[0] == 250
    s.sendall(b"QUIT\r\n")
    s.close()
    return code, text, rcpt_after


def delivered(ctx, subject):
    return wait_for(lambda: [m for m in ctx["cap"].messages if subject.encode() in m["data"]],
                    what=subject)[0]["data"]


def test_listed_client_refused_naming_the_zone(ctx):
    code, text, took = transaction(ctx, "127.0.0.2", "never")
    assert code == 554 and "5.7.1" in text and "bl.mxg.test" in text, text
    assert took < 2.5, took  # the black-hole zone did not hold the session past the budget
    assert ctx["d"].metric("mxguard_dnsbl_rejects_total") >= 1


def test_two_codes_add_up(ctx):
    code, text, _ = transaction(ctx, "127.0.0.10", "never")
    assert code == 554, text  # 6 + 2


def test_below_threshold_becomes_symbols_on_the_message(ctx):
    code, text, _ = transaction(ctx, "127.0.0.11", "dnsbl-low")
    assert code == 250, text
    data = delivered(ctx, "dnsbl-low")
    hdr = [l for l in data.split(b"\r\n") if l.startswith(b"X-Mxguard-Connection:")][0]
    assert b"TEST_XBL(2.0)" in hdr and b"dnsbl=2.0" in hdr, hdr
    assert b"fcrdns=FCRDNS_MISMATCH" in hdr, hdr  # PTR bad.mxg.test -> another address
    # and the same findings are points in the message's score, each explained
    scan = data.split(b"\r\n\r\n")[0].replace(b"\r\n\t", b" ")
    scan = [l for l in scan.split(b"\r\n") if l.startswith(b"X-Mxguard-Scan:")][0]
    assert b"TEST_XBL(2.0)" in scan and b"FCRDNS_MISMATCH(0.5)" in scan, scan
    # the score is the sum of the symbols shown, every point explained
    import re
    total = float(re.search(rb"score=(-?[0-9.]+)", scan).group(1))
    parts = [float(x) for x in re.findall(rb"\((-?[0-9.]+)\)", scan)]
    assert abs(total - sum(parts)) < 0.05, scan


def test_allowlist_wins(ctx):
    code, text, _ = transaction(ctx, "127.0.0.13", "dnsbl-allowed")
    assert code == 250, text
    hdr = delivered(ctx, "dnsbl-allowed")
    assert b"TEST_SBL" in hdr  # listed, and said so, but not refused


def test_unlisted_client_and_silent_zone_skipped(ctx):
    code, text, took = transaction(ctx, "127.0.0.20", "dnsbl-clean")
    assert code == 250, text
    data = delivered(ctx, "dnsbl-clean")
    hdr = [l for l in data.split(b"\r\n") if l.startswith(b"X-Mxguard-Connection:")][0]
    assert b"dnsbl=0.0" in hdr and b"FCRDNS_NO_PTR" in hdr, hdr
    assert ctx["d"].metric("mxguard_dnsbl_timeouts_total") >= 1  # never.mxg.test
    assert "never.mxg.test:timeout" in ctx["d"].log()


def test_confirmed_ptr(ctx):
    d = ctx["d"]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.connect(("127.0.0.1", d.smtp_port))
    s.recv(100)
    s.sendall(b"EHLO x\r\nMAIL FROM:<y@outside.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    time.sleep(1.5)
    s.sendall(b"Subject: fcrdns-ok\r\n\r\nx\r\n.\r\nQUIT\r\n")
    time.sleep(0.5)
    s.close()
    data = delivered(ctx, "fcrdns-ok")
    assert b"fcrdns=FCRDNS_OK(localhost.mxg.test)" in data, data[:600]
