"""Likeness: the encoder's reconstruction of real faces against the per-face fit of core/fit.py (figures, not a test).

For wild photos the bundled model never saw (the last files of wild_faces128, aligned automatically) and for
aligned held-out CelebA faces (ids >= 8001), each face is reconstructed by the encoder, Dec(Enc(x)), and by
fitting it alone (core.fit.fit_faces: latent optimisation, then pivotal tuning of the decoder). The quality
benchmark's attribute judge then measures whether the reconstruction keeps the face (attribute agreement),
sharpness and pixel error, and whether attribute edits still work from it. Targets:
- fitted wild faces: attribute agreement >= 97%, sharpness ratio 0.85-1.15, MSE <= 0.002, median <= 3 s per face;
- each edit of fitted faces succeeds on at least the encoder's share minus 10 points, keeping >= 85% of the
  other visible attributes.
Prints a table and writes <out>/likeness.md and <out>/likeness.png (8 wild faces: crop, encoder, fitted, and the
fitted face edited by each key attribute at strength 1.5).

    python benchmarks/likeness.py [--model checkpoints/faces64.safetensors] [--celeba ../shared/data/celeba]
                                  [--faces 48] [--strengths 1 2 3] [--threads 2] [--cache-dir .cache] [--out docs]
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from PIL import Image, ImageDraw
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from core.api import Model, load_model  # noqa: E402
from core.data import ImageLoadError, prepare_faces  # noqa: E402
from core.dataset import FaceDataset, to_unit  # noqa: E402
from core.export import make_grid, save_image, upscale  # noqa: E402
from core.fit import fit_faces  # noqa: E402
from core.metrics import mean_squared_error, sharpness_ratio  # noqa: E402
from core.model import DecoderTuning  # noqa: E402
from quality import KEY_ATTRIBUTES, load_or_train_judge, load_split, predict_attributes, with_row_labels  # noqa: E402

HOLDOUT_FROM = 8001
VISIBLE = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Bald", "Eyeglasses", "Smiling", "Male", "Young",
           "Wearing_Hat", "Mustache", "Goatee")
"""The attributes a person sees at a glance: an edit must leave the others of these alone."""
AGREEMENT_TARGET = 0.97
SHARPNESS_BAND = (0.85, 1.15)
MSE_TARGET = 0.002
SECONDS_TARGET = 3.0
SUCCESS_MARGIN = 0.10
"""A fitted face's edit may succeed on up to 10 points fewer faces than the encoder's."""
KEPT_TARGET = 0.85
FIGURE_FACES = 8
FIGURE_STRENGTH = 1.5
FIGURE_SCALE = 2
T = TypeVar("T")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "checkpoints" / "faces64.safetensors")
    parser.add_argument("--celeba", type=Path, default=ROOT.parent / "shared" / "data" / "celeba")
    parser.add_argument("--faces", type=int, default=48, help="faces per set (default 48)")
    parser.add_argument("--strengths", type=float, nargs="+", default=[1.0, 2.0, 3.0],
                        help="edit strengths (default 1 2 3: the app's sliders run -3..3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache", help="the quality judge's cache")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for likeness.md and likeness.png")
    return parser.parse_args()


# ------------------------------------------------------------------------------------------ faces

@dataclass
class FaceSet:
    name: str
    crops: Tensor
    """uint8 N x 3 x 64 x 64."""
    names: list[str]
    lacking: Tensor
    """N x 40 booleans: the face lacks the attribute (the edits start from these faces)."""
    predictions: Tensor
    """N x 40 booleans: the judge's verdicts on the crops."""


def wild_set(folder: Path, count: int, judge: nn.Module) -> FaceSet:
    """The last `count` wild photos by name, aligned automatically; files that fail are skipped."""
    crops, names = [], []
    for path in sorted(folder.glob("*.jpg"))[-count:]:
        try:
            crops.append(prepare_faces(path, 64, "auto")[0].pixels)
            names.append(path.name)
        except ImageLoadError as error:
            print(f"skipped {path.name}: {error}", file=sys.stderr)
    images = torch.stack(crops)
    predictions = predict_attributes(judge, images)
    return FaceSet("wild photos", images, names, ~predictions, predictions)


def celeba_set(holdout: FaceDataset, count: int, judge: nn.Module) -> FaceSet:
    """The first `count` held-out CelebA faces, lacking an attribute where labelled -1."""
    part = holdout.subset(list(range(min(count, len(holdout)))))
    return FaceSet("held-out CelebA", part.images, list(part.names), part.labels < 0,
                   predict_attributes(judge, part.images))


# ------------------------------------------------------------------------------------------ methods

@dataclass
class Method:
    """One way of reconstructing a set's faces: each face's latent and decoder tuning, and seconds taken."""

    name: str
    latents: Tensor
    tunings: list[DecoderTuning | None]
    seconds: list[float]

    def decode(self, model: Model, latents: Tensor, faces: list[int]) -> Tensor:
        """Decode latents of the given faces, each through its own tuning."""
        return torch.cat([model.decode(z[None], tuning=self.tunings[face]) for z, face in zip(latents, faces)])


def timed(action: Callable[[], T]) -> tuple[T, float]:
    """The action's result and its wall time in seconds."""
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def encode_and_decode(model: Model, crop: Tensor) -> Tensor:
    """Dec(Enc(x)) of one face, as the encoder's reconstruction is made; returns the latent."""
    z = model.encode(crop[None])
    model.decode(z)
    return z


def encoder_method(model: Model, crops: Tensor) -> Method:
    """Dec(Enc(x)) face by face (the latents are the encoder's means)."""
    latents, seconds = zip(*(timed(lambda: encode_and_decode(model, crop)) for crop in to_unit(crops)))
    return Method("encoder", torch.cat(latents), [None] * len(crops), list(seconds))


def fitted_method(model: Model, crops: Tensor) -> Method:
    """Each face fitted alone with the default FitSettings."""
    fits, seconds = zip(*(timed(lambda: fit_faces(model, crop[None])) for crop in to_unit(crops)))
    return Method("fitted", torch.cat([fit.latents for fit in fits]), [fit.tuning for fit in fits], list(seconds))


# ------------------------------------------------------------------------------------------ measures

@dataclass
class Reconstruction:
    method: str
    agreement: float
    sharpness: float
    mse: float
    seconds: float
    """Median seconds per face."""

    def verdicts(self) -> dict[str, str]:
        """pass/miss per measure, for fitted faces only."""
        if self.method != "fitted":
            return {}
        return {"agreement": verdict(self.agreement >= AGREEMENT_TARGET),
                "sharpness": verdict(SHARPNESS_BAND[0] <= self.sharpness <= SHARPNESS_BAND[1]),
                "mse": verdict(self.mse <= MSE_TARGET), "seconds": verdict(self.seconds <= SECONDS_TARGET)}


@dataclass
class EditScore:
    success: float
    kept_visible: float
    kept_all: float


@dataclass
class Edit:
    attribute: str
    strength: float
    faces: int
    scores: dict[str, EditScore]

    def verdict(self) -> str:
        if not self.faces:
            return "n/a"
        encoder, fitted = self.scores["encoder"], self.scores["fitted"]
        return verdict(fitted.success >= encoder.success - SUCCESS_MARGIN and fitted.kept_visible >= KEPT_TARGET)


def verdict(ok: bool) -> str:
    return "pass" if ok else "miss"


def reconstruction(faces: FaceSet, method: Method, images: Tensor, judge: nn.Module) -> Reconstruction:
    crops = to_unit(faces.crops)
    agreement = float((predict_attributes(judge, images) == faces.predictions).float().mean())
    return Reconstruction(method.name, agreement, sharpness_ratio(images, crops), mean_squared_error(images, crops),
                          statistics.median(method.seconds))


def kept(base: Tensor, edited: Tensor, columns: list[int]) -> float:
    """Share of (face, attribute) pairs in `columns` that the judge calls the same before and after the edit."""
    return float((base[:, columns] == edited[:, columns]).float().mean())


def edit_score(model: Model, method: Method, base: Tensor, faces: list[int], column: int, vector: Tensor,
               strength: float, label_names: list[str], judge: nn.Module) -> EditScore:
    edited = predict_attributes(judge, method.decode(model, method.latents[faces] + strength * vector, faces))
    visible = [label_names.index(name) for name in VISIBLE if label_names.index(name) != column]
    others = [other for other in range(len(label_names)) if other != column]
    return EditScore(float(edited[:, column].float().mean()), kept(base[faces], edited, visible),
                     kept(base[faces], edited, others))


def edits(model: Model, faces: FaceSet, methods: list[Method], bases: dict[str, Tensor], label_names: list[str],
          strengths: list[float], judge: nn.Module) -> list[Edit]:
    """For each key attribute and strength: the faces lacking it, edited by each method."""
    results = []
    for attribute in KEY_ATTRIBUTES:
        column = label_names.index(attribute)
        chosen = faces.lacking[:, column].nonzero().flatten().tolist()
        vector = model.attributes[attribute].float()
        for strength in strengths:
            scores = {method.name: edit_score(model, method, bases[method.name], chosen, column, vector, strength,
                                              label_names, judge)
                      for method in methods} if chosen else {}
            results.append(Edit(attribute, strength, len(chosen), scores))
    return results


@dataclass
class SetResult:
    faces: FaceSet
    methods: list[Method]
    reconstructions: list[Reconstruction]
    images: dict[str, Tensor]
    edits: list[Edit]

    def method(self, name: str) -> Method:
        return next(method for method in self.methods if method.name == name)


def evaluate(model: Model, faces: FaceSet, label_names: list[str], strengths: list[float],
             judge: nn.Module) -> SetResult:
    methods = []
    for make in (encoder_method, fitted_method):
        methods.append(make(model, faces.crops))
        print(f"{faces.name}: {methods[-1].name} done", file=sys.stderr, flush=True)
    indices = list(range(len(faces.crops)))
    images = {method.name: method.decode(model, method.latents, indices) for method in methods}
    bases = {name: predict_attributes(judge, recon) for name, recon in images.items()}
    return SetResult(faces, methods, [reconstruction(faces, method, images[method.name], judge) for method in methods],
                     images, edits(model, faces, methods, bases, label_names, strengths, judge))


SPEED_FACES = 6
"""Faces timed for the threads and batching rows (a group photo of six)."""


def speed_rows(model: Model, crops: Tensor, threads: int) -> list[list[str]]:
    """Seconds per face fitting alone on 1 thread and on `threads`, and six faces fitted together (one photo)."""
    faces = to_unit(crops[:SPEED_FACES])
    rows = []
    for count in sorted({1, threads}):
        torch.set_num_threads(count)
        seconds = [timed(lambda: fit_faces(model, face[None]))[1] for face in faces]
        rows.append([f"one face at a time, {count} thread{'s' * (count > 1)}", f"{statistics.median(seconds):.2f}"])
    torch.set_num_threads(threads)
    batch = min(timed(lambda: fit_faces(model, faces))[1] for _ in range(2))
    rows.append([f"{len(faces)} faces of one photo together, {threads} threads", f"{batch / len(faces):.2f}"])
    return rows


SPEED_HEADER = ["fit", "s/face (median)"]


# ------------------------------------------------------------------------------------------ output

def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def with_verdict(text: str, verdicts: dict[str, str], key: str) -> str:
    return f"{text} {verdicts[key]}" if key in verdicts else text


def reconstruction_rows(result: SetResult) -> list[list[str]]:
    rows = []
    for row in result.reconstructions:
        marks = row.verdicts()
        rows.append([row.method, with_verdict(percent(row.agreement), marks, "agreement"),
                     with_verdict(f"{row.sharpness:.2f}", marks, "sharpness"),
                     with_verdict(f"{row.mse:.5f}", marks, "mse"),
                     with_verdict(f"{row.seconds:.3f}", marks, "seconds")])
    return rows


def score_text(score: EditScore | None) -> str:
    if score is None:
        return "-"
    return f"{percent(score.success)} / {percent(score.kept_visible)} ({percent(score.kept_all)})"


def edit_rows(result: SetResult) -> list[list[str]]:
    return [[edit.attribute, f"{edit.strength:g}", str(edit.faces), score_text(edit.scores.get("encoder")),
             score_text(edit.scores.get("fitted")), edit.verdict()] for edit in result.edits]


RECONSTRUCTION_HEADER = ["method", "agreement", "sharpness", "MSE", "s/face"]
EDIT_HEADER = ["attribute", "strength", "faces", "encoder success / kept (all)", "fitted success / kept (all)",
               "verdict"]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in [header, *rows]]


def targets_text() -> list[str]:
    return [f"- fitted faces: attribute agreement >= {percent(AGREEMENT_TARGET)} (the target is set for wild faces), "
            f"sharpness ratio {SHARPNESS_BAND[0]}-{SHARPNESS_BAND[1]}, MSE <= {MSE_TARGET}, "
            f"median <= {SECONDS_TARGET:g} s per face;",
            f"- each edit of fitted faces succeeds on at least the encoder's share minus {100 * SUCCESS_MARGIN:g} "
            f"points, keeping >= {percent(KEPT_TARGET)} of the other visible attributes."]


def print_report(results: list[SetResult], speed: list[list[str]]) -> None:
    print("\n".join(text_table(SPEED_HEADER, speed)))
    for result in results:
        print(f"\n{result.faces.name}: {len(result.faces.crops)} faces")
        print("\n".join(text_table(RECONSTRUCTION_HEADER, reconstruction_rows(result))))
        print()
        print("\n".join(text_table(EDIT_HEADER, edit_rows(result))))
    print("\ntargets:\n" + "\n".join(targets_text()))


def write_report(out: Path, results: list[SetResult], speed: list[list[str]], command: str, threads: int,
                 seconds: float, load: tuple[float, float]) -> Path:
    lines = [f"# Likeness: encoder against fitted faces ({datetime.date.today().isoformat()})", "",
             "Generated by `benchmarks/likeness.py`; do not edit by hand.", "", "```", command, "```", "",
             f"CPU: {os.cpu_count()} threads, torch using {threads}; load average {load[0]:.1f} at the start and "
             f"{load[1]:.1f} at the end (other jobs slow the timings); whole run {seconds:.0f} s. "
             "Each face is reconstructed alone: by the encoder, Dec(Enc(x)), and by `core.fit.fit_faces` with its "
             "default settings (latent optimisation, then pivotal tuning of the decoder). Seconds are medians per "
             "face.", "",
             "Agreement: share of (face, attribute) pairs, all 40 attributes, where the quality judge says the same "
             "about the reconstruction as about the crop. Sharpness: Laplacian variance of the reconstructions over "
             "that of the crops. Edits start from the faces lacking the attribute (wild photos: by the judge on "
             "the crop; CelebA: by the label) and add strength x the model's attribute vector to the method's "
             "latent (fitted faces decode through their tuned decoder). Success: share the judge calls positive "
             "after the edit; kept: share of the other visible attributes (" + ", ".join(VISIBLE) + ") the judge "
             "calls the same before and after, in brackets of all 39 others.", "", "Targets:", *targets_text(), "",
             f"## Speed (the first {SPEED_FACES} wild faces)", "", *markdown_table(SPEED_HEADER, speed), ""]
    for result in results:
        lines += [f"## {result.faces.name} ({len(result.faces.crops)} faces)", "",
                  *markdown_table(RECONSTRUCTION_HEADER, reconstruction_rows(result)), "",
                  *markdown_table(EDIT_HEADER, edit_rows(result)), ""]
    lines += ["![crop, encoder, fitted, fitted + each key attribute at strength "
              f"{FIGURE_STRENGTH:g}](likeness.png)", ""]
    path = out / "likeness.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def with_column_labels(grid: Image.Image, labels: list[str], left: int, pitch: int, height: int = 16) -> Image.Image:
    canvas = Image.new("RGB", (grid.width, grid.height + height), "white")
    canvas.paste(grid, (0, height))
    draw = ImageDraw.Draw(canvas)
    for column, label in enumerate(labels):
        draw.text((left + column * pitch, 2), label, fill="black")
    return canvas


def save_figure(out: Path, model: Model, wild: SetResult) -> Path:
    """Rows of wild faces: crop, encoder, fitted, then the fitted face + each key attribute."""
    count = min(FIGURE_FACES, len(wild.faces.crops))
    fitted = wild.method("fitted")
    tiles = []
    for face in range(count):
        edited = [fitted.decode(model, fitted.latents[[face]] + FIGURE_STRENGTH * model.attributes[name].float(),
                                [face]) for name in KEY_ATTRIBUTES]
        tiles += [to_unit(wild.faces.crops[[face]]), wild.images["encoder"][[face]], wild.images["fitted"][[face]],
                  *edited]
    columns = 3 + len(KEY_ATTRIBUTES)
    padding, label_width = 2, 80
    grid = with_row_labels(upscale(make_grid(torch.cat(tiles), columns, padding), FIGURE_SCALE, "crisp"),
                           wild.faces.names[:count], label_width)
    labels = ["crop", "encoder", "fitted", *(f"+{name} {FIGURE_STRENGTH:g}" for name in KEY_ATTRIBUTES)]
    pitch = (64 + padding) * FIGURE_SCALE
    figure = with_column_labels(grid, labels, label_width + padding * FIGURE_SCALE, pitch)
    return save_image(figure, out / "likeness.png", overwrite=True)


def main() -> None:
    args = parse_arguments()
    command = shlex.join(["python", *sys.argv])
    torch.set_num_threads(args.threads)
    started, load_before = time.monotonic(), os.getloadavg()[0]
    model = load_model(args.model, device="cpu")
    training, holdout = load_split(args.celeba / "faces64", args.celeba / "list_attr_celeba.txt", HOLDOUT_FROM)
    judge, _ = load_or_train_judge(training, args.cache_dir, seed=0)
    sets = [wild_set(args.celeba / "wild_faces128", args.faces, judge), celeba_set(holdout, args.faces, judge)]
    speed = speed_rows(model, sets[0].crops, args.threads)
    results = [evaluate(model, faces, list(holdout.label_names), args.strengths, judge) for faces in sets]
    print_report(results, speed)
    args.out.mkdir(parents=True, exist_ok=True)
    report = write_report(args.out, results, speed, command, args.threads, time.monotonic() - started,
                          (load_before, os.getloadavg()[0]))
    figure = save_figure(args.out, model, results[0])
    print(f"\nwrote {report} and {figure} in {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
