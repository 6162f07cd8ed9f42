"""Train and benchmark A2C: python a2c_benchmark.py --help"""
import sys

import a2c
from rlsuite.runner import main

if __name__ == "__main__":
    sys.exit(main(
        "a2c", a2c.A2CConfig, a2c.train, update_columns=a2c.UPDATE_COLUMNS,
        description=a2c.__doc__.splitlines()[0],
    ))
