"""One module per part of the stack: a spec in, that part's objects and files out (pure)."""
