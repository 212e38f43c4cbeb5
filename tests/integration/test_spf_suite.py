# SPDX-License-Identifier: MIT
"""The RFC 7208 SPF test suite (and pyspf's extra cases) from
../shared/corpus/spf, run through auth/spf: each scenario's zone data is
served by a real nsd (authdns.py), every case is evaluated by the C driver
build/tests/unit/spf_eval, and its result must be the expected one (any of
them when the suite lists several). Skipped, saying so, when the corpus is
absent."""
import os
import subprocess

import harness
from authdns import AuthDNS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus")
SPF = os.path.join(CORPUS, "spf")


def _yaml():
    try:
        import yaml
    except ImportError:
        raise harness.Skip("python3-yaml is not installed (scripts/bootstrap installs it)")
    return yaml


def _load(path):
    if not os.path.isdir(SPF):
        raise harness.Skip("skipped: the shared corpus is absent (%s)" % os.path.normpath(SPF))
    yaml = _yaml()
    with open(path, "rb") as f:
        # the suite holds raw bytes (non-ASCII records); latin-1 keeps them
        return [d for d in yaml.safe_load_all(f.read().decode("latin-1")) if d]


def records_of(zonedata):
    """pyspf's reading of zonedata: SPF records are also published as TXT
    unless the name has a TXT entry (even "TXT: NONE"); NONE is no record."""
    out = {}
    for name, entries in (zonedata or {}).items():
        rrs, has_txt, gen = [], False, []
        for e in entries or []:
            if e == "TIMEOUT":
                rrs.append(("TIMEOUT", None))
                continue
            for t, v in e.items():
                if t == "TXT":
                    has_txt = True
                if v == "NONE":
                    continue
                if t == "SPF":
                    gen.append(("TXT", v))
                rrs.append((t, v))
        if not has_txt:
            rrs += gen
        out[str(name)] = rrs
    return out


def _driver():
    exe = os.path.join(os.environ.get("MXG_BUILD", os.path.join(ROOT, "build")),
                       "tests", "unit", "spf_eval")
    if not os.access(exe, os.X_OK):
        raise AssertionError("%s is not built" % exe)
    return exe


def run_scenarios(docs, rfc_only=False):
    exe = _driver()
    passed, failures, skipped = 0, [], []
    for doc in docs:
        tests = doc.get("tests") or {}
        for n in list(tests):
            # pyspf's lax (0) and harsh (2) modes are not RFC 7208
            if rfc_only and tests[n].get("strict", 1) != 1:
                skipped.append(n)
                del tests[n]
        if not tests:
            continue
        with AuthDNS(records_of(doc.get("zonedata"))) as dns:
            names = list(tests)
            lines = "".join("%s\t%s\t%s\n" % (tests[n]["host"], tests[n].get("helo", ""),
                                              tests[n].get("mailfrom", "")) for n in names)
            p = subprocess.run([exe, dns.server, "700"], input=lines.encode("latin-1"),
                               stdout=subprocess.PIPE, timeout=300)
            outs = p.stdout.decode("latin-1").split("\n")
        for n, out in zip(names, outs):
            t = tests[n]
            want = t["result"] if isinstance(t["result"], list) else [t["result"]]
            f = out.split("\t") + ["", "", "", ""]
            ok = f[0] in want
            exp = t.get("explanation")
            if ok and exp and exp != "DEFAULT" and f[0] == "fail":
                ok = f[2].lower() == str(exp).lower()
            if ok:
                passed += 1
            else:
                failures.append("%s: want %s%s, got %s (mech %r, exp %r, %s)" % (
                    n, "/".join(want), " exp %r" % exp if exp else "", f[0], f[1], f[2], f[3]))
    return passed, failures, skipped


def _check(path, rfc_only=False):
    docs = _load(path)
    passed, failures, skipped = run_scenarios(docs, rfc_only)
    total = passed + len(failures)
    print("  %s: %d/%d cases pass" % (os.path.basename(path), passed, total))
    if skipped:
        print("  not run (pyspf lax/harsh mode, not RFC 7208): %s" % ", ".join(skipped))
    for f in failures:
        print("    FAIL " + f)
    assert not failures, "%d of %d cases failed" % (len(failures), total)


def test_rfc7208_suite():
    _check(os.path.join(SPF, "rfc7208-tests.dev.yml"))


def test_pyspf_extra():
    _check(os.path.join(SPF, "pyspf-extra", "test.yml"), rfc_only=True)
