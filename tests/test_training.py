"""Training: losses by hand, batching invariants, data checks, and ``fit`` runs on tiny models.

Every run trains the 2-layer, 32-wide BERT of ``conftest.py`` on a few dozen hand-made pairs for
a few dozen steps: enough to see the loss fall, the best epoch kept and a resumed run end on the
very weights of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder
from sentsim.data import read_pairs
from sentsim.errors import DataError, SentsimError
from sentsim.training import TrainReport, TrainSettings, fit
from sentsim.training.bi import (
    BiEncoderTask,
    RetrievalTask,
    cosent_loss,
    cosine_mse_loss,
    mnrl_loss,
)
from sentsim.training.card import write_card
from sentsim.training.cross import CrossEncoderTask
from sentsim.training.data import (
    MIN_TRAIN_ROWS,
    TargetKind,
    Triple,
    distinct_positive_batches,
    load_train_data,
    read_triples,
    shuffled_batches,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GRADED = [
    ("my card was declined", "why was my payment declined", 4.5),
    ("a man plays guitar", "a woman is eating food", 0.2),
    ("the dog", "cat", 1.0),
    ("pin", "atm cash", 2.0),
    ("cat", "the dog", 1.5),
    ("top up", "how can i top up", 4.0),
    ("where is my card", "my card has not arrived", 3.5),
    ("exchange rate", "euro dollar pound", 2.5),
    ("lost card", "my card was stolen", 3.8),
    ("a boy plays soccer", "a girl plays piano", 1.2),
    ("refund", "my money back", 3.0),
    ("freeze my card", "block my card", 4.8),
    ("the beach", "a house", 0.3),
    ("fee for atm", "atm cash fee", 4.1),
    ("pay", "payment", 4.4),
    ("road", "car", 2.2),
]
GRADED_DEV = [
    ("my payment was declined", "card declined", 4.2),
    ("a girl plays guitar", "a man is eating", 0.5),
    ("dog", "the cat", 1.4),
    ("atm pin", "cash", 2.1),
    ("new card", "card delivery", 3.3),
    ("euro rate", "exchange", 3.9),
    ("soccer", "piano", 0.8),
    ("block card", "freeze card", 4.9),
]
TOPICS = [
    "my card was declined",
    "a man plays guitar",
    "the dog",
    "pin",
    "top up",
    "where is my card",
    "exchange rate",
    "lost card",
]
# Memorisable: the label is whether the second text says yes.
YES_NO = [(t, "yes it is", 1) for t in TOPICS] + [(t, "no it is not", 0) for t in TOPICS]
NLI = [
    ("a man plays guitar", "a man plays music", "entailment"),
    ("a man plays guitar", "a woman plays piano", "neutral"),
    ("a man plays guitar", "nobody plays", "contradiction"),
    ("the dog is eating", "an animal eats", "entailment"),
    ("the dog is eating", "the dog is on the beach", "neutral"),
    ("the dog is eating", "the dog is not eating", "contradiction"),
    ("my card was declined", "a payment failed", "entailment"),
    ("my card was declined", "i was abroad", "neutral"),
    ("my card was declined", "the payment worked", "contradiction"),
    ("a girl plays soccer", "a girl plays", "entailment"),
    ("a girl plays soccer", "a girl plays at the beach", "neutral"),
    ("a girl plays soccer", "a boy eats food", "contradiction"),
]
TRIPLES = [
    ("card declined", "why was my card declined", "how to top up"),
    ("payment declined", "why was my card declined", None),
    ("top up with cash", "how to top up", None),
    ("add money", "how to top up", "exchange rate for euro"),
    ("euro rate", "exchange rate for euro", None),
    ("pound rate", "exchange rate for euro", "where is my new card"),
    ("card not arrived", "where is my new card", None),
    ("card delivery", "where is my new card", None),
    ("lost my card", "freeze a lost card", "how to top up"),
    ("card stolen", "freeze a lost card", None),
    ("atm fee", "fees for cash at the atm", None),
    ("cash fee", "fees for cash at the atm", None),
]
DEV_TRIPLES = [
    ("declined card", "why was my card declined", None),
    ("top up card", "how to top up", None),
    ("rate for dollar", "exchange rate for euro", None),
    ("new card when", "where is my new card", None),
    ("stolen", "freeze a lost card", None),
    ("fee atm", "fees for cash at the atm", None),
    ("my card was declined", "why was my card declined", None),
    ("topup", "how to top up", None),
]
QUIET: dict[str, Any] = {"show_progress": False, "log": lambda _: None}


def write_pairs(path: Path, rows: list[tuple[str, str, Any]], target: str = "score") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", target])
        writer.writerows(rows)
    return path


def write_triples(path: Path, rows: list[tuple[str, str, str | None]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for anchor, positive, negative in rows:
            row = {"anchor": anchor, "positive": positive}
            if negative:
                row["negative"] = negative
            handle.write(json.dumps(row) + "\n")
    return path


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def mean_loss(task: Any, batch_size: int = 4) -> float:
    """Mean training loss over one epoch's batches, without dropout or gradients."""
    task.module.eval()
    with torch.no_grad():
        losses = [float(task.loss(b)) for b in task.batches(0, 0, batch_size)]
    task.module.train()
    return sum(losses) / len(losses)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-data")
    return {
        "graded": write_pairs(root / "graded.csv", GRADED),
        "graded_dev": write_pairs(root / "graded_dev.csv", GRADED_DEV),
        "yes_no": write_pairs(root / "yes_no.csv", YES_NO, "label"),
        "nli": write_pairs(root / "nli.csv", NLI, "label"),
        "nli_dev": write_pairs(root / "nli_dev.csv", NLI[:6], "label"),
        "triples": write_triples(root / "triples.jsonl", TRIPLES),
        "dev_triples": write_triples(root / "dev_triples.jsonl", DEV_TRIPLES),
    }


# -- losses ----------------------------------------------------------------------------------------


def test_cosent_loss_by_hand() -> None:
    """``log(1 + Σ_{y_i > y_j} exp(λ (cos_j − cos_i)))`` over the 3 ordered pairs of 3 items."""
    cos = torch.tensor([0.9, 0.5, 0.1], dtype=torch.float64)
    target = torch.tensor([1.0, 0.2, 0.6], dtype=torch.float64)
    # y_0 > y_1: 20 (0.5 − 0.9); y_0 > y_2: 20 (0.1 − 0.9); y_2 > y_1: 20 (0.5 − 0.1).
    expected = math.log(1 + math.exp(-8) + math.exp(-16) + math.exp(8))
    assert float(cosent_loss(cos, target)) == pytest.approx(expected, rel=1e-12)
    expected_1 = math.log(1 + math.exp(-0.4) + math.exp(-0.8) + math.exp(0.4))
    assert float(cosent_loss(cos, target, scale=1.0)) == pytest.approx(expected_1, rel=1e-12)


def test_cosent_loss_ignores_ties_and_is_near_zero_when_the_order_is_right() -> None:
    """Equal targets add no term (loss ``log 1 = 0``); a well-ordered batch has a small loss."""

    def t(*values: float) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64)

    assert float(cosent_loss(t(0.3, 0.8), t(0.5, 0.5))) == 0.0
    right = cosent_loss(t(0.9, 0.1), t(1.0, 0.0))
    wrong = cosent_loss(t(0.1, 0.9), t(1.0, 0.0))
    assert float(right) == pytest.approx(math.log(1 + math.exp(-16)), rel=1e-9)
    assert float(wrong) > 15


def test_cosine_mse_loss_by_hand() -> None:
    cos = torch.tensor([0.9, 0.5, 0.1])
    target = torch.tensor([1.0, 0.2, 0.6])
    assert float(cosine_mse_loss(cos, target)) == pytest.approx((0.01 + 0.09 + 0.25) / 3)


def test_mnrl_loss_is_cross_entropy_by_hand() -> None:
    """``mean_i −log softmax(λ cos(a_i, c_·))_i``; candidates: positives, then hard negatives."""
    rng = np.random.default_rng(0)
    anchors = rng.normal(size=(3, 5))
    candidates = rng.normal(size=(4, 5))  # 3 positives, then one hard negative
    a = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    c = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    logits = 20.0 * a @ c.T
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -np.mean([log_softmax[i, i] for i in range(3)])
    got = mnrl_loss(torch.tensor(anchors), torch.tensor(candidates))
    assert float(got) == pytest.approx(expected, rel=1e-10)
    # Scaling a vector changes nothing: the loss is on cosines.
    scaled = mnrl_loss(torch.tensor(anchors) * 7, torch.tensor(candidates) * 0.1)
    assert float(scaled) == pytest.approx(expected, rel=1e-10)


# -- batching --------------------------------------------------------------------------------------


def test_graded_dev_metrics_score_a_dot_product_model_as_eval_sts_does(
    files: dict[str, Path], tiny_dot_dir: Path
) -> None:
    """The dev Spearman that picks the best epoch is what ``eval sts`` reports for the saved
    model: a dot-product model's by its dot product (the cosine before, whatever it said)."""
    from sentsim.evaluation.scorers import EncoderPairScorer
    from sentsim.evaluation.sts import evaluate_sts
    from sentsim.training.bi import dev_metrics

    model = BiEncoder.load(tiny_dot_dir, device="cpu")
    dev = read_pairs(files["graded_dev"])
    got = dev_metrics(model, dev)
    expected = evaluate_sts(dev, EncoderPairScorer(model))
    assert got["spearman"] == pytest.approx(expected.spearman, abs=0.01)  # rounded there
    assert got["pearson"] == pytest.approx(expected.pearson, abs=0.01)
    cosine = evaluate_sts(dev, EncoderPairScorer(model, metric="cosine"))
    assert cosine.pearson != pytest.approx(got["pearson"], abs=0.1)  # so the test could fail


def test_shuffled_batches_are_a_seeded_permutation() -> None:
    items = list(range(10))
    batches = shuffled_batches(items, epoch=0, seed=1, batch_size=4)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(x for b in batches for x in b) == items
    assert batches == shuffled_batches(items, epoch=0, seed=1, batch_size=4)
    assert batches != shuffled_batches(items, epoch=1, seed=1, batch_size=4)


def _clashing_triples() -> list[Triple]:
    """24 triples over 5 positives; some negatives are other triples' positives."""
    positives = [f"article {i}" for i in range(5)]
    out = []
    for i in range(24):
        negative = positives[(i + 1) % 5] if i % 3 == 0 else (f"other {i}" if i % 3 == 1 else None)
        out.append(Triple(f"question {i}", positives[i % 5], negative))
    return out


@pytest.mark.parametrize(("seed", "epoch", "batch_size"), [(0, 0, 4), (1, 3, 3), (7, 2, 8)])
def test_distinct_positive_batches_never_share_a_positive(
    seed: int, epoch: int, batch_size: int
) -> None:
    """In every batch no two triples share a positive, no negative is another's positive, and the
    batches together hold every triple exactly once."""
    triples = _clashing_triples()
    batches = distinct_positive_batches(triples, epoch=epoch, seed=seed, batch_size=batch_size)
    assert Counter(t for b in batches for t in b) == Counter(triples)
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        positives = [t.positive for t in batch]
        assert len(set(positives)) == len(positives)
        for t in batch:
            others = {u.positive for u in batch if u is not t}
            assert t.negative not in others
    again = distinct_positive_batches(triples, epoch=epoch, seed=seed, batch_size=batch_size)
    assert again == batches


def test_distinct_positive_batches_one_positive_makes_batches_of_one() -> None:
    triples = [Triple(f"q{i}", "the only article") for i in range(5)]
    batches = distinct_positive_batches(triples, epoch=0, seed=0, batch_size=4)
    assert [len(b) for b in batches] == [1] * 5
    assert distinct_positive_batches([], epoch=0, seed=0, batch_size=4) == []


# -- training data ---------------------------------------------------------------------------------


def test_load_train_data_graded_is_normalized(files: dict[str, Path]) -> None:
    """Scores map to 0–1 over the file's range; ``both_orders`` adds each pair reversed."""
    data = load_train_data([files["graded"]])
    assert data.kind == TargetKind.GRADED
    assert data.sources == [str(files["graded"])]
    targets = [p.target for p in data.pairs]
    lo, hi = 0.2, 4.8
    assert targets == pytest.approx([(s - lo) / (hi - lo) for *_, s in GRADED])
    both = load_train_data([files["graded"]], both_orders=True)
    assert len(both.pairs) == 2 * len(GRADED)
    assert (both.pairs[1].a, both.pairs[1].b) == (both.pairs[0].b, both.pairs[0].a)
    assert both.pairs[1].target == both.pairs[0].target


def test_load_train_data_binary_and_classes(files: dict[str, Path], tmp_path: Path) -> None:
    binary = load_train_data([files["yes_no"]])
    assert binary.kind == TargetKind.BINARY
    assert [p.target for p in binary.pairs] == [float(y) for *_, y in YES_NO]
    floats = [(a, b, float(y)) for a, b, y in YES_NO]
    as_floats = write_pairs(tmp_path / "floats.csv", floats, "label")
    assert load_train_data([as_floats]).kind == TargetKind.BINARY  # 1.0 / 0.0: not two classes
    classes = load_train_data([files["nli"]])
    assert classes.kind == TargetKind.CLASSES
    assert classes.labels == ["contradiction", "entailment", "neutral"]  # sorted when not given
    assert [classes.labels[int(p.target)] for p in classes.pairs] == [y for *_, y in NLI]
    ordered = load_train_data([files["nli"]], labels=["entailment", "neutral", "contradiction"])
    assert [p.target for p in ordered.pairs[:3]] == [0.0, 1.0, 2.0]


def test_load_train_data_too_few_rows(tmp_path: Path) -> None:
    short = write_pairs(tmp_path / "short.csv", GRADED[: MIN_TRAIN_ROWS - 1])
    with pytest.raises(DataError, match=r"short\.csv: 7 usable rows; training needs at least 8"):
        load_train_data([short])


def test_load_train_data_mixed_kinds(files: dict[str, Path]) -> None:
    with pytest.raises(DataError, match=r"mix kinds of target \(graded\.csv: graded, nli\.csv"):
        load_train_data([files["graded"], files["nli"]])


def test_a_row_without_the_score_others_have_is_refused(tmp_path: Path) -> None:
    """Scores and labels side by side, one row missing its score: it was trained as binary
    labels, the scores ignored without a word."""
    path = tmp_path / "mixed.csv"
    rows = "".join(f"a{i} b,a{i} c,{i % 5}.5,{i % 2}\n" for i in range(9))
    path.write_text(f"sentence1,sentence2,score,label\n{rows}c d,e f,,0\n")
    with pytest.raises(DataError, match=r"mixed\.csv, line 11: no score, where other rows have"):
        load_train_data([path])


def test_load_train_data_unknown_labels(files: dict[str, Path]) -> None:
    with pytest.raises(DataError, match=r"nli\.csv: labels \['contradiction'\] are not among"):
        load_train_data([files["nli"]], labels=["entailment", "neutral"])


def test_read_triples_formats(tmp_path: Path) -> None:
    """JSONL, CSV and TSV; an empty or absent negative is None."""
    jsonl = read_triples(write_triples(tmp_path / "t.jsonl", TRIPLES))
    assert jsonl == [Triple(a, p, n) for a, p, n in TRIPLES]
    for name, delimiter in (("t.csv", ","), ("t.tsv", "\t")):
        path = tmp_path / name
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow(["anchor", "positive", "negative"])
            writer.writerows([(a, p, n or "") for a, p, n in TRIPLES])
        assert read_triples(path) == jsonl


def test_read_triples_headers_match_as_pair_files_do(tmp_path: Path) -> None:
    """``Anchor,Positive,Negative`` (a spreadsheet's capitals), ``anchor_text`` spellings aside,
    and JSON keys in capitals are the same columns, matched as pair-file headers are: without
    regard to case, spaces, ``_`` or ``-``. Two names for one column are refused, naming both."""
    expected = [Triple(a, p, n) for a, p, n in TRIPLES]
    path = tmp_path / "t.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Anchor", " POSITIVE", "Negative"])
        writer.writerows([(a, p, n or "") for a, p, n in TRIPLES])
    assert read_triples(path) == expected
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"Anchor": a, "Positive": p, **({"NEGATIVE": n} if n else {})}) + "\n"
            for a, p, n in TRIPLES
        ),
        encoding="utf-8",
    )
    assert read_triples(jsonl) == expected
    twice = tmp_path / "twice.csv"
    twice.write_text("anchor,Anchor,positive\n" + "q,q,p\n" * 8, encoding="utf-8")
    with pytest.raises(DataError, match=r"twice\.csv, line 1: 'anchor', 'Anchor' all name"):
        read_triples(twice)


def test_read_triples_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(DataError, match="training file not found"):
        read_triples(missing)
    with pytest.raises(DataError, match=r"training file .* is a folder; give the file itself"):
        read_triples(tmp_path)
    no_positive = tmp_path / "no_positive.csv"
    no_positive.write_text("anchor,answer\n" + "q,a\n" * 10, encoding="utf-8")
    with pytest.raises(
        DataError, match=r"no_positive\.csv, line 1: header has \['anchor', 'answer'"
    ):
        read_triples(no_positive)
    rows = [json.dumps({"anchor": f"q{i}", "positive": f"p{i}"}) for i in range(10)]
    bad_row = tmp_path / "bad_row.jsonl"
    rows[2] = json.dumps({"anchor": "q", "negative": "n"})
    bad_row.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad_row\.jsonl, line 3: needs non-empty 'anchor'"):
        read_triples(bad_row)
    rows[2] = json.dumps(["q", "p"])  # was an AttributeError traceback
    bad_row.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 3: expected a JSON object .* got a list"):
        read_triples(bad_row)
    rows[2] = json.dumps({"anchor": "", "positive": "p"})
    bad_row.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad_row\.jsonl, line 3: needs non-empty 'anchor'"):
        read_triples(bad_row)
    rows[2] = json.dumps(["q", "p"])  # was an AttributeError traceback
    bad_row.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 3: expected a JSON object .* got a list"):
        read_triples(bad_row)
    empty_csv_cell = tmp_path / "empty.csv"
    empty_csv_cell.write_text("anchor,positive\n" + "q,p\n" * 4 + "q,\n" + "q,p\n" * 4)
    with pytest.raises(DataError, match=r"empty\.csv, line 6: needs non-empty"):
        read_triples(empty_csv_cell)
    rows[2] = "{not json"
    bad_row.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad_row\.jsonl, line 3: not valid JSON"):
        read_triples(bad_row)
    with pytest.raises(DataError, match=r"few\.jsonl: 7 rows; training needs at least 8"):
        read_triples(write_triples(tmp_path / "few.jsonl", TRIPLES[:7]))


def test_tasks_refuse_mismatched_data(
    files: dict[str, Path], tiny_bert_dir: Path, tiny_ce_dir: Path
) -> None:
    graded = load_train_data([files["graded"]])
    classes = load_train_data([files["nli"]])
    encoder = BiEncoder.load(tiny_bert_dir, device="cpu")
    with pytest.raises(ValueError, match="unknown loss 'triplet'; expected one of: cosent"):
        BiEncoderTask(encoder, graded, None, loss="triplet")
    with pytest.raises(ValueError, match="loss cosent needs graded scores or 0/1 labels"):
        BiEncoderTask(encoder, classes, None)
    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")
    with pytest.raises(ValueError, match=r"nli_dev\.csv has classes targets .* graded targets"):
        CrossEncoderTask(judge, graded, read_pairs(files["nli_dev"]))


def test_cross_encoder_task_refuses_outputs_that_do_not_fit_the_targets(
    files: dict[str, Path], tiny_bert_dir: Path, tiny_ce_dir: Path
) -> None:
    """Classes on a one-output judge failed at the first step with torch's "Target 1 is out of
    bounds"; scores or 0/1 labels on a three-output model trained output 0 with BCE while predict
    takes a softmax over all three; and classes in another order than the model's outputs trained
    each class into another's output, which the saved labels then misnamed, without a word."""
    classes = load_train_data([files["nli"]])
    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")
    with pytest.raises(ValueError, match=r"3 classes .* has 1 output \[.LABEL_0.\]: load it with"):
        CrossEncoderTask(judge, classes)
    nli = CrossEncoder.load(tiny_bert_dir, labels=classes.labels, device="cpu")
    for kind in ("graded", "yes_no"):
        with pytest.raises(ValueError, match=r"targets train one output; .* has 3 .* num_labels=1"):
            CrossEncoderTask(nli, load_train_data([files[kind]]))
    shuffled = CrossEncoder.load(tiny_bert_dir, labels=classes.labels[::-1], device="cpu")
    with pytest.raises(
        ValueError,
        match=r"classes \['contradiction', 'entailment', 'neutral'\] in this order; "
        r".* \['neutral', 'entailment', 'contradiction'\]",
    ):
        CrossEncoderTask(shuffled, classes)
    CrossEncoderTask(nli, classes)  # the labels of the data, in their order


def test_tasks_refuse_a_dev_file_that_cannot_select_an_epoch(
    files: dict[str, Path], tiny_bert_dir: Path, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """Dev is first scored after an epoch: a dev file of one class made average precision the
    same for every epoch (the first was kept), and constant scores failed only then."""
    yes_no = load_train_data([files["yes_no"]])
    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")
    one_class = read_pairs(write_pairs(tmp_path / "ones.csv", YES_NO[:3], "label"))
    with pytest.raises(DataError, match=r"ones\.csv: 3 pair\(s\), every label 1; .* different"):
        CrossEncoderTask(judge, yes_no, one_class)
    flat = read_pairs(write_pairs(tmp_path / "flat.csv", [("a", "b", 2), ("c", "d", 2)]))
    encoder = BiEncoder.load(tiny_bert_dir, device="cpu")
    with pytest.raises(DataError, match=r"flat\.csv: 2 pair\(s\), every score 2\.0"):
        BiEncoderTask(encoder, load_train_data([files["graded"]]), flat)


# -- fit -------------------------------------------------------------------------------------------


SETTINGS = TrainSettings(epochs=2, batch_size=4, lr=1e-3, warmup_ratio=0.25, seed=5)


def check_finished(out: Path, report: TrainReport, epochs: int) -> None:
    """A finished run: report on disk, no checkpoint left, one history row per epoch."""
    assert report.finished
    assert [row["epoch"] for row in report.history] == list(range(1, epochs + 1))
    assert json.loads((out / "train_report.json").read_text()) == json.loads(
        json.dumps(asdict(report))
    )
    assert not (out / "checkpoint").exists()
    assert not (out / ".saving").exists()
    best_row = report.history[report.best_epoch - 1]
    if report.best_score is None:  # no dev set: the last epoch is kept, no score is made up
        assert report.best_epoch == epochs and all("score" not in r for r in report.history)
    else:
        assert best_row["score"] == max(row["score"] for row in report.history)
        assert best_row["score"] == pytest.approx(report.best_score, abs=1e-4)


def test_fit_cross_encoder_graded(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """Graded pairs: Spearman on dev each epoch; the saved model is the best epoch's."""
    train = load_train_data([files["graded"]])
    dev = read_pairs(files["graded_dev"])
    task = CrossEncoderTask(CrossEncoder.load(tiny_ce_dir, device="cpu"), train, dev)
    report = fit(task, tmp_path / "out", SETTINGS, **QUIET)
    check_finished(tmp_path / "out", report, 2)
    assert {"spearman", "pearson"} <= report.history[0].keys()
    saved = CrossEncoder.load(tmp_path / "out", device="cpu")
    again = CrossEncoderTask(saved, train, dev).evaluate()
    assert again["score"] == pytest.approx(report.best_score, abs=1e-4)


def test_fit_cross_encoder_classes(
    files: dict[str, Path], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """Three classes: cross-entropy training, accuracy on dev, labels kept in the saved model."""
    train = load_train_data([files["nli"]])
    torch.manual_seed(0)
    model = CrossEncoder.load(tiny_bert_dir, labels=train.labels, device="cpu")
    task = CrossEncoderTask(model, train, read_pairs(files["nli_dev"]))
    report = fit(task, tmp_path / "out", replace(SETTINGS, batch_size=3), **QUIET)
    check_finished(tmp_path / "out", report, 2)
    assert "accuracy" in report.history[0]
    assert all(0 <= row["accuracy"] <= 100 for row in report.history)
    saved = CrossEncoder.load(tmp_path / "out", device="cpu")
    assert saved.labels == train.labels
    assert saved.predict([("a", "b")]).shape == (1, 3)
    assert task.describe()["labels"] == train.labels


def test_fit_bi_encoder_cosent(files: dict[str, Path], tiny_bert_dir: Path, tmp_path: Path) -> None:
    """CoSENT on graded pairs; the saved directory re-scores the best epoch's dev score."""
    train = load_train_data([files["graded"]])
    dev = read_pairs(files["graded_dev"])
    encoder = BiEncoder.load(tiny_bert_dir, normalize=True, device="cpu")
    task = BiEncoderTask(encoder, train, dev)
    report = fit(task, tmp_path / "out", SETTINGS, **QUIET)
    check_finished(tmp_path / "out", report, 2)
    assert {"spearman", "pearson"} <= report.history[0].keys()
    saved = BiEncoder.load(tmp_path / "out", device="cpu")
    assert saved.normalize
    again = BiEncoderTask(saved, train, dev).evaluate()
    assert again["score"] == pytest.approx(report.best_score, abs=1e-4)
    assert task.describe()["loss"] == "cosent"


def test_fit_bi_encoder_trains_and_saves_its_dense_layer(
    files: dict[str, Path], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """A Dense layer after pooling (LaBSE's) is trained with the transformer and saved with it."""
    from sentsim.backend import TorchTransformer
    from sentsim.dense import Dense

    torch.manual_seed(0)
    transformer = TorchTransformer(tiny_bert_dir, device="cpu")
    encoder = BiEncoder(transformer, normalize=True, dense=[Dense(32, 16)])
    before = weights(encoder.dense[0])
    train, dev = load_train_data([files["graded"]]), read_pairs(files["graded_dev"])
    report = fit(BiEncoderTask(encoder, train, dev), tmp_path / "out", SETTINGS, **QUIET)
    assert max_diff(weights(encoder.dense[0]), before) > 1e-4
    saved = BiEncoder.load(tmp_path / "out", device="cpu")
    assert saved.dim == 16 and (tmp_path / "out" / "2_Dense" / "model.safetensors").is_file()
    again = BiEncoderTask(saved, train, dev).evaluate()
    assert again["score"] == pytest.approx(report.best_score, abs=1e-4)


def test_fit_bi_encoder_mnrl(files: dict[str, Path], tiny_bert_dir: Path, tmp_path: Path) -> None:
    """MNRL on triples with in-batch and hard negatives; accuracy@1 and MRR@10 on dev anchors."""
    train, dev = read_triples(files["triples"]), read_triples(files["dev_triples"])
    encoder = BiEncoder.load(tiny_bert_dir, normalize=True, device="cpu")
    task = RetrievalTask(encoder, train, dev)
    report = fit(task, tmp_path / "out", SETTINGS, **QUIET)
    check_finished(tmp_path / "out", report, 2)
    for row in report.history:
        assert 0 <= row["accuracy@1"] <= row["mrr@10"] <= 100
    again = RetrievalTask(BiEncoder.load(tmp_path / "out", device="cpu"), train, dev).evaluate()
    assert again["score"] == pytest.approx(report.best_score, abs=1e-4)
    assert task.describe() == {
        "loss": "mnrl",
        "train_triples": 12,
        "hard_negatives": 4,
        "dev_triples": 8,
    }


def _yes_no_task(files: dict[str, Path], tiny_ce_dir: Path, _: Path) -> Any:
    return CrossEncoderTask(
        CrossEncoder.load(tiny_ce_dir, device="cpu"), load_train_data([files["yes_no"]])
    )


def _cosent_task(files: dict[str, Path], _: Path, tiny_bert_dir: Path) -> Any:
    encoder = BiEncoder.load(tiny_bert_dir, normalize=True, device="cpu")
    return BiEncoderTask(encoder, load_train_data([files["graded"]]), None)


def _mnrl_task(files: dict[str, Path], _: Path, tiny_bert_dir: Path) -> Any:
    encoder = BiEncoder.load(tiny_bert_dir, normalize=True, device="cpu")
    return RetrievalTask(encoder, read_triples(files["triples"]))


@pytest.mark.parametrize(
    ("make", "epochs", "lr"),
    [(_yes_no_task, 10, 2e-3), (_cosent_task, 3, 1e-3), (_mnrl_task, 3, 1e-3)],
    ids=["cross-binary", "cosent", "mnrl"],
)
def test_loss_goes_down_on_a_memorisable_set(
    make: Any,
    epochs: int,
    lr: float,
    files: dict[str, Path],
    tiny_ce_dir: Path,
    tiny_bert_dir: Path,
    tmp_path: Path,
) -> None:
    """Training on a few pairs cuts the mean training loss by at least a fifth."""
    task = make(files, tiny_ce_dir, tiny_bert_dir)
    before = mean_loss(task)
    fit(task, tmp_path / "out", TrainSettings(epochs=epochs, batch_size=4, lr=lr, seed=3), **QUIET)
    assert mean_loss(task) < 0.8 * before


class ScriptedDev:
    """A real task whose dev scores are scripted, recording the weights at each evaluation."""

    def __init__(self, task: CrossEncoderTask, scores: list[float]) -> None:
        self.task = task
        self.module = task.module
        self.scores = list(scores)
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def batches(self, epoch: int, seed: int, batch_size: int) -> list[Any]:
        return self.task.batches(epoch, seed, batch_size)

    def loss(self, batch: Any) -> torch.Tensor:
        return self.task.loss(batch)

    def evaluate(self) -> dict[str, float]:
        self.snapshots.append(weights(self.module))
        score = self.scores.pop(0)
        return {"score": score, "spearman": score}

    def save(self, out: Path) -> None:
        self.task.save(out)


def test_best_epoch_is_kept_not_the_last(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """Dev scores 1, 3, 2: the model left in ``out`` is epoch 2's; the report and card say so."""
    train = load_train_data([files["graded"]])
    inner = CrossEncoderTask(CrossEncoder.load(tiny_ce_dir, device="cpu"), train)
    task = ScriptedDev(inner, [1.0, 3.0, 2.0])
    out = tmp_path / "out"
    report = fit(task, out, replace(SETTINGS, epochs=3), **QUIET)
    assert (report.best_epoch, report.best_score) == (2, 3.0)
    check_finished(out, report, 3)
    saved = weights(CrossEncoder.load(out, device="cpu").model)
    assert max_diff(saved, task.snapshots[1]) == 0.0
    assert max_diff(saved, task.snapshots[2]) > 1e-4  # the last epoch did change the weights

    card = write_card(
        out, title="Toy judge", command="sentsim train …", facts=inner.describe(), report=report
    )
    text = card.read_text(encoding="utf-8")
    assert text.startswith("# Toy judge\n")
    assert "best epoch (selected on dev): 2" in text
    assert "| epoch | steps | minutes | spearman |" in text
    assert "| 2 | 8 | " in text and text.rstrip().endswith("| 2.00 |")
    assert f'"train_pairs": {len(GRADED)}' in text and '"lr": 0.001' in text


# -- resume ----------------------------------------------------------------------------------------

RESUME = TrainSettings(
    epochs=2, batch_size=4, lr=1e-3, warmup_ratio=0.25, seed=5, checkpoint_every=2
)
STEPS_PER_EPOCH = len(GRADED) // 4


class Interrupted(Exception):
    """Stands for a crash or Ctrl-C in the middle of a run."""


def _resume_task(
    files: dict[str, Path], tiny_ce_dir: Path, device: str = "cpu"
) -> CrossEncoderTask:
    return CrossEncoderTask(
        CrossEncoder.load(tiny_ce_dir, device=device), load_train_data([files["graded"]])
    )


@pytest.fixture(scope="module")
def uninterrupted(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, torch.Tensor]:
    """Final weights of the run that no one interrupted."""
    task = _resume_task(files, tiny_ce_dir)
    fit(task, tmp_path_factory.mktemp("uninterrupted") / "out", RESUME, **QUIET)
    return weights(task.module)


def _interrupt(
    files: dict[str, Path],
    tiny_ce_dir: Path,
    out: Path,
    at_call: int,
    device: str = "cpu",
    start: str | None = None,
) -> None:
    """Run until the ``at_call``-th batch's loss, which raises."""
    task = _resume_task(files, tiny_ce_dir, device)
    calls = 0
    real_loss = task.loss

    def loss(batch: Any) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == at_call:
            raise Interrupted
        return real_loss(batch)

    task.loss = loss  # type: ignore[method-assign]
    with pytest.raises(Interrupted):
        fit(task, out, RESUME, start=start, **QUIET)
    assert (out / "checkpoint" / "state.json").is_file()


def test_resume_from_another_start_is_refused(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """The card names --base; a run resumed with another one would name the wrong start."""
    out = tmp_path / "out"
    _interrupt(files, tiny_ce_dir, out, 3, start="weights aaaa")
    task = _resume_task(files, tiny_ce_dir)
    with pytest.raises(SentsimError, match=r"'start': \('weights aaaa', 'weights bbbb'\)"):
        fit(task, out, RESUME, resume=True, start="weights bbbb", **QUIET)
    fit(task, out, RESUME, resume=True, start="weights aaaa", **QUIET)  # the same: resumes


@pytest.mark.parametrize(
    ("at_call", "remaining"),
    # 4 steps an epoch, checkpoints after step 2 of each epoch and at each epoch's end.
    [(4, 6), (5, 4), (7, 2)],
    ids=["mid-epoch-1", "start-of-epoch-2", "mid-epoch-2"],
)
def test_resume_ends_on_the_weights_of_an_uninterrupted_run(
    at_call: int,
    remaining: int,
    files: dict[str, Path],
    tiny_ce_dir: Path,
    tmp_path: Path,
    uninterrupted: dict[str, torch.Tensor],
) -> None:
    """Interrupted at a step, resumed with the same settings: same final weights (dropout on).

    The resumed task starts from perturbed weights, so equality can only come from the
    checkpoint (weights, Adam moments, schedule, RNG); it runs only the steps not yet done.
    """
    out = tmp_path / "out"
    _interrupt(files, tiny_ce_dir, out, at_call)
    task = _resume_task(files, tiny_ce_dir)
    with torch.no_grad():
        for param in task.module.parameters():
            param.add_(0.05)
    assert max_diff(weights(task.module), uninterrupted) > 1e-2
    calls = 0
    real_loss = task.loss

    def counted(batch: Any) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return real_loss(batch)

    task.loss = counted  # type: ignore[method-assign]
    messages: list[str] = []
    report = fit(task, out, RESUME, resume=True, show_progress=False, log=messages.append)
    assert calls == remaining
    assert messages[0].startswith("resuming at epoch")
    assert report.steps == RESUME.epochs * STEPS_PER_EPOCH
    check_finished(out, report, RESUME.epochs)
    assert max_diff(weights(task.module), uninterrupted) <= 1e-6
    saved = weights(CrossEncoder.load(out, device="cpu").model)  # no dev: the last epoch is kept
    assert max_diff(saved, uninterrupted) <= 1e-6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_on_a_gpu_ends_on_the_weights_of_an_uninterrupted_run(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """On a GPU, Adam's moments go back to the GPU and dropout's CUDA generator is restored.

    (A run resumed there once stopped at its first step: moments left on the CPU.)
    """
    reference = _resume_task(files, tiny_ce_dir, "cuda")
    fit(reference, tmp_path / "uninterrupted", RESUME, **QUIET)
    expected = {k: v.cpu() for k, v in weights(reference.module).items()}
    _interrupt(files, tiny_ce_dir, tmp_path / "out", 5, "cuda")
    task = _resume_task(files, tiny_ce_dir, "cuda")
    fit(task, tmp_path / "out", RESUME, resume=True, **QUIET)
    resumed = {k: v.cpu() for k, v in weights(task.module).items()}
    assert max_diff(resumed, expected) <= 1e-5


def test_resume_without_a_checkpoint_starts_from_the_beginning(
    files: dict[str, Path],
    tiny_ce_dir: Path,
    tmp_path: Path,
    uninterrupted: dict[str, torch.Tensor],
) -> None:
    task = _resume_task(files, tiny_ce_dir)
    messages: list[str] = []
    fit(task, tmp_path / "out", RESUME, resume=True, show_progress=False, log=messages.append)
    assert messages[0].startswith("no checkpoint in")
    assert max_diff(weights(task.module), uninterrupted) <= 1e-6


def test_resume_with_different_settings_errors(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _interrupt(files, tiny_ce_dir, out, 3)
    task = _resume_task(files, tiny_ce_dir)
    with pytest.raises(
        SentsimError, match=r"different settings than the checkpoint: \{'lr': \(0\.001, 0\.002\)\}"
    ):
        fit(task, out, replace(RESUME, lr=2e-3), resume=True, **QUIET)
    with pytest.raises(SentsimError, match="'batch_size': \\(4, 8\\)"):
        fit(task, out, replace(RESUME, batch_size=8), resume=True, **QUIET)


def test_resume_with_a_different_task_errors(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """Same settings, other data: the checkpoint's task is named, not silently continued."""
    out = tmp_path / "out"
    _interrupt(files, tiny_ce_dir, out, 3)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert {k: state["task"][k] for k in ("kind", "train_pairs", "max_length")} == {
        "kind": "graded",
        "train_pairs": len(GRADED),
        "max_length": 64,
    }
    # another file of the same size, or another length limit, is another run
    rows = load_train_data([files["graded"]])
    shuffled = replace(rows, pairs=[replace(p, target=1 - p.target) for p in rows.pairs])
    same_size = CrossEncoderTask(CrossEncoder.load(tiny_ce_dir, device="cpu"), shuffled)
    with pytest.raises(SentsimError, match=r"different task .*'data_sha256': \('"):
        fit(same_size, out, RESUME, resume=True, **QUIET)
    shorter = CrossEncoderTask(CrossEncoder.load(tiny_ce_dir, max_length=32, device="cpu"), rows)
    with pytest.raises(SentsimError, match=r"different task .*'max_length': \(64, 32\)"):
        fit(shorter, out, RESUME, resume=True, **QUIET)
    other = CrossEncoderTask(
        CrossEncoder.load(tiny_ce_dir, device="cpu"), load_train_data([files["yes_no"]])
    )
    with pytest.raises(
        SentsimError, match=r"different task than the checkpoint .*'kind': \('graded'"
    ):
        fit(other, out, RESUME, resume=True, **QUIET)
    fit(_resume_task(files, tiny_ce_dir), out, RESUME, resume=True, **QUIET)  # the same: resumes


def test_resume_with_another_dev_file_errors(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """The best epoch so far was selected on the first dev file; resumed with another (or one
    added), the card listed the epochs' scores on two dev sets and picked the best across them."""
    out = tmp_path / "out"
    _interrupt(files, tiny_ce_dir, out, 3)
    rows = load_train_data([files["graded"]])
    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")
    with_dev = CrossEncoderTask(judge, rows, read_pairs(files["graded_dev"]))
    with pytest.raises(SentsimError, match=r"different task .*'dev_sha256': \('"):
        fit(with_dev, out, RESUME, resume=True, **QUIET)
    fit(_resume_task(files, tiny_ce_dir), out, RESUME, resume=True, **QUIET)  # the same: resumes


def test_unfinished_checkpoint_without_resume_errors(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _interrupt(files, tiny_ce_dir, out, 3)
    with pytest.raises(SentsimError, match=r"holds an unfinished run .*pass --resume"):
        fit(_resume_task(files, tiny_ce_dir), out, RESUME, **QUIET)


def test_a_kill_inside_a_checkpoint_write_still_resumes_to_the_same_weights(
    files: dict[str, Path],
    tiny_ce_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    uninterrupted: dict[str, torch.Tensor],
) -> None:
    """Killed at each file operation on the checkpoint folder, the run resumes to the weights.

    A new checkpoint replaced the old one by deleting it, then renaming the new one into place;
    a kill during the deletion left a ``checkpoint`` with its ``state.json`` and without its
    weights, and ``--resume`` failed on the missing file (so did a kill while a finished run
    deleted it). Here each removal of a checkpoint folder deletes the weights and stops, as a
    kill would; each rename stops before it happens. Every time, ``fit(resume=True)`` ends on
    the uninterrupted run's weights.
    """
    from sentsim.training import loop

    real_rmtree, real_replace = loop.shutil.rmtree, loop.os.replace
    for kill_at in range(1, 40):
        out = tmp_path / f"out{kill_at}"
        calls = 0

        def killed(path: Any, kill_at: int = kill_at) -> bool:
            nonlocal calls
            calls += Path(path).name.startswith("checkpoint")
            return calls == kill_at and Path(path).name.startswith("checkpoint")

        def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
            if killed(path):
                (Path(path) / "model.safetensors").unlink(missing_ok=True)
                raise Interrupted
            real_rmtree(path, *args, **kwargs)

        def replace(src: Any, dst: Any) -> None:
            if killed(src):
                raise Interrupted
            real_replace(src, dst)

        monkeypatch.setattr(loop.shutil, "rmtree", rmtree)
        monkeypatch.setattr(loop.os, "replace", replace)
        with contextlib.suppress(Interrupted):
            fit(_resume_task(files, tiny_ce_dir), out, RESUME, **QUIET)
        monkeypatch.setattr(loop.shutil, "rmtree", real_rmtree)
        monkeypatch.setattr(loop.os, "replace", real_replace)
        if calls < kill_at:  # the run made fewer operations: every one has been killed
            break
        if not (out / "checkpoint").exists() and (out / "train_report.json").is_file():
            # killed while the finished run deleted its checkpoint: finished, nothing to resume
            with pytest.raises(SentsimError, match="holds a finished run"):
                fit(_resume_task(files, tiny_ce_dir), out, RESUME, resume=True, **QUIET)
        else:
            task = _resume_task(files, tiny_ce_dir)
            fit(task, out, RESUME, resume=True, **QUIET)
            assert max_diff(weights(task.module), uninterrupted) <= 1e-6, f"killed at {kill_at}"
        assert max_diff(weights(CrossEncoder.load(out, device="cpu").model), uninterrupted) <= 1e-6
        assert not any(p.name.startswith("checkpoint") for p in out.iterdir())
    assert 5 < kill_at < 39


def test_a_kill_while_the_first_model_is_saved_still_resumes(
    files: dict[str, Path],
    tiny_ce_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    uninterrupted: dict[str, torch.Tensor],
) -> None:
    """Killed while the first epoch's model moved out of ``.saving``, before any checkpoint:
    ``--out`` held ``.saving`` and part of a model, which ``--resume`` refused as "other files
    and no sentsim run". It is now the run's own folder: the run starts again and ends alike."""
    from sentsim.training import loop

    out = tmp_path / "out"
    once = replace(RESUME, checkpoint_every=100)
    real_replace = loop.os.replace

    def moved(src: Any, dst: Any) -> None:
        if Path(src).name == "model.safetensors":
            raise Interrupted
        real_replace(src, dst)

    monkeypatch.setattr(loop.os, "replace", moved)
    with pytest.raises(Interrupted):
        fit(_resume_task(files, tiny_ce_dir), out, once, **QUIET)
    monkeypatch.setattr(loop.os, "replace", real_replace)
    assert (out / ".saving").is_dir() and not (out / "checkpoint").exists()
    task = _resume_task(files, tiny_ce_dir)
    fit(task, out, once, resume=True, **QUIET)
    assert max_diff(weights(task.module), uninterrupted) <= 1e-6


def test_a_kill_before_the_report_resumes_into_writing_the_card(
    files: dict[str, Path],
    tiny_ce_dir: Path,
    tmp_path: Path,
    uninterrupted: dict[str, torch.Tensor],
) -> None:
    """The card was written after ``fit`` returned, when train_report.json was in place and the
    checkpoint gone: a kill between the two left a model without a card, and --resume refused the
    finished run. The card is now written first; a kill before the report resumes into both."""
    out = tmp_path / "out"
    cards: list[TrainReport] = []

    def killed(report: TrainReport) -> None:
        (out / "README.md").write_text("half a card")
        raise Interrupted

    with pytest.raises(Interrupted):
        fit(_resume_task(files, tiny_ce_dir), out, RESUME, card=killed, **QUIET)
    assert not (out / "train_report.json").exists() and (out / "checkpoint").is_dir()
    task = _resume_task(files, tiny_ce_dir)
    report = fit(task, out, RESUME, resume=True, card=cards.append, **QUIET)
    assert cards == [report] and report.finished
    assert (out / "train_report.json").is_file() and not (out / "checkpoint").exists()
    assert max_diff(weights(task.module), uninterrupted) <= 1e-6


RANKED_TEXTS = [
    "my card was declined abroad",
    "top up with cash at the atm",
    "the exchange rate for euro and dollar",
    "my card was lost or stolen please freeze it",
    "a man plays guitar on the beach",
    "a woman is eating food in the house",
    "dog",
    "how do i pay",
]


def test_retrieval_dev_ranks_a_cosine_model_without_normalize_by_cosine(
    tiny_paraphrase_dir: Path,
) -> None:
    """The dev ranking took raw inner products: a cosine model without a Normalize step (a
    paraphrase-* model) was scored, and its epochs chosen, on a ranking by dot product that
    search, which ranks it by cosine, never makes."""
    model = BiEncoder.load(tiny_paraphrase_dir, device="cpu")
    docs = sorted(RANKED_TEXTS)  # the candidates: every positive, in the task's order
    anchor = "card declined"
    query, vectors = model.encode_query([anchor])[0], model.encode_document(docs)
    dots = vectors @ query
    cosines = dots / np.linalg.norm(vectors, axis=1) / np.linalg.norm(query)

    def rank(scores: np.ndarray, i: int) -> int:
        return int((scores > scores[i]).sum()) + 1

    differ = [i for i in range(len(docs)) if rank(dots, i) != rank(cosines, i)]
    assert differ  # a positive the two rankings place apart
    gold = differ[0]
    train = [Triple(f"anchor {i}", d) for i, d in enumerate(docs)]
    metrics = RetrievalTask(model, train, [Triple(anchor, docs[gold])]).evaluate()
    assert metrics["mrr@10"] == pytest.approx(100 / rank(cosines, gold))


def test_fit_without_batches_errors(tiny_bert_dir: Path, tmp_path: Path) -> None:
    task = RetrievalTask(BiEncoder.load(tiny_bert_dir, device="cpu"), [])
    with pytest.raises(SentsimError, match="no training batches"):
        fit(task, tmp_path / "out", SETTINGS, **QUIET)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, r"epochs \(--epochs\) must be at least 1, got 0"),
        ({"batch_size": 0}, r"batch_size \(--batch-size\) must be at least 1"),
        ({"lr": -1.0}, r"lr \(--lr\) must be above 0, got -1.0"),
        ({"warmup_ratio": 1.0}, r"warmup_ratio \(--warmup\) must be in \[0, 1\)"),
        ({"max_grad_norm": 0.0}, r"^max_grad_norm must be above 0"),
        ({"checkpoint_every": 0}, r"checkpoint_every \(--checkpoint-every\) must be at least 1"),
    ],
)
def test_settings_refuse_numbers_that_cannot_train(change: dict[str, float], message: str) -> None:
    """Caught when the settings are made, before any data or model is read (before: epochs 0
    "finished" with best epoch -1, lr -1 was a traceback from the optimizer, batch size 0 a
    range() error)."""
    with pytest.raises(ValueError, match=message):
        TrainSettings(**change)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["epochs", "batch_size", "checkpoint_every", "seed"])
def test_settings_refuse_a_count_that_is_not_an_integer(name: str) -> None:
    """``epochs=2.5`` was accepted and failed inside fit, after the data was read ("'float'
    object cannot be interpreted as an integer")."""
    with pytest.raises(TypeError, match=rf"^{name} must be an integer, got 2.5"):
        TrainSettings(**{name: 2.5})  # type: ignore[arg-type]


# --- mixed precision -----------------------------------------------------------------------------


def _autocast_watched(
    files: dict[str, Path], tiny_ce_dir: Path
) -> tuple[CrossEncoderTask, list[bool]]:
    """A task whose every loss call records whether bfloat16 autocast was on."""
    task = _resume_task(files, tiny_ce_dir)
    seen: list[bool] = []
    real_loss = task.loss

    def loss(batch: Any) -> torch.Tensor:
        seen.append(torch.is_autocast_enabled("cpu"))
        return real_loss(batch)

    task.loss = loss  # type: ignore[method-assign]
    return task, seen


def test_mixed_precision_runs_the_loss_under_bf16_autocast_and_keeps_float32_weights(
    files: dict[str, Path],
    tiny_ce_dir: Path,
    tmp_path: Path,
    uninterrupted: dict[str, torch.Tensor],
) -> None:
    task, seen = _autocast_watched(files, tiny_ce_dir)
    report = fit(task, tmp_path / "out", replace(RESUME, precision="bf16"), **QUIET)
    assert seen and all(seen)
    assert report.precision == "bf16" and report.settings["precision"] == "bf16"
    trained = weights(task.module)
    assert all(w.dtype == torch.float32 for w in trained.values())
    assert all(torch.isfinite(w).all() for w in trained.values())
    assert 0 < max_diff(trained, uninterrupted) < 0.1  # it trained, and near the float32 run


def test_float32_training_runs_no_autocast(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    task, seen = _autocast_watched(files, tiny_ce_dir)
    assert fit(task, tmp_path / "out", RESUME, **QUIET).precision == "fp32"
    assert seen and not any(seen)


def test_a_checkpoint_from_before_mixed_precision_resumes_as_fp32(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _interrupt(files, tiny_ce_dir, out, 3)
    state_file = out / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    del state["report"]["settings"]["precision"], state["report"]["precision"]
    state_file.write_text(json.dumps(state))
    report = fit(_resume_task(files, tiny_ce_dir), out, RESUME, resume=True, **QUIET)
    assert report.finished and report.settings["precision"] == "fp32"


def test_unknown_mixed_precision_is_refused() -> None:
    with pytest.raises(ValueError, match=r"precision \(--mixed-precision\) must be fp32, bf16"):
        TrainSettings(precision="fp16")


# --- listwise cross-encoder ----------------------------------------------------------------------


LISTWISE_ROWS = [
    {"anchor": f"card {w} declined", "positive": f"declined card {w}", "negative": neg}
    for w in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota")
    for neg in (f"top up {w}", f"exchange rate {w}")
]


def _listwise_file(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_groups_gather_each_anchors_negatives_in_order() -> None:
    from sentsim.training.cross import groups_from_triples
    from sentsim.training.data import Triple

    triples = [Triple("q", "p", "n1"), Triple("q2", "p2", "m1"), Triple("q", "p", "n2"),
               Triple("q", "p", "n1"), Triple("q", "p", "p")]  # fmt: skip
    groups = groups_from_triples(triples, "f.jsonl")
    assert [(g.query, g.positive, g.negatives) for g in groups] == [
        ("q", "p", ("n1", "n2")),  # a repeated negative and the positive itself are dropped
        ("q2", "p2", ("m1",)),
    ]
    with pytest.raises(DataError, match=r"f\.jsonl: 1 of 2 \(anchor, positive\) rows have no"):
        groups_from_triples([Triple("q", "p", "n"), Triple("r", "s", None)], "f.jsonl")


def test_listwise_loss_is_the_softmax_cross_entropy_of_each_positive(tiny_ce_dir: Path) -> None:
    """loss = mean over groups of −log softmax(s(q, p), s(q, n₁), …)[p], each group its own size."""
    from sentsim.training.cross import CrossEncoderListwiseTask, Group

    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")
    judge.model.eval()  # no dropout: the same logits twice
    groups = [Group("card declined", "declined card", ("top up", "exchange rate")),
              Group("top up cash", "cash top up", ("lost card",))]  # fmt: skip
    task = CrossEncoderListwiseTask(judge, groups, None, sources=["x"])
    with torch.no_grad():
        loss = float(task.loss(groups))
        expected = []
        for g in groups:
            texts = [g.positive, *g.negatives]
            logits = judge.logits(judge.tokenize([(g.query, t) for t in texts]))[:, 0]
            expected.append(float(-torch.log_softmax(logits, 0)[0]))
    assert loss == pytest.approx(float(np.mean(expected)), abs=1e-5)


def test_listwise_dev_ranks_each_positive_within_its_group(
    tiny_ce_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rank 1, 3 and a tie (which goes to the positive): MRR (1 + 1/3 + 1) / 3, accuracy 2/3."""
    from sentsim.training.cross import CrossEncoderListwiseTask, Group

    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")
    dev = [Group("a", "p", ("n",)), Group("b", "p", ("n1", "n2")), Group("c", "p", ("n",))]
    scores = np.array([0.9, 0.1, 0.2, 0.5, 0.3, 0.4, 0.4], dtype=np.float32)
    monkeypatch.setattr(judge, "predict", lambda pairs, **_: scores[: len(pairs)])
    metrics = CrossEncoderListwiseTask(judge, dev, dev, sources=["x"]).evaluate()
    assert metrics["mrr"] == pytest.approx(100 * (1 + 1 / 3 + 1) / 3)
    assert (
        metrics["accuracy@1"] == pytest.approx(100 * 2 / 3) and metrics["score"] == metrics["mrr"]
    )


def test_train_cross_encoder_listwise_end_to_end(
    tmp_path: Path, tiny_ce_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sentsim.cli import main

    train = _listwise_file(tmp_path / "train.jsonl", LISTWISE_ROWS)
    out = tmp_path / "ce"
    argv = ["train", "cross-encoder", "--loss", "listwise", "--train", str(train), "--dev",
            str(train), "--base", str(tiny_ce_dir), "--epochs", "2", "--batch-size", "3",
            "--max-length", "16", "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "train_report.json").read_text())
    assert [set(h) >= {"mrr", "accuracy@1"} for h in report["history"]] == [True, True]
    assert report["steps"] == 2 * 3  # 9 anchors, 3 a batch
    assert '"kind": "listwise"' in (out / "README.md").read_text()
    assert CrossEncoder.load(out).num_labels == 1
    bare = _listwise_file(tmp_path / "bare.jsonl", [{"anchor": f"a{i}", "positive": f"p{i}"}
                                                    for i in range(9)])  # fmt: skip
    assert main([*argv[:5], str(bare), *argv[6:-1], str(tmp_path / "x")]) == 1
    assert "9 of 9 (anchor, positive) rows have no 'negative'" in capsys.readouterr().err
    assert main([*argv, "--both-orders"]) == 1
    refused = capsys.readouterr().err
    assert "--both-orders, --labels and --skip-bad-rows are for pointwise" in refused


@pytest.mark.parametrize("loss", ["mnrl", "listwise"])
def test_a_dev_file_of_a_few_rows_is_read(
    loss: str, files: dict[str, Path], tiny_ce_dir: Path, tiny_st_dir: Path, tmp_path: Path
) -> None:
    """A dev file of anchor rows was refused below 8 rows: "training needs at least 8"."""
    from sentsim.cli import main

    if loss == "mnrl":
        train, kind, base = files["triples"], "bi-encoder", tiny_st_dir
        dev = write_triples(tmp_path / "dev.jsonl", DEV_TRIPLES[:3])
    else:
        train = _listwise_file(tmp_path / "train.jsonl", LISTWISE_ROWS)
        kind, base = "cross-encoder", tiny_ce_dir
        dev = _listwise_file(tmp_path / "dev.jsonl", LISTWISE_ROWS[:2])
    out = tmp_path / "out"
    argv = ["train", kind, "--loss", loss, "--train", str(train), "--dev", str(dev), "--base",
            str(base), "--epochs", "1", "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(argv + (["--max-length", "16"] if loss == "listwise" else [])) == 0
    assert json.loads((out / "train_report.json").read_text())["best_score"] is not None
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.jsonl: 0 rows; a dev file needs at least 1"):
        read_triples(empty, min_rows=1)


def test_a_run_without_dev_keeps_the_last_epoch_and_makes_up_no_score(tmp_path: Path) -> None:
    """It printed "epoch 2: score 1.0000" (an epoch counter) and a card with a stray column."""

    report = TrainReport(settings={}, best_epoch=2, steps=8, seconds=60.0)
    report.history = [
        {"epoch": 1, "steps": 4, "seconds": 30.0},
        {"epoch": 2, "steps": 8, "seconds": 60.0},
    ]
    card = write_card(tmp_path, title="t", command="c", facts={}, report=report).read_text()
    assert "- kept: the last epoch, 2 (no dev set to select on)" in card
    assert "| epoch | steps | minutes |\n|---|---|---|\n| 1 | 4 | 0.5 |\n| 2 | 8 | 1.0 |" in card
    assert (
        json.loads(json.dumps(asdict(report)))["best_score"] is None
    )  # standard JSON, no -Infinity


def test_out_must_not_be_a_file_or_someone_elses_folder(tmp_path: Path) -> None:
    """Training writes config.json and README.md: a project folder's would be overwritten."""
    from sentsim.training.loop import check_out_dir

    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SentsimError, match=r"notes\.txt is a file; give a folder"):
        check_out_dir(tmp_path / "notes.txt")
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# my notes")
    with pytest.raises(SentsimError, match=r"holds other files \(README\.md, \.\.\.\) and no"):
        check_out_dir(project)
    (project / "train_report.json").write_text("{}")  # a finished sentsim run: may be retrained
    check_out_dir(project)
    check_out_dir(tmp_path / "new")  # missing: made by fit
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty")


@pytest.mark.parametrize("loss", ["mnrl", "corpus-softmax"])
def test_retrieval_training_reads_anchors_and_documents_with_their_prompts(
    loss: str, tiny_st_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model with query and passage prompts was trained on bare texts, so it learnt vectors
    that search (which adds the prompts) never makes."""
    import shutil

    from sentsim.training.bi import CorpusSoftmaxTask

    folder = tmp_path / "m"
    shutil.copytree(tiny_st_dir, folder)
    prompts = {"query": "query: ", "passage": "passage: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    model = BiEncoder.load(folder, device="cpu")
    seen: list[tuple[str, str]] = []
    tokenize = model.tokenize

    def spy(texts: Any, prompt: str = "") -> Any:
        seen.extend((prompt, t) for t in texts)
        return tokenize(texts, prompt)

    monkeypatch.setattr(model, "tokenize", spy)
    rows = [Triple("card declined abroad", "payments refused in another country", "atm fees")]
    task_type = RetrievalTask if loss == "mnrl" else CorpusSoftmaxTask
    task = task_type(model, rows * 2, rows)
    task.loss(rows)
    task.evaluate()
    assert ("query: ", "card declined abroad") in seen
    assert ("passage: ", "payments refused in another country") in seen
    assert all(p == "query: " for p, t in seen if t == "card declined abroad")
    assert all(p == "passage: " for p, t in seen if t != "card declined abroad")


def test_corpus_softmax_scores_cosines_for_a_model_without_normalize(
    tiny_paraphrase_dir: Path,
) -> None:
    """Its docstring's scale · cos(q, D): the documents' vectors were taken as the model gave
    them, so a model without Normalize (paraphrase-*) was trained on query-cosine times document
    length, a score neither search nor the model's card compares by."""
    from sentsim.training.bi import CorpusSoftmaxTask

    model = BiEncoder.load(tiny_paraphrase_dir, device="cpu")
    rows = [
        Triple("card declined abroad", "payments refused in another country"),
        Triple("exchange rate", "currency fees for travel and the rates we use"),
    ]
    task = CorpusSoftmaxTask(model, rows, corpus=["top up with cash"])
    task.loss(rows)  # reads the documents' vectors, then turns training mode on
    task.module.eval()  # no dropout: the loss and its reference see the same query vectors
    loss = task.loss(rows)
    docs = torch.from_numpy(model.encode_document(task.docs, show_progress=False))
    assert not torch.allclose(docs.norm(dim=-1), torch.ones(len(task.docs)), atol=1e-3)
    with torch.no_grad():
        queries = model.embed(model.tokenize([t.anchor for t in rows], model.query_prompt))
        cos = torch.nn.functional.normalize(queries, dim=-1) @ (
            torch.nn.functional.normalize(docs, dim=-1).T
        )
        target = torch.tensor([task.row[t.positive] for t in rows])
        expected = torch.nn.functional.cross_entropy(task.scale * cos, target)
    assert float(loss.detach()) == pytest.approx(float(expected), abs=1e-4)


def _saved_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_the_same_seed_trains_the_same_cross_encoder_from_a_plain_encoder(
    files: dict[str, Path], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """A plain encoder gets a fresh scoring head; it was drawn before --seed took effect, so the
    card's "Reproduce with" command trained another model each time (dev 3.30 vs 49.57)."""
    from sentsim.cli import main

    def train(out: Path, seed: str) -> dict[str, torch.Tensor]:
        argv = ["train", "cross-encoder", "--train", str(files["graded"]), "--base",
                str(tiny_bert_dir), "--epochs", "1", "--batch-size", "8", "--max-length", "16",
                "--seed", seed, "--no-progress", "--out", str(out)]  # fmt: skip
        assert main(argv) == 0
        return _saved_weights(out)

    torch.manual_seed(123)  # whatever the generator held before the command
    first = train(tmp_path / "a", "7")
    torch.manual_seed(456)
    assert max_diff(train(tmp_path / "b", "7"), first) == 0.0
    assert max_diff(train(tmp_path / "c", "8"), first) > 0.0


@pytest.mark.parametrize("loss", ["pointwise", "listwise"])
def test_the_default_max_length_fits_a_base_with_fewer_positions(
    loss: str,
    files: dict[str, Path],
    tiny_bert_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --max-length, training read 128 tokens a pair, and a base of 64 positions (the
    tiny BERT) was refused: "max length 128: ... reads 1 to 64 tokens", a length never given."""
    from sentsim.cli import main

    if loss == "listwise":
        train = _listwise_file(tmp_path / "train.jsonl", LISTWISE_ROWS)
    else:
        train = files["graded"]
    out = tmp_path / "ce"
    argv = ["train", "cross-encoder", "--loss", loss, "--train", str(train), "--base",
            str(tiny_bert_dir), "--epochs", "1", "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert CrossEncoder.load(out).max_length == 64
    assert main([*argv[:-1], str(tmp_path / "longer"), "--max-length", "65"]) == 1
    assert "max length 65: " in capsys.readouterr().err  # a length given is never cut


def test_a_dev_label_the_training_data_lacks_is_refused_before_training(
    files: dict[str, Path], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """It ended the first epoch with "ValueError: 'maybe' is not in list", naming no file."""
    dev = write_pairs(tmp_path / "dev.csv", [*NLI[:5], ("a dog", "a cat", "maybe")], "label")
    train = load_train_data([files["nli"]])
    model = CrossEncoder.load(tiny_bert_dir, labels=train.labels, device="cpu")
    with pytest.raises(DataError, match=r"dev\.csv, line 7: label 'maybe' is not among the "):
        CrossEncoderTask(model, train, read_pairs(dev))


def test_labels_named_twice_are_refused(files: dict[str, Path]) -> None:
    """--labels yes yes no made three outputs, two named yes (one never trained)."""
    with pytest.raises(DataError, match=r"--labels names 'entailment' twice"):
        load_train_data([files["nli"]], labels=["entailment", "neutral", "entailment"])


def test_a_csv_row_with_more_cells_than_the_header_is_refused(tmp_path: Path) -> None:
    """An unquoted comma split a row: the positive became the text after the comma, silently."""
    rows = ["anchor,positive"] + [f"my card {i},card arrival" for i in range(9)]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join([*rows, "I lost my card, please help,lost card"]) + "\n")
    with pytest.raises(DataError, match=r"rows\.csv, line 11: has 3 cells; the header has 2"):
        read_triples(path)


def test_a_json_file_of_rows_is_read_as_json_lines(tmp_path: Path) -> None:
    """A .json file was read as CSV: "header has ['{\"anchor\": ...']"."""
    path = write_triples(tmp_path / "rows.json", TRIPLES)
    assert read_triples(path) == [Triple(a, p, n) for a, p, n in TRIPLES]


def test_resume_of_a_finished_run_is_refused(
    files: dict[str, Path], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """It said "no checkpoint; starting from the beginning" and trained over the finished model."""
    out = tmp_path / "out"
    fit(_resume_task(files, tiny_ce_dir), out, RESUME, **QUIET)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(SentsimError, match=r"holds a finished run .*nothing to resume"):
        fit(_resume_task(files, tiny_ce_dir), out, RESUME, resume=True, **QUIET)
    assert (out / "model.safetensors").read_bytes() == before


def test_a_model_trained_over_another_kind_leaves_none_of_its_files(
    files: dict[str, Path], tiny_ce_dir: Path, tiny_st_dir: Path, tmp_path: Path
) -> None:
    """A cross-encoder trained into a bi-encoder's finished run kept its modules.json: the folder
    then loaded as a bi-encoder (eval sts --model printed a score) instead of being refused."""
    from sentsim.errors import ModelLoadError

    out = tmp_path / "out"
    encoder = BiEncoder.load(tiny_st_dir, device="cpu")
    bi = BiEncoderTask(encoder, load_train_data([files["graded"]]), None)
    fit(bi, out, RESUME, **QUIET)
    assert (out / "modules.json").is_file()
    fit(_resume_task(files, tiny_ce_dir), out, RESUME, **QUIET)
    assert not (out / "modules.json").exists() and not (out / "1_Pooling").exists()
    with pytest.raises(ModelLoadError, match="is a cross-encoder"):
        BiEncoder.load(out, device="cpu")
    assert CrossEncoder.load(out, device="cpu").num_labels == 1
