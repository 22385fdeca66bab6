"""The order `netc emit`'s classes register their children in: the lowering's, so the emitted
module's state_dict keys come in the same order as the compiled one's; and the order of the
network's forward where some outputs are eval-only (training returns before making them)."""

from __future__ import annotations

from collections.abc import Collection


def training_first(
    order: list[str],
    inputs: dict[str, list[str]],
    outputs: list[str],
    trained: list[int] | None,
) -> tuple[list[str], int]:
    """The forward's steps with those the training outputs (at ``trained``) need first, each
    half in its own order (so nothing is read before it is made), and where the early training
    return goes: after the first half, at its end where training needs every step."""
    if trained is None:
        return order, -1
    needed: set[str] = set()
    stack = [outputs[k] for k in trained]
    while stack:
        r = stack.pop()
        if r in inputs and r not in needed:
            needed.add(r)
            stack.extend(inputs[r])
    first = [r for r in order if r in needed]
    return first + [r for r in order if r not in needed], len(first)


def return_text(outs: list[str], positions: list[int], keys: list[str], many: bool) -> str:
    """``return`` of the outputs at ``positions`` (their variables ``outs``): a dict by the
    spec's keys (identifiers, spec-checked), a list, or the one tensor."""
    if keys:
        pairs = ", ".join(f"{keys[k]!r}: {o}" for k, o in zip(positions, outs, strict=True))
        return f"return {{{pairs}}}"
    return f"return [{', '.join(outs)}]" if many else f"return {outs[0]}"


def nested_orders(
    block_types: dict[str, str], module_orders: dict[str, list[str]], base: str
) -> dict[str, list[str]]:
    """The module_order of each block instance inside the part at ``base`` (a container that is
    no class of its own: SSD's head), by its path relative to the part."""
    prefix = base + "." if base else ""
    return {
        path[len(prefix) :]: module_orders[block_type]
        for path, block_type in block_types.items()
        if path.startswith(prefix) and block_type in module_orders
    }


def registered(
    order: list[str],
    children: list[str],
    lists: Collection[str],
    orders: dict[str, list[str]] | None = None,
) -> list[str]:
    """The parts ``order`` names in the order the lowering registers them: the class's children
    in ``children``'s order, below each as they first run, a module list's children by index
    (an FPN runs its coarsest level first), and a container block's by its module_order."""
    orders = orders or {}
    seen: dict[str, int] = {}
    for rel in order:
        parts = rel.split(".")
        for depth in range(1, len(parts) + 1):
            seen.setdefault(".".join(parts[:depth]), len(seen))

    def key(rel: str) -> tuple[int, ...]:
        parts = rel.split(".")
        out = [children.index(parts[0])]
        for depth in range(2, len(parts) + 1):
            parent, name = ".".join(parts[: depth - 1]), parts[depth - 1]
            listed = parent in lists and name.isdecimal()
            declared = orders.get(parent, [])
            rank = declared.index(name) if name in declared else len(declared)
            out.append(int(name) if listed else rank * len(seen) + seen[".".join(parts[:depth])])
        return tuple(out)

    return sorted(order, key=key)
