import sys

from gmid.cli import main

sys.exit(main())
