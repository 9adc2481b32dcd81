"""The help-center demo corpus: well-formed articles, one primary article per Banking77 intent.

The corpus is original writing for a fictional bank. Besides checking its shape, these tests make
sure no article shares an 8-word sequence with a question from Banking77's test split, so that
searching the corpus with those questions measures retrieval, not copied text.
"""

from __future__ import annotations

import csv
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from sentsim.settings import data_root

HELPCENTER = files("sentsim") / "resources" / "helpcenter"
FIELDS = ("id", "title", "text", "category")
NGRAM = 8


def _data_file(*parts: str) -> Path:
    return data_root().joinpath("banking77", *parts)


needs_categories = pytest.mark.skipif(
    not _data_file("categories.json").exists(), reason="Banking77 categories.json not available"
)
needs_test_split = pytest.mark.skipif(
    not _data_file("test.csv").exists(), reason="Banking77 test.csv not available"
)


def load_articles() -> list[dict[str, Any]]:
    text = (HELPCENTER / "articles.jsonl").read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:  # pragma: no cover - reported as a failure
            pytest.fail(f"articles.jsonl line {number} is not valid JSON: {error}")
    return rows


def load_intents() -> dict[str, str]:
    return json.loads((HELPCENTER / "intents.json").read_text(encoding="utf-8"))


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def ngrams(words: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_articles_parse_and_are_well_formed() -> None:
    articles = load_articles()
    assert articles, "articles.jsonl is empty"
    for row in articles:
        assert isinstance(row, dict), f"not a JSON object: {row!r}"
        for field in FIELDS:
            value = row.get(field)
            assert isinstance(value, str) and value.strip(), f"{row.get('id')!r}: empty {field}"


def test_article_ids_are_unique() -> None:
    ids = [row["id"] for row in load_articles()]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate ids: {duplicates}"


def test_corpus_has_at_least_140_articles() -> None:
    assert len(load_articles()) >= 140


def test_intent_map_points_at_distinct_existing_articles() -> None:
    ids = {row["id"] for row in load_articles()}
    intents = load_intents()
    missing = {intent: aid for intent, aid in intents.items() if aid not in ids}
    assert not missing, f"intents mapped to unknown articles: {missing}"
    targets = list(intents.values())
    shared = sorted({aid for aid in targets if targets.count(aid) > 1})
    assert not shared, f"articles that serve more than one intent: {shared}"


@pytest.mark.data
@needs_categories
def test_every_banking77_intent_has_a_primary_article() -> None:
    categories = json.loads(_data_file("categories.json").read_text(encoding="utf-8"))
    intents = load_intents()
    missing = [name for name in categories if name not in intents]
    assert not missing, f"intents without a primary article: {missing}"
    unknown = sorted(set(intents) - set(categories))
    assert not unknown, f"intents.json names intents Banking77 does not have: {unknown}"


@pytest.mark.data
@needs_test_split
def test_no_article_shares_an_8gram_with_a_test_question() -> None:
    with _data_file("test.csv").open(encoding="utf-8", newline="") as handle:
        questions = [row["text"] for row in csv.DictReader(handle)]
    assert questions, "test.csv has no questions"
    test_grams: set[tuple[str, ...]] = set()
    for question in questions:
        test_grams |= ngrams(tokens(question))

    overlaps = []
    for row in load_articles():
        for field in ("title", "text"):
            for gram in sorted(ngrams(tokens(row[field])) & test_grams):
                overlaps.append(f"{row['id']} ({field}): {' '.join(gram)}")
    assert not overlaps, "articles share 8-grams with Banking77 test questions:\n" + "\n".join(
        overlaps
    )


@needs_test_split
def test_example_questions_come_from_train_less_dev_and_name_primary_articles() -> None:
    """Example queries: Banking77 train questions, less the held-out dev tenth."""
    from sentsim.helpcenter import banking77_questions, example_questions, train_dev_split

    examples = example_questions()
    train, dev = train_dev_split()
    intents = load_intents()
    assert [e.text for e in examples] == [q for q, _ in train]
    assert all(e.metadata["answer"] == intents[e.metadata["intent"]] for e in examples)
    texts = {e.text for e in examples}
    assert texts <= {q for q, _ in banking77_questions("train")}
    leaked = texts & ({q for q, _ in dev} - {q for q, _ in train})
    assert not leaked, f"{len(leaked)} held-out dev questions among the examples"
    assert len({e.id for e in examples}) == len(examples)


def test_train_dev_split_keeps_every_intent_in_both_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """--dev-fraction 0.9 rounded a 3-question intent's dev part to all 3: train.jsonl had no row
    of it, silently (0.99999 wrote an empty train.jsonl)."""
    from sentsim import helpcenter

    rows = [(f"small {i}", "small") for i in range(3)] + [(f"big {i}", "big") for i in range(20)]
    monkeypatch.setattr(helpcenter, "banking77_questions", lambda split: rows)
    for fraction, dev_sizes in [(0.9, {"small": 2, "big": 18}), (0.99999, {"small": 2, "big": 19})]:
        train, dev = helpcenter.train_dev_split(fraction)
        assert {i: sum(c == i for _, c in dev) for i in ("small", "big")} == dev_sizes
        assert {c for _, c in train} == {"small", "big"}
        assert sorted(train + dev) == sorted(rows)
    train, dev = helpcenter.train_dev_split(0.01)  # and at least one question is held out
    assert {c for _, c in dev} == {"small", "big"} and len(train) == 21
