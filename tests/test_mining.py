"""Hard-negative mining: candidates that look relevant, never a labelled positive."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import sentsim.training.mining as mining
from sentsim.training.data import Triple
from sentsim.training.mining import MiningSettings, mine_negatives

# Hand-made 2-d "embeddings": the anchor points along x; texts are ordered by their cosine to it.
VECTORS = {
    "card declined abroad": (1.0, 0.0),
    "declined card payments": (0.9, 0.1),  # positive
    "using your card abroad": (0.8, 0.2),  # second positive
    "card refused at a shop": (0.7, 0.3),
    "ATM withdrawal fees": (0.5, 0.5),
    "opening a savings account": (0.2, 0.8),
    "mortgage rates": (0.0, 1.0),
}


class FakeEncoder:
    """Returns the fixed unit vectors above; stands in for a bi-encoder compared by cosine."""

    similarity_fn_name = "cosine"

    def encode(self, texts: Sequence[str], **_: object) -> np.ndarray:
        rows = np.array([VECTORS[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def encode_query(self, texts: Sequence[str], **_: object) -> np.ndarray:
        return self.encode(texts)

    def encode_document(self, texts: Sequence[str], **_: object) -> np.ndarray:
        return self.encode(texts)


class FakeJudge:
    """Scores a pair 0.9 when the candidate mentions 'refused', else 0.1."""

    name = "fake judge"

    def __init__(self, num_labels: int = 1) -> None:
        self.num_labels = num_labels

    def predict(self, pairs: Sequence[tuple[str, str]], **_: object) -> np.ndarray:
        return np.array([0.9 if "refused" in b else 0.1 for _, b in pairs])


ANCHOR = "card declined abroad"
CORPUS = [t for t in VECTORS if t != ANCHOR]


# Six anchors, one positive each: every other positive is a candidate negative of an anchor.
CLI_ROWS = [
    ("my card was declined abroad", "card declined when paying abroad"),
    ("how do i top up my account", "top up your account with cash"),
    ("the exchange rate for euro", "euro to dollar exchange rate"),
    ("lost or stolen card", "freeze a lost card"),
    ("a man plays guitar", "a boy is playing the guitar"),
    ("a woman is eating food", "a girl eats food in the house"),
]


def _cli_mined(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str], *options: str
) -> set[tuple[str, str]]:
    """The (anchor, negative) pairs `sentsim mine` writes for :data:`CLI_ROWS` with `options`."""
    import json

    from sentsim.cli import main

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"anchor": a, "positive": p}) + "\n" for a, p in CLI_ROWS))
    out = tmp_path / "mined.jsonl"
    argv = ["mine", "--train", str(train), "--model", str(model), "--negatives", "10"]
    assert main([*argv, *options, "--out", str(out)]) == 0
    capsys.readouterr()
    written = [json.loads(line) for line in out.read_text().splitlines()]
    return {(row["anchor"], row["negative"]) for row in written}


def mine(triples: list[Triple], **settings: object) -> list[Triple]:
    return mine_negatives(
        triples,
        FakeEncoder(),  # type: ignore[arg-type]
        corpus=CORPUS,
        settings=MiningSettings(**settings),  # type: ignore[arg-type]
    )


def test_dense_negatives_follow_cosine_order_and_skip_positives() -> None:
    mined = mine([Triple(ANCHOR, "declined card payments")], negatives=2)
    # the pool without the positive, by cosine: using your card abroad, card refused, ATM...
    assert [t.negative for t in mined] == ["using your card abroad", "card refused at a shop"]
    assert all(t.positive == "declined card payments" for t in mined)


class UnnormalizedEncoder(FakeEncoder):
    """The same directions at a norm that grows with the text's length, as an encoder that does
    not normalize (a plain Hugging Face BiEncoder) gives."""

    def encode(self, texts: Sequence[str], **_: object) -> np.ndarray:
        return super().encode(texts) * np.array([[len(t)] for t in texts], dtype=np.float32)


def test_dense_candidates_follow_cosine_even_when_the_encoder_does_not_normalize() -> None:
    """They followed the inner product: the longest texts (largest norms) came first."""
    triples = [Triple(ANCHOR, "declined card payments")]
    settings = MiningSettings(negatives=2, margin=0.05)
    mined = mine_negatives(triples, UnnormalizedEncoder(), corpus=CORPUS, settings=settings)  # type: ignore[arg-type]
    expected = mine_negatives(triples, FakeEncoder(), corpus=CORPUS, settings=settings)  # type: ignore[arg-type]
    assert [t.negative for t in mined] == [t.negative for t in expected]


class DotEncoder(FakeEncoder):
    """A dot-product model (``similarity_fn_name: "dot"``, e.g. TAS-B): the directions above,
    two of them long, so that the dot product ranks otherwise than the cosine."""

    similarity_fn_name = "dot"
    NORMS: ClassVar[dict[str, float]] = {
        "ATM withdrawal fees": 3.0,
        "opening a savings account": 5.0,
    }

    def encode(self, texts: Sequence[str], **_: object) -> np.ndarray:
        norms = np.array([[self.NORMS.get(t, 1.0)] for t in texts], dtype=np.float32)
        return super().encode(texts) * norms


def test_dense_candidates_of_a_dot_product_model_follow_its_dot_product() -> None:
    """They followed the cosine, which such a model was not trained for, and which search (the
    index ranks by its inner products) does not rank by."""
    triples = [Triple(ANCHOR, "declined card payments")]
    settings = MiningSettings(negatives=3)
    mined = mine_negatives(triples, DotEncoder(), corpus=CORPUS, settings=settings)  # type: ignore[arg-type]
    vectors = DotEncoder().encode([ANCHOR, *CORPUS])
    dots = dict(zip(CORPUS, vectors[1:] @ vectors[0], strict=True))
    positive = dots["declined card payments"]  # candidates scoring above it are dropped
    by_dot = sorted((t for t in CORPUS if dots[t] < positive), key=lambda t: -dots[t])
    assert [t.negative for t in mined] == by_dot[:3]
    by_cosine = mine_negatives(triples, FakeEncoder(), corpus=CORPUS, settings=settings)  # type: ignore[arg-type]
    assert [t.negative for t in by_cosine] != by_dot[:3]  # the two orders do differ here


def test_every_positive_gets_its_own_negatives() -> None:
    triples = [
        Triple(ANCHOR, "declined card payments"),
        Triple(ANCHOR, "using your card abroad"),
    ]
    mined = mine(triples, negatives=1)
    assert [(t.positive, t.negative) for t in mined] == [
        ("declined card payments", "card refused at a shop"),
        ("using your card abroad", "ATM withdrawal fees"),
    ]
    assert not {t.negative for t in mined} & {"declined card payments", "using your card abroad"}


def test_rank_window_skips_the_top() -> None:
    mined = mine([Triple(ANCHOR, "declined card payments")], negatives=1, rank_window=(3, 10))
    assert [t.negative for t in mined] == ["ATM withdrawal fees"]


def test_margin_drops_candidates_close_to_the_positive() -> None:
    encoder = FakeEncoder()
    vectors = encoder.encode([ANCHOR, "declined card payments", "ATM withdrawal fees"])
    positive, atm = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    margin = (positive - atm) - 0.01  # ATM passes; everything closer than it does not
    mined = mine([Triple(ANCHOR, "declined card payments")], negatives=1, margin=margin)
    assert [t.negative for t in mined] == ["ATM withdrawal fees"]


def test_judge_drops_candidates_it_calls_positive() -> None:
    mined = mine_negatives(
        [Triple(ANCHOR, "declined card payments")],
        FakeEncoder(),  # type: ignore[arg-type]
        corpus=CORPUS,
        settings=MiningSettings(negatives=5),
        judge=FakeJudge(),  # type: ignore[arg-type]
    )
    negatives = [t.negative for t in mined]
    assert "card refused at a shop" not in negatives
    assert negatives[:2] == ["using your card abroad", "ATM withdrawal fees"]


def test_a_judge_with_several_outputs_is_refused() -> None:
    """A classifier (e.g. NLI, three outputs) ended in numpy's 'truth value of an array is
    ambiguous' after every anchor had been encoded."""
    with pytest.raises(ValueError, match=r"fake judge has 3 outputs; .* one-score cross-encoder"):
        mine_negatives(
            [Triple(ANCHOR, "declined card payments")],
            FakeEncoder(),  # type: ignore[arg-type]
            corpus=CORPUS,
            judge=FakeJudge(num_labels=3),  # type: ignore[arg-type]
        )


def test_bm25_only_needs_no_encoder() -> None:
    triples = [Triple("card declined abroad", "declined card payments")]
    settings = MiningSettings(negatives=3, use_bm25=True, use_dense=False)
    mined = mine_negatives(triples, None, corpus=CORPUS, settings=settings)
    negatives = [t.negative for t in mined]
    assert negatives and "declined card payments" not in negatives
    # BM25 ranks by shared words: the texts sharing 'card' or 'abroad' come first
    assert set(negatives[:2]) == {"using your card abroad", "card refused at a shop"}


def test_the_anchors_own_text_is_never_its_negative() -> None:
    """A pair file written both ways round puts each anchor in the pool; BM25 ranks it first."""
    pairs = [("card declined abroad", "declined card payments"), ("ATM fees", "cash machine fees")]
    triples = [Triple(a, b) for a, b in pairs] + [Triple(b, a) for a, b in pairs]
    settings = MiningSettings(negatives=3, use_bm25=True, use_dense=False)
    mined = mine_negatives(triples, None, corpus=CORPUS, settings=settings)
    assert mined and all(t.negative != t.anchor for t in mined)


def test_no_candidate_source_is_refused() -> None:
    with pytest.raises(ValueError, match="needs candidates"):
        mine_negatives([Triple("a", "b")], None, settings=MiningSettings(use_dense=False))
    with pytest.raises(ValueError, match="needs a bi-encoder"):
        mine_negatives([Triple("a", "b")], None, settings=MiningSettings())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"negatives": 0}, r"--negatives must be at least 1, got 0"),
        ({"rank_window": (30, 3)}, r"--rank-window 30 3: ranks count from 1 .* LOW ≤ HIGH"),
        ({"rank_window": (0, 5)}, r"--rank-window 0 5: ranks count from 1"),
        ({"margin": float("nan")}, r"--margin must be a finite number, got nan"),
    ],
)
def test_mining_settings_refuse_an_empty_window(change: dict[str, object], message: str) -> None:
    """A reversed or zero-based window, or no negatives, mined nothing and said only "0 mined"."""
    with pytest.raises(ValueError, match=message):
        MiningSettings(**change)  # type: ignore[arg-type]


@pytest.mark.parametrize("use_dense", [True, False], ids=["dense", "bm25"])
def test_the_window_keeps_its_last_rank_when_the_anchor_is_in_the_pool(use_dense: bool) -> None:
    """Candidates were fetched to the window's end plus the positives, and the anchor's own text
    (in the pool when a pair file is written both ways round) took a place: --rank-window 1 1
    mined nothing, and 1 2 only one negative."""
    positive = "declined card payments"
    triples = [Triple(ANCHOR, positive), Triple(positive, ANCHOR)]
    for window in ((1, 1), (2, 2), (1, 2)):
        settings = MiningSettings(
            negatives=5, rank_window=window, use_bm25=not use_dense, use_dense=use_dense
        )
        mined = mine_negatives(triples, FakeEncoder(), corpus=CORPUS, settings=settings)  # type: ignore[arg-type]
        for anchor in (ANCHOR, positive):
            negatives = [t.negative for t in mined if t.anchor == anchor]
            assert len(negatives) == window[1] - window[0] + 1, (window, anchor)
            assert not {ANCHOR, positive} & set(negatives)


def test_the_margin_holds_against_each_triples_own_positive() -> None:
    """An anchor with a strong and a weak positive: the margin was measured from the strong one
    only, so the weak positive's triple got "card refused at a shop" (cosine 0.92) as the
    negative of a positive at 0.71."""
    encoder = FakeEncoder()
    triples = [Triple(ANCHOR, "declined card payments"), Triple(ANCHOR, "ATM withdrawal fees")]
    for negatives in (1, 2):
        mined = mine(triples, negatives=negatives, margin=0.01)
        expected = [t.positive for t in triples for _ in range(negatives)]
        assert [t.positive for t in mined] == expected
        for t in mined:
            anchor, positive, negative = encoder.encode([t.anchor, t.positive, t.negative])
            assert anchor @ negative <= anchor @ positive - 0.01, t


def test_bm25_candidates_share_a_word_with_the_anchor() -> None:
    """BM25 returns its k documents whatever they score: texts sharing no word with the anchor
    (score 0, in no meaningful order) were mined as its "hard" negatives."""
    triples = [Triple(ANCHOR, "declined card payments")]
    settings = MiningSettings(negatives=5, use_bm25=True, use_dense=False)
    mined = mine_negatives(triples, None, corpus=CORPUS, settings=settings)
    assert [t.negative for t in mined] == ["using your card abroad", "card refused at a shop"]


class SpacingBlindEncoder(FakeEncoder):
    """The vectors above for texts spaced otherwise too, as a tokenizer reads them."""

    def encode(self, texts: Sequence[str], **_: object) -> np.ndarray:
        return super().encode([" ".join(t.split()) for t in texts])


@pytest.mark.parametrize("use_dense", [True, False], ids=["dense", "bm25"])
def test_a_corpus_copy_of_a_positive_or_anchor_spaced_otherwise_is_no_negative(
    use_dense: bool,
) -> None:
    """The pool was keyed by exact text: a corpus that held the positive (or the anchor) with a
    trailing or doubled space gave it as the anchor's first hard negative."""
    corpus = [*CORPUS, "declined card  payments ", " card declined abroad"]
    settings = MiningSettings(negatives=10, use_bm25=not use_dense, use_dense=use_dense)
    triples = [Triple(ANCHOR, "declined card payments")]
    encoder = SpacingBlindEncoder()
    mined = mine_negatives(triples, encoder, corpus=corpus, settings=settings)  # type: ignore[arg-type]
    words = {" ".join(t.negative.split()) for t in mined}
    assert mined and not words & {ANCHOR, "declined card payments"}


def test_mine_drops_what_the_judge_similarity_reports_scores_positive(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """``mine --cross-encoder ce-sts`` judged with the cross-encoder alone, one order, where
    ``sentsim similarity --cross-encoder ce-sts`` (and /score) give its fusion with its
    bi-encoder: the 0.5 threshold read another score than the one the judge's card reports. A
    candidate is now dropped exactly when ``load_judge``'s score with its anchor is ≥ 0.5.

    Shape: 6 anchors, one positive each, the other positives their candidates; a fusion (weight
    0.5) that disagrees with the cross-encoder alone on some of them."""
    import shutil

    from sentsim.cross_encoder import CrossEncoder
    from sentsim.fusion import FusionConfig, load_judge, write_fusion

    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    # the tiny models' cross-encoder scores lie around 0.3, their cosines around 0.9
    write_fusion(judge_dir, FusionConfig(str(tiny_st_dir), weight=0.5, ce_mean=0.3, ce_std=0.1,
                                         bi_mean=0.9, bi_std=0.03, symmetric=True))  # fmt: skip

    def mined(*judge: str) -> set[tuple[str, str]]:
        return _cli_mined(tmp_path, tiny_st_dir, capsys, *judge)

    candidates = sorted(mined())
    judged = mined("--cross-encoder", str(judge_dir))
    fused = load_judge(judge_dir).score_pairs(candidates)
    assert judged == {pair for pair, s in zip(candidates, fused, strict=True) if s < 0.5}
    alone = CrossEncoder.load(judge_dir).predict(candidates)
    assert judged != {pair for pair, s in zip(candidates, alone, strict=True) if s < 0.5}
    assert 0 < len(judged) < len(candidates), (len(judged), len(candidates))  # kept some, not all


def test_mine_reads_a_plain_judge_in_the_anchor_candidate_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """A judge without a fusion (a query -> passage re-ranker such as ce-rerank) is asked about
    (anchor, candidate) only, as mining asked before fused judges were read with their fusion:
    averaging in (candidate, anchor) would feed a re-ranker an order it never saw."""
    import json

    import sentsim.training.mining as mining
    from sentsim.cli import main
    from sentsim.cross_encoder import CrossEncoder

    seen: list[object] = []

    def spy(*args: object, judge: object = None, **kwargs: object) -> list[Triple]:
        seen.append(judge)
        return []

    monkeypatch.setattr(mining, "mine_negatives", spy)
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"anchor": "card declined", "positive": "declined card"}) + "\n")
    argv = ["mine", "--train", str(train), "--model", str(tiny_st_dir)]
    main([*argv, "--cross-encoder", str(tiny_ce_dir), "--out", str(tmp_path / "out.jsonl")])
    assert len(seen) == 1 and type(seen[0]) is CrossEncoder


def test_a_pair_scorer_judges_by_its_score_pairs() -> None:
    """A scorer such as load_judge(...) is asked for its own score (a fusion), not predict's."""

    class Scorer(FakeJudge):
        def score_pairs(self, pairs: Sequence[tuple[str, str]], **_: object) -> np.ndarray:
            return np.array([0.9 if "ATM" in b else 0.1 for _, b in pairs])

    mined = mine_negatives(
        [Triple(ANCHOR, "declined card payments")],
        FakeEncoder(),  # type: ignore[arg-type]
        corpus=CORPUS,
        settings=MiningSettings(negatives=5),
        judge=Scorer(num_labels=3),  # a scorer's outputs are its own: num_labels is not read
    )
    negatives = [t.negative for t in mined]
    assert "ATM withdrawal fees" not in negatives and "card refused at a shop" in negatives


class HashEncoder(FakeEncoder):
    """A fixed random unit vector per text (seeded by its CRC-32): any text, a stable order."""

    def encode(self, texts: Sequence[str], **_: object) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts]
        return np.array([r / np.linalg.norm(r) for r in rows], dtype=np.float32)


class CountingJudge(FakeJudge):
    """A 0–1 score fixed per pair (its CRC-32), and the pairs of each call it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[tuple[str, str]]] = []

    def predict(self, pairs: Sequence[tuple[str, str]], **_: object) -> np.ndarray:
        self.calls.append(list(pairs))
        return np.array([zlib.crc32(f"{a}|{b}".encode()) % 100 / 100 for a, b in pairs])


class CountingScorer(CountingJudge):
    """The same scores as a pair scorer (a fused judge, ``load_judge(...)``)."""

    def score_pairs(self, pairs: Sequence[tuple[str, str]], **_: object) -> np.ndarray:
        return self.predict(pairs)


@pytest.mark.parametrize("kind", [CountingJudge, CountingScorer])
def test_the_judge_scores_many_anchors_a_call_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch, kind: type[CountingJudge]
) -> None:
    """The judge was called once per anchor, on a window's few pairs. The pairs of many anchors
    now go in one call (one per JUDGE_PAIRS or more), and the triples are those of one call per
    anchor (JUDGE_PAIRS = 1), whatever the chunk size.

    Shape: 12 anchors with 1–2 positives each, a corpus of 30 more texts, window 1–10, a judge
    that drops about half of the candidates (threshold 0.5 on a pair-fixed score)."""
    texts = [f"text number {i}" for i in range(60)]
    triples = [Triple(texts[a], texts[12 + a]) for a in range(12)]
    triples += [Triple(texts[a], texts[24 + a]) for a in range(0, 12, 3)]
    settings = MiningSettings(negatives=4, rank_window=(1, 10), use_bm25=True)

    def mined(chunk: int | None) -> tuple[list[Triple], list[list[tuple[str, str]]]]:
        if chunk is not None:  # None: the default
            monkeypatch.setattr(mining, "JUDGE_PAIRS", chunk, raising=False)
        judge = kind()
        out = mine_negatives(
            triples,
            HashEncoder(),
            corpus=texts[30:],
            settings=settings,
            judge=judge,  # type: ignore[arg-type]
        )
        return out, judge.calls

    together, calls = mined(None)
    assert len(calls) == 1
    judged = len(calls[0])
    per_anchor, calls = mined(1)
    assert together == per_anchor and sum(map(len, calls)) == judged  # each candidate once
    anchors = [call[0][0] for call in calls]  # those with candidates below their positive
    assert len(anchors) == len(set(anchors)) > 6 and all(len({a for a, _ in c}) == 1 for c in calls)
    chunked, calls = mined(25)
    assert chunked == per_anchor and 1 < len(calls) < len(anchors)
    assert all(len(call) >= 25 for call in calls[:-1])
    unjudged = mine_negatives(triples, HashEncoder(), corpus=texts[30:], settings=settings)  # type: ignore[arg-type]
    judge = CountingJudge()
    kept = judge.predict([(t.anchor, t.negative) for t in per_anchor])
    assert len(kept) and (kept < 0.5).all()  # the judge did drop candidates here
    assert (judge.predict([(t.anchor, t.negative) for t in unjudged]) >= 0.5).any()


def test_mine_judges_in_one_call_and_writes_what_one_call_per_anchor_wrote(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """``sentsim mine --cross-encoder`` ran the cross-encoder once per anchor: 12 calls here,
    now 1, and the output file is byte for byte the one the per-anchor calls wrote."""
    import json

    from sentsim.cli import main
    from sentsim.cross_encoder import CrossEncoder

    words = ["card", "bank", "euro", "money", "transfer", "guitar"]
    words += ["food", "lost", "stolen", "account", "rate", "cash"]
    rows = [
        (f"{w} {words[i * 5 % 12]}", f"{words[i * 7 % 12]} {w} fees") for i, w in enumerate(words)
    ]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"anchor": a, "positive": p}) + "\n" for a, p in rows))
    calls: list[int] = []
    predict = CrossEncoder.predict

    def counted(self: CrossEncoder, pairs: Sequence[tuple[str, str]], **kwargs: object) -> object:
        calls.append(len(pairs))
        return predict(self, pairs, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(CrossEncoder, "predict", counted)

    def mined(chunk: int | None) -> bytes:
        if chunk is not None:  # None: the default
            monkeypatch.setattr(mining, "JUDGE_PAIRS", chunk, raising=False)
        out = tmp_path / f"mined-{chunk}.jsonl"
        argv = ["mine", "--train", str(train), "--model", str(tiny_st_dir), "--negatives", "5"]
        assert main([*argv, "--cross-encoder", str(tiny_ce_dir), "--out", str(out)]) == 0
        return out.read_bytes()

    together = mined(None)
    assert len(calls) == 1
    pairs, calls[:] = calls[0], []
    assert mined(1) == together  # one call per anchor, as mining judged before
    assert len(calls) == len(rows) and sum(calls) == pairs


def test_mine_max_judge_score_is_the_threshold_the_judge_is_read_at(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """``--max-judge-score S`` keeps exactly the candidates the judge scores below S (the Python
    API's ``max_judge_score``, no option before); S = 1 keeps them all, S = 0 none.

    Shape: 6 anchors, one positive each, the other positives their candidates; S midway between
    two of the judge's scores of them, so that some are kept and some dropped."""

    from sentsim.cross_encoder import CrossEncoder

    def mined(*judge: str) -> set[tuple[str, str]]:
        return _cli_mined(tmp_path, tiny_st_dir, capsys, *judge)

    candidates = sorted(mined())
    scores = CrossEncoder.load(tiny_ce_dir).predict(candidates)
    ordered = np.sort(scores)
    middle = len(ordered) // 2
    threshold = float((ordered[middle - 1] + ordered[middle]) / 2)
    judge = ["--cross-encoder", str(tiny_ce_dir), "--max-judge-score"]
    kept = mined(*judge, repr(threshold))
    assert kept == {pair for pair, s in zip(candidates, scores, strict=True) if s < threshold}
    assert 0 < len(kept) < len(candidates)
    assert mined(*judge, "1") == set(candidates)
    assert mined(*judge, "0") == set()
