"""Recipe ablation: which training levers buy quality per step (figures, not a test).

Every arm trains the bundle's recipe (scripts/train_bundled.sh) with one change, from the same seed, on the same
faces, for the same number of steps (--steps) or minutes (--minutes, on a machine of one's own such as a GPU), then
is scored on held-out faces by benchmarks/quality.py's measures and judge, after its batch-norm statistics are
measured as every finished run's are (core.pipeline.measure_batch_norm). On a shared CPU give steps: each arm's own
images/s is reported beside it and an arm that costs more per step must win by more than its cost. Runs are
checkpointed and resumable: run the same command again and finished arms are skipped, a stopped one continues.
Writes the arms-by-measures table, throughputs and a figure of every arm's reconstructions and random faces to
--out, between markers that keep the findings written around them. --side-by-side trains (then scores) every arm
in its own process at once.

    python benchmarks/recipe.py --train data/celeba64_train --faces data/faces64 \\
        --attributes ../shared/data/celeba/list_attr_celeba.txt --steps 800 --runs runs/recipe --out docs/recipe.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import torch  # noqa: E402

import quality  # noqa: E402
from core.api import load_model  # noqa: E402
from core.checkpoint import load_checkpoint_meta  # noqa: E402
from core.data import load_image_folder  # noqa: E402
from core.dataset import to_unit  # noqa: E402
from core.export import save_image  # noqa: E402
from core.model import ModelConfig  # noqa: E402
from core.pipeline import BATCH_NORM_FACES, measure_batch_norm, spread  # noqa: E402
from core.trainer import CHECKPOINT_NAME, METRICS_NAME, Trainer, TrainConfig  # noqa: E402

BUNDLE_MODEL = dict(image_size=64, latent_dim=128, width=0.25, kernel_size=4)
BUNDLE_TRAINING = dict(batch_size=64, gamma=0.025, kl_weight=0.5, seed=3, lr=3e-4)
ANNEAL_SHARE = 3000 / 14000
"""The bundle anneals over its last 3,000 of 14,000 steps; every arm anneals over the same share of its budget."""
ALL_AUGMENTATIONS = "color,translation,cutout"


@dataclass(frozen=True)
class Arm:
    name: str
    what: str
    model: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)


ARMS = (
    Arm("baseline", "the bundle's recipe (scripts/train_bundled.sh before this change)"),
    Arm("baseline_seed4", "the same with seed 4: how far the measures move by chance", training=dict(seed=4)),
    Arm("ema", "+ EMA of Enc and Dec, decay 0.999", training=dict(ema_decay=0.999)),
    Arm("diffaugment", "+ DiffAugment (colour, translation, cutout) on all Dis sees",
        training=dict(augment=ALL_AUGMENTATIONS)),
    Arm("translation_cutout", "+ DiffAugment without colour (translation, cutout)",
        training=dict(augment="translation,cutout")),
    Arm("sn", "+ spectral normalisation in Dis (its batch norms removed)", model=dict(spectral_norm=True)),
    Arm("wide_decoder", "+ decoder 1.5x wider than Enc and Dis", model=dict(decoder_width=1.5)),
    Arm("combined", "+ EMA + DiffAugment + SN + 1.5x decoder", model=dict(spectral_norm=True, decoder_width=1.5),
        training=dict(ema_decay=0.999, augment=ALL_AUGMENTATIONS)),
    Arm("r1", "+ R1 penalty on reals, gamma 1 (equilibrium rule kept)", training=dict(r1_weight=1.0)),
    Arm("ema_w050", "+ EMA, all networks 2x wider (width 0.5; fits the 25 MB bundle)", model=dict(width=0.5),
        training=dict(ema_decay=0.999)),
    Arm("ema_w050_r1", "+ EMA + R1 (gamma 1), width 0.5", model=dict(width=0.5),
        training=dict(ema_decay=0.999, r1_weight=1.0)),
    Arm("ema_paper_width", "+ EMA at the paper's width (width 1; Enc alone is 69 MB in half precision)",
        model=dict(width=1.0), training=dict(ema_decay=0.999)),
    Arm("vae_w050", "the pixel-VAE twin of ema_w050 (same network and EMA, judged pixel by pixel, no Dis)",
        model=dict(width=0.5, model_type="vae"), training=dict(ema_decay=0.999)),
)
CHECKPOINT_EVERY_S = 300.0
BEGIN, END = "<!-- written by benchmarks/recipe.py -->", "<!-- end of benchmarks/recipe.py's part -->"
FIGURE_FACES = 8


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--train", required=True, type=Path, help="the training faces (ids 000001-008000)")
    parser.add_argument("--faces", required=True, type=Path,
                        help="faces64 with the held-out ids (what benchmarks/quality.py reads)")
    parser.add_argument("--attributes", required=True, type=Path, help="list_attr_celeba.txt")
    parser.add_argument("--holdout-from", type=int, default=8001)
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=int, help="training steps per arm (equal for all)")
    budget.add_argument("--minutes", type=float,
                        help="training minutes per arm instead (equal for all; for a machine of one's own, e.g. a GPU)")
    parser.add_argument("--arms", default=",".join(arm.name for arm in ARMS),
                        help="comma-separated arms to run, in order (default: all)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "recipe", help="one run folder per arm")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "recipe.md")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--side-by-side", action="store_true",
                        help="train (and score) every arm in its own process at the same time")
    parser.add_argument("--only", choices=("train", "score"),
                        help="only train the arms, or only score them (and report, with --side-by-side)")
    parser.add_argument("--edit-faces", type=int, default=500)
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache")
    return parser.parse_args()


def chosen_arms(names: str) -> list[Arm]:
    known = {arm.name: arm for arm in ARMS}
    unknown = [name for name in names.split(",") if name not in known]
    if unknown:
        raise SystemExit(f"unknown arm {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[name] for name in names.split(",")]


def training_state(run: Path) -> dict:
    if not (run / CHECKPOINT_NAME).exists():
        return {"step": 0, "total_steps": None}
    return load_checkpoint_meta(run / CHECKPOINT_NAME)["training_state"]


def steps_done(run: Path) -> int:
    return int(training_state(run)["step"])


def budget_settings(args: argparse.Namespace) -> dict:
    """The training length every arm gets: steps, or minutes with the anneal over the same share of them."""
    if args.minutes is not None:
        return dict(max_minutes=args.minutes, anneal_share=ANNEAL_SHARE, max_steps=None, anneal_steps=0)
    return dict(max_steps=args.steps, anneal_steps=round(ANNEAL_SHARE * args.steps), max_minutes=None)


def finished(run: Path, args: argparse.Namespace) -> bool:
    state = training_state(run)
    if args.minutes is not None:
        return state["total_steps"] is not None and state["step"] >= state["total_steps"]
    return state["step"] >= args.steps


def train_arm(arm: Arm, run: Path, faces, args: argparse.Namespace) -> None:
    """Train (or continue) one arm to its budget; a finished arm is left alone."""
    if finished(run, args):
        return
    settings = dict(**budget_settings(args), device=args.device, num_threads=args.threads,
                    checkpoint_interval_s=CHECKPOINT_EVERY_S)
    if (run / CHECKPOINT_NAME).exists():
        trainer = Trainer.from_run(run, faces, **settings)
    else:
        model_cfg = ModelConfig(**{**BUNDLE_MODEL, **arm.model})
        trainer = Trainer(faces, run, model_cfg, TrainConfig(**{**BUNDLE_TRAINING, **settings, **arm.training}))
    goal = f"{args.minutes:g} minutes" if args.minutes is not None else f"step {trainer.total_steps:,}"
    print(f"{arm.name}: training from step {trainer.step} for {goal}", file=sys.stderr, flush=True)
    stopping = []

    def stop(signum: int, frame: object) -> None:   # Ctrl+C or kill: save the arm where it is, then leave
        stopping.append(signum)
        trainer.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    trainer.run()
    if stopping:
        raise SystemExit(f"{arm.name}: stopped at step {trainer.step}; run the same command to continue")


def throughput(run: Path) -> dict[str, float]:
    """Median images/s over the logged windows (the first left out: it includes start-up) and training time."""
    records = [json.loads(line) for line in (run / METRICS_NAME).read_text().splitlines() if line.strip()]
    rates = [r["images_per_s"] for r in records[1:]] or [r["images_per_s"] for r in records]
    return {"images_per_s": statistics.median(rates), "elapsed_s": records[-1]["elapsed_s"]}


def score_arm(run: Path, evaluation: quality.Evaluation) -> dict:
    """quality.py's measures of one arm (cached in the run folder beside the checkpoint they belong to)."""
    cache = run / "scores.json"
    step = steps_done(run)
    if cache.exists():
        scores = json.loads(cache.read_text())
        if scores["step"] == step:
            return scores
    clock = quality.StageClock()
    model = load_model(run / CHECKPOINT_NAME, device="cpu")
    measure_batch_norm(model, evaluation.training.images[spread(BATCH_NORM_FACES, len(evaluation.training))])
    result = quality.evaluate_model(run.name, model, evaluation, clock)
    distances = quality.measure_patch_distances(evaluation, result, result)
    edits = quality.judged_edits(result, evaluation.args.strength)
    scores = {
        "step": step, **throughput(run),
        "sharpness": result.sharpness, "mse": result.mse, "agreement": result.attribute_agreement,
        "swd_recon": quality.mean_swd(distances.reconstructions["VAE-GAN"]),
        "swd_app": quality.mean_swd(distances.app_samples["VAE-GAN"]),
        "swd_prior": quality.mean_swd(distances.samples["VAE-GAN"]),
        "swd_floor": quality.mean_swd(distances.floor), "swd_blurred": quality.mean_swd(distances.blurred),
        "speckled_recon": result.speckled_reconstructions, "speckled_app": result.speckled_app_samples,
        "speckled_prior": result.speckled_samples, "checkerboard_prior": result.checkerboard_samples,
        "edits": {name: [edit.success, edit.others_stay] for name, edit in edits.items()},
    }
    torch.save({"reconstructions": result.reconstructions[:FIGURE_FACES],
                "app_samples": result.app_samples[:FIGURE_FACES]}, run / "figure_faces.pt")
    cache.write_text(json.dumps(scores, indent=1))
    return scores


def evaluation_for(args: argparse.Namespace) -> tuple[quality.Evaluation, quality.ClassifierCheck]:
    namespace = argparse.Namespace(data=args.faces, attributes=args.attributes, holdout_from=args.holdout_from,
                                   strength=1.0, extra_strengths=[], edit_faces=args.edit_faces,
                                   compute_attributes=True, seed=0)
    training, holdout = quality.load_split(args.faces, args.attributes, args.holdout_from)
    judge, origin = quality.load_or_train_judge(training, args.cache_dir, 0)
    check = quality.check_classifier(judge, origin, holdout)
    evaluation = quality.Evaluation(namespace, training, holdout, judge, quality.predict_attributes(judge,
                                                                                                  holdout.images))
    return evaluation, check


def percent(value: float, decimals: int = 0) -> str:
    return quality.percent(value, decimals)


def table(arms: list[Arm], scores: dict[str, dict]) -> list[str]:
    columns = [("sharpness ratio (recon / original)", lambda s: f"{s['sharpness']:.3f}"),
               ("patch SWD x1e3: recon", lambda s: f"{s['swd_recon']:.1f}"),
               ("patch SWD: app's random faces", lambda s: f"{s['swd_app']:.1f}"),
               ("patch SWD: prior N(0, I)", lambda s: f"{s['swd_prior']:.1f}"),
               ("speckled: recon / app / prior", lambda s: f"{percent(s['speckled_recon'], 1)} / "
                                                          f"{percent(s['speckled_app'], 1)} / "
                                                          f"{percent(s['speckled_prior'], 1)}"),
               ("pixel MSE", lambda s: f"{s['mse']:.4f}"),
               ("attribute agreement", lambda s: percent(s["agreement"])),
               *[(f"edit {name}: success / others", lambda s, name=name: f"{percent(s['edits'][name][0])} / "
                                                                         f"{percent(s['edits'][name][1])}")
                 for name in quality.KEY_ATTRIBUTES],
               ("steps", lambda s: f"{s['step']:,}"),
               ("images/s", lambda s: f"{s['images_per_s']:.1f}"),
               ("training time", lambda s: f"{s['elapsed_s'] / 60:.0f} min")]
    lines = ["| measure | " + " | ".join(arm.name for arm in arms) + " |", "| --- |" + " ---: |" * len(arms)]
    for title, cell in columns:
        lines.append(f"| {title} | " + " | ".join(cell(scores[arm.name]) for arm in arms) + " |")
    return lines


def save_figure(path: Path, arms: list[Arm], runs: Path, evaluation: quality.Evaluation) -> None:
    """Per arm: reconstructions of the first held-out faces, then random faces as the app draws them."""
    originals = to_unit(evaluation.holdout.images[:FIGURE_FACES])
    rows, labels = [torch.cat([originals, torch.ones_like(originals)])], ["held-out original"]
    for arm in arms:
        faces = torch.load(runs / arm.name / "figure_faces.pt")
        rows.append(torch.cat([faces["reconstructions"], faces["app_samples"]]))
        labels.append(arm.name)
    grid = quality.with_row_labels(quality.enlarged_grid(torch.cat(rows), 2 * FIGURE_FACES), labels)
    save_image(grid, path, overwrite=True)


def budget_words(args: argparse.Namespace) -> str:
    if args.minutes is not None:
        return (f"**{args.minutes:g} minutes of training** on {args.device}, the step count planned from each arm's "
                f"own speed and the learning rate falling to a tenth over the last {ANNEAL_SHARE:.0%} of its steps")
    return (f"**{args.steps:,} steps** ({args.steps * BUNDLE_TRAINING['batch_size']:,} images), the learning rate "
            f"falling to a tenth over the last {round(ANNEAL_SHARE * args.steps):,}")


def budget_caveat(args: argparse.Namespace) -> str:
    together = "side by side, sharing the machine" if args.side_by_side else "one after another"
    if args.minutes is not None:
        return (f"**The budget is equal in time.** The arms trained {together}, so an arm that costs more per step "
                "did fewer steps (the steps row).")
    return ("**The budget is equal in steps, not in CPU time.** The 2-core machine was shared with other jobs while "
            f"these ran, so wall-clock budgets would have measured the neighbours. Each arm's median images/s "
            f"({args.threads} torch thread(s), {together}) is reported beside it; it depends on the load at the "
            "time, so compare it between arms only roughly.")


def write_report(args: argparse.Namespace, arms: list[Arm], scores: dict[str, dict],
                 check: quality.ClassifierCheck, figure: Path, command: str) -> None:
    floor, blurred = scores[arms[0].name]["swd_floor"], scores[arms[0].name]["swd_blurred"]
    hits = ", ".join(f"{name} {percent(check.hit_rate[name])}" for name in quality.KEY_ATTRIBUTES)
    lines = [
        f"Every arm: the bundle's recipe (width {BUNDLE_MODEL['width']}, kernel {BUNDLE_MODEL['kernel_size']}, latent "
        f"{BUNDLE_MODEL['latent_dim']}, batch {BUNDLE_TRAINING['batch_size']}, gamma {BUNDLE_TRAINING['gamma']}, KL "
        f"weight {BUNDLE_TRAINING['kl_weight']}, Adam {BUNDLE_TRAINING['lr']:g}, seed {BUNDLE_TRAINING['seed']}) for "
        f"{budget_words(args)}, on the 8,000 training faces `{args.train}`, changed by one lever (the combined arm: "
        "several). Scored on the 1,000 held-out faces with `benchmarks/quality.py`'s measures and judge.", "",
        budget_caveat(args), "",
        "| arm | change |", "| --- | --- |", *[f"| {arm.name} | {arm.what} |" for arm in arms], "",
        *table(arms, scores), "",
        f"Patch SWD marks: real against real {floor:.1f}, real blurred (sigma 1 px) {blurred:.1f}. Speckled: more "
        "Nyquist energy than 99% of real faces (real faces: 1%). Edits at strength 1, the first "
        f"{args.edit_faces} held-out faces lacking the attribute, attribute vectors from 4,000 training faces. "
        f"The judge calls the attribute present on real held-out faces that have it: {hits}.", "",
        f"![reconstructions and random faces per arm]({figure.name})", "",
        f"Rows: held-out originals, then per arm their reconstructions (left {FIGURE_FACES}) and random faces "
        f"as the app draws them (right {FIGURE_FACES}), enlarged 2x.", "",
        "## Run", "", "```", command, "```", "",
        f"Finished {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='minutes')}."]
    write_generated_part(args.out, "\n".join(lines))


def write_generated_part(path: Path, generated: str) -> None:
    """Replace what lies between the markers, keeping the findings written around it (a new file gets a title)."""
    old = path.read_text(encoding="utf-8") if path.exists() else f"# Recipe ablation\n\n{BEGIN}\n{END}\n"
    if BEGIN not in old or END not in old:
        raise SystemExit(f"{path}: lacks the markers {BEGIN} ... {END}; move it aside or add them")
    head, rest = old.split(BEGIN, 1)
    path.write_text(f"{head}{BEGIN}\n{generated}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")


def side_by_side(arms: list[Arm], stage: str) -> None:
    """Run one process per arm at the same time: this script again, for one arm and one stage."""
    skipped = {"--arms": 1, "--only": 1, "--side-by-side": 0}
    base, args = [], iter(sys.argv[1:])
    for arg in args:
        if arg in skipped:
            for _ in range(skipped[arg]):
                next(args)
        else:
            base.append(arg)
    processes = [subprocess.Popen([sys.executable, __file__, *base, "--arms", arm.name, "--only", stage])
                 for arm in arms]

    def pass_on(signum: int, frame: object) -> None:   # stopped: every arm saves where it is, then this returns
        for process in processes:
            process.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, pass_on)
    failed = [arm.name for arm, process in zip(arms, processes) if process.wait() != 0]
    if failed:
        print(f"{stage} did not finish for {', '.join(failed)} (stopped or failed)", file=sys.stderr, flush=True)


def train_all(args: argparse.Namespace, arms: list[Arm]) -> None:
    faces = load_image_folder(args.train, image_size=64, crop="celeba", attributes_file=args.attributes)
    for arm in arms:   # all training first: scoring then never holds up a run
        started = time.monotonic()
        train_arm(arm, args.runs / arm.name, faces, args)
        print(f"{arm.name}: trained in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)


def main() -> None:
    args = parse_arguments()
    command = shlex.join(["python", *sys.argv])
    torch.set_num_threads(args.threads)
    arms = chosen_arms(args.arms)
    if args.side_by_side:
        for stage in ("train", "score"):
            if args.only in (None, stage):
                side_by_side(arms, stage)
        if args.only == "train":
            return
        arms = [arm for arm in arms if (args.runs / arm.name / "scores.json").exists()]
        if not arms:
            raise SystemExit("no arm was trained and scored")
    else:
        if args.only != "score":
            train_all(args, arms)
        if args.only == "train":
            return
    evaluation, check = evaluation_for(args)
    scores = {arm.name: score_arm(args.runs / arm.name, evaluation) for arm in arms}
    if args.only == "score" and not args.side_by_side:
        return
    figure = args.out.with_name(args.out.stem + "_faces.png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, arms, args.runs, evaluation)
    write_report(args, arms, scores, check, figure, command)
    print(f"wrote {args.out} and {figure}", file=sys.stderr)


if __name__ == "__main__":
    main()
