# SPDX-License-Identifier: MIT
"""mxguard relationships: list, add, trust, remove, expire on a real store;
addresses are folded (case, IDN) so every spelling names one pair."""
import json
import sqlite3
import time

from harness import Daemon


def setup_module():
    d = Daemon()  # the CLI works on the store; no daemon needs to run
    d.cli("domain", "add", "corp.test")
    d.cli("mailbox", "add", "alice@corp.test")
    d.cli("alias", "add", "sales@corp.test", "alice@corp.test")
    return d


def teardown_module(d):
    d.cleanup()


def pairs(d, mailbox):
    return {x["remote"]: x for x in json.loads(d.cli("relationships", "list", mailbox,
                                                     "--json").stdout)}


def test_add_and_list(d):
    assert "no relationships" in d.cli("relationships", "list", "alice@corp.test").stdout
    d.cli("relationships", "add", "alice@corp.test", "Bob@Vendor.Example")
    d.cli("relationships", "add", "ALICE@corp.test", "bob@vendor.example")
    # an alias counts for its mailbox
    d.cli("relationships", "add", "sales@corp.test", "bob@VENDOR.example")
    p = pairs(d, "alice@corp.test")
    assert set(p) == {"bob@vendor.example"}, p
    bob = p["bob@vendor.example"]
    assert bob["outbound"] == 3 and bob["inbound"] == 0, bob
    assert bob["mailbox"] == "alice@corp.test"
    assert abs(bob["last_seen"] - time.time()) < 120, bob
    assert bob["first_seen"] <= bob["last_seen"]
    out = d.cli("relationships", "list", "alice@corp.test").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["REMOTE", "SENT", "TRUSTED", "FIRST-SEEN", "LAST-SEEN"], out
    assert lines[1].split()[:3] == ["bob@vendor.example", "3", "0"], out


def test_trust_and_idn(d):
    d.cli("relationships", "trust", "alice@corp.test", "news@b\u00fccher.example")
    p = pairs(d, "alice@corp.test")
    assert "news@xn--bcher-kva.example" in p, p
    assert p["news@xn--bcher-kva.example"]["inbound"] == 1
    assert p["news@xn--bcher-kva.example"]["outbound"] == 0
    # the A-label spelling is the same pair
    d.cli("relationships", "add", "alice@corp.test", "NEWS@xn--bcher-kva.example")
    p = pairs(d, "alice@corp.test")
    assert p["news@xn--bcher-kva.example"]["outbound"] == 1, p
    assert len(p) == 2, p


def test_refusals(d):
    p = d.cli("relationships", "add", "nobody@corp.test", "x@vendor.example", check=False)
    assert p.returncode == 1 and "not a mailbox" in p.stderr, p.stderr
    p = d.cli("relationships", "add", "alice@elsewhere.example", "x@vendor.example", check=False)
    assert p.returncode == 1 and "not a mailbox" in p.stderr, p.stderr
    p = d.cli("relationships", "add", "alice@corp.test", "not-an-address", check=False)
    assert p.returncode == 1 and p.stderr.strip(), p.stderr
    p = d.cli("relationships", "add", "alice@corp.test", check=False)
    assert p.returncode == 2, p.stderr
    p = d.cli("relationships", "list", check=False)
    assert p.returncode == 2, p.stderr
    assert "x@vendor.example" not in pairs(d, "alice@corp.test")


def test_remove_and_expire(d):
    d.cli("relationships", "add", "alice@corp.test", "old@partner.example")
    d.cli("relationships", "remove", "alice@corp.test", "NEWS@xn--bcher-kva.example")
    p = d.cli("relationships", "remove", "alice@corp.test", "news@xn--bcher-kva.example",
              check=False)
    assert p.returncode == 1 and "no relationship" in p.stderr, p.stderr
    assert set(pairs(d, "alice@corp.test")) == {"bob@vendor.example", "old@partner.example"}
    # age one pair past relationships.expire (365 days by default)
    db = sqlite3.connect(d.db)
    with db:
        db.execute("UPDATE relationships SET last_seen = ?1 WHERE remote = 'old@partner.example'",
                   (int(time.time()) - 366 * 86400,))
    db.close()
    out = d.cli("relationships", "expire").stdout
    assert out.startswith("1 relationships expired"), out
    assert set(pairs(d, "alice@corp.test")) == {"bob@vendor.example"}
    assert d.cli("relationships", "expire").stdout.startswith("0 ")
    # a shorter expiry from the configuration
    with open(d.conf, "a") as f:
        f.write("[relationships]\nexpire = 30d\n")
    db = sqlite3.connect(d.db)
    with db:
        db.execute("UPDATE relationships SET last_seen = ?1", (int(time.time()) - 31 * 86400,))
    db.close()
    out = d.cli("relationships", "expire").stdout
    assert out.startswith("1 relationships expired (not seen for 30 days)"), out
    assert "no relationships" in d.cli("relationships", "list", "alice@corp.test").stdout
