"""Subcommands of the ``bioface`` console command, one module each."""
