from maker_local.cli import entry

entry()
