"""``python -m idnode`` is ``idnode``."""

from idnode.cli import app

app(prog_name="idnode")
