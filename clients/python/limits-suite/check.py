"""Compares one mode's results of limits' test suite (JUnit XML) with
known-differences.txt: every failing test must be listed there for that
mode with its reason, and every listed test must fail (the list stays
exact). Prints the counts and exits 1 on any mismatch.

    check.py MODE RESULTS.xml known-differences.txt PYTEST.log
"""

import sys
import xml.etree.ElementTree as ET


def listed(path, mode):
    out = {}
    for raw in open(path, encoding="utf-8"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, _, reason = line.partition("#")
        fields = head.split()
        if len(fields) != 2 or not reason.strip():
            sys.exit(f"{path}: expected 'MODE TEST-ID  # reason', got {line!r}")
        if fields[0] == mode:
            out[fields[1]] = reason.strip()
    return out


def main():
    mode, xml_path, known_path, log_path = sys.argv[1:5]
    root = ET.parse(xml_path).getroot()
    passed, skipped, failed = [], [], {}
    for case in root.iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            failed[test_id] = (bad.get("message") or "").splitlines()[0][:200]
        elif case.find("skipped") is not None:
            skipped.append(test_id)
        else:
            passed.append(test_id)
    known = listed(known_path, mode)
    unexpected = sorted(set(failed) - set(known))
    fixed = sorted(set(known) - set(failed))
    print(f"limits suite, mode {mode}: {len(passed)} passed, {len(failed)} failed "
          f"({len(failed) - len(unexpected)} of them listed differences), {len(skipped)} skipped")
    for t in sorted(failed):
        mark = "listed" if t in known else "UNEXPECTED"
        print(f"  {mark:10} {t}: {known.get(t) or failed[t]}")
    for t in fixed:
        print(f"  PASSES     {t}: listed in known-differences.txt but passed: remove it")
    if not passed:
        print(open(log_path, encoding="utf-8", errors="replace").read()[-4000:])
        print("no test passed: the suite did not run")
        return 1
    return 1 if unexpected or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
