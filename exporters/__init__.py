"""Exporters from the compiler's IR and modules: ONNX (validated in onnxruntime) and Graphviz."""
