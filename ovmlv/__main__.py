"""``python -m ovmlv``: the same as the ``ovmlv`` command."""

from ovmlv.cli import main

raise SystemExit(main())
