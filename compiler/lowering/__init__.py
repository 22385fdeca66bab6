"""The torch back end: IR -> module tree, initialised, loaded with weights, folded for inference."""
