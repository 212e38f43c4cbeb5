# SPDX-License-Identifier: MIT
"""A real clamd (Debian clamav-daemon) for the tests, with a signature
database the tests make themselves: nothing is downloaded (no freshclam).

  - EICAR: an .hdb entry (MD5:size:name) named Eicar-Test-Signature;
  - every file of Debian's clamav-testfiles: `sigtool --md5` lines, named
    by sigtool after the file (e.g. clam.exe).

clamd runs in the foreground with its own clamd.conf in a temporary
folder (LocalSocket, DatabaseDirectory, a small StreamMaxLength) and is
stopped by its PID."""
import os
import shutil
import signal
import socket
import subprocess
import time

from harness import Skip, make_tmpdir, wait_for

CLAMD = "/usr/sbin/clamd"
SIGTOOL = "/usr/bin/sigtool"
TESTFILES = "/usr/share/clamav-testfiles"
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"


def build_db(dbdir):
    """Writes test.hdb (EICAR) and testfiles.hdb (sigtool --md5 of every
    clamav-testfiles file) into dbdir; returns the names of the latter."""
    os.makedirs(dbdir, exist_ok=True)
    with open(os.path.join(dbdir, "test.hdb"), "w") as f:
        f.write("%s:%d:Eicar-Test-Signature\n" % (EICAR_MD5, len(EICAR)))
    names = []
    lines = []
    if os.path.isdir(TESTFILES):
        for name in sorted(os.listdir(TESTFILES)):
            path = os.path.join(TESTFILES, name)
            if not os.path.isfile(path) or os.path.getsize(path) == 0:
                continue
            out = subprocess.run([SIGTOOL, "--md5", path], capture_output=True, text=True,
                                 timeout=30)
            line = out.stdout.strip()
            if out.returncode == 0 and line.count(":") == 2:
                lines.append(line)
                names.append(name)
    with open(os.path.join(dbdir, "testfiles.hdb"), "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
    return names


class Clamd:
    def __init__(self, stream_max="2M"):
        if not os.path.exists(CLAMD) or not os.path.exists(SIGTOOL):
            raise Skip("clamav-daemon / clamav not installed (scripts/bootstrap)")
        self.tmp = make_tmpdir("clamd")
        self.sock = os.path.join(self.tmp, "clamd.sock")
        self.dbdir = os.path.join(self.tmp, "db")
        self.testfiles = build_db(self.dbdir)
        self.conf = os.path.join(self.tmp, "clamd.conf")
        self.log_path = os.path.join(self.tmp, "clamd.log")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "LocalSocket %s" % self.sock,
                "LocalSocketMode 666",
                "DatabaseDirectory %s" % self.dbdir,
                "TemporaryDirectory %s" % self.tmp,
                "Foreground yes",
                "LogFile %s" % self.log_path,
                "LogTime yes",
                "StreamMaxLength %s" % stream_max,
                "MaxThreads 4",
                "IdleTimeout 30",
                "Bytecode no",
                "",
            ]))
        self.proc = None

    def start(self):
        self.logf = open(os.path.join(self.tmp, "clamd.out"), "ab")
        self.proc = subprocess.Popen([CLAMD, "-c", self.conf], stdout=self.logf,
                                     stderr=self.logf)
        wait_for(self.ping, timeout=60, what="clamd PONG")
        return self

    def ping(self):
        if self.proc.poll() is not None:
            raise AssertionError("clamd exited with %s:\n%s" % (self.proc.returncode,
                                                                self.log()[-2000:]))
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(2)
            s.connect(self.sock)
            s.sendall(b"zPING\0")
            r = s.recv(16)
            s.close()
            return r == b"PONG\0"
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None
        # clamd leaves its socket file behind when killed
        try:
            os.unlink(self.sock)
        except FileNotFoundError:
            pass

    def log(self):
        out = ""
        for name in ("clamd.log", "clamd.out"):
            try:
                with open(os.path.join(self.tmp, name), "rb") as f:
                    out += f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return out

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


class FakeClamd:
    """A unix socket that misbehaves like a broken clamd: "silent" accepts
    and reads but never answers; "truncated" answers half a reply and
    closes."""

    def __init__(self, mode):
        import threading
        self.mode = mode
        self.tmp = make_tmpdir("fakeclamd")
        self.sock = os.path.join(self.tmp, "clamd.sock")
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.sock)
        os.chmod(self.sock, 0o666)
        self.srv.listen(16)
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.mode == "truncated":
                try:
                    c.settimeout(5)
                    buf = b""
                    # read to the end of the stream (a zero-length chunk)
                    while not buf.endswith(b"\0\0\0\0"):
                        d = c.recv(65536)
                        if not d:
                            break
                        buf += d
                    c.sendall(b"1: stream: O")
                except OSError:
                    pass
                c.close()

    def close(self):
        self.srv.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
