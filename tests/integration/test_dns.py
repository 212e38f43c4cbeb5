# SPDX-License-Identifier: MIT
"""The test DNS server itself: nsd on a loopback port answers the zones in
tests/dns (the resolver, DNSBL and FCrDNS tests in tests/unit/test_dns.c
rely on these answers), and the black hole never answers."""
import os

import dnsserver

NOERROR, NXDOMAIN, REFUSED = 0, 3, 5


def test_nsd_serves_the_test_zones():
    ns = dnsserver.NSD().start()
    try:
        q = lambda name, t=1: dnsserver.query(ns.port, name, t)
        assert q("2.0.0.127.bl.mxg.test") == (NOERROR, 1)
        assert q("10.0.0.127.bl.mxg.test") == (NOERROR, 2)  # two return codes
        assert q("20.0.0.127.bl.mxg.test")[0] == NXDOMAIN  # not listed
        assert q("13.0.0.127.wl.mxg.test") == (NOERROR, 1)  # the allowlist
        v6 = ".".join("20010db8000000000000000000000001"[::-1]) + ".bl.mxg.test"
        assert q(v6) == (NOERROR, 1)
        assert q("10.0.0.127.in-addr.arpa", 12) == (NOERROR, 1)  # PTR
        assert q("12.0.0.127.in-addr.arpa", 12)[0] == NXDOMAIN  # no PTR
        assert q("good.mxg.test") == (NOERROR, 1)
        assert q("zone.invalid")[0] == REFUSED  # not served here
        pid = ns.proc.pid
    finally:
        ns.stop()
    assert not os.path.exists("/proc/%d" % pid) or \
        open("/proc/%d/stat" % pid).read().split()[2] == "Z"


def test_black_hole_never_answers():
    bh = dnsserver.BlackHole()
    try:
        assert dnsserver.query(bh.port, "2.0.0.127.bl.mxg.test", timeout=0.3) is None
    finally:
        bh.close()
