#!/usr/bin/env python3
"""Pre-sign WhatsApp webhooks for bench/ingest/run.

  gen.py TEMPLATE.json SECRET COUNT OUTDIR

Every body is the compact JSON of TEMPLATE with the message id replaced by
wamid.BENCH<n> (n = 0..COUNT-1); only the id differs, so OUTDIR gets
  prefix, suffix  the body is prefix + "wamid.BENCH" + str(n) + suffix
  sigs            COUNT lines of 64 hex chars + "\\n" (fixed 65-byte records),
                  line n = HMAC-SHA256(SECRET, body n)
which keeps the file small (65 B per request) and lets each wrk thread seek to
its own slice.
"""
import hashlib
import hmac
import json
import os
import sys

template, secret, count, outdir = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
with open(template) as f:
    doc = json.load(f)
marker = "@@ID@@"
doc["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = marker
compact = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
prefix, suffix = compact.split('"' + marker + '"')
prefix = (prefix + '"wamid.BENCH').encode()
suffix = ('"' + suffix).encode()
with open(os.path.join(outdir, "prefix"), "wb") as f:
    f.write(prefix)
with open(os.path.join(outdir, "suffix"), "wb") as f:
    f.write(suffix)
base = hmac.new(secret, prefix, hashlib.sha256)
out = bytearray()
with open(os.path.join(outdir, "sigs"), "wb") as f:
    for n in range(count):
        h = base.copy()
        h.update(b"%d" % n)
        h.update(suffix)
        out += h.hexdigest().encode() + b"\n"
        if len(out) >= 1 << 20:
            f.write(out)
            out.clear()
    f.write(out)
