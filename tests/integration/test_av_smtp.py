# SPDX-License-Identifier: MIT
"""The antivirus layer in the SMTP session, end to end: a real clamd with the
signatures the tests build, YARA and hash lists in the daemon, EICAR over
SMTP refused at DATA, an engine that is down deferring mail (never passing
it silently), and clean mail flowing."""
import smtplib
import time

from clamd import Clamd, FakeClamd
from harness import Capture, Daemon, setup_domain, wait_for

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")


def eicar_mail(subject):
    import base64
    att = base64.encodebytes(EICAR).replace(b"\n", b"\r\n")
    return (b"Subject: " + subject + b"\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
            b"--B\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
            b"--B\r\nContent-Type: application/octet-stream; name=readme.com\r\n"
            b"Content-Disposition: attachment; filename=readme.com\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + att + b"--B--\r\n")


def send(d, body):
    s = smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=60)
    try:
        s.sendmail("x@outside.test", ["alice@example.test"], body)
        return 250, ""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            pass


def setup_module():
    cd = Clamd().start()
    cap = Capture().start()
    d = Daemon(av__clamd=cd.sock, av__clamd_timeout="3s").start()
    setup_domain(d, cap.port)
    return {"d": d, "cd": cd, "cap": cap}


def teardown_module(ctx):
    ctx["d"].cleanup()
    ctx["cd"].cleanup()
    ctx["cap"].stop()


def test_eicar_refused_at_data_naming_the_threat(ctx):
    code, text = send(ctx["d"], eicar_mail(b"av-eicar"))
    assert code == 554 and "5.7.0" in text, (code, text)
    assert "eicar" in text.lower(), text
    assert "(in 2)" in text, text  # the part, not just "the message"
    log = ctx["d"].log()
    assert "reason=virus" in log and "AV_" in log
    time.sleep(0.5)
    assert not any(b"av-eicar" in m["data"] for m in ctx["cap"].messages)
    assert ctx["d"].metric("mxguard_scan_rejected_total") >= 1


def test_clean_mail_passes_both_engines(ctx):
    code, _ = send(ctx["d"], b"Subject: av-clean\r\n\r\nnothing here\r\n")
    assert code == 250
    data = wait_for(lambda: [m for m in ctx["cap"].messages if b"av-clean" in m["data"]],
                    what="clean mail")[0]["data"]
    assert b"AV_" not in data.split(b"\r\n\r\n")[0]


def test_engine_down_defers_then_recovers(ctx):
    d, cd = ctx["d"], ctx["cd"]
    cd.stop()
    code, text = send(d, b"Subject: av-while-down\r\n\r\nhello\r\n")
    assert code == 451 and "4.7.0" in text, (code, text)
    assert not any(b"av-while-down" in m["data"] for m in ctx["cap"].messages)
    cd.start()
    wait_for(lambda: send(d, b"Subject: av-back\r\n\r\nhello\r\n")[0] == 250, timeout=30,
             interval=1, what="mail accepted again once clamd is back")


def _up(d):
    try:
        d.http("/healthz")
        return True
    except OSError:
        return False


def test_silent_clamd_defers_within_the_timeout():
    fake = FakeClamd("silent")
    cap = Capture().start()
    d = Daemon(av__clamd=fake.sock, av__clamd_timeout="1s").start(wait=False)
    try:
        # an engine that does not answer makes the node "not ready" (503),
        # but it still answers SMTP, with 4xx
        wait_for(lambda: d.http("/healthz")[0] == 200 if _up(d) else False, timeout=30,
                 what="the daemon up")
        wait_for(lambda: d.http("/readyz")[0] == 503, timeout=30, what="readyz 503")
        assert "clamd" in d.http("/readyz")[1]
        setup_domain(d, cap.port)
        t0 = time.time()
        code, text = send(d, b"Subject: av-silent\r\n\r\nhello\r\n")
        assert code == 451, (code, text)
        assert time.time() - t0 < 10
    finally:
        d.cleanup()
        fake.close()
        cap.stop()


def test_pass_with_symbol_when_configured():
    fake = FakeClamd("truncated")
    cap = Capture().start()
    d = Daemon(av__clamd=fake.sock, av__on_failure="pass").start()
    try:
        setup_domain(d, cap.port)
        code, _ = send(d, b"Subject: av-passed\r\n\r\nhello\r\n")
        assert code == 250
        data = wait_for(lambda: [m for m in cap.messages if b"av-passed" in m["data"]],
                        what="passed mail")[0]["data"]
        assert b"AV_CLAMD_FAIL" in data.split(b"\r\n\r\n")[0]
    finally:
        d.cleanup()
        fake.close()
        cap.stop()
