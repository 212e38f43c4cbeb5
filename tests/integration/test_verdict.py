# SPDX-License-Identifier: MIT
"""The stages of the verdict after the content scan, through the real
daemon: URI blocklists asked through a real nsd (records like those of
tests/dns/uribl.mxg.test, plus the ARC key, served by authdns.AuthDNS),
sender relationships from the store, Bayes autolearn once the score is
final, and ARC: the chain of earlier hops verified (arc= in our
Authentication-Results) and every copy we change sealed, the seal checked
by our verifier (tests/auth/arc_eval) against the key served by nsd."""
import json
import os
import smtplib
import subprocess
import tempfile
import time

from authdns import AuthDNS
from harness import BUILD, Capture, Daemon, make_tmpdir, setup_domain, wait_for


def setup_module():
    cap = Capture().start()
    keydir = make_tmpdir("arckey")
    out = subprocess.run([os.path.join(BUILD, "tests", "unit", "arc_eval"), "keygen", "rsa"],
                         capture_output=True, check=True, text=True).stdout
    pem, txt = out[:out.index("-----END PRIVATE KEY-----") + 25] + "\n", \
        out[out.index("-----END PRIVATE KEY-----") + 25:].strip()
    key = os.path.join(keydir, "arc.pem")
    with open(key, "w") as f:
        f.write(pem)
    os.chmod(keydir, 0o755)
    os.chmod(key, 0o644)
    extra = """
[uribl uribl.mxg.test]
weight = 1
codes = 127.0.1.2:TEST_URIBL_SPAM:3, 127.0.1.4:TEST_URIBL_PHISH:13

[arc]
domain = seal.test
selector = s1
key = %s
""" % key
    ns = AuthDNS({"spam-domain.example.uribl.mxg.test": [("A", "127.0.1.2")],
                  "phish.example.uribl.mxg.test": [("A", "127.0.1.4")],
                  "s1._domainkey.seal.test": [("TXT", txt)],
                  # the client has a confirmed name (no FCrDNS points)
                  "1.0.0.127.in-addr.arpa": [("PTR", "client.mxg.test")],
                  "client.mxg.test": [("A", "127.0.0.1")]}).start()
    d = Daemon(conf_extra=extra, dns__servers=ns.server, uribl__budget="2s").start()
    setup_domain(d, cap.port)
    return {"d": d, "ns": ns, "cap": cap, "txt": txt, "keydir": keydir}


def teardown_module(ctx):
    ctx["d"].cleanup()
    ctx["cap"].stop()
    ctx["ns"].stop()


def send(ctx, rcpts, subject, body="hello\r\n", sender="someone@outside.test",
         headers=""):
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Sun, 29 Nov 2026 01:00:00 +0000\r\n"
           "Message-ID: <%s@outside.test>\r\n%s\r\n%s" % (sender, rcpts[0], subject, subject,
                                                         headers, body))
    with smtplib.SMTP("127.0.0.1", ctx["d"].smtp_port, timeout=30) as s:
        s.sendmail(sender, rcpts, msg.encode())
    return msg.encode()


def got(ctx, subject, rcpt="alice@example.test"):
    return wait_for(lambda: [m for m in ctx["cap"].messages if subject.encode() in m["data"]
                             and rcpt in m["rcpts"]], what=subject)[0]["data"]


def scan_header(data):
    hdr = data.split(b"\r\n\r\n")[0].replace(b"\r\n\t", b" ")
    return [l for l in hdr.split(b"\r\n") if l.startswith(b"X-Mxguard-Scan:")][0].decode()


def test_uribl_listed_link_adds_its_points(ctx):
    send(ctx, ["alice@example.test"], "verdict-uribl",
         body="cheap stuff at http://www.spam-domain.example/buy now\r\n")
    h = scan_header(got(ctx, "verdict-uribl"))
    assert "TEST_URIBL_SPAM(3.0)" in h, h
    send(ctx, ["alice@example.test"], "verdict-uribl-clean",
         body="see http://www.not-listed.example/ for details\r\n")
    h = scan_header(got(ctx, "verdict-uribl-clean"))
    assert "URIBL" not in h, h


def test_relationships_known_and_first_contact(ctx):
    d = ctx["d"]
    d.cli("relationships", "add", "alice@example.test", "friend@partner.test")
    d.cli("relationships", "add", "alice@example.test", "friend@partner.test")
    send(ctx, ["alice@example.test"], "verdict-rel-known", sender="friend@partner.test")
    h = scan_header(got(ctx, "verdict-rel-known"))
    # no DMARC pass for partner.test here: no bonus for an unauthenticated From
    assert "REL_KNOWN_UNAUTH" in h, h
    send(ctx, ["alice@example.test"], "verdict-rel-new", sender="stranger@elsewhere.test")
    h = scan_header(got(ctx, "verdict-rel-new"))
    assert "REL_FIRST_CONTACT" in h, h


def bayes_stats(ctx):
    return json.loads(ctx["d"].cli("bayes", "stats", "--json").stdout)


def test_autolearn_spam_and_ham(ctx):
    before = bayes_stats(ctx)
    # a phishing listing alone (13 points) is past bayes.autolearn_spam (12)
    send(ctx, ["alice@example.test"], "verdict-learn-spam",
         body="verify your account at http://login.phish.example/now\r\n")
    wait_for(lambda: bayes_stats(ctx)["spam"] == before["spam"] + 1, what="learnt as spam")
    # a plain, complete message from nowhere special scores about 0: ham
    send(ctx, ["alice@example.test"], "verdict-learn-ham",
         body="the minutes of yesterday's meeting are attached.\r\n")
    got(ctx, "verdict-learn-ham")
    wait_for(lambda: bayes_stats(ctx)["ham"] >= before["ham"] + 1, what="learnt as ham")
    assert bayes_stats(ctx)["spam"] == before["spam"] + 1


def first_seal(raw):
    """The newest ARC-Seal, unfolded, as a dict of its tags."""
    assert raw.startswith(b"ARC-Seal:"), raw[:200]
    hdr = raw.split(b"\r\n\r\n")[0].replace(b"\r\n\t", b"").replace(b"\r\n ", b"")
    line = hdr.split(b"\r\n")[0][len(b"ARC-Seal:"):].decode()
    return dict(t.strip().split("=", 1) for t in line.split(";") if "=" in t)


def arc_verify(ctx, raw):
    exe = os.path.join(BUILD, "tests", "unit", "arc_eval")
    records = {"s1._domainkey.seal.test": [("TXT", ctx["txt"])]}
    with tempfile.NamedTemporaryFile() as t, AuthDNS(records) as dns:
        t.write(raw)
        t.flush()
        out = subprocess.run([exe, "verify", dns.server, t.name], capture_output=True,
                             text=True, timeout=60).stdout
    return out.split("\t")


def test_arc_sealed_copies_verify(ctx):
    d = ctx["d"]
    d.cli("policy", "set", "mailbox", "bob@example.test", "tag_score", "-50")
    try:
        send(ctx, ["alice@example.test", "bob@example.test"], "verdict-arc")
        plain = got(ctx, "verdict-arc", "alice@example.test")
        tagged = got(ctx, "verdict-arc", "bob@example.test")
    finally:
        d.cli("policy", "unset", "mailbox", "bob@example.test", "tag_score")
    for raw in (plain, tagged):
        seal = first_seal(raw)
        assert seal["i"] == "1" and seal["cv"] == "none" and seal["d"] == "seal.test", seal
        hdr = raw.split(b"\r\n\r\n")[0]
        assert b"ARC-Authentication-Results: i=1; mx.test.example;" in hdr, hdr
        assert b"arc=none" in hdr
        res = arc_verify(ctx, raw)
        assert res[0] == "pass" and res[1] == "1", res
    assert b"Subject: [SPAM] verdict-arc" in tagged
    # changed after the seal: the chain fails
    res = arc_verify(ctx, plain.replace(b"hello", b"HELLO"))
    assert res[0] == "fail", res


def test_arc_chain_of_an_earlier_hop_is_verified(ctx):
    # our own sealed output, sent through us again: a chain of one
    send(ctx, ["alice@example.test"], "verdict-arc-hop1")
    first = got(ctx, "verdict-arc-hop1")
    with smtplib.SMTP("127.0.0.1", ctx["d"].smtp_port, timeout=30) as s:
        s.sendmail("someone@outside.test", ["bob@example.test"], first)
    again = got(ctx, "verdict-arc-hop1", "bob@example.test")
    hdr = again.split(b"\r\n\r\n")[0]
    assert b"arc=pass" in hdr, hdr
    assert b"ARC_PASS" in hdr.replace(b"\r\n\t", b" ")
    seal = first_seal(again)
    assert seal["i"] == "2" and seal["cv"] == "pass", seal
    res = arc_verify(ctx, again)
    assert res[0] == "pass" and res[1] == "2", res
    # changed after the first seal: the chain fails, and our seal says so
    with smtplib.SMTP("127.0.0.1", ctx["d"].smtp_port, timeout=30) as s:
        s.sendmail("someone@outside.test", ["bob@example.test"],
                   first.replace(b"verdict-arc-hop1", b"verdict-arc-hop2"))
    second = got(ctx, "verdict-arc-hop2", "bob@example.test")
    hdr = second.split(b"\r\n\r\n")[0]
    assert b"arc=fail" in hdr, hdr
    assert b"ARC_FAIL" in hdr.replace(b"\r\n\t", b" ")
    seal = first_seal(second)
    assert seal["i"] == "2" and seal["cv"] == "fail", seal
