# SPDX-License-Identifier: MIT
"""The DMARC verification cases of ../shared/corpus/dmarc
(mailauth-dmarc-cases.dev.json: postalsys/mailauth's passing tests, with
the DNS answers its verifier got), run through auth/dmarc: each case's DNS
is served by a real nsd (authdns.py; a time-out is a dropped query), the
case is checked by the C driver build/tests/unit/dmarc_eval, and the
result, the policy and the From domain must be mailauth's. Skipped, saying
so, when the corpus is absent."""
import json
import os
import subprocess

import harness
from authdns import AuthDNS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = os.path.join(ROOT, "..", "shared", "corpus", "dmarc", "mailauth-dmarc-cases.dev.json")

# Where we deliberately differ from mailauth, by test name: what we say.
DEVIATIONS = {
    # mailauth's API takes a bare domain as headerFrom; a From field
    # without an addr-spec is unusable (RFC 5322 3.4, RFC 7489 6.6.1)
    "DMARC Verify Tests Edge cases Should handle headerFrom without @ symbol": "permerror",
}


def _driver():
    exe = os.path.join(os.environ.get("MXG_BUILD", os.path.join(ROOT, "build")),
                       "tests", "unit", "dmarc_eval")
    if not os.access(exe, os.X_OK):
        raise AssertionError("%s is not built" % exe)
    return exe


def _dom(x):
    return x["domain"] if isinstance(x, dict) else x


def _records(dns):
    out = {}
    for q in dns:
        rrs = out.setdefault(q["name"], [])
        if q.get("error") and q["error"] not in ("ENOTFOUND", "ENODATA"):
            rrs.append(("TIMEOUT", None))
        for rec in q.get("answer") or []:
            rrs.append((q["type"], rec))
    return out


def run_case(exe, case):
    inp = case["input"]
    hf = inp["headerFrom"]
    from_value = ", ".join(hf) if isinstance(hf, list) else hf
    spf = [_dom(x) for x in inp.get("spfDomains") or []]
    dkim = [_dom(x) for x in inp.get("dkimDomains") or []]
    line = "%s\t%s\t%s\n" % (from_value, spf[0] if spf else "", ",".join(dkim))
    with AuthDNS(_records(case["dns"])) as dns:
        p = subprocess.run([exe, dns.server, "700"], input=line.encode(),
                           stdout=subprocess.PIPE, timeout=60)
    return (p.stdout.decode().split("\n")[0].split("\t") + [""] * 9)[:9]


def want_of(case):
    out = case["output"]
    if out is False:  # mailauth refuses the input: several From addresses
        return "permerror", None
    pol = out.get("policy")
    return out["status"]["result"], pol


def test_mailauth_cases():
    if not os.path.exists(CASES):
        raise harness.Skip("skipped: the shared corpus is absent (%s)" % os.path.normpath(CASES))
    with open(CASES) as f:
        cases = json.load(f)["cases"]
    exe = _driver()
    passed, failures, deviated = 0, [], 0
    for c in cases:
        got = run_case(exe, c)
        want_res, want_pol = want_of(c)
        if c["test"] in DEVIATIONS:
            want_res, want_pol = DEVIATIONS[c["test"]], None
            deviated += 1
        ok = got[0] == want_res
        if ok and want_res in ("pass", "fail"):
            ok = got[1] == want_pol and got[4] == c["output"]["domain"]
            al = c["output"].get("alignment") or {}
            ok = ok and got[5] == (al.get("spf") or {}).get("result", "")
            ok = ok and got[6] == (al.get("dkim") or {}).get("result", "")
        if ok:
            passed += 1
        else:
            failures.append("%s: want %s/%s, got %s" % (c["test"], want_res, want_pol, got))
    print("  mailauth-dmarc-cases: %d/%d cases pass (%d deliberate deviation)" %
          (passed, len(cases), deviated))
    for f in failures:
        print("    FAIL " + f)
    assert not failures, "%d of %d cases failed" % (len(failures), len(cases))
    assert passed == 35, passed


# Our own cases: discovery rules, sp=, pct= sampling (the driver's draw),
# the p=none fallback of RFC 7489 6.6.3 step 6, DNS failure.
POLICY_DNS = {
    "_dmarc.example.org": [("TXT", "v=DMARC1; p=reject; sp=quarantine; pct=50; "
                                   "rua=mailto:agg@example.org")],
    "_dmarc.multi.example": [("TXT", "v=DMARC1; p=reject"), ("TXT", "v=DMARC1; p=none")],
    "_dmarc.bad.example": [("TXT", "v=DMARC1; p=reject; pct=abc")],
    "_dmarc.nop.example": [("TXT", "v=DMARC1; rua=mailto:x@nop.example")],
    "_dmarc.a.other.example": [("TXT", "hello"), ("TXT", "v=spf1 -all")],
    "_dmarc.other.example": [("TXT", "v=DMARC1; p=reject; sp=none")],
    "_dmarc.own.other.example": [("TXT", "v=DMARC1; p=quarantine; sp=none")],
    "_dmarc.temp.example": [("TIMEOUT", None)],
}
# (From, SPF pass domain, DKIM pass d=): {draw: (result, policy, disposition)}
POLICY_CASES = [
    ("a@example.org", "", "", {10: ("fail", "reject", "reject"),
                               70: ("fail", "reject", "quarantine")}),
    ("a@sub.example.org", "", "", {10: ("fail", "quarantine", "quarantine"),
                                   70: ("fail", "quarantine", "none")}),
    ("a@example.org", "bounce.example.org", "", {10: ("pass", "reject", "none")}),
    ("a@example.org", "", "example.net,mail.example.org", {10: ("pass", "reject", "none")}),
    ("a@multi.example", "", "", {10: ("none", "unset", "unset")}),
    ("a@bad.example", "", "", {10: ("none", "unset", "unset")}),
    ("a@nop.example", "", "", {10: ("fail", "none", "none")}),
    ("a@a.other.example", "", "", {10: ("fail", "none", "none")}),
    ("a@own.other.example", "", "", {10: ("fail", "quarantine", "quarantine")}),
    ("a@temp.example", "", "", {10: ("temperror", "unset", "unset")}),
    ("a@nowhere.example", "", "nowhere.example", {10: ("none", "unset", "unset")}),
]


def test_policy_cases():
    exe = _driver()
    failures, n = [], 0
    with AuthDNS(POLICY_DNS) as dns:
        for draw in (10, 70):
            rows = [c for c in POLICY_CASES if draw in c[3]]
            lines = "".join("%s\t%s\t%s\n" % c[:3] for c in rows)
            p = subprocess.run([exe, dns.server, "700", str(draw)], input=lines.encode(),
                               stdout=subprocess.PIPE, timeout=60)
            outs = p.stdout.decode().split("\n")
            for c, out in zip(rows, outs):
                n += 1
                got = tuple(out.split("\t")[:3])
                if got != c[3][draw]:
                    failures.append("%s (draw %d): want %s, got %s" % (c[0], draw, c[3][draw],
                                                                       out))
    print("  policy cases: %d/%d pass" % (n - len(failures), n))
    for f in failures:
        print("    FAIL " + f)
    assert n == 13 and not failures
