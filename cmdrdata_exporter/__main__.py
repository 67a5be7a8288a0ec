"""``python -m cmdrdata_exporter`` runs the command-line tool."""

import sys

from cmdrdata_exporter.cli import main

sys.exit(main())
