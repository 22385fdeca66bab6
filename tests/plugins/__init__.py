"""Plugin modules the plugin tests enable: one that works without an ONNX rule, and broken ones."""
