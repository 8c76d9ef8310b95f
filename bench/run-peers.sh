#!/usr/bin/env bash
# Runs bench/Engine.Peers (ours against ONNX Runtime and libtorch) twice on the same model, from the repository root:
#   1. as the machine is: our kernels take AVX-512 (and AVX-VNNI for int8) where the CPU has them;
#   2. with DOTNET_EnableAVX512=0, the .NET 10 switch that keeps the JIT off AVX-512 (Vector512 is then not accelerated
#      and Avx512F.IsSupported is false), so our kernels run their AVX2 + FMA variants, as on CPUs without AVX-512.
#      (DOTNET_EnableAVX512F=0 is silently ignored by .NET 10.) ONNX Runtime and libtorch are native code and pick
#      their own kernels: the switch changes only ours.
# Each run prints its tables under a line naming the kernels ours used, and writes them to its own directory:
# bench/results/peers.md (.csv) and bench/results/avx2/peers.md (.csv). bench/README.md, "Side by side", quotes them.
#   bench/run-peers.sh [MODEL] [SECONDS_PER_CELL]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-src/Engine.Cli/Data/models/seed1.safetensors}"
seconds="${2:-2}"
# The build also patches libtorch's libLibTorchSharp.so in the build output (bench/README.md, "libtorch").
dotnet build -c Release bench/Engine.Peers
peers=bench/Engine.Peers/bin/Release/net10.0/Engine.Peers.dll
echo "== 1/2: the machine's own instruction sets"
dotnet "$peers" --model "$model" --seconds "$seconds" --out bench/results
echo "== 2/2: DOTNET_EnableAVX512=0 (our kernels on AVX2 + FMA)"
DOTNET_EnableAVX512=0 dotnet "$peers" --model "$model" --seconds "$seconds" --out bench/results/avx2
