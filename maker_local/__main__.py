import sys

from maker_local.cli import main

sys.exit(main())
