"""Published weights by name: ``--weights torchvision`` or ``torchvision:IMAGENET1K_V1``.

The name is resolved through torchvision's own weights registry (``get_model_weights``): the
model is the spec's ``weights_from`` or, by default, its ``name``. The checkpoint lives where
``torch.hub`` keeps it (``$TORCH_HOME/hub/checkpoints/<file of the url>``): read from there when
present, downloaded there once otherwise. The file name holds a sha256 prefix
(resnet50-11ad3fa6.pth): a download is checked against it, as torch.hub does, and so is a cached
file on every load, since a cache can be damaged or replaced; the verdict is kept per process
while the file is unchanged (same size, mtime and inode). The weights' preprocessing (resize,
crop, mean, std, interpolation) is kept so that a deployment knows how to feed the model.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from .weights import Upgrade, WeightsError

SOURCE = "torchvision"
DOWNLOAD_TIMEOUT_S = 30
_HASH = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's: resnet50-11ad3fa6.pth holds a sha256 prefix
CHUNK = 1 << 20

# a cached file's sha256 by (path, size, mtime_ns, inode, device): hashed once per process while
# the file is unchanged (a ResNet-50 checkpoint takes a few tenths of a second to hash)
_digests: dict[tuple[str, int, int, int, int], str] = {}


@dataclass(frozen=True, kw_only=True)
class Pretrained:
    """A published set of weights: which, from where, cached where, and how to feed the model."""

    model: str  # the torchvision model ('resnet50')
    name: str  # the weights ('ResNet50_Weights.IMAGENET1K_V2')
    url: str
    path: str  # the checkpoint in torch.hub's cache
    preprocess: dict[str, Any]
    # renames the entries of a checkpoint saved in an older layout, as torchvision's modules do
    # when they load it (None: the file is in today's)
    upgrade: Upgrade | None = None


def _retinanet_heads(state: dict[str, Any]) -> dict[str, Any]:
    """RetinaNet's head convolutions as torchvision 0.13 renamed them: ``conv.{2i}`` (a flat
    Sequential with its ReLUs) became ``conv.{i}.0`` (Conv2dNormActivation); its published
    COCO_V1 weights are in the older layout (torchvision's ``_v1_to_v2_weights``)."""
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition("_head.conv.")
        index, _, leaf = rest.partition(".")
        old = head.startswith("head.") and index.isdecimal() and leaf in ("weight", "bias")
        out[f"{head}_head.conv.{int(index) // 2}.0.{leaf}" if old else key] = value
    return out


def _rpn_head(state: dict[str, Any]) -> dict[str, Any]:
    """The RPN head's convolution as torchvision 0.13 renamed it: ``rpn.head.conv`` became
    ``rpn.head.conv.0.0`` (Conv2dNormActivation); its Faster R-CNN weights are older."""
    old = "rpn.head.conv."
    return {
        f"{old}0.0.{k[len(old) :]}" if k.startswith(old) and k.count(".") == 3 else k: v
        for k, v in state.items()
    }


# checkpoints torchvision publishes in a layout older than its modules', by model
UPGRADES: dict[str, Upgrade] = {
    "retinanet_resnet50_fpn": _retinanet_heads,
    "fasterrcnn_resnet50_fpn": _rpn_head,
}


def is_named(weights: object) -> bool:
    """Whether ``weights`` names published weights rather than a file."""
    return isinstance(weights, str) and (weights == SOURCE or weights.startswith(SOURCE + ":"))


def resolve(request: str, model: str) -> Pretrained:
    """The weights ``request`` names for torchvision's ``model``; raises WeightsError."""
    try:
        import torch
        from torchvision import models
    except ImportError:
        raise WeightsError(
            f"--weights {request}: torchvision is not installed (pip install torchvision)"
        ) from None
    try:
        enum = models.get_model_weights(model)
    except (ValueError, KeyError):
        raise WeightsError(
            f"--weights {request}: '{model}' is not a torchvision model with published weights"
            "\n  note: a spec names the model whose weights it takes with `weights_from: resnet50`"
        ) from None
    chosen = request.partition(":")[2] or "DEFAULT"
    try:
        weights = enum[chosen]
    except KeyError:
        have = ", ".join(k for k in enum.__members__ if k != "DEFAULT")
        raise WeightsError(
            f"--weights {request}: torchvision has no weights '{chosen}' for {model} "
            f"(it has: DEFAULT, {have})"
        ) from None
    filename = os.path.basename(urllib.parse.urlparse(weights.url).path)
    return Pretrained(
        model=model,
        name=f"{type(weights).__name__}.{weights.name}",
        url=weights.url,
        path=os.path.join(torch.hub.get_dir(), "checkpoints", filename),
        preprocess=_preprocess(weights),
        upgrade=UPGRADES.get(model),
    )


def fetch(weights: Pretrained) -> str:
    """The checkpoint's path, downloading it into the cache first if it is not there; a cached
    file whose sha256 does not start with the hash in its name is refused (WeightsError)."""
    if os.path.isfile(weights.path):
        _check_cached(weights)
        return weights.path
    folder = os.path.dirname(weights.path)
    try:
        os.makedirs(folder, exist_ok=True)
        _download(weights.url, weights.path)
    except (OSError, ValueError) as e:
        raise WeightsError(
            f"{weights.path}: error: {weights.name} is not in the cache and cannot be "
            f"downloaded ({e})\n"
            f"  note: download {weights.url} to {weights.path} (the cache folder is "
            f"{folder}; TORCH_HOME moves it)"
        ) from None
    return weights.path


def _check_cached(weights: Pretrained) -> None:
    """Refuse a cached checkpoint whose sha256 does not start with the hash in its name."""
    match = _HASH.search(os.path.basename(weights.path))
    if not match or not match.group(1):
        return  # a name without a hash (torch.hub checks none either)
    expected = match.group(1)
    try:
        digest = _digest(weights.path)
    except OSError as e:
        raise WeightsError(
            f"{weights.path}: error: cannot read checkpoint: {e.strerror or e}"
        ) from None
    if not digest.startswith(expected):
        raise WeightsError(
            f"{weights.path}: error: the file's sha256 ({digest[:16]}...) does not start with "
            f"{expected}, the hash in its name: it is damaged or is not {weights.name}\n"
            f"  note: delete it; it will be downloaded again from {weights.url}"
        )


def _key(path: str) -> tuple[str, int, int, int, int]:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _digest(path: str) -> str:
    """sha256 of ``path``, hex; from memory when this process hashed the unchanged file before."""
    key = _key(path)
    digest = _digests.get(key)
    if digest is None:
        digest = _digests[key] = _sha256(path)
    return digest


def _sha256(path: str) -> str:
    """sha256 of the file ``path``, hex, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, path: str) -> None:
    """``url`` to ``path`` through a temporary file beside it; the sha256 must start with the
    hash in the file name, as torch.hub checks."""
    from ..atomic import atomic_path

    expected = _HASH.search(os.path.basename(path))
    digest = hashlib.sha256()
    with atomic_path(path) as tmp:
        with (
            open(tmp, "wb") as out,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
        ):
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
        if expected and not digest.hexdigest().startswith(expected.group(1)):
            raise ValueError(f"the download's sha256 does not start with {expected.group(1)}")
    _digests[_key(path)] = digest.hexdigest()  # checked while downloading: not hashed again


def _preprocess(weights: Any) -> dict[str, Any]:
    """What torchvision's transforms for these weights do to an image, as plain data."""
    t = weights.transforms()  # torchvision's ImageClassification preset (or one like it)
    found = {
        "resize_size": getattr(t, "resize_size", None),
        "crop_size": getattr(t, "crop_size", None),
        "mean": getattr(t, "mean", None),
        "std": getattr(t, "std", None),
    }
    out: dict[str, Any] = {"weights": f"{type(weights).__name__}.{weights.name}"}
    out.update({k: [v for v in value] for k, value in found.items() if value is not None})
    interpolation = getattr(t, "interpolation", None)
    if interpolation is not None:
        out["interpolation"] = getattr(interpolation, "value", str(interpolation))
    return out
