"""Scripts outside the package (benchmarks/, examples/) use dynashape's public API only.

A private attribute read on a dynashape object (``engine._runner``, ``engine._graphs``) ties a script
to the implementation; the engine offers public calls for what scripts need instead
(``Engine.with_options``, ``graph_stats``, ``backend_call``, ``payload_sizes``). The scan is
syntactic: ``x._name`` (and ``getattr(x, "_name")``) is refused unless ``x`` comes from a module
other than dynashape (``torch._inductor``), is the script's own object (``self``), or is listed in
FOREIGN below with the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("benchmarks", "examples")
# (file name, expression) -> why the object is not dynashape's.
FOREIGN = {
    ("gpu_bench.py", "config._attn_implementation"): "a transformers model config",
}


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _foreign_names(tree: ast.Module) -> set[str]:
    """Names the script binds to modules other than dynashape (``import torch``, ``from os import path``)."""
    names = {"self", "cls"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("dynashape")}
        elif isinstance(node, ast.ImportFrom) and not (node.module or "").startswith("dynashape") and node.level == 0:
            names |= {a.asname or a.name for a in node.names}
    return names


def private_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    foreign = _foreign_names(tree)
    found = []
    for node in ast.walk(tree):
        attr, base = None, None
        if isinstance(node, ast.Attribute):
            attr, base = node.attr, node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "hasattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            attr, base = node.args[1].value, node.args[0]
        if attr is None or base is None or not attr.startswith("_") or attr.startswith("__"):
            continue
        if _root(base) in foreign:
            continue
        expr = f"{ast.unparse(base)}.{attr}"
        if (path.name, expr) in FOREIGN:
            continue
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        found.append(f"{where}:{node.lineno}: {expr}")
    return found


def test_scripts_read_no_private_attribute() -> None:
    files = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))
    assert files, "no scripts found: the folders moved?"
    found = [hit for p in files for hit in private_reads(p)]
    assert not found, "private attributes read outside the package (use the public API):\n" + "\n".join(found)


def test_the_scan_finds_what_it_must(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text("import torch\nimport dynashape\n"
                      "e = dynashape.load('x')\n"
                      "a = dynashape.Engine(e.manifest, e._runner, e._payloads)\n"
                      "b = getattr(e, '_graphs')\n"
                      "c = torch._inductor.config\n"
                      "class T:\n    def f(self):\n        return self._x\n")
    assert sorted(h.split(": ", 1)[1] for h in private_reads(script)) == ["e._graphs", "e._payloads", "e._runner"]
