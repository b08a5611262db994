"""`python -m nmt` and `torchrun -m nmt` enter the command line here."""

from nmt.cli import main

if __name__ == "__main__":
    main()
