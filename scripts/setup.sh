#!/usr/bin/env bash
# Set up .venv for development and CI: torch first (the pinned build, else the pyproject range),
# then this project in editable mode with its test extras. Safe to run again: when nothing changed
# since the last successful run it only checks and returns in about a second.
set -euo pipefail

SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SELF")/.."
VENV=.venv
PY="$VENV/bin/python"
TORCH_PIN="torch==2.13.0"
STAMP="$VENV/.vaegan-setup"

say() { echo "setup: $*"; }

# Package versions from installed metadata: importing torch just to ask would cost seconds.
version_of() { "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null; }

create_venv() {
    if [[ -x "$PY" ]]; then
        say "using existing $VENV ($("$PY" --version 2>&1))"
    else
        say "creating $VENV with $(python3 --version 2>&1)"
        python3 -m venv "$VENV"
    fi
}

install_torch() {
    if version_of torch >/dev/null; then
        say "torch $(version_of torch) already installed"
        return
    fi
    say "installing $TORCH_PIN"
    if ! "$PY" -m pip install --quiet "$TORCH_PIN"; then
        local range
        range=$(grep -o '"torch[^"]*"' pyproject.toml | tr -d '"')
        say "$TORCH_PIN is not available here; installing ${range} from pyproject.toml"
        "$PY" -m pip install --quiet "$range"
    fi
}

# Debian/Ubuntu packages for the shared libraries Qt's platform plugins may miss: offscreen (tests, screenshots)
# and xcb (the app's window on X11; libxcb-cursor0 is the one minimal systems most often lack).
declare -A DEBIAN_PACKAGE_OF=(
    [libEGL.so.1]=libegl1 [libGL.so.1]=libgl1 [libOpenGL.so.0]=libopengl0 [libGLX.so.0]=libglx0
    [libGLdispatch.so.0]=libglvnd0 [libxkbcommon.so.0]=libxkbcommon0 [libfontconfig.so.1]=libfontconfig1
    [libfreetype.so.6]=libfreetype6 [libpng16.so.16]=libpng16-16 [libdbus-1.so.3]=libdbus-1-3
    [libglib-2.0.so.0]=libglib2.0-0 [libgthread-2.0.so.0]=libglib2.0-0
    [libX11.so.6]=libx11-6 [libX11-xcb.so.1]=libx11-xcb1 [libxcb.so.1]=libxcb1
    [libxkbcommon-x11.so.0]=libxkbcommon-x11-0 [libxcb-cursor.so.0]=libxcb-cursor0 [libxcb-icccm.so.4]=libxcb-icccm4
    [libxcb-image.so.0]=libxcb-image0 [libxcb-keysyms.so.1]=libxcb-keysyms1 [libxcb-randr.so.0]=libxcb-randr0
    [libxcb-render.so.0]=libxcb-render0 [libxcb-render-util.so.0]=libxcb-render-util0
    [libxcb-shape.so.0]=libxcb-shape0 [libxcb-shm.so.0]=libxcb-shm0 [libxcb-sync.so.1]=libxcb-sync1
    [libxcb-util.so.1]=libxcb-util1 [libxcb-xfixes.so.0]=libxcb-xfixes0 [libxcb-xkb.so.1]=libxcb-xkb1
    [libxcb-xinerama.so.0]=libxcb-xinerama0 [libxcb-xinput.so.0]=libxcb-xinput0
)
QT_PLUGINS=(libqoffscreen.so libqxcb.so)

# The libraries the platform plugins link to that the loader cannot find (ldd follows them transitively;
# a library hidden behind a missing one shows up on the next run, after that one is installed).
missing_qt_libraries() {
    local platforms plugin
    platforms=$("$PY" -c 'import pathlib, PySide6; print(pathlib.Path(PySide6.__file__).parent / "Qt/plugins/platforms")' \
        2>/dev/null || true)
    [[ -n "$platforms" ]] || return 0
    for plugin in "${QT_PLUGINS[@]}"; do
        [[ -f "$platforms/$plugin" ]] && ldd "$platforms/$plugin" | awk '/not found/ {print $1}'
    done | sort -u
}

install_qt_system_libraries() {
    command -v ldd >/dev/null || return 0
    local missing packages=() lib
    missing=$(missing_qt_libraries)
    [[ -n "$missing" ]] || { say "Qt platform plugins (offscreen, xcb): all system libraries present"; return 0; }
    for lib in $missing; do
        [[ -n "${DEBIAN_PACKAGE_OF[$lib]:-}" ]] && packages+=("${DEBIAN_PACKAGE_OF[$lib]}")
    done
    mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u | sed '/^$/d')
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null && (( ${#packages[@]} )); then
        say "installing system libraries for Qt: ${packages[*]}"
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
        missing=$(missing_qt_libraries)
        [[ -z "$missing" ]] || say "warning: Qt still misses: $(echo $missing)"
    else
        say "warning: Qt's platform plugins miss these system libraries: $(echo $missing)"
        if (( ${#packages[@]} )); then
            say "  the app cannot open its window until you run: sudo apt-get install ${packages[*]}"
        fi
    fi
}

setup_fingerprint() {
    cat pyproject.toml "$SELF" | sha256sum | cut -d' ' -f1
}

installed() {
    local package
    for package in vaegan-explorer torch pytest pytest-qt; do
        version_of "$package" >/dev/null || return 1
    done
}

create_venv
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(setup_fingerprint)" ]] && installed; then
    say "already set up (pyproject.toml unchanged since the last run)"
else
    install_torch
    say "installing vaegan-explorer (editable) with test extras"
    "$PY" -m pip install --quiet -e ".[test]"
    setup_fingerprint > "$STAMP"
fi
install_qt_system_libraries
say "done: torch $(version_of torch), vaegan-explorer $(version_of vaegan-explorer)"
