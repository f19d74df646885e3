#!/usr/bin/env bash
# Run the test suite (or any command) while busy loops keep the CPU cores occupied, as on a
# shared CI machine: no test may depend on wall-clock speed.
#
#   tests/under_load.sh                                   # pytest: the whole suite
#   tests/under_load.sh pytest tests/codecs/test_decoder_fuzz.py -q
#
# BUSY_LOOPS (default 2) loops of `python -c 'while True: pass'` ($PYTHON, default python3)
# are started here, recorded by PID, and killed by PID when this script exits, however it
# exits. The exit status is the command's.
set -uo pipefail

python=${PYTHON:-python3}
loops=${BUSY_LOOPS:-2}
pids=()

stop_loops() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null
  done
}
trap stop_loops EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq "$loops"); do
  "$python" -c 'while True: pass' &
  pids+=("$!")
done
echo "under load: $loops busy loops (PIDs ${pids[*]})" >&2

if [ "$#" -eq 0 ]; then
  set -- pytest
fi
"$@"
exit $?
