"""AugSBERT: sampling invariants, labelling, silver files, the resumable recipe and its CLI.

Sampling is checked on hand-built sentences (and a hand-built encoder for kNN); the recipe runs
end to end on the tiny BERT of ``conftest.py`` with 24 gold pairs and one epoch per model.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from sentsim.baselines import OverlapPairScorer
from sentsim.cli import augsbert as cli_augsbert
from sentsim.cross_encoder import CrossEncoder
from sentsim.data import read_pairs
from sentsim.errors import DataError, ModelLoadError, SentsimError
from sentsim.models import weights_hash
from sentsim.training import TrainSettings
from sentsim.training.augsbert import (
    AugSbertConfig,
    ResultRow,
    Sampling,
    label_pairs,
    run_augsbert,
    sample_pairs,
)
from sentsim.training.augsbert_results import evaluate_rows, results_json
from sentsim.training.sampling import given_pairs, pair_key
from sentsim.training.silver import (
    label_to_file,
    read_sentences,
    read_silver,
    read_unlabelled_pairs,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GOLD = [
    ("a man plays the guitar", "a man is playing a guitar", 4.8),
    ("a woman plays the piano", "a woman is playing piano", 4.6),
    ("a dog plays on the beach", "a dog is on the beach", 3.9),
    ("a cat eats food", "the cat is eating", 4.0),
    ("a boy plays soccer", "a girl plays piano", 1.2),
    ("my card was declined", "why was my payment declined", 4.2),
    ("my card was lost", "my card was stolen", 3.6),
    ("freeze my card", "block my card", 4.7),
    ("top up my account", "how can i top up", 4.1),
    ("exchange rate for euro", "dollar to pound rate", 2.6),
    ("cash from the atm", "money from the atm", 4.3),
    ("the atm fee", "a fee for the transfer", 2.1),
    ("a man eats food", "a woman plays guitar", 0.6),
    ("where is my new card", "my card has not arrived", 3.4),
    ("a refund for my payment", "my money back please", 3.7),
    ("a girl with hair", "a house on the road", 0.1),
    ("a car on the road", "a car on the beach", 2.4),
    ("the bank transfer", "transfer money to the bank", 4.0),
    ("my pin is blocked", "my card pin was blocked", 4.4),
    ("a dog eats food", "a dog is eating", 4.5),
    ("travel abroad with my card", "my card abroad is not working", 3.1),
    ("a boy plays piano", "a boy is playing the piano", 4.9),
    ("a cat on the house", "a dog in the car", 0.8),
    ("pay with cash", "a payment with my card", 2.2),
]
DEV = [
    ("a woman plays guitar", "a woman is playing the guitar", 4.7),
    ("my card was declined abroad", "my payment abroad was declined", 4.1),
    ("a dog on the road", "a cat in the house", 0.9),
    ("top up with cash", "cash at the atm", 2.3),
    ("the exchange fee", "a fee for exchange", 3.8),
    ("a man plays soccer", "a girl eats food", 0.3),
]
TEST = [
    ("a girl plays piano", "a girl is playing the piano", 4.8),
    ("my new card arrived", "when will my card arrive", 2.9),
    ("a boy eats food", "a house on the beach", 0.2),
    ("block my account", "freeze my account", 4.6),
]
TARGET = [  # domain transfer: unlabelled target sentences
    "my card payment was declined",
    "why is my card declined",
    "how do i top up my account",
    "top up with a card",
    "the exchange rate for pound",
    "exchange euro to dollar",
    "my card was stolen abroad",
    "i lost my card",
    "a refund for a payment",
    "where is my refund",
    "cash from an atm abroad",
    "the atm fee for cash",
]
QUIET = {"log": lambda line: None, "show_progress": False}
SAMPLED = [s for s in Sampling if s != Sampling.GIVEN]  # made from sentences; given: as written


def write_pairs_csv(path: Path, rows: Sequence[tuple[str, str, float]]) -> Path:
    lines = ["sentence1,sentence2,score", *(f"{a},{b},{s}" for a, b, s in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("augsbert-data")
    target = root / "target.txt"
    target.write_text("\n".join(TARGET) + "\n", encoding="utf-8")
    return {
        "gold": write_pairs_csv(root / "gold.csv", GOLD),
        "dev": write_pairs_csv(root / "dev.csv", DEV),
        "test": write_pairs_csv(root / "test.csv", TEST),
        "target": target,
    }


SETTINGS = TrainSettings(epochs=1, batch_size=8, lr=1e-4, seed=3, checkpoint_every=2)


def config_for(out: Path, tiny_bert_dir: Path, **changes: Any) -> AugSbertConfig:
    base = AugSbertConfig(
        out=out,
        cross_encoder="train",
        strategies=(Sampling.BM25, Sampling.RANDOM, Sampling.KNN),
        cap=30,
        base=tiny_bert_dir,
        settings=SETTINGS,
        cross_settings=SETTINGS,
        label_batch_size=16,
    )
    return replace(base, **changes)


class PointEncoder:
    """A hand-built encoder: each sentence maps to a fixed vector (for exact kNN checks)."""

    name = "points"
    dim = 3

    def __init__(self, vectors: dict[str, Sequence[float]]) -> None:
        self.vectors = vectors

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


SENTENCES = [a for a, _, _ in GOLD] + [b for _, b, _ in GOLD]
GOLD_PAIRS = [(a, b) for a, b, _ in GOLD]


def random_encoder(sentences: Sequence[str], seed: int = 0) -> PointEncoder:
    rng = np.random.default_rng(seed)
    return PointEncoder({t: rng.normal(size=3).tolist() for t in sentences})


# --- sampling -----------------------------------------------------------------------------------


def test_sampling_parse_names_lists_and_errors() -> None:
    assert Sampling.parse(" BM25+KNN ") is Sampling.BM25_KNN
    assert Sampling.parse_many(["bm25,knn", "random", "bm25"]) == [
        Sampling.BM25,
        Sampling.KNN,
        Sampling.RANDOM,
    ]
    with pytest.raises(ValueError, match=r"unknown sampling 'nn'; expected one of: random, bm25"):
        Sampling.parse("nn")
    with pytest.raises(ValueError, match="no sampling strategy given; choose from: random"):
        Sampling.parse_many([" , "])


@pytest.mark.parametrize("strategy", SAMPLED)
def test_sampling_invariants(strategy: Sampling) -> None:
    """No self-pairs, no gold pair and no repeat in either order, only given sentences, ≤ cap."""
    encoder = random_encoder(SENTENCES)
    for cap in (1000, 10):
        pairs = sample_pairs(
            SENTENCES, strategy, cap=cap, top_k=3, exclude=GOLD_PAIRS, encoder=encoder, seed=5
        )
        keys = [pair_key(a, b) for a, b in pairs]
        assert 0 < len(pairs) <= cap
        assert all(a != b for a, b in pairs)
        assert len(set(keys)) == len(keys)
        assert not set(keys) & {pair_key(a, b) for a, b in GOLD_PAIRS}
        assert {t for p in pairs for t in p} <= set(SENTENCES)


@pytest.mark.parametrize("strategy", SAMPLED)
def test_sampling_is_deterministic_and_cap_keeps_an_ordered_subset(strategy: Sampling) -> None:
    encoder = random_encoder(SENTENCES)

    def run(seed: int, cap: int) -> list[tuple[str, str]]:
        return sample_pairs(
            SENTENCES, strategy, cap=cap, exclude=GOLD_PAIRS, encoder=encoder, seed=seed
        )

    full = run(1, 10_000)
    assert run(1, 10_000) == full
    capped = run(1, 7)
    assert capped == run(1, 7)
    assert len(capped) == 7
    positions = [full.index(p) for p in capped]
    assert positions == sorted(positions)
    if strategy == Sampling.RANDOM:
        assert run(2, 10_000) != full
        assert len(full) > 2 * len(set(SENTENCES))  # about top_k partners per sentence


def test_bm25_pairs_share_a_word_and_prefer_the_best_match() -> None:
    """Every pair shares a word that is not a stopword (bm25s' English list)."""
    import bm25s

    pairs = sample_pairs(SENTENCES, "bm25", cap=1000, top_k=2, exclude=GOLD_PAIRS)
    assert len(pairs) > len(GOLD)
    for a, b in pairs:
        words_a, words_b = bm25s.tokenize(
            [a, b], stopwords="en", return_ids=False, show_progress=False
        )
        assert set(words_a) & set(words_b), (a, b)
    mini = ["a red car", "a red car on the road", "my cat eats", "the piano"]
    assert sample_pairs(mini, "bm25", cap=10, top_k=1)[0] == ("a red car", "a red car on the road")
    assert sample_pairs(["the", "a", "of the"], "bm25", cap=10) == []  # stopwords only


def test_knn_pairs_are_nearest_neighbours_by_cosine() -> None:
    """Each pair (a, b): b is among a's top_k others by brute-force cosine, gold skipped."""
    encoder = random_encoder(SENTENCES, seed=7)
    texts = list(dict.fromkeys(SENTENCES))
    vectors = encoder.encode(texts)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    gold = {pair_key(a, b) for a, b in GOLD_PAIRS}
    top_k = 2
    pairs = sample_pairs(texts, "knn", cap=1000, top_k=top_k, exclude=GOLD_PAIRS, encoder=encoder)
    for a, b in pairs:
        i = texts.index(a)
        sims = vectors @ vectors[i]
        order = [int(j) for j in np.argsort(-sims, kind="stable") if j != i]
        allowed = [texts[j] for j in order if pair_key(a, texts[j]) not in gold]
        assert b in allowed[:top_k]
    # every sentence's nearest allowed neighbour appears, in one order or the other
    keys = {pair_key(a, b) for a, b in pairs}
    for i, a in enumerate(texts):
        sims = vectors @ vectors[i]
        nearest = next(
            texts[int(j)]
            for j in np.argsort(-sims, kind="stable")
            if j != i and pair_key(a, texts[int(j)]) not in gold
        )
        assert pair_key(a, nearest) in keys


class DotPointEncoder(PointEncoder):
    """A dot-product model (``similarity_fn_name: "dot"``, e.g. TAS-B) of fixed vectors."""

    similarity_fn_name = "dot"


def test_knn_pairs_of_a_dot_product_model_are_nearest_neighbours_by_dot_product() -> None:
    """A dot-product model's partners were its nearest by cosine; they are its nearest by dot
    product, as it ranks (its vectors' lengths are part of its score)."""
    rng = np.random.default_rng(3)
    texts = list(dict.fromkeys(SENTENCES))
    points = {t: (rng.normal(size=3) * rng.uniform(0.2, 5.0)).tolist() for t in texts}
    vectors = np.array([points[t] for t in texts], dtype=np.float32)
    pairs = sample_pairs(texts, "knn", cap=1000, top_k=1, encoder=DotPointEncoder(points))

    def nearest(scores: NDArray[np.float32]) -> set[tuple[str, str]]:
        np.fill_diagonal(scores, -np.inf)
        best = np.argmax(scores, axis=1)
        return {pair_key(t, texts[int(j)]) for t, j in zip(texts, best, strict=True)}

    assert {pair_key(a, b) for a, b in pairs} == nearest(vectors @ vectors.T)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert nearest(vectors @ vectors.T) != nearest(unit @ unit.T)  # so the test could fail


def test_excluded_partners_do_not_use_up_top_k() -> None:
    encoder = PointEncoder(
        {"a": [1, 0, 0], "b": [0.9, 0.1, 0], "c": [0.7, 0.3, 0], "d": [0.1, 0.5, 1]}
    )
    assert sample_pairs(list("abcd"), "knn", cap=10, top_k=1, encoder=encoder) == [
        ("a", "b"),
        ("c", "b"),
        ("d", "c"),
    ]
    without = sample_pairs(
        list("abcd"), "knn", cap=10, top_k=1, exclude=[("b", "a")], encoder=encoder
    )
    assert without[0] == ("a", "c")
    assert ("a", "b") not in without and ("b", "a") not in without


def test_sampling_edges() -> None:
    """No sentence, one, one repeated (plus a blank one), two: at most the one possible pair."""
    two = ["red car", "blue car"]
    encoder = random_encoder(two)
    for strategy in SAMPLED:
        assert sample_pairs([], strategy, cap=5, encoder=encoder) == []
        assert sample_pairs(two[:1], strategy, cap=5, encoder=encoder) == []
        assert sample_pairs([*two[:1], " ", two[0]], strategy, cap=5, encoder=encoder) == []
        assert sample_pairs(two, strategy, cap=5, encoder=encoder) == [tuple(two)]
        assert sample_pairs(two, strategy, cap=5, exclude=[two[::-1]], encoder=encoder) == []
    with pytest.raises(TypeError, match="got a single str; wrap it in a list"):
        sample_pairs("red car", "bm25", cap=5)


@pytest.mark.parametrize("strategy", SAMPLED)
def test_sentences_differing_only_in_whitespace_are_one_sentence(strategy: Sampling) -> None:
    """STS-B train holds 32 sentences twice, once with an extra or trailing space: BM25 sampling
    of it paired each with its twin (a self-pair to any tokenizer, labelled ~1 as silver) and
    sampled 56 gold pairs again through the other spelling."""
    sentences = ["a red car", "a red car ", "a  blue car", "a blue car", "the red house", "a car"]
    encoder = random_encoder(sentences)
    gold = [("a red car", "a blue car")]
    pairs = sample_pairs(sentences, strategy, cap=100, top_k=5, exclude=gold, encoder=encoder)
    words = [tuple(" ".join(t.split()) for t in p) for p in pairs]
    assert pairs and all(a != b for a, b in words)
    assert {"a red car", "a blue car"} not in [set(p) for p in words]
    assert len({frozenset(p) for p in words}) == len(pairs)
    assert {t for p in pairs for t in p} <= {"a red car", "a  blue car", "the red house", "a car"}


def test_sampling_errors() -> None:
    with pytest.raises(ValueError, match="cap must be at least 1"):
        sample_pairs(SENTENCES, "bm25", cap=0)
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        sample_pairs(SENTENCES, "bm25", cap=5, top_k=0)
    for strategy in ("knn", "bm25+knn"):
        with pytest.raises(ValueError, match=f"sampling {re.escape(strategy)} ranks by a bi-enc"):
            sample_pairs(SENTENCES, strategy, cap=5)
    with pytest.raises(ValueError, match="unknown sampling 'best'"):
        sample_pairs(SENTENCES, "best", cap=5)
    flat = PointEncoder({t: [1.0] for t in ["a", "b"]})
    with pytest.raises(ValueError, match=r"returned shape \(2, 1\) for 2 texts; expected \(2, 3\)"):
        sample_pairs(["a", "b"], "knn", cap=5, encoder=flat)


# --- labelling and silver files -----------------------------------------------------------------


class ConstantJudge:
    """Gives every pair the same score (to check the 0–1 range)."""

    name = "constant"

    def __init__(self, value: float) -> None:
        self.value = value

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        return np.full(len(pairs), self.value, dtype=np.float32)


class ShortJudge:
    """A broken judge that drops the last score."""

    name = "short"

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        return np.full(max(len(pairs) - 1, 0), 0.5, dtype=np.float32)


class FailingJudge:
    """Scores like word overlap for ``calls`` calls, then raises (a run that is cut off)."""

    name = "failing"

    def __init__(self, calls: int) -> None:
        self.calls = calls
        self.pairs_scored = 0

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        if self.calls == 0:
            raise KeyboardInterrupt
        self.calls -= 1
        self.pairs_scored += len(pairs)
        return OverlapPairScorer().score_pairs(pairs)


def test_label_pairs_uses_the_judges_scores_in_any_batch_size() -> None:
    pairs = sample_pairs(SENTENCES, "bm25", cap=40, exclude=GOLD_PAIRS)
    expected = OverlapPairScorer().score_pairs(pairs)
    for batch_size in (1, 7, 1000):
        silver = label_pairs(pairs, OverlapPairScorer(), batch_size=batch_size)
        assert [(p.a, p.b) for p in silver] == pairs
        assert np.allclose([p.target for p in silver], expected)
    assert label_pairs([], OverlapPairScorer()) == []


def test_label_pairs_errors() -> None:
    pairs = [("a red car", "a red car on the road"), ("red car", "blue car")]
    for value in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="judge constant returned scores outside 0–1"):
            label_pairs(pairs, ConstantJudge(value))
    assert [p.target for p in label_pairs(pairs, ConstantJudge(1.0))] == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"returned shape \(1,\) for 2 pairs"):
        label_pairs(pairs, ShortJudge())
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        label_pairs(pairs, OverlapPairScorer(), batch_size=0)


def test_silver_file_is_read_by_read_pairs_and_labelling_resumes(tmp_path: Path) -> None:
    """Cut off after 2 chunks (and a half-written line): the rerun labels only the rest."""
    pairs = sample_pairs(SENTENCES, "bm25", cap=23, exclude=GOLD_PAIRS)
    path = tmp_path / "silver-bm25.jsonl"
    first = FailingJudge(calls=2)
    with pytest.raises(KeyboardInterrupt):
        label_to_file(path, pairs, first, batch_size=5, log=lambda line: None)
    partial = path.with_name(path.name + ".partial")
    assert not path.exists()
    with partial.open("a", encoding="utf-8") as handle:
        handle.write('{"sentence1": "cut of')  # a crash in the middle of a line
    second = FailingJudge(calls=100)
    messages: list[str] = []
    label_to_file(path, pairs, second, batch_size=5, log=messages.append)
    assert messages[0] == f"resuming labelling at pair 10 of {len(pairs)}"
    assert second.pairs_scored == len(pairs) - 10
    assert not partial.exists()
    expected = label_pairs(pairs, OverlapPairScorer())
    assert read_silver(path) == [replace(p, target=round(p.target, 6)) for p in expected]
    dataset = read_pairs(path, score_range=(0.0, 1.0))
    assert dataset.pairs() == pairs
    assert np.allclose(dataset.normalized_scores(), [p.target for p in expected], atol=1e-6)


def test_read_sentences_formats(tmp_path: Path) -> None:
    txt = tmp_path / "s.txt"
    txt.write_text("one dog\n\n  \none dog\ntwo cats\n", encoding="utf-8")
    assert read_sentences(txt) == ["one dog", "two cats"]
    jsonl = tmp_path / "s.jsonl"
    rows = [{"text": "a"}, {"sentence1": "b", "sentence2": "a"}, {"sentence1": "c", "score": 1}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert read_sentences(jsonl) == ["a", "b", "c"]
    csv_file = tmp_path / "s.csv"
    csv_file.write_text("sentence1,sentence2\nx y,y z\ny z,z w\n", encoding="utf-8")
    assert read_sentences(csv_file) == ["x y", "y z", "z w"]


def test_read_sentences_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unlabelled file not found"):
        read_sentences(tmp_path / "missing.txt")
    with pytest.raises(DataError, match=r"unlabelled file .* is a folder; give the file itself"):
        read_sentences(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: not valid JSON"):
        read_sentences(bad)
    bad.write_text('["a", "b"]\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 1: expected a JSON object"):
        read_sentences(bad)
    bad.write_text('{"query": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 1: has \['query'\]; expected 'text'"):
        read_sentences(bad)
    tsv = tmp_path / "bad.tsv"
    tsv.write_text("query\tdoc\na\tb\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv, line 1: header has \['query', 'doc'\]"):
        read_sentences(tsv)


def test_read_sentences_reads_json_as_json_lines(tmp_path: Path) -> None:
    """A ``.json`` file is JSON lines, as corpora, texts to encode and triples are read; it was
    read as lines of text, so each row's JSON source became a sentence to distill or pair."""
    path = tmp_path / "s.json"
    path.write_text('{"text": "one dog"}\n{"text": "two cats"}\n', encoding="utf-8")
    assert read_sentences(path) == ["one dog", "two cats"]


def test_read_sentences_refuses_a_csv_row_with_more_cells_than_its_header(tmp_path: Path) -> None:
    """An unquoted comma in a text split it: the part after the comma was dropped silently."""
    path = tmp_path / "s.csv"
    path.write_text("text\na dog\nmy card, the pin\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"s.csv, line 3: has 2 cells; the header has 1 \(quote"):
        read_sentences(path)


def test_read_sentences_names_the_header_and_reads_its_names_as_pair_files_do(
    tmp_path: Path,
) -> None:
    """A CSV header without a text column was reported at "line 2" (the first row) and not at
    all for a file of a header alone; it names line 1 and the names it accepts. The header is
    matched as a pair file's is (case, spaces, ``_``, ``-``, and names such as ``question1``)."""
    bad = tmp_path / "bad.csv"
    for text in ("id,body\n1,a dog\n", "id,body\n"):
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(DataError) as info:
            read_sentences(bad)
        message = str(info.value)
        assert message.startswith(f"{bad}, line 1: header has ['id', 'body']; expected 'text'")
        assert "sentence1" in message and "question1" in message
    good = tmp_path / "good.csv"
    good.write_text("Text\nA dog\n", encoding="utf-8")
    assert read_sentences(good) == ["A dog"]
    good.write_text("id,Question1,question_2,is_duplicate\n1,a,b,0\n", encoding="utf-8")
    assert read_sentences(good) == ["a", "b"]


# --- the recipe, end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(
    data: dict[str, Path], tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[AugSbertConfig, Any, list[str]]:
    """Gold mode: judge trained on gold; bm25, random and knn silver; dev and test."""
    out = tmp_path_factory.mktemp("augsbert-run") / "out"
    config = config_for(out, tiny_bert_dir, gold=data["gold"], dev=data["dev"], test=data["test"])
    messages: list[str] = []
    report = run_augsbert(config, log=messages.append)
    return config, report, messages


def test_run_writes_every_step_and_the_results_table(
    full_run: tuple[AugSbertConfig, Any, list[str]],
) -> None:
    config, report, messages = full_run
    out = config.out
    for model in ("cross-encoder", "model-gold", "model-bm25", "model-random", "model-knn"):
        assert (out / model / "train_report.json").is_file(), model
        assert (out / model / "README.md").is_file()
        assert not (out / model / "checkpoint").exists()
    names = {p.name for p in out.iterdir()}
    for s in ("bm25", "random", "knn"):
        assert {f"silver-{s}-pairs.jsonl", f"silver-{s}.jsonl"} <= names
        assert not any(n.endswith((".partial", ".tmp")) for n in names)
    assert {"results.json", "results.md", "steps.json"} <= names
    rows = {r.model: r for r in report.rows}
    assert list(rows) == ["base", "judge", "gold", "bm25", "random", "knn"]
    gold_pairs = {pair_key(a, b) for a, b in GOLD_PAIRS}
    eval_pairs = {pair_key(a, b) for a, b, _ in DEV + TEST}
    for s in ("bm25", "random", "knn"):
        silver = read_pairs(out / f"silver-{s}.jsonl", score_range=(0.0, 1.0))
        assert rows[s].silver_pairs == len(silver) <= config.cap
        assert rows[s].train_pairs == len(GOLD) + len(silver)
        assert not {pair_key(a, b) for a, b in silver.pairs()} & (gold_pairs | eval_pairs)
        assert rows[s].minutes >= 0
    assert rows["gold"].train_pairs == len(GOLD) and rows["gold"].silver_pairs == 0
    assert rows["judge"].train_pairs == 2 * len(GOLD)  # both orders
    for row in report.rows:
        assert row.dev_spearman is not None and -100 <= row.dev_spearman <= 100
        assert row.test_spearman is not None
    table = (out / "results.md").read_text(encoding="utf-8")
    assert (
        "| model | silver pairs | train pairs | Spearman dev | Spearman test | minutes |" in table
    )
    assert f"| gold + silver bm25 | {rows['bm25'].silver_pairs} | " in table
    assert "| gold only | 0 | 24 | " in table
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [r["model"] for r in saved["rows"]] == list(rows)
    assert saved["steps"]["label-bm25"]["pairs"] == rows["bm25"].silver_pairs
    assert any(m.startswith("[bm25] sampled ") for m in messages)
    assert any(m.startswith("[knn] labelled ") for m in messages)


def unplaced(rows: Sequence[Any]) -> list[Any]:
    """Rows without their paths (the folder was copied elsewhere)."""
    return [replace(r, path="") for r in rows]


def test_second_run_skips_every_done_step(
    full_run: tuple[AugSbertConfig, Any, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Nothing is trained, sampled, labelled or evaluated again; adding a strategy runs only it."""
    config, report, _ = full_run
    out = tmp_path / "out"
    shutil.copytree(config.out, out)
    config = replace(config, out=out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a done step ran again")

    import sentsim.evaluation.sts
    import sentsim.training.augsbert as recipe
    import sentsim.training.loop

    monkeypatch.setattr(sentsim.training.loop, "fit", refuse)
    monkeypatch.setattr(recipe, "sample_pairs", refuse)
    monkeypatch.setattr(recipe, "label_to_file", refuse)
    monkeypatch.setattr(sentsim.evaluation.sts, "evaluate_sts", refuse)
    messages: list[str] = []
    again = run_augsbert(config, log=messages.append)
    assert unplaced(again.rows) == unplaced(report.rows)
    rewritten = {"results.json", "results.md"}
    for path, mtime in mtimes.items():
        if path.name not in rewritten:
            assert path.stat().st_mtime_ns == mtime, path
    assert sum("skipped" in m for m in messages) == 1 + 1 + 3 * 3  # judge, gold, 3 × 3 steps

    monkeypatch.undo()
    trained: list[str] = []
    real_fit = sentsim.training.loop.fit

    def counted_fit(task: Any, where: Path, *args: Any, **kwargs: Any) -> Any:
        trained.append(where.name)
        return real_fit(task, where, *args, **kwargs)

    evaluated: list[str] = []
    real_eval = sentsim.evaluation.sts.evaluate_sts
    monkeypatch.setattr(sentsim.training.loop, "fit", counted_fit)
    monkeypatch.setattr(
        sentsim.evaluation.sts,
        "evaluate_sts",
        lambda d, scorer, **kw: evaluated.append(scorer.name) or real_eval(d, scorer, **kw),
    )
    more = replace(config, strategies=(*config.strategies, Sampling.BM25_KNN))
    grown = run_augsbert(more, **QUIET)
    assert trained == ["model-bm25+knn"]
    assert evaluated == [str(out / "model-bm25+knn")] * 2  # dev and test
    assert [r.model for r in grown.rows][-1] == "bm25+knn"
    assert unplaced(grown.rows[:-1]) == unplaced(report.rows)


@pytest.mark.parametrize("between_renames", [False, True], ids=["plain", "between-renames"])
def test_cut_off_training_resumes_from_its_checkpoint(
    between_renames: bool,
    data: dict[str, Path],
    tiny_bert_dir: Path,
    tiny_ce_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cut-off step resumes. Killed inside a checkpoint write, between its two renames, the
    step's folder held ``checkpoint.old`` and no ``checkpoint``: the rerun did not resume, and
    the training it started found the recovered checkpoint and stopped ("pass --resume")."""
    from sentsim.training.bi import BiEncoderTask

    config = config_for(
        tmp_path / "out",
        tiny_bert_dir,
        gold=data["gold"],
        cross_encoder=tiny_ce_dir,
        strategies=(Sampling.BM25,),
        settings=replace(SETTINGS, batch_size=4),
    )
    real_loss = BiEncoderTask.loss
    calls = 0

    def cut(self: BiEncoderTask, batch: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise KeyboardInterrupt
        return real_loss(self, batch)

    monkeypatch.setattr(BiEncoderTask, "loss", cut)
    with pytest.raises(KeyboardInterrupt):
        run_augsbert(config, **QUIET)
    gold_dir = config.out / "model-gold"
    assert (gold_dir / "checkpoint" / "state.json").is_file()
    assert not (gold_dir / "train_report.json").exists()
    monkeypatch.undo()
    if between_renames:  # the new checkpoint was not yet renamed in; the old one was moved aside
        (gold_dir / "checkpoint").rename(gold_dir / "checkpoint.old")
    messages: list[str] = []
    report = run_augsbert(config, log=messages.append)
    assert "[gold] resuming on 24 pairs → " + str(gold_dir) in messages
    assert "resuming at epoch 1, step 2 of 6" in messages
    steps = json.loads((gold_dir / "train_report.json").read_text())["steps"]
    assert steps == 6
    assert not (gold_dir / "checkpoint").exists()
    assert [r.model for r in report.rows] == ["base", "judge", "gold", "bm25"]
    assert [r.dev_spearman for r in report.rows] == [None] * 4  # no dev given
    assert report.rows[1].train_pairs == 0  # the judge was given, not trained here


def test_domain_transfer_trains_on_silver_only(
    data: dict[str, Path], tiny_bert_dir: Path, tiny_ce_dir: Path, tiny_st_dir: Path, tmp_path: Path
) -> None:
    config = config_for(
        tmp_path / "out",
        tiny_bert_dir,
        unlabelled=data["target"],
        cross_encoder=tiny_ce_dir,
        knn_encoder=tiny_st_dir,
        strategies=(Sampling.BM25_KNN,),
        dev=data["dev"],
    )
    report = run_augsbert(config, **QUIET)
    assert not (config.out / "model-gold").exists()
    assert not (config.out / "cross-encoder").exists()
    assert [r.model for r in report.rows] == ["base", "judge", "bm25+knn"]
    row = report.rows[-1]
    assert row.train_pairs == row.silver_pairs >= 8
    silver = read_pairs(config.out / "silver-bm25+knn.jsonl", score_range=(0.0, 1.0))
    assert {t for p in silver.pairs() for t in p} <= set(TARGET)
    table = (config.out / "results.md").read_text(encoding="utf-8")
    assert f"| bm25+knn | {row.silver_pairs} | {row.train_pairs} | " in table
    assert "| — | " in table  # no test file


def test_given_pairs_are_kept_as_written_each_once_clear_of_gold_and_capped() -> None:
    given = [("a cat", "a dog"), ("a dog", "a  cat"), ("x", " x"), *GOLD_PAIRS[:1], ("b", "c")]
    assert given_pairs(given, cap=10, exclude=GOLD_PAIRS) == [("a cat", "a dog"), ("b", "c")]
    many = [(f"q{i}", f"d{i}") for i in range(50)]
    kept = given_pairs(many, cap=7, seed=4)
    assert len(kept) == 7 and kept == sorted(kept, key=many.index)  # a subset, in order
    assert kept == given_pairs(many, cap=7, seed=4) != given_pairs(many, cap=7, seed=5)
    with pytest.raises(ValueError, match="use given_pairs"):
        sample_pairs(["a", "b"], Sampling.GIVEN, cap=5)
    with pytest.raises(TypeError, match="pair 0 must be two strings"):
        given_pairs([("a",)], cap=5)  # type: ignore[list-item]


def test_read_unlabelled_pairs_and_its_errors(tmp_path: Path) -> None:
    rows = (
        '{"question1": "a", "question2": "b", "score": 1}\n{"question1": "c", "question2": "d"}\n'
    )
    assert read_unlabelled_pairs(bad_file(tmp_path, "p.jsonl", rows)) == [("a", "b"), ("c", "d")]
    csv_file = bad_file(tmp_path, "p.tsv", "Sentence1\tsentence_2\na b\tc d\n")
    assert read_unlabelled_pairs(csv_file) == [("a b", "c d")]
    # a TSV row is one line: a text opening with a quote (as MRPC's do) swallowed the next rows
    quoted = bad_file(tmp_path, "q.tsv", 'sentence1\tsentence2\n"We won, he said.\tb\nc\td\n')
    assert read_unlabelled_pairs(quoted) == [('"We won, he said.', "b"), ("c", "d")]
    assert read_sentences(quoted) == ['"We won, he said.', "b", "c", "d"]
    with pytest.raises(DataError, match="holds sentences, not pairs"):
        read_unlabelled_pairs(bad_file(tmp_path, "t.txt", "a\nb\n"))
    with pytest.raises(DataError, match=r"t.jsonl, line 2: has \['text'\]; the pairs as given"):
        read_unlabelled_pairs(
            bad_file(tmp_path, "t.jsonl", rows.split("\n")[0] + '\n{"text": "x"}\n')
        )
    with pytest.raises(DataError, match="line 3: sentence1 and sentence2 must both be non-empty"):
        read_unlabelled_pairs(bad_file(tmp_path, "e.csv", "sentence1,sentence2\na,b\nc, \n"))


def test_domain_transfer_labels_the_target_pairs_as_given(
    data: dict[str, Path], tiny_bert_dir: Path, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """The paper's domain transfer: the target pairs exist, only their scores do not. They were
    split into sentences and paired again; --sampling given labels them as written."""
    given = [(TARGET[i], TARGET[(i + 5) % 12]) for i in range(12)]
    lines = [json.dumps({"sentence1": a, "sentence2": b}) for a, b in [*given, given[0][::-1]]]
    target = bad_file(tmp_path, "target.jsonl", "\n".join(lines) + "\n")
    config = config_for(
        tmp_path / "out",
        tiny_bert_dir,
        unlabelled=target,
        cross_encoder=tiny_ce_dir,
        strategies=(Sampling.GIVEN, Sampling.BM25),
        dev=data["dev"],
    )
    report = run_augsbert(config, **QUIET)
    silver = read_pairs(config.out / "silver-given.jsonl", score_range=(0.0, 1.0))
    assert silver.pairs() == given  # as written, the repeat in the other order once
    expected = CrossEncoder.load(tiny_ce_dir).predict(given, symmetric=True)
    np.testing.assert_allclose(silver.scores(), expected, atol=1e-5)
    assert [r.model for r in report.rows] == ["base", "judge", "given", "bm25"]
    assert report.steps["sample-given"]["pairs"] == 12
    with pytest.raises(ValueError, match="--sampling given labels the pairs of --unlabelled"):
        run_augsbert(replace(config, unlabelled=None, gold=data["gold"]), **QUIET)


# --- errors: each one before any training -------------------------------------------------------


def bad_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"strategies": ("nearest",)}, ValueError, "unknown sampling 'nearest'"),
        ({"strategies": ()}, ValueError, "no sampling strategy given"),
        ({"cap": 0}, ValueError, "--cap must be at least 1, got 0"),
        ({"top_k": 0}, ValueError, "--top-k must be at least 1"),
        ({"loss": "mse"}, ValueError, "unknown loss 'mse'; expected one of: cosent"),
        ({"gold": None, "unlabelled": "target"}, ValueError, "--cross-encoder train needs --gold"),
        ({"gold": None, "cross_encoder": "ce"}, ValueError, "without --gold, --unlabelled must"),
        (
            {"gold": None, "cross_encoder": "ce", "unlabelled": "target"},
            ValueError,
            "knn sampling searches with a bi-encoder; without --gold",
        ),
        ({"gold": "labels"}, DataError, "has no 'score' column .binary labels.; AugSBERT"),
        ({"gold": "short"}, DataError, "3 usable rows; training needs at least 8"),
        ({"dev": "labels"}, DataError, "--dev .*: Spearman needs graded scores that differ"),
        ({"test": "flat"}, DataError, "--test .*: Spearman needs graded scores that differ"),
        ({"unlabelled": "one"}, DataError, "1 distinct sentences; sampling needs at least 2"),
        ({"base": "missing-model"}, ModelLoadError, "model '.*missing-model' not found"),
        ({"cross_encoder": "missing-model"}, ModelLoadError, "missing-model' not found"),
    ],
)
def test_bad_input_fails_before_any_training(
    changes: dict[str, Any],
    error: type[Exception],
    message: str,
    data: dict[str, Path],
    tiny_bert_dir: Path,
    tiny_ce_dir: Path,
    tmp_path: Path,
) -> None:
    files = {
        "target": data["target"],
        "ce": tiny_ce_dir,
        "labels": bad_file(
            tmp_path, "labels.csv", "sentence1,sentence2,label\n" + "a,b,1\nc,d,0\n" * 5
        ),
        "short": write_pairs_csv(tmp_path / "short.csv", GOLD[:3]),
        "flat": bad_file(tmp_path, "flat.csv", "sentence1,sentence2,score\na,b,2\nc,d,2\n"),
        "one": bad_file(tmp_path, "one.txt", "the only sentence\n"),
        "missing-model": tmp_path / "missing-model",
    }
    resolved = {k: files.get(v, v) if isinstance(v, str) else v for k, v in changes.items()}
    out = tmp_path / "out"
    config = config_for(out, tiny_bert_dir, **{"gold": data["gold"], **resolved})
    with pytest.raises(error, match=message):
        run_augsbert(config, **QUIET)
    assert not out.exists()


def test_domain_transfer_with_too_few_silver_pairs(
    tiny_bert_dir: Path, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    target = bad_file(tmp_path, "t.txt", "a red car\na blue car\na red house\n")
    config = config_for(
        tmp_path / "out",
        tiny_bert_dir,
        unlabelled=target,
        cross_encoder=tiny_ce_dir,
        strategies=(Sampling.RANDOM,),
    )
    with pytest.raises(
        DataError, match="random sampling found 3 pairs among 3 sentences; training"
    ):
        run_augsbert(config, **QUIET)
    assert not any(p.is_dir() for p in config.out.iterdir())


def stop_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every training step raise KeyboardInterrupt: a run then ends after labelling."""
    import sentsim.training.loop

    def stop(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(sentsim.training.loop, "fit", stop)


def test_changed_sampling_settings_are_refused(
    data: dict[str, Path],
    tiny_bert_dir: Path,
    tiny_ce_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = config_for(
        tmp_path / "out",
        tiny_bert_dir,
        unlabelled=data["target"],
        cross_encoder=tiny_ce_dir,
        strategies=(Sampling.BM25,),
    )
    stop_before_training(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_augsbert(config, **QUIET)
    assert (config.out / "silver-bm25.jsonl").is_file()
    with pytest.raises(
        SentsimError, match=r"was sampled with other settings \{'cap': \(30, 12\)\}"
    ):
        run_augsbert(replace(config, cap=12), **QUIET)


def test_knn_pairs_ranked_by_cosine_for_a_dot_product_model_are_refused(
    data: dict[str, Path],
    tiny_bert_dir: Path,
    tiny_ce_dir: Path,
    tiny_dot_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """knn pairs a dot-product --knn-encoder ranked by cosine (sentsim before it read the
    model's similarity; its steps.json records none) are not reused: the rerun says so."""
    config = config_for(
        tmp_path / "out",
        tiny_bert_dir,
        unlabelled=data["target"],
        cross_encoder=tiny_ce_dir,
        knn_encoder=tiny_dot_dir,
        strategies=(Sampling.KNN,),
    )
    stop_before_training(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_augsbert(config, **QUIET)
    steps = json.loads((config.out / "steps.json").read_text(encoding="utf-8"))
    assert steps["sample-knn"]["params"]["similarity"] == "dot"
    with pytest.raises(KeyboardInterrupt):  # recorded as it is: reused
        run_augsbert(config, **QUIET)
    del steps["sample-knn"]["params"]["similarity"]
    (config.out / "steps.json").write_text(json.dumps(steps), encoding="utf-8")
    with pytest.raises(
        SentsimError,
        match=r"was sampled with other settings \{'similarity': \('cosine', 'dot'\)\}",
    ):
        run_augsbert(config, **QUIET)


def test_pairs_sampled_from_other_sentences_or_around_other_pairs_are_refused(
    data: dict[str, Path],
    tiny_bert_dir: Path,
    tiny_ce_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sampling step was known by the file's path and its number of sentences: an
    --unlabelled file edited in place (one sentence replaced) reused the old file's pairs and
    silver, and another --dev kept pairs sampled without leaving the new dev pairs out, so dev
    pairs could be trained on. A steps.json written before the hashes is read as before."""
    target = tmp_path / "target.txt"
    shutil.copy(data["target"], target)
    config = config_for(
        tmp_path / "out",
        tiny_bert_dir,
        unlabelled=target,
        cross_encoder=tiny_ce_dir,
        strategies=(Sampling.BM25,),
        dev=data["dev"],
    )
    stop_before_training(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_augsbert(config, **QUIET)
    target.write_text("\n".join([*TARGET[:-1], "a fee for cash abroad"]) + "\n", encoding="utf-8")
    with pytest.raises(SentsimError) as caught:
        run_augsbert(config, **QUIET)
    assert str(caught.value) == (
        f"{config.out / 'silver-bm25-pairs.jsonl'} was sampled from other data: the sentences of "
        f"{target} changed since this step ran (another file, the same one edited, or a model "
        "trained again); delete it, silver-bm25.jsonl and model-bm25/, or choose another --out"
    )
    shutil.copy(data["target"], target)
    other_dev = write_pairs_csv(tmp_path / "dev.csv", [*DEV, (*TARGET[:2], 4.0)])
    with pytest.raises(SentsimError, match=r"the --gold, --dev and --test pairs it leaves out"):
        run_augsbert(replace(config, dev=other_dev), **QUIET)
    steps = json.loads((config.out / "steps.json").read_text(encoding="utf-8"))
    del steps["sample-bm25"]["params"]["texts"], steps["sample-bm25"]["params"]["exclude"]
    (config.out / "steps.json").write_text(json.dumps(steps), encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):  # sampling and labelling reused, then training
        run_augsbert(config, **QUIET)


def test_knn_pairs_of_a_gold_only_model_trained_again_are_refused(
    full_run: tuple[AugSbertConfig, Any, list[str]], tmp_path: Path
) -> None:
    """A run with another --lr is refused until model-gold/ and the models after it are deleted;
    the rerun then trained model-gold/ again and reused the knn pairs the old one had ranked."""
    config, _, _ = full_run
    out = tmp_path / "out"
    shutil.copytree(config.out, out)
    for folder in ("model-gold", "model-knn"):
        shutil.rmtree(out / folder)
    faster = replace(config, out=out, strategies=(Sampling.KNN,))
    faster = replace(faster, settings=replace(config.settings, lr=5e-4))
    with pytest.raises(SentsimError) as caught:
        run_augsbert(faster, **QUIET)
    assert str(caught.value).startswith(
        f"{out / 'silver-knn-pairs.jsonl'} was sampled from other data: the weights of "
        "model-gold (the encoder that ranks knn partners) changed since this step ran"
    )


def test_a_rerun_with_another_judge_or_other_training_settings_is_refused(
    full_run: tuple[AugSbertConfig, Any, list[str]], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """Done steps were skipped whatever changed: a run with --epochs 3 kept the 1-epoch models,
    one with another --cross-encoder kept silver labelled by the first judge, and the table then
    put the new judge's score beside them."""
    config, _, _ = full_run
    out = tmp_path / "out"
    shutil.copytree(config.out, out)
    config = replace(config, out=out)
    longer = replace(config.settings, epochs=3)
    with pytest.raises(
        SentsimError, match=r"cross-encoder was trained with other settings \{'epochs': \(1, 3\)\}"
    ):
        run_augsbert(replace(config, cross_settings=longer), **QUIET)
    with pytest.raises(SentsimError, match=r"model-gold was trained with other settings .*'lr'"):
        run_augsbert(replace(config, settings=replace(config.settings, lr=0.5)), **QUIET)
    with pytest.raises(
        SentsimError, match=r"silver-bm25\.jsonl was labelled by --cross-encoder train, this run"
    ):
        run_augsbert(replace(config, cross_encoder=tiny_ce_dir), **QUIET)


def test_a_rerun_with_other_gold_or_dev_data_is_refused(
    full_run: tuple[AugSbertConfig, Any, list[str]], tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """The judge and the gold-only model were "done already" whatever --gold or --dev now held:
    a gold file edited in place (same path, same sentences, other scores) reused every model and
    every silver file, and the table scored models trained on the old data."""
    config, _, _ = full_run
    out = tmp_path / "out"
    shutil.copytree(config.out, out)
    config = replace(config, out=out)
    regraded = write_pairs_csv(tmp_path / "gold.csv", [(a, b, 5 - s) for a, b, s in GOLD])
    with pytest.raises(SentsimError) as caught:
        run_augsbert(replace(config, gold=regraded), **QUIET)
    # it said "trained with other settings {'gold': ('3f2a…', '9c1e…')}": hashes, no way out
    assert str(caught.value).startswith(
        f"{out / 'cross-encoder'} was trained on other gold data: the --gold pairs changed since "
        "this step ran (another file, or the same one edited); delete cross-encoder/, the "
        "silver-*.jsonl files it labelled, and the models trained after it, or choose another --out"
    )
    other_dev = write_pairs_csv(tmp_path / "dev.csv", DEV[:-1])
    with pytest.raises(SentsimError, match=r"cross-encoder was trained on other dev data: the "):
        run_augsbert(replace(config, dev=other_dev), **QUIET)
    assert "other settings" not in str(caught.value)
    with pytest.raises(SentsimError, match=r"model-gold was trained on other dev data: .* delete "):
        run_augsbert(replace(config, cross_encoder=tiny_ce_dir, dev=other_dev), **QUIET)
    steps = json.loads((out / "steps.json").read_text(encoding="utf-8"))
    for step in ("train-cross-encoder", "train-gold"):  # a run recorded before the data hashes
        del steps[step]["params"]["gold"], steps[step]["params"]["dev"]
    (out / "steps.json").write_text(json.dumps(steps), encoding="utf-8")
    run_augsbert(config, **QUIET)  # still skips its done steps


def test_silver_of_a_judge_trained_again_is_refused(
    full_run: tuple[AugSbertConfig, Any, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The labelling step recorded its judge as "train": a run with another --cross-lr, after
    cross-encoder/ and the models were deleted (as the refusal says) but not the silver, trained
    a new judge and then reused the old judge's silver without a word. The step now records the
    hash of the judge's weights; a steps.json written before that is read as before."""
    config, _, _ = full_run
    out = tmp_path / "out"
    shutil.copytree(config.out, out)
    config = replace(config, out=out)
    steps = json.loads((out / "steps.json").read_text(encoding="utf-8"))
    assert steps["label-bm25"]["judge_weights"] == weights_hash(out / "cross-encoder")
    for folder in ("cross-encoder", "model-gold", "model-bm25", "model-random", "model-knn"):
        shutil.rmtree(out / folder)
    faster = replace(config.cross_settings, lr=5e-4)
    with pytest.raises(SentsimError) as caught:
        run_augsbert(replace(config, cross_settings=faster), **QUIET)
    assert str(caught.value).startswith(
        f"{out / 'silver-bm25.jsonl'} was labelled by another judge (weights "
        f"{steps['label-bm25']['judge_weights']}, this run's {weights_hash(out / 'cross-encoder')}"
    )
    assert "delete it and model-bm25/ to label its pairs again" in str(caught.value)

    old = tmp_path / "old"  # a run recorded before the judge's hash: its silver is reused
    shutil.copytree(full_run[0].out, old)
    for name in ("bm25", "random", "knn"):
        del steps[f"label-{name}"]["judge_weights"]
    (old / "steps.json").write_text(json.dumps(steps), encoding="utf-8")
    import sentsim.training.augsbert as recipe

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the silver was labelled again")

    monkeypatch.setattr(recipe, "label_to_file", refuse)
    run_augsbert(replace(config, out=old), **QUIET)


def test_cached_scores_follow_the_content_of_the_test_file(
    full_run: tuple[AugSbertConfig, Any, list[str]], tmp_path: Path
) -> None:
    """results.json knew the dev and test files by path: a test file edited in place (no step
    compares it) kept every row's old test Spearman. The cache is keyed by the pairs' content."""
    config, report, _ = full_run
    out = tmp_path / "out"
    shutil.copytree(config.out, out)
    test = write_pairs_csv(tmp_path / "test.csv", TEST)
    config = replace(config, out=out, test=test)
    first = run_augsbert(config, **QUIET)
    assert [r.test_spearman for r in first.rows] == [r.test_spearman for r in report.rows]
    write_pairs_csv(test, [(a, b, 5 - s) for a, b, s in TEST])  # same path, scores reversed
    again = run_augsbert(config, **QUIET)
    for before, after in zip(first.rows, again.rows, strict=True):
        assert before.test_spearman is not None and after.test_spearman is not None
        assert after.test_spearman == pytest.approx(-before.test_spearman, abs=1e-6)
        assert after.dev_spearman == before.dev_spearman


def _judge_row(path: Path) -> ResultRow:
    return ResultRow("judge", str(path), 0, 0, None, None, 0.0)


def test_the_log_says_nothing_of_a_missing_test_score(tmp_path: Path) -> None:
    """Without --test the log read "[judge] Spearman dev 12.3, test None"."""
    dev = read_pairs(write_pairs_csv(tmp_path / "dev.csv", DEV))
    messages: list[str] = []
    for test in (None, dev):
        evaluate_rows(
            [_judge_row(tmp_path / "judge")],
            lambda row: OverlapPairScorer(),
            dev=dev,
            test=test,
            cache=tmp_path / "results.json",
            log=messages.append,
        )
    without, with_test = messages
    assert re.fullmatch(r"\[judge\] Spearman dev -?\d+\.\d\d", without), without
    assert re.fullmatch(r"\[judge\] Spearman dev -?\d+\.\d\d, test -?\d+\.\d\d", with_test)


def test_a_judge_folder_trained_again_in_place_is_scored_again(
    tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """A judge given as a folder (no train_report.json of this run) was known in results.json by
    its path: trained again in place, it kept its old cached Spearman. It is known by the hash
    of its weights, as the silver it labelled is."""
    judge = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge)
    dev = read_pairs(write_pairs_csv(tmp_path / "dev.csv", DEV))
    cache = tmp_path / "results.json"
    scored: list[str] = []

    def scorer_for(row: ResultRow) -> OverlapPairScorer:
        scored.append(row.model)
        return OverlapPairScorer()

    def run() -> None:
        rows = evaluate_rows([_judge_row(judge)], scorer_for, dev=dev, test=None, cache=cache)
        cache.write_text(results_json(rows, {}), encoding="utf-8")

    run()
    run()
    assert scored == ["judge"]  # the second run reused the row
    weights = judge / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x01")  # "trained again"
    run()
    assert scored == ["judge", "judge"]


def test_a_damaged_silver_file_names_the_way_out(
    full_run: tuple[AugSbertConfig, Any, list[str]], tmp_path: Path
) -> None:
    """A cut silver file ended in "... (use --skip-bad-rows to skip)", an option augsbert lacks;
    one cut at a line end was trained on, its lost pairs unsaid."""
    config, _, _ = full_run
    out = tmp_path / "out"
    shutil.copytree(config.out, out)
    silver = out / "silver-bm25.jsonl"
    silver.write_bytes(silver.read_bytes()[:-20])
    shutil.rmtree(out / "model-bm25")
    with pytest.raises(DataError, match=r"silver-bm25\.jsonl, line \d+: not valid JSON") as caught:
        run_augsbert(replace(config, out=out), **QUIET)
    assert "--skip-bad-rows" not in str(caught.value)
    assert "delete it and the model trained on it to label its pairs again" in str(caught.value)
    lines = silver.read_text(encoding="utf-8").split("\n")
    silver.write_text("\n".join(lines[:-2]) + "\n", encoding="utf-8")  # cut at a line end
    with pytest.raises(DataError, match=rf"silver-bm25\.jsonl: {len(lines) - 2} pairs, where"):
        run_augsbert(replace(config, out=out), **QUIET)


# --- command line -------------------------------------------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    import sentsim.cli

    monkeypatch.setattr(sentsim.cli, "_MODULES", ["augsbert"])
    return sentsim.cli.main(argv)


def test_register_adds_the_command() -> None:
    parser = argparse.ArgumentParser()
    cli_augsbert.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            *["augsbert", "--cross-encoder", "train", "--sampling", "bm25,knn"],
            *["--sampling", "random", "--cap", "100", "--out", "o", "--gold", "g.csv"],
        ]
    )
    assert args.sampling == ["bm25,knn", "random"]
    assert args.unlabelled == "from-gold" and args.epochs == 1 and args.base == "minilm"


def test_cli_domain_transfer_prints_the_table_and_json(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: dict[str, Path],
    tiny_bert_dir: Path,
    tiny_ce_dir: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    argv = ["augsbert", "--unlabelled", str(data["target"]), "--cross-encoder", str(tiny_ce_dir)]
    argv += ["--sampling", "bm25", "--cap", "20", "--out", str(out), "--base", str(tiny_bert_dir)]
    argv += ["--batch-size", "8", "--no-progress", "--json", "--dev", str(data["dev"])]
    monkeypatch.setattr("sys.argv", ["sentsim", *argv])  # the model card quotes the command
    from sentsim.evaluation.scorers import EncoderPairScorer

    asked: list[bool | None] = []  # --no-progress must reach every scoring, evaluation included
    score_pairs = EncoderPairScorer.score_pairs

    def recording(self, pairs, *, show_progress=None):  # type: ignore[no-untyped-def]
        asked.append(show_progress)
        return score_pairs(self, pairs, show_progress=show_progress)

    monkeypatch.setattr(EncoderPairScorer, "score_pairs", recording)
    assert run_cli(monkeypatch, argv) == 0
    assert asked and set(asked) == {False}
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert [r["model"] for r in result["rows"]] == ["base", "judge", "bm25"]
    assert "| bm25 | " in "\n".join(lines)
    card = (out / "model-bm25" / "README.md").read_text(encoding="utf-8")
    assert "    sentsim augsbert --unlabelled " in card and " --sampling bm25 --cap 20 " in card


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sampling", "bm25,near"], "unknown sampling 'near'; expected one of: random, bm25"),
        (["--sampling", "knn", "--unlabelled", "TARGET"], "knn sampling searches with a bi-enc"),
        (["--sampling", "bm25"], "without --gold, --unlabelled must name a file"),
        (["--sampling", "bm25", "--gold", "GOLD", "--dev", "TARGET"], "TARGET.* cannot tell"),
    ],
)
def test_cli_bad_input_is_one_line(
    extra: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: dict[str, Path],
    tiny_ce_dir: Path,
    tmp_path: Path,
) -> None:
    extra = [
        str(data["target"]) if a == "TARGET" else str(data["gold"]) if a == "GOLD" else a
        for a in extra
    ]
    message = message.replace("TARGET", "target.txt")
    argv = ["augsbert", "--cross-encoder", str(tiny_ce_dir), "--cap", "5"]
    argv += ["--out", str(tmp_path / "out"), *extra]
    assert run_cli(monkeypatch, argv) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sentsim: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()


def test_pair_lists_and_sentences_keep_line_separator_characters(tmp_path: Path) -> None:
    """U+2028 inside a sentence is written raw in JSON; reading must not split the line there
    (the second run of an augsbert folder failed with a JSONDecodeError traceback)."""
    from sentsim.training.silver import read_pair_list, write_pairs

    pairs = [("first\u2028half", "other\x85text"), ("plain", "page\x0cbreak")]
    write_pairs(tmp_path / "pairs.jsonl", pairs)
    assert read_pair_list(tmp_path / "pairs.jsonl") == pairs
    (tmp_path / "s.txt").write_text("a\u2028b\nc\u2029d\n", encoding="utf-8")
    assert read_sentences(tmp_path / "s.txt") == ["a\u2028b", "c\u2029d"]
