#!/usr/bin/env python3
"""Summarise the TRX files that `dotnet test --logger trx` wrote: every failed test with its full name
(class, fixture arguments, method and case arguments) and its message, then one summary line.
Usage: test-results.py RESULTS_DIR   (exit 0; scripts/test decides the status)"""
import glob
import sys
import xml.etree.ElementTree as ET

NS = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
MESSAGE_LINES = 12


def results(path):
    root = ET.parse(path).getroot()
    tests = {u.get("id"): u.find("t:TestMethod", NS) for u in root.iterfind(".//t:UnitTest", NS)}
    for r in root.iterfind(".//t:UnitTestResult", NS):
        method = tests.get(r.get("testId"))
        cls = method.get("className") if method is not None else "?"
        name = f"{cls}.{r.get('testName')}"
        message = r.find(".//t:ErrorInfo/t:Message", NS)
        text = (message.text or "").strip() if message is not None else ""
        yield r.get("outcome"), name, text


def main():
    files = sorted(glob.glob(f"{sys.argv[1]}/**/*.trx", recursive=True))
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failures, skipped = [], []
    for f in files:
        for outcome, name, text in results(f):
            if outcome == "Passed":
                counts["passed"] += 1
            elif outcome in ("NotExecuted", "Inconclusive", "Pending"):
                counts["skipped"] += 1
                skipped.append((name, text))
            else:
                counts["failed"] += 1
                failures.append((name, text))
    for name, text in skipped:
        print(f"skipped: {name}: {text.splitlines()[0] if text else 'no reason given'}")
    for name, text in failures:
        print(f"FAILED: {name}")
        lines = text.splitlines() or ["(no message)"]
        for line in lines[:MESSAGE_LINES]:
            print(f"    {line}")
        if len(lines) > MESSAGE_LINES:
            print(f"    ... ({len(lines) - MESSAGE_LINES} more lines in the TRX file)")
    print(f"tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped ({len(files)} test projects)")


if __name__ == "__main__":
    main()
