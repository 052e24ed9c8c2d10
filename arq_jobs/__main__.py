"""`python -m arq_jobs`: the `arq-jobs` command line."""

from arq_jobs._cli.main import main

if __name__ == "__main__":
    main()
