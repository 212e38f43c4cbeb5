# SPDX-License-Identifier: MIT
"""The daemon as an operator sees it: configuration errors, health and
readiness, metrics, worker supervision, drain on SIGTERM, reload."""
import json
import os
import signal
import subprocess
import time

from harness import BUILD, Capture, Client, Daemon, make_tmpdir, setup_domain, wait_for


def run_daemon_with(conf_text):
    tmp = make_tmpdir("conf")
    path = os.path.join(tmp, "bad.conf")
    with open(path, "w") as f:
        f.write(conf_text)
    p = subprocess.run([os.path.join(BUILD, "mxguardd"), "-c", path], capture_output=True,
                       text=True, timeout=20)
    return path, p


def test_config_unknown_key_names_file_and_line():
    path, p = run_daemon_with("[smtp]\nlisten = 127.0.0.1:2525\nmax_recipents = 10\n")
    assert p.returncode != 0
    assert "%s:3: unknown key 'max_recipents'" % path in p.stderr, p.stderr


def test_config_bad_value_names_file_and_line():
    path, p = run_daemon_with("[delivery]\n\nlifetime = forever\n")
    assert p.returncode != 0
    assert "%s:3:" % path in p.stderr and "duration" in p.stderr, p.stderr
    path, p = run_daemon_with("[smtp]\nmax_recipients = 0\n")
    assert p.returncode != 0 and "%s:2:" % path in p.stderr and "range" in p.stderr, p.stderr


def test_config_check_flag():
    d = Daemon()
    p = subprocess.run([os.path.join(BUILD, "mxguardd"), "-t", "-c", d.conf],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout + p.stderr
    d.cleanup()


def test_health_ready_metrics_and_404():
    d = Daemon().start()
    try:
        code, body = d.http("/healthz")
        assert code == 200 and json.loads(body)["status"] == "ok"
        code, body = d.http("/readyz")
        j = json.loads(body)
        assert code == 200 and j["status"] == "ready" and j["store"] == "ok", body
        kinds = sorted(w["kind"] for w in j["workers"])
        assert kinds == ["delivery", "http", "smtp", "smtp"], kinds
        assert d.metric("mxguard_smtp_connections_total") is not None
        code, body = d.http("/nope")
        assert code == 404 and json.loads(body)["error"] == "not found"
    finally:
        d.cleanup()


def test_workers_run_unprivileged():
    if os.geteuid() != 0:
        return  # nothing to drop
    d = Daemon().start()
    try:
        for w in d.workers():
            with open("/proc/%d/status" % w["pid"]) as f:
                uid = [l for l in f if l.startswith("Uid:")][0].split()[1]
            assert uid != "0", (w, uid)
    finally:
        d.cleanup()


def test_killed_smtp_worker_is_restarted():
    cap = Capture().start()
    d = Daemon().start()
    try:
        setup_domain(d, cap.port)
        old = d.workers("smtp")[0]["pid"]
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: d.ready() and old not in [w["pid"] for w in d.workers("smtp")],
                 timeout=15, what="smtp worker restart")
        assert "signal=9" in d.log()
        assert d.metric("mxguard_worker_restarts_total") >= 1
        # and mail still flows
        for _ in range(4):
            c = Client(d.smtp_port)
            assert c.reply()[0] == 220
            c.cmd("EHLO x")
            assert c.cmd("MAIL FROM:<a@b.test>")[0] == 250
            assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
            c.cmd("DATA")
            c.send("Subject: after-restart\r\n\r\nx\r\n.\r\n")
            assert c.reply()[0] == 250
            c.cmd("QUIT")
        cap.wait_messages(4)
    finally:
        d.cleanup()
        cap.stop()


def test_sigterm_finishes_transaction_in_flight():
    cap = Capture().start()
    d = Daemon().start()
    try:
        setup_domain(d, cap.port)
        c = Client(d.smtp_port)
        c.reply()
        c.cmd("EHLO x")
        assert c.cmd("MAIL FROM:<a@b.test>")[0] == 250
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: drain\r\n\r\nhalf")
        d.proc.send_signal(signal.SIGTERM)
        time.sleep(1)
        c.send(" and the rest\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, text  # the transaction in flight completes
        code, text = c.reply()
        assert code == 421, text  # then the session is closed politely
        assert d.proc.wait(timeout=60) == 0
        # a new connection is refused now
        try:
            Client(d.smtp_port, timeout=2).reply()
            assert False, "still accepting"
        except (OSError, EOFError):
            pass
        # the message was stored before the 250: the next start delivers it
        d.start()
        wait_for(lambda: any(b"drain" in m["data"] for m in cap.messages), timeout=30,
                 what="drained message delivered")
    finally:
        d.cleanup()
        cap.stop()


def test_sighup_reload_good_and_bad_config():
    d = Daemon().start()
    try:
        old = sorted(w["pid"] for w in d.workers("smtp"))
        with open(d.conf, "a") as f:
            f.write("\n[log]\n")  # duplicate section header is fine; keys are checked
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload" in d.log(), timeout=10, what="reload log")
        wait_for(lambda: d.ready() and sorted(w["pid"] for w in d.workers("smtp")) != old,
                 timeout=20, what="new smtp workers")
        conf = open(d.conf).read()
        with open(d.conf, "a") as f:
            f.write("bogus_key = 1\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "status=refused" in d.log(), timeout=10, what="refused reload")
        assert d.ready()
        with open(d.conf, "w") as f:
            f.write(conf)
    finally:
        d.cleanup()
