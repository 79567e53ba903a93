"""``python -m posterlab``: the same as the ``posterlab`` command."""

from posterlab.cli import main

if __name__ == "__main__":
    main()
