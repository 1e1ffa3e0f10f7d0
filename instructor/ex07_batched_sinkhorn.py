"""Answer key of exercise batched-sinkhorn (plan = f(C, mask_a, mask_b, eps): batched, padding-masked torch Sinkhorn).

Written out with numpy / torch only; graded like a
student's file: `python -m optical_ref check batched-sinkhorn --impl instructor/ex07_batched_sinkhorn.py:batched_sinkhorn`.
"""
import torch
def batched_sinkhorn(C, mask_a, mask_b, eps):
    real = mask_a[:, :, None] & mask_b[:, None, :]
    C = torch.where(real, C, torch.zeros_like(C))
    log_a = torch.log(mask_a / mask_a.sum(1, keepdim=True))
    log_b = torch.log(mask_b / mask_b.sum(1, keepdim=True))
    g = torch.zeros_like(log_b)
    C_over_eps = C / eps
    for it in range(20_000):
        f = log_a - torch.logsumexp(g[:, None, :] - C_over_eps, dim=2)
        g = log_b - torch.logsumexp(f[:, :, None] - C_over_eps, dim=1)
        if it % 25 == 0:   # the exercise asks for 1e-10 or better; checking costs a pass
            P = torch.exp(f[:, :, None] + g[:, None, :] - C_over_eps)
            if (P.sum(2) - log_a.exp()).abs().sum() < 1e-10:
                break
    return torch.exp(f[:, :, None] + g[:, None, :] - C_over_eps)
