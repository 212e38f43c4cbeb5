# SPDX-License-Identifier: MIT
"""ARC (RFC 8617) and DKIM signing against ../shared/corpus:

- the ValiMail arc_test_suite validation cases through auth/arc's
  verifier, with each scenario's key records served by a real nsd
  (authdns.py): every expected cv;
- its signing cases through auth/arc's sealer (after our verifier has
  found the chain result): the exact AMS and AS tag values (timestamps and
  keys are fixed by the suite; RSA PKCS#1 v1.5 signatures are
  deterministic) and the AAR;
- mailauth (npm, installed by this test into the build directory, a
  reference only) on every validation case, on mailauth's own ARC
  fixtures, and on our DKIM signatures: our result must be mailauth's;
- DKIM signing: sign with rsa and ed25519, simple and relaxed, then verify
  with our verifier (tests/auth/dkim_eval) and with mailauth; the
  sign_then_verify cases of dkim/EXPECTED.dev.yml.

Skipped, saying so, when the corpus is absent; the mailauth comparisons
are skipped, saying so, when npm cannot install it."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import harness
from authdns import AuthDNS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus")
ARC = os.path.join(CORPUS, "arc")
DKIM = os.path.join(CORPUS, "dkim")

# The suite leaves cv empty for the two chains whose seal already says
# cv=fail; RFC 8617 5.2 step 2 makes such a chain "fail".
EMPTY_CV_MEANS = "fail"

# Where we deliberately differ from mailauth (4.13), by case name: the
# suite and RFC 6376 3.2 are with us, mailauth is lenient.
MAILAUTH_DEVIATIONS = {
    # "_=;" in the seal: a tag-name starts with a letter
    "as_format_inv_tag_key": "fail",
    # "S=dummy": tag names are case-sensitive, so s= is missing
    "as_format_tags_key_case": "fail",
}


def _build():
    return os.environ.get("MXG_BUILD", os.path.join(ROOT, "build"))


def _exe(name):
    exe = os.path.join(_build(), "tests", "unit", name)
    assert os.access(exe, os.X_OK), "%s is not built" % exe
    return exe


def _yaml_docs(name):
    if not os.path.isdir(ARC):
        raise harness.Skip("skipped: the shared corpus is absent (%s)" % os.path.normpath(ARC))
    try:
        import yaml
    except ImportError:
        raise harness.Skip("python3-yaml is not installed (scripts/bootstrap installs it)")
    with open(os.path.join(ARC, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _records(txt):
    recs = {}
    for name, v in (txt or {}).items():
        v = re.sub(r"\s*\n\s*", "", str(v)).strip()
        recs[name] = [("TXT", [v[i:i + 255] for i in range(0, len(v), 255)])]
    return recs


# ---- mailauth, the reference ---------------------------------------------------

MAILAUTH_JS = r"""
const fs = require('fs');
const { dkimVerify } = require('mailauth/lib/dkim/verify');
const { arc } = require('mailauth/lib/arc');
const recs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const resolver = async (name, type) => {
    const v = recs[name.toLowerCase()];
    if (type === 'TXT' && v) return v.map(s => [s]);
    const e = new Error('not found ' + name); e.code = 'ENOTFOUND'; throw e;
};
(async () => {
    const out = [];
    for (const file of process.argv.slice(3)) {
        const msg = fs.readFileSync(file);
        const d = await dkimVerify(msg, { resolver });
        const a = await arc(d.arc, { resolver });
        out.push({ arc: a.status.result,
                   dkim: (d.results || []).map(r => r.status.result) });
    }
    console.log(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
"""


def _mailauth_dir():
    """The folder holding node_modules/mailauth, installed on first use."""
    d = os.path.join(_build(), "mailauth")
    if os.path.isdir(os.path.join(d, "node_modules", "mailauth")):
        return d
    if not shutil.which("npm") or not shutil.which("node"):
        return None
    os.makedirs(d, exist_ok=True)
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "mailauth"],
                       cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    if r.returncode != 0:
        print("  npm install mailauth failed: %s" % r.stdout.decode(errors="replace")[-300:])
        return None
    return d


def _mailauth(records, files):
    """mailauth's [{arc, dkim: [...]}] for each file, DNS from records
    ({name: value})."""
    d = _mailauth_dir()
    if d is None:
        return None
    with tempfile.TemporaryDirectory() as t:
        js = os.path.join(d, "ref.js")
        with open(js, "w") as f:
            f.write(MAILAUTH_JS)
        rp = os.path.join(t, "recs.json")
        with open(rp, "w") as f:
            json.dump({k.lower(): [v] for k, v in records.items()}, f)
        out = subprocess.run(["node", js, rp] + files, cwd=d, stdout=subprocess.PIPE,
                             check=True, timeout=120).stdout
    return json.loads(out)


# ---- validation ---------------------------------------------------------------------


def _verify(exe, server, raw):
    with tempfile.NamedTemporaryFile() as t:
        t.write(raw)
        t.flush()
        out = subprocess.run([exe, "verify", server, t.name], stdout=subprocess.PIPE,
                             check=True, timeout=60).stdout.decode()
    return out.rstrip("\n").split("\t")


def test_validation_suite():
    docs = _yaml_docs("arc-draft-validation-tests.dev.yml")
    exe = _exe("arc_eval")
    passed, failures, ref_cmp, ref_diff, ref_none, ref_dev = 0, [], 0, [], False, 0
    for doc in docs:
        txt = doc.get("txt-records") or {}
        with AuthDNS(_records(txt)) as dns, tempfile.TemporaryDirectory() as tmp:
            names, files = [], []
            for name, case in doc["tests"].items():
                raw = (case.get("message") or "").encode("utf-8")
                want = (case.get("cv") or EMPTY_CV_MEANS).lower()
                got = _verify(exe, dns.server, raw)
                if got[0] == want:
                    passed += 1
                else:
                    failures.append("%s: want %s got %s" % (name, want, got))
                p = os.path.join(tmp, name + ".eml")
                with open(p, "wb") as f:
                    f.write(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
                names.append((name, got[0]))
                files.append(p)
            ref = None if ref_none else _mailauth(
                {k: re.sub(r"\s*\n\s*", "", str(v)) for k, v in txt.items()}, files)
            if ref is None:
                ref_none = True
                continue
            for (name, ours), theirs in zip(names, ref):
                ref_cmp += 1
                if name in MAILAUTH_DEVIATIONS and ours == MAILAUTH_DEVIATIONS[name]:
                    ref_dev += 1
                    continue
                if ours != theirs["arc"]:
                    ref_diff.append("%s: ours %s, mailauth %s" % (name, ours, theirs["arc"]))
    print("  validation: %d/%d cases give the expected cv" % (passed, passed + len(failures)))
    if ref_none:
        print("  mailauth comparison skipped: npm could not install mailauth")
    else:
        print("  same result as mailauth: %d/%d (%d deliberate deviations, listed)" %
              (ref_cmp - len(ref_diff) - ref_dev, ref_cmp, ref_dev))
    for f in failures + ref_diff:
        print("    FAIL " + f)
    assert not failures
    assert not ref_diff


def test_mailauth_fixtures():
    """mailauth's own ARC fixtures (real Google and Microsoft chains). Their
    keys are not in the corpus and this machine has no Internet, so both
    run against a DNS without them: the comparison is about parsing and
    structure (a broken chain is "fail" before any key is needed)."""
    _yaml_docs("arc-draft-validation-tests.dev.yml")
    exe = _exe("arc_eval")
    d = os.path.join(ARC, "mailauth")
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".eml"))
    with AuthDNS({"nothing.invalid": [("TXT", ["x"])]}) as dns:
        ours = []
        for p in files:
            with open(p, "rb") as f:
                ours.append(_verify(exe, dns.server, f.read()))
    ref = _mailauth({}, files)
    diffs = []
    for p, o, r in zip(files, ours, ref or [{}] * len(files)):
        print("    %s: ours %s (%s), mailauth %s" % (os.path.basename(p), o[0], o[3],
                                                     r.get("arc", "-")))
        if ref is not None and o[0] != r["arc"]:
            diffs.append(os.path.basename(p))
    if ref is None:
        print("  mailauth comparison skipped: npm could not install mailauth")
    assert not diffs, diffs


# ---- sealing ------------------------------------------------------------------------


def _aar_payload(msg, srv_id):
    """The suite's consolidation: every result of the Authentication-Results
    fields with our authserv-id, in order, "; "-joined (README.md)."""
    head = msg.split("\n\n", 1)[0]
    fields = re.split(r"\n(?=\S)", head)
    results = []
    for f in fields:
        name, _, val = f.partition(":")
        if name.strip().lower() != "authentication-results":
            continue
        val = re.sub(r"\s+", " ", val).strip()
        parts = [p.strip() for p in val.split(";")]
        if parts[0] != srv_id:
            continue
        results += [p for p in parts[1:] if p]
    return ";\r\n\t".join(results)


def _nows(s):
    return re.sub(r"\s+", "", s or "")


def _tags(field_value):
    return dict(p.split("=", 1) for p in _nows(field_value).split(";") if p)


def test_sign_suite():
    docs = _yaml_docs("arc-draft-sign-tests.yml")
    exe = _exe("arc_eval")
    passed, failures = 0, []
    for doc in docs:
        with AuthDNS(_records(doc.get("txt-records"))) as dns, \
                tempfile.TemporaryDirectory() as tmp:
            key = os.path.join(tmp, "key.pem")
            with open(key, "w") as f:
                f.write(doc["privatekey"])
            for name, case in doc["tests"].items():
                msg = case["message"]
                arp = os.path.join(tmp, "ar")
                with open(arp, "w") as f:
                    f.write(_aar_payload(msg, case["srv-id"]))
                mp = os.path.join(tmp, "msg")
                with open(mp, "wb") as f:
                    f.write(msg.encode())
                out = subprocess.run([exe, "seal", dns.server, key, doc["domain"], doc["sel"],
                                      case["srv-id"], arp, str(case["t"]), mp, case["sig-headers"],
                                      "nofold"],
                                     stdout=subprocess.PIPE, check=True,
                                     timeout=60).stdout.decode()
                chain, _, fields = out.partition("\n")
                got = {}
                for ln in re.split(r"\r\n(?=\S)", fields):
                    n, _, v = ln.partition(": ")
                    got[n] = v
                problems = []
                if not case.get("AS"):
                    if got.get("ARC-Seal"):
                        problems.append("sealed a chain that must not be")
                else:
                    # h= of the suite's AMS names its sig-headers; ours names
                    # the present fields of those
                    for kind, field in (("AS", "ARC-Seal"), ("AMS", "ARC-Message-Signature")):
                        want, have = _tags(case[kind]), _tags(got.get(field))
                        if want != have:
                            problems.append("%s: want %s got %s" % (kind, case[kind].strip(),
                                                                     got.get(field)))
                    want = re.sub(r"\s+", " ", case["AAR"]).strip()
                    have = re.sub(r"\s+", " ", got.get("ARC-Authentication-Results", "")).strip()
                    if want != have:
                        problems.append("AAR: want %r got %r" % (want, have))
                if problems:
                    failures.append("%s (chain %s): %s" % (name, chain, "; ".join(problems)))
                else:
                    passed += 1
    print("  sign: %d/%d cases give the exact AAR, AMS and AS" % (passed, passed + len(failures)))
    for f in failures:
        print("    FAIL " + f)
    assert not failures


# ---- round trips: our signer and sealer, our verifier and mailauth ---------------

def _keygen(exe, kind):
    out = subprocess.run([exe, "keygen", kind], stdout=subprocess.PIPE, check=True,
                         timeout=60).stdout.decode()
    pem, _, txt = out.rpartition("-----\n")
    return pem + "-----\n", txt.strip()


SAMPLE = (b"From: Joe SixPack <joe@football.example.com>\r\n"
          b"To: Suzie Q <suzie@shopping.example.net>\r\n"
          b"Subject: Is dinner ready?\r\n"
          b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
          b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
          b"\r\n"
          b"Hi.\r\n\r\nWe lost the game.   Are you hungry yet?\r\n\r\nJoe.\r\n\r\n\r\n")


def _dkim_verify(server, raw):
    with tempfile.NamedTemporaryFile() as t:
        t.write(raw)
        t.flush()
        out = subprocess.run([_exe("dkim_eval"), "verify", server, "0", t.name],
                             stdout=subprocess.PIPE, check=True, timeout=60).stdout.decode()
    return [ln.split("\t") for ln in out.rstrip("\n").split("\n")]


def test_dkim_sign_roundtrip():
    """Sign with rsa-2048 and ed25519, every canonicalization, then verify
    with our verifier and with mailauth; an altered copy must fail both."""
    if not os.path.isdir(DKIM):
        raise harness.Skip("skipped: the shared corpus is absent (%s)" % os.path.normpath(DKIM))
    exe = _exe("arc_eval")
    keys = {kind: _keygen(exe, kind) for kind in ("rsa", "ed25519")}
    records = {"%s._domainkey.football.example.com" % k: txt for k, (_, txt) in keys.items()}
    msgs, want, failures = [], [], []
    with tempfile.TemporaryDirectory() as tmp, AuthDNS(_records(records)) as dns:
        for kind, (pem, _) in keys.items():
            kp = os.path.join(tmp, kind + ".pem")
            with open(kp, "w") as f:
                f.write(pem)
            for canon in ("simple/simple", "simple/relaxed", "relaxed/simple", "relaxed/relaxed"):
                mp = os.path.join(tmp, "m")
                with open(mp, "wb") as f:
                    f.write(SAMPLE)
                sig = subprocess.run([exe, "sign", kp, "football.example.com", kind, canon,
                                      "1700000000", mp], stdout=subprocess.PIPE, check=True,
                                     timeout=60).stdout
                for altered in (False, True):
                    raw = sig + (SAMPLE.replace(b"lost", b"won") if altered else SAMPLE)
                    got = _dkim_verify(dns.server, raw)
                    exp = "fail" if altered else "pass"
                    if [g[0] for g in got] != [exp]:
                        failures.append("%s %s altered=%s: ours %s" % (kind, canon, altered, got))
                    p = os.path.join(tmp, "%s-%s-%d.eml" % (kind, canon.replace("/", "-"),
                                                            altered))
                    with open(p, "wb") as f:
                        f.write(raw)
                    msgs.append(p)
                    want.append(exp)
        ref = _mailauth(records, msgs)
    if ref is None:
        print("  mailauth comparison skipped: npm could not install mailauth")
    else:
        for p, w, r in zip(msgs, want, ref):
            # mailauth calls a body hash mismatch "neutral"; we say "fail"
            # (RFC 6376 6.1.3: the signature does not verify)
            if w == "fail" and r["dkim"] == ["neutral"]:
                continue
            if r["dkim"] != [w]:
                failures.append("%s: mailauth says %s" % (os.path.basename(p), r["dkim"]))
    print("  sign then verify: %d signatures (rsa-2048, ed25519 x 4 canonicalizations, "
          "intact and altered), %d failures" % (len(msgs), len(failures)))
    for f in failures:
        print("    FAIL " + f)
    assert not failures


def test_dkim_sign_expected():
    """dkim/EXPECTED.dev.yml sign_then_verify: the dkimpy keys, their key
    records, and the mutations that must break (or not) the signature."""
    if not os.path.isdir(DKIM):
        raise harness.Skip("skipped: the shared corpus is absent (%s)" % os.path.normpath(DKIM))
    import yaml
    with open(os.path.join(DKIM, "EXPECTED.dev.yml")) as f:
        stv = yaml.safe_load(f)["sign_then_verify"]
    exe = _exe("arc_eval")
    name = "test._domainkey.example.com"
    passed, failures, notrun = 0, [], []
    with tempfile.TemporaryDirectory() as tmp:
        mp = os.path.join(tmp, "m")
        msg = SAMPLE.replace(b"football.example.com", b"example.com")
        with open(mp, "wb") as f:
            f.write(msg)
        sig = subprocess.run([exe, "sign", os.path.join(DKIM, stv["key_rsa"]), "example.com",
                              "test", "relaxed/simple", "1700000000", mp],
                             stdout=subprocess.PIPE, check=True, timeout=60).stdout
        with open(os.path.join(DKIM, "dkimpy", "test.txt")) as f:
            good = f.read().strip()
        for case in stv["cases"]:
            raw, rec = sig + msg, good
            if "txt" in case:
                with open(os.path.join(DKIM, case["txt"])) as f:
                    rec = f.read().strip()
            elif case.get("mutation", "").startswith("append 'foo'"):
                raw = raw + b"foo\r\n"
            elif case.get("mutation", "").startswith("add a second From"):
                raw = raw.replace(b"From: ", b"From: Eve <eve@evil.example>\r\nFrom: ", 1)
            elif case.get("mutation", "").startswith("d= contains"):
                raw = raw.replace(b"d=example.com", b"d=example.net\xe9", 1)
            elif "message" in case:
                with open(os.path.join(DKIM, case["message"]), "rb") as f:
                    src = f.read()
                p = os.path.join(tmp, "nofrom")
                with open(p, "wb") as f:
                    f.write(src)
                r = subprocess.run([exe, "sign", os.path.join(DKIM, stv["key_rsa"]),
                                    "example.com", "test", "relaxed/simple", "1700000000", p],
                                   stdout=subprocess.PIPE, timeout=60)
                if r.returncode != 0 and not r.stdout:
                    passed += 1
                else:
                    failures.append("signed a message without From")
                continue
            else:
                notrun.append(case.get("mutation") or str(case))
                continue
            with AuthDNS(_records({name: rec})) as dns:
                got = _dkim_verify(dns.server, raw)
            ok = [g[0] for g in got] == ["pass"] if case["expect"] == "pass" else \
                all(g[0] != "pass" for g in got)
            if ok:
                passed += 1
            else:
                failures.append("%s: want %s got %s" % (case.get("txt") or case.get("mutation"),
                                                         case["expect"], got))
    print("  sign_then_verify: %d/%d as expected" % (passed, passed + len(failures)))
    for n in notrun:
        print("  not run: %s (we sign no l=)" % n)
    for f in failures:
        print("    FAIL " + f)
    assert not failures


def test_seal_roundtrip():
    """Seal three hops (rsa-2048 keys; folded as in production) over a
    DKIM-signed message: after each hop our verifier and mailauth both say
    pass; a body altered after the last seal makes both say fail."""
    if not os.path.isdir(ARC):
        raise harness.Skip("skipped: the shared corpus is absent (%s)" % os.path.normpath(ARC))
    exe = _exe("arc_eval")
    hops = [("rsa", "hop1.example"), ("rsa", "hop2.example"), ("rsa", "hop3.example")]
    keys = {d: (kind,) + _keygen(exe, kind) for kind, d in hops}
    records = {"sel._domainkey.%s" % d: txt for d, (_, _, txt) in keys.items()}
    failures, files, want = [], [], []
    raw = SAMPLE
    with tempfile.TemporaryDirectory() as tmp, AuthDNS(_records(records)) as dns:
        for i, (kind, d) in enumerate(hops, 1):
            kp = os.path.join(tmp, d + ".pem")
            with open(kp, "w") as f:
                f.write(keys[d][1])
            mp, arp = os.path.join(tmp, "m"), os.path.join(tmp, "ar")
            with open(mp, "wb") as f:
                f.write(raw)
            chain = _verify(exe, dns.server, raw)[0]
            with open(arp, "w") as f:
                f.write("arc=%s;\r\n\tspf=pass smtp.mailfrom=football.example.com" % chain)
            out = subprocess.run([exe, "seal", dns.server, kp, d, "sel", "mx." + d, arp,
                                  str(1700000000 + i), mp, "-"], stdout=subprocess.PIPE,
                                 check=True, timeout=60).stdout
            fields = out.partition(b"\n")[2]
            if not fields.startswith(b"ARC-Seal: "):
                failures.append("hop %d: nothing sealed (%r)" % (i, out[:200]))
                break
            raw = fields + raw
            got = _verify(exe, dns.server, raw)
            if got[:2] != ["pass", str(i)]:
                failures.append("hop %d: ours %s" % (i, got))
            p = os.path.join(tmp, "hop%d.eml" % i)
            with open(p, "wb") as f:
                f.write(raw)
            files.append(p)
            want.append("pass")
        bad = raw.replace(b"lost", b"won")
        got = _verify(exe, dns.server, bad)
        if got[0] != "fail":
            failures.append("altered: ours %s" % got)
        p = os.path.join(tmp, "altered.eml")
        with open(p, "wb") as f:
            f.write(bad)
        files.append(p)
        want.append("fail")
        ref = _mailauth(records, files)
    if ref is None:
        print("  mailauth comparison skipped: npm could not install mailauth")
    else:
        for p, w, r in zip(files, want, ref):
            if r["arc"] != w:
                failures.append("%s: mailauth says %s" % (os.path.basename(p), r["arc"]))
    print("  seal round trip: %d messages, %d failures" % (len(files), len(failures)))
    for f in failures:
        print("    FAIL " + f)
    assert not failures
