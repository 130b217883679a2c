"""model_card_data: what the user says about a model reaches the README.md that save() writes."""

from __future__ import annotations

import pytest

from sentencekit import CrossEncoder, SentenceTransformerTrainer
from sentencekit.losses import CoSENTLoss
from sentencekit.model_card import CrossEncoderModelCardData, SentenceTransformerModelCardData
from training_support import tiny_bi_model, toy_pairs, trainer_args


def _front_matter(card: str) -> dict:
    yaml = pytest.importorskip("yaml")
    head, _, _ = card.removeprefix("---\n").partition("\n---\n")
    return yaml.safe_load(head)


@pytest.fixture
def card_data() -> SentenceTransformerModelCardData:
    return SentenceTransformerModelCardData(
        language="en",
        license="apache-2.0",
        model_name="Tiny BERT for toy pairs",
        model_id="acme/tiny-toy",
        train_datasets=[{"id": "sentence-transformers/stsb", "name": "STSb"}],
        eval_datasets=[{"name": "toy dev"}],
        task_name="matching toy sentences",
        tags=["toy"],
    )


def test_card_data_reaches_the_card_of_an_untrained_model(tiny_hf_folder, card_data, tmp_path):
    model = tiny_bi_model(tiny_hf_folder)
    model.model_card_data = card_data
    model.save(tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["language"] == ["en"] and meta["license"] == "apache-2.0"
    assert meta["datasets"] == ["sentence-transformers/stsb"]
    assert meta["tags"] == ["sentencekit", "sentence-transformers", "sentence-similarity", "toy"]
    assert meta["pipeline_tag"] == "sentence-similarity"
    assert "# Tiny BERT for toy pairs\n" in card
    assert "for matching toy sentences." in card and '`SentenceTransformer("acme/tiny-toy")`' in card
    assert "Evaluation datasets: toy dev." in card
    assert "## Training" not in card  # nothing was trained here


def test_the_constructor_takes_card_data(tiny_hf_folder, card_data):
    from sentencekit import SentenceTransformer

    model = SentenceTransformer(str(tiny_hf_folder), device="cpu", backend="torch", model_card_data=card_data)
    assert model.model_card_data is card_data
    plain = SentenceTransformer(str(tiny_hf_folder), device="cpu", backend="torch")
    assert plain.model_card_data == SentenceTransformerModelCardData()


def test_no_card_without_training_or_card_data(tiny_hf_folder, tmp_path):
    tiny_bi_model(tiny_hf_folder).save(tmp_path / "plain")
    assert not (tmp_path / "plain" / "README.md").exists()


def test_a_trained_model_has_both_the_record_and_the_card_data(tiny_hf_folder, card_data, tmp_path):
    model = tiny_bi_model(tiny_hf_folder)
    model.model_card_data = card_data
    args = trainer_args(tmp_path / "run", max_steps=2)
    SentenceTransformerTrainer(model, args, toy_pairs(8), loss=CoSENTLoss(model)).train()
    model.save(tmp_path / "trained")
    card = (tmp_path / "trained" / "README.md").read_text()
    assert "# Tiny BERT for toy pairs\n" in card and "CoSENTLoss" in card and "2 optimizer steps" in card
    assert _front_matter(card)["license"] == "apache-2.0"


def test_cross_encoder_card(tiny_hf_folder, tmp_path):
    data = CrossEncoderModelCardData(language=["en", "de"], model_name="Tiny reranker")
    model = CrossEncoder(tiny_hf_folder, num_labels=1, device="cpu", backend="torch", model_card_data=data)
    model.save(tmp_path / "ce")
    card = (tmp_path / "ce" / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["language"] == ["en", "de"] and meta["pipeline_tag"] == "text-ranking"
    assert meta["tags"] == ["sentencekit", "sentence-transformers", "cross-encoder", "reranker"]
    assert "# Tiny reranker\n" in card and "`CrossEncoder(path)`" in card


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"language": ["en", 3]}, "language must be a string or a list of non-empty strings"),
        ({"license": 2}, "license must be a string or None"),
        ({"train_datasets": ["sentence-transformers/stsb"]}, "train_datasets must be a list of dicts"),
    ],
)
def test_bad_card_data_is_refused(kwargs, message):
    with pytest.raises(TypeError, match=message):
        SentenceTransformerModelCardData(**kwargs)


def test_the_wrong_card_class_names_the_right_one(tiny_hf_folder):
    with pytest.raises(TypeError, match="must be a CrossEncoderModelCardData"):
        CrossEncoder(
            tiny_hf_folder,
            num_labels=1,
            device="cpu",
            backend="torch",
            model_card_data=SentenceTransformerModelCardData(),
        )
    reference = pytest.importorskip("sentence_transformers")
    from sentencekit import SentenceTransformer

    with pytest.raises(
        TypeError, match=r"from sentencekit\.model_card import SentenceTransformerModelCardData"
    ):
        SentenceTransformer(
            modules=[], device="cpu", model_card_data=reference.SentenceTransformerModelCardData()
        )
