"""Train and benchmark A3C: python a3c_benchmark.py --help"""
import sys

import a3c
from rlsuite.runner import main

if __name__ == "__main__":
    sys.exit(main(
        "a3c", a3c.A3CConfig, a3c.train,
        update_columns=a3c.UPDATE_COLUMNS, episode_columns=a3c.EPISODE_COLUMNS,
        description=a3c.__doc__.splitlines()[0],
    ))
