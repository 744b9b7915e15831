"""JUnit XML through junitparser: one test case per check, so a CI job can gate on a report."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

from mmload.report.views import View

SUFFIX = "junit.xml"


def supports(view: View) -> bool:
    """Views that judge something (run SLOs, ceiling rows) have checks."""
    return view.checks is not None


def render(view: View) -> str:
    """A ``<testsuites>`` document with one suite; failed checks fail, unmeasured are skipped."""
    suite = TestSuite(view.suite)
    for check in view.checks or []:
        case = TestCase(check.name, classname=view.suite, time=0)
        if check.passed is False:
            case.result = [Failure(check.message, type_="SLOViolation")]
        elif check.passed is None:
            case.result = [Skipped(f"not measured: {check.message}")]
        case.system_out = check.message
        suite.add_testcase(case)
    suite.update_statistics()
    xml = JUnitXml("mmload")
    xml.add_testsuite(suite)
    xml.update_statistics()
    root = ET.fromstring(xml.tostring())  # indented for people who open it
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
