#!/bin/bash
# The hardware-GPU measurements in one go (issue: hardware GPUs).
#
#   bash bench/gpu.sh pack   here: bundles bench/gpu_main.ts (no package cache needed),
#                            packs the deno binary and Debian's Vulkan loader into .devbin/
#   bash bench/gpu.sh run    on the GPU machine: the matmul variants side by side (f16 too),
#                            the Qwen2.5-0.5B-shaped student at batch 8 x 512, then the
#                            float64 kernel tests; figures go to $OUT (default ./gpu-out)
#   bash bench/gpu.sh run qwen matmul   only those parts (matmul rows attention qwen tests);
#                            MATMUL_ONLY / ROWS_ONLY pass `--only` to those benches
#   bash bench/gpu.sh run teacher   not a measurement of speed: issue 12's teacher trained by
#                            the prototype's recipe (hours on the CPU adapter); its snapshots and
#                            their held-out figures go to $OUT/teacher-b-STEP as they come
#
# .devbin/ is ignored by git; the device tool carries it (carry: [".devbin"]).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

pack() {
  set -e
  mkdir -p .devbin/a .devbin/gl
  deno=$(command -v deno || true)
  if [ -z "$deno" ]; then
    deno=$(find / -path '*@deno/linux-x64-glibc/deno' -type f 2>/dev/null | head -1)
  fi
  [ -n "$deno" ] || { echo "gpu.sh pack: no deno binary found (npx -y deno@2.9.6 --version first)"; exit 1; }
  "$deno" bundle -q -o .devbin/a/gpu.js bench/gpu_main.ts
  "$deno" bundle -q -o .devbin/a/teacher.js src/cli/train_teacher.ts
  [ -f .devbin/deno.xz ] || xz -T2 -6 -c "$deno" >.devbin/deno.xz
  if ! ls .devbin/gl/libglvnd0_*.deb >/dev/null 2>&1; then
    mkdir -p /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    apt-get $o update >/dev/null
    # The Vulkan loader, and the GL dispatch libraries NVIDIA's ICD (libGLX_nvidia) loads.
    (cd .devbin/gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  du -sh .devbin
}

run() {
  set -o pipefail
  out=${OUT:-$root/gpu-out}
  mkdir -p "$out"
  log=$out/log.txt
  exec > >(tee -a "$log") 2>&1
  date -u
  for f in .devbin/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd
  xz -d -c .devbin/deno.xz >/tmp/deno && chmod +x /tmp/deno
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.csv"
  nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu,clocks.sm --format=csv,noheader \
    -lms 500 >"$out/smi.csv" &
  smi=$!
  export DENO_DIR=/tmp/deno-dir DENO_WEBGPU_BACKEND=vulkan DENO_NO_UPDATE_CHECK=1
  d="/tmp/deno run -A --no-config .devbin/a/gpu.js"
  /tmp/deno eval 'const a = await navigator.gpu.requestAdapter(); console.log(a ? JSON.stringify({ vendor: a.info.vendor, architecture: a.info.architecture, description: a.info.description }) : "no adapter")' |
    tee "$out/adapter.txt"
  grep -q "no adapter" "$out/adapter.txt" && exit 1

  parts=${parts:-matmul rows attention qwen tests}
  for part in $parts; do
    case $part in
    matmul)
      echo "== matmul variants"
      timeout 150 $d matmul --json ${MATMUL_ONLY:+--only "$MATMUL_ONLY"} | tee -a "$out/matmul.jsonl"
      ;;
    rows)
      echo "== row kernels and reductions, each flavour"
      timeout 90 $d rows --json ${ROWS_ONLY:+--only "$ROWS_ONLY"} | tee -a "$out/rows.jsonl"
      ;;
    attention)
      echo "== fused against composed attention, Qwen2.5-0.5B's attention shape"
      timeout 45 $d attention --backward --qwen | tee "$out/attention.jsonl"
      ;;
    qwen)
      echo "== Qwen2.5-0.5B-shaped student"
      timeout 170 $d model --preset qwen2.5-0.5b --json --train-steps 3 | tee "$out/qwen.jsonl" ||
        timeout 100 $d model --preset qwen2.5-0.5b --json --train-steps 3 --batch 4 | tee "$out/qwen4.jsonl"
      ;;
    teacher)
      # The third prototype's recipe (../shared/docs/tiny-scale-recipe.md): from scratch with half
      # the gold solutions answer-only, 1,200 steps x 128 at lr 2e-3, then 1,500 more at lr 1e-3;
      # its guesses were right 62.9% (docs/rl.md section 11). 100,000 questions, guess.json's kept
      # out. Snapshots of the second phase every 300 steps, each measured on 1,000 held-out
      # questions, so a timeout still leaves the ones reached.
      echo "== issue 12's teacher at the prototype's budget"
      t="/tmp/deno run -A --no-config .devbin/a/teacher.js --answer-only 0.5 --questions 100000"
      t="$t --batch 128 --eval-questions 1000 --config configs/guess.json"
      timeout ${TEACHER_TIMEOUT1:-240} $t --steps 1200 --lr 2e-3 --out "$out/teacher-a" 2>&1 |
        tee "$out/teacher.txt"
      timeout ${TEACHER_TIMEOUT2:-330} $t --init "$out/teacher-a" --steps 1500 --lr 1e-3 \
        --save-at 300,600,900,1200 --out "$out/teacher-b" 2>&1 | tee -a "$out/teacher.txt"
      ;;
    tests)
      # On both H200 runs these printed nothing within the time allowed (cause not established).
      echo "== float64 checks of the hardware kernels on this GPU"
      timeout 60 /tmp/deno test -A --no-config --no-check tests/matmul_variants_test.ts \
        tests/hardware_kernels_test.ts >"$out/tests.txt" 2>&1
      grep -E "FAILED|failed|passed|error" "$out/tests.txt" | tail -20
      ;;
    esac
  done

  kill $smi
  date -u
}

case "${1:-}" in
pack) pack ;;
run)
  shift
  parts=$* run
  ;;
*) echo "usage: bash bench/gpu.sh pack|run" && exit 2 ;;
esac
