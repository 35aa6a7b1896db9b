#!/usr/bin/env python3
"""Prints `N passed, N failed` for one `meson test` run, counting Catch2 test cases.

Reads <builddir>/meson-logs/testlog.json (one JSON object per test). A Catch2 program
contributes the test cases of its own summary line; any other test (a script such as the
consumer test) counts as one. A program that fails although its Catch2 summary reports no
failed case (a crash after the summary, a sanitizer report at exit) adds one failure, so a
failed run never reads as clean. Exits 1 when anything failed. Plain python3, no packages.
"""
import json
import re
import sys
from pathlib import Path

ALL_PASSED = re.compile(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)")
CASES_LINE = re.compile(r"^test cases:\s*(\d+)(.*)$", re.MULTILINE)
FAILED = re.compile(r"\|\s*(\d+) failed(?! as expected)")
GOOD_RESULTS = {"OK", "EXPECTEDFAIL"}
NEUTRAL_RESULTS = {"SKIP"}


def catch2_counts(output):
    """(passed, failed) test cases from the last Catch2 summary in `output`, or None."""
    all_passed = ALL_PASSED.findall(output)
    cases_lines = CASES_LINE.findall(output)
    if cases_lines:
        total, rest = cases_lines[-1]
        failed = FAILED.search(rest)
        failed = int(failed.group(1)) if failed else 0
        return int(total) - failed, failed
    if all_passed:
        return int(all_passed[-1]), 0
    return None


def summarize(log_path):
    passed = failed = 0
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        result = entry.get("result", "ERROR")
        output = entry.get("stdout", "") + "\n" + entry.get("stderr", "")
        counts = catch2_counts(output)
        if counts is None:
            if result in GOOD_RESULTS:
                passed += 1
            elif result not in NEUTRAL_RESULTS:
                failed += 1
            continue
        case_passed, case_failed = counts
        if result not in GOOD_RESULTS | NEUTRAL_RESULTS and case_failed == 0:
            case_failed = 1
        passed += case_passed
        failed += case_failed
    return passed, failed


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_summary.py BUILDDIR")
    log_path = Path(sys.argv[1]) / "meson-logs" / "testlog.json"
    if not log_path.is_file():
        print(f"test_summary.py: {log_path} not found (did meson test run?)", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    passed, failed = summarize(log_path)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
