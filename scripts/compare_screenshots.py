"""Screenshots of View ▸ Compare with the pixel VAE (docs/screenshots/compare_*.png).

    xvfb-run -s "-screen 0 1024x640x24" .venv/bin/python scripts/compare_screenshots.py PICTURE [MODEL]

Opens the model (default: the bundled one) beside its pixel-VAE twin, reconstructs the picture's faces
(compare_reconstruct.png) and edits its first face with Smiling +1.5 and Eyeglasses +1.5 (compare_attributes.png).
--root-shot also saves the whole X screen (`import -window root`). Settings go to a temporary file.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.app import launch  # noqa: E402
from explorer.settings import SETTINGS_ENV  # noqa: E402
from scripts.quality_screenshots import SHOTS, wait_until  # noqa: E402

EDITS = {"Smiling": 1.5, "Eyeglasses": 1.5}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("picture")
    parser.add_argument("model", nargs="?", default=str(ROOT / "checkpoints" / "faces64.safetensors"))
    parser.add_argument("--size", default="1024x640")
    parser.add_argument("--out", default=str(SHOTS))
    parser.add_argument("--root-shot", action="store_true")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    return args


def main() -> int:
    args = parse_arguments()
    os.environ[SETTINGS_ENV] = str(Path(tempfile.mkdtemp()) / "settings.ini")
    picture = Path(args.picture)

    def save(name: str) -> None:
        wait_until(app, lambda: False, timeout_s=0.5)
        window.grab().save(str(Path(args.out) / f"compare_{name}.png"))
        if args.root_shot:
            subprocess.run(["import", "-window", "root", str(Path(args.out) / f"compare_{name}_screen.png")],
                           check=True)

    app, window, _ = launch([args.model, "--panel", "reconstruct", "--images", str(picture)])
    window.resize(*map(int, args.size.split("x")))
    window.show()
    wait_until(app, lambda: window.selection.model is not None and not window.loading)
    window.compare_twin_action.trigger()
    wait_until(app, lambda: window.selection.compare_model is not None)
    recon = window.panels["reconstruct"]
    wait_until(app, lambda: recon.items and all(i.result is not None and i.result.compared is not None
                                                for i in recon.items))
    save("reconstruct")
    attributes = window.panels["attributes"]
    window.use_pictures([picture], "attributes")
    wait_until(app, lambda: attributes.face is not None and attributes.face.source == str(picture))
    window.show_panel("attributes")
    attributes.set_strengths(EDITS)
    attributes.flush()
    save("attributes")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
