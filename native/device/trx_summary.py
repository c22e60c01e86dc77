#!/usr/bin/env python3
"""Summarises TRX test reports for the device run: counts, then failed and skipped tests with the first
line of their message. Usage: trx_summary.py counts|details FILE.trx..."""
import sys
import xml.etree.ElementTree as ET

NS = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
FAILED = {"Failed", "Error", "Timeout", "Aborted"}
SKIPPED = {"NotExecuted", "Inconclusive", "Skipped"}


def results(path):
    root = ET.parse(path).getroot()
    classes = {}
    for test in root.iterfind(".//t:TestDefinitions/t:UnitTest", NS):
        method = test.find("t:TestMethod", NS)
        if method is not None:
            classes[test.get("id")] = method.get("className", "").rsplit(".", 1)[-1]
    for r in root.iterfind(".//t:Results/t:UnitTestResult", NS):
        message = r.findtext("t:Output/t:ErrorInfo/t:Message", default="", namespaces=NS)
        first = next((line.strip() for line in message.splitlines() if line.strip()), "")
        cls = classes.get(r.get("testId"), "")
        yield (f"{cls}.{r.get('testName')}" if cls else r.get("testName")), r.get("outcome"), first


def main():
    mode, paths = sys.argv[1], sys.argv[2:]
    rows = [row for p in paths for row in results(p)]
    passed = sum(1 for _, o, _ in rows if o == "Passed")
    failed = [(n, m) for n, o, m in rows if o in FAILED]
    skipped = [(n, m) for n, o, m in rows if o in SKIPPED]
    if mode == "counts":
        print(f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped")
        return
    for name, message in failed[:40]:
        print(f"  FAILED  {name}: {message[:160]}")
    if len(failed) > 40:
        print(f"  ... and {len(failed) - 40} more failed (see the TRX)")
    # Skips on a GPU machine are suspicious: show each distinct reason once, with how many tests gave it.
    reasons = {}
    for name, message in skipped:
        reasons.setdefault(message, []).append(name)
    for message, names in list(reasons.items())[:8]:
        print(f"  SKIPPED {len(names)} x ({names[0]}{', ...' if len(names) > 1 else ''}): {message[:160]}")


if __name__ == "__main__":
    main()
