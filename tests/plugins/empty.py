"""A module that declares no ops."""
