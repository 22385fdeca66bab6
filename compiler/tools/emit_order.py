"""The order `netc emit`'s classes register their children in: the lowering's, so the emitted
module's state_dict keys come in the same order as the compiled one's."""

from __future__ import annotations

from collections.abc import Collection


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
