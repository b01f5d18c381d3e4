"""Image-quality benchmark: the shipped VAE-GAN against a pixel VAE trained with the same budget.

Measures sharpness, patch sliced Wasserstein distance (SWD), pixel error, checkerboard energy and
attribute-vector edits on held-out CelebA faces only, and writes <out>/quality.md with a PASS/FAIL
per target plus three figures. Example:

    python benchmarks/quality.py --vaegan checkpoints/faces64.safetensors \\
        --vae runs/vae_baseline/checkpoint.safetensors --data ../shared/data/celeba/faces64 \\
        --attributes ../shared/data/celeba/list_attr_celeba.txt --holdout-from 8001 --out docs \\
        --compute-attributes --extra-strengths 1.5
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from core.api import Model, load_model  # noqa: E402
from core.data import load_image_folder  # noqa: E402
from core.dataset import FaceDataset, to_unit  # noqa: E402
from core.export import make_grid, save_image, upscale  # noqa: E402
from core.latent import (DEFAULT_SAMPLE_TEMPERATURE, LatentGaussian, attribute_vectors_from_labels,  # noqa: E402
                         fit_latent_gaussian, sample_prior)
from core.metrics import (checkerboard_score, gaussian_blur, mean_squared_error, patch_swd_many,  # noqa: E402
                          sharpness_ratio, speckled_share)
from core.schema import RANDOM_FACES  # noqa: E402

KEY_ATTRIBUTES = ("Smiling", "Eyeglasses", "Blond_Hair", "Male")
SHARPNESS_BAND = (0.7, 1.3)
SHARPNESS_ADVANTAGE = 3.0
EDIT_SUCCESS_TARGET = 0.70
OTHERS_STAY_TARGET = 0.80
BLUR_MARK_SIGMA = 1.0
CALIBRATION_SIGMAS = (0.7, 1.0)
CHECKERBOARD_LIMIT = 2.0
SPECKLED_LIMIT = 0.05
"""This benchmark's own limit for "samples free of checkerboard patterns": at most 5% of them with more Nyquist
energy than 99% of the reference set of real faces (so that set itself scores 1%; other real faces score a
little more, as the report's calibration row shows)."""
LATENT_OUTLIER_RADIUS = 1.5
"""A held-out face counts as encoded off the prior when |mu| > 1.5 sqrt(latent size): a prior sample's
norm is about sqrt(latent size). Development models decoded such faces as a garish collapsed face."""
"""This benchmark's own limit (the project sets none): at most twice real faces' share of Nyquist energy.
A development VAE-GAN with plainly visible checkerboards scored about 5."""
AGREEMENT_TOLERANCE = 0.02
"""'Keeps the face about as well as the VAE': classifier agreement at most 2 points below the VAE's."""
SWD_PATCHES_PER_IMAGE = 32
SWD_SCALE = 1e3
"""SWD is reported x 1e3, as Karras et al. did."""
ATTRIBUTE_VECTOR_FACES = 4000
"""Training faces encoded for --compute-attributes (a subset, for speed)."""
SAMPLE_GRID_SIZE = 64
RECONSTRUCTION_EXAMPLES = 16
EDIT_EXAMPLES = 8
FIGURE_SCALE = 2
"""Figures are enlarged by pixel repetition only, so blur and checkerboards stay as the model made them."""

CLASSIFIER_VERSION = 2
"""Bump when the classifier's architecture or recipe changes: it is part of the cache key."""
CLASSIFIER_EPOCHS = 8
JUDGE_MEMBERS = 3
CLASSIFIER_BATCH = 128
CLASSIFIER_LEARNING_RATE = 3e-3


# ------------------------------------------------------------------------------------------ set-up

def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vaegan", required=True, type=Path, help="the VAE-GAN model file or run folder")
    parser.add_argument("--vae", required=True, type=Path, help="the pixel-VAE baseline (same training budget)")
    parser.add_argument("--data", required=True, type=Path, help="folder of 64x64 CelebA faces (faces64)")
    parser.add_argument("--attributes", required=True, type=Path, help="list_attr_celeba.txt")
    parser.add_argument("--holdout-from", type=int, default=8001,
                        help="first held-out CelebA id; smaller ids are training faces (default 8001)")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="folder for quality.md and figures")
    parser.add_argument("--strength", type=float, default=1.0, help="attribute-edit strength judged against targets")
    parser.add_argument("--extra-strengths", type=float, nargs="*", default=[1.5],
                        help="further edit strengths, reported but not judged (default 1.5)")
    parser.add_argument("--edit-faces", type=int, default=500,
                        help="held-out faces lacking an attribute to edit, per attribute (default 500: "
                             "a share of 100 faces is only known to about 10 points)")
    parser.add_argument("--compute-attributes", action="store_true",
                        help="compute missing attribute vectors from the labelled training faces")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache",
                        help="where the attribute classifier's weights are cached (default .cache, git-ignored)")
    return parser.parse_args()


class StageClock:
    """Wall time per named stage, echoed to stderr as each stage ends."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        begun = time.monotonic()
        yield
        self.stages[name] = self.stages.get(name, 0.0) + time.monotonic() - begun
        print(f"[{self.elapsed():6.0f} s] {name}: {time.monotonic() - begun:.0f} s", file=sys.stderr, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def celeba_id(name: str) -> int:
    stem = Path(name).stem
    if not stem.isdigit():
        raise SystemExit(f"{name}: expected CelebA file names (000001.jpg ...) to split by id")
    return int(stem)


def load_split(data: Path, attributes: Path, holdout_from: int) -> tuple[FaceDataset, FaceDataset]:
    """(training faces with id < holdout_from, held-out faces), both labelled."""
    faces = load_image_folder(data, image_size=64, crop="celeba", attributes_file=attributes)
    if faces.labels is None:
        raise SystemExit(f"{attributes}: no CelebA attribute labels matched the images in {data}")
    ids = [celeba_id(name) for name in faces.names]
    training = faces.subset([i for i, face in enumerate(ids) if face < holdout_from])
    holdout = faces.subset([i for i, face in enumerate(ids) if face >= holdout_from])
    if len(training) < 1000 or len(holdout) < 100:
        raise SystemExit(f"split at id {holdout_from} leaves {len(training)} training and {len(holdout)} "
                         "held-out faces; need at least 1,000 and 100")
    return training, holdout


def encode_faces(model: Model, images: Tensor, chunk: int = 500) -> Tensor:
    """Posterior means of uint8 faces, converted to [0, 1] a chunk at a time to bound memory."""
    return torch.cat([model.encode(to_unit(part)) for part in images.split(chunk)])


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------ attribute classifier

class AttributeClassifier(nn.Module):
    """Small CNN predicting all 40 CelebA attributes (logits) from 64 x 64 faces in [0, 1].

    It sees the full resolution (at half, it missed thin spectacle frames), and the report checks that it
    judges blurred faces as it judges sharp ones, so blurry and sharp decodes are judged alike."""

    def __init__(self, attributes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in ((3, 32), (32, 64), (64, 128), (128, 128)):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
        layers += [nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 4 * 4, attributes)]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images * 2 - 1)


def classifier_cache_path(cache_dir: Path, faces: FaceDataset, seed: int) -> Path:
    """A file name keyed by the training faces, their labels, the recipe and the seed."""
    digest = hashlib.sha256(f"v{CLASSIFIER_VERSION} e{CLASSIFIER_EPOCHS} b{CLASSIFIER_BATCH} "
                            f"lr{CLASSIFIER_LEARNING_RATE} s{seed}".encode())
    digest.update("\n".join(faces.names).encode())
    digest.update("\n".join(faces.label_names).encode())
    digest.update(faces.labels.numpy().tobytes())
    digest.update(faces.images.numpy().tobytes())
    return cache_dir / f"quality_classifier_{digest.hexdigest()[:16]}.pt"


def balancing_weights(targets: Tensor) -> Tensor:
    """Per-attribute weight of the positives (negatives / positives) that makes each attribute count as present
    in half the faces. Unweighted, a rare attribute's prior wins every doubtful case: the judge then misses
    about half the real glasses wearers and would fail a perfect Eyeglasses edit as often."""
    positive_share = targets.mean(0).clamp(1e-3, 1 - 1e-3)
    return (1 - positive_share) / positive_share


def train_classifier(faces: FaceDataset, seed: int) -> AttributeClassifier:
    """A few epochs of class-balanced multi-label BCE with horizontal flips, AdamW and a one-cycle schedule."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    classifier = AttributeClassifier(len(faces.label_names))
    targets = (faces.labels > 0).float()
    positive_weight = balancing_weights(targets)
    steps_per_epoch = len(faces) // CLASSIFIER_BATCH
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=CLASSIFIER_LEARNING_RATE, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, CLASSIFIER_LEARNING_RATE,
                                                   total_steps=CLASSIFIER_EPOCHS * steps_per_epoch)
    classifier.train()
    for _ in range(CLASSIFIER_EPOCHS):
        order = torch.randperm(len(faces), generator=generator)
        for step in range(steps_per_epoch):
            batch = order[step * CLASSIFIER_BATCH:(step + 1) * CLASSIFIER_BATCH]
            images = to_unit(faces.images[batch])
            mirrored = torch.rand(len(batch), generator=generator) < 0.5
            images = torch.where(mirrored[:, None, None, None], images.flip(-1), images)
            loss = F.binary_cross_entropy_with_logits(classifier(images), targets[batch], pos_weight=positive_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return classifier.eval()


class AttributeJudge(nn.Module):
    """Mean logits of several classifiers trained alike from different seeds: one small CNN's verdicts on
    doubtful faces swing by several points with its seed, which would swamp differences between models."""

    def __init__(self, members: list[AttributeClassifier]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, images: Tensor) -> Tensor:
        return torch.stack([member(images) for member in self.members]).mean(0)


def load_or_train_classifier(faces: FaceDataset, cache_dir: Path, seed: int) -> tuple[AttributeClassifier, str]:
    """The cached classifier for exactly these training faces, else a freshly trained (and cached) one."""
    path = classifier_cache_path(cache_dir, faces, seed)
    if path.exists():
        classifier = AttributeClassifier(len(faces.label_names))
        classifier.load_state_dict(torch.load(path, weights_only=True))
        return classifier.eval(), f"loaded from the cache `{path.name}`"
    classifier = train_classifier(faces, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(classifier.state_dict(), temporary)
    os.replace(temporary, path)
    return classifier, f"trained and cached as `{path.name}`"


def load_or_train_judge(faces: FaceDataset, cache_dir: Path, seed: int) -> tuple[AttributeJudge, str]:
    members, origins = zip(*(load_or_train_classifier(faces, cache_dir, seed + k) for k in range(JUDGE_MEMBERS)))
    return AttributeJudge(list(members)).eval(), "; ".join(origins)


@torch.no_grad()
def predict_attributes(classifier: nn.Module, images: Tensor, chunk: int = 500) -> Tensor:
    """N x 40 booleans: the classifier says the attribute is present. Accepts uint8 or [0, 1] floats."""
    parts = [classifier(to_unit(part) if part.dtype == torch.uint8 else part) > 0 for part in images.split(chunk)]
    return torch.cat(parts)


@dataclass
class ClassifierCheck:
    origin: str
    accuracy: dict[str, float]
    """Held-out accuracy per attribute, on the real faces."""
    accuracy_blurred: dict[str, float]
    """The same on faces blurred by BLUR_MARK_SIGMA: a fair judge of blurry decodes must keep it."""
    hit_rate: dict[str, float]
    """Share of real held-out faces labelled with the attribute that the judge calls positive: the most an edit
    can score, were it as convincing as a real photograph."""
    false_alarm_rate: dict[str, float]
    """Share of real held-out faces labelled without it that the judge calls positive."""
    mean_balanced_accuracy: float
    """Mean over all 40 attributes of (hit rate + correct-rejection rate) / 2; 50% is guessing."""


def share_called_present(predicted: Tensor, where: Tensor) -> Tensor:
    """Per attribute: the share of the faces selected by `where` (N x 40) that the judge calls positive."""
    return (predicted & where).sum(0) / where.sum(0)


def check_classifier(classifier: nn.Module, origin: str, holdout: FaceDataset) -> ClassifierCheck:
    present = holdout.labels > 0
    predicted = predict_attributes(classifier, holdout.images)
    predicted_blurred = predict_attributes(classifier, gaussian_blur(to_unit(holdout.images), BLUR_MARK_SIGMA))
    accuracy, accuracy_blurred = (predicted == present).float().mean(0), (predicted_blurred == present).float().mean(0)
    hits, false_alarms = share_called_present(predicted, present), share_called_present(predicted, ~present)
    balanced = (hits + 1 - false_alarms) / 2
    columns = {name: holdout.label_names.index(name) for name in KEY_ATTRIBUTES}

    def pick(values: Tensor) -> dict[str, float]:
        return {name: float(values[column]) for name, column in columns.items()}

    return ClassifierCheck(origin, pick(accuracy), pick(accuracy_blurred), pick(hits), pick(false_alarms),
                           float(balanced.nanmean()))


# ----------------------------------------------------------------------------------- model results

@dataclass
class EditResult:
    attribute: str
    strength: float
    faces: int
    present_before: float
    """Share of the unedited decodes Dec(z) the classifier already calls positive."""
    success: float
    others_stay: float

    def passes(self) -> bool:
        return self.success >= EDIT_SUCCESS_TARGET and self.others_stay >= OTHERS_STAY_TARGET


@dataclass
class ModelResult:
    path: Path
    model: Model
    attribute_source: str
    reconstructions: Tensor
    """Dec(Enc(x)) of every held-out face, float [0, 1]."""
    samples: Tensor
    """Prior samples N(0, I) at temperature 1, as many as half the hold-out; the first 64 make the figure."""
    app_samples: Tensor
    """Random faces as the app draws them (Model.sample at DEFAULT_SAMPLE_TEMPERATURE): from the model's fitted
    latent Gaussian, which is fitted here on the training faces when the file holds none."""
    sampler: str
    """Where app_samples come from, in words."""
    sharpness: float
    mse: float
    checkerboard_reconstructions: float
    checkerboard_samples: float
    checkerboard_app_samples: float
    speckled_reconstructions: float
    speckled_samples: float
    speckled_app_samples: float
    """Shares of images with more Nyquist energy than 99% of real faces (see speckled_share)."""
    latent_outliers: float
    """Share of held-out faces encoded off the prior (see LATENT_OUTLIER_RADIUS)."""
    attribute_agreement: float
    """Share of (face, attribute) pairs, all 40 attributes, where the classifier says the same about
    the reconstruction as about the original: does the reconstruction keep the face?"""
    edits: list[EditResult]
    edit_examples: dict[str, tuple[Tensor, Tensor]]
    """attribute -> (Dec(z), Dec(z + strength * v)) of the first few edited faces, at --strength."""


@dataclass
class Evaluation:
    """Everything shared by the two models' evaluations."""

    args: argparse.Namespace
    training: FaceDataset
    holdout: FaceDataset
    classifier: nn.Module
    real_predictions: Tensor

    @property
    def half(self) -> int:
        return len(self.holdout) // 2

    def half_a(self) -> Tensor:
        """Held-out faces whose reconstructions are compared with half B."""
        return to_unit(self.holdout.images[:self.half])

    def half_b(self) -> Tensor:
        """The real reference set of every SWD figure."""
        return to_unit(self.holdout.images[self.half:2 * self.half])


def attribute_vectors(model: Model, evaluation: Evaluation) -> tuple[dict[str, Tensor], str]:
    """The model's stored attribute vectors, or (with --compute-attributes) ones computed from the
    labelled training faces: mean latent with the attribute minus mean latent without it."""
    missing = [name for name in KEY_ATTRIBUTES if name not in model.attributes]
    if not missing:
        return model.attributes, "stored in the model file"
    if not evaluation.args.compute_attributes:
        raise SystemExit(f"{model.path}: no attribute vector for {', '.join(missing)}; "
                         "pass --compute-attributes to compute them from the labelled training faces")
    training = evaluation.training.subset(list(range(min(ATTRIBUTE_VECTOR_FACES, len(evaluation.training)))))
    latents = encode_faces(model, training.images)
    computed = attribute_vectors_from_labels(latents, training.labels, training.label_names)
    source = (f"computed here from {len(training):,} labelled training faces (mean latent with minus mean "
              f"latent without){'; the file held none' if len(missing) == len(KEY_ATTRIBUTES) else ''}")
    return {**computed, **model.attributes}, source


def evaluate_edits(model: Model, latents: Tensor, reconstructions: Tensor, vectors: dict[str, Tensor],
                   evaluation: Evaluation) -> tuple[list[EditResult], dict[str, tuple[Tensor, Tensor]]]:
    """For each key attribute: held-out faces lacking it, z' = z + strength * v, classified."""
    args, labels, names = evaluation.args, evaluation.holdout.labels, evaluation.holdout.label_names
    base_predictions = predict_attributes(evaluation.classifier, reconstructions)
    results, examples = [], {}
    for attribute in KEY_ATTRIBUTES:
        column = names.index(attribute)
        others = [c for c in range(len(names)) if c != column]
        lacking = (labels[:, column] < 0).nonzero().squeeze(1)[:args.edit_faces]
        before = base_predictions[lacking]
        for strength in [args.strength, *args.extra_strengths]:
            edited = model.decode(latents[lacking] + strength * vectors[attribute].float())
            after = predict_attributes(evaluation.classifier, edited)
            results.append(EditResult(attribute, strength, len(lacking), float(before[:, column].float().mean()),
                                      float(after[:, column].float().mean()),
                                      float((after[:, others] == before[:, others]).float().mean())))
            if strength == args.strength:
                examples[attribute] = (reconstructions[lacking[:EDIT_EXAMPLES]], edited[:EDIT_EXAMPLES])
    return results, examples


def latent_outlier_share(latents: Tensor) -> float:
    radius = LATENT_OUTLIER_RADIUS * latents.shape[1] ** 0.5
    return float((latents.norm(dim=1) > radius).float().mean())


def fit_training_gaussian(model: Model, evaluation: Evaluation) -> LatentGaussian:
    """What scripts/build_bundle.py stores: a Gaussian fitted to the posteriors of the training faces."""
    parts = [model.posterior(to_unit(chunk)) for chunk in evaluation.training.images.split(500)]
    return fit_latent_gaussian(torch.cat([mu for mu, _ in parts]), torch.cat([var for _, var in parts]))


def evaluate_model(label: str, source: Path | Model, evaluation: Evaluation, clock: StageClock) -> ModelResult:
    """The measures of a model file (or of a model already loaded)."""
    with clock.stage(f"{label}: load, attribute vectors"):
        model = source if isinstance(source, Model) else load_model(source, device="cpu")
        vectors, attribute_source = attribute_vectors(model, evaluation)
    with clock.stage(f"{label}: encode and reconstruct the hold-out"):
        latents = encode_faces(model, evaluation.holdout.images)
        reconstructions = model.decode(latents)
        originals = to_unit(evaluation.holdout.images)
    with clock.stage(f"{label}: prior samples and the app's random faces"):
        samples = model.decode(sample_prior(evaluation.half, model.latent_dim, 1.0, evaluation.args.seed))
        sampler = f"stored in the model file, a {model.meta.get(RANDOM_FACES, 'latent Gaussian')}"
        if model.latent_gaussian is None:
            model.latent_gaussian = fit_training_gaussian(model, evaluation)
            sampler = f"a latent Gaussian fitted here on the {len(evaluation.training):,} training faces"
        _, app_samples = model.sample(evaluation.half, DEFAULT_SAMPLE_TEMPERATURE, evaluation.args.seed)
        real_b = evaluation.half_b()
    with clock.stage(f"{label}: attribute edits"):
        edits, examples = evaluate_edits(model, latents, reconstructions, vectors, evaluation)
    with clock.stage(f"{label}: pixel measures"):
        agreement = predict_attributes(evaluation.classifier, reconstructions) == evaluation.real_predictions
        return ModelResult(
            path=Path(model.path), model=model, attribute_source=attribute_source, reconstructions=reconstructions,
            samples=samples, app_samples=app_samples, sampler=sampler,
            sharpness=sharpness_ratio(reconstructions, originals),
            mse=mean_squared_error(reconstructions, originals),
            checkerboard_reconstructions=checkerboard_score(reconstructions, originals),
            checkerboard_samples=checkerboard_score(samples, real_b),
            checkerboard_app_samples=checkerboard_score(app_samples, real_b),
            speckled_reconstructions=speckled_share(reconstructions, originals),
            speckled_samples=speckled_share(samples, real_b), speckled_app_samples=speckled_share(app_samples, real_b),
            latent_outliers=latent_outlier_share(latents),
            attribute_agreement=float(agreement.float().mean()), edits=edits, edit_examples=examples)


@dataclass
class RealMarks:
    """What sharpness and checkerboard measures give on blurred real faces (calibration)."""

    sharpness_blurred: dict[float, float]
    """sigma -> Laplacian-variance ratio of real half A blurred by sigma px."""
    checkerboard_blurred: float
    speckled_real: float
    """Share of the real training faces speckled by speckled_share against half B, as the samples are judged:
    what a sampler that drew real photographs would score (above the 1% the reference set scores against itself,
    since the 99% line is drawn through a sample of 500)."""


def measure_real_marks(evaluation: Evaluation) -> RealMarks:
    real_a = evaluation.half_a()
    blurred = {sigma: gaussian_blur(real_a, sigma) for sigma in CALIBRATION_SIGMAS}
    return RealMarks({sigma: sharpness_ratio(images, real_a) for sigma, images in blurred.items()},
                     checkerboard_score(blurred[BLUR_MARK_SIGMA], real_a),
                     speckled_share(to_unit(evaluation.training.images), evaluation.half_b()))


@dataclass
class PatchDistances:
    """Patch SWD of every set against real half B, all from one call (shared patches and directions)."""

    floor: dict[int, float]
    """Real half A: two disjoint sets of real faces."""
    blurred: dict[int, float]
    """Real half A blurred by BLUR_MARK_SIGMA."""
    reconstructions: dict[str, dict[int, float]]
    """By role ("VAE-GAN", "VAE"): reconstructions of half A."""
    samples: dict[str, dict[int, float]]
    app_samples: dict[str, dict[int, float]]


def measure_patch_distances(evaluation: Evaluation, gan: ModelResult, vae: ModelResult) -> PatchDistances:
    real_a = evaluation.half_a()
    roles = {"VAE-GAN": gan} if vae is gan else {"VAE-GAN": gan, "VAE": vae}
    candidates = {"floor": real_a, "blurred": gaussian_blur(real_a, BLUR_MARK_SIGMA)}
    for role, result in roles.items():
        candidates[f"{role} reconstructions"] = result.reconstructions[:evaluation.half]
        candidates[f"{role} samples"] = result.samples
        candidates[f"{role} app samples"] = result.app_samples
    found = patch_swd_many(candidates, evaluation.half_b(), patches_per_image=SWD_PATCHES_PER_IMAGE,
                           seed=evaluation.args.seed)
    source = {"VAE-GAN": "VAE-GAN", "VAE": "VAE-GAN" if vae is gan else "VAE"}
    return PatchDistances(found["floor"], found["blurred"],
                          {role: found[f"{origin} reconstructions"] for role, origin in source.items()},
                          {role: found[f"{origin} samples"] for role, origin in source.items()},
                          {role: found[f"{origin} app samples"] for role, origin in source.items()})


@dataclass
class Findings:
    """Everything the report states."""

    gan: ModelResult
    vae: ModelResult
    marks: RealMarks
    distances: PatchDistances
    check: ClassifierCheck


# ------------------------------------------------------------------------------------------ figures

def titled(panel: Image.Image, title: str, height: int = 16) -> Image.Image:
    canvas = Image.new("RGB", (panel.width, panel.height + height), "white")
    canvas.paste(panel, (0, height))
    ImageDraw.Draw(canvas).text((4, 2), title, fill="black")
    return canvas


def side_by_side(panels: list[Image.Image], gap: int = 12) -> Image.Image:
    canvas = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1), max(p.height for p in panels)),
                       "white")
    left = 0
    for panel in panels:
        canvas.paste(panel, (left, 0))
        left += panel.width + gap
    return canvas


def with_row_labels(grid: Image.Image, labels: list[str], width: int = 110) -> Image.Image:
    canvas = Image.new("RGB", (grid.width + width, grid.height), "white")
    canvas.paste(grid, (width, 0))
    row_height = grid.height / len(labels)
    draw = ImageDraw.Draw(canvas)
    for row, label in enumerate(labels):
        draw.text((4, int((row + 0.5) * row_height) - 6), label, fill="black")
    return canvas


def enlarged_grid(images: Tensor, columns: int) -> Image.Image:
    return upscale(make_grid(images, columns), FIGURE_SCALE, "crisp")


def save_figures(out: Path, evaluation: Evaluation, gan: ModelResult, vae: ModelResult) -> None:
    originals = to_unit(evaluation.holdout.images[:RECONSTRUCTION_EXAMPLES])
    rows = torch.cat([originals, gan.reconstructions[:RECONSTRUCTION_EXAMPLES],
                      vae.reconstructions[:RECONSTRUCTION_EXAMPLES]])
    recon = with_row_labels(enlarged_grid(rows, RECONSTRUCTION_EXAMPLES), ["original", "VAE-GAN", "VAE"])
    save_image(recon, out / "quality_recon.png", overwrite=True)
    for name, what, pick in (
            ("quality_samples.png", "prior N(0, I), temperature 1", lambda r: r.samples),
            ("quality_samples_app.png", f"fitted sampler, temperature {DEFAULT_SAMPLE_TEMPERATURE:g}",
             lambda r: r.app_samples)):
        grids = [titled(enlarged_grid(pick(result)[:SAMPLE_GRID_SIZE], 8), f"{title}, {what}")
                 for result, title in ((gan, "VAE-GAN"), (vae, "VAE"))]
        save_image(side_by_side(grids), out / name, overwrite=True)
    labels = [text for name in KEY_ATTRIBUTES for text in (f"{name} (recon)", f"+{name}")]
    edits = [titled(with_row_labels(enlarged_grid(edit_rows(result), EDIT_EXAMPLES), labels), title)
             for result, title in ((gan, f"VAE-GAN, strength {evaluation.args.strength:g}"),
                                   (vae, f"VAE, strength {evaluation.args.strength:g}"))]
    save_image(side_by_side(edits), out / "quality_edits.png", overwrite=True)


def edit_rows(result: ModelResult) -> Tensor:
    return torch.cat([images for name in KEY_ATTRIBUTES for images in result.edit_examples[name]])


# ------------------------------------------------------------------------------------------- report

def mean_swd(distances: dict[int, float]) -> float:
    return SWD_SCALE * sum(distances.values()) / len(distances)


def verdict_word(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def percent(value: float, decimals: int = 0) -> str:
    return f"{100 * value:.{decimals}f}%"


def judged_edits(result: ModelResult, strength: float) -> dict[str, EditResult]:
    return {edit.attribute: edit for edit in result.edits if edit.strength == strength}


def targets_table(findings: Findings, strength: float) -> list[str]:
    gan, vae, distances = findings.gan, findings.vae, findings.distances
    low, high = SHARPNESS_BAND
    advantage = gan.sharpness / vae.sharpness if vae.sharpness > 0 else float("inf")
    blurred_mark = mean_swd(distances.blurred)
    real_speckle = f"(real faces: {percent(findings.marks.speckled_real, 1)})"
    gan_swd, vae_swd = mean_swd(distances.reconstructions["VAE-GAN"]), mean_swd(distances.reconstructions["VAE"])
    rows = [
        ("Sharpness of reconstructions (Laplacian variance, recon / original)", f"VAE-GAN in [{low}, {high}]",
         f"{gan.sharpness:.3f}", f"{vae.sharpness:.3f}", low <= gan.sharpness <= high),
        ("Sharpness advantage over the VAE", f">= {SHARPNESS_ADVANTAGE:g}x the VAE's", f"{advantage:.2f}x", "1x",
         advantage >= SHARPNESS_ADVANTAGE),
        ("Patch SWD of reconstructions (x1e3, mean of 3 levels)", f"VAE-GAN < blurred-real mark {blurred_mark:.1f}",
         f"{gan_swd:.1f}", f"{vae_swd:.1f}", gan_swd < blurred_mark),
        ("Patch SWD of reconstructions, against the VAE", "VAE-GAN < VAE", f"{gan_swd:.1f}", f"{vae_swd:.1f}",
         gan_swd < vae_swd),
        (f"Prior samples N(0, I), temperature 1: share speckled or checkerboarded {real_speckle}",
         f"VAE-GAN <= {percent(SPECKLED_LIMIT)}", percent(gan.speckled_samples, 1), percent(vae.speckled_samples, 1),
         gan.speckled_samples <= SPECKLED_LIMIT),
        (f"The app's random faces (fitted latent sampler, temperature {DEFAULT_SAMPLE_TEMPERATURE:g}): share "
         f"speckled or checkerboarded {real_speckle}", f"VAE-GAN <= {percent(SPECKLED_LIMIT)}",
         percent(gan.speckled_app_samples, 1), percent(vae.speckled_app_samples, 1),
         gan.speckled_app_samples <= SPECKLED_LIMIT),
    ]
    gan_edits, vae_edits = judged_edits(gan, strength), judged_edits(vae, strength)
    for name in KEY_ATTRIBUTES:
        g, v = gan_edits[name], vae_edits[name]
        rows.append((f"Edit +{name} (strength {strength:g}): success / others stay",
                     f"VAE-GAN >= {percent(EDIT_SUCCESS_TARGET)} / >= {percent(OTHERS_STAY_TARGET)}",
                     f"{percent(g.success)} / {percent(g.others_stay)}",
                     f"{percent(v.success)} / {percent(v.others_stay)}", g.passes()))
    lines = ["| Measure | Target | VAE-GAN | VAE | Result |", "| --- | --- | ---: | ---: | --- |"]
    lines += [f"| {measure} | {target} | {g} | {v} | **{verdict_word(ok)}** |" for measure, target, g, v, ok in rows]
    return lines


def swd_table(distances: PatchDistances) -> list[str]:
    rows = [("Real half A (the floor)", distances.floor),
            (f"Real half A blurred, sigma {BLUR_MARK_SIGMA:g} px (the blurry mark)", distances.blurred),
            ("VAE-GAN reconstructions of half A", distances.reconstructions["VAE-GAN"]),
            ("VAE reconstructions of half A", distances.reconstructions["VAE"]),
            ("VAE-GAN prior samples, N(0, I)", distances.samples["VAE-GAN"]),
            ("VAE prior samples, N(0, I)", distances.samples["VAE"]),
            ("VAE-GAN random faces as the app draws them (fitted latent sampler)", distances.app_samples["VAE-GAN"]),
            ("VAE random faces, drawn the same way", distances.app_samples["VAE"])]
    levels = list(distances.floor)
    lines = ["| Set, against real half B | " + " | ".join(f"{level}px" for level in levels) + " | mean |",
             "| --- |" + " ---: |" * (len(levels) + 1)]
    for name, found in rows:
        values = " | ".join(f"{SWD_SCALE * found[level]:.1f}" for level in levels)
        lines.append(f"| {name} | {values} | {mean_swd(found):.1f} |")
    return lines


def other_measures_table(findings: Findings) -> list[str]:
    gan, vae, marks = findings.gan, findings.vae, findings.marks
    blurred = ", ".join(f"sigma {sigma:g}: {ratio:.3f}" for sigma, ratio in marks.sharpness_blurred.items())
    rows = [("Pixel MSE of reconstructions (images in [0, 1])", f"{gan.mse:.4f}", f"{vae.mse:.4f}", "lower is closer"),
            ("Sharpness ratio of reconstructions", f"{gan.sharpness:.3f}", f"{vae.sharpness:.3f}",
             f"1 = as sharp as the originals; real faces blurred: {blurred}"),
            ("Checkerboard score of reconstructions (Nyquist energy / originals')",
             f"{gan.checkerboard_reconstructions:.2f}", f"{vae.checkerboard_reconstructions:.2f}",
             f"1 = real; real blurred sigma {BLUR_MARK_SIGMA:g}: {marks.checkerboard_blurred:.2f}; "
             f"above {CHECKERBOARD_LIMIT:g}: checkerboard artifacts"),
            ("Checkerboard score of prior samples (vs real half B)", f"{gan.checkerboard_samples:.2f}",
             f"{vae.checkerboard_samples:.2f}", "as above"),
            ("Checkerboard score of the app's random faces", f"{gan.checkerboard_app_samples:.2f}",
             f"{vae.checkerboard_app_samples:.2f}", "as above"),
            ("Speckled reconstructions (more Nyquist energy than 99% of real faces)",
             percent(gan.speckled_reconstructions, 1), percent(vae.speckled_reconstructions, 1),
             "the originals: 1% by construction"),
            ("Speckled real faces: the training faces, judged against half B as the samples are",
             percent(marks.speckled_real, 1), percent(marks.speckled_real, 1),
             "what drawing real photographs would score; the prior samples and random faces above compare with it"),
            (f"Held-out faces encoded off the prior (norm of mu > {LATENT_OUTLIER_RADIUS:g} sqrt(latent size))",
             percent(gan.latent_outliers), percent(vae.latent_outliers),
             "such faces decode badly; 0% is best"),
            ("Attribute agreement, reconstruction vs original (classifier, 40 attributes)",
             percent(gan.attribute_agreement), percent(vae.attribute_agreement),
             "does the reconstruction keep the face?")]
    lines = ["| Measure | VAE-GAN | VAE | Reading |", "| --- | ---: | ---: | --- |"]
    lines += [f"| {measure} | {g} | {v} | {note} |" for measure, g, v, note in rows]
    return lines


def edits_table(gan: ModelResult, vae: ModelResult) -> list[str]:
    lines = ["| Attribute | Strength | Faces | VAE-GAN: present before | VAE-GAN: success | VAE-GAN: others stay "
             "| VAE: present before | VAE: success | VAE: others stay |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for g, v in zip(gan.edits, vae.edits):
        lines.append(f"| {g.attribute} | {g.strength:g} | {g.faces} | {percent(g.present_before)} "
                     f"| {percent(g.success)} | {percent(g.others_stay)} | {percent(v.present_before)} "
                     f"| {percent(v.success)} | {percent(v.others_stay)} |")
    return lines


def classifier_table(check: ClassifierCheck) -> list[str]:
    lines = ["| Attribute | Calls it present: real faces with it | Calls it present: real faces without it "
             f"| Accuracy, real | Accuracy, real blurred sigma {BLUR_MARK_SIGMA:g} |",
             "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {name} | {percent(check.hit_rate[name])} | {percent(check.false_alarm_rate[name])} "
              f"| {percent(check.accuracy[name])} | {percent(check.accuracy_blurred[name])} |"
              for name in KEY_ATTRIBUTES]
    return lines


def worse_levels(distances: PatchDistances) -> str:
    """Pyramid levels where the VAE-GAN's reconstructions are farther from real faces than the VAE's."""
    gan, vae = distances.reconstructions["VAE-GAN"], distances.reconstructions["VAE"]
    worse = [f"{level}px ({SWD_SCALE * gan[level]:.1f} vs {SWD_SCALE * vae[level]:.1f})"
             for level in gan if gan[level] > vae[level]]
    return "; per level it is worse than the VAE's at " + ", ".join(worse) if worse else ""


def verdict(findings: Findings, strength: float) -> list[str]:
    """Plain statements of which parts of the paper's central claim the numbers support."""
    gan, vae, distances = findings.gan, findings.vae, findings.distances
    gan_recon, vae_recon = mean_swd(distances.reconstructions["VAE-GAN"]), mean_swd(distances.reconstructions["VAE"])
    gan_samples, vae_samples = mean_swd(distances.samples["VAE-GAN"]), mean_swd(distances.samples["VAE"])
    blurred_mark, floor = mean_swd(distances.blurred), mean_swd(distances.floor)
    low, high = SHARPNESS_BAND
    checkerboard = max(gan.checkerboard_reconstructions, gan.checkerboard_samples)
    edits = judged_edits(gan, strength)
    passed_edits = [name for name in KEY_ATTRIBUTES if edits[name].passes()]
    sharper = gan_recon < vae_recon and gan.sharpness >= SHARPNESS_ADVANTAGE * vae.sharpness
    realistic = low <= gan.sharpness <= high and gan_recon < blurred_mark and checkerboard <= CHECKERBOARD_LIMIT
    parts = [
        (sharper, f"reconstructions sharper than the VAE's: sharpness ratio {gan.sharpness:.3f} vs {vae.sharpness:.3f} "
                  f"(needs >= {SHARPNESS_ADVANTAGE:g}x), patch SWD {gan_recon:.1f} vs {vae_recon:.1f}"
                  f"{worse_levels(distances)}"),
        (gan_samples < vae_samples, f"prior samples closer to real faces than the VAE's: patch SWD {gan_samples:.1f} "
                                    f"vs {vae_samples:.1f}"),
        (realistic, f"the added detail is face-like rather than artifacts: sharpness ratio {gan.sharpness:.3f} "
                    f"(needs {low}-{high}), patch SWD {gan_recon:.1f} (needs < the blurred-real mark "
                    f"{blurred_mark:.1f}; the real floor is {floor:.1f}), checkerboard score {checkerboard:.2f} "
                    f"(needs <= {CHECKERBOARD_LIMIT:g}, this benchmark's own limit)"),
        (gan.attribute_agreement >= vae.attribute_agreement - AGREEMENT_TOLERANCE,
         f"reconstructions keep the face about as well as the VAE's: classifier agreement with the original "
         f"{percent(gan.attribute_agreement)} vs {percent(vae.attribute_agreement)} (pixel MSE {gan.mse:.4f} vs "
         f"{vae.mse:.4f}; a worse MSE is expected of a VAE-GAN)"),
        (len(passed_edits) == len(KEY_ATTRIBUTES),
         f"attribute arithmetic works: {len(passed_edits)} of {len(KEY_ATTRIBUTES)} edits at strength {strength:g} "
         "meet both targets" + (f" ({', '.join(passed_edits)})" if passed_edits else "")),
    ]
    held = sum(ok for ok, _ in parts)
    overall = ("reproduced" if held == len(parts) else "partly reproduced" if sharper and realistic
               else "not reproduced")
    lines = [f"**The paper's central claim (VAE-GAN reconstructions and samples sharper than a VAE's while keeping "
             f"faces and attribute arithmetic) is {overall} here**: {held} of {len(parts)} parts hold.", ""]
    return lines + [f"- {'holds' if ok else '**does not hold**'}: {text}." for ok, text in parts]


def model_section(role: str, result: ModelResult) -> list[str]:
    meta, file = result.model.meta, result.model.path
    return [f"- **{role}**: `{file}` (sha256 {file_digest(file)}...)",
            f"  - architecture: `{json.dumps(meta.get('model_config', {}))}`",
            f"  - provenance: `{json.dumps(meta.get('provenance'))}`",
            f"  - training_state: `{json.dumps(meta.get('training_state'))}`",
            f"  - attribute vectors: {result.attribute_source}"]


def protocol_section(evaluation: Evaluation) -> list[str]:
    args, half = evaluation.args, evaluation.half
    return [
        f"- Data: `{args.data}` with `{args.attributes}`. Training faces: ids below {args.holdout_from} "
        f"({len(evaluation.training):,}); held out: ids from {args.holdout_from} ({len(evaluation.holdout):,}). "
        "Every measured image comes from the hold-out; training faces only train the classifier and (with "
        f"--compute-attributes) give attribute vectors (the first {ATTRIBUTE_VECTOR_FACES:,}).",
        f"- The hold-out is split in two halves by id: A ({half}) and B ({half}). Real half B is the reference "
        "of every SWD; reconstructions are of half A (so none is compared with its own original), prior samples "
        f"are {half} per model, the floor is real A and the blurry mark is real A blurred by a Gaussian of sigma "
        f"{BLUR_MARK_SIGMA:g} px.",
        f"- Patch SWD after Karras et al. 2018: Laplacian pyramid with levels 64/32/16 px (the last is the "
        f"low-pass residual), {SWD_PATCHES_PER_IMAGE} random 7x7 RGB patches per image and level, each colour "
        "channel normalised with the real reference set's mean and standard deviation (Karras normalised each set "
        "by its own, which would rescale a blurred set's weak band-pass levels back up), 512 random projections in "
        f"4 repeats of 128, averaged; seed {args.seed}; all sets share the reference patches and the directions.",
        "- Sharpness: mean over images of the variance of the 3x3 Laplacian of the grey (BT.601) image, "
        "reconstructions over their originals, all held-out faces.",
        "- Checkerboard score: share of spectral power (DC removed) within 1 bin of the Nyquist frequencies "
        "(pi, pi), (pi, 0), (0, pi), over the same share for real faces. Speckled share: images whose own such "
        "share exceeds the 99th percentile of real faces' (real half B for samples, the originals for "
        "reconstructions); the training faces, judged against half B like the samples, show what real photographs "
        "score (more than 1%: the line through 500 faces' 99th percentile is itself a noisy estimate).",
        "- Random faces as the app draws them: z = m + t L eps, with m and L L^T the mean and covariance of the "
        "training faces' posteriors (covariance of the means plus the mean posterior variance, faces outside a "
        f"Tukey fence left out), t = {DEFAULT_SAMPLE_TEMPERATURE:g} and the prior samples' eps; where the model "
        "file holds a Gaussian mixture fitted to the same faces, z = m + t (m_k + L_k eps - m) for a component k "
        "drawn by weight.",
        "- Pixel MSE over all held-out faces, images in [0, 1]. Reconstructions decode posterior means.",
        f"- Edits: the first {args.edit_faces} held-out faces lacking the attribute per the CelebA labels.",
    ]


def write_report(out: Path, evaluation: Evaluation, findings: Findings, clock: StageClock, command: str) -> Path:
    args, gan, vae, check = evaluation.args, findings.gan, findings.vae, findings.check
    lines = ["# Image quality: VAE-GAN against a pixel VAE", ""]
    if vae is gan:
        lines += ["> **Development run: both models are the same file, so every VAE-GAN vs VAE comparison below is "
                  "meaningless.** Only the measures themselves are being exercised.", ""]
    elif gan.model.images_trained_on != vae.model.images_trained_on:
        lines += [f"> **Unequal training budgets**: the VAE-GAN has seen {gan.model.images_trained_on:,} images, the "
                  f"VAE {vae.model.images_trained_on:,}; the comparison is not at the same budget.", ""]
    lines += [
        "## Verdict", "", *verdict(findings, args.strength), "",
        "## Targets", "", *targets_table(findings, args.strength), "",
        "Edit targets are judged on the VAE-GAN; the VAE's figures are shown beside them for comparison.", "",
        "## Patch sliced Wasserstein distance (x1e3), per Laplacian-pyramid level", "",
        *swd_table(findings.distances), "",
        "## Other measures", "", *other_measures_table(findings), "",
        "## Attribute edits", "", *edits_table(gan, vae), "",
        "*Present before*: share of the unedited decodes Dec(z) the classifier already calls positive (the faces "
        "lack the attribute per the CelebA labels). *Success*: the classifier calls Dec(z + strength * v) positive. "
        "*Others stay*: share of the other 39 attributes whose prediction on the edited decode equals that on "
        f"Dec(z). Only strength {args.strength:g} is judged.", "",
        "### The judging classifier", "",
        f"The mean logits of {JUDGE_MEMBERS} small CNNs over all 40 attributes (seeds {args.seed} to "
        f"{args.seed + JUDGE_MEMBERS - 1}: one alone swings by several points on doubtful faces), each trained on the "
        f"{len(evaluation.training):,} labelled training faces ({CLASSIFIER_EPOCHS} epochs, mirrored at random); "
        f"{check.origin}. Their loss weighs each attribute's positives by negatives / positives, so they judge every "
        "attribute as if half the faces had it: one trained without that weight (and at half resolution, 4 epochs, as "
        "before) called only 52% of real held-out glasses wearers (and 59% of blondes) positive, so even a "
        "photograph-perfect edit would have scored about that. On the "
        f"{len(evaluation.holdout):,} real held-out faces (mean balanced accuracy over all 40 attributes "
        f"{percent(check.mean_balanced_accuracy)}; 50% is guessing):", "",
        *classifier_table(check), "",
        "## Figures", "",
        "![reconstructions](quality_recon.png)", "",
        f"Rows: {RECONSTRUCTION_EXAMPLES} held-out originals, VAE-GAN reconstructions, VAE reconstructions.", "",
        "![samples](quality_samples.png)", "",
        f"{SAMPLE_GRID_SIZE} prior samples per model, temperature 1, seed {args.seed}.", "",
        "![the app's random faces](quality_samples_app.png)", "",
        f"{SAMPLE_GRID_SIZE} random faces per model as the app draws them: from the Gaussian (or Gaussian mixture) "
        f"fitted to where the training faces encode, temperature {DEFAULT_SAMPLE_TEMPERATURE:g}, the same seed (VAE-GAN: "
        f"{gan.sampler}; VAE: {vae.sampler}).", "",
        "![edits](quality_edits.png)", "",
        f"Per attribute: the reconstruction Dec(z) of held-out faces lacking it, then Dec(z + {args.strength:g} v).",
        "", f"All figures are enlarged {FIGURE_SCALE}x by pixel repetition (no smoothing).", "",
        "## Protocol", "", *protocol_section(evaluation), "",
        "## Models", "", *model_section("VAE-GAN", gan), *model_section("VAE", vae), "",
        "## Run", "", "```", command, "```", "",
        f"Finished {datetime.datetime.now().isoformat(timespec='seconds')} in {clock.elapsed():.0f} s on "
        f"{args.threads} CPU threads (shared with other jobs). Stages:", "",
        *[f"- {name}: {seconds:.0f} s" for name, seconds in clock.stages.items()], ""]
    path = out / "quality.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------- main

def main() -> None:
    args = parse_arguments()
    command = shlex.join(["python", *sys.argv])
    torch.set_num_threads(args.threads)
    clock = StageClock()
    with clock.stage("load faces"):
        training, holdout = load_split(args.data, args.attributes, args.holdout_from)
    with clock.stage("attribute classifier"):
        classifier, origin = load_or_train_judge(training, args.cache_dir, args.seed)
        check = check_classifier(classifier, origin, holdout)
        evaluation = Evaluation(args, training, holdout, classifier, predict_attributes(classifier, holdout.images))
    gan = evaluate_model("VAE-GAN", args.vaegan, evaluation, clock)
    same_file = args.vae.resolve() == args.vaegan.resolve()
    vae = gan if same_file else evaluate_model("VAE", args.vae, evaluation, clock)
    with clock.stage("real-face marks and patch SWD of all sets"):
        findings = Findings(gan, vae, measure_real_marks(evaluation), measure_patch_distances(evaluation, gan, vae),
                            check)
    args.out.mkdir(parents=True, exist_ok=True)
    with clock.stage("figures"):
        save_figures(args.out, evaluation, gan, vae)
    report = write_report(args.out, evaluation, findings, clock, command)
    print(f"wrote {report} in {clock.elapsed():.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
