# SPDX-License-Identifier: MIT
"""Per-recipient policy end to end over SMTP (issue 7): deliver, tag,
quarantine and reject, the inheritance global > account > domain > mailbox,
allow and block lists, the quarantine's CLI (list, show, release, delete,
expire) and the removal of verdict headers a sender forged in our name.

Scores are steered through the thresholds rather than through content: a
threshold of -50 is below any score a plain message gets, so the action is
certain whatever the rules of the day say about the text; the harness turns
the global thresholds off, so a recipient without its own setting gets
the message delivered."""
import base64
import json
import os
import subprocess
import smtplib
import sqlite3
import time

from harness import Capture, Daemon, setup_domain, wait_for

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")


def setup_module():
    cap = Capture().start()
    d = Daemon(scan__threads="2").start()
    setup_domain(d, cap.port, mailboxes=("alice", "bob", "carol", "dave"))
    d.cli("domain", "add", "other.test", "--account", "acme2", "--route",
          "127.0.0.1:%d" % cap.port)
    d.cli("mailbox", "add", "erin@other.test")
    return {"d": d, "cap": cap}


def teardown_module(ctx):
    ctx["d"].cleanup()
    ctx["cap"].stop()


def send(ctx, rcpts, subject, extra=b"", sender="s@outside.test", body=b"hello\r\n"):
    msg = b"Subject: " + subject.encode() + b"\r\nFrom: " + sender.encode() + b"\r\n" + extra + \
        b"\r\n" + body
    s = smtplib.SMTP("127.0.0.1", ctx["d"].smtp_port, timeout=30)
    try:
        refused = s.sendmail(sender, rcpts, msg)
    finally:
        s.quit()
    return msg, refused


def delivered(ctx, needle, rcpt=None, n=1):
    def find():
        got = [m for m in ctx["cap"].messages if needle in m["data"] and
               (rcpt is None or rcpt in m["rcpts"])]
        return got if len(got) >= n else None
    return wait_for(find, what=needle.decode(errors="replace"))


def header(data):
    return data.split(b"\r\n\r\n")[0]


def quarantine(ctx, *args):
    out = ctx["d"].cli("quarantine", "list", "--json", *args).stdout
    return json.loads(out)


def policy(ctx, *args):
    ctx["d"].cli("policy", *args)


def test_deliver_carries_spam_headers(ctx):
    msg, _ = send(ctx, ["alice@example.test"], "pol-deliver")
    data = delivered(ctx, b"pol-deliver")[0]["data"]
    hdr = header(data)
    assert hdr.startswith(b"Received: from "), hdr[:200]
    assert b"\r\nX-Spam-Score: " in hdr and b"\r\nX-Spam-Status: No, score=" in hdr, hdr
    assert b"X-Spam-Flag" not in hdr
    assert b"[SPAM]" not in hdr
    assert data.endswith(msg)


def test_tag_one_recipient_and_not_the_other(ctx):
    policy(ctx, "set", "mailbox", "bob@example.test", "tag_score", "-50")
    policy(ctx, "set", "mailbox", "bob@example.test", "subject_tag", "**SPAM**")
    try:
        msg, _ = send(ctx, ["alice@example.test", "bob@example.test"], "pol-tag")
        bob = delivered(ctx, b"pol-tag", rcpt="bob@example.test")[0]
        alice = delivered(ctx, b"pol-tag", rcpt="alice@example.test")[0]
        assert bob["rcpts"] == ["bob@example.test"], bob["rcpts"]
        assert alice["rcpts"] == ["alice@example.test"], alice["rcpts"]
        bh, ah = header(bob["data"]), header(alice["data"])
        assert b"\r\nSubject: **SPAM** pol-tag\r\n" in bh, bh
        assert b"X-Spam-Flag: YES" in bh and b"X-Spam-Status: Yes" in bh, bh
        assert b"\r\nSubject: pol-tag\r\n" in ah and b"X-Spam-Status: No" in ah, ah
        # the two copies are two queue entries, both in the message log
        log = ctx["d"].log()
        line = [l for l in log.splitlines() if "event=accepted" in l and "tagged=1" in l]
        assert line, log[-2000:]
        assert ctx["d"].metric("mxguard_policy_tagged_total") >= 1
    finally:
        policy(ctx, "unset", "mailbox", "bob@example.test", "tag_score")
        policy(ctx, "unset", "mailbox", "bob@example.test", "subject_tag")


def test_quarantine_list_show_release(ctx):
    policy(ctx, "set", "mailbox", "carol@example.test", "quarantine_score", "-50")
    try:
        msg, _ = send(ctx, ["carol@example.test"], "pol-quarantine-1")
        entries = wait_for(lambda: [e for e in quarantine(ctx)
                                    if e["subject"] == "pol-quarantine-1"], what="held")
        e = entries[0]
        assert e["rcpt"] == "carol@example.test" and e["state"] == "held", e
        assert e["sender"] == "s@outside.test"
        assert "quarantine_score" in e["reason"], e
        time.sleep(0.5)
        assert not [m for m in ctx["cap"].messages if b"pol-quarantine-1" in m["data"]], \
            "a quarantined message is not delivered"
        shown = json.loads(ctx["d"].cli("quarantine", "show", str(e["id"]), "--json").stdout)
        assert shown["verdict"].startswith("score "), shown
        held = subprocess.run([os.path.join(os.environ["MXG_BUILD"], "mxguard"), "-c",
                               ctx["d"].conf, "quarantine", "show", str(e["id"]), "--text"],
                              capture_output=True, check=True).stdout
        assert held.startswith(b"Received: from ") and held.endswith(msg), held[:300]
        assert b"X-Spam-" not in header(held)
        # scoped listing: another account sees nothing of it
        assert not quarantine(ctx, "--account", "acme2")
        assert [x for x in quarantine(ctx, "--domain", "example.test") if x["id"] == e["id"]]
        out = ctx["d"].cli("quarantine", "release", str(e["id"])).stdout
        assert out.startswith("released as "), out
        data = delivered(ctx, b"pol-quarantine-1", rcpt="carol@example.test")[0]["data"]
        assert data == held, "release delivers the held copy unmodified"
        again = ctx["d"].cli("quarantine", "release", str(e["id"]), check=False)
        assert again.returncode == 1 and "already released" in again.stderr, again.stderr
        e2 = [x for x in quarantine(ctx) if x["id"] == e["id"]][0]
        assert e2["state"] == "released"
        assert not [x for x in quarantine(ctx, "--held") if x["id"] == e["id"]]
        log = ctx["d"].cli("log", "--rcpt", "carol@example.test", "--json").stdout
        events = [r["event"] for r in json.loads(log)]
        assert "quarantined" in events and "released" in events, events
    finally:
        policy(ctx, "unset", "mailbox", "carol@example.test", "quarantine_score")


def test_quarantine_delete_and_expire(ctx):
    policy(ctx, "set", "mailbox", "carol@example.test", "quarantine_score", "-50")
    try:
        send(ctx, ["carol@example.test"], "pol-quarantine-2")
        send(ctx, ["carol@example.test"], "pol-quarantine-3")
        es = wait_for(lambda: (lambda l: l if len(l) == 2 else None)(
            [e for e in quarantine(ctx) if e["subject"] in ("pol-quarantine-2",
                                                            "pol-quarantine-3")]),
            what="two held")
        for e in es:
            # at least 14 days, whatever is configured (default 30)
            t0 = time.strptime(e["received"], "%Y-%m-%dT%H:%M:%SZ")
            t1 = time.strptime(e["expires"], "%Y-%m-%dT%H:%M:%SZ")
            days = (time.mktime(t1) - time.mktime(t0)) / 86400
            assert 29.9 < days < 30.1, days
        d2 = [e for e in es if e["subject"] == "pol-quarantine-2"][0]
        d3 = [e for e in es if e["subject"] == "pol-quarantine-3"][0]
        ctx["d"].cli("quarantine", "delete", str(d2["id"]))
        assert not [e for e in quarantine(ctx) if e["id"] == d2["id"]]
        # the retention of the other one ends (time travel in the store)
        db = sqlite3.connect(ctx["d"].db)
        db.execute("UPDATE quarantine SET expires_at = 1 WHERE id = ?", (d3["id"],))
        db.commit()
        db.close()
        out = ctx["d"].cli("quarantine", "expire").stdout
        assert out.strip() == "1 expired", out
        assert not [e for e in quarantine(ctx) if e["id"] == d3["id"]]
        db = sqlite3.connect(ctx["d"].db)
        copies = db.execute("SELECT COUNT(*) FROM quarantine_copies c WHERE NOT EXISTS"
                            " (SELECT 1 FROM quarantine q WHERE q.copy_id = c.id)").fetchone()
        db.close()
        assert copies[0] == 0, "no copy outlives its entries"
    finally:
        policy(ctx, "unset", "mailbox", "carol@example.test", "quarantine_score")


def test_reject_when_every_recipient_rejects(ctx):
    policy(ctx, "set", "mailbox", "dave@example.test", "reject_score", "-50")
    try:
        s = smtplib.SMTP("127.0.0.1", ctx["d"].smtp_port, timeout=30)
        try:
            s.sendmail("s@outside.test", ["dave@example.test"],
                       b"Subject: pol-reject\r\n\r\nx\r\n")
            raise AssertionError("accepted")
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 550 and b"5.7.1" in e.smtp_error, e
            assert b"spam" in e.smtp_error.lower()
        finally:
            s.quit()
        # with another recipient who accepts, dave's copy is held instead
        send(ctx, ["dave@example.test", "alice@example.test"], "pol-reject-mixed")
        delivered(ctx, b"pol-reject-mixed", rcpt="alice@example.test")
        held = wait_for(lambda: [e for e in quarantine(ctx)
                                 if e["subject"] == "pol-reject-mixed"], what="held")
        assert held[0]["rcpt"] == "dave@example.test"
        assert "other recipients accept" in held[0]["reason"], held[0]
        assert ctx["d"].metric("mxguard_policy_rejected_total") >= 1
    finally:
        policy(ctx, "unset", "mailbox", "dave@example.test", "reject_score")


def test_inheritance_global_domain_mailbox(ctx):
    policy(ctx, "set", "global", "quarantine_score", "-50")
    policy(ctx, "set", "domain", "example.test", "quarantine_score", "off")
    policy(ctx, "set", "mailbox", "bob@example.test", "quarantine_score", "-40")
    try:
        show = json.loads(ctx["d"].cli("policy", "show", "mailbox", "alice@example.test",
                                       "--json").stdout)
        q = [x for x in show if x["key"] == "quarantine_score"][0]
        assert q == {"key": "quarantine_score", "value": "off", "from": "domain"}, q
        send(ctx, ["alice@example.test", "bob@example.test", "erin@other.test"], "pol-inherit")
        delivered(ctx, b"pol-inherit", rcpt="alice@example.test")   # domain: off
        held = wait_for(lambda: (lambda l: l if len(l) == 2 else None)(
            [e for e in quarantine(ctx) if e["subject"] == "pol-inherit"]), what="held")
        assert sorted(e["rcpt"] for e in held) == ["bob@example.test", "erin@other.test"]
        # erin's account sees its own entry only
        mine = quarantine(ctx, "--account", "acme2")
        assert [e["rcpt"] for e in mine] == ["erin@other.test"], mine
    finally:
        policy(ctx, "set", "global", "quarantine_score", "off")
        policy(ctx, "unset", "domain", "example.test", "quarantine_score")
        policy(ctx, "unset", "mailbox", "bob@example.test", "quarantine_score")


def test_block_and_allow_lists(ctx):
    policy(ctx, "block", "domain", "example.test", "@bad.test")
    policy(ctx, "allow", "mailbox", "bob@example.test", "@bad.test")
    try:
        s = smtplib.SMTP("127.0.0.1", ctx["d"].smtp_port, timeout=30)
        s.ehlo("client.test")
        s.mail("x@bad.test")
        code, text = s.rcpt("alice@example.test")
        assert code == 550 and b"5.7.1" in text and b"policy" in text, (code, text)
        code, text = s.rcpt("bob@example.test")     # the mailbox's allow wins
        assert code == 250, (code, text)
        s.quit()
        assert ctx["d"].metric("mxguard_policy_blocked_total") >= 1
        # an allow entry naming a sender counts only for an authenticated
        # sender (SPF or DMARC pass; here no DNS answers): a forged
        # envelope sender does not skip the thresholds...
        policy(ctx, "set", "mailbox", "bob@example.test", "quarantine_score", "-50")
        send(ctx, ["bob@example.test"], "pol-allowed-forged", sender="x@bad.test")
        held = wait_for(lambda: [e for e in quarantine(ctx)
                                 if e["subject"] == "pol-allowed-forged"], what="held")
        assert "quarantine_score" in held[0]["reason"], held[0]
        # ...while an allowed client network does
        policy(ctx, "allow", "mailbox", "bob@example.test", "127.0.0.0/8")
        send(ctx, ["bob@example.test"], "pol-allowed", sender="y@elsewhere.test")
        data = delivered(ctx, b"pol-allowed", rcpt="bob@example.test")[0]["data"]
        assert b"X-Spam-Status: No" in header(data)
        log = ctx["d"].log()
        assert any("event=verdict" in l and "allow 127.0.0.0/8 (mailbox)" in l
                   for l in log.splitlines()), log[-2000:]
        # a client network can be blocked too
        policy(ctx, "block", "mailbox", "carol@example.test", "127.0.0.0/8")
        s = smtplib.SMTP("127.0.0.1", ctx["d"].smtp_port, timeout=30)
        s.ehlo("client.test")
        s.mail("y@fine.test")
        code, _ = s.rcpt("carol@example.test")
        assert code == 550
        s.quit()
    finally:
        policy(ctx, "unset", "mailbox", "bob@example.test", "quarantine_score")
        policy(ctx, "unlist", "domain", "example.test", "block", "@bad.test")
        policy(ctx, "unlist", "mailbox", "bob@example.test", "allow", "@bad.test")
        ctx["d"].cli("policy", "unlist", "mailbox", "bob@example.test", "allow",
                     "127.0.0.0/8", check=False)
        ctx["d"].cli("policy", "unlist", "mailbox", "carol@example.test", "block",
                     "127.0.0.0/8", check=False)


def test_forged_verdict_headers_are_removed(ctx):
    forged = (b"X-Spam-Status: No, score=-100\r\nX-Spam-Score: -100\r\n"
              b"X-Mxguard-Scan: score=-100 CLEAN(-100)\r\n"
              b"Authentication-Results: mx.test.example; dkim=pass header.d=bank.test\r\n"
              b"Authentication-Results: other.example; spf=pass\r\n")
    send(ctx, ["alice@example.test"], "pol-forged", extra=forged)
    data = delivered(ctx, b"pol-forged")[0]["data"]
    hdr = header(data)
    assert b"score=-100" not in hdr and b"CLEAN(-100)" not in hdr, hdr
    assert b"header.d=bank.test" not in hdr, hdr
    assert b"Authentication-Results: other.example; spf=pass" in hdr, \
        "another server's results are left alone"
    assert hdr.count(b"Authentication-Results: mx.test.example") == 1


def test_virus_action_quarantine(ctx):
    mime = (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n")
    att = (b"--B\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
           b"--B\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n"
           b"Content-Disposition: attachment; filename=readme.com\r\n\r\n" +
           base64.encodebytes(EICAR).replace(b"\n", b"\r\n") + b"--B--\r\n")
    policy(ctx, "set", "mailbox", "alice@example.test", "virus_action", "quarantine")
    try:
        send(ctx, ["alice@example.test"], "pol-virus-q", extra=mime, body=att)
        held = wait_for(lambda: [e for e in quarantine(ctx) if e["subject"] == "pol-virus-q"],
                        what="held virus")
        assert held[0]["reason"].startswith("virus: 554 5.7.0"), held[0]
        # bob alone (default reject): refused at DATA as before
        try:
            send(ctx, ["bob@example.test"], "pol-virus-r", extra=mime, body=att)
            raise AssertionError("accepted")
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 554 and b"5.7.0" in e.smtp_error, e
    finally:
        policy(ctx, "unset", "mailbox", "alice@example.test", "virus_action")


def pe_attachment():
    """A minimal PE32 program (libmagic: 'PE32 executable'), named .pdf."""
    import struct
    mz = bytearray(b"MZ" + b"\x90\x00" * 29)[:0x3c] + struct.pack("<I", 0x80)
    mz += b"\0" * (0x80 - len(mz))
    pe = b"PE\0\0" + struct.pack("<HHIIIHH", 0x14c, 1, 0, 0, 0, 0xe0, 0x102)
    data = bytes(mz) + pe + struct.pack("<H", 0x10b) + b"\0" * (0xe0 - 2) + b"\0" * 512
    mime = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n"
    body = (b"--B\r\nContent-Type: text/plain\r\n\r\nthe report\r\n"
            b"--B\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=report.pdf\r\n\r\n" +
            base64.encodebytes(data).replace(b"\n", b"\r\n") + b"--B--\r\n")
    return mime, body


def test_file_policy_per_domain(ctx):
    mime, body = pe_attachment()
    # the node's default (av.block_executables = yes): refused
    try:
        send(ctx, ["erin@other.test"], "pol-exe-node", extra=mime, body=body)
        raise AssertionError("accepted")
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 554 and b"5.7.0" in e.smtp_error, e
        assert b"Executable attachment refused" in e.smtp_error, e
    # example.test holds them instead
    policy(ctx, "set", "domain", "example.test", "file_executables", "quarantine")
    try:
        send(ctx, ["alice@example.test"], "pol-exe-held", extra=mime, body=body)
        held = wait_for(lambda: [e for e in quarantine(ctx) if e["subject"] == "pol-exe-held"],
                        what="held program")
        assert held[0]["reason"].startswith("file: 554 5.7.0 Executable"), held[0]
        # and one mailbox takes them, scored
        policy(ctx, "set", "mailbox", "bob@example.test", "file_executables", "score")
        send(ctx, ["bob@example.test"], "pol-exe-scored", extra=mime, body=body)
        data = delivered(ctx, b"pol-exe-scored", rcpt="bob@example.test")[0]["data"]
        assert b"FILETYPE_EXECUTABLE" in header(data).replace(b"\r\n\t", b" ")
    finally:
        policy(ctx, "unset", "domain", "example.test", "file_executables")
        ctx["d"].cli("policy", "unset", "mailbox", "bob@example.test", "file_executables",
                     check=False)
    p = ctx["d"].cli("policy", "set", "global", "file_macros", "maybe", check=False)
    assert p.returncode == 1 and "node reject quarantine score" in p.stderr, p.stderr


def test_bad_policy_input_is_refused_with_a_reason(ctx):
    d = ctx["d"]
    p = d.cli("policy", "set", "mailbox", "alice@example.test", "quarantine_days", "7",
              check=False)
    assert p.returncode == 1 and "14" in p.stderr, p.stderr
    p = d.cli("policy", "set", "domain", "nosuch.test", "tag_score", "3", check=False)
    assert p.returncode == 1 and "nosuch.test" in p.stderr, p.stderr
    p = d.cli("policy", "set", "global", "tag_scor", "3", check=False)
    assert p.returncode == 1 and "unknown setting" in p.stderr, p.stderr
    p = d.cli("policy", "set", "global", "subject_tag", "[späm]", check=False)
    assert p.returncode == 1 and "ASCII" in p.stderr, p.stderr
    p = d.cli("policy", "block", "global", "not a pattern", check=False)
    assert p.returncode == 1, p.stderr
    p = d.cli("quarantine", "show", "999999", check=False)
    assert p.returncode == 1 and "999999" in p.stderr, p.stderr
