"""`python -m jobctl.cli ...`: the `jobctl` command, as `jobctl up` starts its services."""

from jobctl.cli import main

main()
