"""The suite's own settings: the end-to-end list names real tests, and CI
lints, runs on every core and prints the slowest tests."""

import ast
import os.path as osp

from .conftest import REPO


def read(path: str) -> str:
    with open(osp.join(REPO, path), encoding='utf-8') as f:
        return f.read()


def test_the_end_to_end_tests_exist(pytestconfig):
    names = pytestconfig.getini('end_to_end')  # pyproject.toml
    assert 0 < len(names) <= 6  # a few, not a way out of the 60 s rule
    for name in names:
        path, test = name.split('::')
        tests = {
            node.name
            for node in ast.walk(ast.parse(read(path)))
            if isinstance(node, ast.FunctionDef)
        }
        assert test in tests, name


def test_ci_lints_runs_on_every_core_and_prints_the_slowest():
    ci = read('.ci/run')
    assert 'ruff check .' in ci and 'ruff format --check .' in ci
    assert '--durations=15' in ci and 'bash tools/run_tests.sh' in ci
    assert '-n "${PYTEST_WORKERS:-logical}"' in read('tools/run_tests.sh')
