"""Models and exports of the gauntlet, each made once per test session (see models.py, pipeline.py).

Tiers (docs/gauntlet.md): the default run exports every model with both exporters, checks and builds
it on ONNX Runtime; the inductor tier (``slow``) builds a representative subset, and the whole matrix
with ``DYNASHAPE_GAUNTLET=full``.
"""

from __future__ import annotations

import os
import sys
import warnings

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")
sys.path.insert(0, os.path.dirname(__file__))

import pipeline
from models import BY_NAME

FULL = os.environ.get("DYNASHAPE_GAUNTLET", "") == "full"


class _Store:
    def __init__(self, root: str) -> None:
        self.root = root
        self.models: dict[str, object] = {}
        self.files: dict[tuple[str, str], str | BaseException] = {}

    def model(self, name: str):
        if name not in self.models:
            self.models[name] = BY_NAME[name].make()
        return self.models[name]

    def export(self, name: str, exporter: str) -> str:
        key = (name, exporter)
        if key not in self.files:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    self.files[key] = pipeline.export(BY_NAME[name], self.model(name), exporter, self.root)
                except Exception as e:  # recorded once, raised again for every test that needs the file
                    self.files[key] = e
        got = self.files[key]
        if isinstance(got, BaseException):
            raise got
        return got


@pytest.fixture(scope="session")
def gauntlet(tmp_path_factory: pytest.TempPathFactory) -> _Store:
    pipeline.quiet()
    return _Store(str(tmp_path_factory.mktemp("gauntlet")))
