# SPDX-License-Identifier: MIT
"""Faults: workers and the whole node killed under load, downstream gone,
the store's file system full. The rule: every message that got a 250 is
delivered (at least once); nothing half-written ever gets a 250."""
import os
import re
import smtplib
import subprocess
import time

from harness import BUILD, Daemon, SmtpSink, make_tmpdir, setup_domain, wait_for

LOADGEN = os.path.join(BUILD, "bench", "loadgen")
MSGID = re.compile(rb"Message-ID: <([^>]+)@loadgen\.test>", re.I)


def start_load(d, tag, n, ack_log, concurrency=20):
    return subprocess.Popen([LOADGEN, "-s", "127.0.0.1:%d" % d.smtp_port, "-c", str(concurrency),
                             "-n", str(n), "-z", "2048", "-f", "load@outside.test",
                             "-r", "alice@example.test", "-t", tag, "-a", ack_log, "-m", "20",
                             "-T", "240", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def acked(ack_log):
    with open(ack_log) as f:
        return {l.split()[0] for l in f if l.strip()}


def delivered_ids(sink):
    ids = []
    for m in sink.messages():
        mm = MSGID.search(m)
        if mm:
            ids.append(mm.group(1).decode())
    return ids


def check_no_loss(d, sink, ack_log, label):
    ok = acked(ack_log)
    assert len(ok) > 0, "nothing acknowledged"

    def all_there():
        got = set(delivered_ids(sink))
        return ok.issubset(got)
    try:
        wait_for(all_there, timeout=180, interval=1, what="every acknowledged message")
    except AssertionError:
        missing = ok - set(delivered_ids(sink))
        raise AssertionError("%s: %d of %d acknowledged messages lost: %s" %
                             (label, len(missing), len(ok), sorted(missing)[:10]))
    ids = delivered_ids(sink)
    dups = len(ids) - len(set(ids))
    print("  %s: acknowledged=%d delivered_unique=%d duplicates=%d lost=0" %
          (label, len(ok), len(set(ids)), dups), flush=True)


def test_kill_smtp_worker_under_load():
    sink = SmtpSink().start()
    d = Daemon().start()
    try:
        setup_domain(d, sink.port)
        ack = os.path.join(d.tmp, "acks")
        load = start_load(d, "w", 2000, ack)
        wait_for(lambda: os.path.exists(ack) and len(acked(ack)) > 300, timeout=60,
                 what="load under way")
        victim = d.workers("smtp")[0]["pid"]
        os.kill(victim, 9)
        out, err = load.communicate(timeout=300)
        assert load.returncode == 0, err
        print("  loadgen: " + out.strip().splitlines()[-1], flush=True)
        check_no_loss(d, sink, ack, "kill -9 smtp worker")
    finally:
        d.cleanup()
        sink.cleanup()


def test_kill_whole_daemon_under_load():
    sink = SmtpSink().start()
    d = Daemon().start()
    try:
        setup_domain(d, sink.port)
        ack = os.path.join(d.tmp, "acks")
        load = start_load(d, "n", 2000, ack)
        wait_for(lambda: os.path.exists(ack) and len(acked(ack)) > 300, timeout=60,
                 what="load under way")
        d.kill_all()
        time.sleep(1)
        d.start()
        out, err = load.communicate(timeout=300)
        assert load.returncode == 0, err
        print("  loadgen: " + out.strip().splitlines()[-1], flush=True)
        check_no_loss(d, sink, ack, "kill -9 whole daemon")
    finally:
        d.cleanup()
        sink.cleanup()


def test_store_on_full_filesystem():
    if os.geteuid() != 0:
        raise AssertionError("this test mounts a tmpfs and needs root (CI runs as root)")
    tmp = make_tmpdir("full")
    mnt = os.path.join(tmp, "store")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0777", "tmpfs", mnt],
                   check=True)
    sink = SmtpSink().start()
    d = Daemon(tmp=tmp, db=os.path.join(mnt, "mxguard.db"))
    try:
        d.start()
        setup_domain(d, 1)  # a route nowhere: messages stay queued, the store fills
        # leave about 1.5 MB free on the store's file system
        st = os.statvfs(mnt)
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 1500 * 1024))
        big = "Subject: fill\r\n\r\n" + ("F" * 76 + "\r\n") * 3000  # ~230 KB
        codes = []
        for i in range(40):
            try:
                s = smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=30)
                s.sendmail("f@outside.test", ["alice@example.test"],
                           big.replace("fill", "fill-%d" % i).encode())
                s.quit()
                codes.append(250)
            except smtplib.SMTPDataError as e:
                codes.append(e.smtp_code)
                assert e.smtp_code == 451 and b"4.3.0" in e.smtp_error, e
                break
        assert 451 in codes, codes
        accepted = codes.count(250)
        assert accepted >= 1, codes
        # no corruption: the store checks out and every accepted message is queued
        p = subprocess.run(["sqlite3", os.path.join(mnt, "mxguard.db"),
                            "PRAGMA integrity_check;"], capture_output=True, text=True)
        assert p.stdout.strip() == "ok", p.stdout + p.stderr
        assert "451" in d.log() or "tempfail" in d.log()
        # space comes back; point the domain to the sink; the queue drains
        os.unlink(filler)
        d.cli("domain", "route", "example.test", "127.0.0.1:%d" % sink.port)
        d.cli("queue", "retry", "--all")
        wait_for(lambda: len(sink.files()) >= accepted, timeout=60, interval=0.5,
                 what="%d queued messages delivered" % accepted)
        got = sorted(int(re.search(rb"fill-(\d+)", m).group(1)) for m in sink.messages())
        assert got == list(range(accepted)), got
        # and new mail is accepted again
        s = smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=30)
        s.sendmail("f@outside.test", ["alice@example.test"], b"Subject: after-full\r\n\r\nx\r\n")
        s.quit()
        wait_for(lambda: any(b"after-full" in m for m in sink.messages()), timeout=30,
                 what="delivery after recovery")
    finally:
        d.stop()
        sink.cleanup()
        subprocess.run(["umount", "-l", mnt])
        d.cleanup()
