"""``python -m dataperf``: the ``dataperf`` command, for processes that start others."""

from dataperf.cli import main

main()
