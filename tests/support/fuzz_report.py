"""Figures of a schemathesis run, from its JSON report and its HAR log of every exchange:
operations, test cases, requests, responses by status class, server errors, error responses
without the protocol's envelope, and the failures schemathesis itself found. Exits 1 when
there is any failure, server error or non-envelope error.

    python3 fuzz_report.py report.json requests.har
"""

import json
import sys
from collections import Counter


def is_envelope(text):
    """{error: non-empty string, message: non-empty string, details?: object}, nothing else."""
    try:
        body = json.loads(text or "")
    except ValueError:
        return False
    if not isinstance(body, dict) or set(body) - {"error", "message", "details"}:
        return False
    ok = all(isinstance(body.get(k), str) and body[k] for k in ("error", "message"))
    return ok and isinstance(body.get("details", {}), dict)


def main(report_path, har_path):
    with open(report_path) as f:
        report = json.load(f)
    with open(har_path) as f:
        entries = json.load(f)["log"]["entries"]

    classes = Counter()
    server_errors, bare_errors = [], []
    for e in entries:
        status = e["response"]["status"]
        classes[f"{status // 100}xx"] += 1
        where = f'{e["request"]["method"]} {e["request"]["url"]} -> {status}'
        if status >= 500:
            server_errors.append(where)
        if status >= 400 and not is_envelope(e["response"].get("content", {}).get("text")):
            bare_errors.append(where)

    ops, cases = report["operations"], report["test_cases"]
    failures = len(report["failures"]) + len(report["errors"])
    print(f"fuzz: {ops['tested']}/{ops['total']} operations, {cases['generated']} test cases, "
          f"{len(entries)} requests in {report['running_time']:.1f} s")
    print("fuzz: responses " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())))
    print(f"fuzz: server errors {len(server_errors)}, errors without the envelope {len(bare_errors)}, "
          f"schemathesis failures {failures}")
    for where in (server_errors + bare_errors)[:20]:
        print(f"fuzz:   {where}", file=sys.stderr)
    if ops["tested"] < ops["total"] or not entries:
        print("fuzz: not every operation was exercised", file=sys.stderr)
        return 1
    return 1 if failures or server_errors or bare_errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
