#!/usr/bin/env bash
# The offline Docker grading image of the Math Primer kit (README: "Grading with Docker").
#
#   scripts/docker_image.sh [build]   make Docker usable and build the grading image (idempotent)
#   scripts/docker_image.sh stop      stop the dockerd this script started, by its recorded PID
#   scripts/docker_image.sh status    say what is installed, running and built
#
# `build` (as root, Debian bookworm; needs only Debian's mirror and PyPI, never Docker Hub):
#   1. installs docker.io and debootstrap with apt-get if missing;
#   2. starts dockerd in the background if no daemon answers, and records its PID in
#      $RUN_DIR/dockerd.pid (only then does `stop` stop it);
#   3. installs docker-buildx (Otter builds through `docker buildx build`) from trixie's .deb,
#      fetched with `apt-get download` against a throwaway sources list and state directory:
#      the system's apt configuration is not changed;
#   4. makes the base image $ROOTFS_IMAGE: debootstrap --variant=minbase bookworm from the mirror
#      of the apt sources, then `docker import` (tarball cached);
#   5. downloads a wheelhouse of requirements.txt for the image's Python and glibc (cached), and
#      builds $GRADING_IMAGE: the base image plus a venv $VENV holding otter-grader[grading] and
#      the kit's requirements, installed offline (--network none, --no-index).
# Images already present (`docker image inspect`, labels checked) and cached files are reused.
#
# Environment: MATH_PRIMER_DOCKER_CACHE (default /var/cache/math-primer-docker) holds the rootfs
# tarball, the wheelhouse and the buildx .deb; MATH_PRIMER_DOCKER_RUN (default
# /run/math-primer-docker) holds dockerd.pid and dockerd.log; PYTHON (default python3) runs
# `pip download`.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${MATH_PRIMER_DOCKER_CACHE:-/var/cache/math-primer-docker}"
RUN_DIR="${MATH_PRIMER_DOCKER_RUN:-/run/math-primer-docker}"
PID_FILE="$RUN_DIR/dockerd.pid"
PYTHON="${PYTHON:-python3}"
SUITE=bookworm
ROOTFS_RECIPE=1 # bump when the rootfs recipe below changes
ROOTFS_IMAGE="math-primer/rootfs:$SUITE"
ROOTFS_PACKAGES=python3,python3-venv,ca-certificates,curl,unzip,dos2unix,wget # Otter's Dockerfile installs the last four
GRADING_RECIPE=2 # bump when the grading image recipe below changes
GRADING_IMAGE="math-primer/grading:latest"
VENV=/opt/math-primer/venv
LABEL_REQUIREMENTS=org.math-primer.requirements-sha256
LABEL_RECIPE=org.math-primer.recipe

say() { printf '[docker_image] %s\n' "$*" >&2; }
die() {
    printf '[docker_image] error: %s\n' "$*" >&2
    exit 1
}

docker_up() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

# The URI of the Debian archive in the apt sources (deb822 .sources files or sources.list).
debian_mirror() {
    local uri
    uri="$(
        {
            cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
                /^[[:space:]]*$/ { if (deb && uris != "" && suites ~ /(^| )'"$SUITE"'( |$)/) print uris; deb = 0; uris = ""; suites = ""; next }
                /^Types:/ { deb = ($0 ~ /(:| )deb( |$)/) }
                /^URIs:/ { uris = $2 }
                /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
                END { if (deb && uris != "" && suites ~ /(^| )'"$SUITE"'( |$)/) print uris }'
            cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                sed -e 's/\[[^]]*\]//' | awk '$1 == "deb" && $3 == "'"$SUITE"'" { print $2 }'
        } | grep -v -e security -e '^$' | head -n 1
    )"
    [ -n "$uri" ] || die "no '$SUITE' Debian archive found in /etc/apt/sources.list{,.d/}"
    printf '%s\n' "${uri%/}"
}

install_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return
    say "installing ${missing[*]} with apt-get"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

start_dockerd() {
    if docker_up; then
        say "a Docker daemon is already running: using it"
        return
    fi
    command -v dockerd >/dev/null 2>&1 || die "dockerd is not installed"
    mkdir -p "$RUN_DIR"
    say "starting dockerd (log: $RUN_DIR/dockerd.log)"
    nohup dockerd >"$RUN_DIR/dockerd.log" 2>&1 </dev/null 9>&- & # 9: the build lock, not for dockerd
    local pid=$!
    echo "$pid" >"$PID_FILE"
    for _ in $(seq 1 60); do
        if docker_up; then
            say "dockerd is up (PID $pid; stop it with: $0 stop)"
            return
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    tail -n 20 "$RUN_DIR/dockerd.log" >&2 || true
    die "dockerd (PID $pid) did not answer within 30 s; see $RUN_DIR/dockerd.log"
}

install_buildx() {
    if docker buildx version >/dev/null 2>&1; then
        return
    fi
    local mirror scratch deb
    mirror="$(debian_mirror)"
    mkdir -p "$CACHE_DIR/debs"
    deb="$(ls "$CACHE_DIR"/debs/docker-buildx_*.deb 2>/dev/null | tail -n 1 || true)"
    if [ -z "$deb" ]; then
        say "fetching trixie's docker-buildx .deb from $mirror (throwaway apt state)"
        scratch="$(mktemp -d)"
        mkdir -p "$scratch/lists/partial" "$scratch/archives/partial" "$scratch/parts" "$scratch/prefs"
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
            >"$scratch/sources.list"
        local apt_opts=(
            -o "Dir::Etc::SourceList=$scratch/sources.list"
            -o "Dir::Etc::SourceParts=$scratch/parts"
            -o "Dir::Etc::Preferences=$scratch/prefs/none"
            -o "Dir::Etc::PreferencesParts=$scratch/prefs"
            -o "Dir::State::Lists=$scratch/lists"
            -o "Dir::Cache::Archives=$scratch/archives"
            -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
            -o "APT::Sandbox::User=root"
        )
        apt-get -q "${apt_opts[@]}" update
        (cd "$CACHE_DIR/debs" && apt-get -q "${apt_opts[@]}" download docker-buildx)
        rm -rf "$scratch"
        deb="$(ls "$CACHE_DIR"/debs/docker-buildx_*.deb | tail -n 1)"
    fi
    say "installing $(basename "$deb")"
    dpkg -i "$deb" >/dev/null
    docker buildx version >/dev/null || die "docker buildx does not work after installing $deb"
}

image_label() { # image label -> value ("" when the image or the label is missing)
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

build_rootfs_image() {
    if [ "$(image_label "$ROOTFS_IMAGE" "$LABEL_RECIPE")" = "$ROOTFS_RECIPE" ]; then
        say "reusing $ROOTFS_IMAGE"
        return
    fi
    local tarball="$CACHE_DIR/rootfs-$SUITE-minbase-r$ROOTFS_RECIPE.tar"
    if [ ! -s "$tarball" ]; then
        local mirror scratch
        mirror="$(debian_mirror)"
        scratch="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
        say "debootstrap --variant=minbase $SUITE from $mirror (about a minute)"
        debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" "$SUITE" "$scratch/root" "$mirror" \
            >"$scratch/debootstrap.log" 2>&1 ||
            {
                tail -n 20 "$scratch/debootstrap.log" >&2
                die "debootstrap failed; log: $scratch/debootstrap.log"
            }
        # An offline image: no package lists, no downloaded .debs, no apt sources (so the
        # `apt-get update` in Otter's Dockerfile neither needs nor uses the network).
        rm -rf "$scratch/root/var/cache/apt/archives/"*.deb "$scratch/root/var/lib/apt/lists/"*
        if [ -e "$scratch/root/etc/apt/sources.list" ]; then
            mv "$scratch/root/etc/apt/sources.list" "$scratch/root/etc/apt/sources.list.disabled"
        fi
        tar -C "$scratch/root" -cf "$tarball.partial" .
        mv "$tarball.partial" "$tarball"
        rm -rf "$scratch"
    fi
    say "docker import $tarball -> $ROOTFS_IMAGE"
    docker import --change "LABEL $LABEL_RECIPE=$ROOTFS_RECIPE" --change 'CMD ["bash"]' \
        "$tarball" "$ROOTFS_IMAGE" >/dev/null
}

# Python version and glibc of the base image, e.g. "3.11.2 2.36".
image_python() {
    docker run --rm --network none "$ROOTFS_IMAGE" python3 -c \
        'import platform; print(platform.python_version(), platform.libc_ver()[1])'
}

make_wheelhouse() { # requirements-sha -> wheelhouse path on stdout
    local py glibc wheelhouse platforms=()
    read -r py glibc < <(image_python)
    wheelhouse="$CACHE_DIR/wheelhouse/cp${py}-glibc${glibc}-${1:0:16}"
    if [ -e "$wheelhouse/.complete" ]; then
        printf '%s\n' "$wheelhouse"
        return
    fi
    "$PYTHON" -m pip --version >/dev/null 2>&1 ||
        die "$PYTHON has no pip; set PYTHON to a Python with pip (e.g. PYTHON=.venv/bin/python)"
    local minor="${glibc#*.}"
    for ((v = 17; v <= minor; v++)); do platforms+=(--platform "manylinux_2_${v}_x86_64"); done
    say "pip download (Python $py, glibc $glibc) -> $wheelhouse"
    rm -rf "$wheelhouse"
    mkdir -p "$wheelhouse"
    "$PYTHON" -m pip download -q --disable-pip-version-check -d "$wheelhouse" \
        --only-binary=:all: --implementation cp --python-version "$py" \
        --abi "cp$(echo "$py" | cut -d. -f1,2 | tr -d .)" --abi abi3 --abi none \
        --platform manylinux2014_x86_64 --platform linux_x86_64 "${platforms[@]}" \
        -r "$REPO_DIR/requirements.txt" >&2
    touch "$wheelhouse/.complete"
    printf '%s\n' "$wheelhouse"
}

build_grading_image() {
    local requirements_sha wheelhouse container previous
    requirements_sha="$(sha256sum "$REPO_DIR/requirements.txt" | cut -d' ' -f1)"
    if [ "$(image_label "$GRADING_IMAGE" "$LABEL_REQUIREMENTS")" = "$requirements_sha" ] &&
        [ "$(image_label "$GRADING_IMAGE" "$LABEL_RECIPE")" = "$GRADING_RECIPE" ]; then
        say "reusing $GRADING_IMAGE"
        return
    fi
    wheelhouse="$(make_wheelhouse "$requirements_sha")"
    previous="$(docker image inspect --format '{{.Id}}' "$GRADING_IMAGE" 2>/dev/null || true)"
    say "building $GRADING_IMAGE (venv $VENV, installed offline from the wheelhouse)"
    container="$(docker create --network none \
        -v "$wheelhouse:/wheelhouse:ro" -v "$REPO_DIR/requirements.txt:/requirements.txt:ro" \
        "$ROOTFS_IMAGE" bash -c "set -e
            python3 -m venv $VENV
            $VENV/bin/pip install -q --disable-pip-version-check --no-index \
                --find-links /wheelhouse -r /requirements.txt
            rm -rf /root/.cache")"
    if ! docker start -a "$container" >&2; then
        docker rm -f "$container" >/dev/null
        die "installing the requirements into the grading image failed (see above)"
    fi
    docker commit \
        --change "LABEL $LABEL_REQUIREMENTS=$requirements_sha" \
        --change "LABEL $LABEL_RECIPE=$GRADING_RECIPE" \
        --change "ENV PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change 'CMD ["bash"]' "$container" "$GRADING_IMAGE" >/dev/null
    docker rm "$container" >/dev/null
    if [ -n "$previous" ]; then # the outdated image (kept if a container still uses it)
        docker image rm "$previous" >/dev/null 2>&1 || true
    fi
    for old in "$CACHE_DIR"/wheelhouse/*; do # wheelhouses of other requirements.txt versions
        [ "$old" = "$wheelhouse" ] || rm -rf "$old"
    done
    docker run --rm --network none "$GRADING_IMAGE" python -c \
        'import otter, numpy, sympy; assert otter.__version__ == "7.0.0", otter.__version__' ||
        die "$GRADING_IMAGE cannot import otter 7.0.0, numpy and sympy"
}

cmd_build() {
    [ "$(id -u)" -eq 0 ] || docker_up || die "run as root (to install and start Docker)"
    mkdir -p "$CACHE_DIR" "$RUN_DIR"
    exec 9>"$CACHE_DIR/.lock"
    if ! flock -n 9; then # one build at a time on this machine
        say "waiting for another docker_image.sh run to finish (lock $CACHE_DIR/.lock)"
        flock -w 1800 9 || die "$CACHE_DIR/.lock still held after 30 min"
    fi
    install_packages
    start_dockerd
    install_buildx
    build_rootfs_image
    build_grading_image
    say "ready: grade with  python -m autograder grade SUBMISSIONS --out OUT --engine docker"
    printf '%s\n' "$GRADING_IMAGE"
}

cmd_stop() {
    if [ ! -e "$PID_FILE" ]; then
        say "no dockerd started by this script (no $PID_FILE): nothing to stop"
        return
    fi
    local pid
    pid="$(cat "$PID_FILE")"
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]; then
        say "PID $pid from $PID_FILE is not a running dockerd: removing the stale file"
        rm -f "$PID_FILE"
        return
    fi
    say "stopping dockerd (PID $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "dockerd (PID $pid) ignored SIGTERM for 30 s: sending SIGKILL"
        kill -KILL "$pid"
    fi
    rm -f "$PID_FILE"
}

cmd_status() {
    local pid=""
    [ -e "$PID_FILE" ] && pid="$(cat "$PID_FILE")"
    printf 'dockerd:        %s\n' "$(command -v dockerd || echo 'not installed')"
    if docker_up; then
        printf 'daemon:         running%s\n' "${pid:+ (started by this script, PID $pid)}"
        printf 'buildx:         %s\n' "$(docker buildx version 2>/dev/null || echo 'not installed')"
        for image in "$ROOTFS_IMAGE" "$GRADING_IMAGE"; do
            printf '%-15s %s\n' "$image:" "$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || echo 'not built')"
        done
    else
        printf 'daemon:         not running\n'
    fi
    printf 'cache:          %s (%s)\n' "$CACHE_DIR" "$(du -sh "$CACHE_DIR" 2>/dev/null | cut -f1 || echo empty)"
}

case "${1:-build}" in
build) cmd_build ;;
stop) cmd_stop ;;
status) cmd_status ;;
-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' ;;
*) die "unknown command '$1' (build, stop, status or --help)" ;;
esac
