"""`python -m auditsql` runs the command line."""

from auditsql.cli import main

main()
