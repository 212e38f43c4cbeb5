# SPDX-License-Identifier: MIT
"""SPF and DKIM verified in the SMTP session against a real nsd: the
results land in an Authentication-Results header (RFC 8601) and, scored,
in X-Mxguard-Scan. The DKIM signature is made by the test itself
(relaxed/relaxed rsa-sha256 with openssl) over a key it publishes."""
import base64
import hashlib
import os
import re
import socket
import subprocess

import dnsserver
from harness import Capture, Daemon, make_tmpdir, setup_domain, wait_for

ZONE = "auth.mxg.test"


def relaxed_header(name, value):
    value = re.sub(r"\r\n(?=[ \t])", "", value)
    value = re.sub(r"[ \t]+", " ", value).strip()
    return "%s:%s\r\n" % (name.lower().strip(), value)


def relaxed_body(body):
    lines = body.split("\r\n")
    out = [re.sub(r"[ \t]+", " ", l).rstrip(" \t") for l in lines]
    text = "\r\n".join(out)
    text = re.sub(r"(\r\n)*$", "", text)
    return (text + "\r\n") if text else ""


def dkim_sign(key, headers, body, d=ZONE, s="sel"):
    bh = base64.b64encode(hashlib.sha256(relaxed_body(body).encode()).digest()).decode()
    names = [h[0] for h in headers]
    sig = "v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s; h=%s; bh=%s; b=" % (
        d, s, ":".join(names), bh)
    data = "".join(relaxed_header(n, v) for n, v in headers)
    data += relaxed_header("DKIM-Signature", sig).rstrip("\r\n")
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data.encode(),
                       capture_output=True, check=True)
    return "DKIM-Signature: " + sig + base64.b64encode(p.stdout).decode()


def setup_module():
    tmp = make_tmpdir("authdns")
    key = os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    p64 = base64.b64encode(pub).decode()
    chunks = " ".join('"%s"' % p64[i:i + 200] for i in range(0, len(p64), 200))
    zdir = os.path.join(tmp, "zones")
    os.makedirs(zdir)
    with open(os.path.join(zdir, ZONE + ".zone"), "w") as f:
        f.write("$ORIGIN %s.\n$TTL 300\n" % ZONE)
        f.write("@ IN SOA ns.mxg.test. h.mxg.test. 1 3600 600 86400 60\n@ IN NS ns.mxg.test.\n")
        f.write('@ IN TXT "v=spf1 ip4:127.0.0.2 -all"\n')
        f.write('sel._domainkey IN TXT "v=DKIM1; k=rsa; p=" %s\n' % chunks)
        f.write('_dmarc IN TXT "v=DMARC1; p=reject"\n')
        f.write('_dmarc.lenient IN TXT "v=DMARC1; p=none"\n')
    ns = dnsserver.NSD(zones_dir=zdir).start()
    cap = Capture().start()
    d = Daemon(dns__servers="127.0.0.1:%d" % ns.port).start()
    setup_domain(d, cap.port)
    return {"d": d, "ns": ns, "cap": cap, "key": key}


def teardown_module(ctx):
    ctx["d"].cleanup()
    ctx["cap"].stop()
    ctx["ns"].stop()


def send_from(ctx, src, sender, msg, expect=250):
    s = socket.create_connection(("127.0.0.1", ctx["d"].smtp_port), timeout=30,
                                 source_address=(src, 0))
    f = s.makefile("rb")

    def reply():
        while True:
            l = f.readline().decode()
            if len(l) < 4 or l[3] != "-":
                return int(l[:3])
    assert reply() == 220
    s.sendall(b"EHLO client.auth.mxg.test\r\n")
    reply()
    s.sendall(("MAIL FROM:<%s>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" % sender).encode())
    assert [reply() for _ in range(3)] == [250, 250, 354]
    s.sendall(msg.encode() + b".\r\n")
    code = reply()
    assert code == expect, code
    s.sendall(b"QUIT\r\n")
    s.close()


def headers_of(ctx, needle):
    data = wait_for(lambda: [m for m in ctx["cap"].messages if needle.encode() in m["data"]],
                    what=needle)[0]["data"]
    return data.split(b"\r\n\r\n")[0].replace(b"\r\n\t", b" ").decode()


def test_spf_pass_and_dkim_pass(ctx):
    hdrs = [("From", "Boss <boss@%s>" % ZONE), ("To", "alice@example.test"),
            ("Subject", "auth-good")]
    body = "Hello,  world \r\n\r\n"
    sig = dkim_sign(ctx["key"], hdrs, body)
    msg = sig + "\r\n" + "".join("%s: %s\r\n" % h for h in hdrs) + "\r\n" + body
    send_from(ctx, "127.0.0.2", "boss@" + ZONE, msg)
    h = headers_of(ctx, "auth-good")
    assert "spf=pass smtp.mailfrom=%s" % ZONE in h, h
    assert "dkim=pass header.d=%s header.s=sel" % ZONE in h, h
    assert "SPF_PASS(-0.2)" in h and "DKIM_PASS(-0.2)" in h, h
    assert "dmarc=pass header.from=%s" % ZONE in h and "DMARC_PASS" in h, h


def test_spf_fail_and_dkim_body_altered(ctx):
    # the From domain publishes p=none: DMARC fails, the message is delivered
    hdrs = [("From", "boss@lenient.%s" % ZONE), ("Subject", "auth-bad")]
    sig = dkim_sign(ctx["key"], hdrs, "original body\r\n")
    msg = sig + "\r\n" + "".join("%s: %s\r\n" % h for h in hdrs) + "\r\ntampered body\r\n"
    send_from(ctx, "127.0.0.3", "boss@" + ZONE, msg)  # not in the SPF record
    h = headers_of(ctx, "auth-bad")
    assert "spf=fail smtp.mailfrom=%s" % ZONE in h, h
    assert "dkim=fail header.d=%s" % ZONE in h, h
    assert "SPF_FAIL(2.0)" in h and "DKIM_FAIL(1.0)" in h, h
    assert "dmarc=fail header.from=lenient.%s" % ZONE in h and "DMARC_FAIL" in h, h


def test_dmarc_reject_policy_refuses_in_session(ctx):
    msg = "From: ceo@%s\r\nSubject: auth-forged\r\n\r\npay this invoice\r\n" % ZONE
    send_from(ctx, "127.0.0.3", "ceo@" + ZONE, msg, expect=550)  # SPF fails, no DKIM
    assert "reason=dmarc" in ctx["d"].log()
    assert not any(b"auth-forged" in m["data"] for m in ctx["cap"].messages)


def test_unsigned_mail_from_unknown_domain(ctx):
    send_from(ctx, "127.0.0.2", "x@nowhere.mxg.test",
              "Subject: auth-none\r\n\r\nno signature\r\n")
    h = headers_of(ctx, "auth-none")
    assert "dkim=none" in h, h
    assert re.search(r"spf=(none|temperror) smtp.mailfrom=nowhere.mxg.test", h), h
