"""``python -m sentencekit``: the command line."""

from sentencekit.cli.main import main

raise SystemExit(main())
