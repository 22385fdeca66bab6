"""A compiled classifier has timm's classifier methods, and they behave as timm's do on the same
model: num_features, get_classifier(), reset_classifier(n), forward_features(x) and
forward_head(x, pre_logits=...)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import compiler


@pytest.mark.zoo
@pytest.mark.parametrize("name", ["resnet50d", "res2net50_48w_2s"])
def test_the_classifier_methods_are_timms(name: str) -> None:
    import timm

    ours = compiler.compile(name, seed=0).eval()
    theirs = timm.create_model(name, pretrained=False).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = ours.forward_features(x)
        assert torch.allclose(features, theirs.forward_features(x), atol=1e-5)
        assert torch.allclose(
            ours.forward_head(features, pre_logits=True),
            theirs.forward_head(features, pre_logits=True),
            atol=1e-5,
        )
        assert torch.equal(ours.forward_head(features), ours(x))
    assert ours.num_features == theirs.num_features == 2048
    assert isinstance(ours.get_classifier(), nn.Linear) and ours.get_classifier() is ours.fc
    ours.reset_classifier(10)
    theirs.reset_classifier(10)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in theirs.state_dict().items()
    ]
    with torch.no_grad():
        assert ours(x).shape == (2, 10) and ours.forward_head(ours.forward_features(x)).shape == (
            2,
            10,
        )
    ours.reset_classifier(0)  # no classifier: the pre-logits come out, as timm's
    with torch.no_grad():
        assert ours(x).shape == (2, 2048)


def test_transformers_and_videos_have_them_and_backbones_do_not() -> None:
    vit = compiler.compile("vit_b_16", ["input=[3, 32, 32]", "params.layers=1"]).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        tokens = vit.forward_features(x)  # after the encoder's norm, as timm's ViT
        assert tokens.shape == (1, 5, 768) and vit.forward_head(tokens, pre_logits=True).shape == (
            1,
            768,
        )
    video = compiler.compile("r3d_18").eval()
    with torch.no_grad():
        assert video.forward_features(torch.randn(1, 3, 4, 32, 32)).shape == (1, 512, 1, 2, 2)
    backbone = compiler.compile("resnet18", outputs=["layer3", "layer4"])
    assert not hasattr(backbone, "forward_features") and not hasattr(backbone, "num_features")
    with pytest.raises(ValueError, match="num_classes must be a whole number"):
        compiler.compile("resnet18").reset_classifier(-1)
