"""Train and benchmark TRPO: python trpo_benchmark.py --help"""
import sys

import trpo
from rlsuite.runner import main

if __name__ == "__main__":
    sys.exit(main(
        "trpo", trpo.TRPOConfig, trpo.train,
        update_columns=trpo.UPDATE_COLUMNS, description=trpo.__doc__.splitlines()[0],
    ))
