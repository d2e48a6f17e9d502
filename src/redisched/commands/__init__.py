"""The CLI's larger subcommands, one module each, imported only when run."""
