# SPDX-License-Identifier: MIT
"""DNS data for the SPF and DKIM suites, served by a real nsd.

    with AuthDNS(records) as dns:   # records: {name: [(type, value), ...]}
        dns.server                  # "127.0.0.1:PORT" for the resolver

Types: A, AAAA, MX ((pref, host)), PTR, CNAME, TXT (a str/bytes or a list
of them: the strings of one record), SPF (the same, type 99) and the
pseudo-record TIMEOUT. Names are grouped into one zone per top-level label
and written as nsd zone files in a temporary directory (tests/dns is not
touched); nsd (dnsserver.NSD) serves them.

nsd cannot express "this name never answers", so a tiny UDP front
(Front) sits before nsd: it drops the queries listed as time-outs and
passes every other query to nsd and its answer back (a REFUSED for a
name outside the served zones becomes NXDOMAIN, as the suites mean). The
time-out rule is the one of the RFC 7208 suite (pyspf's test driver): for
a type T, a TIMEOUT entry met before any T record makes the T query time
out; T records after it are not served.
"""
import os
import socket
import struct
import tempfile
import threading

import dnsserver

SAFE_LABEL = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*")


def _b(v):
    if isinstance(v, bytes):
        return v
    return str(v).encode("latin-1", errors="replace")


def _name(n):
    """Absolute zone-file name, odd bytes escaped as \\DDD."""
    n = _b(n).rstrip(b".")
    out = []
    for label in n.split(b"."):
        out.append("".join(chr(c) if c in SAFE_LABEL else "\\%03d" % c for c in label))
    return ".".join(out) + "."


def _txt(strings):
    if not isinstance(strings, (list, tuple)):
        strings = [strings]
    if not strings:
        strings = [b""]
    parts = []
    for s in strings:
        s = _b(s)
        while True:  # a character-string holds 255 bytes at most
            chunk, s = s[:255], s[255:]
            esc = "".join(chr(c) if 0x20 <= c < 0x7F and c not in b'"\\' else "\\%03d" % c
                          for c in chunk)
            parts.append('"%s"' % esc)
            if not s:
                break
    return " ".join(parts)


def _valid(name):
    n = _b(name).rstrip(b".")
    return n and len(n) <= 253 and all(0 < len(x) <= 63 for x in n.split(b"."))


QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SPF": 99}


def plan(records):
    """(served, timeouts): what nsd serves, and the (name, qtype) pairs that
    must time out."""
    served, timeouts = {}, set()
    for name, entries in records.items():
        if not _valid(name):
            continue
        key = _b(name).rstrip(b".").lower()
        seen, stopped, out = set(), set(), []
        has_cname = any(t == "CNAME" for t, _ in entries)
        for t, v in entries:
            if t == "TIMEOUT":
                for qt in QTYPES:
                    if qt not in seen:
                        timeouts.add((key, QTYPES[qt]))
                    stopped.add(qt)
                continue
            if t in stopped:
                continue
            if has_cname and t != "CNAME":
                continue  # a CNAME stands alone (RFC 1034 3.6.2)
            seen.add(t)
            out.append((t, v))
        served[name] = out
    return served, timeouts


def write_zones(served, d):
    zones = {}
    for name, entries in served.items():
        tld = _b(name).rstrip(b".").split(b".")[-1].lower().decode("latin-1")
        zones.setdefault(tld, []).append((name, entries))
    for tld, names in zones.items():
        lines = ["$TTL 60",
                 "%s. IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60" % (tld, tld, tld),
                 "%s. IN NS ns.%s." % (tld, tld)]
        for name, entries in names:
            n = _name(name)
            if not entries:
                # the name exists, without records of any type we serve
                lines.append("%s IN TYPE65280 \\# 0" % n)
            for t, v in entries:
                if t in ("A", "AAAA"):
                    lines.append("%s IN %s %s" % (n, t, v))
                elif t == "MX":
                    lines.append("%s IN MX %d %s" % (n, int(v[0]), _name(v[1])))
                elif t in ("PTR", "CNAME"):
                    lines.append("%s IN %s %s" % (n, t, _name(v)))
                elif t in ("TXT", "SPF"):
                    lines.append("%s IN %s %s" % (n, t, _txt(v)))
        with open(os.path.join(d, tld + ".zone"), "w", encoding="latin-1") as f:
            f.write("\n".join(lines) + "\n")


def _qname(pkt):
    i, labels = 12, []
    while i < len(pkt):
        n = pkt[i]
        if n == 0:
            i += 1
            break
        labels.append(pkt[i + 1:i + 1 + n])
        i += 1 + n
    qtype = struct.unpack("!H", pkt[i:i + 2])[0] if i + 2 <= len(pkt) else 0
    return b".".join(labels).lower(), qtype


class Front:
    """UDP front for nsd: drops the time-out queries, relays the rest."""

    def __init__(self, upstream_port, timeouts):
        self.up = ("127.0.0.1", upstream_port)
        self.timeouts = timeouts
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop_flag = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _relay(self, pkt, peer):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(2)
        try:
            u.sendto(pkt, self.up)
            ans, _ = u.recvfrom(65535)
            if len(ans) >= 4 and ans[3] & 0xF == 5:
                # REFUSED: a name outside the served zones. The suites mean
                # "does not exist" (NXDOMAIN), as the rest of the tree would.
                ans = ans[:2] + bytes([ans[2] | 0x04, (ans[3] & 0xF0) | 3]) + ans[4:]
            self.sock.sendto(ans, peer)
        except OSError:
            pass
        finally:
            u.close()

    def _run(self):
        while not self.stop_flag:
            try:
                pkt, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(pkt) < 12:
                continue
            if _qname(pkt) in self.timeouts:
                continue
            threading.Thread(target=self._relay, args=(pkt, peer), daemon=True).start()

    def close(self):
        self.stop_flag = True
        self.thread.join()
        self.sock.close()


class AuthDNS:
    def __init__(self, records):
        self.tmp = tempfile.mkdtemp(prefix="mxg-authdns-")
        served, self.timeouts = plan(records)
        served.setdefault("authdns.invalid", [("A", "127.0.0.1")])  # nsd needs a zone
        write_zones(served, self.tmp)
        self.nsd = None
        self.front = None

    def start(self):
        self.nsd = dnsserver.NSD(zones_dir=self.tmp).start()
        self.front = Front(self.nsd.port, self.timeouts)
        self.server = "127.0.0.1:%d" % self.front.port
        return self

    def stop(self):
        if self.front:
            self.front.close()
        if self.nsd:
            self.nsd.stop()
        for f in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, f))
        os.rmdir(self.tmp)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
