# SPDX-License-Identifier: MIT
"""DKIM signing keys per hosted domain: `mxguard dkim keygen` stores a key
and prints the record to publish, `dkim activate` makes it the domain's
key, and mail that mxguard delivers from that domain carries a
DKIM-Signature that our own verifier (tests/auth/dkim_eval) accepts
against the printed record served by a real nsd, and rejects once the
message is altered. Only mail that leaves for a customer is signed: from
a trusted relay (limits.allow_networks, the customer's own servers) or
made by mxguard itself; a message that comes in from the Internet in the
name of a hosted domain is never signed by us. Rotation: a second selector activated retires the
first, which stays listed until removed."""
import json
import os
import re
import signal
import smtplib
import subprocess
import tempfile

from authdns import AuthDNS
from harness import BUILD, Capture, Daemon, setup_domain, wait_for


def setup_module():
    cap = Capture().start()
    # 127.0.0.1 is the customer's relay; 127.0.0.2 is "the Internet"
    d = Daemon(limits__allow_networks="127.0.0.1/32").start()
    setup_domain(d, cap.port)                  # example.test -> the capture
    d.cli("domain", "add", "signed.test")      # the senders' domain
    return {"d": d, "cap": cap}


def teardown_module(ctx):
    ctx["d"].cleanup()
    ctx["cap"].stop()


def keygen(ctx, *args):
    out = ctx["d"].cli("dkim", "keygen", "signed.test", *args).stdout
    m = re.search(r'^(\S+)\. IN TXT "(.*)"$', out, re.M)
    assert m, out
    return m.group(1), m.group(2)


def listing(ctx):
    out = ctx["d"].cli("dkim", "list", "signed.test", "--json").stdout
    return {k["selector"]: k for k in json.loads(out)}


def send(ctx, subject, source="127.0.0.1"):
    msg = ("From: Alice <alice@signed.test>\r\nTo: bob@example.test\r\n"
           "Subject: %s\r\nMessage-ID: <%s@signed.test>\r\n\r\nHello Bob,\r\n"
           "this should be signed.\r\n" % (subject, subject))
    with smtplib.SMTP("127.0.0.1", ctx["d"].smtp_port, timeout=30,
                      source_address=(source, 0)) as s:
        s.sendmail("alice@signed.test", ["bob@example.test"], msg.encode())
    return wait_for(lambda: [m for m in ctx["cap"].messages
                             if subject.encode() in m["data"]], what=subject)[0]["data"]


def verify(raw, records):
    exe = os.path.join(BUILD, "tests", "unit", "dkim_eval")
    with tempfile.NamedTemporaryFile() as t, AuthDNS(records) as dns:
        t.write(raw)
        t.flush()
        out = subprocess.run([exe, "verify", dns.server, "0", t.name], stdout=subprocess.PIPE,
                             check=True, timeout=60).stdout.decode()
    return [l.split("\t") for l in out.rstrip("\n").split("\n")]


def test_keygen_prints_record_and_stores_pending(ctx):
    name, txt = keygen(ctx, "--selector", "s1")
    assert name == "s1._domainkey.signed.test"
    assert txt.startswith("v=DKIM1; k=rsa; p=") and len(txt) > 300
    keys = listing(ctx)
    assert keys["s1"]["state"] == "pending"
    assert keys["s1"]["record"] == txt
    ctx["s1"] = (name, txt)
    # the default selector is mxg + yyyymm
    out = ctx["d"].cli("dkim", "keygen", "signed.test", "--type", "ed25519").stdout
    assert re.search(r"selector mxg\d{6} ", out), out
    # not hosted: refused
    p = ctx["d"].cli("dkim", "keygen", "nothosted.test", check=False)
    assert p.returncode == 1 and "not a hosted domain" in p.stderr


def test_unsigned_before_activation(ctx):
    raw = send(ctx, "before-activation")
    assert b"DKIM-Signature:" not in raw


def test_signed_after_activation_and_verifies(ctx):
    name, txt = ctx["s1"]
    p = ctx["d"].cli("dkim", "activate", "signed.test", "s1")
    assert "not checked" in p.stderr   # we say we did not look at DNS
    # the delivery worker caches "no key" for a while: restart it by
    # reloading (a new generation starts with an empty cache)
    ctx["d"].proc.send_signal(signal.SIGHUP)
    raw = wait_for(lambda: _signed(ctx, "after-activation"), timeout=60, interval=1,
                   what="a signed message")
    assert raw.startswith(b"DKIM-Signature:"), raw[:200]
    sig = raw.split(b"\r\n\r\n")[0].decode()
    assert "d=signed.test" in sig and "s=s1" in sig
    res = verify(raw, {name: [("TXT", txt)]})
    assert res[0][:3] == ["pass", "signed.test", "s1"], res
    # altered in transit: the same verifier says fail
    bad = raw.replace(b"this should be signed.", b"this should be SIGNED.")
    res = verify(bad, {name: [("TXT", txt)]})
    assert res[0][0] == "fail", res
    # and a record that is not published: not a pass
    res = verify(raw, {"other._domainkey.signed.test": [("TXT", txt)]})
    assert res[0][0] != "pass", res


def test_inbound_mail_from_a_hosted_domain_is_not_signed(ctx):
    # (runs after activation: the key is active)
    raw = send(ctx, "inbound-forgery", source="127.0.0.2")
    assert b"DKIM-Signature:" not in raw.split(b"\r\n\r\n")[0], raw[:300]
    raw = wait_for(lambda: _signed(ctx, "from-relay"), timeout=30, interval=1,
                   what="a signed message from the relay")
    assert raw.startswith(b"DKIM-Signature:")


_sent = {"n": 0}


def _signed(ctx, tag):
    _sent["n"] += 1
    try:
        raw = send(ctx, "%s-%d" % (tag, _sent["n"]))
    except (smtplib.SMTPException, OSError):
        return None  # the old generation is draining after SIGHUP
    return raw if raw.startswith(b"DKIM-Signature:") else None


def test_rotation(ctx):
    name2, txt2 = keygen(ctx, "--selector", "s2", "--type", "ed25519")
    ctx["d"].cli("dkim", "activate", "signed.test", "s2")
    keys = listing(ctx)
    assert keys["s2"]["state"] == "active"
    assert keys["s1"]["state"] == "retired"
    ctx["d"].proc.send_signal(signal.SIGHUP)

    def with_s2():
        raw = _signed(ctx, "rotated")
        return raw if raw and b"s=s2" in raw.split(b"\r\n\r\n")[0] else None
    raw = wait_for(with_s2, timeout=60, interval=1, what="a message signed with s2")
    res = verify(raw, {name2: [("TXT", txt2)]})
    assert res[0][:3] == ["pass", "signed.test", "s2"], res
    ctx["d"].cli("dkim", "remove", "signed.test", "s1")
    assert "s1" not in listing(ctx)
