"""The method identifiers, as they appear in the results files and on the command line."""

METHODS = ("zero-shot", "kd-mse", "kd-kl", "ot", "ot+kd", "target-supervised", "kd-score")
DISTILLATION_METHODS = ("kd-mse", "kd-kl", "ot", "ot+kd", "kd-score")   # bitext only, no target labels
UPPER_BOUND = "target-supervised"                                        # reads target-language labels
# a preset that names no methods runs these (the designs that came before kd-score, unchanged)
FIRST_METHODS = ("zero-shot", "kd-mse", "kd-kl", "ot", "ot+kd", "target-supervised")
