"""Tutorial 06 - knowledge distillation in a plain loop: embedding MSE and Hinton KL on a tiny example.

What you learn: a frozen teacher maps an English "sentence" to an embedding and a class; the student sees
the "translation" (here: the same content through a different, unknown linear map) and learns, from pairs
only, to reproduce either the teacher's embedding (kd-mse, Reimers & Gurevych 2020) or its output
distribution at temperature T (kd-kl, Hinton et al. 2015). The loop is written out: for epoch, for batch,
loss, backward, step. The student is then scored with the teacher's head on unseen translations.
Read first: the docstring of optical_ref/losses.py. Next: 07_ot_distillation_loop.py.
"""
# %% A toy world: 4 classes, "English" inputs x, "translations" x' = M x, a frozen teacher
import matplotlib.pyplot as plt
import torch

from optical_ref.losses import kd_kl, kd_mse
from optical_ref.tutorial import savefig, setup

out, smoke = setup(__doc__)
torch.manual_seed(0)
d, n_classes, n_pairs = 16, 4, 256
centres = 3 * torch.randn(n_classes, d)
labels = torch.randint(0, n_classes, (2 * n_pairs,))
english = centres[labels] + torch.randn(2 * n_pairs, d)
M = torch.linalg.qr(torch.randn(d, d))[0]             # the "language": an unknown rotation
translation = english @ M.T
teacher_encoder = torch.nn.Linear(d, d)
teacher_head = torch.nn.Linear(d, n_classes)
optimizer = torch.optim.Adam(list(teacher_encoder.parameters()) + list(teacher_head.parameters()), lr=1e-2)
for _ in range(200):                                  # the teacher learns the classes in "English"
    loss = torch.nn.functional.cross_entropy(teacher_head(teacher_encoder(english[:n_pairs])), labels[:n_pairs])
    optimizer.zero_grad(), loss.backward(), optimizer.step()
for p in list(teacher_encoder.parameters()) + list(teacher_head.parameters()):
    p.requires_grad_(False)


def accuracy(encoder, inputs, gold):
    return float((teacher_head(encoder(inputs)).argmax(-1) == gold).float().mean())


print(f"teacher on English: {accuracy(teacher_encoder, english[n_pairs:], labels[n_pairs:]):.2f}, "
      f"teacher on translations (zero-shot): {accuracy(teacher_encoder, translation[n_pairs:], labels[n_pairs:]):.2f}")

# %% The plain distillation loop, once per loss
curves = {}
for method in ["kd-mse", "kd-kl"]:
    torch.manual_seed(1)
    student = torch.nn.Linear(d, d)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    curves[method] = []
    for epoch in range(5 if smoke else 40):
        for start in range(0, n_pairs, 32):
            x_en, x_tr = english[start:start + 32], translation[start:start + 32]
            with torch.no_grad():
                t_embedding = teacher_encoder(x_en)   # what the teacher says about the English side
            s_embedding = student(x_tr)               # what the student says about the translation
            if method == "kd-mse":
                loss = kd_mse(s_embedding, t_embedding)
            else:
                loss = kd_kl(teacher_head(s_embedding), teacher_head(t_embedding), temperature=2.0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            curves[method].append(loss.item())
    print(f"{method}: student on unseen translations {accuracy(student, translation[n_pairs:], labels[n_pairs:]):.2f} "
          "(no label was used)")

fig, ax = plt.subplots(figsize=(5, 3))
for method, values in curves.items():
    ax.semilogy(values, label=method)
ax.set_xlabel("step")
ax.set_ylabel("loss")
ax.legend()
savefig(fig, out, "06_kd_losses.png")
