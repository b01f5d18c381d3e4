"""Screenshots of the principal-direction sliders and the map projected on a vector (docs/screenshots/).

    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python scripts/directions_screenshots.py [MODEL] [--size WxH]

Opens the bundled model and grabs the Attributes panel with "Sliders: Principal directions" and PC1 and PC4 moved
(directions-WxH.png), the map coloured by the Smiling vector with its arrow (map_arrow-WxH.png) and the map with
Smiling as its x axis (map_axis-WxH.png). --root-shot also saves the whole X screen (`import -window root`).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.app import launch  # noqa: E402
from scripts.quality_screenshots import parse_arguments, save_view, wait_until  # noqa: E402


def main() -> int:
    args = parse_arguments()
    out = Path(args.out)

    def save(name: str) -> None:
        save_view(app, window, out / f"{name}-{args.size}.png", args.root_shot)

    app, window, _ = launch([args.model, "--panel", "attributes"])
    window.resize(*map(int, args.size.split("x")))
    window.show()
    wait_until(app, lambda: window.selection.model is not None and not window.loading)
    panel = window.panels["attributes"]
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("directions"))
    panel.set_strengths({"PC1": 2.0, "PC4": -1.5})
    panel.flush()
    save("directions")
    window.show_panel("map")
    map_panel = window.panels["map"]
    map_panel.colour_combo.setCurrentIndex(map_panel.colour_combo.findText("Vector: Smiling"))
    save("map_arrow")
    map_panel.axis_combo.setCurrentIndex(map_panel.axis_combo.findText("Along Smiling"))
    map_panel.frame_points()
    save("map_axis")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
