# SPDX-License-Identifier: MIT
"""SpamAssassin-format rules: `mxguard rules check` over Debian's whole
rule set plus rules/spam (exact counts, so a parser regression shows),
a broken rule file (the rule is skipped with file:line) and an unreadable
one (refused)."""
import json
import os
import subprocess

from harness import BUILD, Daemon

DEBIAN_RULES = "/usr/share/spamassassin"


def setup_module():
    return Daemon(scan__sa_rules=DEBIAN_RULES)  # the CLI only reads the config


def teardown_module(d):
    d.cleanup()


def check(d, *extra, ok=True):
    # compiling Debian's whole set takes about 15 s, a minute under ASan:
    # longer than the harness allows a CLI call
    p = subprocess.run([os.path.join(BUILD, "mxguard"), "-c", d.conf, "rules", "check"]
                       + list(extra), capture_output=True, text=True, timeout=600)
    assert (p.returncode == 0) == ok, (p.returncode, p.stdout[-2000:], p.stderr)
    return p


def set_sa_rules(d, value):
    with open(d.conf) as f:
        lines = [ln for ln in f if not ln.startswith("sa_rules")]
    out = []
    for ln in lines:
        out.append(ln)
        if ln.strip() == "[scan]":
            out.append("sa_rules = %s\n" % value)
    with open(d.conf, "w") as f:
        f.writelines(out)


def test_debian_rule_set(d):
    if not os.path.exists(os.path.join(DEBIAN_RULES, "72_active.cf")):
        print("skipped: %s is not installed (apt-get install spamassassin)" % DEBIAN_RULES)
        return
    set_sa_rules(d, DEBIAN_RULES)
    j = json.loads(check(d, "--json").stdout)
    print("Debian set + rules/spam: loaded=%d skipped=%d compile_ms=%.0f regex=%s"
          % (j["loaded"], j["skipped"], j["compile_ms"], j["regex"]))
    # spamassassin 4.0.1-1~deb12u1 (61 files) plus rules/spam/50_mxguard.cf
    assert j["files"] == 62, j["files"]
    assert j["loaded"] == 2430 and j["skipped"] == 481, (j["loaded"], j["skipped"])
    reasons = {r["reason"]: r["count"] for r in j["skip_reasons"]}
    assert reasons["network test (tflags net)"] == 176, reasons
    assert reasons["pseudo-header X-Spam-Relays-External not implemented"] == 103, reasons
    assert reasons["eval:html_range not implemented"] == 21, reasons
    assert sum(reasons.values()) == j["skipped"]
    assert len(j["skipped_rules"]) == j["skipped"]
    assert all(":" in s["where"] for s in j["skipped_rules"])
    assert j["regex"]["exact"] + j["regex"]["prefilter"] > 1400, j["regex"]
    text = check(d).stdout
    assert "SpamAssassin rules: 2430 loaded, 481 skipped" in text, text[:500]
    assert "network test (tflags net)" in text


def test_broken_rule_is_skipped_with_file_line(d):
    bad = os.path.join(d.tmp, "broken.cf")
    with open(bad, "w") as f:
        f.write("body GOOD_RULE /fine/\n"
                "score GOOD_RULE 2\n"
                "body BROKEN_RULE /unclosed(group/\n"
                "meta META_OK GOOD_RULE && !BROKEN_RULE\n")
    set_sa_rules(d, bad)
    j = json.loads(check(d, "--json").stdout)
    # rules/spam is loaded too (11 rules)
    assert j["skipped"] == 1, j["skipped_rules"]
    s = j["skipped_rules"][0]
    assert s["rule"] == "BROKEN_RULE" and s["reason"] == "regex syntax error", s
    assert s["where"].startswith(bad + ":3:"), s
    assert j["loaded"] == 2 + 11, j["loaded"]
    text = check(d).stdout
    assert "BROKEN_RULE" in text and bad + ":3" in text, text


def test_unreadable_file_is_refused(d):
    set_sa_rules(d, os.path.join(d.tmp, "does-not-exist.cf"))
    p = check(d, ok=False)
    assert "does-not-exist.cf" in p.stderr, p.stderr
