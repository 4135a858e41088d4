#!/usr/bin/env bash
# One prepared run of every throughput benchmark on a GPU machine, within 10 minutes, writing a
# RESULTS section (issue 17's GPU targets: MiniLM IG >= 2,000 and occlusion >= 5,000 explanations/s;
# LLM occlusion >= 100/s, LLM IG >= 10/s; and the Ray backend with GPU actors).
#
#   bash benchmarks/gpu.sh            # on the GPU machine: writes benchmarks/gpu-results/ and
#                                     # appends the section to benchmarks/RESULTS.md
#   bash benchmarks/gpu.sh --tiny     # smoke test anywhere (CPU, tiny random models, ~2 min)
#
# It installs nothing: it runs with $PY (default .venv/bin/python, else python3), which must have
# explainlm, torch with CUDA and the ray extra. Each step has its own time limit (5 + 3 min, plus
# the report) so the whole run stays under 10 minutes; a step that fails or times out is reported
# as such in the section and makes the script exit non-zero, after the other steps ran.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[[ -x "$PY" ]] || PY=python3
TINY=0
[[ "${1:-}" == "--tiny" ]] && TINY=1
OUT=${OUT:-benchmarks/gpu-results}
mkdir -p "$OUT"
export TOKENIZERS_PARALLELISM=false RAY_memory_monitor_refresh_ms=0

if [[ $TINY == 1 ]]; then
  DEV=cpu; FLAGS=(--tiny); RAY_FLAGS=(--tiny --rounds 1 --configs local,ray-1,ray-2)
else
  DEV=cuda; FLAGS=(--device cuda); RAY_FLAGS=(--device cuda --gpus-per-actor 0.5 --n 2000 --rounds 2 --configs local,ray-1,ray-2)
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "gpu.sh: torch sees no CUDA device (use --tiny for a CPU smoke test)" >&2; exit 2; }
fi
"$PY" -c "import explainlm, ray" || { echo "gpu.sh: $PY lacks explainlm or ray" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>/dev/null \
  || echo "no nvidia-smi ($DEV)" > "$OUT/gpu.txt"

status=0
step() {  # step NAME SECONDS COMMAND...: JSON on stdout to $OUT/NAME.json, log to $OUT/NAME.log
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)" >&2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.json" 2> "$OUT/$name.log"
  local rc=$?
  echo "{\"rc\": $rc, \"seconds\": $((SECONDS - t0))}" > "$OUT/$name.rc.json"
  if [[ $rc != 0 ]]; then status=1; echo "   $name failed (rc $rc): see $OUT/$name.log" >&2; fi
}
step throughput 300 "$PY" benchmarks/gpu_throughput.py "${FLAGS[@]}" --budget-s 40 --json
step ray 180 "$PY" benchmarks/ray_throughput.py "${RAY_FLAGS[@]}" --json

# the RESULTS section, checked: every step's JSON parses and holds every workload
"$PY" - "$OUT" "$TINY" <<'PYEOF' || status=1
import json, sys
from pathlib import Path
out, tiny = Path(sys.argv[1]), sys.argv[2] == "1"
lines = [f"## GPU throughput ({'smoke test on CPU, tiny models: not a measurement' if tiny else 'benchmarks/gpu.sh'})", ""]
lines.append(f"- GPU: {(out / 'gpu.txt').read_text().strip()}")
ok = True
def load(name):
    global ok
    rc = json.loads((out / f"{name}.rc.json").read_text())
    try:
        return json.loads((out / f"{name}.json").read_text()), rc
    except (OSError, json.JSONDecodeError):
        ok = False
        lines.append(f"- {name}: FAILED (rc {rc['rc']} after {rc['seconds']} s; log {out / (name + '.log')})")
        return None, rc
doc, rc = load("throughput")
if doc:
    lines += [f"- Date {doc['date']}, device {doc['device']}; command `{doc['command']}` ({rc['seconds']} s)",
              f"- Classifier: {doc['classifier']}; LLM: {doc['llm']}; texts: {doc['texts']}; "
              f"max_batch_tokens {doc['max_batch_tokens']}, mixed precision {doc['mixed_precision']}", "",
              "| workload | method | texts | seconds | explanations/s | target | meets |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in ("minilm_ig", "minilm_occlusion", "llm_occlusion", "llm_ig"):
        r = doc["results"].get(name)
        if r is None:
            ok = False; lines.append(f"| {name} | MISSING | | | | | |"); continue
        meets = "smoke" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO")
        lines.append(f"| {name} | {r['method']} | {r['texts']} | {r['seconds']} | {r['per_s']} | ≥ {r['target_per_s']} | {meets} |")
doc, rc = load("ray")
if doc:
    lines += ["", f"Ray backend ({doc['n_texts']} texts, {doc['method']}; command `{doc['command']}`, "
              f"{rc['seconds']} s; cluster start {doc['ray_cluster_start_s']} s; load avg {doc['loadavg_per_round_before_after']}):", "",
              "| config | median s | texts/s | time ratio to local (median, min–max) | identical to local |",
              "| --- | --- | --- | --- | --- |"]
    for r in doc["results"]:
        ratio = f"{r['ratio_median']} ({r['ratio_min']}–{r['ratio_max']})" if "ratio_median" in r else ""
        lines.append(f"| {r['config']} | {r['median_s']} | {r['texts_per_s']} | {ratio} | {r.get('identical_to_local', '')} |")
section = "\n".join(lines) + "\n"
(out / "RESULTS-section.md").write_text(section)
print(section)
if not tiny and ok:
    with open("benchmarks/RESULTS.md", "a", encoding="utf-8") as fh:
        fh.write("\n" + section)
sys.exit(0 if ok else 1)
PYEOF
exit $status
