"""JUnit XML: one test case per gate check, so CI systems show failures natively."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from guard.results import ResultsDocument


def render(document: ResultsDocument) -> str:
    """Render the gate checks of a results document as JUnit XML.

    Without a gate, each suite becomes a passing test case per metric (a record of what ran).
    """
    gate = document.gate
    suite_el = ET.Element("testsuite", name="metaverse-guard gate")
    cases = 0
    failures = skipped = 0
    if gate:
        fail_inconclusive = gate.inconclusive_counts_as == "fail"
        for check in gate.checks:
            case = ET.SubElement(suite_el, "testcase", classname=f"gate.{check.suite}",
                                 name=check.name)
            cases += 1
            message = f"{check.outcome}: {check.explanation}"
            if check.outcome == "fail" or (check.outcome == "inconclusive"
                                           and fail_inconclusive):
                failures += 1
                el = ET.SubElement(case, "failure", message=message, type=check.outcome)
                el.text = (f"value {check.value:.6g}, interval [{check.ci_low:.6g}, "
                           f"{check.ci_high:.6g}], n={check.n}, method {check.method}")
            elif check.outcome == "inconclusive":
                skipped += 1
                ET.SubElement(case, "skipped", message=message)
            else:
                ET.SubElement(case, "system-out").text = message
    else:
        for suite in document.suites:
            for metric in suite.metrics:
                case = ET.SubElement(suite_el, "testcase", classname=f"suite.{suite.suite}",
                                     name=metric.name)
                ET.SubElement(case, "system-out").text = (
                    f"{metric.value:.6g} [{metric.ci_low:.6g}, {metric.ci_high:.6g}]")
                cases += 1
    suite_el.set("tests", str(cases))
    suite_el.set("failures", str(failures))
    suite_el.set("skipped", str(skipped))
    suite_el.set("errors", "0")
    root = ET.Element("testsuites")
    root.append(suite_el)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
