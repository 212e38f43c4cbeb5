# SPDX-License-Identifier: MIT
"""A real authoritative DNS server (Debian's nsd) on a loopback port,
serving every tests/dns/*.zone file (the zone name is the file name
without ".zone").

    with NSD() as ns:          # or ns = NSD().start() ... ns.stop()
        ns.port                # UDP and TCP on 127.0.0.1

nsd runs in the foreground (-d) as the current user with its pid file,
database, xfrd state and log in a temporary directory; it is stopped by its
PID. Run as a script (`python3 dnsserver.py serve`) it prints "port=N" and
serves until stdin closes or SIGTERM arrives, so a C test can own it
through a pipe (tests/unit/test_dns.c).

Also here: BlackHole, a UDP socket that reads nothing and answers nothing,
for the "zone that never answers" time-out path.
"""
import glob
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ZONES = os.path.join(ROOT, "tests", "dns")
NSD_BIN = "/usr/sbin/nsd"


def _free_port():
    # Same as harness.free_port(), without importing the harness (this file
    # also runs as a script). nsd needs the port free for both UDP and TCP.
    for _ in range(50):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no free port")


def query(port, name, qtype=1, timeout=1.0):
    """One UDP query; returns (rcode, ancount) or None on time-out."""
    qid = os.getpid() & 0xFFFF
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
    except OSError:
        return None
    finally:
        s.close()
    if len(data) < 12:
        return None
    _, flags, _, an, _, _ = struct.unpack("!HHHHHH", data[:12])
    return flags & 0xF, an


class NSD:
    def __init__(self, zones_dir=ZONES, port=None):
        if not os.access(NSD_BIN, os.X_OK):
            raise RuntimeError("nsd is not installed (scripts/bootstrap installs it)")
        self.zones_dir = zones_dir
        self.port = port or _free_port()
        self.tmp = tempfile.mkdtemp(prefix="mxg-nsd-")
        self.conf = os.path.join(self.tmp, "nsd.conf")
        self.log_path = os.path.join(self.tmp, "nsd.log")
        self.proc = None
        self.zones = []
        for path in sorted(glob.glob(os.path.join(zones_dir, "*.zone"))):
            self.zones.append((os.path.basename(path)[:-5], os.path.abspath(path)))
        self._write_conf()

    def _write_conf(self):
        t = self.tmp
        lines = [
            "server:",
            '  ip-address: 127.0.0.1@%d' % self.port,
            "  do-ip6: no",
            "  server-count: 1",
            '  username: ""',
            '  chroot: ""',
            '  zonesdir: "%s"' % t,
            '  database: ""',
            '  zonelistfile: "%s/zone.list"' % t,
            '  xfrdfile: "%s/xfrd.state"' % t,
            '  xfrdir: "%s"' % t,
            '  pidfile: "%s/nsd.pid"' % t,
            '  logfile: "%s"' % self.log_path,
            "  verbosity: 1",
            "  hide-version: yes",
            "  refuse-any: yes",
            "remote-control:",
            "  control-enable: no",
        ]
        for name, path in self.zones:
            lines += ["zone:", "  name: %s" % name, '  zonefile: "%s"' % path]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout=15.0):
        self.proc = subprocess.Popen([NSD_BIN, "-d", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        probe = self.zones[0][0] if self.zones else "."
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nsd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            r = query(self.port, probe, qtype=6, timeout=0.2)  # SOA of a served zone
            if r is not None and r[0] == 0:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nsd did not answer within %ss:\n%s" % (timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # nsd -d forks xfrd and a server child; both leave with the parent,
        # but make sure nothing of ours lingers (by the PID nsd wrote).
        self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class BlackHole:
    """A bound UDP socket on loopback that never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def _serve():
    ns = NSD().start()
    stop = {"now": False}

    def on_term(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("port=%d" % ns.port, flush=True)
    try:
        # Until stdin closes (the owner is gone) or a signal arrives.
        while not stop["now"]:
            try:
                if not sys.stdin.buffer.read1(4096):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
    finally:
        ns.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        _serve()
    else:
        print("usage: dnsserver.py serve", file=sys.stderr)
        sys.exit(2)
