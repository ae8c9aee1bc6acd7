"""The `palabre` sub-commands, one module per area; `palabre.cli` assembles them."""
