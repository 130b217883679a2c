"""The sparse losses give the reference's values and gradients on the same tiny SPLADE model and batch.

Both libraries load one tiny random ``BertForMaskedLM`` (``tiny_mlm_folder``) as MLMTransformer + max
SpladePooling, in training mode with dropout off; every loss is built the same way in both (a recipe gets
the losses namespace) and run on the same tokenized batch. Regularizer weights are large here so that the
FLOPS terms weigh in the gradients that are compared.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from loss_cases import COLUMNS, SCORES, teacher_margins, teacher_scores
from sentencekit.errors import InvalidInputError
from sentencekit.modules import MLMTransformer, SpladePooling
from sentencekit.sparse_encoder import SparseEncoder, losses
from test_losses_parity import _assert_same_grads, _grads

st = pytest.importorskip("sentence_transformers")
from sentence_transformers.base.modules import Transformer as RefTransformer  # noqa: E402
from sentence_transformers.sparse_encoder import losses as ref_losses  # noqa: E402
from sentence_transformers.sparse_encoder.modules import SpladePooling as RefSpladePooling  # noqa: E402

TOLERANCE = 1e-5
VOCAB = 193  # the tiny tokenizer's vocabulary: the width of the sparse embeddings
# Active dimensions per text of the tiny model range over about 160-185: these thresholds mask some rows.
DOCUMENT_THRESHOLD, QUERY_THRESHOLD = 179, 178

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_reference_loss_name_is_provided():
    assert losses.__all__ == sorted(losses.__all__)
    assert set(losses.__all__) == set(ref_losses.__all__)
    assert all(getattr(losses, name) is not None for name in losses.__all__)


def without_dropout(model: Any) -> Any:
    """``model`` in training mode with every dropout probability 0 (the reference's SpladePooling works in
    place outside training mode, which leaves no graph to differentiate)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model.train()


@pytest.fixture(scope="module")
def splade_pair(tiny_mlm_folder: Path) -> tuple[SparseEncoder, Any]:
    """The same tiny SPLADE model in both libraries, in training mode without dropout."""
    ours = SparseEncoder(modules=[MLMTransformer(str(tiny_mlm_folder)), SpladePooling("max")], device="cpu")
    ref = st.SparseEncoder(
        modules=[RefTransformer(str(tiny_mlm_folder), transformer_task="fill-mask"), RefSpladePooling("max")],
        device="cpu",
    )
    return without_dropout(ours), without_dropout(ref)


@dataclass(frozen=True)
class SparseCase:
    """How to build one sparse loss (in either namespace) and its batch."""

    id: str
    build: Callable[[Any, Any], Any]
    columns: tuple[str, ...]
    labels: Callable[[], torch.Tensor | None] = field(default=lambda: None)


def _splade(inner: str, inner_kwargs: dict[str, Any] | None = None, **splade_kwargs: Any):
    weights = {"document_regularizer_weight": 0.5, "query_regularizer_weight": 0.3}
    settings = {**weights, **splade_kwargs}
    if settings.get("use_document_regularizer_only"):
        settings.pop("query_regularizer_weight")

    def build(ns: Any, model: Any) -> Any:
        return ns.SpladeLoss(model, getattr(ns, inner)(model, **(inner_kwargs or {})), **settings)

    return build


def _custom_regularizers(ns: Any, model: Any) -> Any:
    return ns.SpladeLoss(
        model,
        ns.SparseMultipleNegativesRankingLoss(model),
        document_regularizer_weight=0.4,
        query_regularizer_weight=0.2,
        document_regularizer=ns.FlopsLoss(model, threshold=DOCUMENT_THRESHOLD),
        query_regularizer=ns.FlopsLoss(model),
    )


def _vocabulary_targets() -> torch.Tensor:
    """Fixed non-negative sparse targets over the vocabulary (a teacher's SPLADE vectors)."""
    generator = torch.Generator().manual_seed(11)
    return torch.relu(torch.randn(8, VOCAB, generator=generator)) * 2


SPARSE_CASES = [
    SparseCase("SpladeLoss-MNRL", _splade("SparseMultipleNegativesRankingLoss"), ("anchor", "positive")),
    SparseCase(
        "SpladeLoss-MNRL-options-thresholds",
        _splade(
            "SparseMultipleNegativesRankingLoss",
            {
                "scale": 0.5,
                "directions": ("query_to_doc", "doc_to_query"),
                "partition_mode": "per_direction",
                "hardness_mode": "hard_negatives",
                "hardness_strength": 0.2,
            },
            document_regularizer_threshold=DOCUMENT_THRESHOLD,
            query_regularizer_threshold=QUERY_THRESHOLD,
        ),
        ("anchor", "positive", "negative", "negative_2"),
    ),
    SparseCase(
        "SpladeLoss-inference-free",
        _splade("SparseMultipleNegativesRankingLoss", query_regularizer_weight=None),
        ("anchor", "positive", "negative"),
    ),
    SparseCase("SpladeLoss-custom-regularizers", _custom_regularizers, ("anchor", "positive", "negative")),
    SparseCase(
        "SpladeLoss-MarginMSE",
        _splade("SparseMarginMSELoss"),
        ("anchor", "positive", "negative"),
        lambda: teacher_margins() * 20,
    ),
    SparseCase(
        "SpladeLoss-MarginMSE-two-negatives",
        _splade("SparseMarginMSELoss"),
        ("anchor", "positive", "negative", "negative_2"),
        lambda: teacher_scores(8, 3) * 10,
    ),
    SparseCase(
        "SpladeLoss-DistillKLDiv",
        _splade("SparseDistillKLDivLoss"),
        ("anchor", "positive", "negative"),
        lambda: teacher_scores(8, 2),
    ),
    SparseCase(
        "SpladeLoss-DistillKLDiv-temperatures",
        _splade("SparseDistillKLDivLoss", {"student_temperature": 5.0, "teacher_temperature": 0.5}),
        ("anchor", "positive", "negative", "negative_2"),
        lambda: teacher_scores(8, 3),
    ),
    SparseCase(
        "SpladeLoss-CosineSimilarity-documents-only",
        _splade("SparseCosineSimilarityLoss", use_document_regularizer_only=True),
        ("anchor", "positive"),
        lambda: SCORES,
    ),
    SparseCase(
        "SpladeLoss-CoSENT-documents-only",
        _splade("SparseCoSENTLoss", use_document_regularizer_only=True),
        ("anchor", "positive"),
        lambda: SCORES * 5,
    ),
    SparseCase("SpladeLoss-AnglE", _splade("SparseAnglELoss"), ("anchor", "positive"), lambda: SCORES),
    SparseCase(
        "SpladeLoss-Triplet",
        _splade("SparseTripletLoss", {"triplet_margin": 50.0}),
        ("anchor", "positive", "negative"),
    ),
    SparseCase("SparseMSELoss-alone", lambda ns, m: ns.SparseMSELoss(m), ("anchor",), _vocabulary_targets),
    SparseCase(
        "CachedSpladeLoss-MNRL",
        lambda ns, m: ns.CachedSpladeLoss(
            m,
            ns.SparseMultipleNegativesRankingLoss(m),
            document_regularizer_weight=0.5,
            query_regularizer_weight=0.3,
            mini_batch_size=3,
        ),
        ("anchor", "positive", "negative"),
    ),
    SparseCase(
        "CachedSpladeLoss-MarginMSE-token-budget",
        lambda ns, m: ns.CachedSpladeLoss(
            m,
            ns.SparseMarginMSELoss(m),
            document_regularizer_weight=0.5,
            query_regularizer_weight=0.3,
            document_regularizer_threshold=DOCUMENT_THRESHOLD,
            mini_batch_num_tokens=40,
        ),
        ("anchor", "positive", "negative"),
        lambda: teacher_margins() * 20,
    ),
]


def _run(loss: Any, model: Any, case: SparseCase) -> dict[str, float]:
    """The loss's named terms on the case's batch, after back-propagating their sum into ``model``."""
    model.zero_grad(set_to_none=True)
    labels = case.labels()
    value = loss([model.tokenize(COLUMNS[c]) for c in case.columns], labels)
    terms = value if isinstance(value, dict) else {"loss": value}
    torch.stack(list(terms.values())).sum().backward()
    return {name: term.item() for name, term in terms.items()}


@pytest.mark.parametrize("case", SPARSE_CASES, ids=lambda c: c.id)
def test_sparse_loss_matches_reference(splade_pair, case: SparseCase):
    """The same named terms (1e-5) and the same gradients on every encoder parameter."""
    ours, ref = splade_pair
    ours_terms = _run(case.build(losses, ours), ours, case)
    ref_terms = _run(case.build(ref_losses, ref), ref, case)
    assert list(ours_terms) == list(ref_terms)
    assert ours_terms == pytest.approx(ref_terms, abs=TOLERANCE, rel=TOLERANCE)
    assert all(value != 0 for value in ours_terms.values()), ours_terms  # every term is exercised
    _assert_same_grads(_grads(ours), _grads(ref))


def test_cached_splade_loss_equals_splade_loss(splade_pair):
    """Gradient caching changes memory, not the result: same terms and gradients as SpladeLoss."""
    ours, _ = splade_pair
    plain = SparseCase(
        "plain", _splade("SparseMultipleNegativesRankingLoss"), ("anchor", "positive", "negative")
    )
    cached = SparseCase(
        "cached",
        lambda ns, m: ns.CachedSpladeLoss(
            m,
            ns.SparseMultipleNegativesRankingLoss(m),
            document_regularizer_weight=0.5,
            query_regularizer_weight=0.3,
            mini_batch_num_tokens=25,
        ),
        plain.columns,
    )
    plain_terms = _run(plain.build(losses, ours), ours, plain)
    plain_grads = _grads(ours)
    cached_loss = cached.build(losses, ours)
    cached_terms = _run(cached_loss, ours, cached)
    assert cached_terms == pytest.approx(plain_terms, abs=TOLERANCE, rel=TOLERANCE)
    _assert_same_grads(_grads(ours), plain_grads)
    anchors = ours.tokenize(COLUMNS["anchor"])
    lengths = anchors["attention_mask"].sum(dim=1).tolist()
    ranges = cached_loss.gradient_cache._ranges(anchors)
    assert [start for start, _ in ranges[1:]] == [end for _, end in ranges[:-1]] and ranges[-1][1] == 8
    for start, end in ranges:  # packed up to 25 real tokens, and as full as the next row allows
        assert sum(lengths[start:end]) <= 25 or end == start + 1
        assert end == 8 or sum(lengths[start : end + 1]) > 25
    assert len(ranges) > 2
    with torch.no_grad():  # evaluation: no graph, the same value
        terms = cached_loss([ours.tokenize(COLUMNS[c]) for c in plain.columns])
    assert sum(t.item() for t in terms.values()) == pytest.approx(sum(plain_terms.values()), rel=1e-5)


def test_sparse_mse_inside_splade_loss_is_the_standalone_loss_plus_regularizers(splade_pair):
    """SparseMSELoss compares every column with the label embeddings, alone or inside SpladeLoss.

    The reference's SpladeLoss hands the label tensor to the inner loss as if it were a list of per-column
    targets, so inside SpladeLoss it compares column i with row i of the labels; the standalone reference
    loss is the one to agree with.
    """
    ours, ref = splade_pair
    case = SparseCase("SparseMSE-2-columns", lambda ns, m: ns.SparseMSELoss(m), ("anchor", "positive"))
    features = [ours.tokenize(COLUMNS[c]) for c in case.columns]
    targets = _vocabulary_targets()
    alone = ref_losses.SparseMSELoss(ref)(features, targets).item()
    terms = _splade("SparseMSELoss")(losses, ours)(features, targets)
    assert terms["base_loss"].item() == pytest.approx(alone, rel=1e-5)
    assert set(terms) == {"base_loss", "document_regularizer_loss", "query_regularizer_loss"}


def test_flops_regularizer_and_configs_match_reference(splade_pair):
    ours, ref = splade_pair
    embeddings = torch.relu(torch.randn(6, VOCAB, generator=torch.Generator().manual_seed(2)))
    embeddings[0, :120] = 0  # a sparse row, which the threshold leaves out
    for threshold in (None, 100):
        a = losses.FlopsLoss(ours, threshold=threshold).compute_loss_from_embeddings(embeddings)
        b = ref_losses.FlopsLoss(ref, threshold=threshold).compute_loss_from_embeddings(embeddings)
        assert a.item() == pytest.approx(b.item(), rel=1e-6)
    build = _custom_regularizers
    ours_config, ref_config = build(losses, ours).get_config_dict(), build(ref_losses, ref).get_config_dict()
    assert ours_config.pop("loss") == type(ref_config.pop("loss")).__name__
    assert ours_config == ref_config
    settings = {"document_regularizer_threshold": 5, "mini_batch_size": 4}
    cached = losses.CachedSpladeLoss(
        ours, losses.SparseMultipleNegativesRankingLoss(ours), 0.1, 0.2, **settings
    )
    ref_cached = ref_losses.CachedSpladeLoss(
        ref, ref_losses.SparseMultipleNegativesRankingLoss(ref), 0.1, 0.2, **settings
    )
    ours_config, ref_config = cached.get_config_dict(), ref_cached.get_config_dict()
    assert ours_config.pop("loss") == type(ref_config.pop("loss")).__name__
    assert ours_config == ref_config


DEFAULTS = {
    "SparseMultipleNegativesRankingLoss": ("scale", "similarity_fct", "gather_across_devices"),
    "SparseDistillKLDivLoss": ("similarity_fct", "temperature", "student_temperature", "teacher_temperature"),
    "SparseMarginMSELoss": ("similarity_fct",),
    "SparseTripletLoss": ("distance_metric", "triplet_margin"),
    "SparseCoSENTLoss": ("scale", "similarity_fct"),
    "SparseAnglELoss": ("scale", "similarity_fct"),
}


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_defaults_follow_the_reference(splade_pair, name):
    """Same defaults: dot product and scale 1 for ranking, KL temperature 2, ..."""
    ours, ref = splade_pair
    a, b = getattr(losses, name)(ours), getattr(ref_losses, name)(ref)
    for attribute in DEFAULTS[name]:
        mine, theirs = getattr(a, attribute), getattr(b, attribute)
        if callable(mine):  # the same function: the same values on the same vectors
            x, y = torch.rand(2, 4, 12, generator=torch.Generator().manual_seed(4))
            torch.testing.assert_close(mine(x, y), theirs(x, y), msg=attribute)
        else:
            assert mine == pytest.approx(theirs), attribute


@pytest.mark.parametrize("name", ["SparseCosineSimilarityLoss", "SparseCoSENTLoss", "SparseAnglELoss"])
def test_cosine_losses_set_the_models_similarity_like_the_reference(splade_pair, name):
    ours, ref = splade_pair
    ours.similarity_fn_name = ref.similarity_fn_name = "dot"
    getattr(losses, name)(ours)
    getattr(ref_losses, name)(ref)
    assert ours.similarity_fn_name == ref.similarity_fn_name == "cosine"
    ours.similarity_fn_name = ref.similarity_fn_name = "dot"


# --- wrong use ----------------------------------------------------------------------------------------

INNER_ONLY = [
    "SparseMultipleNegativesRankingLoss",
    "SparseMarginMSELoss",
    "SparseDistillKLDivLoss",
    "SparseCosineSimilarityLoss",
    "SparseCoSENTLoss",
    "SparseAnglELoss",
    "SparseTripletLoss",
]


@pytest.mark.parametrize("name", INNER_ONLY)
def test_inner_losses_refuse_to_run_alone_like_the_reference(splade_pair, name):
    ours, ref = splade_pair
    features = [ours.tokenize(COLUMNS[c]) for c in ("anchor", "positive", "negative")]
    with pytest.raises(AttributeError, match="alone"):
        getattr(ref_losses, name)(ref)(features, SCORES)
    with pytest.raises(AttributeError, match=rf"SpladeLoss\(model, loss={name}\(model\).*CSRLoss"):
        getattr(losses, name)(ours)(features, SCORES)


def test_regularizers_and_wrappers_explain_wrong_use(splade_pair, caplog):
    ours, _ = splade_pair
    features = [ours.tokenize(COLUMNS["anchor"]), ours.tokenize(COLUMNS["positive"])]
    with pytest.raises(NotImplementedError, match="SpladeLoss as document_regularizer"):
        losses.FlopsLoss(ours)(features, None)
    with pytest.raises(NotImplementedError, match="part of CSRLoss"):
        losses.CSRReconstructionLoss(ours)(features, None)
    with pytest.raises(ValueError, match="compute_loss_from_embeddings"):
        losses.SpladeLoss(ours, torch.nn.MSELoss(), document_regularizer_weight=1e-3)
    with pytest.raises(ValueError, match="compute_loss_from_embeddings"):
        ref_losses.SpladeLoss(ours, torch.nn.MSELoss(), document_regularizer_weight=1e-3)
    inner = losses.SparseMultipleNegativesRankingLoss(ours)
    with pytest.raises(InvalidInputError, match="use_document_regularizer_only=True"):
        losses.SpladeLoss(ours, inner, 1e-3, 1e-3)(features[:1])
    with pytest.raises(InvalidInputError, match="SparseAutoEncoder"):
        losses.CSRLoss(ours)(features)
    with pytest.raises(ValueError, match="mini_batch_num_tokens"):
        losses.CachedSpladeLoss(ours, inner, 1e-3, 1e-3, mini_batch_num_tokens=0)

    with caplog.at_level(logging.WARNING):
        caplog.clear()
        losses.SpladeLoss(ours, inner, document_regularizer_weight=1e-3)
        assert "query_regularizer_weight is None" in caplog.text
        caplog.clear()
        both = losses.SpladeLoss(ours, inner, 1e-3, 2e-3, use_document_regularizer_only=True)
        assert "is ignored" in caplog.text
    assert both.query_regularizer_weight is None and both.query_regularizer is None
    terms = both(features)
    assert set(terms) == {"base_loss", "document_regularizer_loss"}


# --- CSR: a dense encoder with a SparseAutoEncoder head ---------------------------------------------------


@pytest.fixture(scope="module")
def csr_pair(tiny_hf_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[SparseEncoder, Any]:
    """One tiny CSR model (BERT, mean pooling, top-8 of 128 latents) saved by us, loaded by both."""
    from sentencekit.modules import Pooling, SparseAutoEncoder, Transformer

    autoencoder = SparseAutoEncoder(input_dim=32, hidden_dim=128, k=8, k_aux=16, dead_threshold=30)
    model = SparseEncoder(
        modules=[Transformer(str(tiny_hf_folder)), Pooling(32, "mean"), autoencoder], device="cpu"
    )
    folder = tmp_path_factory.mktemp("csr")
    model.save(str(folder))
    return (
        without_dropout(SparseEncoder(str(folder), device="cpu")),
        without_dropout(st.SparseEncoder(str(folder), device="cpu")),
    )


def _age_latents(model: Any) -> None:
    """The same training history in both models: about half the latents dead (unused for > 30 steps)."""
    ages = torch.randint(0, 60, (128,), generator=torch.Generator().manual_seed(1))
    model[-1].stats_last_nonzero.copy_(ages)


CSR_CASES = [
    SparseCase("CSRLoss-default-MNRL", lambda ns, m: ns.CSRLoss(m), ("anchor", "positive")),
    SparseCase(
        "CSRLoss-MarginMSE-beta-gamma",
        lambda ns, m: ns.CSRLoss(m, loss=ns.SparseMarginMSELoss(m), beta=0.5, gamma=2.0),
        ("anchor", "positive", "negative"),
        lambda: teacher_margins() * 0.1,
    ),
    SparseCase(
        "CSRLoss-CoSENT",
        lambda ns, m: ns.CSRLoss(m, loss=ns.SparseCoSENTLoss(m)),
        ("anchor", "positive"),
        lambda: SCORES,
    ),
]


@pytest.mark.parametrize("case", CSR_CASES, ids=lambda c: c.id)
def test_csr_loss_matches_reference(csr_pair, case: SparseCase):
    """The reconstruction terms and the ranking term, and the gradients (autoencoder included)."""
    ours, ref = csr_pair
    _age_latents(ours)
    ours_terms = _run(case.build(losses, ours), ours, case)
    _age_latents(ref)
    ref_terms = _run(case.build(ref_losses, ref), ref, case)
    assert list(ours_terms) == list(ref_terms)
    assert ours_terms == pytest.approx(ref_terms, abs=TOLERANCE, rel=TOLERANCE)
    assert all(value != 0 for value in ours_terms.values()), ours_terms
    ours_grads, ref_grads = _grads(ours), _grads(ref)
    assert {"2.pre_bias", "2.encoder.weight", "2.latent_bias"} <= set(ours_grads)  # the autoencoder learns
    _assert_same_grads(ours_grads, ref_grads)
    torch.testing.assert_close(ours[-1].stats_last_nonzero, ref[-1].stats_last_nonzero)


def test_csr_reconstruction_terms_match_reference(csr_pair):
    ours, ref = csr_pair
    _age_latents(ours)
    with torch.no_grad():
        outputs = [ours(ours.tokenize(COLUMNS[c])) for c in ("anchor", "positive")]
    a = losses.CSRReconstructionLoss(ours, beta=0.3).compute_loss_from_embeddings(outputs)
    b = ref_losses.CSRReconstructionLoss(ref, beta=0.3).compute_loss_from_embeddings(outputs)
    assert {k: v.item() for k, v in a.items()} == pytest.approx({k: v.item() for k, v in b.items()}, rel=1e-6)
    assert (
        losses.CSRLoss(ours, beta=0.2, gamma=3.0).get_config_dict()
        == ref_losses.CSRLoss(ref, beta=0.2, gamma=3.0).get_config_dict()
    )
