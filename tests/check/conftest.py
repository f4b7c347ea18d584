"""Exports shared by the check tests: each broken model and each clean zoo model, with both exporters, once."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
sys.path.insert(0, os.path.dirname(__file__))

EXPORTERS = ("torchscript", "dynamo")
CLEAN = ("segmentation", "superres", "resnet_like", "bert_like", "unet_like")


class _Exports:
    """Lazily exported models, cached per test session; an export the exporter refuses is a skip."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[tuple[str, str], str | Exception] = {}

    def _get(self, key: tuple[str, str], make) -> str:
        if key not in self.done:
            path = str(self.root / f"{key[0]}_{key[1]}.onnx")
            logging.disable(logging.WARNING)
            try:
                make(path)
                self.done[key] = path
            except Exception as e:  # torch raises many error types when an exporter refuses a model
                self.done[key] = e
            finally:
                logging.disable(logging.NOTSET)
        got = self.done[key]
        if isinstance(got, Exception):
            pytest.skip(f"the {key[1]} exporter refuses {key[0]}: {type(got).__name__}: {str(got)[:200]}")
        return got

    def broken(self, case, exporter: str) -> str:
        import corpus

        return self._get((case.name, exporter), lambda p: corpus.export(
            corpus.make(case), case.inputs(), case.dynamic_axes, p, dynamo=exporter == "dynamo"))

    def clean(self, name: str, exporter: str) -> str:
        import corpus

        from dynashape import zoo

        z = zoo.REGISTRY[name]
        return self._get((f"zoo_{name}", exporter), lambda p: corpus.export(
            z.make(), z.example_inputs(), z.dynamic_axes, p, dynamo=exporter == "dynamo"))


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> _Exports:
    return _Exports(tmp_path_factory.mktemp("check_exports"))
