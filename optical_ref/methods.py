"""The method identifiers, as they appear in the results files and on the command line."""

METHODS = ("zero-shot", "kd-mse", "kd-kl", "ot", "ot+kd", "target-supervised")
DISTILLATION_METHODS = ("kd-mse", "kd-kl", "ot", "ot+kd")   # bitext only, no target labels
UPPER_BOUND = "target-supervised"                            # reads target-language labels
