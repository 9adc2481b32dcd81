"""The question-to-question judge tried on the help center (third session; not shipped).

    python scripts/helpcenter_qq_judge.py pairs OUT_DIR     # OUT_DIR/train.jsonl, OUT_DIR/dev.jsonl
    sentsim train cross-encoder --train OUT_DIR/train.jsonl --dev OUT_DIR/dev.jsonl \
        --base bi-helpcenter --epochs 1 --batch-size 16 --lr 3e-5 --max-length 64 --seed 1 --out CE
    python scripts/helpcenter_qq_judge.py sweep CE          # dev Accuracy@1 per (b, w)

``pairs``: each Banking77 train question (the 9,000 outside the dev tenth) with one positive, a
question of its intent (its nearest by ``minilm`` half the time, else a random one), and its two
nearest ``minilm`` neighbours of other intents as negatives; selection pairs: 300 dev questions
with their 5 nearest train questions by ``bi-helpcenter``, labelled by intent.

``sweep``: for every dev question, the 20 nearest train questions by ``bi-helpcenter`` are scored
by the judge; an article's example score is its best example's ``b · judge + (1 − b) · cosine``
(the lowest of the 20 for articles without one), fused as ``w · article cosine + (1 − w) ·
example``, the article cosine being that of the whole article text (title and body, truncated).
Test questions are never read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from sentsim.bi_encoder import BiEncoder
from sentsim.corpus import document_text
from sentsim.cross_encoder import CrossEncoder
from sentsim.helpcenter import articles, intent_articles, train_dev_split

NEAREST = 20


def _encode(model: str, texts: list[str]) -> np.ndarray:
    return BiEncoder.load(model).encode(texts, show_progress=False)


def pairs(out: Path) -> None:
    """Write the training and selection pairs."""
    train, dev = train_dev_split()
    questions = [q for q, _ in train]
    intents = np.array([c for _, c in train])
    plain = _encode("minilm", questions)
    tuned = _encode("bi-helpcenter", questions)
    dev_tuned = _encode("bi-helpcenter", [q for q, _ in dev])
    rng = np.random.default_rng(0)
    by_intent: dict[str, list[int]] = {}
    for i, c in enumerate(intents):
        by_intent.setdefault(str(c), []).append(i)
    sims = plain @ plain.T
    np.fill_diagonal(sims, -2)
    rows = []
    for i, question in enumerate(questions):
        order = np.argsort(-sims[i])[:30]
        same = [j for j in order if intents[j] == intents[i]]
        other = [j for j in order if intents[j] != intents[i]]
        mates = [j for j in by_intent[str(intents[i])] if j != i]
        positive = same[0] if same and rng.random() < 0.5 else rng.choice(mates)
        rows.append({"sentence1": question, "sentence2": questions[positive], "label": 1})
        rows.extend(
            {"sentence1": question, "sentence2": questions[j], "label": 0} for j in other[:2]
        )
    rng.shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    near = dev_tuned @ tuned.T
    with (out / "dev.jsonl").open("w") as handle:
        for i in rng.choice(len(dev), 300, replace=False):
            for j in np.argsort(-near[i])[:5]:
                label = int(intents[j] == dev[i][1])
                row = {"sentence1": dev[i][0], "sentence2": questions[j], "label": label}
                handle.write(json.dumps(row) + "\n")
    print(f"{out}: {len(rows)} training pairs, 1,500 selection pairs")


def sweep(judge_dir: str) -> None:
    """Print dev Accuracy@1 for each judge share b and article weight w."""
    docs = articles()
    position = {d.id: k for k, d in enumerate(docs)}
    mapping = intent_articles()
    train, dev = train_dev_split()
    train_article = np.array([position[mapping[c]] for _, c in train])
    dev_article = np.array([position[mapping[c]] for _, c in dev])
    questions = _encode("bi-helpcenter", [q for q, _ in train])
    queries = _encode("bi-helpcenter", [q for q, _ in dev])
    article_sims = queries @ _encode("bi-helpcenter", [document_text(d) for d in docs]).T
    question_sims = queries @ questions.T
    top = np.argsort(-question_sims, axis=1)[:, :NEAREST]
    judge = CrossEncoder.load(judge_dir)
    texts = [(dev[i][0], train[j][0]) for i in range(len(dev)) for j in top[i]]
    judged = judge.predict(texts, batch_size=64).reshape(len(dev), NEAREST)
    for b in (0.0, 0.1, 0.2, 0.3, 0.5, 1.0):
        accuracies = []
        for w in (0.0, 0.1, 0.2, 0.3):
            correct = 0
            for i in range(len(dev)):
                mixed = b * judged[i] + (1 - b) * question_sims[i, top[i]]
                best: dict[int, float] = {}
                for j, value in zip(top[i], mixed, strict=True):
                    best[int(train_article[j])] = max(best.get(int(train_article[j]), -9.0), value)
                example = np.array([best.get(a, mixed.min()) for a in range(len(docs))])
                fused = w * article_sims[i] + (1 - w) * example
                correct += int(fused.argmax() == dev_article[i])
            accuracies.append(f"w={w:g}: {100 * correct / len(dev):.2f}")
        print(f"b={b:g}  " + "  ".join(accuracies))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("pairs", "sweep"):
        sys.exit(__doc__)
    pairs(Path(sys.argv[2])) if sys.argv[1] == "pairs" else sweep(sys.argv[2])
