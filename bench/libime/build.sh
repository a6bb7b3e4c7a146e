#!/usr/bin/env bash
# Build the libime baseline driver. Needs Debian: libimepinyin-dev libimecore-dev
# libfcitx5utils-dev libboost-dev libime-data libime-data-language-model.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-driver}
g++ -O2 -std=c++17 driver.cpp -o "$out" \
  -I/usr/include/LibIME -I/usr/include/Fcitx5/Utils \
  -lIMEPinyin -lIMECore -lFcitx5Utils
