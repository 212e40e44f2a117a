"""``python -m idnode.verify.conformance`` is ``idnode verify``."""

from idnode.verify.conformance.cli import main

main()
