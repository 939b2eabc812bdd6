"""``python -m wsanalyze`` is the ``wsanalyze`` command."""

from wsanalyze.cli import main

raise SystemExit(main())
