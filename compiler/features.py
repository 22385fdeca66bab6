"""``feature_info`` of a network that returns feature maps, in the form timm's ``features_only``
models give it, so detection and segmentation code that reads it works unchanged."""

from __future__ import annotations

from typing import Any

from .ir import Graph


class FeatureInfo(list[dict[str, Any]]):
    """One dict per returned feature map: ``module`` (its name in the spec), ``num_chs`` and
    ``reduction`` (how many times smaller than the input it is)."""

    def channels(self) -> list[int]:
        return [f["num_chs"] for f in self]

    def reduction(self) -> list[int | None]:
        return [f["reduction"] for f in self]

    def module_name(self) -> list[str]:
        return [f["module"] for f in self]


def feature_info(graph: Graph) -> FeatureInfo:
    """The feature maps ``graph`` returns, described."""
    height = graph.input_shape[1] if len(graph.input_shape) == 3 else None
    out = FeatureInfo()
    for f in graph.features:
        shape = graph.shape_of(f.node)
        spatial = len(shape) == 3 and height is not None
        out.append(
            {
                "module": f.name,
                "num_chs": shape[0],
                "reduction": height // shape[1] if spatial else None,  # type: ignore[operator]
            }
        )
    return out
