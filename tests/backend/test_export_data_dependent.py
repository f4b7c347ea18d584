"""A model whose code branches on an input's values (an attention-mask fast path): torch.export's default
(non-strict) trace cannot take the branch. dynashape retries through TorchDynamo (``strict=True``), and
where that fails too, says so in one error that names the model's line (seen on the GPU: the transformers
BART encoder's module under torch 2.11, ``Could not guard on data-dependent expression Eq(u0, 1)``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dynashape
from dynashape import Profile
from dynashape._errors import BackendError

PROFILE = Profile({"ids": ((1, 2), (2, 8), (4, 16)), "mask": ((1, 2), (2, 8), (4, 16))})
AXES = {"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}}
EXAMPLE = {"ids": torch.ones(2, 8, dtype=torch.long), "mask": torch.ones(2, 8, dtype=torch.long)}


class AlwaysOnData(torch.nn.Module):
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if (mask == 1).all():  # the fast path of an all-ones mask
            return ids * 2
        return ids * mask


class FastPathOutsideDynamo(torch.nn.Module):
    """The fast path is skipped under TorchDynamo (as libraries do with ``is_torchdynamo_compiling()``)."""

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_dynamo_compiling() and (mask == 1).all():
            return ids * mask
        return ids * mask


def test_a_branch_on_data_is_one_error_naming_the_line() -> None:
    with pytest.raises(BackendError) as info:
        dynashape.build(AlwaysOnData(), PROFILE, backend="inductor", example_inputs=EXAMPLE, dynamic_axes=AXES, quiet=True)
    text = str(info.value)
    assert "a branch on an input's values" in text
    assert "if (mask == 1).all():" in text  # the model's line, not torch's
    assert "TorchDynamo's export failed too" in text
    assert "ONNX file" in text  # the next step


@pytest.mark.slow  # one AOTInductor compile (~15 s on 2 cores)
def test_a_branch_that_dynamo_skips_builds_through_a_strict_export() -> None:
    e = dynashape.build(FastPathOutsideDynamo(), PROFILE, backend="inductor", example_inputs=EXAMPLE, dynamic_axes=AXES, quiet=True)
    ids = torch.randint(0, 100, (3, 11))
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[1, 7:] = 0  # right-padded
    out = next(iter(e.run({"ids": ids, "mask": mask}).values()))
    np.testing.assert_array_equal(out, (ids * mask).numpy())
