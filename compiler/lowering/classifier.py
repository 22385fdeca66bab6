"""What timm's classifiers have and netc's compiled classifiers get too: ``num_features``,
``get_classifier()``, ``reset_classifier(num_classes)``, ``forward_features(x)`` and
``forward_head(x, pre_logits=False)``.

The classifier is the network's output node when it is a linear layer; the features are the
input of the first pooling on the chain into it (ResNet's ``layer4``, ViT's ``encoder`` after
its norm, VGG's ``features``); ``forward_head`` is the rest (pooling, flatten, dropout, the MLP
of a VGG or a MobileNet, the classifier). Both run the same modules as the network's forward,
on a copy of its own graph cut in two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from ..ir.graph import INPUT, Graph
from ..ops import OPS, channels


@dataclass(frozen=True)
class Head:
    """Where the classifier and the features are, by IR node name."""

    classifier: str
    num_features: int
    features: str


def head_of(graph: Graph) -> Head | None:
    """The classifier's head of ``graph``, or None where it has none (a backbone returning
    feature maps, training-only outputs, an output that is no linear layer)."""
    out = graph.nodes.get(graph.output)
    if out is None or graph.features or graph.aux:
        return None
    if not OPS[out.op].weighted or len(graph.shape_of(out.name)) != 1:  # a linear layer's vector
        return None
    node = out
    while True:  # back along one-input nodes, to the first pooling
        if len(node.inputs) != 1 or node.inputs[0] == INPUT:
            return None
        before = graph.nodes[node.inputs[0]]
        if OPS[before.op].pools:
            if before.inputs[0] == INPUT:
                return None
            width = channels(graph.shape_of(out.inputs[0]))
            return Head(classifier=out.name, num_features=width, features=before.inputs[0])
        node = before


def _split(module: fx.GraphModule, graph: Graph, head: Head) -> int | None:
    """The index of the top-level call whose value is the features, when every call after it
    is the head's (the features are a top-level node, or the last node of a container)."""
    nodes = list(module.graph.nodes)
    names = list(graph.nodes)
    for k, n in enumerate(nodes):
        if n.op != "call_module":
            continue
        inside = [x for x in names if x == n.target or x.startswith(f"{n.target}.")]
        if inside and inside[-1] == head.features:
            rest = nodes[k + 1 : -1]
            reads = all(a in (n, *rest) for r in rest for a in r.all_input_nodes)
            return k if reads else None
    return None


def _programs(module: fx.GraphModule, split: int) -> tuple[fx.GraphModule, fx.GraphModule]:
    """The network's graph cut after node ``split``: (input -> features, features -> output),
    both over the network's own modules."""
    nodes = list(module.graph.nodes)
    first = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in nodes[: split + 1]:
        env[n] = first.node_copy(n, lambda a: env[a])
    first.output(env[nodes[split]])
    second = fx.Graph()
    env2: dict[fx.Node, fx.Node] = {}
    env2[nodes[split]] = second.placeholder("x")
    for n in nodes[split + 1 :]:
        if n.op == "output":
            second.output(env2[n.args[0]])
        else:
            env2[n] = second.node_copy(n, lambda a: env2[a])
    return fx.GraphModule(module, first), fx.GraphModule(module, second)


def attach(module: fx.GraphModule, graph: Graph) -> None:
    """Give a compiled classifier timm's classifier methods (a network without a linear
    classifier after a pooling, or whose head the module tree cannot cut off, gets none)."""
    head = head_of(graph)
    split = _split(module, graph, head) if head is not None else None
    if head is None or split is None:
        return
    state: dict[str, Any] = {"programs": _programs(module, split)}

    def get_classifier(self: fx.GraphModule) -> nn.Module:
        return self.get_submodule(head.classifier)

    def reset_classifier(self: fx.GraphModule, num_classes: int) -> None:
        """A new linear classifier of ``num_classes`` outputs (0: none, the pre-logits out)."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(
                f"reset_classifier(): num_classes must be a whole number >= 0, got {num_classes!r}"
            )
        old = self.get_submodule(head.classifier)
        new: nn.Module = nn.Identity()
        if num_classes:
            new = nn.Linear(
                head.num_features, num_classes, bias=getattr(old, "bias", None) is not None
            )
            new.to(next(old.parameters()).device)
        self.set_submodule(head.classifier, new)
        state["programs"] = _programs(self, split)

    def forward_features(self: fx.GraphModule, x: torch.Tensor) -> torch.Tensor:
        return state["programs"][0](x)

    def forward_head(
        self: fx.GraphModule, x: torch.Tensor, pre_logits: bool = False
    ) -> torch.Tensor:
        if not pre_logits:
            return state["programs"][1](x)
        seen: list[torch.Tensor] = []
        hook = self.get_submodule(head.classifier).register_forward_pre_hook(
            lambda m, args: seen.append(args[0])
        )
        try:
            state["programs"][1](x)
        finally:
            hook.remove()
        return seen[0]

    cls = type(module)  # each GraphModule has a class of its own
    cls.get_classifier = get_classifier  # type: ignore[attr-defined]
    cls.reset_classifier = reset_classifier  # type: ignore[attr-defined]
    cls.forward_features = forward_features  # type: ignore[attr-defined]
    cls.forward_head = forward_head  # type: ignore[attr-defined]
    object.__setattr__(module, "num_features", head.num_features)  # not a module
