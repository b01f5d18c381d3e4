"""Fault suite (figures, not a test): kill -9 and SIGTERM at random moments of training and saving, a full tmpfs
disk, and crafted checkpoints, all through the `vaegan` command as a user runs it.

Each case passes when nothing the user made is lost and every failure is one line (exit code 2) without a
traceback, within MEMORY_LIMIT_MB of peak memory. Prints one line per case, then the totals per group.

    python benchmarks/faults.py [--kills 20] [--terms 5] [--seed 0] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from PIL import Image  # noqa: E402

from conftest import synthetic_face  # noqa: E402
from core.checkpoint import CheckpointError, load_model_checkpoint  # noqa: E402
from core.trainer import CHECKPOINT_NAME, METRICS_NAME  # noqa: E402

MEMORY_LIMIT_MB = 2560
CHECKPOINT_INTERVAL_S = 3.0
TINY = ("--batch-size", "8", "--width", "0.125", "--latent-dim", "8", "--kernel-size", "4", "--device", "cpu",
        "--crop", "none", "--threads", "1")


@dataclass
class Outcome:
    group: str
    case: str
    status: str   # passed, FAILED or skipped
    detail: str = ""
    peak_mb: float = 0.0


def vaegan(*args: object) -> list[str]:
    return [sys.executable, "-m", "core.cli", *map(str, args)]


def environment(work: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(work / "cache")}


def run_measured(command: list[str], work: Path, timeout_s: float = 600) -> tuple[int, str, float]:
    """Exit code, stderr and peak resident memory (MB) of one command."""
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, cwd=ROOT, env=environment(work), stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return process.returncode, err.read(), usage.ru_maxrss / 1024


def one_line_error(code: int, err: str, *names: object) -> str | None:
    """Why stderr is not one `vaegan: error:` line naming `names` with exit code 2, or None."""
    lines = err.strip().splitlines()
    if code != 2:
        return f"exit code {code}"
    if "Traceback" in err:
        return "traceback"
    if not lines or not lines[-1].startswith("vaegan: error: "):
        return f"last line {lines[-1:]!r}"
    missing = [str(n) for n in names if str(n) not in lines[-1]]
    return f"message does not name {missing}" if missing else None


def make_faces(folder: Path, count: int = 64) -> Path:
    """Generated faces in two labelled sub-folders (so runs also store attribute vectors)."""
    for i in range(count):
        sub = folder / ("smiling" if i % 2 else "neutral")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(synthetic_face(i)).save(sub / f"{i:03d}.png")
    return folder


def last_metrics_step(run: Path) -> int:
    steps = []
    for line in (run / METRICS_NAME).read_text(errors="replace").splitlines() if (run / METRICS_NAME).exists() else []:
        try:
            steps.append(int(json.loads(line)["step"]))
        except (ValueError, KeyError, TypeError):
            pass
    return max(steps, default=0)


def checkpoint_step(run: Path) -> int:
    return int(load_model_checkpoint(run / CHECKPOINT_NAME, training=True).checkpoint.meta["training_state"]["step"])


def start_training(run: Path, faces: Path, work: Path) -> subprocess.Popen:
    command = vaegan("resume", run, "--max-steps", 10**6, "--threads", 1,
                     "--checkpoint-interval", CHECKPOINT_INTERVAL_S) if (run / CHECKPOINT_NAME).exists() else \
        vaegan("train", faces, "--out", run, "--max-steps", 10**6, "--checkpoint-interval", CHECKPOINT_INTERVAL_S, *TINY)
    return subprocess.Popen(command, cwd=ROOT, env=environment(work), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def wait_for_training(process: subprocess.Popen) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("training on"):
            return


def kill_cases(faces: Path, work: Path, count: int, rng: random.Random) -> list[Outcome]:
    """kill -9 at random moments, every other one in the middle of a checkpoint save: the checkpoint must load,
    and the training time since it was written (or since training started) is what the kill lost."""
    run, outcomes = work / "killed", []
    leftovers = 0
    for index in range(count):
        process = start_training(run, faces, work)
        wait_for_training(process)
        started = time.time()
        during_save = index % 2 == 1
        if during_save:
            wait_for_a_save_to_begin(run, timeout_s=4 * CHECKPOINT_INTERVAL_S)
        else:
            time.sleep(rng.uniform(0.2, 3 * CHECKPOINT_INTERVAL_S))
        process.kill()
        killed = time.time()
        process.communicate()
        leftovers += len(list(run.glob(".*.tmp")))
        case = f"kill -9 #{index + 1}" + (" during a save" if during_save else "")
        try:
            step = checkpoint_step(run)
        except CheckpointError as exc:
            outcomes.append(Outcome("kill -9", case, "FAILED", f"checkpoint unusable: {exc}"))
            continue
        lost_s = killed - max(started, (run / CHECKPOINT_NAME).stat().st_mtime)
        limit_s = CHECKPOINT_INTERVAL_S + 2   # one interval, and a save that may stretch it
        outcomes.append(Outcome("kill -9", case, "passed" if lost_s <= limit_s else "FAILED",
                                f"checkpoint at step {step} loads; lost {lost_s:.1f} s of training "
                                f"({max(0, last_metrics_step(run) - step)} recorded steps)"))
    process = start_training(run, faces, work)   # the next start cleans what the kills left
    wait_for_training(process)
    process.send_signal(signal.SIGTERM)
    process.communicate()
    remaining = len(list(run.glob(".*.tmp")))
    outcomes.append(Outcome("kill -9", "temporary files removed at the next start", "FAILED" if remaining else "passed",
                            f"{leftovers} left by the kills, {remaining} after the next start"))
    return outcomes


def wait_for_a_save_to_begin(run: Path, timeout_s: float) -> None:
    """Until a checkpoint's temporary file appears (polled every millisecond), or the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not any(run.glob(f".{CHECKPOINT_NAME}.*.tmp")):
        time.sleep(0.001)


def term_cases(faces: Path, work: Path, count: int, rng: random.Random) -> list[Outcome]:
    """SIGTERM, SIGHUP and SIGINT at random moments: exit 0, and the checkpoint holds every recorded step."""
    run, outcomes = work / "terminated", []
    signals = [signal.SIGTERM, signal.SIGHUP, signal.SIGINT]
    for index in range(count):
        signum = signals[index % len(signals)]
        process = start_training(run, faces, work)
        wait_for_training(process)
        time.sleep(rng.uniform(0.2, 2 * CHECKPOINT_INTERVAL_S))
        process.send_signal(signum)
        _, err = process.communicate(timeout=600)
        saved, recorded = checkpoint_step(run), last_metrics_step(run)
        ok = process.returncode == 0 and "Traceback" not in err and saved >= recorded
        outcomes.append(Outcome("signals", f"{signal.Signals(signum).name} #{index + 1}", "passed" if ok else "FAILED",
                                f"exit {process.returncode}, saved step {saved}, last recorded {recorded}"))
    return outcomes


def early_interrupt_cases(faces: Path, work: Path) -> list[Outcome]:
    """Ctrl+C within the first second (while torch loads): a quiet exit 130."""
    outcomes = []
    for delay in (0.2, 0.5, 1.0):
        process = subprocess.Popen(vaegan("train", faces, "--out", work / "early", "--max-steps", 5, *TINY), cwd=ROOT,
                                   env=environment(work), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=600)
        ok = "Traceback" not in err and process.returncode in (0, 130)
        outcomes.append(Outcome("signals", f"Ctrl+C after {delay} s", "passed" if ok else "FAILED",
                                f"exit {process.returncode}: {err.strip().splitlines()[-1:]}"))
    return outcomes


def full_disk_cases(faces: Path, work: Path) -> list[Outcome]:
    """A run, a model and a CSV on a small tmpfs that is then filled: nothing existing may change."""
    disk = work / "tmpfs"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        return [Outcome("full disk", "tmpfs", "skipped", "mounting a tmpfs is not allowed here")]
    try:
        return full_disk_checks(faces, work, disk)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def full_disk_checks(faces: Path, work: Path, disk: Path) -> list[Outcome]:
    outcomes = []
    run = disk / "run"
    code, err, _ = run_measured(vaegan("train", faces, "--out", run, "--max-steps", 2, *TINY), work)
    model = run / CHECKPOINT_NAME
    csv = disk / "map.csv"
    code, err, _ = run_measured(vaegan("project", model, faces, "--out", csv), work)
    filler = disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    before = {path: path.read_bytes() for path in (model, csv, run / METRICS_NAME)}
    checks = {
        "checkpoint save": vaegan("resume", run, "--max-steps", 50, "--threads", 1),
        "project --overwrite": vaegan("project", model, faces, "--out", csv, "--overwrite"),
        "sample into the full disk": vaegan("sample", model, "--out", disk / "s.png"),
    }
    for case, command in checks.items():
        code, err, peak = run_measured(command, work)
        problem = one_line_error(code, err)
        changed = [p.name for p, data in before.items() if p.read_bytes() != data and p.suffix != ".jsonl"]
        torn = not all(line.endswith("}") for line in (run / METRICS_NAME).read_text().splitlines())
        detail = problem or ("changed " + ", ".join(changed) if changed else "torn metrics" if torn else err.strip())
        outcomes.append(Outcome("full disk", case, "FAILED" if problem or changed or torn else "passed", detail, peak))
    return outcomes


def crafted_cases(work: Path) -> list[Outcome]:
    """Every crafted checkpoint of tests/test_crafted_checkpoints.py, read by `info`, `sample` and `resume`."""
    import test_crafted_checkpoints as crafted
    from conftest import make_tiny_model
    from core.bundle import save_inference_model

    model = save_inference_model(make_tiny_model(), work / "tiny.safetensors", half_precision=False)
    faces = make_faces(work / "crafted_faces", 16)
    run = work / "crafted_run"
    subprocess.run(vaegan("train", faces, "--out", run, "--max-steps", 1, *TINY), cwd=ROOT, env=environment(work),
                   capture_output=True, check=True)
    outcomes = []
    for case, (meta_text, change, _) in crafted.INFERENCE_CASES.items():
        bad = crafted.craft(model, work / "crafted" / f"{case}.safetensors", meta_text, change)
        if change is None:  # info reads the header only; weights and shapes are for the commands that load them
            outcomes.append(refusal(f"info: {case}", vaegan("info", bad), work, bad))
        outcomes.append(refusal(f"sample: {case}", vaegan("sample", bad, "--out", work / "never.png"), work, bad))
    bad = crafted.claim_a_huge_tensor(model, work / "crafted" / "huge tensor.safetensors")
    outcomes.append(refusal("sample: a header claiming an 8 GiB tensor", vaegan("sample", bad, "--out", work / "n.png"),
                            work, bad))
    for case, (change, _) in crafted.TRAINING_CASES.items():
        copy = crafted.copy_run(run, work / "crafted_runs" / case.replace(" ", "_"))
        crafted.craft(run / CHECKPOINT_NAME, copy / CHECKPOINT_NAME, change=change)
        outcomes.append(refusal(f"resume: {case}", vaegan("resume", copy, "--max-steps", 2, "--threads", 1), work,
                                copy / CHECKPOINT_NAME))
    return outcomes


def refusal(case: str, command: list[str], work: Path, bad: Path) -> Outcome:
    """A crafted file must be refused in one line naming it, within MEMORY_LIMIT_MB."""
    code, err, peak = run_measured(command, work)
    problem = one_line_error(code, err, bad) or (f"peak {peak:.0f} MB" if peak > MEMORY_LIMIT_MB else None)
    return Outcome("crafted", case, "FAILED" if problem else "passed", problem or err.strip().splitlines()[-1][-120:],
                   peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--terms", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.keep or tempfile.mkdtemp(prefix="vaegan-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    faces = make_faces(work / "faces")
    outcomes: list[Outcome] = []
    for group in (lambda: crafted_cases(work), lambda: full_disk_cases(faces, work),
                  lambda: early_interrupt_cases(faces, work), lambda: term_cases(faces, work, args.terms, rng),
                  lambda: kill_cases(faces, work, args.kills, rng)):
        for outcome in group():
            outcomes.append(outcome)
            memory = f" [{outcome.peak_mb:.0f} MB]" if outcome.peak_mb else ""
            print(f"{outcome.status:7} {outcome.group:10} {outcome.case}: {outcome.detail}{memory}", flush=True)
    print()
    for group in dict.fromkeys(o.group for o in outcomes):
        counts = Counter(o.status for o in outcomes if o.group == group)
        print(f"{group:10} {sum(counts.values()):3} cases: {counts['passed']} passed, {counts['FAILED']} failed, "
              f"{counts['skipped']} skipped")
    counts = Counter(o.status for o in outcomes)
    peak = max((o.peak_mb for o in outcomes), default=0)
    print(f"{'total':10} {len(outcomes):3} cases: {counts['passed']} passed, {counts['FAILED']} failed, "
          f"{counts['skipped']} skipped; highest peak memory of a refused file {peak:.0f} MB")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
