import sys

from stemd.cli import main

sys.exit(main())
