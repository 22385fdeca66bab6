"""The lowered module: an ordinary nn.Module with straight-line forward code that works with
torch.compile, torch.export, jit.trace, state_dict round trips and .to(device)."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import compiler
from compiler.ir.passes.memory import peak_bytes
from compiler.lowering.measure import peak_live_bytes
from compiler.tools.emit import emit
from tests.conftest import SPECS, TESTS
from tests.test_emit import run_source

TINY = TESTS / "specs" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return compiler.compile(TINY, seed=0).eval()


def _leaf_calls(model: torch.nn.Module) -> int:
    """Calls of leaves (IR nodes) in the generated code of every module of the tree."""
    units = (torch.fx.GraphModule, torch.nn.Sequential)
    count = 0
    for m in model.modules():
        if isinstance(m, torch.fx.GraphModule):
            for n in m.graph.nodes:
                if n.op == "call_function" or (
                    n.op == "call_module" and not isinstance(m.get_submodule(n.target), units)
                ):
                    count += 1
        elif isinstance(m, torch.nn.Sequential):
            count += sum(not isinstance(c, units) for c in m)
    return count


def test_forward_is_straight_line_code(tiny: torch.fx.GraphModule) -> None:
    codes = [m.code for m in tiny.modules() if isinstance(m, torch.fx.GraphModule)]
    assert len(codes) > 1  # the network and its blocks each have a forward
    assert not any("for " in c or "while " in c for c in codes)
    g = compiler.load_spec(TINY)
    assert _leaf_calls(tiny) == len(g.nodes)  # one line per IR node, nothing interpreted
    block = tiny.get_submodule("layer2.0")
    assert "bn2 += shortcut" in block.code  # in place, as torchvision's out += x
    assert "add = bn2 + relu" not in tiny.get_submodule("layer1.0").code


def test_printed_module_is_readable(tiny: torch.nn.Module) -> None:
    text = str(tiny)
    assert text.startswith("Tiny(")
    assert "(conv1): Conv2d(16, 32, kernel_size=(3, 3), stride=(2, 2)" in text
    assert "(shortcut): PadChannels(stride=2, front=0, back=16)" in text


def test_params_and_flops_match_the_analysis() -> None:
    for spec in (TINY, SPECS / "resnet18.yaml", SPECS / "resnet50d.yaml"):
        g = compiler.load_spec(spec)
        m = compiler.compile(g)
        assert sum(p.numel() for p in m.parameters()) == g.params
        with FlopCounterMode(display=False) as fc:
            m.eval()(torch.randn(1, *g.input_shape))
        assert fc.get_total_flops() == 2 * g.macs
        assert list(m(torch.randn(1, *g.input_shape)).shape[1:]) == list(g.nodes[g.output].shape)


def test_option_a_pads_zeros_after_the_channels(tiny: torch.nn.Module) -> None:
    pad = tiny.get_submodule("layer2.0.shortcut")
    x = torch.randn(2, 16, 32, 32)
    y = pad(x)
    assert y.shape == (2, 32, 16, 16)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert not y[:, 16:].any()


def test_seed_makes_weights_reproducible() -> None:
    a = compiler.compile(TINY, seed=7).state_dict()
    b = compiler.compile(TINY, seed=7).state_dict()
    c = compiler.compile(TINY, seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])
    before = torch.random.get_rng_state()
    compiler.compile(TINY, seed=7)
    assert torch.equal(before, torch.random.get_rng_state())  # global RNG untouched


def test_torchvision_style_initialisation() -> None:
    m = compiler.compile(SPECS / "resnet18.yaml", seed=0)
    w = m.get_submodule("layer1.0.conv1").weight
    std = (2.0 / (w.shape[0] * 9)) ** 0.5  # kaiming normal, fan_out
    assert abs(float(w.detach().std()) - std) / std < 0.1
    bn = m.get_submodule("layer1.0.bn1")
    assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and not bn.bias.any()


def test_state_dict_round_trip(tiny: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save(tiny.state_dict(), path)
    other = compiler.compile(TINY, seed=99).eval()
    other.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(other(x), tiny(x))


def test_to_device_and_dtype(tiny: torch.nn.Module) -> None:
    m = copy.deepcopy(tiny).to("cpu", torch.float64)
    assert m(torch.randn(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64


def test_jit_trace_and_torch_export(tiny: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 32, 32)
    traced = torch.jit.trace(tiny, x)
    assert torch.allclose(traced(x), tiny(x))
    exported = torch.export.export(tiny, (x,))
    assert torch.allclose(exported.module()(x), tiny(x), atol=1e-6)


@pytest.mark.slow
def test_torch_compile(tiny: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(tiny)
    assert torch.allclose(compiled(x), tiny(x), atol=1e-5)


def test_inplace_only_where_autograd_and_skips_allow(tmp_path: Path) -> None:
    spec = tmp_path / "skip.yaml"
    spec.write_text(
        "name: skip\ninput: [3, 8, 8]\nstem:\n"
        "  conv1: {op: conv, out: 4, kernel: 3}\n"
        "  relu: {op: relu}\n"  # conv1 is also read by the add: not in place
        "  conv2: {op: conv, out: 4, kernel: 3}\n"
        "  bn2: {op: batchnorm}\n"
        "  relu2: {op: relu}\n"  # bn2's only reader, and BN's backward does not need it
        "  sum: {op: add, in: [relu2, conv1]}\n"  # ReLU's backward needs relu2: not +=
    )
    m = compiler.compile(spec, seed=0)
    assert not m.get_submodule("relu").inplace
    assert m.get_submodule("relu2").inplace
    assert "relu2 + conv1" in m.code and "+=" not in m.code
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = m(x)
    out.square().sum().backward()  # autograd raises if a saved tensor was overwritten
    grad = x.grad.clone()
    x.grad = None
    c1 = m.conv1(x)
    ref = torch.relu(m.bn2(m.conv2(torch.relu(c1)))) + c1  # out of place, by hand
    ref.square().sum().backward()
    assert torch.allclose(out, ref, atol=1e-6) and torch.allclose(grad, x.grad, atol=1e-6)


def _with_and_without(
    tmp_path: Path, text: str, part: str
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The spec ``text`` compiled in eval mode as written (with.yaml) and without ``part``,
    both with the same weights."""
    made = []
    for name, spec in (("with", text), ("without", text.replace(part, ""))):
        (tmp_path / f"{name}.yaml").write_text(spec)
        made.append(compiler.compile(tmp_path / f"{name}.yaml", seed=0).eval())
    return made[0], made[1]


def _assert_same_network(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> None:
    """The same state_dict keys and outputs, scripted too: only when memory is freed differs."""
    assert list(a.state_dict()) == list(b.state_dict())
    assert torch.equal(a(x), b(x))
    assert torch.equal(torch.jit.script(a)(x), b(x))


def test_a_held_value_is_freed_after_the_node_that_holds_it(tmp_path: Path) -> None:
    text = (
        "name: held\ninput: [3, 8, 8]\nstem:\n"
        "  conv1: {op: conv, out: 4, kernel: 3}\n"
        "  bn1: {op: batchnorm}\n"
        "  conv2: {op: conv, out: 4, kernel: 3, holds: conv1}\n"
        "  conv3: {op: conv, out: 4, kernel: 3}\n"
    )
    a, b = _with_and_without(tmp_path, text, ", holds: conv1")
    # the generated code frees a value after its last reader, or after the node holding it
    assert "bn1 = self.bn1(conv1);  conv1 = None" in b.code
    assert (
        "conv2_held = compiler_lowering_modules_hold(conv2, conv1);  conv2 = conv1 = None" in a.code
    )
    x = torch.randn(2, 3, 8, 8)
    _assert_same_network(a, b, x)


def test_a_module_list_calls_its_children_one_by_one(tmp_path: Path) -> None:
    text = (
        "name: listed\ninput: [3, 8, 8]\nmodule_lists: [blocks]\nstem:\n"
        "  stem: {op: conv, out: 4, kernel: 3, padding: 1}\n"
        "  blocks.0.0: {op: conv, out: 4, kernel: 3, padding: 1}\n"
        "  blocks.0.1: {op: relu}\n"
        "  blocks.1.0: {op: conv, out: 4, kernel: 3, padding: 1}\n"
        "  blocks.1.1: {op: relu}\n"
        "  blocks.2.0: {op: conv, out: 4, kernel: 3, padding: 1}\n"
    )
    a, b = _with_and_without(tmp_path, text, "module_lists: [blocks]\n")
    # called as one Sequential, the stem's output is held until the last block has run; as a
    # list, until the first has
    assert isinstance(a.blocks, torch.nn.ModuleList) and len(a.blocks) == 3
    assert isinstance(b.blocks, torch.nn.Sequential)
    assert 'blocks_0 = getattr(self.blocks, "0")(stem);  stem = None' in a.code
    assert "blocks = self.blocks(stem);  stem = None" in b.code
    x = torch.randn(2, 3, 8, 8)
    _assert_same_network(a, b, x)
    # the memory analysis follows: the same peak the running module has
    graph = compiler.load_spec(tmp_path / "with.yaml")
    assert peak_bytes(graph, batch=2) == peak_live_bytes(a, x)
    emitted = run_source(emit(graph), "listed.py")["Listed"]()
    assert isinstance(emitted.blocks, torch.nn.ModuleList)
    emitted.load_state_dict(a.state_dict())
    assert torch.equal(emitted.eval()(x), a(x))


def test_a_module_list_that_folding_empties_is_gone(tmp_path: Path) -> None:
    spec = tmp_path / "folded.yaml"
    spec.write_text(
        "name: folded\ninput: [3, 8, 8]\nmodule_lists: [blocks]\nstem:\n"
        "  stem: {op: conv, out: 4, kernel: 3, padding: 1}\n"
        "  blocks.0.0: {op: batchnorm}\n"
        "  head: {op: conv, out: 4, kernel: 3, padding: 1}\n"
    )
    folded = compiler.compile(spec, seed=0, inference=True)
    plain = compiler.compile(spec, seed=0).eval()
    assert isinstance(plain.blocks, torch.nn.ModuleList)
    assert not hasattr(folded, "blocks")  # the BatchNorm is in the stem's conv now
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(folded(x), plain(x))


def test_the_callers_input_is_never_modified(tmp_path: Path) -> None:
    spec = tmp_path / "relu_first.yaml"
    spec.write_text("name: r\ninput: [3, 4, 4]\nstem:\n  relu: {op: relu}\n")
    m = compiler.compile(spec)
    x = torch.randn(1, 3, 4, 4)
    before = x.clone()
    m(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("name", ["forward", "graph", "training", "eval", "__init__"])
def test_names_that_clash_with_torch_attributes_are_located_errors(
    name: str, tmp_path: Path
) -> None:
    """Found by fuzzing (a stage called 'in'; keywords are refused by `netc check`): a module
    path part that is already an attribute of a GraphModule would crash inside torch; it is a
    located error at the node instead, at the top level and below it."""
    spec = tmp_path / "clash.yaml"
    spec.write_text(
        f"extends: {SPECS / 'cifar' / 'resnet20.yaml'}\nname: clash\n"
        f"head:\n  {name}: {{op: linear, out: 10}}\n"
    )
    with pytest.raises(compiler.SpecError) as e:
        compiler.compile(spec)
    assert f"'{name}' is the name of a torch module attribute" in str(e.value)
    assert "clash.yaml:4:3" in str(e.value)
    # any part may end up in a generated module, so the names are refused at every depth
    nested = tmp_path / "nested.yaml"
    nested.write_text(
        f"extends: {SPECS / 'cifar' / 'resnet20.yaml'}\nname: nested\n"
        f"head:\n  sub.{name}: {{op: linear, out: 10}}\n"
    )
    with pytest.raises(compiler.SpecError, match="torch module attribute"):
        compiler.compile(nested)


def test_a_skip_into_a_block_leaves_that_block_a_plain_container(tmp_path: Path) -> None:
    """A long skip that reads a node inside a block (not its output) cannot cross a module
    boundary: that block, and its stage, stay plain containers whose leaves the network calls
    itself; every other block is still a module of its block class."""
    from compiler.lowering.lower import block_class

    spec = tmp_path / "skip.yaml"
    spec.write_text(
        f"extends: {SPECS / 'cifar' / 'resnet20.yaml'}\nname: skip_in\n"
        "replace: [head]\n"
        "head:\n  tap: {op: global_avgpool, in: layer1.1.conv1}\n"
        "  flatten: {op: flatten}\n  fc: {op: linear, out: 10}\n"
    )
    m = compiler.compile(spec, seed=0).eval()
    basic = block_class("basic")
    assert not isinstance(m.get_submodule("layer1.1"), basic)
    assert not isinstance(m.get_submodule("layer1"), torch.nn.Sequential)
    assert isinstance(m.get_submodule("layer1.0"), basic)
    assert isinstance(m.layer2, torch.nn.Sequential) and isinstance(m.layer2[0], basic)
    assert "layer1.1.conv1" in {n.target for n in m.graph.nodes if n.op == "call_module"}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        stem = m.relu(m.bn1(m.conv1(x)))
        tap = m.get_submodule("layer1.1.conv1")(m.get_submodule("layer1.0")(stem))
        want = m.fc(tap.mean((2, 3)))
        torch.testing.assert_close(m(x), want)


def test_module_order_sets_the_registration_order(tmp_path: Path) -> None:
    """A block's ``module_order`` registers its modules in that order (Swin V2 registers each
    norm before the layer it follows): named_children and the state_dict follow it, modules
    not named follow in the order they run, and the forward still runs in graph order."""
    spec = tmp_path / "post_norm.yaml"
    spec.write_text(
        "name: post_norm\ninput: [3, 8, 8]\n"
        "block_types:\n  post:\n    module_order: [norm, conv]\n    nodes:\n"
        "      conv: {op: conv, out: 4, kernel: 3}\n"
        "      norm: {op: batchnorm}\n"
        "      act: {op: relu}\n"
        "      tail: {op: conv, out: 4, kernel: 1}\n"
        "stages:\n  layer1: {block: post, repeat: 1}\n"
    )
    m = compiler.compile(spec, seed=0)
    block = m.get_submodule("layer1.0")
    assert [name for name, _ in block.named_children()] == ["norm", "conv", "act", "tail"]
    assert list(block.state_dict())[:3] == ["norm.weight", "norm.bias", "norm.running_mean"]
    x = torch.randn(2, 3, 8, 8)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), block.tail(block.act(block.norm(block.conv(x)))))
    # a copy, a pickled copy, and torch.save / torch.load keep the order
    saved = tmp_path / "m.pt"
    torch.save(m, saved)
    loaded = torch.load(saved, weights_only=False)
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m)), loaded):
        assert list(clone.state_dict()) == list(m.state_dict())
        assert [n for n, _ in clone.get_submodule("layer1.0").named_children()][:2] == [
            "norm",
            "conv",
        ]
    # without it, the order they run
    spec.write_text(spec.read_text().replace("    module_order: [norm, conv]\n", ""))
    plain = compiler.compile(spec, seed=0).get_submodule("layer1.0")
    assert [name for name, _ in plain.named_children()] == ["conv", "norm", "act", "tail"]


@pytest.mark.parametrize(
    ("cls", "args", "kwargs"),
    [
        (torch.nn.Conv2d, (8, 16, 3), {"stride": 2, "padding": 1, "groups": 2, "bias": True}),
        (torch.nn.BatchNorm2d, (16,), {"eps": 1e-3, "momentum": 0.01}),
        (torch.nn.BatchNorm1d, (16,), {}),
        (torch.nn.Linear, (16, 4), {"bias": False}),
        (torch.nn.LayerNorm, (16,), {"eps": 1e-6}),
        (torch.nn.ConvTranspose2d, (8, 4, 2), {"stride": 2}),
    ],
)
def test_bare_layers_are_the_layers_torch_builds(
    cls: type[torch.nn.Module], args: tuple[int, ...], kwargs: dict[str, object]
) -> None:
    """The lowering's layers skip PyTorch's default init (the init rules overwrite it) and
    copy a prototype: each is an instance of the torch class itself, with the same attributes,
    tensors of the same shapes and dtypes on the current device, and nothing shared with
    another copy, so it trains, saves and loads as the layer torch builds."""
    from compiler.ops import bare

    fresh = cls(*args, **kwargs)
    first, second = bare(cls, *args, **kwargs), bare(cls, *args, **kwargs)
    assert type(first) is cls and repr(first) == repr(fresh)
    plain = {k: v for k, v in vars(fresh).items() if k not in ("_parameters", "_buffers")}
    assert {k: v for k, v in vars(first).items() if k in plain} == plain
    assert set(vars(first)) == set(vars(fresh))

    def layout(m: torch.nn.Module) -> list[tuple[object, ...]]:
        return [(k, v.shape, v.dtype, v.device) for k, v in m.state_dict().items()]

    assert layout(first) == layout(fresh)
    for name, p in first.named_parameters():
        assert isinstance(p, torch.nn.Parameter) and p.requires_grad
        assert p is not second.get_parameter(name)
    for holder in ("_parameters", "_buffers", "_modules", "_forward_hooks"):
        assert getattr(first, holder) is not getattr(second, holder)
    first.load_state_dict(fresh.state_dict())  # strict: the same keys and shapes
    with torch.device("meta"):
        on_meta = bare(cls, *args, **kwargs)
    assert all(t.is_meta for t in on_meta.state_dict().values())


def test_a_tensor_no_init_rule_covers_is_an_error() -> None:
    """initialise gives every parameter and buffer its value by its node's rule; one that no
    rule covers (here a parameter added by hand) would keep uninitialised memory: an error."""
    from compiler.lowering.initialise import initialise

    graph = compiler.load_spec(SPECS / "cifar" / "resnet20.yaml")
    module = compiler.compile(graph)
    initialise(module, graph)  # every tensor of the compiled network is covered
    module.layer1.register_parameter("stray", torch.nn.Parameter(torch.empty(3)))
    with pytest.raises(TypeError, match=r"no initialisation rule for 'layer1\.stray'"):
        initialise(module, graph)
    module.layer1.stray = None  # an unset parameter holds no memory: nothing to initialise
    initialise(module, graph)


def test_check_knows_every_name_a_module_path_cannot_use() -> None:
    """netc check (torch-free) refuses the same path parts the lowering does: its list is the
    installed torch's GraphModule attributes."""
    from torch import fx

    from compiler.ir.module_attributes import MODULE_ATTRIBUTES

    live = dir(fx.GraphModule(torch.nn.Module(), fx.Graph()))
    # names of two leading underscores vary with what the process has run (torch patches some
    # in, '___needs_generation_tag_patch'); the lowering checks the live list as well
    assert {n for n in live if not n.startswith("__")} == {
        n for n in MODULE_ATTRIBUTES if not n.startswith("__")
    }
