"""``python -m jitaudit.cli``: the same as the ``jitaudit`` command."""

from jitaudit.cli import main

raise SystemExit(main())
