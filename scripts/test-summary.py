#!/usr/bin/env python3
"""Sums the closing lines of the test runners in a `make test` log (ctest,
pytest, node's test runner) and prints them, then one plain total line
'N passed, N failed, N skipped'. Used by scripts/fresh-check.sh, whose test
output otherwise stays in its log file. Exit 1 when the log shows no test run."""
import re
import sys

CTEST = re.compile(r"^\d+% tests passed, (\d+) tests failed out of (\d+)")
PYTEST = re.compile(r"^=*\s*(?:(\d+) failed, )?(\d+) passed(?:, (\d+) skipped)?.* in [\d.]+s")
PYTEST_FAIL = re.compile(r"^=*\s*(\d+) failed(?:, (\d+) skipped)?.* in [\d.]+s")
NODE = re.compile(r"^(?:#|ℹ) (pass|fail|skipped) (\d+)$")


def main(path):
    passed = failed = skipped = 0
    shown = []
    node = {}
    with open(path, errors="replace") as f:
        for raw in f:
            line = raw.strip()
            m = CTEST.match(line)
            if m:
                failed += int(m.group(1))
                passed += int(m.group(2)) - int(m.group(1))
                shown.append(line)
                continue
            m = PYTEST.match(line)
            if m:
                failed += int(m.group(1) or 0)
                passed += int(m.group(2))
                skipped += int(m.group(3) or 0)
                shown.append(line.strip("= "))
                continue
            m = PYTEST_FAIL.match(line)
            if m:
                failed += int(m.group(1))
                skipped += int(m.group(2) or 0)
                shown.append(line.strip("= "))
                continue
            m = NODE.match(line)
            if m:
                node[m.group(1)] = int(m.group(2))
                if m.group(1) == "fail":
                    passed += node.get("pass", 0)
                    failed += node["fail"]
                    shown.append(f"node: {node.get('pass', 0)} pass, {node['fail']} fail")
                    node = {}
    for s in shown:
        print(f"  {s}")
    print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if passed + failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
