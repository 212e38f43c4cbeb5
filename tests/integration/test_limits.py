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


def test_per_ip_sessions_and_worker_crash_forgets_them():
    d = Daemon(limits__per_ip_sessions="3").start()
    try:
        held = [Client(d.smtp_port) for _ in range(3)]
        for c in held:
            assert c.reply()[0] == 220
        extra = Client(d.smtp_port)
        code, text = extra.reply()
        assert code == 421 and "4.7.0" in text and "address" in text, text
        assert "limit=per_ip_sessions" in d.log()
        held[0].cmd("QUIT")
        time.sleep(0.3)
        ok = Client(d.smtp_port)
        assert ok.reply()[0] == 220  # a slot came back
        # kill -9 every smtp worker: their sessions must not stay counted
        import os
        for w in d.workers("smtp"):
            os.kill(w["pid"], 9)
        time.sleep(1.5)
        fresh = [Client(d.smtp_port) for _ in range(3)]
        for c in fresh:
            assert c.reply()[0] == 220
    finally:
        d.cleanup()


def test_connection_rate():
    d = Daemon(limits__per_ip_rate="5").start()
    try:
        codes = []
        for _ in range(8):
            c = Client(d.smtp_port)
            codes.append(c.reply()[0])
            if codes[-1] == 220:
                c.cmd("QUIT")
            c.close()
        assert codes[:5] == [220] * 5, codes
        assert 421 in codes[5:], codes
        assert "limit=per_ip_rate" in d.log()
    finally:
        d.cleanup()


def test_allowlisted_network_skips_limits():
    d = Daemon(limits__per_ip_rate="2", limits__allow_networks="127.0.0.0/8, ::1").start()
    try:
        for _ in range(6):
            c = Client(d.smtp_port)
            assert c.reply()[0] == 220
            c.cmd("QUIT")
    finally:
        d.cleanup()


def test_pregreet_refused():
    d = Daemon(limits__greet_delay="1500").start()
    try:
        bot = Client(d.smtp_port)
        bot.send("EHLO bot.example\r\n")  # talks first
        code, text = bot.reply()
        assert code == 554 and "before the greeting" in text, text
        assert bot.closed()
        assert d.metric("mxguard_smtp_pregreet_total") == 1
        polite = Client(d.smtp_port)
        t0 = time.time()
        assert polite.reply()[0] == 220
        assert time.time() - t0 >= 1.2
        assert polite.cmd("EHLO ok.example")[0] == 250
    finally:
        d.cleanup()


def test_command_rate():
    d = Daemon(limits__command_rate="20").start()
    try:
        c = Client(d.smtp_port)
        c.reply()
        c.send("NOOP\r\n" * 60)
        codes = []
        try:
            for _ in range(60):
                codes.append(c.reply()[0])
        except EOFError:
            pass
        assert 421 in codes and codes.count(250) <= 25, codes
    finally:
        d.cleanup()


def test_thousand_slow_connections_do_not_starve_a_normal_client():
    import resource
    import smtplib
    import socket
    from harness import Capture, setup_domain, wait_for
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    cap = Capture().start()
    d = Daemon(smtp__max_sessions="3000", limits__per_ip_sessions="20",
               limits__per_ip_rate="1000", limits__per_net_rate="100000").start()
    idle = []
    try:
        setup_domain(d, cap.port)
        # 1,000 connections from 50 addresses that never finish a command,
        # opened in batches (the point is 1,000 slow sessions, not a SYN burst
        # that overflows the listen queue on a busy machine)
        for i in range(1000):
            s = socket.socket()
            s.bind(("127.0.0.%d" % (2 + i // 20), 0))
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", d.smtp_port))
            except BlockingIOError:
                pass
            idle.append(s)
            if i % 100 == 99:
                wait_for(lambda: (d.metric("mxguard_smtp_sessions_active") or 0) >= i - 50,
                         timeout=30, what="batch %d to be accepted" % (i // 100))
        for s in idle[::2]:
            try:
                s.send(b"EHLO slo")  # half a command, then nothing (slowloris)
            except OSError:
                pass
        wait_for(lambda: (d.metric("mxguard_smtp_sessions_active") or 0) >= 950, timeout=60,
                 what="the slow sessions to be open")
        t0 = time.time()
        c = smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=10)
        c.sendmail("n@outside.test", ["alice@example.test"], b"Subject: not-starved\r\n\r\nx\r\n")
        c.quit()
        took = time.time() - t0
        assert took < 3, "a normal client took %.1fs among 1,000 slow ones" % took
        cap.wait_messages(1)
        print("  normal client: %.0f ms with %d slow sessions open" %
              (took * 1000, d.metric("mxguard_smtp_sessions_active")), flush=True)
    finally:
        for s in idle:
            s.close()
        d.cleanup()
        cap.stop()
