"""The docstring examples of the foundation's modules run as tests."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import dynashape

# NOTE: the doctor (check/) and the ONNX importer have their own suites and owners.
_SKIP = ("dynashape._check", "dynashape.onnx.importer")


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(dynashape.__path__, "dynashape."):
        if info.name.startswith(_SKIP) or info.name.endswith("__main__"):
            continue
        spec = importlib.util.find_spec(info.name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        with open(spec.origin, encoding="utf-8") as f:
            if ">>>" in f.read():
                names.append(info.name)
    return sorted(names)


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert {"dynashape._profiles", "dynashape.zoo"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (run pytest -s to see them)"
