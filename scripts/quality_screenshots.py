"""Screenshots of the realism meter, the shaded sliders and the vector-quality dialog (docs/screenshots/).

    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python scripts/quality_screenshots.py [MODEL] [--size WxH]

Opens the Attributes panel on the bundled model and grabs it with Smiling and Male moved and Young held
(realism.png: the meter and each slider's shaded unsafe strengths), then with Eyeglasses past its safe range too
(realism_outside.png: the warning), and the Quality dialog once its scores are in (vector_quality.png).
--out writes elsewhere; --root-shot also saves the whole X screen (`import -window root`) of each view.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.app import launch  # noqa: E402

SHOTS = ROOT / "docs" / "screenshots"


def wait_until(app, done, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)


def save_view(app, widget, path: Path, root_shot: bool) -> None:
    """Let the widget paint, grab it to `path`; with `root_shot` also the whole X screen beside it (`_screen`)."""
    wait_until(app, lambda: False, timeout_s=0.5)
    widget.grab().save(str(path))
    if root_shot:
        subprocess.run(["import", "-window", "root", str(path.with_name(f"{path.stem}_screen.png"))], check=True)


def parse_arguments(picture: bool = False, size: str = "1280x800") -> argparse.Namespace:
    """[PICTURE] MODEL, --size WxH, --out FOLDER (made if missing), --root-shot."""
    parser = argparse.ArgumentParser()
    if picture:
        parser.add_argument("picture", type=Path)
    parser.add_argument("model", nargs="?", default=str(ROOT / "checkpoints" / "faces64.safetensors"))
    parser.add_argument("--size", default=size)
    parser.add_argument("--out", default=str(SHOTS))
    parser.add_argument("--root-shot", action="store_true")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    return args


def main() -> int:
    args = parse_arguments()
    out = Path(args.out)

    def save(widget, name: str) -> None:
        save_view(app, widget, out / f"{name}.png", args.root_shot)

    app, window, _ = launch([args.model, "--panel", "attributes"])
    window.resize(*map(int, args.size.split("x")))
    wait_until(app, lambda: window.selection.model is not None and not window.loading)
    panel = window.panels["attributes"]
    panel.rows["Young"].hold_button.click()
    panel.set_strengths({"Smiling": 1.5, "Male": 3.0})
    panel.flush()
    save(window, "realism")
    panel.set_strengths({"Eyeglasses": 2.5})
    panel.flush()
    save(window, "realism_outside")
    dialog = panel.show_vector_quality()
    wait_until(app, lambda: dialog.scores is not None)
    save(dialog, "vector_quality")
    dialog.close()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
