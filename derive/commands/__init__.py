"""The subcommands of ``derive``: one module each, registered in `derive.cli.COMMANDS`."""
