"""``python -m anyrnn``: the command line (see :mod:`anyrnn.cli`)."""

from .cli import main

raise SystemExit(main())
