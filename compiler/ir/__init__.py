"""The IR: the graph of primitive-op nodes (graph.py), its module tree (tree.py) and the passes
over it."""
