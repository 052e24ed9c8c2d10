"""`python -m cli`: the `arq-jobs` console script."""

from cli.main import main

if __name__ == "__main__":
    main()
