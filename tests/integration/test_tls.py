# SPDX-License-Identifier: MIT
"""Inbound STARTTLS (RFC 3207) with real clients: swaks, openssl s_client,
Python's ssl module."""
import os
import smtplib
import socket
import ssl
import subprocess

from harness import Capture, Client, Daemon, make_tmpdir, setup_domain, wait_for


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=mx.test.example", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)  # root only: the master reads it before dropping privileges
    return cert, key


def setup_module():
    tmp = make_tmpdir("tls")
    cert, key = make_cert(tmp)
    cap = Capture().start()
    d = Daemon(tmp=tmp, smtp__tls_cert=cert, smtp__tls_key=key).start()
    setup_domain(d, cap.port)
    return {"d": d, "cap": cap}


def teardown_module(ctx):
    ctx["d"].cleanup()
    ctx["cap"].stop()


def test_starttls_advertised_and_used_by_swaks(ctx):
    d = ctx["d"]
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % d.smtp_port, "--tls",
                        "--from", "t@outside.test", "--to", "alice@example.test",
                        "--header", "Subject: over-tls"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "STARTTLS" in p.stdout and "queued as" in p.stdout, p.stdout
    m = wait_for(lambda: [x for x in ctx["cap"].messages if b"over-tls" in x["data"]],
                 what="delivery")[0]
    assert b"with ESMTPS id" in m["data"], m["data"][:400]
    assert b"(using TLSv1." in m["data"], m["data"][:400]
    assert "event=tls" in d.log()
    out = d.cli("log", "--rcpt", "alice@example.test").stdout
    assert "tls=TLSv1." in out, out  # the message log keeps the session's TLS too


def test_openssl_s_client_starttls(ctx):
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % ctx["d"].smtp_port,
                        "-starttls", "smtp", "-quiet"], input="EHLO client.test\r\nQUIT\r\n",
                       capture_output=True, text=True, timeout=30)
    assert "250-mx.test.example" in p.stdout, p.stdout + p.stderr
    # after TLS, STARTTLS is no longer offered
    assert "STARTTLS" not in p.stdout, p.stdout


def test_plaintext_injected_after_starttls_is_discarded(ctx):
    s = socket.create_connection(("127.0.0.1", ctx["d"].smtp_port), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220")
    s.sendall(b"EHLO x\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    # STARTTLS and a command in the same packet: the command must not run
    s.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
    assert f.readline().startswith(b"220 2.0.0")
    tctx = ssl.create_default_context()
    tctx.check_hostname = False
    tctx.verify_mode = ssl.CERT_NONE
    t = tctx.wrap_socket(s, server_hostname="mx.test.example")
    tf = t.makefile("rb")
    t.sendall(b"EHLO x\r\n")
    first = tf.readline()
    assert first.startswith(b"250-mx.test.example"), first  # not a reply to MAIL
    while not tf.readline().startswith(b"250 "):
        pass
    # and the session is fresh: MAIL without a new EHLO would be refused, RCPT needs MAIL
    t.sendall(b"RCPT TO:<alice@example.test>\r\n")
    assert tf.readline().startswith(b"503"), "the injected MAIL was executed"
    t.close()


def test_starttls_twice_and_in_transaction(ctx):
    c = Client(ctx["d"].smtp_port)
    c.reply()
    c.cmd("EHLO x")
    assert c.cmd("MAIL FROM:<a@b.test>")[0] == 250
    assert c.cmd("STARTTLS")[0] == 503
    c.cmd("QUIT")


def test_bad_key_stops_startup():
    tmp = make_tmpdir("badtls")
    cert, key = make_cert(tmp)
    with open(key, "w") as f:
        f.write("not a key\n")
    d = Daemon(tmp=tmp, smtp__tls_cert=cert, smtp__tls_key=key)
    d.start(wait=False)
    assert d.proc.wait(timeout=20) != 0
    assert "cannot load private key" in d.log(), d.log()
    d.cleanup()


def test_domain_requiring_tls_refuses_cleartext(ctx):
    d = ctx["d"]
    d.cli("domain", "add", "secure.test", "--route", "127.0.0.1:%d" % ctx["cap"].port)
    d.cli("mailbox", "add", "boss@secure.test")
    d.cli("domain", "require-tls", "secure.test", "yes")
    assert "required" in d.cli("domain", "list").stdout
    # a client whose STARTTLS was stripped (or that never tries) is refused
    c = Client(d.smtp_port)
    c.reply()
    c.cmd("EHLO x")
    assert c.cmd("MAIL FROM:<a@outside.test>")[0] == 250
    code, text = c.cmd("RCPT TO:<boss@secure.test>")
    assert code == 530 and "5.7.0" in text, text
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250  # other domains unaffected
    c.cmd("QUIT")
    # with TLS it is accepted
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % d.smtp_port, "--tls",
                        "--from", "a@outside.test", "--to", "boss@secure.test",
                        "--header", "Subject: secure-ok"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and "queued as" in p.stdout, p.stdout
    d.cli("domain", "require-tls", "secure.test", "no")
    c = Client(d.smtp_port)
    c.reply()
    c.cmd("EHLO x")
    c.cmd("MAIL FROM:<a@outside.test>")
    assert c.cmd("RCPT TO:<boss@secure.test>")[0] == 250
    c.cmd("QUIT")
