"""``python -m llmfast``: the ``llmfast`` command line (see ``llmfast.cli``)."""

from llmfast.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
