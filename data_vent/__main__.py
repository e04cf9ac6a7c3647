"""python -m data_vent: the CLI."""

from data_vent.cli import main

main()
