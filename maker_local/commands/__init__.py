"""One module per `maker-local` command: `add_cli_args(parser)` and `main(args)`."""
