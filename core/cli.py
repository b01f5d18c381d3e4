"""Headless command line: ``vaegan train | resume | reconstruct | compare | sample | interpolate | path | edit |
project | realism | vectors | directions | info``.

Every command exits 0 on success and 2 on bad input, with exactly one ``vaegan: error: ...`` line on
stderr and no traceback. Output files are never replaced without ``--overwrite``. A reader that closes stdout
early (``vaegan info MODEL | head -1``) ends the command quietly, with status 141 as after SIGPIPE.

``torchrun --nproc_per_node=N -m core.cli train ...`` trains data-parallel: the Trainer averages
gradients across the processes and only rank 0 writes files and prints progress.
"""
from __future__ import annotations

import os
import signal
import sys
import threading


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl+C while torch is still importing: a quiet exit, not a KeyboardInterrupt traceback. Nothing has been
    written yet, and an exception raised inside an import could be swallowed by it, so the process ends here."""
    sys.stderr.write("vaegan: interrupted\n")
    sys.stderr.flush()
    os._exit(130)


_sigint_before_import = signal.signal(signal.SIGINT, _interrupted_while_starting) \
    if threading.current_thread() is threading.main_thread() else None
# The imports below take a second or two (torch), so they come after that handler.
import argparse
import hashlib
import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Sequence

import torch
import torch.distributed as dist
from tqdm import tqdm

from core.api import Model, load_model
from core.checkpoint import CheckpointError, check_model_meta, find_checkpoint_in, load_checkpoint_meta, \
    model_config_of, validated_meta
from core.compare import compare_models, comparison_grid
from core.data import (CROP_MODES, DataError, ImageLoadError, NoFaceError, PreparedImage, Progress, load_image_folder,
                       load_run_data, prepare_faces, prepare_image)
from core.dataset import FaceDataset, to_unit
from core.device import DeviceError, resolve_device
from core.errors import one_line
from core.directions import DEFAULT_COLUMNS, DEFAULT_COUNT, DEFAULT_STRENGTH, model_directions, traversal_grid
from core.export import MIN_FRAME_MS, make_grid, make_strip, save_gif, save_image
from core.map_export import save_csv
from core.latent import DEFAULT_SAMPLE_TEMPERATURE, PROJECTION_METHODS, apply_edits, fit_projection, interpolate_path
from core.model import MODEL_TYPES, SUPPORTED_IMAGE_SIZES, ModelConfig
from core.options import Option, options_of
from core.fit import FAST, FitSettings
from core.photo import edit_folder, edit_photo, fit_photo_faces, run_folder_edit
from core.pipeline import encode_folder, encode_images, finish_run
from core.realism import RealismMeter, nearest_names
from core.schema import (ATTRIBUTES, DATA, KIND, LABEL_NAMES, MODEL_CONFIG, PROVENANCE, RANDOM_FACES, REFERENCE, TRAIN_CONFIG,
                         TRAINING_STATE)
from core.video import (MAX_FPS, MAX_SECONDS, MAX_SIZE, METHODS, MIN_FPS, MIN_SECONDS, MIN_SIZE,
                        VIDEO_FORMATS, VideoSettings, write_video)
from core.vector_quality import (Separation, cosine_matrix, cross_fitted_separations, held_out_separation,
                                 most_entangled)
from core.steps import D_PRIOR, D_REAL, FEATURE, GAN, KL, PIXEL
from core.trainer import (CHECKPOINT_NAME, METRICS_NAME, STEP, Preview, Trainer, TrainConfig, TrainerCallbacks,
                          TrainingError)

if _sigint_before_import is not None:
    signal.signal(signal.SIGINT, _sigint_before_import)

PROG = "vaegan"
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
"""Stdout closed by its reader (`vaegan info MODEL | head -1`): what a shell reports for a command ended by SIGPIPE."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FEW_FACES = 3
"""More faces than this get a progress bar while they are fitted."""
PROGRESS_KEYS = (KL, FEATURE, PIXEL, GAN, D_REAL, D_PRIOR)
MAX_GRID_SIDE = 64
"""Rows or columns of a sample grid (64 x 64 faces of 128 px make a 67-megapixel picture)."""
MAX_PATH_STEPS = 1000
MAX_SEED = 2**63 - 1
MAX_STEPS = 10**9
MAX_EPOCHS = 10**6
MAX_BATCH_SIZE = 4096
MAX_STRENGTH = 1000.0
MAX_TEMPERATURE = 100.0
MAX_DIRECTION_STRENGTH = 20.0
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class CliError(Exception):
    """Bad input found by the CLI itself; the message is the whole explanation."""


USER_ERRORS: tuple[type[BaseException], ...] = (CliError, CheckpointError, DataError, DeviceError, TrainingError,
                                                ValueError, OSError, ModuleNotFoundError)
"""Errors caused by what the user asked for: reported in one line, never as a traceback.
ImageLoadError and NoFaceError are DataErrors; FileExistsError is an OSError."""
OVERWRITE_HINTS = ("pass overwrite=True", "allow overwriting")
"""How core's refusals to replace files say how to allow it; the CLI says 'pass --overwrite' instead."""


# ----------------------------------------------------------------------------------------- output


def is_main_process() -> bool:
    """Rank 0 under torchrun, or a plain single process."""
    return int(os.environ.get("RANK", "0")) == 0


def bar_disabled(main_process: bool) -> bool | None:
    """tqdm's `disable`: bars only on rank 0, and only on a terminal (None = off when not a TTY)."""
    return None if main_process else True


def say(text: str) -> None:
    """A status line on stderr (stdout stays for results), without breaking a progress bar."""
    if is_main_process():
        tqdm.write(text, file=sys.stderr)


class FolderProgress:
    """A tqdm bar fed by core.data's progress(done, total) callback."""

    def __init__(self, description: str) -> None:
        self.bar = tqdm(desc=description, unit="img", disable=bar_disabled(is_main_process()), dynamic_ncols=True,
                        leave=False)

    def __call__(self, done: int, total: int) -> None:
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def load_folder(folder: Path, image_size: int, crop: str, attributes_file: str | None = None,
                min_images: int = 16) -> FaceDataset:
    return read_with_progress(folder, lambda progress: load_image_folder(
        folder, image_size=image_size, crop=crop, attributes_file=attributes_file, min_images=min_images,
        progress=progress))


def read_with_progress(folder: Path, read: Callable[[Progress], FaceDataset]) -> FaceDataset:
    """Run a folder reader under a progress bar, then say how many pictures it kept and why any were left out."""
    progress = FolderProgress(f"reading {folder.name}")
    try:
        data = read(progress)
    finally:
        progress.close()
    say_what_was_read(folder, data)
    return data


def say_what_was_read(folder: Path, data: FaceDataset) -> None:
    skipped = data.summary.get("skipped", [])
    say(f"{len(data)} images from {folder} ({data.summary.get('label_source', 'none')} labels"
        + (f"; skipped {len(skipped)}, e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else "") + ")")


# ----------------------------------------------------------------------------------------- checks


def existing_path(text: str, what: str) -> Path:
    path = Path(text).expanduser()
    if not path.exists():
        raise CliError(f"{path}: no such {what}")
    return path


def output_file(text: str, overwrite: bool, suffixes: Sequence[str]) -> Path:
    """The path to write, refusing an unsupported type or an existing file (unless overwrite)."""
    path = output_path(text)
    if path.suffix.lower() not in suffixes:
        raise CliError(f"{path}: unsupported output type {path.suffix or '(none)'}; use {', '.join(suffixes)}")
    if path.is_dir():
        raise CliError(f"{path} is a folder; give a file name")
    if path.is_symlink() and not path.exists():
        raise CliError(f"{path} is a link to a missing file ({os.readlink(path)}); remove it or choose another name")
    if path.exists() and not overwrite:
        raise CliError(f"{path} already exists; pass --overwrite to replace it")
    writable_folder(path.parent)
    return path


def output_path(text: str) -> Path:
    if not text.strip():
        raise CliError("--out is empty; give a file or folder name")
    return Path(text).expanduser()


def writable_folder(folder: Path) -> Path:
    """Create `folder` if needed; a one-line error names it when it cannot be (a file in the way, no permission)."""
    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise CliError(f"cannot create the folder {folder}: {blocking} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the folder {folder} ({exc.strerror or exc})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"cannot write into {folder} (permission denied)")
    return folder


def parse_edit(text: str) -> tuple[str, float]:
    """'Smiling=1.5' -> ('Smiling', 1.5); an argparse type."""
    name, sep, value = text.rpartition("=")
    try:
        if not (sep and name):
            raise ValueError
        strength = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=STRENGTH (e.g. Smiling=1.5), got {text!r}") from None
    if not abs(strength) <= MAX_STRENGTH:
        raise argparse.ArgumentTypeError(f"the strength of {name} must be a number from -{MAX_STRENGTH:g} to "
                                         f"{MAX_STRENGTH:g}, got {value}")
    return name, strength


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high`, else a one-line error saying so."""
    return number_in(low, high, whole=True)


def finite_number(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number from `low` to `high` (so never nan or inf)."""
    return number_in(low, high, whole=False)


def number_in(low: float, high: float, whole: bool) -> Callable[[str], Any]:
    def parse(text: str) -> int | float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'whole ' if whole else ''}number, got {text!r}") from None
        if not low <= value <= high:  # nan fails every comparison
            shown = [f"{x:,}" if whole else f"{x:g}" for x in (low, high)]
            raise argparse.ArgumentTypeError(f"must be {'' if whole else 'a number '}from {shown[0]} to {shown[1]}, "
                                             f"got {text}")
        return value
    return parse


NO_VECTORS = ("this model has no attribute vectors (train on a labelled folder: sub-folders or a CelebA attribute "
              "file)")


def attribute_key(name: str) -> str:
    """An attribute name as typed or shown ('blond hair', 'Blond Hair') folded to compare with 'Blond_Hair'."""
    return "_".join(name.replace("_", " ").split()).casefold()


def resolve_attribute(name: str, available: Sequence[str]) -> str:
    """The model's spelling of an attribute name (exact, else ignoring case and spaces for underscores)."""
    if name in available:
        return name
    folded = [a for a in available if attribute_key(a) == attribute_key(name)]
    if len(folded) == 1:
        return folded[0]
    if not available:
        raise CliError(NO_VECTORS)
    raise CliError(f"unknown attribute {name!r}; this model has: {', '.join(sorted(available))}")


# ----------------------------------------------------------------------------------------- models and images


def open_model(args: argparse.Namespace, path: str | None = None) -> Model:
    """The model named by `path`, else by the command's MODEL argument, on --device."""
    path = path or args.model
    existing_path(path, "model file or run folder")
    return load_model(path, device=args.device or "auto")


def model_crop(model: Model, requested: str | None) -> str:
    """The crop asked for, else the model's own rule for new pictures (automatic face alignment)."""
    return requested or model.picture_crop


def read_faces(paths: Sequence[str], model: Model, crop: str | None) -> torch.Tensor:
    """N x 3 x S x S float in [0, 1]: each picture's (largest) face, framed like the training faces."""
    crop = model_crop(model, crop)
    pixels = [prepare_image(existing_path(p, "image file"), model.image_size, crop).pixels for p in paths]
    return to_unit(torch.stack(pixels))


def faces_of(paths: Sequence[str], model: Model, crop: str | None) -> list[list[PreparedImage]]:
    """Every face of each picture, framed like the training faces, picture by picture."""
    crop = model_crop(model, crop)
    return [prepare_faces(existing_path(p, "image file"), model.image_size, crop) for p in paths]


def read_all_faces(paths: Sequence[str], model: Model, crop: str | None) -> list[tuple[str, list[PreparedImage]]]:
    """(stem for output names, faces) per picture: one entry per face when a picture holds several."""
    stems = [Path(p).stem for p in paths]
    if len(set(stems)) != len(stems):
        raise CliError("two input images share a file name; write them to a single grid file instead")
    return list(zip(stems, faces_of(paths, model, crop)))


def face_names(stem: str, count: int) -> list[str]:
    """`stem` for a picture's only face, `stem_1`, `stem_2`, ... when it holds several."""
    return [stem] if count == 1 else [f"{stem}_{k}" for k in range(1, count + 1)]


# ----------------------------------------------------------------------------------------- training


PREVIEW_FOLDER = "previews"


def planned_total(trainer: Trainer) -> int | None:
    """The progress bar's total: none while a run planned in minutes has not measured its speed."""
    return None if trainer.awaiting_speed else trainer.total_steps


class ProgressCallbacks(TrainerCallbacks):
    """A tqdm bar over steps (with ETA) on rank 0, and a stop request (Ctrl+C)."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.trainer: Trainer | None = None
        self.stop_requested = False

    def attach(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.bar = tqdm(total=planned_total(trainer), initial=trainer.step, desc="training", unit="step",
                        disable=bar_disabled(trainer.rank == 0), dynamic_ncols=True)

    def request_stop(self) -> None:
        """Stop after the current step (all processes of a distributed run stop at the same step)."""
        assert self.trainer is not None
        self.stop_requested = True
        self.trainer.stop()

    def on_preview(self, preview: Preview) -> None:
        """RUN/previews/step_NNNNNN.png: two rows of prior samples, then training faces above their
        reconstructions, so a run can be judged by eye while it trains. An OSError is the trainer's to report
        (twice in a row stops the run)."""
        assert self.trainer is not None
        if self.trainer.rank != 0:
            return
        folder = self.trainer.run_dir / PREVIEW_FOLDER
        images = torch.cat([preview.samples, preview.originals, preview.reconstructions])
        folder.mkdir(exist_ok=True)
        save_image(make_grid(images, columns=len(preview.originals)), folder / f"step_{preview.step:06d}.png",
                   scale=2, mode="crisp", overwrite=True)

    def on_metrics(self, record: dict[str, float]) -> None:
        assert self.bar is not None and self.trainer is not None
        self.bar.total = planned_total(self.trainer)   # a run planned in minutes re-plans its steps
        self.bar.update(int(record[STEP]) - self.bar.n)
        shown = {k: f"{record[k]:.3g}" for k in PROGRESS_KEYS if k in record}
        self.bar.set_postfix(shown, refresh=True)

    def on_message(self, text: str) -> None:
        if self.trainer is None or self.trainer.rank == 0:
            tqdm.write(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


ABORTING_PRESS = 3
"""The Ctrl+C that abandons the stop-save: a quick double press still saves (the second press only asks)."""


@contextmanager
def stop_on_interrupt(callbacks: ProgressCallbacks) -> Iterator[None]:
    """Ctrl+C, SIGTERM (shutdown, kill) or SIGHUP (the terminal closed): finish the step, save a checkpoint
    and return. A second Ctrl+C says the save is under way and lets it finish; a third aborts at once. A repeated
    SIGTERM or SIGHUP lets the save finish."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    presses = 0

    def handle(signum: int, frame: Any) -> None:
        nonlocal presses
        if signum == getattr(signal, "SIGHUP", None):
            silence_output()
        if signum == signal.SIGINT:
            presses += 1
        if presses >= ABORTING_PRESS:
            raise KeyboardInterrupt
        if not callbacks.stop_requested:
            quiet_say(f"stopping ({signal.Signals(signum).name}): finishing the current step and saving a checkpoint"
                      + (" (Ctrl+C twice more to abort)" if signum == signal.SIGINT else ""))
            callbacks.request_stop()
        elif signum == signal.SIGINT:
            quiet_say("saving the checkpoint, one moment (Ctrl+C once more to abort without it)")

    previous = {number: signal.signal(number, handle) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def quiet_say(text: str) -> None:
    """say() from a signal handler: a terminal that is gone (SIGHUP) must not break the stop."""
    try:
        say(text)
    except OSError:
        pass


def silence_output() -> None:
    """Point stdout and stderr at the null device: after SIGHUP the terminal is gone, and writing to it
    would fail in the middle of saving."""
    null = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
            os.dup2(null, stream.fileno())
        except (OSError, ValueError):
            pass
    os.close(null)


@contextmanager
def process_group(device_name: str) -> Iterator[None]:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, else gloo); leave it after."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield
        return
    device = resolve_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
        dist.barrier()  # no rank tears the group down while another still talks to it (gloo aborts then)
    finally:
        dist.destroy_process_group()


def parameter_digest(trainer: Trainer) -> str:
    """SHA-256 of every parameter's bytes (not BN running statistics, which stay per process)."""
    digest = hashlib.sha256()
    for _, p in sorted(trainer.model.named_parameters()):
        digest.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_replicas_agree(trainer: Trainer) -> None:
    """After data-parallel training every process must hold the same weights; say so or fail loudly."""
    digests: list[str | None] = [None] * trainer.world
    dist.all_gather_object(digests, parameter_digest(trainer))
    if len(set(digests)) != 1:
        raise TrainingError(f"weights differ between the {trainer.world} processes after training "
                            f"(digests {', '.join(d[:12] for d in digests if d)})")
    say(f"weights identical on all {trainer.world} processes (sha256 {digests[0][:12]})")


def train_to_end(make_trainer: Callable[[ProgressCallbacks], Trainer], device_name: str,
                 data: FaceDataset) -> int:
    """Run a trainer under the process group, Ctrl+C handling and a progress bar; then make the run's
    checkpoint explorer-ready (core.pipeline.finish_run)."""
    callbacks = ProgressCallbacks()
    with process_group(device_name):
        trainer = make_trainer(callbacks)
        if trainer.step >= trainer.total_steps and trainer.rank == 0 and not is_explorer_ready(trainer.checkpoint_path):
            say("the run is trained to its end but was not made explorer-ready (interrupted?); finishing it now")
            print(finish_run(trainer.checkpoint_path, data, str(trainer.device), say))
            return 0
        if trainer.step >= trainer.total_steps:
            raise CliError(f"{trainer.run_dir} is already trained to step {trainer.step} of {trainer.total_steps}; "
                           f"pass a larger --max-steps or --epochs to continue")
        callbacks.attach(trainer)
        try:
            with stop_on_interrupt(callbacks):
                checkpoint = trainer.run()
        finally:
            callbacks.close()
        if trainer.world > 1:
            check_replicas_agree(trainer)
    if trainer.rank == 0 and checkpoint is not None:
        print(finish_run(checkpoint, data, str(trainer.device), say))
    return 0


def is_explorer_ready(checkpoint: Path) -> bool:
    """Whether finish_run completed on this checkpoint (it always records the attribute list, maybe empty)."""
    return ATTRIBUTES in load_checkpoint_meta(checkpoint)


def cmd_train(args: argparse.Namespace) -> int:
    folder = existing_path(args.data, "data folder")
    run_dir = output_path(args.out)
    if run_dir.resolve() == folder.resolve() or folder.resolve() in run_dir.resolve().parents:
        raise CliError(f"--out {run_dir} is inside the data folder {folder}; its previews would become training "
                       f"pictures. Choose a run folder outside it")
    writable_folder(run_dir)
    if (run_dir / CHECKPOINT_NAME).exists():
        raise CliError(f"{run_dir} already holds a training run; continue it with 'vaegan resume {run_dir}' "
                       f"or choose another --out")
    model_cfg = ModelConfig(image_size=args.image_size, latent_dim=args.latent_dim, width=args.width,
                            kernel_size=args.kernel_size, model_type=args.model, decoder_width=args.decoder_width,
                            spectral_norm=args.spectral_norm)
    init_from = None
    if args.init_from:
        init_from = str(existing_path(args.init_from, "model file"))
        model_cfg = replace(pretrained_architecture(Path(init_from), args.model), spectral_norm=args.spectral_norm)
    train_cfg = TrainConfig(**{**given_options(args), "init_from": init_from})
    resolve_device(train_cfg.device)
    data = load_folder(folder, model_cfg.image_size, args.crop, args.attributes)
    return train_to_end(lambda cb: Trainer(data, run_dir, model_cfg, train_cfg, cb), train_cfg.device, data)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given on the command line (resume leaves unset ones as they were)."""
    values = {option.name: getattr(args, option_dest(option), None) for option in TRAIN_OPTIONS}
    return {name: value == "on" if OPTIONS_BY_NAME[name].kind is bool else value
            for name, value in values.items() if value is not None}


def pretrained_architecture(path: Path, model_type: str) -> ModelConfig:
    """The architecture of the model a run starts from (it overrides --image-size, --width and the like)."""
    meta = load_checkpoint_meta(find_checkpoint_in(path) if path.is_dir() else path)
    try:
        cfg = ModelConfig.from_dict({**meta[MODEL_CONFIG], "model_type": model_type})
    except (KeyError, TypeError, ValueError) as exc:
        raise CliError(f"{path}: records no usable architecture ({one_line(exc)})") from exc
    say(f"starting Enc and Dec from {path}: {cfg.image_size}px, latent {cfg.latent_dim}, width {cfg.width}, "
        f"kernel {cfg.kernel_size}")
    return cfg


def cmd_resume(args: argparse.Namespace) -> int:
    run_dir = existing_path(args.run, "run folder")
    if not run_dir.is_dir():
        raise CliError(f"{run_dir}: not a run folder (give the folder that holds {CHECKPOINT_NAME})")
    _, meta, _ = validated_meta(run_dir / CHECKPOINT_NAME, training=True)
    recorded = args.data or (meta.get(DATA) or {}).get("folder")
    if not recorded:
        raise CliError(f"{run_dir / CHECKPOINT_NAME} does not record its data folder; pass --data FOLDER")
    folder = existing_path(recorded, "data folder (moved? pass --data FOLDER)")
    data = read_with_progress(folder, lambda progress: load_run_data(meta, folder, args.attributes, progress=progress))
    overrides = given_options(args)
    if "epochs" in overrides:
        overrides["max_steps"] = None
    if ("epochs" in overrides or "max_steps" in overrides) and "max_minutes" not in overrides:
        overrides["max_minutes"] = None   # a new length in steps replaces a plan in minutes
    device_name = args.device or (meta.get(TRAIN_CONFIG) or {}).get("device", "auto")
    resolve_device(device_name)
    return train_to_end(lambda cb: Trainer.from_run(run_dir, data, cb, **overrides), device_name, data)


# ----------------------------------------------------------------------------------------- model commands


def fit_settings(args: argparse.Namespace) -> FitSettings:
    """Each face fitted (latent optimisation, then pivotal tuning), or with --fast the encoder's mean alone."""
    return FAST if args.fast else FitSettings()


def readable_pictures(paths: Sequence[str], model: Model,
                      crop: str | None) -> tuple[list[tuple[str, list[PreparedImage]]], list[str]]:
    """(stem, faces) of each picture with a face, and a line for each one skipped (unreadable, no face). Raises
    the picture's own error when none is usable, so a single bad picture reads as it always did."""
    pictures, skipped, first_error = [], [], None
    for path in paths:
        try:
            pictures += read_all_faces([path], model, crop)
        except ImageLoadError as error:
            skipped.append(f"skipped {path}: {error.reason}")
            first_error = first_error or error
    if not pictures and first_error is not None:
        raise first_error
    if len({stem for stem, _ in pictures}) != len(pictures):
        raise CliError("two input images share a file name; write them to a single grid file instead")
    return pictures, skipped


def fitted_reconstructions(model: Model, pictures: list[tuple[str, list[PreparedImage]]],
                           settings: FitSettings) -> torch.Tensor:
    """Every face's reconstruction, the faces of a picture fitted together; a bar when there are many faces."""
    count = sum(len(faces) for _, faces in pictures)
    bar = tqdm(total=count, desc="fitting faces", unit="face", dynamic_ncols=True, leave=False,
               disable=True if count <= FEW_FACES or not settings.total_steps else bar_disabled(is_main_process()))
    try:
        reconstructions = []
        for _, faces in pictures:
            fit = fit_photo_faces(model, faces, settings)
            reconstructions.append(model.decode(fit.latents, tuning=fit.tuning))
            bar.update(len(faces))
    finally:
        bar.close()
    return torch.cat(reconstructions)


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """One file: model inputs above reconstructions. A folder: <name>_crop.png and <name>_recon.png per
    face (<name>_<k>_... when a picture holds several faces). Pictures without a usable face are skipped with a
    line each; exit 2 only when none is usable."""
    out = output_path(args.out)
    grid = bool(out.suffix)
    if grid:
        output_file(args.out, args.overwrite, IMAGE_SUFFIXES)
    model = open_model(args)
    pictures, skipped = readable_pictures(args.images, model, args.crop)
    names = [name for stem, faces in pictures for name in face_names(stem, len(faces))]
    crops = to_unit(torch.stack([face.pixels for _, faces in pictures for face in faces]))
    recon = fitted_reconstructions(model, pictures, fit_settings(args))
    if grid:
        written = [save_image(make_grid(torch.cat([crops, recon]), len(crops)), out, overwrite=args.overwrite)]
    else:
        targets = [(output_file(str(out / f"{name}_crop.png"), args.overwrite, IMAGE_SUFFIXES),
                    output_file(str(out / f"{name}_recon.png"), args.overwrite, IMAGE_SUFFIXES)) for name in names]
        written = [save_image(image, target, overwrite=args.overwrite)
                   for pair, images in zip(targets, zip(crops, recon)) for target, image in zip(pair, images)]
    for line in skipped:
        say(line)
    print("\n".join(map(str, written)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """A grid with a row per face (original, A's and B's reconstructions) and the mean figures of each model."""
    target = output_file(args.out, args.overwrite, IMAGE_SUFFIXES)
    first, second = open_model(args, args.model_a), open_model(args, args.model_b)
    pictures = read_all_faces(args.images, first, args.crop)
    faces = to_unit(torch.stack([face.pixels for _, found in pictures for face in found]))
    results = compare_models(first, second, faces)
    print(save_image(comparison_grid(faces, *results), target, overwrite=args.overwrite))
    count = f"{len(faces)} face" + ("s" if len(faces) != 1 else "")
    print(f"{count}; " + "; ".join(f"{r.label}: {r.mean().text()}" for r in results))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    target = output_file(args.out, args.overwrite, IMAGE_SUFFIXES)
    model = open_model(args)
    _, images = model.sample(args.rows * args.cols, temperature=args.temperature, seed=args.seed)
    print(save_image(make_grid(images, args.cols), target, overwrite=args.overwrite))
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    """A path through the latents of 2+ images: a .png strip or a .gif animation."""
    target = output_file(args.out, args.overwrite, IMAGE_SUFFIXES + (".gif",))
    if len(args.images) < 2:
        raise CliError("interpolate needs at least two images")
    model = open_model(args)
    points = model.encode(read_faces(args.images, model, args.crop))
    frames = model.decode(interpolate_path(points, args.steps, args.method))
    if target.suffix.lower() == ".gif":
        written = save_gif(frames, target, frame_ms=args.frame_ms, pingpong=args.pingpong, overwrite=args.overwrite)
    else:
        written = save_image(make_strip(frames), target, overwrite=args.overwrite)
    print(written)
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    """A keyframed .mp4 or .gif through the faces of the pictures in order (every face of a picture that holds
    several; a picture may come more than once, e.g. first and last for a loop)."""
    target = output_file(args.out, args.overwrite, tuple(VIDEO_FORMATS))
    settings = VideoSettings(fps=args.fps, seconds_per_segment=args.seconds_per_segment,
                             easing="smooth" if args.ease else "none", method=args.method, size=args.size)
    model = open_model(args)
    faces = [face for picture in faces_of(args.images, model, args.crop) for face in picture]
    if len(faces) < 2:
        raise CliError(f"path needs at least two faces; the pictures hold {len(faces)}")
    keyframes = model.encode(to_unit(torch.stack([face.pixels for face in faces])))
    bar = tqdm(total=settings.frame_count(len(faces)), desc=f"writing {target.name}", unit="frame",
               disable=bar_disabled(is_main_process()), dynamic_ncols=True, leave=False)
    try:
        written = write_video(model, keyframes, target, settings, overwrite=args.overwrite,
                              progress=lambda done, total: bar.update(done - bar.n))
    finally:
        bar.close()
    say(f"{settings.frame_count(len(faces))} frames through {len(faces)} faces")
    print(written)
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    """A photo: the whole photo with every face edited (or, with --face-only, the aligned face). A folder:
    every photo in it, into the folder --out."""
    source = existing_path(args.image, "image file or folder")
    if source.is_dir():
        return edit_folder_command(args, source)
    target = output_file(args.out, args.overwrite, IMAGE_SUFFIXES)
    model = open_model(args)
    edits = {resolve_attribute(name, list(model.attributes)): strength for name, strength in args.attribute}
    result = edit_photo(model, source, edits, args.crop, settings=fit_settings(args))
    if args.compare:
        crops = to_unit(torch.stack([face.pixels for face in result.faces]))
        picture = make_grid(torch.stack([crops, result.originals, result.edited], dim=1).flatten(0, 1), 3)
    else:
        picture = result.edited[0] if args.face_only else result.photo
    print(save_image(picture, target, overwrite=args.overwrite))
    say(f"{len(result.faces)} face" + ("s" if len(result.faces) != 1 else "") + " edited")
    return 0


def edit_folder_command(args: argparse.Namespace, folder: Path) -> int:
    if Path(args.out).suffix.lower() in IMAGE_SUFFIXES:
        raise CliError(f"{args.out}: give an output folder when editing a folder of photos")
    if args.compare:
        raise CliError("--compare edits one photo; give a photo instead of a folder")
    model = open_model(args)
    edits = {resolve_attribute(name, list(model.attributes)): strength for name, strength in args.attribute}
    bar = FolderProgress("editing")
    steps = edit_folder(model, folder, args.out, edits, args.crop, args.overwrite, settings=fit_settings(args),
                        face_only=args.face_only)
    try:
        report = run_folder_edit(steps, bar)
    finally:
        bar.close()
    what = "face crops" if args.face_only else "photos"
    say(f"{len(report.written)} {what} edited into {Path(args.out).expanduser()}")
    for relative, reason in report.skipped:
        say(f"skipped {relative}: {reason}")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    target = output_file(args.out, args.overwrite, (".csv",))
    folder = existing_path(args.folder, "image folder")
    model = open_model(args)
    progress = FolderProgress(f"reading and encoding {folder.name}")
    try:
        data, latents = encode_folder(model, folder, args.crop, progress=progress)
    finally:
        progress.close()
    say_what_was_read(folder, data)
    _, coords = fit_projection(latents, args.method, seed=args.seed)
    write_csv(target, [["name", "x", "y"], *([name, f"{x:.6g}", f"{y:.6g}"]
                                            for name, (x, y) in zip(data.names, coords.tolist()))])
    print(target)
    return 0


def write_csv(target: Path, rows: Sequence[Sequence[Any]]) -> None:
    """Write rows (the first is the header) to `target` in one atomic step."""
    try:
        save_csv(rows, target, overwrite=True)
    except OSError as exc:
        raise CliError(f"{target}: could not write ({exc.strerror or exc}); any earlier file is unchanged") from exc


def cmd_realism(args: argparse.Namespace) -> int:
    """One CSV row per face: how typical its (edited) latent is among the training faces."""
    target = output_file(args.csv, args.overwrite, (".csv",))
    model = open_model(args)
    meter = RealismMeter.of_model(model)
    if meter is None:
        raise CliError(f"{args.model}: the model stores no fitted latent Gaussian or reference map to measure "
                       "against (finish its run with 'vaegan resume', which adds them)")
    edits = {resolve_attribute(name, list(model.attributes)): strength for name, strength in args.attribute or ()}
    pictures = read_all_faces(args.images, model, args.crop)
    rows: list[list[Any]] = [["file", "face", "percentile", "inside", "nearest"]]
    for path, (stem, faces) in zip(args.images, pictures):
        latents = apply_edits(model.encode(to_unit(torch.stack([face.pixels for face in faces]))), edits,
                              model.attributes)
        for name, realism in zip(face_names(stem, len(faces)), meter.measure_many(latents)):
            rows.append([path, name, f"{realism.percentile:.1f}", str(realism.inside).lower(),
                         nearest_names(realism.nearest)])
    write_csv(target, rows)
    inside = sum(row[3] == "true" for row in rows[1:])
    say(f"{inside} of {len(rows) - 1} faces inside the region of {100 * meter.share_inside:.0f}% of the reference "
        "faces")
    print(target)
    return 0


def cmd_vectors(args: argparse.Namespace) -> int:
    """The separation and entanglement table of the model's attribute vectors."""
    target = output_file(args.csv, args.overwrite, (".csv",)) if args.csv else None
    model = open_model(args)
    if not model.attributes:
        raise CliError(NO_VECTORS)
    scores, source = vector_scores(model, args)
    names, cosines = cosine_matrix(model.attributes)
    rows: list[list[Any]] = [["attribute", "with", "without", "separation", "entangled_with"]]
    for name in sorted(model.attributes, key=str.lower):
        score = scores.get(name, Separation(0, 0, float("nan")))
        entangled = " ".join(f"{other}({cosine:+.2f})" for other, cosine in most_entangled(names, cosines, name))
        rows.append([name, score.with_count, score.without_count, f"{score.d:.2f}", entangled])
    say(f"separation: Cohen's d {source}")
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) + "  " + str(row[4]))
    if target is not None:
        write_csv(target, rows)
        say(f"wrote {target}")
    return 0


def cmd_directions(args: argparse.Namespace) -> int:
    """A traversal grid of the model's principal directions: a row per direction, around the average face."""
    target = output_file(args.out, args.overwrite, IMAGE_SUFFIXES)
    model = open_model(args)
    directions = model_directions(model, args.count)
    if directions is None:
        raise CliError(f"{args.model}: the model stores no reference map to find its principal directions in "
                       "(finish its run with 'vaegan resume', which adds one)")
    for label in directions.labels():
        say(label)
    grid = traversal_grid(model, directions, strength=args.strength, columns=args.columns)
    print(save_image(grid, target, overwrite=args.overwrite))
    return 0


def vector_scores(model: Model, args: argparse.Namespace) -> tuple[dict[str, Separation], str]:
    """Separations on --faces (the stored vectors, held-out faces) or else cross-fitted on the reference map."""
    if args.faces:
        folder = existing_path(args.faces, "image folder")
        data = load_folder(folder, model.image_size, model_crop(model, args.crop), args.attributes, min_images=2)
        if data.labels is None:
            raise CliError(f"{folder}: its pictures have no labels (a CelebA attribute file or sub-folders)")
        latents, _ = encode_images(model, data.images)
        scores = held_out_separation(model.attributes, latents, data.labels, data.label_names)
        if not scores:
            raise CliError(f"{folder}: none of its labels ({', '.join(data.label_names)}) names one of the model's "
                           "vectors")
        return scores, f"of the stored vectors on the {len(data):,} labelled faces of {folder}"
    reference = model.reference
    if reference is None or reference.labels is None:
        raise CliError(f"{args.model}: its reference map has no labels to score the vectors on; pass --faces FOLDER "
                       "with labelled faces it was not trained on")
    scores = cross_fitted_separations(reference.latents, reference.labels, reference.label_names)
    return ({name: score for name, score in scores.items() if name in model.attributes},
            f"cross-fitted on the {len(reference.latents):,} reference faces (a vector made from one half, "
            "scored on the other)")


def checkpoint_report(path: Path) -> dict[str, Any]:
    """What a checkpoint knows about itself, for `info`."""
    meta = load_checkpoint_meta(path)
    model_config_of(path, meta)
    check_model_meta(path, meta)
    data = dict(meta.get(DATA) or {})
    skipped = data.pop("skipped", [])
    if data:
        data["skipped"] = len(skipped)
    report = {"file": str(path), "kind": meta.get(KIND, "unknown"), "model_config": meta.get(MODEL_CONFIG),
              "train_config": meta.get(TRAIN_CONFIG), "training_state": meta.get(TRAINING_STATE),
              "data": data or None, "label_names": meta.get(LABEL_NAMES), "attributes": meta.get(ATTRIBUTES, []),
              "reference_map": meta.get(REFERENCE), "random_faces": meta.get(RANDOM_FACES),
              "provenance": meta.get(PROVENANCE)}
    metrics = path.parent / METRICS_NAME
    if metrics.is_file():
        report["last_metrics"] = last_metrics_record(metrics)
    return {k: v for k, v in report.items() if v is not None}


def last_metrics_record(path: Path) -> dict[str, Any] | None:
    """The last whole record of a metrics.jsonl (a line torn by a kill or a full disk is passed over)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise CliError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return record
    return None


def cmd_info(args: argparse.Namespace) -> int:
    path = existing_path(args.model, "model file or run folder")
    report = checkpoint_report(find_checkpoint_in(path) if path.is_dir() else path)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for key, value in report.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
    return 0


# ----------------------------------------------------------------------------------------- parser


class Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments in one `vaegan: error:` line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def runtime_options() -> Parser:
    p = Parser(add_help=False)
    p.add_argument("--device", default=None, help="auto, cpu, cuda[:N] or mps (default: auto)")
    p.add_argument("--threads", type=whole_number(1, max_threads()), default=None,
                   help="CPU threads for torch (default: all cores, shared among torchrun processes)")
    return p


def output_options() -> Parser:
    p = Parser(add_help=False)
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    p.add_argument("--crop", choices=CROP_MODES, default=None,
                   help="how to crop input pictures (default: auto for face models: faces found and aligned like "
                        "the training faces, aligned CelebA pictures keep their box)")
    return p


TRAIN_OPTIONS = options_of(TrainConfig)
OPTIONS_BY_NAME = {option.name: option for option in TRAIN_OPTIONS}
CLI_EXCEPTIONS: dict[str, dict[str, Any]] = {
    "batch_size": {"type": whole_number(2, MAX_BATCH_SIZE)},
    "epochs": {"type": whole_number(1, MAX_EPOCHS)},
    "max_steps": {"type": whole_number(1, MAX_STEPS)},
    "seed": {"type": whole_number(0, MAX_SEED)},
    "anneal_steps": {"metavar": "N"},
    "max_minutes": {"type": finite_number(0.01, 10**7), "metavar": "MIN"},
    "anneal_share": {"type": finite_number(0, 0.99), "metavar": "SHARE"},
    "checkpoint_interval_s": {"flag": "--checkpoint-interval", "type": finite_number(1, 10**7), "metavar": "SECONDS"},
    "num_threads": {"flag": "--threads"},
    "init_from": {"metavar": "MODEL"},
    "discriminator_warmup_steps": {"flag": "--discriminator-warmup", "metavar": "N"},
    "ema_decay": {"metavar": "D"},
    "augment": {"metavar": "OPS"},
    "r1_weight": {"flag": "--r1", "metavar": "GAMMA"},
    "lowpass_sigma": {"metavar": "SIGMA"},
    "equilibrium_rule": {"flag": "--equilibrium"},
}
"""The TrainConfig fields whose flag is not generated plainly: short flag names kept from before, and bounds that
argparse checks (a huge number is one line before any picture is read). Every other field gets --its-name, its
type, its default and its docstring as help; a bool field is `on` or `off`."""
SHARED_OPTIONS = ("device", "num_threads")
"""Fields set by runtime_options, which every command shares."""
LENGTH_OPTIONS = ("epochs", "max_steps")
"""Two ways to say how long a run is: give one."""
START_OPTIONS = ("batch_size", "seed", "beta1", "init_from", "discriminator_warmup_steps", "freeze_encoder")
"""Fields fixed when a run starts: resume does not offer them."""


def option_flag(option: Option) -> str:
    return CLI_EXCEPTIONS.get(option.name, {}).get("flag", "--" + option.name.replace("_", "-"))


def option_dest(option: Option) -> str:
    return option_flag(option).removeprefix("--").replace("-", "_")


def add_training_options(p: argparse.ArgumentParser, resume: bool = False) -> None:
    """A flag for every TrainConfig field (README, "Developer notes"); resume's default to the run's own values."""
    group = p.add_argument_group("training" + (" (default: as the run was started)" if resume else ""))
    length = group.add_mutually_exclusive_group()
    for option in TRAIN_OPTIONS:
        if option.name in SHARED_OPTIONS or (resume and option.name in START_OPTIONS):
            continue
        settings = {key: value for key, value in CLI_EXCEPTIONS.get(option.name, {}).items() if key != "flag"}
        default = option.default
        if option.kind is bool:
            settings["choices"], default = ("on", "off"), "on" if option.default else "off"
        shown = not resume and default not in (None, "")
        (length if option.name in LENGTH_OPTIONS else group).add_argument(
            option_flag(option), **{"type": str if option.kind is bool else option.kind, **settings},
            default=None if resume else default,
            help=option.help.replace("%", "%%") + (" (default %(default)s)" if shown else ""))


def add_train_parser(sub: Any, runtime: Parser) -> None:
    p = sub.add_parser("train", parents=[runtime], help="train a new model on a folder of faces")
    p.add_argument("data", metavar="DATA", help="folder of face pictures (sub-folders become labels)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder for the checkpoint and metrics")
    p.add_argument("--crop", choices=CROP_MODES, default="auto",
                   help="auto (default): aligned CelebA pictures and model-sized squares keep their framing, "
                        "faces in any other picture are found and aligned; pictures without a face are skipped")
    p.add_argument("--attributes", metavar="FILE", help="CelebA list_attr_celeba.txt with labels")
    model = p.add_argument_group("model (ModelConfig)")
    model.add_argument("--image-size", type=int, default=64, choices=SUPPORTED_IMAGE_SIZES)
    model.add_argument("--latent-dim", type=int, default=ModelConfig.latent_dim)
    model.add_argument("--width", type=float, default=ModelConfig.width, help="channel multiplier (1.0 = the paper's)")
    model.add_argument("--kernel-size", type=int, default=ModelConfig.kernel_size, choices=(4, 5),
                       help="5 = the paper's; 4 avoids checkerboard artifacts")
    model.add_argument("--model", choices=MODEL_TYPES, default="vaegan")
    model.add_argument("--decoder-width", type=float, default=ModelConfig.decoder_width, metavar="M",
                       help="decoder channels relative to --width (Enc and Dis keep --width; default 1)")
    model.add_argument("--spectral-norm", action="store_true",
                       help="spectral normalisation in Dis, in place of its batch norms")
    add_training_options(p)
    p.set_defaults(handler=cmd_train)


def add_resume_parser(sub: Any, runtime: Parser) -> None:
    p = sub.add_parser("resume", parents=[runtime], help="continue a run from its checkpoint")
    p.add_argument("run", metavar="RUN", help="run folder written by 'vaegan train'")
    p.add_argument("--data", help="the data folder, if it moved since training")
    p.add_argument("--attributes", metavar="FILE", help="the CelebA attribute file, if it moved since training")
    add_training_options(p, resume=True)
    p.set_defaults(handler=cmd_resume)


def add_fast_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fast", action="store_true",
                   help="use the encoder's guess alone: instant, but a look-alike (by default each face is fitted: its "
                        "latent optimised, then the decoder tuned around it, a few seconds a face)")


ATTRIBUTE_HELP = (f"an attribute vector and how far to move along it, from -{MAX_STRENGTH:g} to {MAX_STRENGTH:g} "
                  "(repeatable): a name as 'vaegan info' lists it or the app shows it, any case, e.g. Smiling=1 or "
                  "\"Blond Hair=-0.5\"")


def add_model_parsers(sub: Any, runtime: Parser, output: Parser) -> None:
    both = [runtime, output]
    p = sub.add_parser("reconstruct", parents=both, help="encode and decode pictures")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", required=True, metavar="FILE_OR_DIR",
                   help="an image file (originals above reconstructions) or a folder (one file per image)")
    add_fast_option(p)
    p.set_defaults(handler=cmd_reconstruct)

    p = sub.add_parser("compare", parents=both, help="reconstruct the same pictures with two models: a row per "
                                                     "face (original, A, B) and each model's mean figures")
    p.add_argument("model_a", metavar="MODEL_A")
    p.add_argument("model_b", metavar="MODEL_B")
    p.add_argument("images", nargs="+", metavar="PICTURE", help="pictures, aligned by MODEL_A's rule (--crop)")
    p.add_argument("--out", required=True, metavar="FILE", help="the grid image (.png or .jpg)")
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser("sample", parents=both, help="decode random faces into a grid")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--rows", type=whole_number(1, MAX_GRID_SIDE), default=4)
    p.add_argument("--cols", type=whole_number(1, MAX_GRID_SIDE), default=8)
    p.add_argument("--temperature", type=finite_number(0, MAX_TEMPERATURE), default=DEFAULT_SAMPLE_TEMPERATURE,
                   help="spread of the random latents around where the model's faces lie: 1 matches the "
                        "training faces, lower gives more typical faces (default %(default)s, as in the app)")
    p.add_argument("--seed", type=whole_number(0, MAX_SEED), default=0)
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("interpolate", parents=both, help="morph through the latents of two or more pictures")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="two or more pictures, visited in order")
    p.add_argument("--out", required=True, metavar="FILE", help=".png strip or .gif animation")
    p.add_argument("--steps", type=whole_number(2, MAX_PATH_STEPS), default=8,
                   help="images along the whole path, ends included")
    p.add_argument("--method", choices=("linear", "slerp"), default="linear")
    p.add_argument("--frame-ms", type=whole_number(MIN_FRAME_MS, 60_000), default=80)
    p.add_argument("--pingpong", action="store_true", help="play the GIF forwards then backwards")
    p.set_defaults(handler=cmd_interpolate)

    p = sub.add_parser("path", parents=both, help="a keyframed video (.mp4 or .gif) through the faces of pictures")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("images", nargs="+", metavar="PICTURE",
                   help="two or more faces, visited in order (a picture with several faces gives each in turn)")
    p.add_argument("--out", required=True, metavar="FILE", help=".mp4 (H.264) or .gif")
    p.add_argument("--fps", type=whole_number(MIN_FPS, MAX_FPS), default=VideoSettings.fps,
                   help="frames per second (default %(default)s; a GIF plays at most 50)")
    p.add_argument("--seconds-per-segment", type=finite_number(MIN_SECONDS, MAX_SECONDS),
                   default=VideoSettings.seconds_per_segment, metavar="SECONDS",
                   help="time from one face to the next (default %(default)s)")
    p.add_argument("--ease", action="store_true", help="slow down near each face and speed up between them")
    p.add_argument("--method", choices=METHODS, default=VideoSettings.method,
                   help="slerp (default) keeps the latents' length; linear moves in a straight line")
    p.add_argument("--size", type=whole_number(MIN_SIZE, MAX_SIZE), default=VideoSettings.size,
                   help="frame width and height in pixels (default %(default)s)")
    p.set_defaults(handler=cmd_path)

    p = sub.add_parser("edit", parents=both, help="move the faces of a photo (or a folder of photos) along "
                                                  "attribute vectors")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("image", metavar="PHOTO_OR_FOLDER")
    p.add_argument("--attribute", type=parse_edit, action="append", required=True, metavar="NAME=STRENGTH",
                   help=ATTRIBUTE_HELP)
    p.add_argument("--out", required=True, metavar="FILE_OR_FOLDER",
                   help="the edited photo, its own size (a folder when editing a folder: same names inside)")
    p.add_argument("--face-only", action="store_true",
                   help="write the edited face crop instead of the whole photo (for a folder: every face's crop)")
    add_fast_option(p)
    p.add_argument("--compare", action="store_true",
                   help="write each face's crop, reconstruction and edit side by side (a row per face)")
    p.set_defaults(handler=cmd_edit)

    p = sub.add_parser("project", parents=both, help="2D map of a folder's latents as name,x,y CSV")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--out", required=True, metavar="FILE.csv")
    p.add_argument("--method", choices=PROJECTION_METHODS, default="pca")
    p.add_argument("--seed", type=whole_number(0, MAX_SEED), default=0)
    p.set_defaults(handler=cmd_project)

    p = sub.add_parser("realism", parents=both, help="how typical each face's latent is among the training faces "
                                                     "(CSV: percentile, inside, nearest reference faces)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("images", nargs="+", metavar="PICTURE")
    p.add_argument("--attribute", type=parse_edit, action="append", metavar="NAME=STRENGTH",
                   help="measure the face after this edit (repeatable)")
    p.add_argument("--csv", required=True, metavar="FILE.csv")
    p.set_defaults(handler=cmd_realism)

    p = sub.add_parser("vectors", parents=both, help="separation and entanglement of the attribute vectors")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--csv", metavar="FILE.csv", help="also write the table as CSV")
    p.add_argument("--faces", metavar="FOLDER",
                   help="score the stored vectors on these labelled faces, which must be outside the training set "
                        "(default: cross-fitted on the model's reference map)")
    p.add_argument("--attributes", metavar="FILE", help="the CelebA attribute file for --faces (default: "
                                                        "list_attr_celeba.txt in the folder)")
    p.set_defaults(handler=cmd_vectors)

    p = sub.add_parser("directions", parents=both, help="traversal grid of the principal directions of the "
                                                        "training latents (a row per direction)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--count", type=whole_number(1, MAX_GRID_SIDE), default=DEFAULT_COUNT,
                   help="directions, largest variance first (default %(default)s)")
    p.add_argument("--strength", type=finite_number(0.1, MAX_DIRECTION_STRENGTH), default=DEFAULT_STRENGTH,
                   help="each row goes from -S to +S standard deviations (default %(default)s)")
    p.add_argument("--columns", type=whole_number(2, MAX_GRID_SIDE), default=DEFAULT_COLUMNS,
                   help="faces per row (default %(default)s)")
    p.set_defaults(handler=cmd_directions)


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Train and use a VAE-GAN (Larsen et al. 2016) on faces.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runtime = runtime_options()
    add_train_parser(sub, runtime)
    add_resume_parser(sub, runtime)
    add_model_parsers(sub, runtime, output_options())
    p = sub.add_parser("info", help="print a checkpoint's configuration, training state and provenance")
    p.add_argument("model", metavar="MODEL_OR_RUN")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_info)
    return parser


def max_threads() -> int:
    """More torch threads than a few per core only slows training down and costs memory."""
    return 4 * (os.cpu_count() or 1)


def cpu_threads(requested: int | None) -> int:
    """--threads, else this process's share of all cores (torchrun starts several); unlike the GUI,
    the headless CLI has no interface thread to keep a core free for."""
    if requested is not None:
        return requested
    return max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def main(argv: Sequence[str] | None = None) -> int:
    code = run_command(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        leave_torchrun_worker(code)
    return code


def leave_torchrun_worker(code: int) -> NoReturn:
    """End a torchrun worker without interpreter finalisation. After a finished run, gloo's transport
    threads can still be joinable when C++ static objects are destroyed, and the process then aborts
    ("terminate called without an active exception") although its work is done and saved."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cli_wording(message: str) -> str:
    """A core error message as the CLI user acts on it: overwriting is --overwrite, not overwrite=True."""
    for hint in OVERWRITE_HINTS:
        message = message.replace(hint, "pass --overwrite")
    return message


def quiet_broken_pipe() -> int:
    """The reader of stdout has gone: end quietly, with stdout on devnull so the flush at exit cannot fail again
    (https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def run_command(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already reported in one line
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        torch.set_num_threads(cpu_threads(getattr(args, "threads", None)))
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here rather than as "Exception ignored" at exit
        return code
    except BrokenPipeError:
        return quiet_broken_pipe()
    except NoFaceError as exc:
        print(f"{PROG}: error: {one_line(exc)} (--crop center uses the middle of the picture instead)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except USER_ERRORS as exc:
        print(f"{PROG}: error: {cli_wording(one_line(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print(f"{PROG}: error: out of memory (ask for fewer or smaller pictures, or a smaller batch)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place a bug becomes a line rather than a traceback
        if os.environ.get("VAEGAN_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {one_line(exc)} (set VAEGAN_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
