"""The gauntlet: third-party architectures from transformers, built from configs with random weights.

Each case is tiny (hidden 32, 1-2 layers, small images and sequences) and seeded, so the whole set
exports, checks and builds on ONNX Runtime in minutes on 2 cores. A case names its dynamic dims and
their ranges (``dims``: min, opt, max) and makes its inputs at any values of those dims; the
gauntlet runs every engine at min, at a non-round middle value (``mid``) and at max.

NOTE: the wrappers return plain tuples of tensors (what a user writes to serve a model) and take
the inputs as named tensors; their lines are the "user's source" that ``check`` must name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

VOCAB = 99


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], nn.Module]
    inputs: Callable[[dict[str, int]], dict[str, torch.Tensor]]
    dynamic_axes: dict[str, dict[int, str]]
    dims: dict[str, tuple[int, int, int]]  # dim name -> (min, opt, max)
    mid: dict[str, int]  # a non-round value inside each range
    kind: str = "text"
    # steps known to fail, step -> cause (documented in docs/gauntlet.md); the test expects the failure
    known: dict[str, str] = field(default_factory=dict)

    def at(self, which: str) -> dict[str, int]:
        if which == "mid":
            return dict(self.mid)
        k = {"min": 0, "opt": 1, "max": 2}[which]
        return {d: r[k] for d, r in self.dims.items()}

    def example(self, which: str = "opt", seed: int = 0) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return self.inputs(self.at(which))


def _seeded(make: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def wrapped() -> nn.Module:
        torch.manual_seed(0)
        return make().eval()

    return wrapped


class TextEncoder(nn.Module):
    """``input_ids`` and ``attention_mask`` in, the last hidden state out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class Pixels(nn.Module):
    """``pixel_values`` in, the model's first output out (hidden state, logits or feature map)."""

    def __init__(self, model: nn.Module, attr: str) -> None:
        super().__init__()
        self.model = model
        self.attr = attr

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(pixel_values=pixel_values), self.attr)


class Audio(nn.Module):
    def __init__(self, model: nn.Module, arg: str) -> None:
        super().__init__()
        self.model = model
        self.arg = arg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(**{self.arg: x}).last_hidden_state


class Detr(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(pixel_values=pixel_values)
        return out.logits, out.pred_boxes


def _text(d: dict[str, int]) -> dict[str, torch.Tensor]:
    b, s = d["batch"], d["seq"]
    # NOTE: right-padded masks (as a tokenizer gives), never a fully masked row: rows of a fully
    # masked attention have no defined answer (eager and an engine may fill them differently).
    mask = torch.ones(b, s, dtype=torch.int64)
    for i in range(1, b):
        mask[i, s - min(i, s - 1):] = 0
    return {"input_ids": torch.randint(1, VOCAB, (b, s)), "attention_mask": mask}


def _image(channels: int = 3) -> Callable[[dict[str, int]], dict[str, torch.Tensor]]:
    def make(d: dict[str, int]) -> dict[str, torch.Tensor]:
        return {"pixel_values": torch.randn(d.get("batch", 1), channels, d.get("height", d.get("size", 0)),
                                            d.get("width", d.get("size", 0)))}
    return make


_TEXT_AXES = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
_TEXT_DIMS = {"batch": (1, 2, 3), "seq": (4, 16, 32)}
_TEXT_MID = {"batch": 2, "seq": 13}
_HW_AXES = {"pixel_values": {0: "batch", 2: "height", 3: "width"}}
_BATCH_AXES = {"pixel_values": {0: "batch"}}
_SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def _bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    return TextEncoder(BertModel(BertConfig(vocab_size=VOCAB, max_position_embeddings=64, **_SMALL)))


def _distilbert() -> nn.Module:
    from transformers import DistilBertConfig, DistilBertModel

    return TextEncoder(DistilBertModel(DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                                        max_position_embeddings=64)))


def _roberta() -> nn.Module:
    from transformers import RobertaConfig, RobertaModel

    return TextEncoder(RobertaModel(RobertaConfig(vocab_size=VOCAB, max_position_embeddings=72, pad_token_id=0, **_SMALL)))


def _albert() -> nn.Module:
    from transformers import AlbertConfig, AlbertModel

    return TextEncoder(AlbertModel(AlbertConfig(vocab_size=VOCAB, embedding_size=16, max_position_embeddings=64, **_SMALL)))


def _electra() -> nn.Module:
    from transformers import ElectraConfig, ElectraModel

    return TextEncoder(ElectraModel(ElectraConfig(vocab_size=VOCAB, embedding_size=16, max_position_embeddings=64, **_SMALL)))


def _t5() -> nn.Module:
    from transformers import T5Config, T5EncoderModel

    return TextEncoder(T5EncoderModel(T5Config(vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2)))


def _bart() -> nn.Module:
    from transformers import BartConfig, BartModel

    cfg = BartConfig(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64)
    return TextEncoder(BartModel(cfg).get_encoder())


def _gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2Model

    return TextEncoder(GPT2Model(GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64, use_cache=False,
                                           bos_token_id=0, eos_token_id=0)))


def _llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaModel

    return TextEncoder(LlamaModel(LlamaConfig(vocab_size=VOCAB, num_key_value_heads=1, max_position_embeddings=64,
                                              use_cache=False, **_SMALL)))


def _mistral() -> nn.Module:
    from transformers import MistralConfig, MistralModel

    return TextEncoder(MistralModel(MistralConfig(vocab_size=VOCAB, num_key_value_heads=1, max_position_embeddings=64,
                                                  sliding_window=None, use_cache=False, **_SMALL)))


def _whisper() -> nn.Module:
    from transformers import WhisperConfig, WhisperModel

    cfg = WhisperConfig(vocab_size=VOCAB, num_mel_bins=8, d_model=32, encoder_layers=2, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_source_positions=16, max_target_positions=16, pad_token_id=0, bos_token_id=1,
                        eos_token_id=2, decoder_start_token_id=1)
    return Audio(WhisperModel(cfg).get_encoder(), "input_features")


def _wav2vec2() -> nn.Module:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(vocab_size=VOCAB, conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, do_stable_layer_norm=False,
                         feat_extract_norm="group", **_SMALL)
    return Audio(Wav2Vec2Model(cfg), "input_values")


def _vit() -> nn.Module:
    from transformers import ViTConfig, ViTModel

    return Pixels(ViTModel(ViTConfig(image_size=32, patch_size=8, add_pooling_layer=False, **_SMALL),
                           add_pooling_layer=False), "last_hidden_state")


def _deit() -> nn.Module:
    from transformers import DeiTConfig, DeiTModel

    return Pixels(DeiTModel(DeiTConfig(image_size=32, patch_size=8, **_SMALL), add_pooling_layer=False), "last_hidden_state")


def _beit() -> nn.Module:
    from transformers import BeitConfig, BeitModel

    cfg = BeitConfig(image_size=32, patch_size=8, use_relative_position_bias=True, **_SMALL)
    return Pixels(BeitModel(cfg, add_pooling_layer=False), "last_hidden_state")


def _swin() -> nn.Module:
    from transformers import SwinConfig, SwinModel

    cfg = SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=4)
    return Pixels(SwinModel(cfg, add_pooling_layer=False), "last_hidden_state")


def _convnext() -> nn.Module:
    from transformers import ConvNextConfig, ConvNextModel

    cfg = ConvNextConfig(num_channels=3, hidden_sizes=[16, 32], depths=[1, 1], num_stages=2, patch_size=4)
    return Pixels(ConvNextModel(cfg), "last_hidden_state")


def _resnet() -> nn.Module:
    from transformers import ResNetConfig, ResNetModel

    cfg = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic")
    return Pixels(ResNetModel(cfg), "last_hidden_state")


def _efficientnet() -> nn.Module:
    from transformers import EfficientNetConfig, EfficientNetModel

    cfg = EfficientNetConfig(image_size=64, width_coefficient=0.25, depth_coefficient=0.25, hidden_dim=320)
    return Pixels(EfficientNetModel(cfg), "last_hidden_state")


def _mobilenet() -> nn.Module:
    from transformers import MobileNetV2Config, MobileNetV2Model

    # NOTE: tf_padding=True (the default) computes TensorFlow's "same" padding from the input size as
    # Python ints, a real pin at sizes of another remainder; PyTorch padding keeps H and W free.
    cfg = MobileNetV2Config(image_size=64, depth_multiplier=0.25, finegrained_output=False, tf_padding=False)
    return Pixels(MobileNetV2Model(cfg, add_pooling_layer=False), "last_hidden_state")


def _segformer() -> nn.Module:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    cfg = SegformerConfig(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[16, 32],
                          patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2],
                          decoder_hidden_size=32, num_labels=3)
    return Pixels(SegformerForSemanticSegmentation(cfg), "logits")


def _detr() -> nn.Module:
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

    backbone = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 32, 32], depths=[1, 1, 1, 1], layer_type="basic",
                            out_features=["stage4"])
    cfg = DetrConfig(use_timm_backbone=False, backbone_config=backbone, use_pretrained_backbone=False, d_model=32,
                     encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                     encoder_ffn_dim=64, decoder_ffn_dim=64, num_queries=5, num_labels=3)
    return Detr(DetrForObjectDetection(cfg))


CASES: list[Case] = [
    Case("bert", _seeded(_bert), _text, _TEXT_AXES, _TEXT_DIMS, _TEXT_MID),
    Case("distilbert", _seeded(_distilbert), _text, _TEXT_AXES, _TEXT_DIMS, _TEXT_MID),
    Case("roberta", _seeded(_roberta), _text, _TEXT_AXES, _TEXT_DIMS, _TEXT_MID),
    Case("albert", _seeded(_albert), _text, _TEXT_AXES, _TEXT_DIMS, _TEXT_MID),
    Case("electra", _seeded(_electra), _text, _TEXT_AXES, _TEXT_DIMS, _TEXT_MID),
    Case("t5_encoder", _seeded(_t5), _text, _TEXT_AXES, _TEXT_DIMS, _TEXT_MID),
    Case("bart_encoder", _seeded(_bart), _text, _TEXT_AXES, _TEXT_DIMS, _TEXT_MID),
    Case("gpt2", _seeded(_gpt2), _text, _TEXT_AXES, _TEXT_DIMS, _TEXT_MID),
    Case("llama", _seeded(_llama), _text, _TEXT_AXES, _TEXT_DIMS, _TEXT_MID),
    Case("mistral", _seeded(_mistral), _text, _TEXT_AXES, _TEXT_DIMS, _TEXT_MID),
    # NOTE: Whisper's encoder requires exactly 2 * max_source_positions frames: only the batch is dynamic.
    Case("whisper_encoder", _seeded(_whisper), lambda d: {"x": torch.randn(d["batch"], 8, 32)}, {"x": {0: "batch"}},
         {"batch": (1, 2, 3)}, {"batch": 2}, kind="audio"),
    Case("wav2vec2", _seeded(_wav2vec2), lambda d: {"x": torch.randn(d["batch"], d["samples"])},
         {"x": {0: "batch", 1: "samples"}}, {"batch": (1, 2, 3), "samples": (400, 800, 1600)},
         {"batch": 2, "samples": 1111}, kind="audio"),
    # NOTE: ViT, DeiT and BEiT learn one position embedding per patch of the configured image size:
    # their H and W are static by design, the batch is dynamic.
    Case("vit", _seeded(_vit), _image(), _BATCH_AXES, {"batch": (1, 2, 3), "size": (32, 32, 32)}, {"batch": 2, "size": 32},
         kind="image"),
    Case("deit", _seeded(_deit), _image(), _BATCH_AXES, {"batch": (1, 2, 3), "size": (32, 32, 32)}, {"batch": 2, "size": 32},
         kind="image"),
    Case("beit", _seeded(_beit), _image(), _BATCH_AXES, {"batch": (1, 2, 3), "size": (32, 32, 32)}, {"batch": 2, "size": 32},
         kind="image"),
    # NOTE: Swin pads to whole patches and windows only under Python branches (`if width %
    # patch_size != 0`, `if was_padded`), with amounts that are wrong at other remainders
    # (4 - w % 4 pads 4 where w % 4 == 0): an export is right only at sizes with the export's
    # remainders. Multiples of 32 (patch 4 x window 4 x merge 2) need no pad at any stage.
    Case("swin", _seeded(_swin), _image(), _HW_AXES, {"batch": (1, 2, 2), "height": (32, 64, 96), "width": (32, 64, 96)},
         {"batch": 1, "height": 64, "width": 96}, kind="image"),
    Case("convnext", _seeded(_convnext), _image(), _HW_AXES,
         {"batch": (1, 2, 2), "height": (32, 64, 128), "width": (32, 64, 128)}, {"batch": 2, "height": 72, "width": 104},
         kind="image"),
    Case("resnet", _seeded(_resnet), _image(), _HW_AXES,
         {"batch": (1, 2, 2), "height": (32, 64, 128), "width": (32, 64, 128)}, {"batch": 2, "height": 71, "width": 97},
         kind="image"),
    Case("efficientnet", _seeded(_efficientnet), _image(), _HW_AXES,
         {"batch": (1, 2, 2), "height": (32, 64, 128), "width": (32, 64, 128)}, {"batch": 2, "height": 72, "width": 96},
         kind="image"),
    Case("mobilenet_v2", _seeded(_mobilenet), _image(), _HW_AXES,
         {"batch": (1, 2, 2), "height": (32, 64, 128), "width": (32, 64, 128)}, {"batch": 2, "height": 72, "width": 96},
         kind="image"),
    Case("segformer", _seeded(_segformer), _image(), _HW_AXES,
         {"batch": (1, 2, 2), "height": (32, 64, 128), "width": (32, 64, 128)}, {"batch": 2, "height": 72, "width": 96},
         kind="image"),
    Case("detr", _seeded(_detr), _image(), _HW_AXES,
         {"batch": (1, 2, 2), "height": (64, 96, 128), "width": (64, 96, 128)}, {"batch": 2, "height": 80, "width": 112},
         kind="image"),
]

BY_NAME = {c.name: c for c in CASES}


def profile_of(case: Case) -> Any:
    """The case's one profile: min/opt/max shapes of every input."""
    from dynashape import Profile

    shapes = {w: {n: tuple(t.shape) for n, t in case.example(w).items()} for w in ("min", "opt", "max")}
    return Profile({n: (shapes["min"][n], shapes["opt"][n], shapes["max"][n]) for n in shapes["opt"]})
