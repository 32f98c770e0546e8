"""``python -m custseg``."""

from custseg.cli import main

if __name__ == "__main__":
    main()
