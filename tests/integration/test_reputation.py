# SPDX-License-Identifier: MIT
"""IP reputation: operator blocks and allows, and a record of spam (here:
pregreet bots) that refuses the address at connect."""
import json
import socket
import time

from harness import Daemon


def connect_from(src, port):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s, s.makefile("rb")


def first_reply(src, port):
    s, f = connect_from(src, port)
    line = f.readline().decode()
    s.close()
    return line


def test_block_and_allow_addresses_and_networks():
    d = Daemon().start()
    try:
        d.cli("reputation", "block", "127.0.0.5", "seen in a botnet")
        assert first_reply("127.0.0.5", d.smtp_port).startswith("554 5.7.1")
        assert first_reply("127.0.0.6", d.smtp_port).startswith("220")
        d.cli("reputation", "block", "127.0.0.0/24")
        assert first_reply("127.0.0.6", d.smtp_port).startswith("554 5.7.1")
        rows = json.loads(d.cli("reputation", "list", "--json").stdout)
        assert {r["key"]: r["action"] for r in rows} == {"127.0.0.5": "block",
                                                         "127.0.0.0/24": "block"}, rows
        d.cli("reputation", "clear", "127.0.0.0/24")
        assert first_reply("127.0.0.6", d.smtp_port).startswith("220")
        p = d.cli("reputation", "block", "10.0.0.0/8", check=False)
        assert p.returncode == 2 and "/24" in p.stderr
        assert "blocked by local policy" in d.log()
    finally:
        d.cleanup()


def test_spam_record_refuses_then_allow_overrides():
    d = Daemon(limits__greet_delay="300", reputation__reject_spam="2").start()
    try:
        for _ in range(2):  # a bot talks before the greeting, twice
            s, f = connect_from("127.0.0.7", d.smtp_port)
            s.sendall(b"EHLO bot\r\n")
            assert f.readline().startswith(b"554 5.5.1")
            s.close()
        time.sleep(0.5)  # the verdicts are recorded off the session path
        line = first_reply("127.0.0.7", d.smtp_port)
        assert line.startswith("554 5.7.1") and "reputation" in line, line
        rows = {r["key"]: r for r in json.loads(d.cli("reputation", "list", "--json").stdout)}
        assert rows["127.0.0.7"]["spam"] >= 1.9, rows
        assert rows["127.0.0.0/24"]["spam"] >= 1.9, rows
        # a neighbour with a clean record is not refused (net threshold is higher)
        s, f = connect_from("127.0.0.8", d.smtp_port)
        time.sleep(0.5)
        assert f.readline().startswith(b"220")
        s.close()
        # the operator allows the address: accepted, and no greet delay for it
        d.cli("reputation", "allow", "127.0.0.7")
        s, f = connect_from("127.0.0.7", d.smtp_port)
        t0 = time.time()
        assert f.readline().startswith(b"220")
        assert time.time() - t0 < 0.25
        s.close()
    finally:
        d.cleanup()
