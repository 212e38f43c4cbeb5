# SPDX-License-Identifier: MIT
"""Test harness: starts the real mxguardd and real SMTP peers on loopback.

Every helper here starts a real process or a real socket server and stops
it by PID. Nothing is mocked: tests talk SMTP to the daemon exactly as a
client on the Internet would.
"""
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MXG_BUILD", os.path.join(ROOT, "build"))
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus")


class Skip(Exception):
    """Raised by a test that cannot run here (the reason is printed)."""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=20.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s" % what)


def make_tmpdir(prefix):
    d = tempfile.mkdtemp(prefix="mxg-" + prefix + "-")
    os.chmod(d, 0o755)  # the daemon's unprivileged user must reach it
    return d


class Daemon:
    """A real mxguardd with its own config, store and ports."""

    def __init__(self, tmp=None, conf_extra="", smtp_workers=2, thresholds_off=True, **opts):
        self.tmp = tmp or make_tmpdir("daemon")
        self.thresholds_off = thresholds_off
        self.thresholds_set = False
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.conf = os.path.join(self.tmp, "mxguard.conf")
        self.db = opts.get("db", os.path.join(self.tmp, "store", "mxguard.db"))
        self.log_path = os.path.join(self.tmp, "mxguardd.log")
        if not os.path.isdir(os.path.join(self.tmp, "rules")):
            shutil.copytree(os.path.join(ROOT, "rules"), os.path.join(self.tmp, "rules"))
        self.proc = None
        sections = {
            "node": {"hostname": "mx.test.example", "data_dir": os.path.join(self.tmp, "data")},
            "store": {"url": "sqlite:" + self.db},
            "smtp": {"listen": "127.0.0.1:%d" % self.smtp_port, "workers": str(smtp_workers)},
            "delivery": {"retry_min": "1s", "retry_max": "2s", "connect_timeout": "3s",
                         "timeout": "20s"},
            "http": {"listen": "127.0.0.1:%d" % self.http_port},
            # the workers' user reads the rules: a copy where it can (the
            # clone itself may live where it cannot, e.g. under /root)
            "av": {"yara_rules": os.path.join(self.tmp, "rules", "yara"),
                   "hash_lists": os.path.join(self.tmp, "rules", "hashes")},
            # no DNS unless a test brings its own server: a port where nothing
            # listens fails every query at once, whatever this machine's
            # resolver does
            "dns": {"servers": "127.0.0.1:9"},
            # every test client is 127.0.0.1: per-client limits high enough
            # for the load tests; test_limits sets its own
            "limits": {"per_ip_sessions": "500", "per_ip_rate": "100000",
                       "per_net_rate": "1000000", "command_rate": "100000"},
            "log": {"level": "info"},
            # Debian's SpamAssassin rules take seconds of CPU to compile per
            # worker: only the tests about rules and accuracy load them
            # (sa_rules = /usr/share/spamassassin); our rules/spam stay on
            "scan": {"sa_rules": ""},
        }
        for key, val in opts.items():
            if "__" in key:
                sec, k = key.split("__", 1)
                sections.setdefault(sec, {})[k] = str(val)
        with open(self.conf, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
            f.write(conf_extra)

    # -- life cycle --------------------------------------------------------
    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(BUILD, "mxguardd"), "-c", self.conf],
                                     stdout=self.logf, stderr=self.logf)
        if wait:
            wait_for(self.ready, timeout=30, what="mxguardd /readyz")
        if wait:
            self._thresholds()
        return self

    def _thresholds(self):
        """Transport tests send bare messages (no Date, no Message-ID) and
        check bytes: no spam threshold may tag or hold them. The policy
        tests set their own; test_accuracy keeps the defaults. Done once
        the daemon is up (it creates its store as its own user)."""
        if self.thresholds_off and not self.thresholds_set:
            self.thresholds_set = True
            for key in ("tag_score", "quarantine_score", "reject_score"):
                self.cli("policy", "set", "global", key, "off")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("mxguardd exited with %s:\n%s" % (self.proc.returncode,
                                                                   self.log()[-3000:]))
        try:
            code, body = self.http("/readyz")
            return code == 200
        except OSError:
            return False

    def http(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http_port, path),
                                        timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def workers(self, kind=None):
        code, body = self.http("/readyz")
        ws = json.loads(body)["workers"]
        return [w for w in ws if kind is None or w["kind"] == kind]

    def metric(self, name):
        code, body = self.http("/metrics")
        m = re.search(r"^%s (\d+)$" % re.escape(name), body, re.M)
        return int(m.group(1)) if m else None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_all()
        rc = self.proc.returncode if self.proc else None
        if getattr(self, "logf", None):
            self.logf.close()
        return rc

    def kill_all(self):
        """kill -9 the master and every worker (a crash of the whole node)."""
        pids = []
        try:
            pids = [w["pid"] for w in self.workers()]
        except Exception:
            pass
        for pid in [self.proc.pid] + pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        # workers notice nothing of the master's death: wait until they are gone
        for pid in pids:
            wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                     open("/proc/%d/stat" % pid).read().split()[2] == "Z",
                     timeout=10, what="worker %d to die" % pid)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def cli(self, *args, check=True, input=None, timeout=60):
        if (self.thresholds_off and not self.thresholds_set and self.proc and
                self.proc.poll() is None and self.ready()):
            self._thresholds()
        p = subprocess.run([os.path.join(BUILD, "mxguard"), "-c", self.conf] + list(args),
                           capture_output=True, text=True, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("mxguard %s failed (%d): %s%s" % (" ".join(args), p.returncode,
                                                                  p.stdout, p.stderr))
        return p

    def sanitizer_reports(self):
        """AddressSanitizer/UBSan/LeakSanitizer reports in the daemon's log
        (a worker that trips one dies and is restarted, so the test itself
        might not notice)."""
        return [l for l in self.log().splitlines()
                if "Sanitizer" in l or "runtime error:" in l]

    def cleanup(self):
        self.stop()
        reports = self.sanitizer_reports()
        if reports:
            keep = self.tmp + ".failed"
            shutil.move(self.tmp, keep)
            raise AssertionError("sanitizer reports in %s/mxguardd.log:\n%s" %
                                 (keep, "\n".join(reports[:20])))
        shutil.rmtree(self.tmp, ignore_errors=True)


class Capture:
    """A real SMTP server (Python sockets) that records what it receives and
    answers as told: per-command overrides like {"RCPT": "550 5.1.1 no"}."""

    def __init__(self, port=None, replies=None, pipelining=True, smtputf8=True):
        self.port = port or free_port()
        self.replies = replies or {}
        self.pipelining = pipelining
        self.smtputf8 = smtputf8
        self.messages = []  # dicts: mail_from, rcpts, data (bytes), mail_args
        self.connections = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with outer.lock:
                    outer.connections += 1
                w = self.wfile
                w.write(b"220 capture ESMTP\r\n")
                tx = None
                while True:
                    line = self.rfile.readline(100000)
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").strip()
                    verb = cmd.split(" ", 1)[0].upper().split(":")[0]
                    override = outer.replies.get(verb)
                    if callable(override):
                        override = override(cmd)
                    if verb == "EHLO":
                        caps = ["250-capture", "250-8BITMIME", "250-SIZE 100000000"]
                        if outer.pipelining:
                            caps.append("250-PIPELINING")
                        if outer.smtputf8:
                            caps.append("250-SMTPUTF8")
                        caps.append("250 ENHANCEDSTATUSCODES")
                        w.write(("\r\n".join(caps) + "\r\n").encode())
                    elif override and verb != "DATA_END":
                        if verb == "MAIL":
                            tx = None
                        w.write(override.encode() + b"\r\n")
                        if verb == "QUIT":
                            return
                    elif verb == "HELO":
                        w.write(b"250 capture\r\n")
                    elif verb == "MAIL":
                        tx = {"mail_from": cmd[10:].split(">")[0].lstrip("<"),
                              "mail_args": cmd, "rcpts": []}
                        w.write(b"250 2.1.0 ok\r\n")
                    elif verb == "RCPT":
                        if tx is not None:
                            tx["rcpts"].append(cmd[8:].split(">")[0].lstrip("<"))
                        w.write(b"250 2.1.5 ok\r\n")
                    elif verb == "DATA" and (tx is None or not tx["rcpts"]):
                        w.write(b"554 5.5.1 no valid recipients\r\n")
                    elif verb == "DATA":
                        w.write(b"354 go ahead\r\n")
                        w.flush()
                        data = b""
                        while True:
                            l = self.rfile.readline(10000000)
                            if not l:
                                return
                            if l == b".\r\n":
                                break
                            if l.startswith(b"."):
                                l = l[1:]
                            data += l
                        end = outer.replies.get("DATA_END")
                        if end:
                            w.write(end.encode() + b"\r\n")
                        else:
                            tx["data"] = data
                            with outer.lock:
                                outer.messages.append(tx)
                            w.write(b"250 2.0.0 queued\r\n")
                        tx = None
                    elif verb == "RSET":
                        tx = None
                        w.write(b"250 2.0.0 ok\r\n")
                    elif verb == "QUIT":
                        w.write(b"221 2.0.0 bye\r\n")
                        return
                    else:
                        w.write(b"250 2.0.0 ok\r\n")
                    w.flush()

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def wait_messages(self, n, timeout=30):
        wait_for(lambda: len(self.messages) >= n, timeout=timeout,
                 what="%d message(s) at the capture server (have %d)" % (n, len(self.messages)))
        return self.messages


class SmtpSink:
    """Postfix's smtp-sink, dumping each transaction to a file."""

    def __init__(self, port=None, extra=()):
        self.port = port or free_port()
        self.dir = make_tmpdir("sink")
        os.chmod(self.dir, 0o777)
        self.extra = list(extra)
        self.proc = None

    def start(self):
        args = ["/usr/sbin/smtp-sink"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        args += ["-d", os.path.join(self.dir, "%M."), *self.extra,
                 "127.0.0.1:%d" % self.port, "256"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._listening, timeout=10, what="smtp-sink")
        return self

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def files(self):
        return [os.path.join(self.dir, f) for f in os.listdir(self.dir)]

    def messages(self):
        """The delivered messages, without smtp-sink's own dump headers."""
        out = []
        for path in self.files():
            with open(path, "rb") as f:
                raw = f.read()
            lines = raw.split(b"\n")
            i = 0
            while i < len(lines) and lines[i].startswith(b"X-"):
                i += 1
            # smtp-sink's own Received header and its continuation lines
            if i < len(lines) and lines[i].startswith(b"Received: from") and b"smtp-sink" in b"".join(lines[i:i+3]):
                i += 1
                while i < len(lines) and lines[i][:1] in (b"\t", b" "):
                    i += 1
            out.append(b"\n".join(lines[i:]))
        return out

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Client:
    """A raw SMTP client for protocol edge cases (exact bytes on the wire)."""

    def __init__(self, port, timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered %r" % self.buf)
            self.buf += chunk
        l, self.buf = self.buf.split(b"\n", 1)
        return l.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """One complete (possibly multi-line) reply as (code, text)."""
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if len(l) < 4 or l[3] != "-":
                break
        return int(lines[-1][:3]), "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self):
        try:
            self.sock.settimeout(5)
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self):
        self.sock.close()


def setup_domain(d, sink_port, domain="example.test", mailboxes=("alice", "bob")):
    d.cli("domain", "add", domain, "--route", "127.0.0.1:%d" % sink_port)
    for m in mailboxes:
        d.cli("mailbox", "add", "%s@%s" % (m, domain))
