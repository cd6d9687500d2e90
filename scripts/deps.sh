# shellcheck shell=bash
# scripts/deps.sh - the one list of Debian 12 packages enpi needs to build, test and demo,
# and the function that installs whichever of them are missing. Sourced by scripts/test
# and scripts/run-demo; not meant to be run on its own.

ENPI_DEPS=(
    build-essential cmake pkg-config clang libclang-rt-14-dev
    libpaho-mqtt-dev libssl-dev libuv1-dev librocksdb-dev libisal-dev
    libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
    libsystemd-dev libyaml-dev libjson-c-dev libjsmn-dev uthash-dev libcmocka-dev
    mosquitto mosquitto-clients libmosquitto-dev python3 python3-paho-mqtt
    libcairo2-dev libpango1.0-dev fonts-dejavu-core poppler-utils libmicrohttpd-dev libcsv-dev
    systemd openssl man-db
)

# Runs a command as root: directly when we are root, else through sudo.
enpi_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# Installs the packages of ENPI_DEPS that dpkg does not list as installed. Runs
# `apt-get update` once, and only when something is missing. When this call installed
# mosquitto, the system service the Debian package starts is stopped and disabled: enpi's
# scripts start their own broker on a free loopback port and never use 1883.
enpi_install_deps() {
    local missing=() p
    for p in "${ENPI_DEPS[@]}"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "==> all ${#ENPI_DEPS[@]} Debian packages present"
        return 0
    fi
    echo "==> installing missing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    enpi_as_root apt-get update -q
    enpi_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    case " ${missing[*]} " in
    *" mosquitto "*)
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
            enpi_as_root systemctl disable --now mosquitto.service >/dev/null 2>&1 || true
        elif command -v service >/dev/null 2>&1; then
            enpi_as_root service mosquitto stop >/dev/null 2>&1 || true
        fi
        ;;
    esac
}
