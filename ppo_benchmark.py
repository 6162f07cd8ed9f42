"""Train and benchmark PPO: python ppo_benchmark.py --help"""
import sys

import ppo
from rlsuite.runner import main

if __name__ == "__main__":
    sys.exit(main(
        "ppo", ppo.PPOConfig, ppo.train, update_columns=ppo.UPDATE_COLUMNS,
        description=ppo.__doc__.splitlines()[0],
    ))
