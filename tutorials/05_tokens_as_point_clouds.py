"""Tutorial 05 - tokens as point clouds: the plan between an English sentence and its translation.

What you learn: a sentence is a cloud of token vectors; OPTICAL aligns the student's tokens (translation)
with the teacher's tokens (English) by OT with the cost C_ij = 1 - cos(s_i, t_j). What OT distillation does to
the plan is measured here, not assumed, over 50 test pairs: the transport cost <P, C> falls (the student's
Spanish tokens move onto the teacher's English cloud), but at this fixed eps the plan gets *more* diffuse, not
more one-to-one (the largest share of a row drops and the row entropy rises): the loss pulls all of the
student's tokens towards the whole English cloud, which makes every cost small and alike. Token-level
alignment is not what this small encoder learns from 1k pairs; compare the results in tutorials/results/README.md.
Read first: 04_sinkhorn_torch.py. Needs the reduced-MTOP data, looked for in this order: --data-dir DIR,
$OPTICAL_REF_DATA, ../shared/data from the current folder, ../shared/data beside the repository, the user
cache (tutorials/DATA.md). Next: 06_kd_loop.py.
"""
# %% A small teacher on English reduced MTOP, and the shared tokenizer
import matplotlib.pyplot as plt
import numpy as np
import torch

from optical_ref.data import reduced_mtop
from optical_ref.encoder import IntentHead, build_encoder
from optical_ref.ot_torch import cost_matrix, sinkhorn
from optical_ref.text import train_tokenizer
from optical_ref.train import TrainConfig, teacher_outputs, train_student, train_teacher
from optical_ref.tutorial import savefig, setup

out, smoke = setup(__doc__)
torch.set_num_threads(2)
data = reduced_mtop(langs=["es"])
intents = {name: k for k, name in enumerate(data.intents)}
english, pairs = data.labelled("train", "en"), data.bitext("es")
tokenizer = train_tokenizer([u.text for u in english] + [p.target for p in pairs])
cfg = TrainConfig(teacher_epochs=2 if smoke else 8, student_steps=10 if smoke else 150)
teacher, head = build_encoder(len(tokenizer), seed=0), IntentHead(128, len(data.intents))
dev = data.labelled("dev", "en")
train_teacher(teacher, head, tokenizer, [u.text for u in english], [intents[u.intent] for u in english],
              [u.text for u in dev], [intents[u.intent] for u in dev], cfg, seed=0)


# %% The plan for one test pair, before and after OT distillation
def plan_for(student, target, english_text):
    with torch.no_grad():
        s = student(student.batch(tokenizer, [target]))
        t = teacher(teacher.batch(tokenizer, [english_text]))
        C = cost_matrix(s.tokens[0][s.token_mask[0]][None], t.tokens[0][t.token_mask[0]][None])[0]
        return sinkhorn(None, None, C.double(), 0.05, tol=1e-7, max_iter=100_000).plan.numpy()


test_es, test_en = data.labelled("test", "es"), data.labelled("test", "en")
k = next(i for i, u in enumerate(test_es) if 5 <= len(u.text.split()) <= 8)
target, english_text = test_es[k].text, test_en[k].text
rows = tokenizer.tokenize(target)
cols = tokenizer.tokenize(english_text)
before = plan_for(teacher, target, english_text)
teacher_side = teacher_outputs(teacher, head, tokenizer, [p.en for p in pairs])
student, _ = train_student("ot", teacher, head, tokenizer, [p.target for p in pairs], cfg, seed=0, teacher=teacher_side)
after = plan_for(student, target, english_text)

fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
for ax, plan, title in zip(axes, [before, after], ["before distillation", f"after {cfg.student_steps} OT steps"]):
    image = ax.imshow(plan * len(rows), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("teacher tokens (en)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the row's mass")
axes[0].set_ylabel("student tokens (es)")


# %% The claim, measured: how concentrated are the plans, before and after, over 50 test pairs?
def cost_for(student, target, english_text):
    with torch.no_grad():
        s = student(student.batch(tokenizer, [target]))
        t = teacher(teacher.batch(tokenizer, [english_text]))
        return cost_matrix(s.tokens[0][s.token_mask[0]][None], t.tokens[0][t.token_mask[0]][None])[0].double().numpy()


def concentration(model, n=10 if smoke else 50):
    shares, entropies, costs = [], [], []
    for u_es, u_en in list(zip(test_es, test_en))[:n]:
        P = plan_for(model, u_es.text, u_en.text)
        rows_normalised = P / P.sum(1, keepdims=True)
        shares.append(rows_normalised.max(1).mean())
        entropies.append(-(rows_normalised * np.log(rows_normalised + 1e-300)).sum(1).mean() / np.log(P.shape[1]))
        costs.append((P * cost_for(model, u_es.text, u_en.text)).sum())
    return float(np.mean(shares)), float(np.mean(entropies)), float(np.mean(costs))


share_before, entropy_before, cost_before = concentration(teacher)
share_after, entropy_after, cost_after = concentration(student)
print(f"transport cost <P, C>:       before {cost_before:.3f}, after {cost_after:.3f} (what the loss lowers)")
print(f"mean largest share of a row: before {share_before:.3f}, after {share_after:.3f} (1 = one-to-one)")
print(f"mean row entropy / log(m):   before {entropy_before:.3f}, after {entropy_after:.3f} (1 = uniform)")
print(f"pair: {target!r} <-> {english_text!r}")
savefig(fig, out, "05_plans.png")
