# SPDX-License-Identifier: MIT
"""The mxguard command line: tenancy management, errors, JSON output."""
import json

from harness import Daemon


def setup_module():
    return Daemon()  # the CLI works on the store; no daemon needs to run


def teardown_module(d):
    d.cleanup()


def test_domain_lifecycle(d):
    d.cli("domain", "add", "one.test", "--route", "10.0.0.1:25,[2001:db8::1]:2525")
    d.cli("domain", "add", "two.test", "--account", "acme")
    j = json.loads(d.cli("domain", "list", "--json").stdout)
    doms = {x["domain"]: x for x in j}
    assert set(doms) >= {"one.test", "two.test"}, j
    routes = json.dumps(doms["one.test"])
    assert "10.0.0.1" in routes and "2001:db8::1" in routes, routes
    assert "acme" in json.dumps(doms["two.test"])
    p = d.cli("domain", "add", "one.test", check=False)
    assert p.returncode == 1 and "exist" in p.stderr.lower(), p.stderr
    d.cli("domain", "remove", "two.test")
    assert "two.test" not in d.cli("domain", "list").stdout


def test_mailbox_alias_catchall(d):
    d.cli("mailbox", "add", "Alice@One.Test")
    out = d.cli("mailbox", "list", "one.test").stdout
    assert "one.test" in out and "lice@one.test" in out, out
    p = d.cli("mailbox", "add", "x@unknown.test", check=False)
    assert p.returncode == 1 and p.stderr.strip(), p.stderr
    d.cli("alias", "add", "info@one.test", "alice@one.test")
    assert "info@one.test" in d.cli("mailbox", "list", "one.test").stdout
    d.cli("domain", "catchall", "one.test", "alice@one.test")
    assert "alice@one.test" in d.cli("domain", "list").stdout.lower()
    d.cli("domain", "catchall", "one.test", "--clear")
    d.cli("alias", "remove", "info@one.test")
    d.cli("mailbox", "remove", "alice@one.test")
    assert "alice" not in d.cli("mailbox", "list", "one.test").stdout.lower()


def test_usage_and_bad_input(d):
    p = d.cli("frobnicate", check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    p = d.cli("domain", "add", "bad domain!", check=False)
    assert p.returncode in (1, 2) and p.stderr.strip()
    p = d.cli("domain", "add", "x.test", "--route", "nohostport", check=False)
    assert p.returncode in (1, 2) and p.stderr.strip()
    p = d.cli("queue", "show", "NOPE", check=False)
    assert p.returncode == 1


def test_config_check(d):
    assert d.cli("config", "check").returncode == 0
    with open(d.conf, "a") as f:
        f.write("[smtp]\nnonsense = 1\n")
    p = d.cli("config", "check", check=False)
    assert p.returncode == 1 and d.conf + ":" in p.stderr + p.stdout, p.stderr
