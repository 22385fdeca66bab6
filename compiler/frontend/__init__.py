"""The front end: YAML text -> checked spec -> IR graph with every shape known (never imports
torch)."""
