"""PyTorch AOTInductor backend: ``torch.export`` with each profile's dims, one package per profile.

Build: for profile k, export the module with ``Dim(min, max)`` for every dim the profile leaves
free and the opt shape as the example, then compile it ahead of time into ``profile{k}.pt2``.
Run: the loaded package of the chosen profile, called with torch tensors.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from typing import Any, ClassVar

from .._deps import require
from ..errors import BackendError
from ..profiles import Profile
from ..specs import TensorSpec, dtype_name
from .base import Backend, BuildSettings, Built, Runner, Source

_TUNING = {"default": {}, "max-autotune": {"max_autotune": True}}


def _sanitize(sym: str) -> str:
    s = re.sub(r"\W", "_", sym)
    return s if s and not s[0].isdigit() else f"d_{s}"


def _symbol(spec: TensorSpec, axis: int) -> str:
    d = spec.shape[axis]
    return d if isinstance(d, str) else f"{spec.name}_dim{axis}"


def export_profile(torch: Any, module: Any, inputs: Sequence[TensorSpec], profile: Profile, device: str,
                   example_like: Sequence[Any]) -> Any:
    """``torch.export`` ``module`` for one profile: dims free where min < max, example at opt."""
    Dim = torch.export.Dim
    named: dict[str, Any] = {}
    shapes, auto_shapes, args = [], [], []
    for spec, like in zip(inputs, example_like, strict=True):
        r = profile[spec.name]
        axes, auto = {}, {}
        example = list(r.opt)
        for axis in r.dynamic_axes:
            lo, opt, hi = r.dim(axis)
            sym = _symbol(spec, axis)
            if sym not in named:
                named[sym] = Dim(_sanitize(sym), min=lo, max=hi)
            axes[axis] = named[sym]
            auto[axis] = Dim.DYNAMIC(min=lo, max=hi)
            # NOTE: torch.export specializes a dim whose example is 0 or 1 (the 0/1 specialization),
            # so trace with 2 where the range allows it; the Dim's min keeps 1 valid at run time.
            if opt < 2:
                example[axis] = min(2, hi)
        shapes.append(axes or None)
        auto_shapes.append(auto or None)
        args.append(_example_tensor(torch, like, tuple(example), device))
    try:
        return torch.export.export(module, tuple(args), dynamic_shapes=(tuple(shapes),))
    except Exception as first:  # noqa: BLE001 - torch raises several types for constraint violations
        # NOTE: named Dims fail when the model relates dims (a multiple of 4, two dims equal);
        # Dim.DYNAMIC lets torch.export derive those relations inside the same bounds.
        try:
            return torch.export.export(module, tuple(args), dynamic_shapes=(tuple(auto_shapes),))
        except Exception:
            text = " ".join(str(first).split())[:1500]
            raise BackendError(
                f"torch.export cannot keep the profile's dims dynamic ({profile.describe()}): {text}",
                "a model whose dynamic dims stay symbolic under torch.export",
                "apply the fix torch suggests above (a reshape or a size read as a Python int pins a dim); "
                "`dynashape check` on an ONNX export shows where",
            ) from first


def _example_tensor(torch: Any, like: Any, shape: tuple[int, ...], device: str) -> Any:
    g = torch.Generator().manual_seed(0)
    if like.dtype == torch.bool:
        t = torch.randint(0, 2, shape, generator=g).bool()
    elif like.dtype.is_floating_point:
        t = torch.rand(shape, generator=g).to(like.dtype)
    else:
        t = torch.randint(0, 2, shape, generator=g).to(like.dtype)
    return t.to(device)


def output_specs(ep: Any, inputs: Sequence[TensorSpec], names: Sequence[str]) -> list[TensorSpec]:
    """Output shapes from the exported program, with torch's symbols renamed to the model's dim names."""
    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs]
    rename: dict[str, str] = {}
    for spec, node in zip(inputs, placeholders, strict=False):
        for axis, d in enumerate(node.meta["val"].shape):
            if not isinstance(d, int):
                rename.setdefault(str(d), _symbol(spec, axis))
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    vals = [a.meta["val"] for a in out_node.args[0]]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, rename)) + r")\b") if rename else None
    specs = []
    for name, v in zip(names, vals, strict=True):
        dims: list[int | str | None] = []
        for d in v.shape:
            if isinstance(d, int):
                dims.append(d)
            else:
                text = str(d)
                dims.append(pattern.sub(lambda m: rename[m.group(0)], text) if pattern else text)
        specs.append(TensorSpec(name, dtype_name(v.dtype), tuple(dims)))
    return specs


def merge_specs(per_profile: Sequence[Sequence[TensorSpec]]) -> list[TensorSpec]:
    """One spec per output over all profiles: a dim is static only if every profile fixes it alike."""
    merged = []
    for specs in zip(*per_profile, strict=True):
        dims: list[int | str | None] = []
        for ds in zip(*(s.shape for s in specs), strict=True):
            sym = next((d for d in ds if not isinstance(d, int)), None)
            dims.append(ds[0] if len(set(ds)) == 1 else sym)
        merged.append(TensorSpec(specs[0].name, specs[0].dtype, tuple(dims)))
    return merged


class InductorBackend(Backend):
    name = "inductor"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    sources: ClassVar[tuple[str, ...]] = ("module",)

    @classmethod
    def available(cls) -> str | None:
        try:
            import torch  # noqa: F401
        except ImportError:
            return "torch is not installed (pip install 'dynashape[torch]')"
        return None

    def build(self, source: Source, profiles: Sequence[Profile], settings: BuildSettings) -> Built:
        torch = require("torch", "the inductor backend")
        tuning = settings.tuning or "default"
        if tuning not in _TUNING:
            raise BackendError(f"tuning '{tuning}'", "one of: " + ", ".join(_TUNING))
        module = source.module.to(settings.device).eval()
        payloads: dict[str, bytes] = {}
        per_profile: list[list[TensorSpec]] = []
        with tempfile.TemporaryDirectory(prefix="dynashape-aoti-") as tmp, torch.no_grad():
            for k, profile in enumerate(profiles):
                ep = export_profile(torch, module, source.inputs, profile, settings.device, source.example_inputs)
                per_profile.append(output_specs(ep, source.inputs, [o.name for o in source.outputs]))
                path = os.path.join(tmp, f"profile{k}.pt2")
                torch._inductor.aoti_compile_and_package(ep, package_path=path, inductor_configs=dict(_TUNING[tuning]))
                with open(path, "rb") as f:
                    payloads[f"profile{k}.pt2"] = f.read()
        return Built(payloads, source.inputs, merge_specs(per_profile), {"tuning": tuning, "torch": torch.__version__})

    def load(self, manifest: Any, payloads: dict[str, bytes]) -> Runner:
        torch = require("torch", "the inductor backend")
        models = []
        for k in range(len(manifest.profiles)):
            path = _cached_file(payloads[f"profile{k}.pt2"])
            try:
                models.append(torch._inductor.aoti_load_package(path))
            except Exception as e:  # noqa: BLE001
                raise BackendError(
                    f"torch {torch.__version__} cannot load profile {k} of this engine (built with torch "
                    f"{manifest.library_versions.get('torch')}): {str(e).splitlines()[0][:500] if str(e) else type(e).__name__}",
                    "an engine built by the same torch version on the same kind of machine",
                    "rebuild the engine on this machine",
                ) from e
        return InductorRunner(models, manifest.device)


def _cached_file(payload: bytes) -> str:
    """AOTInductor loads packages from paths: keep one file per payload, written atomically."""
    digest = hashlib.sha256(payload).hexdigest()[:32]
    folder = os.path.join(tempfile.gettempdir(), f"dynashape-{os.getuid() if hasattr(os, 'getuid') else 'u'}", "aoti")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{digest}.pt2")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    return path


class InductorRunner(Runner):
    native = "torch"

    def __init__(self, models: list[Any], device: str) -> None:
        self.models = models
        self.device = device

    def run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
        return list(self.models[profile](*inputs))
