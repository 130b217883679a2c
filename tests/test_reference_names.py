"""The reference's public names under sentencekit: every one is there, or listed here as not provided.

The lists below are what docs/migrating.md ("What sentencekit does not provide") describes. A name added to
sentencekit must leave its list (the test fails while it is listed), and a name the reference adds shows up
as a failure until it is provided or listed.
"""

from __future__ import annotations

import importlib
import logging

import numpy as np
import pytest
import torch

st = pytest.importorskip("sentence_transformers")

# the reference 6.x moved some modules (training_args, trainer ...) and warns on the old paths we compare
pytestmark = pytest.mark.filterwarnings("ignore:Importing from 'sentence_transformers:DeprecationWarning")

# reference module (relative to sentence_transformers / sentencekit) -> its public names sentencekit lacks
NOT_PROVIDED: dict[str, set[str]] = {
    "": {
        # multi-vector encoders: another model family, with its trainer and model card
        "MultiVectorEncoder",
        "MultiVectorEncoderModelCardData",
        "MultiVectorEncoderTrainer",
        "MultiVectorEncoderTrainingArguments",
        # sampler classes (the trainers take the sampler names, see BatchSamplers)
        "DefaultBatchSampler",
        "MultiDatasetDefaultBatchSampler",
        # the pre-v3 dataset wrappers of model.fit
        "SentencesDataset",
        "ParallelSentencesDataset",
        "export_static_quantized_openvino_model",
        "resolve_ids",
    },
    "util": {
        # multi-vector and sparse helpers
        "maxsim",
        "maxsim_pairwise",
        "mean_maxsim",
        "mean_maxsim_pairwise",
        "cat_padded_token_embeddings",
        "stack_padded_token_embeddings",
        "repad_flattened_features",
        "append_to_last_row",
        "compute_count_vector",
        "to_scipy_coo",
        "resolve_ids",
        # distributed training
        "all_gather",
        "all_gather_padded",
        "all_gather_with_grad",
        "get_rank",
        "get_world_size",
        "is_dist_initialized",
        # the reference's own plumbing: Hub downloads, dependency checks, logging set-up
        "ORIGINAL_TRANSFORMER_MODELS",
        "check_package_availability",
        "check_teacher_targets",
        "check_version_requirements",
        "disable_datasets_caching",
        "disable_logging",
        "disabled_tqdm",
        "http_get",
        "import_module_class",
        "information_retrieval",
        "install_logger",
        "is_accelerate_available",
        "is_datasets_available",
        "is_sentence_transformer_model",
        "is_training_available",
        "load_dir_path",
        "load_file_path",
        "save_to_hub_args_decorator",
        "similarity_fct_name",
    },
    "losses": {"DenoisingAutoEncoderLoss"},
    "evaluation": {"NanoBEIREvaluator"},
    "models": {
        "BoW",
        "CLIPModel",
        "CNN",
        "Dropout",
        "LSTM",
        "WordEmbeddings",
        "WordWeights",
    },
    # sentencekit's readers return the evaluators' inputs (read_sts_csv, read_beir ...), not reader classes
    "readers": {
        "LabelSentenceReader",
        "NLIDataReader",
        "PairedFilesReader",
        "STSBenchmarkDataReader",
        "STSDataReader",
        "TripletReader",
    },
    "training_args": set(),
    "cross_encoder": {"CrossEncoderDataCollator"},
    "sparse_encoder": {"SparseEncoderDataCollator"},
    "sparse_encoder.losses": set(),
    # NanoBEIR downloads its datasets from the Hub (and has no dense counterpart here either)
    "sparse_encoder.evaluation": {"SparseNanoBEIREvaluator"},
    "sparse_encoder.modules": set(),
    "cross_encoder.losses": set(),
    "cross_encoder.evaluation": {
        # the deprecated pre-v4 names, whose arguments differ from the current evaluators'
        "CEBinaryAccuracyEvaluator",
        "CEBinaryClassificationEvaluator",
        "CECorrelationEvaluator",
        "CEF1Evaluator",
        "CERerankingEvaluator",
        "CESoftmaxAccuracyEvaluator",
        "CrossEncoderNanoBEIREvaluator",
    },
}


def _module(package: str, sub: str):
    return importlib.import_module(f"{package}.{sub}" if sub else package)


def _public(module) -> set[str]:
    return {name for name in getattr(module, "__all__", ()) if not name.startswith("_")}


@pytest.mark.parametrize("sub", sorted(NOT_PROVIDED), ids=lambda s: s or "top-level")
def test_every_reference_name_is_provided_or_listed(sub):
    reference, ours = _module("sentence_transformers", sub), _module("sentencekit", sub)
    names = _public(reference)
    assert names, f"sentence_transformers.{sub} lists no public names: the comparison would be empty"
    missing = sorted(n for n in names - NOT_PROVIDED[sub] if not hasattr(ours, n))
    assert not missing, f"sentencekit.{sub} lacks {missing}: provide them or list them as not provided"
    now_provided = sorted(n for n in NOT_PROVIDED[sub] if hasattr(ours, n))
    assert not now_provided, f"sentencekit.{sub} provides {now_provided}: take them off the list"


@pytest.mark.parametrize(
    ("sub", "names"),
    [
        ("trainer", ["SentenceTransformerTrainer"]),
        ("model_card", ["SentenceTransformerModelCardData"]),
        ("cross_encoder.model_card", ["CrossEncoderModelCardData"]),
        ("similarity_functions", ["SimilarityFunction", "cos_sim", "pairwise_cos_sim", "pytorch_cos_sim"]),
        ("cross_encoder.trainer", ["CrossEncoderTrainer"]),
        ("cross_encoder.training_args", ["CrossEncoderTrainingArguments"]),
    ],
)
def test_reference_module_paths_without_all(sub, names):
    reference, ours = _module("sentence_transformers", sub), _module("sentencekit", sub)
    for name in names:
        assert hasattr(reference, name)
        assert getattr(ours, name) is not None


def test_the_same_class_under_each_path():
    import sentencekit
    from sentencekit.cross_encoder import CrossEncoderTrainer, evaluation
    from sentencekit.evaluation import CrossEncoderRerankingEvaluator, SentenceEvaluator
    from sentencekit.training import trainer

    assert sentencekit.CrossEncoderTrainer is CrossEncoderTrainer is trainer.CrossEncoderTrainer
    assert evaluation.CrossEncoderRerankingEvaluator is CrossEncoderRerankingEvaluator
    assert sentencekit.evaluation.BaseEvaluator is SentenceEvaluator
    assert sentencekit.mine_hard_negatives is sentencekit.util.mine_hard_negatives


def test_sampler_names_are_the_references_and_reach_the_arguments(tmp_path):
    from sentence_transformers.training_args import BatchSamplers as RefSamplers
    from sentence_transformers.training_args import MultiDatasetBatchSamplers as RefMulti

    from sentencekit.training_args import (
        BatchSamplers,
        MultiDatasetBatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    assert {m.name: m.value for m in BatchSamplers} == {m.name: m.value for m in RefSamplers}
    assert {m.name: m.value for m in MultiDatasetBatchSamplers} == {m.name: m.value for m in RefMulti}
    args = SentenceTransformerTrainingArguments(
        str(tmp_path),
        batch_sampler=BatchSamplers.NO_DUPLICATES_HASHED,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN,
    )
    # plain strings, so the model card and any JSON dump show the values
    assert type(args.batch_sampler) is str and args.batch_sampler == "no_duplicates"
    assert type(args.multi_dataset_batch_sampler) is str and args.multi_dataset_batch_sampler == "round_robin"
    grouped = SentenceTransformerTrainingArguments(str(tmp_path), batch_sampler=BatchSamplers.GROUP_BY_LABEL)
    assert grouped.batch_sampler == "group_by_label"
    with pytest.raises(ValueError, match="batch_sampler must be one of"):
        SentenceTransformerTrainingArguments(str(tmp_path), batch_sampler="by_length")


def test_util_helpers_match_the_reference():
    from sentencekit import util

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 16)).astype(np.float32), rng.standard_normal((3, 16)).astype(np.float32)
    torch.testing.assert_close(util.pytorch_cos_sim(a, b), st.util.pytorch_cos_sim(a, b))
    for embeddings in (a, torch.from_numpy(a)):
        ours, theirs = util.truncate_embeddings(embeddings, 8), st.util.truncate_embeddings(embeddings, 8)
        assert type(ours) is type(theirs) and ours.shape == (4, 8)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
        assert util.truncate_embeddings(embeddings, None) is embeddings
    with pytest.raises(ValueError, match="truncate_dim must be a positive integer"):
        util.truncate_embeddings(a, 0)
    assert util.get_device_name() == st.util.get_device_name()
    for obj in (util.LoggingHandler(), "text", util.LoggingHandler):
        assert util.fullname(obj) == st.util.fullname(obj)
    assert util.import_from_string("sentencekit.util.cos_sim") is util.cos_sim
    with pytest.raises(ImportError, match="has no attribute 'nope'"):
        util.import_from_string("sentencekit.util.nope")
    with pytest.raises(ImportError, match="not a dotted path"):
        util.import_from_string("cos_sim")
    for embeddings in (a, torch.from_numpy(a)):
        for k in (1, 5, 16, 40):
            ours, theirs = (
                util.select_max_active_dims(embeddings, k),
                st.util.select_max_active_dims(embeddings, k),
            )
            torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
        assert util.select_max_active_dims(embeddings, None) is embeddings
    with pytest.raises(ValueError, match="max_active_dims must be a positive integer"):
        util.select_max_active_dims(a, 0)


def test_batch_to_device_moves_tensors_and_keeps_the_rest():
    from sentencekit.util import batch_to_device

    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "text": ["a", "b"]}
    moved = batch_to_device(batch, "meta")
    assert moved["input_ids"].device.type == "meta" and moved["input_ids"].shape == (2, 3)
    assert moved["text"] is batch["text"]
    assert batch["input_ids"].device.type == "cpu"  # the caller's batch is left as it was


def test_logging_handler_writes_each_record(capsys):
    from sentencekit.util import LoggingHandler

    logger = logging.getLogger("sentencekit.test_reference_names")
    handler = LoggingHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("encoded %d texts", 3)
    finally:
        logger.removeHandler(handler)
    assert capsys.readouterr().out == "INFO encoded 3 texts\n"
