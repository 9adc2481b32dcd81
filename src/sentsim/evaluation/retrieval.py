"""Retrieval metrics with trec_eval's conventions, and the BEIR folder layout.

Conventions: linear gain for nDCG; a judgement ≤ 0 is non-relevant; queries without a relevant
document are dropped; MAP@k divides by all relevant documents of the query; a run is each query's
documents sorted by descending score, ties broken by descending document id (as trec_eval does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentsim.atomic import atomic_text
from sentsim.corpus import title_and_text
from sentsim.errors import DataError
from sentsim.jsonl import read_objects
from sentsim.textfile import open_text

Qrels = dict[str, dict[str, int]]
Run = dict[str, list[tuple[str, float]]]


@dataclass(frozen=True)
class BeirData:
    """A BEIR folder: corpus (id → (title, text)), queries (id → text) and one split's qrels."""

    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: Qrels
    #: Ids of corpus rows with neither title nor text, left out (nothing to search them by).
    empty: tuple[str, ...] = ()


def _read_jsonl(
    path: Path, required: Sequence[str], optional: Sequence[str] = ()
) -> list[dict[str, str]]:
    """Each row of ``path``; ``optional`` fields may be absent or null, else strings too."""
    if not path.is_file():
        raise DataError(f"BEIR file missing: {path.resolve()}")
    rows = []
    first_line: dict[str, int] = {}
    for n, row in read_objects(path):
        if isinstance(row.get("_id"), int) and not isinstance(row["_id"], bool):
            row["_id"] = str(row["_id"])  # ids written by a dataframe; qrels hold them as text
        missing = [k for k in required if not isinstance(row.get(k), str)]
        if missing:
            raise DataError(f"{path}, line {n}: missing string field(s) {missing}")
        for k in optional:
            if row.get(k) is not None and not isinstance(row[k], str):
                raise DataError(
                    f"{path}, line {n}: {k!r} is a {type(row[k]).__name__}; it must be a string"
                )
        if (seen := first_line.setdefault(row["_id"], n)) != n:
            raise DataError(
                f"{path}, line {n}: _id {row['_id']!r} already on line {seen}; ids must be unique "
                "(one of the two would be silently dropped)"
            )
        rows.append(row)
    return rows


_QUERY_COLUMNS = {"query-id", "query_id", "queryid", "qid"}
_DOC_COLUMNS = {"corpus-id", "corpus_id", "corpusid", "doc-id", "doc_id", "docid", "pid"}


def read_qrels(path: Path) -> Qrels:
    """Read relevance judgements.

    BEIR's TSV (``query-id corpus-id score``, the header optional) or TREC's ``qid iteration docid
    relevance`` separated by spaces or tabs.
    """
    if not path.is_file():
        raise DataError(f"qrels file missing: {path.resolve()}")
    qrels: Qrels = {}
    seen: dict[tuple[str, str], int] = {}  # (query, document) -> line, for a conflicting repeat
    with open_text(path, newline="") as handle:
        for n, line in enumerate(handle, start=1):
            cells = line.split("\t") if "\t" in line else line.split()
            cells = [c.strip() for c in cells]
            while cells and not cells[-1]:  # a trailing tab is no fourth (TREC) column
                cells.pop()
            if not cells:
                continue
            if n == 1 and cells[0].lower() in _QUERY_COLUMNS:
                if len(cells) < 2 or cells[1].lower() not in _DOC_COLUMNS:
                    expected = "expected the header query-id, corpus-id, score"
                    raise DataError(f"{path}, line 1: {expected}")
                continue
            if len(cells) == 4:  # TREC: the second column (iteration) is unused
                cells = [cells[0], cells[2], cells[3]]
            if len(cells) != 3:
                raise DataError(
                    f"{path}, line {n}: expected 3 columns (query-id, corpus-id, score) or "
                    f"TREC's 4 (qid, iteration, docid, relevance), found {len(cells)}"
                )
            try:
                score = float(cells[2])
            except ValueError:
                score = math.nan
            if not score.is_integer():
                if n == 1 and math.isnan(score):  # a header with other names
                    raise DataError(
                        f"{path}, line 1: expected the header query-id, corpus-id, score (or none)"
                    )
                raise DataError(f"{path}, line {n}: score {cells[2]!r} is not an integer")
            judged = qrels.setdefault(cells[0], {})
            if judged.get(cells[1], int(score)) != int(score):
                raise DataError(
                    f"{path}, line {n}: query {cells[0]!r} and document {cells[1]!r} are judged "
                    f"{int(score)} here and {judged[cells[1]]} on line {seen[cells[0], cells[1]]}; "
                    "keep one judgement"
                )
            judged[cells[1]] = int(score)
            seen[cells[0], cells[1]] = n
    return qrels


def load_beir(
    folder: str | Path, split: str, *, queries_subset: Sequence[str] | None = None
) -> BeirData:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/SPLIT.tsv`` from a BEIR folder."""
    root = Path(folder)
    corpus: dict[str, tuple[str, str]] = {}
    empty = []
    # a paper without an abstract may have no "text" at all, or null, as `index build` takes it
    for r in _read_jsonl(root / "corpus.jsonl", ["_id"], optional=["text"]):
        searchable = title_and_text(str(r.get("title") or "").strip(), r.get("text") or "")
        if searchable is None:
            empty.append(r["_id"])
        else:
            corpus[r["_id"]] = searchable
    if not corpus:  # every query would score 0, printed as a result
        detail = f" with a title or text ({len(empty)} rows have neither)" if empty else ""
        raise DataError(f"{root / 'corpus.jsonl'}: no documents{detail}; nothing can be searched")
    queries = {r["_id"]: r["text"] for r in _read_jsonl(root / "queries.jsonl", ["_id", "text"])}
    qrels = read_qrels(root / "qrels" / f"{split}.tsv")
    qrels_file = root / "qrels" / f"{split}.tsv"
    if queries_subset is not None:
        keep = set(queries_subset)
        unknown = sorted(keep - set(qrels))
        if unknown:
            raise DataError(
                f"--queries names {len(unknown)} queries without judgments in {qrels_file}, e.g. "
                f"{unknown[:3]}; they cannot be scored: remove them or add their qrels"
            )
        qrels = {q: d for q, d in qrels.items() if q in keep}
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise DataError(f"{root}: qrels name queries absent from queries.jsonl, e.g. {missing[:3]}")
    if not qrels:
        which = "the queries --queries names" if queries_subset is not None else "any query"
        raise DataError(f"{qrels_file}: no judgment for {which}; nothing can be evaluated")
    if not any(grade > 0 for docs in qrels.values() for grade in docs.values()):
        raise DataError(  # found only after every query was searched (evaluate_run)
            f"{qrels_file}: no query has a relevant document (every score ≤ 0); nothing can "
            "be evaluated"
        )
    if blank := [q for q in qrels if not queries[q].strip()]:  # search would say only "query 0"
        raise DataError(
            f"{root / 'queries.jsonl'}: {len(blank)} judged queries have no text, e.g. "
            f"{blank[:3]}; give them text or remove their qrels"
        )
    return BeirData(corpus, {q: queries[q] for q in qrels}, qrels, tuple(empty))


def _ranked(docs: Sequence[tuple[str, float]]) -> list[str]:
    # Score, then id, both descending: trec_eval compares ids with strcmp, so "d2" > "d10" > "d1".
    return [d for d, _ in sorted(docs, key=lambda x: (x[1], x[0]), reverse=True)]


def ndcg_at(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    """``DCG@k / IDCG@k`` with ``DCG = Σ_{i≤k} rel_i / log2(i + 1)``, linear gain."""
    dcg = sum(max(rels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def mrr_at(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    """``1 / rank`` of the first relevant document within the top ``k`` (0 if none)."""
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def recall_at(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    """Relevant documents in the top ``k`` over all relevant documents (0 if none)."""
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def ap_at(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    """``Σ_{i≤k, rel_i} P@i / |relevant|`` (all relevant in the denominator; 0 if none)."""
    relevant = {d for d, r in rels.items() if r > 0}
    hits, total = 0, 0.0
    for i, d in enumerate(ranked[:k]):
        if d in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / len(relevant) if relevant else 0.0


METRICS = ("ndcg@10", "mrr@10", "recall@100", "map@100", "accuracy@1")


def capped_metrics(depth: int) -> list[str]:
    """The :data:`METRICS` whose cutoff ``k`` is deeper than ``depth`` candidates a query.

    A run holds at most ``depth`` documents a query, so such a metric is measured at ``depth``,
    not at ``k``: with 20 candidates, ``recall@100`` is Recall@20 (a relevant document ranked
    21st or later was never retrieved).

    >>> capped_metrics(20)
    ['recall@100', 'map@100']
    """
    return [m for m in METRICS if metric_cutoff(m) > depth]


def metric_cutoff(metric: str) -> int:
    """The rank a metric reads down to: ``recall@100`` → 100."""
    return int(metric.rsplit("@", 1)[1])


def per_query(run: Run, qrels: Qrels) -> dict[str, dict[str, float]]:
    """Each metric for each judged query that has a relevant document."""
    out = {}
    for qid, rels in qrels.items():
        if not any(r > 0 for r in rels.values()):
            continue
        ranked = _ranked(run.get(qid, []))
        out[qid] = {
            "ndcg@10": ndcg_at(ranked, rels, 10),
            "mrr@10": mrr_at(ranked, rels, 10),
            "recall@100": recall_at(ranked, rels, 100),
            "map@100": ap_at(ranked, rels, 100),
            "accuracy@1": float(bool(ranked) and rels.get(ranked[0], 0) > 0),
        }
    return out


def evaluate_run(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean of each metric ×100 over the queries with a relevant document, plus ``queries``."""
    scores = per_query(run, qrels)
    if not scores:
        raise DataError("no query has a relevant document in the qrels")
    means = {m: round(100 * sum(s[m] for s in scores.values()) / len(scores), 2) for m in METRICS}
    return {**means, "queries": float(len(scores))}


def write_trec_run(run: Run, path: Path, tag: str = "sentsim") -> None:
    """Write ``qid Q0 docid rank score tag`` lines, best first."""
    with atomic_text(path) as handle:
        for qid, docs in run.items():
            scores = dict(docs)
            for rank, d in enumerate(_ranked(docs), start=1):
                score = scores[d]
                handle.write(f"{qid} Q0 {d} {rank} {score:.6f} {tag}\n")
