"""Pair-classification and retrieval metrics: hand-computed cases and trec_eval as reference."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sentsim.data import read_pairs
from sentsim.duplicates import choose_threshold
from sentsim.errors import DataError
from sentsim.evaluation.pairs import at_threshold, average_precision, best_threshold, evaluate_pairs
from sentsim.evaluation.retrieval import (
    METRICS,
    Qrels,
    Run,
    ap_at,
    capped_metrics,
    evaluate_run,
    load_beir,
    mrr_at,
    ndcg_at,
    per_query,
    read_qrels,
    recall_at,
    write_trec_run,
)
from sentsim.evaluation.stats import bootstrap_spearman_difference, paired_bootstrap
from sentsim.evaluation.sts import correlations

# -- pair classification ---------------------------------------------------------------------------


def test_average_precision_by_hand() -> None:
    """Sorted by score the gold reads 1 0 1 0: AP = (1/1 + 2/3) / 2."""
    scores = np.array([0.6, 0.9, 0.7, 0.8])
    gold = np.array([0, 1, 1, 0])
    assert average_precision(scores, gold) == pytest.approx((1 + 2 / 3) / 2)


def test_average_precision_edges() -> None:
    assert average_precision(np.array([0.3, 0.2]), np.array([0, 0])) == 0.0
    assert average_precision(np.array([0.1, 0.9]), np.array([1, 1])) == 1.0
    assert average_precision(np.array([0.5]), np.array([1])) == 1.0


def test_average_precision_of_tied_scores_does_not_depend_on_row_order() -> None:
    """Tied pairs are predicted positive together (scikit-learn's convention).

    Ties were broken by input order: a constant scorer had AP 1 on a file that lists its
    positives first and 0.5 on one that lists them last. Sorted by score the gold reads
    1, then a tie of {0, 1, 0}, then 1: AP = 1/1 · 1/3 + 2/4 · 1/3 + 3/5 · 1/3.
    """
    for gold in ([0, 1], [1, 0]):
        assert average_precision(np.array([0.5, 0.5]), np.array(gold)) == pytest.approx(0.5)
    constant = np.full(4, 0.7)
    assert average_precision(constant, np.array([1, 1, 0, 0])) == pytest.approx(0.5)
    assert average_precision(constant, np.array([0, 0, 1, 1])) == pytest.approx(0.5)
    scores = np.array([0.6, 0.9, 0.6, 0.2, 0.6])
    for gold in ([0, 1, 1, 1, 0], [1, 1, 0, 1, 0], [0, 1, 0, 1, 1]):
        expected = (1 + 2 / 4 + 3 / 5) / 3
        assert average_precision(scores, np.array(gold)) == pytest.approx(expected)


def test_at_threshold_by_hand() -> None:
    """``score ≥ t`` predicts 1: at 0.7, predictions 1 1 1 0 0 against gold 1 0 1 0 0."""
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.3])
    gold = np.array([1, 0, 1, 0, 0])
    r = at_threshold(scores, gold, 0.7)
    assert r.threshold == 0.7
    assert r.accuracy == pytest.approx(80.0)
    assert r.precision == pytest.approx(100 * 2 / 3)
    assert r.recall == pytest.approx(100.0)
    assert r.f1 == pytest.approx(80.0)


def test_at_threshold_with_nothing_predicted_or_nothing_relevant() -> None:
    none_predicted = at_threshold(np.array([0.1, 0.2]), np.array([1, 0]), 0.5)
    assert (none_predicted.precision, none_predicted.recall, none_predicted.f1) == (0, 0, 0)
    assert none_predicted.accuracy == 50.0
    none_relevant = at_threshold(np.array([0.1, 0.9]), np.array([0, 0]), 0.5)
    assert (none_relevant.recall, none_relevant.f1, none_relevant.accuracy) == (0, 0, 50.0)


def test_best_threshold_by_hand() -> None:
    """Midpoints of 0.3 0.6 0.7 0.8 0.9 are tried; F1 is best (80) at 0.65, between 0.6 and 0.7."""
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.3])
    gold = np.array([1, 0, 1, 0, 0])
    best = best_threshold(scores, gold)
    assert best.threshold == pytest.approx(0.65)
    assert best.f1 == pytest.approx(80.0)
    # Accuracy: 80 at 0.65, also 80 at 0.85 (predict only 0.9); the first wins.
    by_accuracy = best_threshold(scores, gold, by="accuracy")
    assert by_accuracy.threshold == pytest.approx(0.65)
    assert by_accuracy.accuracy == pytest.approx(80.0)


def test_best_threshold_can_predict_everything_and_one_score() -> None:
    """All positive: the threshold below the lowest score predicts all and gives F1 100."""
    best = best_threshold(np.array([0.2, 0.4]), np.array([1, 1]))
    assert best.threshold < 0.2 and best.f1 == 100.0
    single = best_threshold(np.array([0.5]), np.array([1]))
    assert single.f1 == 100.0


def test_best_threshold_by_accuracy_can_predict_nothing() -> None:
    """The candidates stopped at the highest score, which always predicts one pair positive:
    with rare positives scored low, accuracy 33 at 0.1 was chosen over 67 for predicting none.
    F1 never prefers predicting nothing (its F1 is 0), so the F1 choice is unchanged."""
    scores, gold = np.array([0.9, 0.8, 0.1]), np.array([0, 0, 1])
    best = best_threshold(scores, gold, by="accuracy")
    assert best.threshold > 0.9 and best.accuracy == pytest.approx(200 / 3)
    assert best_threshold(scores, gold).threshold < 0.1  # F1: predict all (F1 50), not none


def test_scores_and_labels_of_different_lengths_are_refused() -> None:
    """They were paired up silently: AP 1.0 from the first two labels of three, precision 200%
    and F1 133% at a threshold."""
    scores, gold = np.array([0.9]), np.array([0, 1, 1])
    for metric in (
        lambda: average_precision(np.array([0.1, 0.9]), gold),
        lambda: at_threshold(scores, gold, 0.5),
        lambda: best_threshold(scores, gold),
    ):
        with pytest.raises(ValueError, match=r"scores for 3 labels"):
            metric()


def test_best_threshold_refuses_no_scores_and_an_unknown_criterion() -> None:
    with pytest.raises(ValueError, match="needs at least one score"):
        best_threshold(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="by must be one of: f1, accuracy; got 'auc'"):
        best_threshold(np.array([0.2, 0.4]), np.array([0, 1]), by="auc")


class TableScorer:
    """A pair scorer that looks each pair's score up in a table."""

    name = "table"

    def __init__(self, table: dict[tuple[str, str], float]) -> None:
        self.table = table

    def score_pairs(
        self, pairs: list[tuple[str, str]], *, show_progress: bool | None = None
    ) -> np.ndarray:
        return np.array([self.table[p] for p in pairs], dtype=np.float32)


def _label_file(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["sentence1,sentence2,label"] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_evaluate_pairs_oracle_and_dev_threshold(tmp_path: Path) -> None:
    """AP on the data; F1 at the data's own best threshold (oracle) or at the dev set's."""
    rows = [("a", "1", "1"), ("b", "2", "0"), ("c", "3", "1"), ("d", "4", "0"), ("e", "5", "0")]
    dev_rows = [("f", "6", "1"), ("g", "7", "0"), ("h", "8", "0")]
    table = {("a", "1"): 0.9, ("b", "2"): 0.8, ("c", "3"): 0.7, ("d", "4"): 0.6, ("e", "5"): 0.3}
    table |= {("f", "6"): 0.95, ("g", "7"): 0.8, ("h", "8"): 0.7}
    data = read_pairs(_label_file(tmp_path / "test.csv", rows))
    dev = read_pairs(_label_file(tmp_path / "dev.csv", dev_rows))
    oracle = evaluate_pairs(data, TableScorer(table))
    assert oracle["average_precision"] == pytest.approx(100 * (1 + 2 / 3) / 2, abs=0.01)
    assert oracle["threshold_from"] == "oracle"
    assert oracle["threshold"] == pytest.approx(0.65)
    assert (oracle["accuracy"], oracle["f1"], oracle["recall"]) == (80.0, 80.0, 100.0)
    assert (oracle["pairs"], oracle["positive_rate"]) == (5, 40.0)
    # Dev: 0.95 is the only positive; the best F1 cut is between 0.8 and 0.95.
    chosen = evaluate_pairs(data, TableScorer(table), dev=dev)
    assert chosen["threshold_from"] == f"dev:{dev.path}"
    assert chosen["threshold"] == pytest.approx(0.875)
    assert (chosen["accuracy"], chosen["precision"], chosen["recall"]) == (80.0, 100.0, 50.0)
    assert chosen["f1"] == pytest.approx(66.67)
    itself = evaluate_pairs(data, TableScorer(table), dev=read_pairs(tmp_path / "test.csv"))
    assert itself["threshold_from"] == "oracle (--dev is the evaluated file)"
    assert itself["threshold"] == oracle["threshold"]


def test_evaluate_pairs_needs_binary_labels(tmp_path: Path) -> None:
    data = read_pairs(_label_file(tmp_path / "nli.csv", [("a", "b", "entailment")]))
    with pytest.raises(DataError, match=r"nli\.csv: labels must be 0 or 1 .*\['entailment'\]"):
        evaluate_pairs(data, TableScorer({("a", "b"): 0.5}))


# -- retrieval: by hand ----------------------------------------------------------------------------

QRELS: Qrels = {
    "q1": {"d1": 2, "d2": 1, "d3": 0, "d4": -1, "d5": 1},
    "q2": {"d1": 1},
    "q3": {"d2": 0, "d3": -1},  # nothing relevant: dropped
    "q4": {"d9": 1},  # relevant document never retrieved
}
RUN: Run = {
    "q1": [("d3", 0.9), ("d4", 0.7), ("d1", 0.8), ("d2", 0.6), ("dx", 0.5)],
    "q2": [("d1", 0.3)],
    "q3": [("d2", 0.9)],
    "q4": [("d1", 0.9)],
}


def test_retrieval_metrics_by_hand() -> None:
    """q1 ranks d3 (0), d1 (2), d4 (−1), d2 (1), dx: relevant are d1, d2, d5.

    nDCG@10 = (2/log2 3 + 1/log2 5) / (2 + 1/log2 3 + 1/log2 4); MRR = 1/2; recall = 2/3;
    AP = (1/2 + 2/4) / 3; accuracy@1 = 0. A negative judgement counts as 0, not as a penalty.
    """
    scores = per_query(RUN, QRELS)
    assert set(scores) == {"q1", "q2", "q4"}
    q1 = scores["q1"]
    ndcg = (2 / math.log2(3) + 1 / math.log2(5)) / (2 + 1 / math.log2(3) + 1 / math.log2(4))
    assert q1["ndcg@10"] == pytest.approx(ndcg)
    assert q1["mrr@10"] == pytest.approx(1 / 2)
    assert q1["recall@100"] == pytest.approx(2 / 3)
    assert q1["map@100"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert q1["accuracy@1"] == 0.0
    assert scores["q2"] == dict.fromkeys(METRICS, 1.0)
    assert scores["q4"] == dict.fromkeys(METRICS, 0.0)


def test_each_metric_of_a_query_without_a_relevant_document_is_0() -> None:
    """recall_at and ap_at raised ZeroDivisionError where ndcg_at and mrr_at give 0."""
    rels = QRELS["q3"]
    for metric in (ndcg_at, mrr_at, recall_at, ap_at):
        assert metric(["d2", "d3"], rels, 10) == 0.0


def test_evaluate_run_means_over_queries_with_a_relevant_document() -> None:
    result = evaluate_run(RUN, QRELS)
    assert result["queries"] == 3.0
    ndcg = (2 / math.log2(3) + 1 / math.log2(5)) / (2 + 1 / math.log2(3) + 1 / math.log2(4))
    assert result["ndcg@10"] == round(100 * (ndcg + 1 + 0) / 3, 2)
    assert result["mrr@10"] == round(100 * (0.5 + 1) / 3, 2)
    assert result["accuracy@1"] == round(100 / 3, 2)


def test_metric_cutoffs() -> None:
    """A relevant document at rank 11 counts for recall@100 and MAP@100, not nDCG@10 or MRR@10."""
    run: Run = {"q": [(f"n{i:02d}", 1 - i / 100) for i in range(10)] + [("rel", 0.5)]}
    scores = per_query(run, {"q": {"rel": 1}})["q"]
    assert (scores["ndcg@10"], scores["mrr@10"]) == (0.0, 0.0)
    assert scores["recall@100"] == 1.0
    assert scores["map@100"] == pytest.approx(1 / 11)


def test_metrics_deeper_than_the_candidates_are_named_as_capped() -> None:
    """With 20 candidates a query, recall@100 equals recall@20: the run cannot hold rank 21."""
    assert capped_metrics(100) == capped_metrics(1000) == []
    assert capped_metrics(20) == ["recall@100", "map@100"]
    assert capped_metrics(5) == ["ndcg@10", "mrr@10", "recall@100", "map@100"]
    run: Run = {"q": [(f"d{i}", 1 - i / 100) for i in range(30)]}
    qrels = {"q": {"d0": 1, "d25": 1}}
    truncated = {"q": run["q"][:20]}
    assert per_query(truncated, qrels)["q"]["recall@100"] == recall_at(
        [d for d, _ in run["q"]], qrels["q"], 20
    )


def test_ties_are_broken_by_descending_document_id() -> None:
    """trec_eval compares ids as strings, descending: d2 before d10 before d1."""
    run: Run = {"q": [("d1", 1.0), ("d10", 1.0), ("d2", 1.0)]}
    assert per_query(run, {"q": {"d1": 1}})["q"]["mrr@10"] == pytest.approx(1 / 3)
    assert per_query(run, {"q": {"d2": 1}})["q"]["mrr@10"] == 1.0


def test_evaluate_run_without_relevant_documents_errors() -> None:
    with pytest.raises(DataError, match="no query has a relevant document"):
        evaluate_run({"q": [("d", 1.0)]}, {"q": {"d": 0}})


# -- retrieval: against trec_eval ------------------------------------------------------------------


def _random_case(ties: bool) -> tuple[Run, Qrels]:
    """50 queries, 120 retrieved of 300 documents each, 20 judgements from −1 to 3.

    The first 5 queries judge nothing relevant; with ``ties`` scores have one decimal, so many
    documents tie and ids like d1 / d10 / d100 must be ordered as trec_eval orders them.
    """
    rng = np.random.default_rng(7 if ties else 3)
    docs = np.array([f"d{i}" for i in range(300)])
    run: Run = {}
    qrels: Qrels = {}
    for q in range(50):
        qid = f"q{q}"
        retrieved = rng.choice(docs, size=120, replace=False)
        scores = rng.permutation(10_000)[:120] / 10_000
        if ties:
            scores = np.round(scores, 1)
        run[qid] = [(str(d), float(s)) for d, s in zip(retrieved, scores, strict=True)]
        judged = rng.choice(docs, size=20, replace=False)
        grades = rng.choice([-1, 0, 0, 1, 2, 3], size=20) if q >= 5 else rng.choice([-1, 0], 20)
        qrels[qid] = {str(d): int(g) for d, g in zip(judged, grades, strict=True)}
    return run, qrels


@pytest.mark.parametrize("ties", [False, True], ids=["distinct-scores", "tied-scores"])
def test_retrieval_metrics_match_trec_eval(ties: bool) -> None:
    """Per query, our metrics equal pytrec_eval's: ndcg_cut_10, recall_100, map_cut_100, P_1, and
    recip_rank on the run cut to its top 10 (trec's recip_rank has no cut-off)."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    run, qrels = _random_case(ties)
    ours = per_query(run, qrels)
    assert set(ours) == {f"q{q}" for q in range(5, 50)}
    as_dict = {q: dict(docs) for q, docs in run.items()}
    measures = {"ndcg_cut_10", "recall_100", "map_cut_100", "P_1"}
    trec = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(as_dict)
    top10 = {
        q: dict(sorted(docs, key=lambda x: (x[1], x[0]), reverse=True)[:10])
        for q, docs in run.items()
    }
    trec_rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    pairs = [("ndcg@10", "ndcg_cut_10"), ("recall@100", "recall_100"), ("map@100", "map_cut_100")]
    pairs.append(("accuracy@1", "P_1"))
    for qid, mine in ours.items():
        for name, trec_name in pairs:
            assert mine[name] == pytest.approx(trec[qid][trec_name], abs=1e-9), (qid, name)
        assert mine["mrr@10"] == pytest.approx(trec_rr[qid]["recip_rank"], abs=1e-9), qid
    # The case is not degenerate: every metric takes several values.
    for name in METRICS:
        assert len({round(s[name], 6) for s in ours.values()}) > 1, name


# -- BEIR folders and run files --------------------------------------------------------------------


def _beir(root: Path, *, qrels: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    corpus = [
        {"_id": "d1", "title": "Cards", "text": "my card was declined"},
        {"_id": "d2", "title": None, "text": "top up with cash"},
        {"_id": "d3", "text": "exchange rates"},
    ]
    queries = [
        {"_id": "q1", "text": "card declined"},
        {"_id": "q2", "text": "how to top up"},
        {"_id": "q3", "text": "not in this split"},
    ]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus) + "\n")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in queries) + "\n\n")
    (root / "qrels").mkdir(exist_ok=True)
    default = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td3\t0\n"
    (root / "qrels" / "test.tsv").write_text(qrels if qrels is not None else default)
    return root


def test_load_beir(tmp_path: Path) -> None:
    """Corpus id → (title, text) with a missing title as ''; only the split's queries are kept."""
    data = load_beir(_beir(tmp_path / "beir"), "test")
    assert data.corpus == {
        "d1": ("Cards", "my card was declined"),
        "d2": ("", "top up with cash"),
        "d3": ("", "exchange rates"),
    }
    assert data.queries == {"q1": "card declined", "q2": "how to top up"}
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 0}}
    subset = load_beir(tmp_path / "beir", "test", queries_subset=["q2"])
    assert list(subset.queries) == ["q2"] and list(subset.qrels) == ["q2"]


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        (
            "corpus.jsonl",
            '{"_id": "d1", "text": "a"}\n{broken\n',
            r"corpus\.jsonl, line 2: not valid",
        ),
        (
            "corpus.jsonl",
            '{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b"}\n{"_id": "d1", "text": "c"}\n',
            r"corpus\.jsonl, line 3: _id 'd1' already on line 1; ids must be unique",
        ),
        (
            "queries.jsonl",
            '{"_id": "q1", "text": "a"}\n\n{"_id": "q1", "text": "b"}\n',
            r"queries\.jsonl, line 3: _id 'q1' already on line 1",
        ),
        (
            "corpus.jsonl",
            '{"_id": "d1", "text": "a"}\n\n{"_id": "d3", "text": ["b"]}\n',
            r"line 3: 'text' is a list; it must be a string",
        ),
        ("queries.jsonl", '{"text": "q"}\n', r"queries\.jsonl, line 1: missing .*\['_id'\]"),
        (  # found only after the run
            "qrels/test.tsv",
            "query-id\tcorpus-id\tscore\nq1\td1\t0\nq2\td2\t-1\n",
            r"test\.tsv: no query has a relevant document \(every score ≤ 0\)",
        ),
        (  # eval retrieval said "query 0 is empty"; q3, not in this split, may be blank
            "queries.jsonl",
            '{"_id": "q1", "text": " "}\n{"_id": "q2", "text": "b"}\n{"_id": "q3", "text": ""}\n',
            r"queries\.jsonl: 1 judged queries have no text, e.g. \['q1'\]",
        ),
        ("qrels/test.tsv", "q\td\ts\nq1\td1\t1\n", r"test\.tsv, line 1: expected the header"),
        ("qrels/test.tsv", "query-id\tname\tscore\n", r"line 1: expected the header"),
        ("qrels/test.tsv", "q1\td1\t1\nq1 d2\n", r"line 2: expected 3 columns .* found 2"),
        (
            "qrels/test.tsv",
            "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\n",
            r"line 3: expected 3",
        ),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t0.5\n", r"line 2: score '0\.5'"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq9\td1\t1\n", r"absent from queries.*q9"),
        # eval retrieval printed nDCG@10 0.00 ... for a corpus with nothing to search
        ("corpus.jsonl", "\n", r"corpus\.jsonl: no documents; nothing can be searched"),
        (
            "corpus.jsonl",
            '{"_id": "d1", "text": ""}\n{"_id": "d2", "title": " ", "text": " "}\n',
            r"corpus\.jsonl: no documents with a title or text \(2 rows have neither",
        ),
    ],
)
def test_load_beir_errors_name_the_file_and_line(
    tmp_path: Path, file: str, content: str, message: str
) -> None:
    root = _beir(tmp_path / "beir")
    (root / file).write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_beir(root, "test")


@pytest.mark.parametrize(
    "qrels",
    [
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td3\t0\n",
        "q1\td1\t1\nq2\td2\t2\n\nq2\td3\t0\n",  # no header, a blank line
        "q1 0 d1 1\nq2 0 d2 2\nq2 0 d3 0\n",  # TREC
        "qid\tdocid\trel\nq1\td1\t1.0\nq2\td2\t2\nq2\td3\t0\n",
        # a spreadsheet's export: each line ends in a tab; it was read as TREC's 4 columns
        "query-id\tcorpus-id\tscore\t\r\nq1\td1\t1\t\r\nq2\td2\t2\t\r\nq2\td3\t0\t\r\n",
    ],
    ids=["beir", "headerless", "trec", "other-header", "trailing-tab"],
)
def test_qrels_layouts(tmp_path: Path, qrels: str) -> None:
    path = tmp_path / "qrels.tsv"
    path.write_text(qrels, encoding="utf-8")
    assert read_qrels(path) == {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 0}}


def test_load_beir_integer_ids_and_title_only_documents(tmp_path: Path) -> None:
    """Ids written as JSON numbers are read as the qrels' text; a document with a title and no text
    is searched by its title (TREC-COVID has such papers); one with neither is left out, by id."""
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    rows = [
        {"_id": 1, "title": "Cards", "text": "my card was declined"},
        {"_id": 2, "title": "Mortgage rates", "text": ""},
        {"_id": 3, "title": None, "text": " "},
    ]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "queries.jsonl").write_text('{"_id": 10, "text": "rates"}\n')
    (root / "qrels" / "test.tsv").write_text("10\t2\t1\n")
    data = load_beir(root, "test")
    assert data.corpus == {"1": ("Cards", "my card was declined"), "2": ("", "Mortgage rates")}
    assert data.queries == {"10": "rates"} and data.qrels == {"10": {"2": 1}}
    assert data.empty == ("3",)


def test_load_beir_documents_without_a_text_field(tmp_path: Path) -> None:
    """A corpus row whose ``text`` is absent or null is a title-only document (searched by its
    title) or, with no title either, left out with the others; ``index build`` reads both so.
    Such rows refused the whole corpus ("missing string field(s) ['text']")."""
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    rows = [
        {"_id": "1", "title": "Cards", "text": "my card was declined"},
        {"_id": "2", "title": "Mortgage rates"},
        {"_id": "3", "title": "Loans", "text": None},
        {"_id": "4"},
    ]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "queries.jsonl").write_text('{"_id": "10", "text": "rates"}\n')
    (root / "qrels" / "test.tsv").write_text("10\t2\t1\n")
    data = load_beir(root, "test")
    assert data.corpus == {
        "1": ("Cards", "my card was declined"),
        "2": ("", "Mortgage rates"),
        "3": ("", "Loans"),
    }
    assert data.empty == ("4",)


def test_load_beir_missing_files(tmp_path: Path) -> None:
    root = _beir(tmp_path / "beir")
    with pytest.raises(DataError, match=r"qrels file missing: .*dev\.tsv"):
        load_beir(root, "dev")
    (root / "queries.jsonl").unlink()
    with pytest.raises(DataError, match=r"BEIR file missing: .*queries\.jsonl"):
        load_beir(root, "test")
    with pytest.raises(DataError, match=r"qrels file missing"):
        read_qrels(tmp_path / "nowhere.tsv")


def test_write_trec_run(tmp_path: Path) -> None:
    """``qid Q0 docid rank score tag``, best first, ranks from 1; trec_eval reads it back."""
    run: Run = {"q1": [("d1", 0.25), ("d2", 0.75), ("d10", 0.25)], "q2": [("x", 1.0)]}
    path = tmp_path / "run.trec"
    write_trec_run(run, path, tag="mine")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "q1 Q0 d2 1 0.750000 mine",
        "q1 Q0 d10 2 0.250000 mine",
        "q1 Q0 d1 3 0.250000 mine",
        "q2 Q0 x 1 1.000000 mine",
    ]
    pytrec_eval = pytest.importorskip("pytrec_eval")
    with path.open() as handle:
        parsed = pytrec_eval.parse_run(handle)
    assert parsed == {q: dict(docs) for q, docs in run.items()}


def test_evaluate_pairs_needs_both_classes(tmp_path: Path) -> None:
    """All-0 data would print AP 0 and F1 0 at some threshold, as if measured: refused."""
    data = read_pairs(_label_file(tmp_path / "zeros.csv", [("a", "b", "0"), ("c", "d", "0")]))
    with pytest.raises(DataError, match=r"zeros\.csv: every label is 0; .* both classes"):
        evaluate_pairs(data, TableScorer({("a", "b"): 0.5, ("c", "d"): 0.4}))


def test_a_dev_file_of_one_class_is_refused_before_anything_is_scored(tmp_path: Path) -> None:
    """The --dev labels were checked only after the evaluated file and dev had been scored."""
    data = read_pairs(_label_file(tmp_path / "data.csv", [("a", "b", "1"), ("c", "d", "0")]))
    dev = read_pairs(_label_file(tmp_path / "dev.csv", [("e", "f", "1"), ("g", "h", "1")]))
    nothing = TableScorer({})  # any pair scored is a KeyError
    with pytest.raises(DataError, match=r"dev\.csv: every label is 1"):
        evaluate_pairs(data, nothing, dev=dev)
    with pytest.raises(DataError, match=r"dev\.csv: every label is 1"):
        choose_threshold(nothing, dev)


def test_cli_eval_pairs_json_and_dev_read_like_data(
    tmp_path: Path,
    tiny_st_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The JSON keeps the classification precision; --dev takes --skip-bad-rows as --data does."""
    from sentsim.cli import main

    rows = [("a man plays", "a man plays guitar", "1"), ("a dog", "the stock market", "0")]
    rows += [("a cat sleeps", "a cat is sleeping", "1"), ("rain today", "my card", "0")]
    data = _label_file(tmp_path / "data.csv", rows)
    dev = _label_file(tmp_path / "dev.csv", [*rows, ("a broken row", "", "1")])
    argv = ["eval", "pairs", "--data", str(data), "--model", str(tiny_st_dir), "--json"]
    assert main([*argv, "--dev", str(dev)]) == 1
    assert "dev.csv, line 6: sentence2 is missing or empty" in capsys.readouterr().err
    assert main([*argv, "--dev", str(dev), "--skip-bad-rows"]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert isinstance(out["precision"], float) and out["compute_precision"] == "fp32"
    assert out["threshold_from"] == f"dev:{dev}"


def test_a_pair_judged_twice_differently_is_refused_and_a_repeat_kept(tmp_path: Path) -> None:
    """The last judgement silently won: relevant on line 1, not relevant on line 2 left the query
    with no relevant document."""
    from sentsim.evaluation.retrieval import read_qrels

    path = tmp_path / "test.tsv"
    path.write_text("q1\td1\t1\nq1\td2\t0\nq1\td1\t1\n")
    assert read_qrels(path) == {"q1": {"d1": 1, "d2": 0}}
    path.write_text("q1\td1\t1\nq2\td1\t1\nq1\td1\t0\n")
    with pytest.raises(DataError, match=r"line 3: query 'q1' and document 'd1' are judged 0 here "
                       r"and 1 on line 1"):  # fmt: skip
        read_qrels(path)


def test_a_headerless_qrels_with_a_fractional_first_score_names_the_score(tmp_path: Path) -> None:
    """It said "expected the header" for a data row whose score was 1.5."""
    from sentsim.evaluation.retrieval import read_qrels

    path = tmp_path / "test.tsv"
    path.write_text("q1\td1\t1.5\n")
    with pytest.raises(DataError, match=r"line 1: score '1\.5' is not an integer"):
        read_qrels(path)
    path.write_text("qid\tdoc\trel\nq1\td1\t1\n")
    with pytest.raises(DataError, match=r"line 1: expected the header query-id"):
        read_qrels(path)


# -- paired bootstrap --------------------------------------------------------------------------


def test_paired_bootstrap_by_hand_and_its_refusals() -> None:
    """Two queries, b better by 0.2 and worse by 0.1: mean difference +5 (×100); every resample
    mean lies between −10 and +20. A metric the runs lack, or a confidence given in percent,
    failed inside numpy (KeyError, "Percentiles must be in the range [0, 100]")."""
    a = {"q1": {"ndcg@10": 0.5}, "q2": {"ndcg@10": 1.0}}
    b = {"q1": {"ndcg@10": 0.7}, "q2": {"ndcg@10": 0.9}, "q3": {"ndcg@10": 0.0}}
    r = paired_bootstrap(a, b, "ndcg@10", samples=500)
    assert (r.items, r.mean_a, r.mean_b) == (2, 75.0, 80.0)
    assert r.difference == pytest.approx(5.0)
    assert -10 - 1e-9 <= r.low <= r.difference <= r.high <= 20 + 1e-9
    with pytest.raises(
        ValueError, match=r"run a has no 'ndcg' for query 'q1'; it has \['ndcg@10'\]"
    ):
        paired_bootstrap(a, b, "ndcg")
    with pytest.raises(ValueError, match=r"between 0 and 1, e\.g\. 0\.95; got 95"):
        paired_bootstrap(a, b, "ndcg@10", confidence=95)


def test_spearman_bootstrap_leaves_out_resamples_without_a_correlation() -> None:
    """Ten pairs, two with gold 1: about one resample in ten draws only gold 0, whose Spearman
    is undefined (NaN); that NaN made the whole interval NaN. Such resamples are left out."""
    gold = np.array([0.0] * 8 + [1.0] * 2)
    rng = np.random.default_rng(1)
    a, b = rng.random(10), rng.random(10)
    r = bootstrap_spearman_difference(a, b, gold, samples=500)
    assert math.isfinite(r.low) and math.isfinite(r.high) and r.low < r.high
    assert r.difference == pytest.approx(correlations(b, gold)[0] - correlations(a, gold)[0])
    same = bootstrap_spearman_difference(a, a, gold, samples=50)
    assert (same.low, same.difference, same.high) == (0.0, 0.0, 0.0)


def test_spearman_bootstrap_refuses_scores_of_other_lengths_and_constant_gold() -> None:
    """Lengths that differ failed inside scipy ("all the input array dimensions ...")."""
    with pytest.raises(ValueError, match="10 and 10 scores for 9 gold scores"):
        bootstrap_spearman_difference(np.ones(10), np.ones(10), np.arange(9.0))
    with pytest.raises(DataError, match=r"every gold score is 2\.0"):
        bootstrap_spearman_difference(np.arange(4.0), np.arange(4.0), np.full(4, 2.0))
