"""``python -m deltaz`` is the same as the ``deltaz`` console command."""

from deltaz.apps.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
