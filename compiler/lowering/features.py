"""``feature_info`` of a network that returns feature maps, in the form timm's ``features_only``
models give it, so detection and segmentation code that reads it works unchanged."""

from __future__ import annotations

from typing import Any

from ..ir.graph import Graph
from ..ops import ChannelsLast, Groups, Shape, channels, is_tokens, spatial_rank


class FeatureInfo(list[dict[str, Any]]):
    """One dict per returned feature map: ``module`` (its name in the spec), ``num_chs``,
    ``reduction`` (how many times smaller than the input it is; None for tokens and vectors),
    ``layout`` (NCHW, NCL, NCDHW, NHWC, NLC or NC: the order of the returned tensor's
    dimensions) and, where the network returns a dict, ``key`` (its name there)."""

    def channels(self) -> list[int]:
        return [f["num_chs"] for f in self]

    def reduction(self) -> list[int | None]:
        return [f["reduction"] for f in self]

    def module_name(self) -> list[str]:
        return [f["module"] for f in self]

    def layout(self) -> list[str]:
        return [f["layout"] for f in self]

    def keys(self) -> list[str]:
        """The returned dict's keys ([] where the network returns a list)."""
        return [f["key"] for f in self if "key" in f]


def feature_info(graph: Graph) -> FeatureInfo:
    """The feature maps ``graph`` returns, described: channels of any layout (a Swin stage's
    ``[H, W, C]`` has C channels, not H), the reduction of a map against the input's height, and
    ``layout``: ``NCHW`` (``NCL``, ``NCDHW`` for 1-D and 3-D maps), ``NHWC`` (channels-last
    maps), ``NLC`` (token sequences, groups of tokens: no reduction) or ``NC`` (vectors)."""
    height = _height(graph.input_shape, _layout_of(graph.input_shape))
    out = FeatureInfo()
    for f in graph.features:
        shape = graph.shape_of(f.node)
        layout = _layout_of(shape)
        side = _height(shape, layout)
        out.append(
            {
                "module": f.name,
                "num_chs": channels(shape),
                "reduction": height // side if height is not None and side else None,
                "layout": layout,
                **({"key": f.key} if f.key else {}),
            }
        )
    return out


def _height(shape: Shape, layout: str) -> int | None:
    """The side a reduction is measured on: a map's height (a 1-D map's length)."""
    where = {"NCL": 1, "NCHW": 1, "NCDHW": 2, "NHWC": 0}.get(layout)
    return shape[where] if where is not None and len(shape) > where else None


def _layout_of(shape: Shape) -> str:
    if isinstance(shape, Groups) or is_tokens(shape):
        return "NLC"
    if isinstance(shape, ChannelsLast):
        return "NHWC"
    return {1: "NCL", 2: "NCHW", 3: "NCDHW"}.get(spatial_rank(shape) or 0, "NC")
