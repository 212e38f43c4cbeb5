# SPDX-License-Identifier: MIT
"""PROXY protocol behind a real HAProxy (send-proxy-v2), and v1 headers sent
by hand: the client address used for checks and logs is the original one,
and only trusted balancers may send a header.

Addresses: the client connects from 127.0.0.2, HAProxy connects to us from
127.0.0.3 (the trusted balancer); all of 127.0.0.0/8 is loopback."""
import os
import socket
import subprocess
import time

from harness import Capture, Daemon, free_port, make_tmpdir, setup_domain, wait_for


def connect_from(src, port):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def read_reply(f):
    lines = []
    while True:
        l = f.readline().decode()
        if not l:
            raise EOFError("closed after %r" % lines)
        lines.append(l)
        if len(l) < 4 or l[3] != "-":
            return int(l[:3]), "".join(lines)


def setup_module():
    cap = Capture().start()
    proxy_port = free_port()
    d = Daemon(smtp__proxy_listen="127.0.0.1:%d" % proxy_port,
               smtp__proxy_trusted="127.0.0.3/32").start()
    d.proxy_port = proxy_port
    setup_domain(d, cap.port)
    tmp = make_tmpdir("haproxy")
    front = free_port()
    cfg = os.path.join(tmp, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("""global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend smtp_in
    bind 127.0.0.1:%d
    default_backend mx
backend mx
    server mx1 127.0.0.1:%d send-proxy-v2 source 127.0.0.3
""" % (front, proxy_port))
    hp = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    wait_for(lambda: subprocess.run(["bash", "-c", "echo > /dev/tcp/127.0.0.1/%d" % front],
                                    capture_output=True).returncode == 0,
             timeout=10, what="haproxy")
    return {"d": d, "cap": cap, "hp": hp, "front": front}


def teardown_module(ctx):
    ctx["hp"].terminate()
    ctx["hp"].wait(timeout=10)
    ctx["d"].cleanup()
    ctx["cap"].stop()


def test_haproxy_v2_original_client_logged_and_used(ctx):
    d = ctx["d"]
    s = connect_from("127.0.0.2", ctx["front"])
    f = s.makefile("rb")
    assert read_reply(f)[0] == 220
    s.sendall(b"EHLO client.test\r\n")
    read_reply(f)
    s.sendall(b"MAIL FROM:<p@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    assert [read_reply(f)[0] for _ in range(3)] == [250, 250, 354]
    s.sendall(b"Subject: via-haproxy\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    assert read_reply(f)[0] == 250
    s.close()
    m = wait_for(lambda: [x for x in ctx["cap"].messages if b"via-haproxy" in x["data"]],
                 what="delivery")[0]
    assert b"([127.0.0.2])" in m["data"], m["data"][:300]  # the original client
    assert "event=proxy" in d.log() and "client=127.0.0.2" in d.log() and \
        "via=127.0.0.3" in d.log(), d.log()[-2000:]


def test_v1_header_from_trusted_balancer(ctx):
    s = connect_from("127.0.0.3", ctx["d"].proxy_port)
    s.sendall(b"PROXY TCP4 192.0.2.77 127.0.0.1 40000 25\r\n")
    f = s.makefile("rb")
    assert read_reply(f)[0] == 220
    s.sendall(b"QUIT\r\n")
    read_reply(f)
    wait_for(lambda: "client=192.0.2.77" in ctx["d"].log(), what="v1 client in the log")


def test_header_from_untrusted_address_refused(ctx):
    s = connect_from("127.0.0.9", ctx["d"].proxy_port)
    s.sendall(b"PROXY TCP4 192.0.2.66 127.0.0.1 40000 25\r\n")
    f = s.makefile("rb")
    code, text = read_reply(f)
    assert code == 421 and "PROXY" in text, text
    assert "client=192.0.2.66" not in ctx["d"].log()


def test_garbage_instead_of_header_refused(ctx):
    s = connect_from("127.0.0.3", ctx["d"].proxy_port)
    s.sendall(b"EHLO not-a-proxy\r\n")
    f = s.makefile("rb")
    code, text = read_reply(f)
    assert code == 421 and "PROXY" in text, text


def test_plain_listener_ignores_proxy_headers(ctx):
    # on the normal listener a PROXY line is just a bad command
    s = connect_from("127.0.0.3", ctx["d"].smtp_port)
    f = s.makefile("rb")
    assert read_reply(f)[0] == 220
    s.sendall(b"PROXY TCP4 192.0.2.55 127.0.0.1 40000 25\r\n")
    assert read_reply(f)[0] == 500
    assert "client=192.0.2.55" not in ctx["d"].log()
