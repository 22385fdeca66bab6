"""compile() takes a spec's parameters as keyword arguments, as timm's create_model does: the
same model as timm's with the same keywords, and a mistyped name is a TypeError that says what
the spec declares."""

from __future__ import annotations

import pytest
import torch

import compiler


@pytest.mark.zoo
def test_keywords_build_what_timm_builds_with_them() -> None:
    import timm

    ours = compiler.compile("res2net50_48w_2s", num_classes=10, seed=0)
    theirs = timm.create_model("res2net50_48w_2s", pretrained=False, num_classes=10)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in theirs.state_dict().items()
    ]
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), theirs.eval()(x), atol=1e-5)


def test_keywords_are_the_params_overrides() -> None:
    by_keyword = compiler.compile("resnet18", num_classes=10, seed=0)
    by_override = compiler.compile("resnet18", ["params.num_classes=10"], seed=0)
    assert by_keyword.fc.out_features == by_override.fc.out_features == 10
    pairs = zip(by_keyword.state_dict().values(), by_override.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    # a str is an expression of the spec's names
    assert compiler.compile("resnet18", num_classes="2 * 5").fc.out_features == 10


def test_a_mistyped_keyword_names_the_spec_and_its_parameters() -> None:
    with pytest.raises(TypeError, match=r"resnet18 has no parameter 'num_clases'; did you mean "):
        compiler.compile("resnet18", num_clases=10)
    with pytest.raises(TypeError, match=r"its parameters: num_classes"):
        compiler.compile("resnet18", depth=3)
    with pytest.raises(TypeError, match="must be a number, a bool or an expression"):
        compiler.compile("resnet18", num_classes=[10])
    with pytest.raises(ValueError, match="need a spec file or name"):
        compiler.compile(compiler.load_spec("resnet18"), num_classes=10)
