# SPDX-License-Identifier: MIT
"""Session limits: time-outs and the concurrent-session cap."""
import time

from harness import Client, Daemon


def test_command_timeout_closes_with_421():
    d = Daemon(smtp__timeout_command="2s").start()
    try:
        c = Client(d.smtp_port)
        assert c.reply()[0] == 220
        t0 = time.time()
        code, text = c.reply()  # say nothing: the server gives up
        assert code == 421 and "4.4.2" in text, text
        assert 1.5 <= time.time() - t0 < 10
        assert c.closed()
        assert d.metric("mxguard_smtp_timeouts_total") >= 1
    finally:
        d.cleanup()


def test_data_timeout_stores_nothing():
    d = Daemon(smtp__timeout_data="2s").start()
    try:
        d.cli("domain", "add", "example.test", "--route", "127.0.0.1:1")
        d.cli("mailbox", "add", "alice@example.test")
        c = Client(d.smtp_port)
        c.reply()
        c.cmd("EHLO x")
        assert c.cmd("MAIL FROM:<slow@outside.test>")[0] == 250
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: stalled\r\n\r\nthen nothing")
        code, text = c.reply()
        assert code == 421 and "4.4.2" in text, text
        assert "slow@outside.test" not in d.cli("queue", "list").stdout
    finally:
        d.cleanup()


def test_max_sessions():
    d = Daemon(smtp__max_sessions="2").start()
    try:
        a = Client(d.smtp_port)
        b = Client(d.smtp_port)
        assert a.reply()[0] == 220 and b.reply()[0] == 220
        c = Client(d.smtp_port)
        code, text = c.reply()
        assert code == 421 and "4.7.0" in text, text
        assert c.closed()
        a.cmd("QUIT")
        time.sleep(0.3)
        e = Client(d.smtp_port)
        assert e.reply()[0] == 220  # room again
        assert d.metric("mxguard_smtp_sessions_refused_total") >= 1
    finally:
        d.cleanup()
