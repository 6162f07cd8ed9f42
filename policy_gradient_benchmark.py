"""Train and benchmark REINFORCE: python policy_gradient_benchmark.py --help"""
import sys

import policy_gradient
from rlsuite.runner import main

if __name__ == "__main__":
    sys.exit(main(
        "policy_gradient", policy_gradient.PolicyGradientConfig, policy_gradient.train,
        update_columns=policy_gradient.UPDATE_COLUMNS,
        description=policy_gradient.__doc__.splitlines()[0],
    ))
