"""Tutorial 07 - OT distillation in the same loop: the OT loss replacing or adding to the KD loss.

What you learn: distillation can also work on tokens. A "sentence" is now a set of token vectors; the
translation has the same tokens in a different order (word order differs across languages) through an
unknown map. A position-by-position MSE pairs the wrong tokens and fails; the OT loss <P, C>_F lets the
Sinkhorn plan P find which student token goes with which teacher token, so the student learns the map
anyway — up to scale: a cosine cost cannot see the length of the vectors, so the error below is measured
after dividing W M by s = tr(W M) / d (the raw distance depends on the starting weights). ot+kd adds the
sentence-level MSE of tutorial 06.
Read first: 06_kd_loop.py and 05_tokens_as_point_clouds.py. Next: 08_compare_quick.py.
"""
# %% Token sets: 6 tokens per sentence, shuffled in the translation, mapped by an unknown rotation
import matplotlib.pyplot as plt
import torch

from optical_ref.losses import kd_mse, ot_distill
from optical_ref.tutorial import savefig, setup

out, smoke = setup(__doc__)
torch.manual_seed(0)
d, n_tokens, n_pairs, vocabulary = 8, 6, 256, 40
words = torch.randn(vocabulary, d)
sentences = torch.randint(0, vocabulary, (n_pairs, n_tokens))
english_tokens = words[sentences]                                   # (N, 6, d): the teacher's tokens
order = torch.argsort(torch.rand(n_pairs, n_tokens), dim=1)         # each translation reorders its words
M = torch.linalg.qr(torch.randn(d, d))[0]
translated_tokens = torch.gather(english_tokens, 1, order[..., None].expand(-1, -1, d)) @ M.T
mask = torch.ones(32, n_tokens, dtype=torch.bool)


def map_error(student):
    """How far the learned map is from the true inverse up to scale: || W M / s - I || with s = tr(W M) / d,
    the multiple of the identity closest to W M (s I minimises || W M - s I ||; the cosine cost of OT is
    blind to the scale)."""
    A = student.weight @ M
    return (A / (A.trace() / d) - torch.eye(d)).norm().item()


# %% The same plain loop, three losses
curves = {}
for method in ["position-wise mse", "ot", "ot+kd"]:
    torch.manual_seed(1)
    student = torch.nn.Linear(d, d, bias=False)
    optimizer = torch.optim.Adam(student.parameters(), lr=2e-2)
    curves[method] = []
    for epoch in range(3 if smoke else 30):
        for start in range(0, n_pairs, 32):
            t_tokens = english_tokens[start:start + 32]
            s_tokens = student(translated_tokens[start:start + 32])
            if method == "position-wise mse":
                loss = kd_mse(s_tokens, t_tokens)                           # pairs token i with token i: wrong
            else:
                loss = ot_distill(s_tokens, t_tokens, mask, mask, eps=0.05, n_iter=50, grad="envelope", cost="cosine")
                if method == "ot+kd":
                    loss = loss + kd_mse(s_tokens.mean(1), t_tokens.mean(1))  # sentence means, order-free
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        curves[method].append(map_error(student))
    print(f"{method:>18}: distance of the learned map from the true inverse, up to scale {curves[method][-1]:.3f}")

fig, ax = plt.subplots(figsize=(5, 3))
for method, values in curves.items():
    ax.plot(values, label=method)
ax.set_xlabel("epoch")
ax.set_ylabel("||W M / s - I||,  s = tr(W M) / d")
ax.legend()
savefig(fig, out, "07_ot_vs_positionwise.png")
