"""Signed-result verification cost, in a fresh process.

`python -m bench.result_verify_worker ROUNDS`, or `loop SECONDS` (the check again
and again, after printing "ready": what `bench.run --profile` samples when the row
misses):

A 2-page result signed by a throwaway agency certificate (root, intermediate, leaf,
a CRL: the test PKI of tests/documents/pki.py), verified the way the public API
does (`dossiers.result_signatures.read_signature`: parse, hash, CMS signature,
chain to the trust root, CRL, coverage, signing time), against reading the same
file with pypdf (parse and extract the text of both pages). CPU time medians;
prints JSON.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import django


def main() -> None:
    looping = len(sys.argv) > 2 and sys.argv[1] == "loop"
    rounds = 0 if looping else int(sys.argv[1]) if len(sys.argv) > 1 else 9
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.conf import settings
    from pypdf import PdfReader

    from dossiers.result_signatures import read_signature
    from tests.documents.pki import build_pki, make_pdf, sign_with

    pki = build_pki()
    paths = pki.write(Path(tempfile.mkdtemp(prefix="bench-pki-")))
    settings.RESULT_TRUST_ROOTS_FILE = str(paths["roots"])
    settings.RESULT_INTERMEDIATES_FILE = str(paths["intermediates"])
    settings.RESULT_CRL_FILES = [str(paths["crl"])]
    data = sign_with(pki, "agency", make_pdf(pages=2))

    def verify() -> None:
        read_signature(data)

    def read() -> None:
        reader = PdfReader(io.BytesIO(data))
        for page in reader.pages:
            page.extract_text()

    verify()
    read()  # warm-up: imports, parsers
    if looping:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        deadline = time.monotonic() + float(sys.argv[2])
        while time.monotonic() < deadline:
            verify()
        return
    cpu: dict[str, list[float]] = {"verify": [], "read": []}
    for _ in range(rounds):
        for name, function in (("verify", verify), ("read", read)):
            start = time.process_time()
            function()
            cpu[name].append((time.process_time() - start) * 1000)
    report = {
        "file_bytes": len(data),
        "verify": {"cpu_ms": statistics.median(cpu["verify"])},
        "read": {"cpu_ms": statistics.median(cpu["read"])},
    }
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
