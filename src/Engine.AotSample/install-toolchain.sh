#!/usr/bin/env bash
# Installs what `dotnet publish` of a NativeAOT app needs on Debian/Ubuntu linux-x64, and only what is missing.
# Idempotent; prints nothing when everything is already there.
#
# What .NET 10's NativeAOT compiler needs besides the SDK (the ILCompiler packages come from NuGet with the restore):
#   - a C compiler driver to link with: clang, or gcc when clang is absent (the SDK's targets fall back to gcc);
#   - GNU binutils: the linker (ld.bfd, the default linker flavour on Linux) and objcopy (strips symbols into .dbg);
#   - the C library's development files (crt1.o, libc.so, libm.so): libc6-dev.
# zlib and brotli are linked from static copies shipped in the runtime pack, so zlib1g-dev is not needed.
set -euo pipefail

missing=()
if ! command -v clang >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
  missing+=(clang)
fi
if ! command -v ld.bfd >/dev/null 2>&1 || ! command -v objcopy >/dev/null 2>&1; then
  missing+=(binutils)
fi
if ! dpkg-query -W -f='${Status}' libc6-dev 2>/dev/null | grep -q "install ok installed"; then
  missing+=(libc6-dev)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-toolchain: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
