# SPDX-License-Identifier: MIT
"""The MIME engine through `mxguard scan`: third-party fixtures from
../shared/corpus (skipped, saying so, when the corpus is absent) and
hostile messages generated here (never committed as files)."""
import base64
import hashlib
import io
import json
import os
import random
import subprocess
import tempfile
import time
import zipfile

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus")
MXGUARD = os.path.join(harness.BUILD, "mxguard")


def scan(path=None, data=None, text=False, timeout=120):
    args = [MXGUARD, "scan", "--mime", path or "-"] + (["--text"] if text else [])
    r = subprocess.run(args, input=data, capture_output=True, timeout=timeout)
    assert r.returncode == 0, "scan failed (%d): %s" % (r.returncode, r.stderr[-2000:])
    return r.stdout.decode() if text else json.loads(r.stdout)


def corpus(*sub):
    d = os.path.join(CORPUS, *sub)
    if not os.path.isdir(d):
        raise harness.Skip("skipped: the shared corpus is absent (%s)" % os.path.normpath(d))
    return d


def walk(node):
    """Parts in document order, without recursion."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.get("parts", [])))


def findings(doc):
    return {f["name"] for f in doc["findings"]}


def test_mime_sa_corpus_parses():
    d = corpus("sa")
    n = 0
    for sub in ("ham", "spam"):
        for name in sorted(os.listdir(os.path.join(d, sub))):
            doc = scan(os.path.join(d, sub, name))
            assert doc["summary"]["parts"] >= 1, name
            n += 1
    assert n > 1000, n


def test_mime_fixtures_parse():
    d = corpus("mime")
    n = 0
    for dirpath, _, files in os.walk(d):
        for f in files:
            if f.endswith((".json", ".ref")) or f.startswith("LICENSE"):
                continue
            scan(os.path.join(dirpath, f))
            n += 1
    assert n > 50, n


def _ref_leaves(tree):
    out = []
    stack = [tree]
    while stack:
        t = stack.pop()
        if "parts" in t and t["content_type"].startswith("multipart/"):
            stack.extend(reversed(t["parts"]))
        elif "parts" in t:  # message/rfc822: CPython shows the inner tree
            stack.extend(reversed(t["parts"]))
        else:
            out.append(t)
    return out


def test_mime_cpython_reference():
    """Structure and base64-decoded content against CPython's parse (an
    opinion, not ground truth: the test requires agreement on most)."""
    ref = json.load(open(os.path.join(corpus("mime", "_reference"),
                                      "python-email-structure.dev.json")))
    checked = agreed = b64 = 0
    for rel, exp in ref["messages"].items():
        path = os.path.join(CORPUS, rel)
        if not os.path.exists(path) or "tree" not in exp:
            continue
        doc = scan(path)
        root = doc["parts"]
        checked += 1
        if len(root["headers"]) == exp.get("top_headers", len(root["headers"])) and \
                root["type"] == exp["tree"]["content_type"]:
            agreed += 1
        ours = [p for p in walk(root) if p["kind"] == "leaf"]
        for r in _ref_leaves(exp["tree"]):
            if r.get("cte") == "base64" and "decoded_sha256" in r:
                assert any(p["decoded_sha256"] == r["decoded_sha256"] for p in ours), \
                    "%s: no part decodes to %s" % (rel, r["decoded_sha256"])
                b64 += 1
    assert checked > 20, checked
    assert agreed >= checked * 0.9, "%d of %d agree" % (agreed, checked)


def test_mime_postfix_mime_state():
    """Postfix's mime_state traces: every header block it reports (MAIN,
    MULT, NEST) appears in our tree, in the same order."""
    d = corpus("mime", "postfix-mime_state")
    for name in ("mime_test", "mime_nest", "mime_cvt"):
        inp, ref = os.path.join(d, name + ".in"), os.path.join(d, name + ".ref")
        first_headers = []
        for line in open(ref, encoding="latin-1"):
            kind = line.split(" ", 1)[0]
            if kind in ("MAIN", "MULT", "NEST") and "|" in line:
                first_headers.append(line.split("|", 1)[1].split(":", 1)[0].strip().lower())
        doc = scan(inp)
        ours = []
        for p in walk(doc["parts"]):
            ours.extend(h["name"].strip().lower() for h in p["headers"])
        # ours holds every field; Postfix's trace lists each field once
        it = iter(ours)
        assert all(h in it for h in first_headers), (name, first_headers, ours)


def test_mime_tnef_and_encoders_exist():
    d = corpus("mime", "mimekit", "encoders")
    photo = open(os.path.join(d, "photo.jpg"), "rb").read()
    b64 = open(os.path.join(d, "photo.b64"), "rb").read()
    msg = (b"Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64)
    doc = scan(data=msg)
    assert doc["parts"]["decoded_sha256"] == hashlib.sha256(photo).hexdigest()
    uu = open(os.path.join(d, "photo.uu"), "rb").read()
    doc = scan(data=b"Subject: uu\r\n\r\n" + uu)
    leaves = [p for p in walk(doc["parts"]) if p["origin"] == "uuencode"]
    assert leaves and leaves[0]["decoded_sha256"] == hashlib.sha256(photo).hexdigest()
    qp = open(os.path.join(d, "wikipedia.qp"), "rb").read()
    txt = open(os.path.join(d, "wikipedia.txt"), "rb").read()
    doc = scan(data=b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp)
    assert doc["parts"]["decoded_sha256"] == hashlib.sha256(txt).hexdigest()



def test_mime_tnef_winmail():
    """MimeKit's rich-text.eml: a winmail.dat whose attachments (and the
    TNEF inside its embedded messages) come out as parts with the names
    and sizes of MimeKit's extracted files (tnef/christmas/)."""
    d = corpus("mime", "mimekit", "tnef")
    doc = scan(os.path.join(d, "rich-text.eml"))
    tnef = [p for p in walk(doc["parts"]) if p["origin"] == "tnef"]
    by_path = {}
    for p in tnef:
        by_path.setdefault(p["path"], []).append(p)
    kitten = by_path["2/winmail.dat/kitten-playing-with-a-christmas-tree.jpg"][0]
    exp = open(os.path.join(d, "christmas", "kitten-playing-with-a-christmas-tree.jpg"), "rb").read()
    assert kitten["size"] == len(exp) and kitten["detected"] == "image/jpeg"
    assert kitten["decoded_sha256"] == hashlib.sha256(exp).hexdigest()
    untitled = sorted(p["size"] for p in by_path["2/winmail.dat/Untitled Attachment"])
    assert untitled == [89, 89, 6508, 385301], untitled
    # an embedded message is TNEF again, unpacked one level further down
    assert "2/winmail.dat/Untitled Attachment/kitten-playing-with-a-christmas-tree.jpg" \
        in by_path
    assert "TNEF_CORRUPT" not in findings(doc)
    # a damaged winmail.dat is a finding, never a failed scan
    raw = open(os.path.join(d, "two-files.tnef"), "rb").read()
    msg = (b"Content-Type: application/ms-tnef; name=winmail.dat\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" +
           base64.encodebytes(raw[:len(raw) // 2]))
    doc = scan(data=msg)
    assert "TNEF_CORRUPT" in findings(doc)

# ---- hostile messages, generated ---------------------------------------

def test_mime_hostile_nesting():
    parts = ["Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i)
             for i in range(10000)]
    msg = "".join(parts) + "".join("--b%d--\n" % i for i in reversed(range(10000)))
    t0 = time.time()
    doc = scan(data=msg.encode())
    assert time.time() - t0 < 10
    assert "MIME_TOO_DEEP" in findings(doc)
    assert doc["summary"]["parts"] <= 41


def test_mime_hostile_small_cases():
    cases = {
        "unclosed": (b"Content-Type: multipart/mixed; boundary=x\n\n--x\n\nbody\n",
                     "MIME_BOUNDARY_UNCLOSED"),
        "nul": (b"Subject: a\0b\n\nx\0y\n", "MIME_NUL_BYTES"),
        "utf8": (b"Subject: \xff\xfe\xc3\x28 =?utf-8?q?=ff?=\nContent-Type: text/plain; "
                 b"charset=utf-8; name=\"\xe9\xff.txt\"\n\n\xf0\x28\x8c\x28\xed\xa0\x80\n",
                 "MIME_BAD_CHARSET"),
    }
    for name, (msg, want) in cases.items():
        doc = scan(data=msg)
        assert want in findings(doc), (name, doc["findings"])
    doc = scan(data=b"Subject: only headers\nFrom: x")
    assert "no_body" in doc["parts"]["flags"]
    assert len(doc["parts"]["headers"]) == 2
    out = scan(data=b"Subject: x\n\nbody\n", text=True)
    assert "text/plain" in out


def test_mime_hostile_base64_junk_100mb():
    rnd = random.Random(4)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/!*#\x00\xff="
    with tempfile.NamedTemporaryFile(prefix="mxg-b64junk-", suffix=".eml") as f:
        f.write(b"Content-Type: application/octet-stream\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n")
        chunk = bytes(rnd.choice(alphabet) for _ in range(1 << 20))
        line = b"\r\n".join(chunk[i:i + 76] for i in range(0, len(chunk), 76)) + b"\r\n"
        for _ in range(100):
            f.write(line)
        f.flush()
        t0 = time.time()
        doc = scan(f.name, timeout=300)
        took = time.time() - t0
    assert took < 60, took
    fs = findings(doc)
    assert "MIME_BAD_BASE64" in fs and "MIME_DECODED_LIMIT" in fs, fs
    assert doc["parts"]["decoded_size"] <= 64 * 1024 * 1024


def _zip_bomb():
    """42.zip-style: nested zips of highly compressible data."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", b"\0" * (50 * 1024 * 1024))
    data = inner.getvalue()
    for level in range(3):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for i in range(4):
                z.writestr("lib%d_%d.zip" % (level, i), data)
        data = buf.getvalue()
    return data


def test_mime_hostile_zip_bomb():
    data = _zip_bomb()
    msg = (b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
           b"Content-Type: application/zip; name=42.zip\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" +
           base64.encodebytes(data) + b"--z--\r\n")
    t0 = time.time()
    doc = scan(data=msg)
    assert time.time() - t0 < 60
    fs = findings(doc)
    if not any(p.get("origin") == "archive" for p in walk(doc["parts"])):
        raise harness.Skip("archive inspection not built into this engine yet")
    assert fs & {"ARCHIVE_BOMB", "ARCHIVE_TOO_DEEP", "MIME_DECODED_LIMIT"}, fs


def test_mime_archive_members_and_macros():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("invoice.exe", b"MZ" + b"\0" * 200)
        z.writestr("word/vbaProject.bin", b"x")
    msg = (b"Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\nhi\n"
           b"--z\nContent-Type: application/pdf; name=archive.zip\n"
           b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(buf.getvalue()) +
           b"--z--\n")
    doc = scan(data=msg)
    parts = {p["path"]: p for p in walk(doc["parts"])}
    assert parts["2"]["detected"] == "application/zip", parts["2"]
    exe = parts["2/archive.zip/invoice.exe"]
    assert exe["detected"] == "application/x-dosexec" and exe["origin"] == "archive"
    assert "OFFICE_MACROS" in findings(doc)
