# SPDX-License-Identifier: MIT
"""The antivirus layer against a real clamd (tests/integration/clamd.py)
with a signature database made here, YARA rules and hash lists from
rules/, and the file-type policy.

Until the content pipeline runs these checks inside the SMTP session, the
layer is driven by build/tests/unit/av_scan_tool (the same module code the
pipeline calls, one JSON line per message). The rules commands
(`mxguard rules check|reload`) go through the real CLI and daemon."""
import base64
import io
import json
import os
import re
import shutil
import signal
import subprocess
import time
import zipfile
from email.message import EmailMessage

import clamd as clamdmod
from harness import BUILD, CORPUS, ROOT, Daemon, Skip, make_tmpdir, wait_for

EICAR = clamdmod.EICAR
TOOL = os.path.join(BUILD, "tests", "unit", "av_scan_tool")


def setup_module():
    c = clamdmod.Clamd(stream_max="2M").start()
    tmp = make_tmpdir("av")
    return {"clamd": c, "tmp": tmp}


def teardown_module(ctx):
    if ctx:
        ctx["clamd"].cleanup()
        shutil.rmtree(ctx["tmp"], ignore_errors=True)


def write_conf(ctx, name, clamd_addr=None, timeout="2s", extra=""):
    path = os.path.join(ctx["tmp"], name + ".conf")
    with open(path, "w") as f:
        f.write("[av]\nclamd = %s\nclamd_timeout = %s\nclamd_max_stream = 2M\n"
                "yara_rules = %s\nhash_lists = %s\n%s" %
                (clamd_addr if clamd_addr is not None else ctx["clamd"].sock, timeout,
                 os.path.join(ROOT, "rules", "yara"), os.path.join(ROOT, "rules", "hashes"),
                 extra))
    return path


def scan(conf, *files, expect_rc=None):
    p = subprocess.run([TOOL, "-c", conf] + list(files), capture_output=True, text=True,
                       timeout=600)
    if expect_rc is not None:
        assert p.returncode == expect_rc, (p.returncode, p.stdout[-2000:], p.stderr)
    return [json.loads(l) for l in p.stdout.splitlines()], p


def write_msg(ctx, name, data):
    path = os.path.join(ctx["tmp"], name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def plain_eicar():
    m = EmailMessage()
    m["From"] = "a@outside.test"
    m["To"] = "alice@example.test"
    m["Subject"] = "your invoice"
    m.set_content("see attached\n")
    m.add_attachment(EICAR, maintype="application", subtype="octet-stream",
                     filename="eicar.com")
    return m.as_bytes().replace(b"\n", b"\r\n")


def nested_eicar(tmp):
    """EICAR in a.zip in b.7z attached to a message, forwarded as a
    message/rfc822 part that is itself base64-encoded."""
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("eicar.com", EICAR)
    work = make_tmpdir("7z")
    with open(os.path.join(work, "a.zip"), "wb") as f:
        f.write(zbuf.getvalue())
    seven = shutil.which("7z") or shutil.which("7za")
    if not seven:
        raise Skip("7z not installed (p7zip-full, scripts/bootstrap)")
    subprocess.run([seven, "a", "-bd", "-y", os.path.join(work, "b.7z"),
                    os.path.join(work, "a.zip")], check=True, capture_output=True)
    with open(os.path.join(work, "b.7z"), "rb") as f:
        sz = f.read()
    shutil.rmtree(work, ignore_errors=True)
    inner = EmailMessage()
    inner["From"] = "x@outside.test"
    inner["To"] = "y@outside.test"
    inner["Subject"] = "archive"
    inner.set_content("the archive\n")
    inner.add_attachment(sz, maintype="application", subtype="x-7z-compressed",
                         filename="b.7z")
    inner_bytes = inner.as_bytes().replace(b"\n", b"\r\n")
    b64 = base64.encodebytes(inner_bytes).replace(b"\n", b"\r\n")
    return (b"From: a@outside.test\r\nTo: alice@example.test\r\nSubject: Fwd: archive\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n"
            b"--OUT\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n"
            b"--OUT\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n"
            b"\r\n" + b64 + b"--OUT--\r\n")


def engines(res):
    return {(h["engine"], h["name"]) for h in res["hits"]}


def test_eicar_plain_attachment(ctx):
    conf = write_conf(ctx, "plain")
    msg = write_msg(ctx, "plain.eml", plain_eicar())
    [res], p = scan(conf, msg, expect_rc=0)
    got = engines(res)
    # clamd marks signatures of a database it did not sign: .UNOFFICIAL
    assert ("clamd", "Eicar-Test-Signature.UNOFFICIAL") in got, res
    assert ("yara", "EICAR_Test_File") in got, res
    assert ("hash", "EICAR-Test-File") in got, res
    # the most specific place comes first per engine: the attachment "2"
    # (clamd also finds it in the raw message, path "", reported after)
    for eng in ("clamd", "yara", "hash"):
        assert [h for h in res["hits"] if h["engine"] == eng][0]["path"] == "2", res


def test_eicar_nested_zip_7z_rfc822_base64(ctx):
    conf = write_conf(ctx, "nested")
    msg = write_msg(ctx, "nested.eml", nested_eicar(ctx["tmp"]))
    [res], p = scan(conf, msg, expect_rc=0)
    by_engine = {}
    for h in res["hits"]:
        by_engine.setdefault(h["engine"], []).append(h)
    for eng in ("clamd", "yara", "hash"):
        assert eng in by_engine, res
        first = by_engine[eng][0]
        # the most deeply nested place is reported first, with its path
        assert first["path"].endswith("b.7z/a.zip/eicar.com"), res
    assert by_engine["clamd"][0]["name"] == "Eicar-Test-Signature.UNOFFICIAL"


def test_clamav_testfiles(ctx):
    """Every clamav-testfiles file as an attachment: clamd knows it by the
    sigtool hash the tests made; the executables are also flagged by the
    file-type policy."""
    names = ctx["clamd"].testfiles
    if not names:
        raise Skip("clamav-testfiles not installed")
    conf = write_conf(ctx, "testfiles")
    paths = []
    for name in names:
        with open(os.path.join(clamdmod.TESTFILES, name), "rb") as f:
            data = f.read()
        if len(data) > 1024 * 1024:
            continue
        m = EmailMessage()
        m["From"] = "a@outside.test"
        m["To"] = "alice@example.test"
        m["Subject"] = name
        m.set_content("x\n")
        m.add_attachment(data, maintype="application", subtype="octet-stream",
                         filename=name)
        paths.append(write_msg(ctx, "tf-" + name + ".eml", m.as_bytes()))
    results, p = scan(conf, *paths, expect_rc=0)
    missed = [r["file"] for r in results if not any(h["engine"] == "clamd" for h in r["hits"])]
    assert not missed, missed
    exe = [r for r in results if r["file"].endswith("tf-clam.exe.eml")]
    assert exe and any(h["name"] == "FILETYPE_EXECUTABLE" for h in exe[0]["hits"]), exe


def test_clean_corpus_no_false_positives(ctx):
    sa = os.path.join(CORPUS, "sa")
    if not os.path.isdir(sa):
        raise Skip("corpus absent: %s" % sa)
    files = [os.path.join(sa, d, f) for d in ("ham", "spam")
             for f in sorted(os.listdir(os.path.join(sa, d))) if f.endswith(".eml")]
    conf = write_conf(ctx, "corpus")
    results = []
    for i in range(0, len(files), 500):
        r, p = scan(conf, *files[i:i + 500])
        results += r
    assert len(results) == len(files), (len(results), len(files))
    fails = [r for r in results if r["result"] != "ok"]
    assert not fails, fails[:5]
    av = [(r["file"], h) for r in results for h in r["hits"]
          if h["engine"] in ("clamd", "yara", "hash", "clamd_skipped")]
    assert not av, av[:10]


def test_clamd_silent_times_out(ctx):
    fake = clamdmod.FakeClamd("silent")
    try:
        conf = write_conf(ctx, "silent", clamd_addr=fake.sock, timeout="700ms")
        msg = write_msg(ctx, "plain-silent.eml", plain_eicar())
        t0 = time.time()
        [res], p = scan(conf, msg, expect_rc=1)
        took = time.time() - t0
        assert res["result"] == "tempfail" and "did not answer in time" in res["why"], res
        assert took < 5, took
    finally:
        fake.close()


def test_clamd_truncated_reply(ctx):
    fake = clamdmod.FakeClamd("truncated")
    try:
        conf = write_conf(ctx, "trunc", clamd_addr=fake.sock)
        msg = write_msg(ctx, "plain-trunc.eml", plain_eicar())
        [res], p = scan(conf, msg, expect_rc=1)
        assert res["result"] == "tempfail" and "unexpected reply" in res["why"], res
    finally:
        fake.close()


def test_clamd_stopped_mid_run_then_back(ctx):
    c = ctx["clamd"]
    conf = write_conf(ctx, "stop")
    clean = EmailMessage()
    clean["From"] = "a@outside.test"
    clean["To"] = "b@example.test"
    clean["Subject"] = "hello"
    clean.set_content("nothing to see\n")
    msg = write_msg(ctx, "clean.eml", clean.as_bytes())
    [res], p = scan(conf, msg, expect_rc=0)
    assert res["result"] == "ok" and not res["hits"], res
    c.stop()
    try:
        [res], p = scan(conf, msg, expect_rc=1)
        assert res["result"] == "tempfail" and "clamd" in res["why"], res
    finally:
        c.start()
    [res], p = scan(conf, msg, expect_rc=0)
    assert res["result"] == "ok", res


# ---- rules check / reload through the CLI and the daemon ------------------

def rules_daemon(tmp, rules_dir):
    hashes = os.path.join(tmp, "hashes")
    os.makedirs(hashes, exist_ok=True)
    shutil.copy(os.path.join(ROOT, "rules", "hashes", "eicar.txt"), hashes)
    return Daemon(av__yara_rules=rules_dir, av__hash_lists=hashes)


def test_rules_check_and_reload(ctx):
    tmp = make_tmpdir("rules")
    rules = os.path.join(tmp, "yara")
    os.makedirs(rules)
    shutil.copy(os.path.join(ROOT, "rules", "yara", "eicar.yar"), rules)
    d = rules_daemon(tmp, rules)
    try:
        p = d.cli("rules", "check")
        assert p.stdout.startswith("ok: 1 YARA rules"), p.stdout
        d.start()
        pid_file = os.path.join(d.tmp, "data", "mxguardd.pid")
        wait_for(lambda: os.path.exists(pid_file), what="pid file")
        assert int(open(pid_file).read()) == d.proc.pid
        before = sorted(w["pid"] for w in d.workers("smtp"))

        # a good change: reload, new workers
        with open(os.path.join(rules, "more.yar"), "w") as f:
            f.write("rule Mxg_Test_Marker { strings: $a = \"mxg-test-marker-9f2c\" "
                    "condition: $a }\n")
        p = d.cli("rules", "reload")
        assert "reload requested" in p.stdout, p.stdout
        wait_for(lambda: "event=reload status=ok" in d.log(), what="reload ok")
        wait_for(lambda: sorted(w["pid"] for w in d.workers("smtp")) != before and
                 all(w["running"] for w in d.workers("smtp")), what="new smtp workers")
        gen2 = sorted(w["pid"] for w in d.workers("smtp"))

        # a syntax error: refused with file:line, nothing signalled
        with open(os.path.join(rules, "broken.yar"), "w") as f:
            f.write("rule Fine { condition: true }\n\nrule Broken {\n"
                    "  strings: $a = \"x\"\n  condition: $a and\n}\n")
        p = d.cli("rules", "check", check=False)
        assert p.returncode == 1, p
        assert re.search(r"broken\.yar:6: ", p.stderr), p.stderr
        reloads = d.log().count("event=reload ")
        p = d.cli("rules", "reload", check=False)
        assert p.returncode == 1 and "broken.yar:6" in p.stderr, p.stderr
        time.sleep(1)
        assert d.log().count("event=reload ") == reloads
        assert sorted(w["pid"] for w in d.workers("smtp")) == gen2
        assert d.http("/readyz")[0] == 200
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_sighup_with_broken_rules_keeps_old_workers(ctx):
    """A SIGHUP sent directly (not through `mxguard rules reload`) with a
    broken rule file: the master must refuse the reload and keep the old
    workers. Needs the master to call av_yara_rules_check before a reload."""
    with open(os.path.join(ROOT, "src", "daemon", "master.c")) as f:
        if "av_yara_rules_check" not in f.read():
            raise Skip("the master does not check the rules before a reload yet "
                       "(av_yara_rules_check in src/daemon/master.c reload())")
    tmp = make_tmpdir("rules")
    rules = os.path.join(tmp, "yara")
    os.makedirs(rules)
    shutil.copy(os.path.join(ROOT, "rules", "yara", "eicar.yar"), rules)
    d = rules_daemon(tmp, rules)
    try:
        d.start()
        before = sorted(w["pid"] for w in d.workers("smtp"))
        with open(os.path.join(rules, "broken.yar"), "w") as f:
            f.write("rule Broken { condition: \n")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "status=refused" in d.log(), what="reload refused")
        assert "broken.yar" in d.log()
        time.sleep(1)
        after = sorted(w["pid"] for w in d.workers("smtp"))
        assert after == before, (before, after, d.log()[-3000:])
        assert d.http("/readyz")[0] == 200
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
