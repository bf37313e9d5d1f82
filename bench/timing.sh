# Sourced by the bench scripts: runs a command $repeat times with /usr/bin/time and keeps, by
# name, the best seconds (secs), the median seconds (median) and the peak RSS in KiB of the
# best run (rss). The caller sets $work and $repeat and defines `before_each` (what to clear
# between runs). Also the hold on a VM's free page reporting that both benchmarks take (below).
declare -A secs median rss

# timed NAME OUTPUT COMMAND...: each run's stdout goes to OUTPUT. A failed run is reported on
# stderr and timed like the others; the status is 1 when any run failed.
timed() {
  local name=$1 output=$2; shift 2
  local i t all="" status=0
  for ((i = 0; i < repeat; i++)); do
    before_each
    /usr/bin/time -o "$work/time" -f "%e %M" "$@" > "$output" 2> "$work/stderr" \
      || { echo "$name failed: $(tail -3 "$work/stderr")" >&2; status=1; }
    t=$(tail -1 "$work/time")
    all="$all ${t% *}"
    if [ -z "${secs[$name]:-}" ] || awk -v a="${t% *}" -v b="${secs[$name]}" 'BEGIN { exit !(a < b) }'; then
      secs[$name]=${t% *}; rss[$name]=${t#* }
    fi
  done
  median[$name]=$(tr ' ' '\n' <<<"$all" | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  return $status
}

# A VM whose balloon reports freed memory to its host (free page reporting; this machine is a
# Firecracker guest) makes a page freed by one run and touched again by the next cost a host
# fault: the system time of writing the same 2 GiB image into tmpfs went from 0.3 s to 3 s from
# one run to the next (user time steady), for every tool that writes. As root, reporting is held
# off while the benchmark runs (page_reporting_order above the largest order) and the saved order
# is put back by restore_page_reporting (call it from the EXIT trap). BENCH_PAGE_REPORTING=keep
# leaves it alone. A real appliance has no balloon.
page_reporting=/sys/module/page_reporting/parameters/page_reporting_order
page_reporting_saved=""
hold_page_reporting() {
  if [ ! -e "$page_reporting" ]; then
    echo "free page reporting: not in this kernel"
  elif [ "${BENCH_PAGE_REPORTING:-hold}" = keep ]; then
    echo "free page reporting: left on (order $(cat "$page_reporting")): expect the writers' times to vary"
  elif page_reporting_saved=$(cat "$page_reporting") && echo 11 > "$page_reporting" 2>/dev/null \
       && [ "$(cat "$page_reporting")" = 11 ]; then
    echo "free page reporting: held off for the run (order $page_reporting_saved, restored at exit)"
  else
    page_reporting_saved=""
    echo "free page reporting: could not hold it off (needs root): expect the writers' times to vary"
  fi
}
restore_page_reporting() {
  if [ -n "$page_reporting_saved" ]; then echo "$page_reporting_saved" > "$page_reporting"; fi
}
