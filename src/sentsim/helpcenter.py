"""The bank help center shipped with sentsim, and Banking77 questions as its test queries.

``resources/helpcenter/articles.jsonl`` holds the articles (the project's own prose);
``intents.json`` maps each of Banking77's 77 intents to its primary article. A Banking77 question's
relevant article is the primary article of its intent.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

from sentsim.atomic import atomic_text
from sentsim.corpus import document_text
from sentsim.errors import DataError
from sentsim.index import Document, Index
from sentsim.jsonl import read_objects
from sentsim.models import RESOURCES
from sentsim.settings import dataset_path
from sentsim.textfile import TableReader, open_text

if TYPE_CHECKING:
    from sentsim.bi_encoder import BiEncoder

HELPCENTER = RESOURCES / "helpcenter"


def articles() -> list[Document]:
    """The help-center articles, in file order."""
    docs = []
    with (HELPCENTER / "articles.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                meta = {k: v for k, v in row.items() if k not in ("id", "title", "text")}
                docs.append(Document(row["id"], row["text"], row["title"], meta))
    return docs


def intent_articles() -> dict[str, str]:
    """Banking77 intent → id of its primary article."""
    value = json.loads((HELPCENTER / "intents.json").read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in value.items()}


def banking77_questions(split: str) -> list[tuple[str, str]]:
    """``(question, intent)`` rows of Banking77's ``train`` or ``test`` split."""
    path = dataset_path("banking77", f"{split}.csv")
    with open_text(path, newline="") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


_QUESTION_FIELDS = ("text", "question", "query", "utterance")
_LABEL_FIELDS = ("intent", "category", "label")


def _field(row: dict[str, object], names: tuple[str, ...]) -> str:
    """The first of ``names`` the row has with a value, matched without regard to case."""
    lowered = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    for name in names:
        value = lowered.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def read_questions(path: Path) -> list[tuple[str, str]]:
    """Labelled customer questions of your own as ``(question, article id)`` rows.

    CSV or TSV with a header, or JSON lines; each row has ``text`` (or ``question``, ``query``,
    ``utterance``) and one of ``article`` (the id of the article that answers it), ``intent``,
    ``category`` or ``label`` (a Banking77 intent name, case and spaces aside: its primary
    article). A row without text or label, or naming an unknown article or intent, is an error
    that names the line.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file (a CSV or JSONL of questions: text, intent)")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = list(read_objects(path, expected="an object with text and intent (or article)"))
    else:
        with open_text(path, newline="") as handle:
            first = handle.readline()
        with open_text(path, newline="") as handle:
            reader = TableReader(handle, tsv="\t" in first)
            names = {str(n).strip().lower() for n in reader.fieldnames or []}
            if not names & set(_QUESTION_FIELDS):
                raise DataError(
                    f"{path}, line 1: header needs 'text' and 'intent' (or 'article'); "
                    f"found {sorted(names)}"
                )
            rows = [(reader.line_num, dict(row)) for row in reader]
    known = {doc.id for doc in articles()}
    mapping = intent_articles()
    out = []
    for n, row in rows:
        where = f"{path}, line {n}"
        text = _field(row, _QUESTION_FIELDS)
        if not text:
            raise DataError(f"{where}: no question in field 'text'")
        if article := _field(row, ("article",)):
            if article not in known:
                raise DataError(
                    f"{where}: unknown article {article!r}; use an id from articles.jsonl"
                )
        else:
            label = _field(row, _LABEL_FIELDS)
            if not label:
                raise DataError(f"{where}: no label; give 'intent' (or 'category') or 'article'")
            intent = "_".join(label.lower().replace("-", " ").split())
            if intent not in mapping:
                raise DataError(
                    f"{where}: unknown intent {label!r}; use one of Banking77's 77 intents "
                    "(resources/helpcenter/intents.json) or an 'article' id"
                )
            article = mapping[intent]
        out.append((text, article))
    if not out:
        raise DataError(f"{path}: no questions")
    return out


def train_dev_split(
    dev_fraction: float = 0.1, seed: int = 0
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Banking77 train questions split into (train, dev) ``(question, intent)`` lists.

    The dev part is a fixed ``dev_fraction`` of each intent's questions: the held-out set that
    selects models, retrievers and weights for the help center. Test questions are never used.
    """
    import numpy as np

    if not 0.0 < dev_fraction < 1.0:  # NaN fails this too
        raise ValueError(
            f"the dev fraction must be between 0 and 1 (e.g. 0.1), got {dev_fraction}: both "
            "parts need questions"
        )
    by_intent: dict[str, list[str]] = {}
    for question, intent in banking77_questions("train"):
        by_intent.setdefault(intent, []).append(question)
    rng = np.random.default_rng(seed)
    train: list[tuple[str, str]] = []
    dev: list[tuple[str, str]] = []
    for intent in sorted(by_intent):
        questions = by_intent[intent]
        # each part keeps a question of each intent: a large fraction rounded to every question
        # of a small intent, and training never saw it
        size = min(len(questions) - 1, max(1, round(dev_fraction * len(questions))))
        held = set(rng.choice(len(questions), size, replace=False).tolist())
        for i, question in enumerate(questions):
            (dev if i in held else train).append((question, intent))
    return train, dev


def example_questions(dev_fraction: float = 0.1, seed: int = 0) -> list[Document]:
    """Banking77 **train** questions (less the held-out dev part) as labelled example queries.

    Each is a document whose ``answer`` field names its intent's primary article: what a bank
    with its own history of support questions would feed :class:`~sentsim.search.ExampleQueries`.
    The held-out dev questions and the test split are never among them.
    """
    mapping = intent_articles()
    train = train_dev_split(dev_fraction, seed)[0]
    return [
        Document(f"banking77-train-{i}", question, "", {"answer": mapping[c], "intent": c})
        for i, (question, c) in enumerate(train)
    ]


def example_index(encoder: BiEncoder, *, show_progress: bool | None = None) -> Index:
    """The cached index of :func:`example_questions` for ``encoder`` (built on first use)."""
    from sentsim.evaluation.retrieval_eval import documents_index

    return documents_index(example_questions(), encoder, show_progress=show_progress)


def write_examples(path: Path, dev_fraction: float = 0.1, seed: int = 0) -> Path:
    """Write :func:`example_questions` as corpus JSON lines (``id``, ``text``, ``answer``)."""
    with atomic_text(path) as handle:
        for doc in example_questions(dev_fraction, seed):
            row = {"id": doc.id, "text": doc.text, **doc.metadata}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def write_beir(
    folder: Path,
    split: str = "test",
    *,
    sample: int | None = None,
    seed: int = 0,
    questions: list[tuple[str, str]] | None = None,
) -> Path:
    """Write the help center and Banking77 ``split`` questions as a BEIR folder; return it.

    ``sample`` keeps a fixed random subset of that many questions (the same for a given seed).
    ``questions``: ``(question, article id)`` rows of your own (:func:`read_questions`) instead.
    """
    import numpy as np

    if sample is not None and sample < 1:
        raise ValueError(f"--sample must be at least 1 question, got {sample}")
    if questions is None:
        mapping = intent_articles()
        split_rows = train_dev_split()[1] if split == "dev" else banking77_questions(split)
        questions = [(q, mapping[c]) for q, c in split_rows]
    if sample is not None and sample < len(questions):
        keep = np.sort(np.random.default_rng(seed).choice(len(questions), sample, replace=False))
        indexed = [(int(i), *questions[int(i)]) for i in keep]
    else:
        indexed = [(i, q, a) for i, (q, a) in enumerate(questions)]
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with atomic_text(folder / "corpus.jsonl") as handle:
        for doc in articles():
            row = {"_id": doc.id, "title": doc.title, "text": doc.text}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (
        atomic_text(folder / "queries.jsonl") as q_out,
        atomic_text(folder / "qrels" / f"{split}.tsv") as r_out,
    ):
        r_out.write("query-id\tcorpus-id\tscore\n")
        for i, question, article in indexed:
            qid = f"{split}-{i}"
            q_out.write(json.dumps({"_id": qid, "text": question}, ensure_ascii=False) + "\n")
            r_out.write(f"{qid}\t{article}\t1\n")
    return folder


def write_training_triples(
    out: Path, *, dev_fraction: float = 0.1, seed: int = 0
) -> tuple[Path, Path]:
    """Write Banking77 **train** questions paired with their intent's article as JSON lines.

    Rows hold ``anchor`` (the question) and ``positive`` (the article's title, a newline, its
    text); a fixed ``dev_fraction`` of the questions (stratified by intent) goes to ``dev.jsonl``
    for selection, the rest to ``train.jsonl``. The test split is never read.
    """
    docs = {d.id: d for d in articles()}
    mapping = intent_articles()
    parts = train_dev_split(dev_fraction, seed)  # checks the data and the fraction: no folder yet
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "train.jsonl", out / "dev.jsonl"
    for path, rows in zip(paths, parts, strict=True):
        with atomic_text(path) as handle:
            for question, intent in rows:
                doc = docs[mapping[intent]]
                row = {"anchor": question, "positive": document_text(doc), "intent": intent}
                handle.write(json.dumps(row) + "\n")
    return paths
