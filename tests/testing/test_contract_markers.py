"""The contract suite declares what it needs: a test that waits for a job to end says so.

On a real clock a job ends only if it can run and runs quickly, so every contract test that
waits for a job's end (``finished_job``, ``wait_for_job``) must require ``quick_jobs`` (or
``job_control``/``virtual_time``, which end jobs on demand). Otherwise an implementation whose
jobs take minutes, or never start, waits out the test's hour-long timeout.
"""

from __future__ import annotations

import ast
from pathlib import Path

import flare_testing.contract

CONTRACT = Path(flare_testing.contract.__file__).parent
WAITS = {"finished_job", "wait_for_job"}
ENDS_JOBS = ("QUICK_JOBS", "JOB_CONTROL", "VIRTUAL_TIME")


def _called(function: ast.FunctionDef) -> set[str]:
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def test_every_test_that_waits_for_a_job_to_end_requires_a_way_to_end_it() -> None:
    undeclared = []
    for path in sorted(CONTRACT.glob("*.py")):
        for cls in ast.parse(path.read_text()).body:
            if not isinstance(cls, ast.ClassDef):
                continue
            class_marks = " ".join(ast.unparse(d) for d in cls.decorator_list)
            for function in cls.body:
                if not isinstance(function, ast.FunctionDef) or not function.name.startswith(
                    "test"
                ):
                    continue
                marks = class_marks + " ".join(ast.unparse(d) for d in function.decorator_list)
                if _called(function) & WAITS and not any(m in marks for m in ENDS_JOBS):
                    undeclared.append(f"{path.name}::{cls.name}::{function.name}")
    assert undeclared == []
