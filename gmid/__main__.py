import sys

from gmid.cli.main import main

sys.exit(main())
